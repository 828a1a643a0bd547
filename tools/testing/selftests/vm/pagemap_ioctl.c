// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the PAGEMAP_SCAN ioctl of /proc/<pid>/pagemap: page categories of
 * every kind of memory, filters, region merging, the vec_len and max_pages
 * limits with walk_end, write tracking with asynchronous userfaultfd
 * write-protection, and the checks of the argument.
 *
 * Most checks compare the kernel's answer with model_scan(), which applies
 * the documented rules to the categories each page is known to have.
 *
 * Environment:
 *   PMS_GUEST=1   set in the test guest. Tests that need swap fail without it
 *                 with "needs the guest".
 *   PMS_EXT2_DIR  directory for the regular files (default /var/tmp).
 *
 * Build with -DPAGEMAP_IOCTL_NO_IO_URING where liburing is missing (the
 * 32-bit build): the io_uring test is then left out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <grp.h>
#include <linux/fs.h>
#include <linux/mempolicy.h>
#include <linux/userfaultfd.h>
#ifndef PAGEMAP_IOCTL_NO_IO_URING
#include <liburing.h>
#endif

#include "../kselftest_harness.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif

#define HPAGE_SIZE		(2UL << 20)
#define SZ_1G			0x40000000UL
#define ALL_CATEGORIES		0xffULL
/* walk_end is pre-filled with this to see whether the kernel wrote it */
#define CANARY			0x5ca1ab1edeadbeefULL
/* An address above the user address space, with 4 and 5 level page tables */
#define KERNEL_ADDR		0xffff800000000000ULL
#define PM_SWAPPED_BIT		0x4000000000000000ULL
#define NOBODY_ID		65534

static size_t page_size;
static bool soft_dirty_enabled;	/* new VMAs are VM_SOFTDIRTY */
static bool thp_huge_zero_page;	/* THP read faults map the huge zero page */
static int read_sink;

static unsigned long read_sysfs_ulong(const char *path, unsigned long dflt)
{
	unsigned long val;
	FILE *f = fopen(path, "r");

	if (!f)
		return dflt;
	if (fscanf(f, "%lu", &val) != 1)
		val = dflt;
	fclose(f);
	return val;
}

/*
 * Copy the value of field @key (e.g. "VmFlags:") of the VMA that starts at
 * @addr in /proc/self/smaps to @val.
 */
static bool smaps_field(const void *addr, const char *key, char *val, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512], start[32];
	bool in_vma = false, found = false;

	if (!f)
		return false;
	snprintf(start, sizeof(start), "%08lx-", (unsigned long)addr);
	while (!found && fgets(line, sizeof(line), f)) {
		if (!in_vma) {
			in_vma = !strncmp(line, start, strlen(start));
		} else if (!strncmp(line, key, strlen(key))) {
			snprintf(val, len, "%s", line + strlen(key));
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* Is the VMA at @addr mapped with @nr PMD-mapped anonymous THPs? */
static bool thps_mapped(const void *addr, size_t nr)
{
	char val[64];

	if (!smaps_field(addr, "AnonHugePages:", val, sizeof(val)))
		return false;
	return strtoul(val, NULL, 10) == nr * (HPAGE_SIZE >> 10);
}

/* Does the kernel mark new VMAs soft-dirty (CONFIG_MEM_SOFT_DIRTY)? */
static bool new_vmas_soft_dirty(void)
{
	char *p = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char val[256] = "";
	bool sd;

	if (p == MAP_FAILED)
		return false;
	sd = smaps_field(p, "VmFlags:", val, sizeof(val)) &&
	     (strstr(val, " sd ") || strstr(val, " sd\n"));
	munmap(p, page_size);
	return sd;
}

/* The /proc/pid/pagemap entry of the page at @p, read with read(2) */
static __u64 pagemap_entry(int fd, const void *p)
{
	__u64 entry = 0;
	off_t off = (uintptr_t)p / page_size * sizeof(entry);

	if (pread(fd, &entry, sizeof(entry), off) != sizeof(entry))
		return 0;
	return entry;
}

static void global_init(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	soft_dirty_enabled = new_vmas_soft_dirty();
	thp_huge_zero_page =
		read_sysfs_ulong("/sys/kernel/mm/transparent_hugepage/use_zero_page", 1);
}

static bool in_guest(void)
{
	return getenv("PMS_GUEST");
}

static __u64 addr_of(const void *p)
{
	return (uintptr_t)p;
}

static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static void write_value(char *p, char v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static void write_page(char *p)
{
	write_value(p, 1);
}

static void read_page(const char *p)
{
	read_sink += __atomic_load_n(p, __ATOMIC_RELAXED);
}

static int open_pagemap(pid_t pid)
{
	char path[64];

	if (!pid)
		return open("/proc/self/pagemap", O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	return open(path, O_RDONLY);
}

/* A regular file of @len bytes, already unlinked */
static int open_regular_file(size_t len)
{
	const char *dir = getenv("PMS_EXT2_DIR");
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/pagemap_ioctl.XXXXXX", dir ? dir : "/var/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	if (ftruncate(fd, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---------------------------------------------------------------------- */
/* The ioctl and a model of its answer                                     */
/* ---------------------------------------------------------------------- */

struct scan_req {
	__u64 flags;
	__u64 max_pages;
	__u64 inverted;
	__u64 mask;
	__u64 anyof;
	__u64 ret;
};

static const struct scan_req req_written = {
	.mask = PAGE_IS_WRITTEN,
	.ret = PAGE_IS_WRITTEN,
};

static const struct scan_req req_protect_written = {
	.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
	.mask = PAGE_IS_WRITTEN,
	.ret = PAGE_IS_WRITTEN,
};

static long pagemap_scan(int fd, __u64 start, __u64 end, struct page_region *vec,
			 size_t vec_len, const struct scan_req *req, __u64 *walk_end)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = req->flags,
		.start = start,
		.end = end,
		.walk_end = CANARY,
		.vec = addr_of(vec),
		.vec_len = vec_len,
		.max_pages = req->max_pages,
		.category_inverted = req->inverted,
		.category_mask = req->mask,
		.category_anyof_mask = req->anyof,
		.return_mask = req->ret,
	};
	long ret = ioctl(fd, PAGEMAP_SCAN, &arg);

	if (walk_end)
		*walk_end = arg.walk_end;
	return ret;
}

static bool categories_match(__u64 cat, const struct scan_req *req)
{
	cat ^= req->inverted;
	if ((cat & req->mask) != req->mask)
		return false;
	return !req->anyof || (cat & req->anyof);
}

/*
 * What PAGEMAP_SCAN must answer for pages [first, last) of the area at @base
 * whose categories are @cats: the regions (at most @vec_len) go to @out, the
 * count is returned and *walk_end is set. Matching pages merge into one
 * region while they are contiguous and their categories & return mask are
 * equal; a scan stops at the first matching page that would need a region
 * more than @vec_len, or that comes once max_pages pages were reported.
 */
static size_t model_scan(const __u64 *cats, __u64 base, size_t first, size_t last,
			 const struct scan_req *req, size_t vec_len,
			 struct page_region *out, __u64 *walk_end)
{
	__u64 found = 0;
	size_t n = 0, i;

	*walk_end = base + last * page_size;
	if (!vec_len)
		return 0;
	for (i = first; i < last; i++) {
		__u64 addr = base + i * page_size;
		__u64 cat = cats[i] & req->ret;

		if (!categories_match(cats[i], req))
			continue;
		if (req->max_pages && found == req->max_pages) {
			*walk_end = addr;
			break;
		}
		if (n && out[n - 1].end == addr && out[n - 1].categories == cat) {
			out[n - 1].end += page_size;
		} else {
			if (n == vec_len) {
				*walk_end = addr;
				break;
			}
			out[n].start = addr;
			out[n].end = addr + page_size;
			out[n].categories = cat;
			n++;
		}
		found++;
	}
	return n;
}

static long long page_index(__u64 addr, __u64 base)
{
	return (long long)(addr - base) / (long long)page_size;
}

static void log_regions(struct __test_metadata *_metadata, const char *what,
			const struct page_region *r, size_t n, __u64 base)
{
	size_t i;

	TH_LOG("%s: %zu region(s), in pages from %#llx:", what, n, base);
	for (i = 0; i < n && i < 32; i++)
		TH_LOG("  [%lld, %lld) categories %#llx", page_index(r[i].start, base),
		       page_index(r[i].end, base), r[i].categories);
	if (n > 32)
		TH_LOG("  ...");
}

static bool vec_tail_untouched(const struct page_region *vec, long n, size_t vec_len)
{
	const unsigned char *p = (const unsigned char *)(vec + n);
	size_t i;

	if (!vec || n < 0)
		return true;
	for (i = 0; i < (vec_len - n) * sizeof(*vec); i++)
		if (p[i] != 0xa5)
			return false;
	return true;
}

/*
 * Scan pages [first, last) of the area at @base with @req into @vec and
 * compare all of the answer (return value, regions, walk_end, the part of
 * @vec past the regions left alone) with model_scan() over @cats. Returns
 * the number of regions, or -1 after logging the difference.
 */
static long check_scan(struct __test_metadata *_metadata, int fd, __u64 base,
		       const __u64 *cats, size_t first, size_t last,
		       const struct scan_req *req, struct page_region *vec,
		       size_t vec_len, __u64 *walk_end)
{
	struct page_region *exp = calloc(vec_len + 1, sizeof(*exp));
	__u64 got_end, exp_end;
	size_t n_exp;
	long ret;
	int err;
	bool ok;

	if (vec)
		memset(vec, 0xa5, vec_len * sizeof(*vec));
	ret = pagemap_scan(fd, base + first * page_size, base + last * page_size,
			   vec, vec_len, req, &got_end);
	err = errno;
	n_exp = model_scan(cats, base, first, last, req, vec_len, exp, &exp_end);
	ok = ret == (long)n_exp && got_end == exp_end &&
	     (!n_exp || !memcmp(vec, exp, n_exp * sizeof(*exp))) &&
	     vec_tail_untouched(vec, ret, vec_len);
	if (!ok) {
		TH_LOG("scan of pages [%zu, %zu): flags %#llx max_pages %llu vec_len %zu",
		       first, last, req->flags, req->max_pages, vec_len);
		TH_LOG("  inverted %#llx mask %#llx anyof %#llx return %#llx",
		       req->inverted, req->mask, req->anyof, req->ret);
		TH_LOG("  returned %ld (errno %d) walk_end page %lld",
		       ret, ret < 0 ? err : 0, page_index(got_end, base));
		TH_LOG("  expected %zu, walk_end page %lld", n_exp, page_index(exp_end, base));
		if (ret > 0)
			log_regions(_metadata, "got", vec, ret, base);
		log_regions(_metadata, "expected", exp, n_exp, base);
		ret = -1;
	}
	free(exp);
	if (walk_end)
		*walk_end = got_end;
	return ret;
}

/* Set seen[i] for every page i of the regions; false if a region is bad */
static bool mark_regions(const struct page_region *vec, long n, __u64 base,
			 size_t nr_pages, bool *seen)
{
	__u64 a;
	long i;

	for (i = 0; i < n; i++) {
		if (vec[i].start >= vec[i].end || vec[i].start < base ||
		    vec[i].end > base + nr_pages * page_size)
			return false;
		for (a = vec[i].start; a < vec[i].end; a += page_size)
			seen[(a - base) / page_size] = true;
	}
	return true;
}

/*
 * Scan pages [first, last) in calls of at most @vec_len regions (and
 * req->max_pages pages), each call resuming at the previous walk_end and
 * each one checked against the model. Marks the reported pages in @seen.
 */
static bool resume_scan(struct __test_metadata *_metadata, int fd, __u64 base,
			const __u64 *cats, size_t first, size_t last,
			const struct scan_req *req, size_t vec_len, bool *seen)
{
	struct page_region *vec = calloc(vec_len, sizeof(*vec));
	size_t pos = first, calls = 0;
	__u64 walk_end;
	bool ok = false;
	long n;

	while (pos < last) {
		if (++calls > last - first + 1) {
			TH_LOG("resumed scan makes no progress at page %zu", pos);
			goto out;
		}
		n = check_scan(_metadata, fd, base, cats, pos, last, req, vec, vec_len,
			       &walk_end);
		if (n < 0 || !mark_regions(vec, n, base, last, seen))
			goto out;
		pos = (walk_end - base) / page_size;
	}
	ok = true;
out:
	free(vec);
	return ok;
}

/* Do the pages marked in @seen match the ones the model says @req matches? */
static bool seen_is_matching(struct __test_metadata *_metadata, const __u64 *cats,
			     size_t first, size_t last, const struct scan_req *req,
			     const bool *seen)
{
	size_t i;

	for (i = first; i < last; i++) {
		if (seen[i] != categories_match(cats[i], req)) {
			TH_LOG("page %zu: reported %d, categories %#llx", i, seen[i], cats[i]);
			return false;
		}
	}
	return true;
}

/* Set cats[i] = @cat for each page index i listed after it, up to a -1 */
static void set_pages(__u64 *cats, __u64 cat, ...)
{
	va_list ap;
	int i;

	va_start(ap, cat);
	for (i = va_arg(ap, int); i >= 0; i = va_arg(ap, int))
		cats[i] = cat;
	va_end(ap);
}

/* ---------------------------------------------------------------------- */
/* Memory of every type                                                    */
/* ---------------------------------------------------------------------- */

enum mem_type {
	MEM_ANON,		/* private anonymous, MADV_NOHUGEPAGE */
	MEM_THP,		/* private anonymous, MADV_HUGEPAGE */
	MEM_HUGETLB_PRIVATE,	/* MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB */
	MEM_HUGETLB_SHARED,	/* MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB */
	MEM_HUGETLB_MEMFD,	/* memfd_create(MFD_HUGETLB), MAP_SHARED */
	MEM_SHMEM,		/* MAP_SHARED | MAP_ANONYMOUS */
	MEM_MEMFD,		/* memfd_create(), MAP_SHARED */
	MEM_FILE_PRIVATE,	/* regular file, MAP_PRIVATE */
	MEM_FILE_SHARED,	/* regular file, MAP_SHARED */
};

struct mem {
	enum mem_type type;
	char *addr;
	size_t len;
	size_t unit;		/* huge page size, or page size */
	int fd;
	char *resv;		/* PROT_NONE reservation the mapping sits in */
	size_t resv_len;
};

static bool is_hugetlb(enum mem_type t)
{
	return t == MEM_HUGETLB_PRIVATE || t == MEM_HUGETLB_SHARED || t == MEM_HUGETLB_MEMFD;
}

/* Is a page that was only read a page-cache or shmem page? */
static bool read_page_is_file(enum mem_type t)
{
	return t != MEM_ANON && t != MEM_THP && t != MEM_HUGETLB_PRIVATE;
}

/* Is a written page still the shared page (not a private anonymous copy)? */
static bool written_page_is_file(enum mem_type t)
{
	return read_page_is_file(t) && t != MEM_FILE_PRIVATE;
}

/*
 * Reserve address space so that @len bytes at an @align boundary have at
 * least one reserved page after them. The PROT_NONE remainder keeps the
 * mapping from merging with other VMAs.
 */
static char *reserve_aligned(struct mem *m, size_t len, size_t align)
{
	m->resv_len = len + align + page_size;
	m->resv = mmap(NULL, m->resv_len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->resv == MAP_FAILED) {
		m->resv = NULL;
		return NULL;
	}
	return (char *)(((uintptr_t)m->resv + page_size + align - 1) & ~(uintptr_t)(align - 1));
}

static int mem_open_fd(enum mem_type t, size_t len)
{
	int fd;

	switch (t) {
	case MEM_HUGETLB_MEMFD:
		fd = memfd_create("pagemap_ioctl", MFD_HUGETLB);
		break;
	case MEM_MEMFD:
		fd = memfd_create("pagemap_ioctl", 0);
		break;
	case MEM_FILE_PRIVATE:
	case MEM_FILE_SHARED:
		return open_regular_file(len);
	default:
		return -1;
	}
	if (fd >= 0 && ftruncate(fd, len)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int mem_flags(enum mem_type t)
{
	switch (t) {
	case MEM_ANON:
	case MEM_THP:
		return MAP_PRIVATE | MAP_ANONYMOUS;
	case MEM_HUGETLB_PRIVATE:
		return MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
	case MEM_HUGETLB_SHARED:
		return MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB;
	case MEM_SHMEM:
		return MAP_SHARED | MAP_ANONYMOUS;
	case MEM_FILE_PRIVATE:
		return MAP_PRIVATE;
	default:
		return MAP_SHARED;
	}
}

static int mem_advice(enum mem_type t)
{
	switch (t) {
	case MEM_THP:
		return MADV_HUGEPAGE;
	case MEM_FILE_PRIVATE:
	case MEM_FILE_SHARED:
		/* no readahead, so only the pages touched enter the page cache */
		return MADV_RANDOM;
	case MEM_ANON:
	case MEM_SHMEM:
	case MEM_MEMFD:
		return MADV_NOHUGEPAGE;
	default:
		return -1;
	}
}

/*
 * Map @len bytes of type @t, aligned to 2 MiB (hugetlb: 1 GiB if possible, so
 * that one page table holds all of it), with a reserved page after it.
 */
static int mem_map(struct mem *m, enum mem_type t, size_t len)
{
	bool needs_fd = t == MEM_HUGETLB_MEMFD || t == MEM_MEMFD ||
			t == MEM_FILE_PRIVATE || t == MEM_FILE_SHARED;
	char *want = NULL;
	char *p;

	memset(m, 0, sizeof(*m));
	m->type = t;
	m->len = len;
	m->unit = (is_hugetlb(t) || t == MEM_THP) ? HPAGE_SIZE : page_size;
	m->fd = -1;
	if (is_hugetlb(t))
		want = reserve_aligned(m, len, SZ_1G);
	if (!want)
		want = reserve_aligned(m, len, HPAGE_SIZE);
	if (!want)
		return -1;
	if (needs_fd) {
		m->fd = mem_open_fd(t, len);
		if (m->fd < 0)
			return -1;
	}
	p = mmap(want, len, PROT_READ | PROT_WRITE, mem_flags(t) | MAP_FIXED, m->fd, 0);
	if (p != want)
		return -1;
	m->addr = p;
	if (mem_advice(t) >= 0 && madvise(p, len, mem_advice(t)))
		return -1;
	return 0;
}

static void mem_unmap(struct mem *m)
{
	if (m->resv)
		munmap(m->resv, m->resv_len);
	if (m->fd >= 0)
		close(m->fd);
	m->resv = NULL;
	m->fd = -1;
}

/* ---------------------------------------------------------------------- */
/* userfaultfd                                                             */
/* ---------------------------------------------------------------------- */

static int uffd_open_wp_async(void)
{
	const __u64 want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api) || (api.features & want) != want) {
		close(fd);
		return -1;
	}
	return fd;
}

static int uffd_register_wp(int uffd, void *addr, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = addr_of(addr), .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &reg);
}

static int uffd_write_protect(int uffd, void *addr, size_t len)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = addr_of(addr), .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
}

/* Register [addr, addr + len) for async uffd-wp and write-protect all of it */
static int track_writes(int uffd, void *addr, size_t len)
{
	if (uffd_register_wp(uffd, addr, len))
		return -1;
	return uffd_write_protect(uffd, addr, len);
}

/* ---------------------------------------------------------------------- */
/* Categories of untouched, read and written memory of each type           */
/* ---------------------------------------------------------------------- */

/*
 * The units of the memory are left untouched (U), read (R) or written (W)
 * in this order, repeated. The first unit is written, so the page table
 * holding the others exists.
 */
#define CLASSIFY_PATTERN	"WWRUUWRRUW"

static char unit_state(size_t unit)
{
	return CLASSIFY_PATTERN[unit % (sizeof(CLASSIFY_PATTERN) - 1)];
}

/* Categories of a page in a VMA that is not registered with userfaultfd */
static __u64 expect_plain(enum mem_type t, char state)
{
	__u64 huge = (is_hugetlb(t) || t == MEM_THP) ? PAGE_IS_HUGE : 0;
	__u64 cat = PAGE_IS_PRESENT | PAGE_IS_WRITTEN | huge;

	switch (state) {
	case 'W':
		return cat | (written_page_is_file(t) ? PAGE_IS_FILE : 0);
	case 'R':
		if (t == MEM_ANON || (t == MEM_THP && thp_huge_zero_page))
			cat |= PAGE_IS_PFNZERO;
		return cat | (read_page_is_file(t) ? PAGE_IS_FILE : 0);
	default:
		/* hugetlb: a none entry; THP: an empty pmd (a hole) */
		if (is_hugetlb(t))
			return PAGE_IS_HUGE;
		if (t == MEM_THP)
			return 0;
		/* a none pte in a populated page table counts as written */
		return PAGE_IS_WRITTEN;
	}
}

/*
 * Categories of a page of a VMA registered for async uffd-wp and protected
 * before it was touched. UFFDIO_WRITEPROTECT left uffd-wp markers (non-
 * present entries, so SWAPPED) in untouched pages: in THP memory in a page
 * table, so only the 4 KiB page touched is then populated.
 */
static __u64 expect_protected(enum mem_type t, char state, bool first_page_of_unit)
{
	__u64 cat = PAGE_IS_WPALLOWED | (is_hugetlb(t) ? PAGE_IS_HUGE : 0);

	if (state == 'U' || (t == MEM_THP && !first_page_of_unit))
		return cat | PAGE_IS_SWAPPED;
	cat |= PAGE_IS_PRESENT;
	if (state == 'W')
		return cat | PAGE_IS_WRITTEN | (written_page_is_file(t) ? PAGE_IS_FILE : 0);
	if (t == MEM_ANON || t == MEM_THP)
		cat |= PAGE_IS_PFNZERO;
	return cat | (read_page_is_file(t) ? PAGE_IS_FILE : 0);
}

FIXTURE(classify) {
	struct mem mem;
	int pagemap_fd;
	int uffd;
	size_t nr_units;
	size_t nr_pages;
	__u64 *cats;
	struct page_region *vec;
};

FIXTURE_VARIANT(classify) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(classify, anon) { .type = MEM_ANON };
FIXTURE_VARIANT_ADD(classify, thp) { .type = MEM_THP };
FIXTURE_VARIANT_ADD(classify, hugetlb_private) { .type = MEM_HUGETLB_PRIVATE };
FIXTURE_VARIANT_ADD(classify, hugetlb_shared) { .type = MEM_HUGETLB_SHARED };
FIXTURE_VARIANT_ADD(classify, hugetlb_memfd) { .type = MEM_HUGETLB_MEMFD };
FIXTURE_VARIANT_ADD(classify, shmem) { .type = MEM_SHMEM };
FIXTURE_VARIANT_ADD(classify, memfd) { .type = MEM_MEMFD };
FIXTURE_VARIANT_ADD(classify, file_private) { .type = MEM_FILE_PRIVATE };
FIXTURE_VARIANT_ADD(classify, file_shared) { .type = MEM_FILE_SHARED };

FIXTURE_SETUP(classify)
{
	bool huge = is_hugetlb(variant->type) || variant->type == MEM_THP;

	global_init();
	self->uffd = -1;
	self->nr_units = huge ? 6 : 40;
	ASSERT_EQ(0, mem_map(&self->mem, variant->type,
			     self->nr_units * (huge ? HPAGE_SIZE : page_size)))
		TH_LOG("mapping the memory failed: %s", strerror(errno));
	self->nr_pages = self->mem.len / page_size;
	self->pagemap_fd = open_pagemap(0);
	ASSERT_LE(0, self->pagemap_fd);
	self->cats = calloc(self->nr_pages, sizeof(*self->cats));
	self->vec = calloc(self->nr_pages, sizeof(*self->vec));
	ASSERT_TRUE(self->cats && self->vec);
}

FIXTURE_TEARDOWN(classify)
{
	mem_unmap(&self->mem);
	close(self->pagemap_fd);
	if (self->uffd >= 0)
		close(self->uffd);
	free(self->cats);
	free(self->vec);
}

static void touch_units(struct _test_data_classify *self)
{
	size_t u;

	for (u = 0; u < self->nr_units; u++) {
		char *p = self->mem.addr + u * self->mem.unit;

		if (unit_state(u) == 'W')
			write_page(p);
		else if (unit_state(u) == 'R')
			read_page(p);
	}
}

static size_t nr_units_in_state(struct _test_data_classify *self, char state)
{
	size_t u, n = 0;

	for (u = 0; u < self->nr_units; u++)
		n += unit_state(u) == state;
	return n;
}

static void expect_categories(struct _test_data_classify *self, bool wp)
{
	size_t per_unit = self->mem.unit / page_size;
	size_t i;

	for (i = 0; i < self->nr_pages; i++) {
		char state = unit_state(i / per_unit);
		__u64 cat;

		if (wp)
			cat = expect_protected(self->mem.type, state, !(i % per_unit));
		else
			cat = expect_plain(self->mem.type, state);
		/* new VMAs are VM_SOFTDIRTY: all their pages are soft-dirty */
		self->cats[i] = cat | (soft_dirty_enabled ? PAGE_IS_SOFT_DIRTY : 0);
	}
}

static __u64 next_category(__u64 b)
{
	return b == PAGE_IS_SOFT_DIRTY ? PAGE_IS_WPALLOWED : b << 1;
}

/* Requests that select, invert and return each category */
static size_t classify_requests(struct scan_req *reqs)
{
	size_t n = 0;
	__u64 b;

	reqs[n++] = (struct scan_req){ .ret = ALL_CATEGORIES };
	for (b = PAGE_IS_WPALLOWED; b <= PAGE_IS_SOFT_DIRTY; b <<= 1) {
		reqs[n++] = (struct scan_req){ .mask = b, .ret = ALL_CATEGORIES };
		reqs[n++] = (struct scan_req){ .inverted = b, .mask = b, .ret = ALL_CATEGORIES };
		reqs[n++] = (struct scan_req){ .anyof = b | next_category(b), .ret = b };
		reqs[n++] = (struct scan_req){ .inverted = b, .anyof = b, .ret = b | PAGE_IS_HUGE };
		reqs[n++] = (struct scan_req){ .mask = b, .ret = b };
	}
	reqs[n++] = (struct scan_req){
		.inverted = PAGE_IS_PFNZERO | PAGE_IS_FILE,
		.mask = PAGE_IS_PFNZERO | PAGE_IS_FILE,
		.anyof = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.ret = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_SOFT_DIRTY,
	};
	reqs[n++] = (struct scan_req){
		.mask = PAGE_IS_PRESENT,
		.anyof = PAGE_IS_FILE | PAGE_IS_PFNZERO,
		.ret = PAGE_IS_FILE | PAGE_IS_PFNZERO | PAGE_IS_HUGE,
	};
	reqs[n++] = (struct scan_req){
		.inverted = PAGE_IS_PRESENT,
		.mask = PAGE_IS_PRESENT | PAGE_IS_WRITTEN,
		.ret = ALL_CATEGORIES,
	};
	return n;
}

/*
 * Check every request over all of the memory and over a range that starts
 * and ends in the middle of a unit (a part of a huge page).
 */
static void check_classify_requests(struct __test_metadata *_metadata,
				    struct _test_data_classify *self)
{
	size_t half = self->mem.unit / page_size / 2;
	__u64 base = addr_of(self->mem.addr);
	struct scan_req reqs[64];
	size_t n, i;

	n = classify_requests(reqs);
	for (i = 0; i < n; i++) {
		EXPECT_LE(0, check_scan(_metadata, self->pagemap_fd, base, self->cats, 0,
					self->nr_pages, &reqs[i], self->vec, self->nr_pages,
					NULL));
		EXPECT_LE(0, check_scan(_metadata, self->pagemap_fd, base, self->cats,
					half + 1, self->nr_pages - half - 1, &reqs[i],
					self->vec, self->nr_pages, NULL));
	}
}

static void check_thp_allocated(struct __test_metadata *_metadata,
				struct _test_data_classify *self)
{
	size_t nr = nr_units_in_state(self, 'W');

	if (self->mem.type != MEM_THP)
		return;
	if (!thp_huge_zero_page)
		nr += nr_units_in_state(self, 'R');
	ASSERT_TRUE(thps_mapped(self->mem.addr, nr))
		TH_LOG("THPs were not allocated");
}

/* Each category, filter and merge on untouched, read and written pages */
TEST_F(classify, plain_categories_and_filters)
{
	touch_units(self);
	check_thp_allocated(_metadata, self);
	expect_categories(self, false);
	check_classify_requests(_metadata, self);
}

/*
 * The same under async uffd-wp protection, then PM_SCAN_WP_MATCHING reports
 * exactly the written pages and protects them.
 */
TEST_F(classify, protected_categories_and_filters)
{
	__u64 base = addr_of(self->mem.addr);
	size_t i;

	self->uffd = uffd_open_wp_async();
	ASSERT_LE(0, self->uffd);
	ASSERT_EQ(0, track_writes(self->uffd, self->mem.addr, self->mem.len));
	touch_units(self);
	expect_categories(self, true);
	check_classify_requests(_metadata, self);

	ASSERT_LE(1, check_scan(_metadata, self->pagemap_fd, base, self->cats, 0,
				self->nr_pages, &req_protect_written, self->vec,
				self->nr_pages, NULL));
	for (i = 0; i < self->nr_pages; i++)
		self->cats[i] &= ~PAGE_IS_WRITTEN;
	check_classify_requests(_metadata, self);
}

/* Resume at walk_end with tiny vec_len and max_pages, huge pages cut */
TEST_F(classify, resume_with_small_vec_len_and_max_pages)
{
	static const size_t limits[] = { 1, 2, 3, 7 };
	const struct scan_req reqs[] = {
		{ .ret = ALL_CATEGORIES },
		{ .mask = PAGE_IS_PRESENT,
		  .ret = PAGE_IS_PRESENT | PAGE_IS_PFNZERO | PAGE_IS_FILE | PAGE_IS_HUGE },
	};
	__u64 base = addr_of(self->mem.addr);
	bool *seen = calloc(self->nr_pages, sizeof(*seen));
	struct scan_req req;
	size_t r, l;

	ASSERT_TRUE(!!seen);
	touch_units(self);
	expect_categories(self, false);
	for (r = 0; r < ARRAY_SIZE(reqs); r++) {
		for (l = 0; l < ARRAY_SIZE(limits); l++) {
			req = reqs[r];
			memset(seen, 0, self->nr_pages * sizeof(*seen));
			ASSERT_TRUE(resume_scan(_metadata, self->pagemap_fd, base, self->cats, 0,
						self->nr_pages, &req, limits[l], seen));
			ASSERT_TRUE(seen_is_matching(_metadata, self->cats, 0, self->nr_pages,
						     &req, seen));

			req.max_pages = limits[l];
			memset(seen, 0, self->nr_pages * sizeof(*seen));
			ASSERT_TRUE(resume_scan(_metadata, self->pagemap_fd, base, self->cats, 0,
						self->nr_pages, &req, 8, seen));
			ASSERT_TRUE(seen_is_matching(_metadata, self->cats, 0, self->nr_pages,
						     &req, seen));

			memset(seen, 0, self->nr_pages * sizeof(*seen));
			ASSERT_TRUE(resume_scan(_metadata, self->pagemap_fd, base, self->cats, 0,
						self->nr_pages, &req, 2, seen));
			ASSERT_TRUE(seen_is_matching(_metadata, self->cats, 0, self->nr_pages,
						     &req, seen));
		}
	}
	free(seen);
}

/* ---------------------------------------------------------------------- */
/* Write tracking                                                          */
/* ---------------------------------------------------------------------- */

FIXTURE(wp) {
	struct mem mem;
	int pagemap_fd;
	int uffd;
	size_t unit;		/* what one write dirties */
	size_t nr_units;
	size_t nr_pages;
	bool *truth;		/* units written since they were protected */
	__u64 *cats;		/* nr_pages + 1: the page after the memory */
	uint64_t rnd;
};

FIXTURE_VARIANT(wp) {
	enum mem_type type;
	bool populate;		/* fault all of it in before protecting */
};

FIXTURE_VARIANT_ADD(wp, anon) { .type = MEM_ANON };
FIXTURE_VARIANT_ADD(wp, anon_populated) { .type = MEM_ANON, .populate = true };
/* THPs protected whole, then split by the 4 KiB writes */
FIXTURE_VARIANT_ADD(wp, thp) { .type = MEM_THP, .populate = true };
FIXTURE_VARIANT_ADD(wp, hugetlb_private) { .type = MEM_HUGETLB_PRIVATE };
FIXTURE_VARIANT_ADD(wp, hugetlb_shared) { .type = MEM_HUGETLB_SHARED };
FIXTURE_VARIANT_ADD(wp, hugetlb_memfd) { .type = MEM_HUGETLB_MEMFD };
FIXTURE_VARIANT_ADD(wp, shmem) { .type = MEM_SHMEM };
FIXTURE_VARIANT_ADD(wp, memfd) { .type = MEM_MEMFD };
FIXTURE_VARIANT_ADD(wp, file_private) { .type = MEM_FILE_PRIVATE };
FIXTURE_VARIANT_ADD(wp, file_shared) { .type = MEM_FILE_SHARED };

FIXTURE_SETUP(wp)
{
	size_t len, u;

	global_init();
	self->uffd = -1;
	if (is_hugetlb(variant->type))
		len = 6 * HPAGE_SIZE;
	else if (variant->type == MEM_THP)
		len = 2 * HPAGE_SIZE;
	else
		len = 64 * page_size;
	ASSERT_EQ(0, mem_map(&self->mem, variant->type, len))
		TH_LOG("mapping the memory failed: %s", strerror(errno));
	self->unit = is_hugetlb(variant->type) ? HPAGE_SIZE : page_size;
	self->nr_units = len / self->unit;
	self->nr_pages = len / page_size;
	if (variant->populate) {
		for (u = 0; u < self->nr_units; u++)
			write_page(self->mem.addr + u * self->unit);
		if (variant->type == MEM_THP)
			ASSERT_TRUE(thps_mapped(self->mem.addr, 2))
				TH_LOG("THPs were not allocated");
	}
	self->pagemap_fd = open_pagemap(0);
	ASSERT_LE(0, self->pagemap_fd);
	self->uffd = uffd_open_wp_async();
	ASSERT_LE(0, self->uffd)
		TH_LOG("no userfaultfd with WP_ASYNC | WP_UNPOPULATED: %s", strerror(errno));
	ASSERT_EQ(0, track_writes(self->uffd, self->mem.addr, len))
		TH_LOG("async uffd-wp of the memory failed: %s", strerror(errno));
	self->truth = calloc(self->nr_units, sizeof(*self->truth));
	self->cats = calloc(self->nr_pages + 1, sizeof(*self->cats));
	ASSERT_TRUE(self->truth && self->cats);
	self->rnd = 0x9e3779b97f4a7c15ULL + variant->type * 2 + variant->populate;
}

FIXTURE_TEARDOWN(wp)
{
	mem_unmap(&self->mem);
	close(self->pagemap_fd);
	if (self->uffd >= 0)
		close(self->uffd);
	free(self->truth);
	free(self->cats);
}

/* Pick about @percent % of the units (at least one, never all) */
static size_t pick_units(struct _test_data_wp *self, unsigned int percent, bool *picked)
{
	size_t u, n = 0;

	for (u = 0; u < self->nr_units; u++) {
		picked[u] = next_random(&self->rnd) % 100 < percent;
		n += picked[u];
	}
	if (!n) {
		picked[self->nr_units / 2] = true;
		n = 1;
	}
	if (n == self->nr_units) {
		picked[0] = false;
		n--;
	}
	return n;
}

static size_t write_random_units(struct _test_data_wp *self, unsigned int percent)
{
	bool *picked = calloc(self->nr_units, sizeof(*picked));
	size_t u, n;

	n = pick_units(self, percent, picked);
	for (u = 0; u < self->nr_units; u++) {
		if (picked[u]) {
			write_page(self->mem.addr + u * self->unit);
			self->truth[u] = true;
		}
	}
	free(picked);
	return n;
}

static void forget_writes(struct _test_data_wp *self)
{
	memset(self->truth, 0, self->nr_units * sizeof(*self->truth));
}

/* The model of the memory: WRITTEN exactly in the units written */
static void truth_to_cats(struct _test_data_wp *self)
{
	size_t per_unit = self->unit / page_size;
	size_t i;

	for (i = 0; i < self->nr_pages; i++)
		self->cats[i] = self->truth[i / per_unit] ? PAGE_IS_WRITTEN : 0;
}

/* A scan for written pages over all the memory must report exactly truth */
static long check_written(struct __test_metadata *_metadata, struct _test_data_wp *self,
			  __u64 flags)
{
	struct page_region *vec = calloc(self->nr_pages, sizeof(*vec));
	struct scan_req req = req_written;
	long ret;

	req.flags = flags;
	truth_to_cats(self);
	ret = check_scan(_metadata, self->pagemap_fd, addr_of(self->mem.addr), self->cats, 0,
			 self->nr_pages, &req, vec, self->nr_pages, NULL);
	free(vec);
	return ret;
}

/*
 * The write-tracking flow: exactly the written units are reported, and
 * protected again, so an immediate second scan reports nothing, then new
 * writes are reported. Untouched units are never reported.
 */
TEST_F(wp, written_units_reported_once)
{
	ASSERT_EQ(0, check_written(_metadata, self, 0));
	ASSERT_EQ(0, check_written(_metadata, self, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC));

	write_random_units(self, 30);
	ASSERT_LE(1, check_written(_metadata, self, 0));
	ASSERT_LE(1, check_written(_metadata, self, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC));
	forget_writes(self);
	ASSERT_EQ(0, check_written(_metadata, self, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC));

	write_random_units(self, 20);
	ASSERT_LE(1, check_written(_metadata, self, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC));
	forget_writes(self);
	ASSERT_EQ(0, check_written(_metadata, self, 0));
}

/* Reading protected memory is not writing it */
TEST_F(wp, reads_are_not_writes)
{
	size_t u;

	for (u = 0; u < self->nr_units; u++)
		read_page(self->mem.addr + u * self->unit);
	ASSERT_EQ(0, check_written(_metadata, self, 0));
	write_random_units(self, 25);
	ASSERT_LE(1, check_written(_metadata, self, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC));
	forget_writes(self);
	ASSERT_EQ(0, check_written(_metadata, self, 0));
}

/*
 * Wine's write watches: a reset is WP_MATCHING with no vec over the whole
 * area; a get is a loop with 256 regions and max_pages, resuming at walk_end
 * until it reaches the end.
 */
TEST_F(wp, wine_reset_and_get_loop)
{
	__u64 base = addr_of(self->mem.addr), end = base + self->mem.len;
	struct scan_req reset = req_written, get = req_protect_written;
	bool *seen = calloc(self->nr_pages, sizeof(*seen));
	__u64 walk_end;

	ASSERT_TRUE(!!seen);
	write_random_units(self, 40);
	reset.flags = PM_SCAN_WP_MATCHING;
	ASSERT_EQ(0, pagemap_scan(self->pagemap_fd, base, end, NULL, 0, &reset, &walk_end));
	ASSERT_EQ(end, walk_end);
	forget_writes(self);
	ASSERT_EQ(0, check_written(_metadata, self, 0));

	write_random_units(self, 40);
	truth_to_cats(self);
	get.max_pages = 5 * self->unit / page_size;
	ASSERT_TRUE(resume_scan(_metadata, self->pagemap_fd, base, self->cats, 0,
				self->nr_pages, &get, 256, seen));
	ASSERT_TRUE(seen_is_matching(_metadata, self->cats, 0, self->nr_pages, &req_written,
				     seen));
	forget_writes(self);
	ASSERT_EQ(0, check_written(_metadata, self, 0));
	free(seen);
}

static void check_resumed_scans(struct __test_metadata *_metadata, struct _test_data_wp *self,
				const struct scan_req *req, size_t vec_len)
{
	bool *seen = calloc(self->nr_pages, sizeof(*seen));

	ASSERT_TRUE(!!seen);
	truth_to_cats(self);
	ASSERT_TRUE(resume_scan(_metadata, self->pagemap_fd, addr_of(self->mem.addr),
				self->cats, 0, self->nr_pages, req, vec_len, seen));
	ASSERT_TRUE(seen_is_matching(_metadata, self->cats, 0, self->nr_pages, req, seen));
	free(seen);
}

/* Resume loops with vec_len 1, 2, 3 and 7 find exactly the written units */
TEST_F(wp, resume_with_small_vec_len)
{
	static const size_t lens[] = { 1, 2, 3, 7 };
	struct scan_req req = req_written;
	size_t i;

	write_random_units(self, 35);
	for (i = 0; i < ARRAY_SIZE(lens); i++)
		check_resumed_scans(_metadata, self, &req, lens[i]);
	req.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
	check_resumed_scans(_metadata, self, &req, 3);
	forget_writes(self);
	ASSERT_EQ(0, check_written(_metadata, self, 0));
}

/* Resume loops with max_pages of 1, 2, 3 and 7 units */
TEST_F(wp, resume_with_small_max_pages)
{
	static const size_t units[] = { 1, 2, 3, 7 };
	struct scan_req req = req_written;
	size_t i;

	write_random_units(self, 35);
	for (i = 0; i < ARRAY_SIZE(units); i++) {
		req.max_pages = units[i] * self->unit / page_size;
		check_resumed_scans(_metadata, self, &req, 64);
	}
	req.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
	req.max_pages = 2 * self->unit / page_size;
	check_resumed_scans(_metadata, self, &req, 2);
	forget_writes(self);
	ASSERT_EQ(0, check_written(_metadata, self, 0));
}

/*
 * A written page in a VMA that is not async-WP, just after the memory:
 * PM_SCAN_CHECK_WPASYNC refuses the range with EPERM, PM_SCAN_WP_MATCHING
 * alone skips that VMA (neither reported nor protected).
 */
TEST_F(wp, non_wp_neighbour_vma)
{
	size_t vec_len = self->nr_pages + 1;
	struct page_region *vec = calloc(vec_len, sizeof(*vec));
	char *next = self->mem.addr + self->mem.len;
	__u64 base = addr_of(self->mem.addr);
	struct scan_req req = req_written;
	__u64 walk_end;

	ASSERT_TRUE(!!vec);
	ASSERT_TRUE(mmap(next, page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == next);
	write_page(next);
	write_random_units(self, 30);

	req.flags = PM_SCAN_CHECK_WPASYNC;
	ASSERT_EQ(-1, pagemap_scan(self->pagemap_fd, base, addr_of(next) + page_size, vec,
				   vec_len, &req, &walk_end));
	ASSERT_EQ(EPERM, errno);

	/* The neighbour is skipped: for the model it does not match */
	truth_to_cats(self);
	self->cats[self->nr_pages] = 0;
	req.flags = PM_SCAN_WP_MATCHING;
	ASSERT_LE(1, check_scan(_metadata, self->pagemap_fd, base, self->cats, 0,
				self->nr_pages + 1, &req, vec, vec_len, NULL));

	forget_writes(self);
	truth_to_cats(self);
	self->cats[self->nr_pages] = PAGE_IS_WRITTEN;
	ASSERT_EQ(1, check_scan(_metadata, self->pagemap_fd, base, self->cats, 0,
				self->nr_pages + 1, &req_written, vec, vec_len, NULL));
	free(vec);
}

/* A source file whose first page is 0x5a bytes */
static int open_source_file(void)
{
	char *buf = malloc(page_size);
	int fd = open_regular_file(page_size);

	if (fd < 0 || !buf)
		return -1;
	memset(buf, 0x5a, page_size);
	if (pwrite(fd, buf, page_size, 0) != (ssize_t)page_size) {
		close(fd);
		fd = -1;
	}
	free(buf);
	return fd;
}

/* read(2) into protected memory: the kernel's write is tracked */
TEST_F(wp, read_syscall_writes_are_tracked)
{
	bool *picked = calloc(self->nr_units, sizeof(*picked));
	int src = open_source_file();
	size_t u;

	ASSERT_LE(0, src);
	ASSERT_TRUE(!!picked);
	pick_units(self, 15, picked);
	for (u = 0; u < self->nr_units; u++) {
		char *p = self->mem.addr + u * self->unit;

		if (!picked[u])
			continue;
		ASSERT_EQ((ssize_t)page_size, pread(src, p, page_size, 0));
		ASSERT_EQ(0x5a, p[page_size - 1]);
		self->truth[u] = true;
	}
	ASSERT_LE(1, check_written(_metadata, self, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC));
	close(src);
	free(picked);
}

#ifndef PAGEMAP_IOCTL_NO_IO_URING
/* An io_uring read into protected memory: the kernel's write is tracked */
TEST_F(wp, io_uring_writes_are_tracked)
{
	bool *picked = calloc(self->nr_units, sizeof(*picked));
	int src = open_source_file();
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	size_t u;

	ASSERT_LE(0, src);
	ASSERT_TRUE(!!picked);
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	pick_units(self, 15, picked);
	for (u = 0; u < self->nr_units; u++) {
		char *p = self->mem.addr + u * self->unit;

		if (!picked[u])
			continue;
		sqe = io_uring_get_sqe(&ring);
		ASSERT_TRUE(!!sqe);
		io_uring_prep_read(sqe, src, p, page_size, 0);
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		ASSERT_EQ((int)page_size, cqe->res);
		io_uring_cqe_seen(&ring, cqe);
		ASSERT_EQ(0x5a, p[page_size - 1]);
		self->truth[u] = true;
	}
	io_uring_queue_exit(&ring);
	ASSERT_LE(1, check_written(_metadata, self, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC));
	close(src);
	free(picked);
}
#endif

/* ---------------------------------------------------------------------- */
/* Writers racing with the scanner                                         */
/* ---------------------------------------------------------------------- */

#define HAMMER_PAGES		4096	/* at most, 16 MiB */
#define HAMMER_SECONDS		2	/* at least, and HAMMER_MIN_SCANS */
#define HAMMER_MIN_SCANS	10
#define HAMMER_MAX_SECONDS	60	/* a loaded machine: give up on the minimum */

FIXTURE(hammer) {
	struct mem mem;
	size_t pages;
	int pagemap_fd;
	int uffd;
	/*
	 * A writer adds 1 to started[p], writes page p, then adds 1 to
	 * done[p], all sequentially consistent. So at any time done[p] is at
	 * most the number of writes to p that are over, and started[p] at
	 * least the number of writes to p that began.
	 */
	unsigned int started[HAMMER_PAGES];
	unsigned int done[HAMMER_PAGES];
	int stop;
};

FIXTURE_VARIANT(hammer) {
	enum mem_type type;
	size_t pages;
	/*
	 * Each writer bound to a CPU of its own: every CPU then holds TLB
	 * entries of the range while scans protect it, and a scan's TLB
	 * flush must reach them all before it reports anything.
	 */
	bool on_every_cpu;
};

FIXTURE_VARIANT_ADD(hammer, anon) { .type = MEM_ANON, .pages = 256 };
FIXTURE_VARIANT_ADD(hammer, shmem) { .type = MEM_SHMEM, .pages = 256 };
/* Many page tables a walk, and more regions than one kernel buffer holds */
FIXTURE_VARIANT_ADD(hammer, anon_16m_every_cpu) {
	.type = MEM_ANON, .pages = 4096, .on_every_cpu = true,
};

FIXTURE_VARIANT_ADD(hammer, thp_16m_every_cpu) {
	.type = MEM_THP, .pages = 4096, .on_every_cpu = true,
};

FIXTURE_VARIANT_ADD(hammer, shmem_16m_every_cpu) {
	.type = MEM_SHMEM, .pages = 4096, .on_every_cpu = true,
};

FIXTURE_SETUP(hammer)
{
	global_init();
	self->uffd = -1;
	self->pages = variant->pages;
	ASSERT_GE(HAMMER_PAGES, self->pages);
	ASSERT_EQ(0, mem_map(&self->mem, variant->type, self->pages * page_size));
	self->pagemap_fd = open_pagemap(0);
	ASSERT_LE(0, self->pagemap_fd);
	self->uffd = uffd_open_wp_async();
	ASSERT_LE(0, self->uffd);
	ASSERT_EQ(0, track_writes(self->uffd, self->mem.addr, self->mem.len));
}

FIXTURE_TEARDOWN(hammer)
{
	mem_unmap(&self->mem);
	close(self->pagemap_fd);
	if (self->uffd >= 0)
		close(self->uffd);
}

struct hammer_writer {
	struct _test_data_hammer *self;
	uint64_t rnd;
	unsigned long writes;
	int cpu;		/* bound to it, or -1 */
	int bind_err;		/* errno of binding, or 0 */
};

static void *hammer_write(void *arg)
{
	struct hammer_writer *w = arg;
	struct _test_data_hammer *self = w->self;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		w->bind_err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	while (!__atomic_load_n(&self->stop, __ATOMIC_SEQ_CST)) {
		size_t p = next_random(&w->rnd) % self->pages;
		unsigned int *word = (unsigned int *)(self->mem.addr + p * page_size);

		__atomic_fetch_add(&self->started[p], 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(word, 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&self->done[p], 1, __ATOMIC_SEQ_CST);
		w->writes++;
	}
	return NULL;
}

static void snapshot(unsigned int *dst, unsigned int *src, size_t pages)
{
	size_t p;

	for (p = 0; p < pages; p++)
		dst[p] = __atomic_load_n(&src[p], __ATOMIC_SEQ_CST);
}

/* Counter snapshots around scan k (this one) and the two before it */
struct hammer_scan {
	unsigned int done_at_start[HAMMER_PAGES];	/* when scan k began */
	unsigned int started_at_end[HAMMER_PAGES];	/* when scan k ended */
	unsigned int started_end_1[HAMMER_PAGES];	/* when scan k - 1 ended */
	unsigned int started_end_2[HAMMER_PAGES];	/* when scan k - 2 ended */
	unsigned int done_at_protect[HAMMER_PAGES];	/* when the scan that last
							 * protected the page began
							 */
	bool reported[HAMMER_PAGES];			/* by scan k */
	bool reported_1[HAMMER_PAGES];			/* by scan k - 1 */
	struct page_region vec[HAMMER_PAGES];
};

/*
 * One WP_MATCHING scan k, checked both ways:
 * - a reported page must have been written after the scan that protected it
 *   last had started: some write to it began before scan k ended and had
 *   not completed when that scan began (started_at_end > done_at_protect);
 * - a write that began after scan k - 1 ended and completed before scan k
 *   began (done_at_start > started_end_1) must be reported by scan k;
 * - a write that began after scan k - 2 ended and completed before scan k
 *   began (done_at_start > started_end_2), so one that may have overlapped
 *   scan k - 1, must be reported by scan k - 1 or by scan k.
 */
static bool hammer_scan_once(struct __test_metadata *_metadata, struct _test_data_hammer *self,
			     struct hammer_scan *s)
{
	__u64 base = addr_of(self->mem.addr), end = base + self->mem.len, walk_end;
	long n;
	size_t p;

	memset(s->reported, 0, sizeof(s->reported));
	snapshot(s->done_at_start, self->done, self->pages);
	n = pagemap_scan(self->pagemap_fd, base, end, s->vec, self->pages,
			 &req_protect_written, &walk_end);
	snapshot(s->started_at_end, self->started, self->pages);
	if (n < 0 || walk_end != end ||
	    !mark_regions(s->vec, n, base, self->pages, s->reported)) {
		TH_LOG("scan returned %ld (errno %d), walk_end page %lld", n, errno,
		       page_index(walk_end, base));
		return false;
	}
	for (p = 0; p < self->pages; p++) {
		if (s->reported[p]) {
			if (s->started_at_end[p] <= s->done_at_protect[p]) {
				TH_LOG("page %zu reported but not written since protected", p);
				return false;
			}
			s->done_at_protect[p] = s->done_at_start[p];
		} else if (s->done_at_start[p] > s->started_end_1[p]) {
			TH_LOG("page %zu written between two scans but not reported", p);
			return false;
		} else if (s->done_at_start[p] > s->started_end_2[p] && !s->reported_1[p]) {
			TH_LOG("page %zu written during a scan but reported by neither", p);
			return false;
		}
	}
	memcpy(s->started_end_2, s->started_end_1, sizeof(s->started_end_1));
	memcpy(s->started_end_1, s->started_at_end, sizeof(s->started_at_end));
	memcpy(s->reported_1, s->reported, sizeof(s->reported));
	return true;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Two threads write random pages while the main thread tracks them */
TEST_F_TIMEOUT(hammer, no_write_is_lost, 120)
{
	struct hammer_scan *s = calloc(1, sizeof(*s));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct hammer_writer w[2];
	pthread_t threads[2];
	unsigned long scans = 0;
	struct timespec t0;
	bool ok = true;
	int i;

	ASSERT_TRUE(!!s);
	if (variant->on_every_cpu)
		ASSERT_LE(2, cpus) TH_LOG("needs 2 CPUs, has %ld", cpus);
	for (i = 0; i < 2; i++) {
		w[i] = (struct hammer_writer){
			.self = self, .rnd = 0x1234567ULL * (i + 1),
			.cpu = variant->on_every_cpu ? i : -1,
		};
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, hammer_write, &w[i]));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/*
	 * Bounded by time and by a minimum of scans: on a loaded machine two
	 * seconds can hold fewer scans than make the race worth testing.
	 */
	while (ok && seconds_since(&t0) < HAMMER_MAX_SECONDS &&
	       (seconds_since(&t0) < HAMMER_SECONDS || scans < HAMMER_MIN_SCANS)) {
		ok = hammer_scan_once(_metadata, self, s);
		scans++;
	}
	__atomic_store_n(&self->stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < 2; i++) {
		pthread_join(threads[i], NULL);
		ASSERT_EQ(0, w[i].bind_err);
	}
	ASSERT_TRUE(ok);
	/* the writers are gone: this scan must report every last write */
	ASSERT_TRUE(hammer_scan_once(_metadata, self, s));
	ASSERT_EQ(0, pagemap_scan(self->pagemap_fd, addr_of(self->mem.addr),
				  addr_of(self->mem.addr) + self->mem.len, s->vec, self->pages,
				  &req_written, NULL));
	TH_LOG("%lu scans, %lu + %lu writes", scans, w[0].writes, w[1].writes);
	ASSERT_LE(HAMMER_MIN_SCANS, scans);
	ASSERT_LE(1000, w[0].writes + w[1].writes);
	free(s);
}

/* ---------------------------------------------------------------------- */
/* Transparent huge pages                                                  */
/* ---------------------------------------------------------------------- */

FIXTURE(thp) {
	struct mem mem;
	int pagemap_fd;
	int uffd;
	size_t nr_pages;
	__u64 *cats;
	struct page_region vec[64];
};

/* Two written THPs, registered for async uffd-wp but not protected */
FIXTURE_SETUP(thp)
{
	global_init();
	self->uffd = -1;
	ASSERT_EQ(0, mem_map(&self->mem, MEM_THP, 2 * HPAGE_SIZE));
	write_page(self->mem.addr);
	write_page(self->mem.addr + HPAGE_SIZE);
	ASSERT_TRUE(thps_mapped(self->mem.addr, 2))
		TH_LOG("THPs were not allocated");
	self->nr_pages = self->mem.len / page_size;
	self->pagemap_fd = open_pagemap(0);
	ASSERT_LE(0, self->pagemap_fd);
	self->uffd = uffd_open_wp_async();
	ASSERT_LE(0, self->uffd);
	ASSERT_EQ(0, uffd_register_wp(self->uffd, self->mem.addr, self->mem.len));
	self->cats = calloc(self->nr_pages, sizeof(*self->cats));
	ASSERT_TRUE(!!self->cats);
}

FIXTURE_TEARDOWN(thp)
{
	mem_unmap(&self->mem);
	close(self->pagemap_fd);
	if (self->uffd >= 0)
		close(self->uffd);
	free(self->cats);
}

static void set_cats(__u64 *cats, size_t first, size_t last, __u64 cat)
{
	size_t i;

	for (i = first; i < last; i++)
		cats[i] = cat;
}

static long thp_check(struct __test_metadata *_metadata, struct _test_data_thp *self,
		      size_t first, size_t last, const struct scan_req *req, __u64 *walk_end)
{
	return check_scan(_metadata, self->pagemap_fd, addr_of(self->mem.addr), self->cats,
			  first, last, req, self->vec, 64, walk_end);
}

static const struct scan_req req_thp_state = {
	.ret = PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_HUGE,
};

/*
 * WP_MATCHING over the second half of THP 0 and the first half of THP 1
 * splits both and protects only the covered pages.
 */
TEST_F(thp, partial_wp_matching_splits_and_protects_covered_part)
{
	size_t half = HPAGE_SIZE / page_size / 2, n = self->nr_pages;
	__u64 any = PAGE_IS_WPALLOWED | PAGE_IS_PRESENT;

	set_cats(self->cats, 0, n, any | PAGE_IS_WRITTEN | PAGE_IS_HUGE);
	ASSERT_EQ(1, thp_check(_metadata, self, 0, n, &req_thp_state, NULL));
	ASSERT_EQ(1, thp_check(_metadata, self, half, 3 * half, &req_protect_written, NULL));

	set_cats(self->cats, 0, n, any | PAGE_IS_WRITTEN);
	set_cats(self->cats, half, 3 * half, any);
	ASSERT_EQ(3, thp_check(_metadata, self, 0, n, &req_thp_state, NULL));

	write_page(self->mem.addr + 2 * half * page_size + page_size);
	self->cats[2 * half + 1] |= PAGE_IS_WRITTEN;
	ASSERT_EQ(1, thp_check(_metadata, self, half, 3 * half, &req_protect_written, NULL));
}

/* WP_MATCHING over whole THPs keeps them PMD-mapped; a write splits one */
TEST_F(thp, full_wp_matching_keeps_thp_mapped)
{
	size_t hp = HPAGE_SIZE / page_size, n = self->nr_pages;
	__u64 any = PAGE_IS_WPALLOWED | PAGE_IS_PRESENT;

	set_cats(self->cats, 0, n, any | PAGE_IS_WRITTEN | PAGE_IS_HUGE);
	ASSERT_EQ(1, thp_check(_metadata, self, 0, n, &req_protect_written, NULL));
	set_cats(self->cats, 0, n, any | PAGE_IS_HUGE);
	ASSERT_EQ(1, thp_check(_metadata, self, 0, n, &req_thp_state, NULL));
	ASSERT_TRUE(thps_mapped(self->mem.addr, 2));

	write_page(self->mem.addr + 3 * page_size);
	set_cats(self->cats, 0, hp, any);
	self->cats[3] |= PAGE_IS_WRITTEN;
	ASSERT_EQ(4, thp_check(_metadata, self, 0, n, &req_thp_state, NULL));
	ASSERT_EQ(1, thp_check(_metadata, self, 0, n, &req_protect_written, NULL));
}

/*
 * max_pages ending inside a THP cuts the region there; with WP_MATCHING the
 * THP is split and only the reported pages are protected.
 */
TEST_F(thp, max_pages_cut_inside_thp)
{
	struct scan_req req = { .mask = PAGE_IS_PRESENT, .ret = PAGE_IS_PRESENT | PAGE_IS_HUGE };
	__u64 base = addr_of(self->mem.addr), walk_end;
	size_t n = self->nr_pages;
	__u64 any = PAGE_IS_WPALLOWED | PAGE_IS_PRESENT;

	set_cats(self->cats, 0, n, any | PAGE_IS_WRITTEN | PAGE_IS_HUGE);
	req.max_pages = 100;
	ASSERT_EQ(1, thp_check(_metadata, self, 0, n, &req, &walk_end));
	ASSERT_EQ(base + 100 * page_size, walk_end);
	req.max_pages = 600;
	ASSERT_EQ(1, thp_check(_metadata, self, 100, n, &req, &walk_end));
	ASSERT_EQ(base + 700 * page_size, walk_end);
	req.max_pages = 0;
	ASSERT_EQ(1, thp_check(_metadata, self, 700, n, &req, &walk_end));
	ASSERT_EQ(base + self->mem.len, walk_end);

	req = req_protect_written;
	req.max_pages = 100;
	ASSERT_EQ(1, thp_check(_metadata, self, 0, n, &req, &walk_end));
	set_cats(self->cats, 0, HPAGE_SIZE / page_size, any | PAGE_IS_WRITTEN);
	set_cats(self->cats, 0, 100, any);
	ASSERT_EQ(3, thp_check(_metadata, self, 0, n, &req_thp_state, NULL));
}

/* ---------------------------------------------------------------------- */
/* HugeTLB pages only partly inside the range                              */
/* ---------------------------------------------------------------------- */

FIXTURE(hugetlb) {
	struct mem mem;
	int pagemap_fd;
	int uffd;
	size_t hp;		/* pages in a huge page */
	__u64 *cats;
	struct page_region vec[16];
};

FIXTURE_VARIANT(hugetlb) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(hugetlb, private) { .type = MEM_HUGETLB_PRIVATE };
FIXTURE_VARIANT_ADD(hugetlb, shared) { .type = MEM_HUGETLB_SHARED };
FIXTURE_VARIANT_ADD(hugetlb, memfd) { .type = MEM_HUGETLB_MEMFD };

/* Four huge pages, protected, then all written */
FIXTURE_SETUP(hugetlb)
{
	int i;

	global_init();
	self->uffd = -1;
	ASSERT_EQ(0, mem_map(&self->mem, variant->type, 4 * HPAGE_SIZE))
		TH_LOG("mapping hugetlb failed: %s", strerror(errno));
	self->hp = HPAGE_SIZE / page_size;
	self->pagemap_fd = open_pagemap(0);
	ASSERT_LE(0, self->pagemap_fd);
	self->uffd = uffd_open_wp_async();
	ASSERT_LE(0, self->uffd);
	ASSERT_EQ(0, track_writes(self->uffd, self->mem.addr, self->mem.len));
	for (i = 0; i < 4; i++)
		write_page(self->mem.addr + i * HPAGE_SIZE);
	self->cats = calloc(4 * self->hp, sizeof(*self->cats));
	ASSERT_TRUE(!!self->cats);
	set_cats(self->cats, 0, 4 * self->hp, PAGE_IS_WRITTEN);
}

FIXTURE_TEARDOWN(hugetlb)
{
	mem_unmap(&self->mem);
	close(self->pagemap_fd);
	if (self->uffd >= 0)
		close(self->uffd);
	free(self->cats);
}

static long hugetlb_scan(struct _test_data_hugetlb *self, __u64 first, __u64 last,
			 const struct scan_req *req, __u64 *walk_end)
{
	__u64 base = addr_of(self->mem.addr);

	return pagemap_scan(self->pagemap_fd, base + first * page_size, base + last * page_size,
			    self->vec, 16, req, walk_end);
}

static bool huge_pages_written(struct __test_metadata *_metadata,
			       struct _test_data_hugetlb *self)
{
	return check_scan(_metadata, self->pagemap_fd, addr_of(self->mem.addr), self->cats, 0,
			  4 * self->hp, &req_written, self->vec, 16, NULL) >= 0;
}

/* The regions a scan of huge pages @first to @last reported, one by one */
static void expect_region(struct __test_metadata *_metadata, struct _test_data_hugetlb *self,
			  int i, size_t first, size_t last)
{
	__u64 base = addr_of(self->mem.addr);

	EXPECT_EQ(base + first * page_size, self->vec[i].start)
		TH_LOG("region %d starts at page %lld", i, page_index(self->vec[i].start, base));
	EXPECT_EQ(base + last * page_size, self->vec[i].end)
		TH_LOG("region %d ends at page %lld", i, page_index(self->vec[i].end, base));
	EXPECT_EQ(PAGE_IS_WRITTEN, self->vec[i].categories);
}

/*
 * WP_MATCHING over a range that ends in the middle of huge page 2: pages 0
 * and 1 are reported and protected; the covered half of page 2 is reported
 * too, as it is written, but a huge page cannot be protected in part, so it
 * stays written and the next scan reports it again. The walk completes.
 * (Upstream backs the half page out of the report and stops before it.)
 */
TEST_F(hugetlb, wp_matching_range_ending_mid_huge_page)
{
	__u64 base = addr_of(self->mem.addr), walk_end;
	size_t hp = self->hp;

	ASSERT_EQ(1, hugetlb_scan(self, 0, 2 * hp + hp / 2, &req_protect_written, &walk_end));
	expect_region(_metadata, self, 0, 0, 2 * hp + hp / 2);
	ASSERT_EQ(base + 2 * HPAGE_SIZE + hp / 2 * page_size, walk_end);
	set_cats(self->cats, 0, 2 * hp, 0);
	ASSERT_TRUE(huge_pages_written(_metadata, self));

	ASSERT_EQ(1, hugetlb_scan(self, 2 * hp, 2 * hp + hp / 2, &req_protect_written,
				  &walk_end));
	expect_region(_metadata, self, 0, 2 * hp, 2 * hp + hp / 2);
	ASSERT_EQ(base + 2 * HPAGE_SIZE + hp / 2 * page_size, walk_end);
	ASSERT_TRUE(huge_pages_written(_metadata, self));
}

/*
 * The start case: a range that starts in the middle of huge page 0 reports
 * its covered part, unprotected, and goes on to protect pages 1 and 2.
 */
TEST_F(hugetlb, wp_matching_range_starting_mid_huge_page)
{
	__u64 base = addr_of(self->mem.addr), walk_end;
	size_t hp = self->hp;

	ASSERT_EQ(1, hugetlb_scan(self, hp / 2, 3 * hp, &req_protect_written, &walk_end));
	expect_region(_metadata, self, 0, hp / 2, 3 * hp);
	ASSERT_EQ(base + 3 * HPAGE_SIZE, walk_end);
	set_cats(self->cats, hp, 3 * hp, 0);
	ASSERT_TRUE(huge_pages_written(_metadata, self));
}

/*
 * Without a vec, as in a reset: the whole pages are protected, the partial
 * one is not, and the walk completes. Guest only: this path may dereference
 * the missing bounce buffer in kernels without the fix.
 */
TEST_F(hugetlb, wp_matching_no_vec_range_ending_mid_huge_page)
{
	__u64 base = addr_of(self->mem.addr), walk_end;
	struct scan_req req = req_written;
	size_t hp = self->hp;

	ASSERT_TRUE(in_guest()) TH_LOG("needs the guest");
	req.flags = PM_SCAN_WP_MATCHING;
	ASSERT_EQ(0, pagemap_scan(self->pagemap_fd, base, base + (2 * hp + hp / 2) * page_size,
				  NULL, 0, &req, &walk_end));
	ASSERT_EQ(base + (2 * hp + hp / 2) * page_size, walk_end);
	set_cats(self->cats, 0, 2 * hp, 0);
	ASSERT_TRUE(huge_pages_written(_metadata, self));
}

/*
 * With WP_MATCHING, a written huge page that what is left of max_pages
 * cannot take whole ends the call before it, walk_end pointing to it, so
 * that the next call protects it: never a written page skipped in silence.
 * (Upstream skips it and goes on.)
 */
TEST_F(hugetlb, wp_matching_max_pages_stops_before_huge_page)
{
	struct scan_req req = req_protect_written;
	__u64 base = addr_of(self->mem.addr), walk_end;
	size_t hp = self->hp;

	req.max_pages = hp + 100;
	ASSERT_EQ(1, hugetlb_scan(self, 0, 4 * hp, &req, &walk_end));
	expect_region(_metadata, self, 0, 0, hp);
	ASSERT_EQ(base + HPAGE_SIZE, walk_end);
	set_cats(self->cats, 0, hp, 0);
	ASSERT_TRUE(huge_pages_written(_metadata, self));

	req.max_pages = hp;
	ASSERT_EQ(1, hugetlb_scan(self, 1 * hp, 4 * hp, &req, &walk_end));
	expect_region(_metadata, self, 0, hp, 2 * hp);
	ASSERT_EQ(base + 2 * HPAGE_SIZE, walk_end);
	set_cats(self->cats, hp, 2 * hp, 0);
	ASSERT_TRUE(huge_pages_written(_metadata, self));
}

/*
 * A max_pages smaller than a huge page can never protect one: the first
 * such page of a call is reported as far as max_pages goes, unprotected,
 * so that a client looping while walk_end < end gets through the range,
 * sees every written page and never stalls.
 */
TEST_F(hugetlb, wp_matching_small_max_pages_loop_progresses)
{
	struct scan_req req = req_protect_written;
	__u64 base = addr_of(self->mem.addr), end = base + 4 * HPAGE_SIZE;
	__u64 walk_end = base, reported = 0;
	size_t hp = self->hp, calls = 0;
	long n;

	req.max_pages = 100;
	while (walk_end < end) {
		n = pagemap_scan(self->pagemap_fd, walk_end, end, self->vec, 16, &req,
				 &walk_end);
		ASSERT_EQ(1, n) TH_LOG("call %zu returned %ld", calls, n);
		ASSERT_EQ(self->vec[0].start, base + reported * page_size)
			TH_LOG("call %zu skipped pages", calls);
		reported += (self->vec[0].end - self->vec[0].start) / page_size;
		ASSERT_EQ(self->vec[0].end, walk_end);
		ASSERT_GT(4 * hp / 50, ++calls) TH_LOG("the loop does not progress");
	}
	ASSERT_EQ(4 * hp, reported);
	/* Nothing was protected: all of it is still written */
	ASSERT_TRUE(huge_pages_written(_metadata, self));
}

/* Without WP_MATCHING, max_pages may cut a huge page; resuming there works */
TEST_F(hugetlb, max_pages_cut_inside_huge_page)
{
	struct scan_req req = req_written;
	__u64 base = addr_of(self->mem.addr), walk_end;
	size_t hp = self->hp;

	req.max_pages = 100;
	ASSERT_EQ(1, check_scan(_metadata, self->pagemap_fd, base, self->cats, 0, 4 * hp, &req,
				self->vec, 16, &walk_end));
	ASSERT_EQ(base + 100 * page_size, walk_end);
	req.max_pages = hp;
	ASSERT_EQ(1, check_scan(_metadata, self->pagemap_fd, base, self->cats, 100, 4 * hp, &req,
				self->vec, 16, &walk_end));
	ASSERT_EQ(base + (100 + hp) * page_size, walk_end);
	req.max_pages = 0;
	ASSERT_EQ(1, check_scan(_metadata, self->pagemap_fd, base, self->cats, 100 + hp, 4 * hp,
				&req, self->vec, 16, &walk_end));
	ASSERT_EQ(base + 4 * HPAGE_SIZE, walk_end);
}

/* ---------------------------------------------------------------------- */
/* Arguments, errors and everything else                                   */
/* ---------------------------------------------------------------------- */

#define AREA_PAGES	16

FIXTURE(pagemap) {
	int fd;
	struct mem mem;
	char *area;		/* AREA_PAGES private anonymous pages, page 0 written */
	size_t len;
	struct page_region vec[8];
};

FIXTURE_SETUP(pagemap)
{
	global_init();
	self->fd = open_pagemap(0);
	ASSERT_LE(0, self->fd);
	self->len = AREA_PAGES * page_size;
	ASSERT_EQ(0, mem_map(&self->mem, MEM_ANON, self->len));
	self->area = self->mem.addr;
	write_page(self->area);
}

FIXTURE_TEARDOWN(pagemap)
{
	mem_unmap(&self->mem);
	close(self->fd);
}

/* A valid request over the area, with walk_end pre-filled with CANARY */
static void valid_arg(struct _test_data_pagemap *self, struct pm_scan_arg *arg)
{
	memset(arg, 0, sizeof(*arg));
	arg->size = sizeof(*arg);
	arg->start = addr_of(self->area);
	arg->end = arg->start + self->len;
	arg->walk_end = CANARY;
	arg->vec = addr_of(self->vec);
	arg->vec_len = 8;
	arg->return_mask = ALL_CATEGORIES;
}

/* The ioctl must fail with @err and leave walk_end alone */
static bool scan_fails(struct __test_metadata *_metadata, int fd, struct pm_scan_arg *arg,
		       int err, const char *what)
{
	long ret;
	int e;

	errno = 0;
	ret = ioctl(fd, PAGEMAP_SCAN, arg);
	e = errno;
	if (ret == -1 && e == err && arg->walk_end == CANARY)
		return true;
	TH_LOG("%s: returned %ld errno %d (%s), expected errno %d (%s); walk_end %s", what,
	       ret, e, strerror(e), err, strerror(err),
	       arg->walk_end == CANARY ? "untouched" : "written");
	return false;
}

static void check_anon_area(struct __test_metadata *_metadata, struct _test_data_pagemap *self,
			    char *area, const __u64 *cats, size_t nr_pages,
			    const struct scan_req *req)
{
	struct page_region vec[32];

	ASSERT_LE(0, check_scan(_metadata, self->fd, addr_of(area), cats, 0, nr_pages, req,
				vec, 32, NULL));
}

/* The ABI is upstream's, on 64-bit and 32-bit */
TEST_F(pagemap, abi_sizes_and_numbers)
{
	ASSERT_EQ(96, sizeof(struct pm_scan_arg));
	ASSERT_EQ(24, sizeof(struct page_region));
	ASSERT_EQ(0xc0606610, PAGEMAP_SCAN);
	ASSERT_EQ(1, PM_SCAN_WP_MATCHING);
	ASSERT_EQ(2, PM_SCAN_CHECK_WPASYNC);
	ASSERT_EQ(0x01, PAGE_IS_WPALLOWED);
	ASSERT_EQ(0x02, PAGE_IS_WRITTEN);
	ASSERT_EQ(0x04, PAGE_IS_FILE);
	ASSERT_EQ(0x08, PAGE_IS_PRESENT);
	ASSERT_EQ(0x10, PAGE_IS_SWAPPED);
	ASSERT_EQ(0x20, PAGE_IS_PFNZERO);
	ASSERT_EQ(0x40, PAGE_IS_HUGE);
	ASSERT_EQ(0x80, PAGE_IS_SOFT_DIRTY);
	ASSERT_EQ(1 << 13, UFFD_FEATURE_WP_UNPOPULATED);
	ASSERT_EQ(1 << 15, UFFD_FEATURE_WP_ASYNC);
}

/* How CRIU and Wine find out whether the kernel has the ioctl */
TEST_F(pagemap, feature_probe)
{
	struct pm_scan_arg arg = { .size = sizeof(arg), .walk_end = CANARY };

	arg.flags = 1 << 2;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "unknown flag"));
	arg.flags = 0;
	arg.category_mask = 1 << 9;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "unknown category"));
	arg.category_mask = 0;
	ASSERT_EQ(0, ioctl(self->fd, PAGEMAP_SCAN, &arg));
	ASSERT_EQ(0, arg.walk_end);
}

/* Other command numbers fail with EINVAL, even with a valid argument */
TEST_F(pagemap, other_ioctl_numbers_einval)
{
	const unsigned long cmds[] = {
		_IO('f', 17),
		_IOWR('f', 15, struct pm_scan_arg),
		_IOWR('f', 16, struct page_region),
		_IOR('f', 16, struct pm_scan_arg),
		_IOW('f', 16, struct pm_scan_arg),
		_IOWR('g', 16, struct pm_scan_arg),
		_IOWR('f', 16, char[104]),
		0x1234,
	};
	struct pm_scan_arg arg;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		valid_arg(self, &arg);
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], &arg))
			TH_LOG("command %#lx", cmds[i]);
		EXPECT_EQ(EINVAL, errno)
			TH_LOG("command %#lx", cmds[i]);
		EXPECT_EQ(CANARY, arg.walk_end);
	}
}

TEST_F(pagemap, unreadable_arg_efault)
{
	char *p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct pm_scan_arg arg, *edge;

	ASSERT_TRUE(p != MAP_FAILED);
	errno = 0;
	ASSERT_EQ(-1, ioctl(self->fd, PAGEMAP_SCAN, NULL));
	ASSERT_EQ(EFAULT, errno);

	/* the last 8 bytes (return_mask) are in a PROT_NONE page */
	valid_arg(self, &arg);
	edge = (struct pm_scan_arg *)(p + page_size - sizeof(arg) + 8);
	memcpy(edge, &arg, sizeof(arg) - 8);
	ASSERT_EQ(0, mprotect(p + page_size, page_size, PROT_NONE));
	EXPECT_TRUE(scan_fails(_metadata, self->fd, edge, EFAULT, "arg across PROT_NONE"));

	errno = 0;
	ASSERT_EQ(-1, ioctl(self->fd, PAGEMAP_SCAN, p + page_size));
	ASSERT_EQ(EFAULT, errno);
	munmap(p, 2 * page_size);
}

TEST_F(pagemap, wrong_size_einval)
{
	const __u64 sizes[] = { 0, 8, 88, 95, 97, 104, 4096, 1ULL << 32, ~0ULL };
	struct pm_scan_arg arg;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		valid_arg(self, &arg);
		arg.size = sizes[i];
		EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "size"))
			TH_LOG("size %llu", sizes[i]);
	}
}

TEST_F(pagemap, unknown_flags_einval)
{
	const __u64 flags[] = { 1 << 2, 1 << 3, 1U << 31, 1ULL << 32, 1ULL << 63, ~0ULL };
	struct pm_scan_arg arg;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		valid_arg(self, &arg);
		arg.flags = flags[i] | PM_SCAN_WP_MATCHING;
		EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "flags"))
			TH_LOG("flags %#llx", arg.flags);
	}
}

/* Put @bits in category field @field (0 to 3) of a valid request */
static void set_category_field(struct _test_data_pagemap *self, struct pm_scan_arg *arg,
			       int field, __u64 bits)
{
	valid_arg(self, arg);
	if (field == 0)
		arg->category_inverted = bits;
	else if (field == 1)
		arg->category_mask = bits | PAGE_IS_PRESENT;
	else if (field == 2)
		arg->category_anyof_mask = bits;
	else
		arg->return_mask = bits | ALL_CATEGORIES;
}

TEST_F(pagemap, unknown_category_bits_einval)
{
	const __u64 bits[] = { 1 << 9, 1 << 10, 1U << 31, 1ULL << 32, 1ULL << 63, ~0xffULL };
	struct pm_scan_arg arg;
	size_t i;
	int field;

	for (field = 0; field < 4; field++) {
		for (i = 0; i < ARRAY_SIZE(bits); i++) {
			set_category_field(self, &arg, field, bits[i]);
			EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "category"))
				TH_LOG("field %d bits %#llx", field, bits[i]);
		}
	}
}

/*
 * Bit 8 is no category of this ABI. (Later kernels made it PAGE_IS_GUARD,
 * for guard regions, which this kernel does not have.)
 */
TEST_F(pagemap, category_bit8_einval)
{
	struct pm_scan_arg arg;
	int field;

	for (field = 0; field < 4; field++) {
		set_category_field(self, &arg, field, 1 << 8);
		EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "category bit 8"))
			TH_LOG("field %d", field);
	}
}

TEST_F(pagemap, unaligned_start_einval)
{
	const size_t offs[] = { 1, 8, 2048, page_size - 1 };
	struct pm_scan_arg arg;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(offs); i++) {
		valid_arg(self, &arg);
		arg.start += offs[i];
		EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "unaligned start"))
			TH_LOG("start + %zu", offs[i]);
	}
}

TEST_F(pagemap, bad_range_efault)
{
	struct pm_scan_arg arg;

	valid_arg(self, &arg);
	arg.start += 2 * page_size;
	arg.end = arg.start - page_size;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EFAULT, "end < start"));

	valid_arg(self, &arg);
	arg.end = KERNEL_ADDR;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EFAULT, "end in kernel space"));

	valid_arg(self, &arg);
	arg.end = ~0ULL;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EFAULT, "end ~0"));

	valid_arg(self, &arg);
	arg.start = KERNEL_ADDR;
	arg.end = KERNEL_ADDR + page_size;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EFAULT, "range in kernel space"));
}

TEST_F(pagemap, null_vec_with_len_einval)
{
	struct pm_scan_arg arg;

	valid_arg(self, &arg);
	arg.vec = 0;
	arg.vec_len = 1;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "no vec, vec_len 1"));
	arg.vec_len = ~0ULL;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "no vec, vec_len ~0"));
	arg.flags = PM_SCAN_WP_MATCHING;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "no vec, WP_MATCHING"));
}

/* A vec that is not all in the user address space */
TEST_F(pagemap, bad_vec_efault)
{
	struct pm_scan_arg arg;

	valid_arg(self, &arg);
	arg.vec = KERNEL_ADDR;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EFAULT, "vec in kernel space"));

	valid_arg(self, &arg);
	arg.vec_len = 1ULL << 62;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EFAULT, "vec_len overflows"));

	valid_arg(self, &arg);
	arg.vec_len = (KERNEL_ADDR - arg.vec) / sizeof(struct page_region) + 1;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EFAULT, "vec into kernel space"));
}

/*
 * The checks come in this order: size, flags, categories, start alignment
 * (EINVAL); the range (EFAULT); vec == NULL with vec_len (EINVAL); the vec
 * range (EFAULT).
 */
TEST_F(pagemap, validation_order)
{
	struct pm_scan_arg arg;
	int i;

	for (i = 0; i < 4; i++) {
		valid_arg(self, &arg);
		arg.end = arg.start - page_size;	/* EFAULT if checked first */
		arg.vec = KERNEL_ADDR;
		if (i == 0)
			arg.size = 95;
		else if (i == 1)
			arg.flags = 1 << 2;
		else if (i == 2)
			arg.category_anyof_mask = 1 << 9;
		else
			arg.start += 1;
		EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EINVAL, "EINVAL before range"))
			TH_LOG("case %d", i);
	}
	valid_arg(self, &arg);
	arg.end = arg.start - page_size;
	arg.vec = 0;
	arg.vec_len = 1;
	EXPECT_TRUE(scan_fails(_metadata, self->fd, &arg, EFAULT, "range before vec"));
}

/*
 * A vec in a read-only page of user memory passes the checks; the copy out
 * fails with EFAULT when a region is to be written there.
 */
TEST_F(pagemap, read_only_vec_efault)
{
	char *p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct page_region *edge = (struct page_region *)(p + page_size) - 1;
	struct scan_req req = { .ret = ALL_CATEGORIES };
	__u64 start = addr_of(self->area);

	ASSERT_TRUE(p != MAP_FAILED);
	ASSERT_EQ(0, mprotect(p + page_size, page_size, PROT_READ));
	/* pages 0 (present) and 1 (none pte) make two regions */
	errno = 0;
	EXPECT_EQ(-1, pagemap_scan(self->fd, start, start + 2 * page_size,
				   (struct page_region *)(p + page_size), 4, &req, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, pagemap_scan(self->fd, start, start + 2 * page_size, edge, 4, &req, NULL));
	EXPECT_EQ(EFAULT, errno);
	/* one region fits in the writable entry */
	EXPECT_EQ(1, pagemap_scan(self->fd, start, start + page_size, edge, 4, &req, NULL));
	munmap(p, 2 * page_size);
}

/* start == end, an end rounded up to a page, no vec without WP_MATCHING */
TEST_F(pagemap, empty_and_unaligned_ranges)
{
	struct scan_req req = { .mask = PAGE_IS_PRESENT, .ret = PAGE_IS_PRESENT };
	__u64 start = addr_of(self->area), walk_end;

	ASSERT_EQ(0, pagemap_scan(self->fd, start, start, self->vec, 8, &req, &walk_end));
	ASSERT_EQ(start, walk_end);
	ASSERT_EQ(0, pagemap_scan(self->fd, 0, 0, self->vec, 8, &req, &walk_end));
	ASSERT_EQ(0, walk_end);

	ASSERT_EQ(1, pagemap_scan(self->fd, start, start + 1, self->vec, 8, &req, &walk_end));
	ASSERT_EQ(start, self->vec[0].start);
	ASSERT_EQ(start + page_size, self->vec[0].end);
	ASSERT_EQ(start + page_size, walk_end);
	ASSERT_EQ(1, pagemap_scan(self->fd, start, start + page_size + 1, self->vec, 8, &req,
				  &walk_end));
	ASSERT_EQ(start + 2 * page_size, walk_end);

	ASSERT_EQ(0, pagemap_scan(self->fd, start, start + self->len, NULL, 0, &req, &walk_end));
	ASSERT_EQ(start + self->len, walk_end);
}

/* Nothing is reported for addresses that have no VMA */
TEST_F(pagemap, unmapped_range_reports_nothing)
{
	struct scan_req req = { .ret = ALL_CATEGORIES };
	__u64 start = addr_of(self->area), walk_end;

	ASSERT_EQ(0, munmap(self->area, self->len));
	ASSERT_EQ(0, pagemap_scan(self->fd, start, start + self->len, self->vec, 8, &req,
				  &walk_end));
	ASSERT_EQ(start + self->len, walk_end);
}

/*
 * Regions merge across adjacent VMAs (here split by mprotect), never across
 * an unmapped gap.
 */
TEST_F(pagemap, adjacent_vmas_merge_unmapped_gap_splits)
{
	struct scan_req present = { .mask = PAGE_IS_PRESENT,
				    .ret = PAGE_IS_PRESENT | PAGE_IS_WRITTEN };
	struct scan_req all = { .ret = 0 };
	__u64 start = addr_of(self->area), walk_end;
	int i;

	for (i = 0; i < 4; i++)
		write_page(self->area + i * page_size);
	ASSERT_EQ(0, mprotect(self->area + page_size, page_size, PROT_READ));
	ASSERT_EQ(0, mprotect(self->area + 2 * page_size, page_size, PROT_NONE));
	ASSERT_EQ(1, pagemap_scan(self->fd, start, start + 4 * page_size, self->vec, 8, &present,
				  &walk_end));
	ASSERT_EQ(start, self->vec[0].start);
	ASSERT_EQ(start + 4 * page_size, self->vec[0].end);
	ASSERT_EQ(PAGE_IS_PRESENT | PAGE_IS_WRITTEN, self->vec[0].categories);
	ASSERT_EQ(1, pagemap_scan(self->fd, start, start + 4 * page_size, self->vec, 8, &all,
				  &walk_end));

	ASSERT_EQ(0, munmap(self->area + 2 * page_size, page_size));
	ASSERT_EQ(2, pagemap_scan(self->fd, start, start + 4 * page_size, self->vec, 8, &all,
				  &walk_end));
	ASSERT_EQ(start + 2 * page_size, self->vec[0].end);
	ASSERT_EQ(start + 3 * page_size, self->vec[1].start);
	ASSERT_EQ(start + 4 * page_size, self->vec[1].end);
	ASSERT_EQ(start + 4 * page_size, walk_end);
}

/* PROT_NONE does not change what pages are: present ones stay present */
TEST_F(pagemap, prot_none_pages_keep_categories)
{
	__u64 sd = soft_dirty_enabled ? PAGE_IS_SOFT_DIRTY : 0;
	struct scan_req req = { .ret = ALL_CATEGORIES };
	__u64 cats[AREA_PAGES];
	size_t i;

	write_page(self->area + page_size);
	read_page(self->area + 2 * page_size);
	ASSERT_EQ(0, mprotect(self->area, self->len, PROT_NONE));
	for (i = 0; i < AREA_PAGES; i++)
		cats[i] = PAGE_IS_WRITTEN | sd;
	cats[0] |= PAGE_IS_PRESENT;
	cats[1] |= PAGE_IS_PRESENT;
	cats[2] |= PAGE_IS_PRESENT | PAGE_IS_PFNZERO;
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &req);
}

/* Async-WP VMAs split by mprotect still track writes, as one range */
TEST_F(pagemap, mprotect_split_wp_vmas_track_writes)
{
	int uffd = uffd_open_wp_async();
	__u64 cats[AREA_PAGES] = { 0 };

	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, track_writes(uffd, self->area, self->len));
	ASSERT_EQ(0, mprotect(self->area + 4 * page_size, 4 * page_size, PROT_READ));
	ASSERT_EQ(0, mprotect(self->area + 8 * page_size, 2 * page_size, PROT_NONE));
	write_page(self->area + 3 * page_size);
	write_page(self->area + 10 * page_size);
	write_page(self->area + 11 * page_size);
	set_pages(cats, PAGE_IS_WRITTEN, 3, 10, 11, -1);
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &req_protect_written);

	ASSERT_EQ(0, mprotect(self->area, self->len, PROT_READ | PROT_WRITE));
	write_page(self->area + 5 * page_size);
	write_page(self->area + 8 * page_size);
	memset(cats, 0, sizeof(cats));
	set_pages(cats, PAGE_IS_WRITTEN, 5, 8, -1);
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &req_protect_written);
	close(uffd);
}

/*
 * walk_end after a cut: the first page that did not fit in vec, or the next
 * matching page once max_pages pages were reported, or the end if none.
 */
TEST_F(pagemap, vec_len_and_max_pages_set_walk_end)
{
	struct scan_req req = { .mask = PAGE_IS_PRESENT, .ret = PAGE_IS_PRESENT };
	__u64 s = addr_of(self->area), walk_end;
	const size_t ps = page_size;

	/* pages 0, 1 and 4 present, of 6 */
	write_page(self->area + ps);
	write_page(self->area + 4 * ps);

	ASSERT_EQ(1, pagemap_scan(self->fd, s, s + 6 * ps, self->vec, 1, &req, &walk_end));
	ASSERT_EQ(s + 2 * ps, self->vec[0].end);
	ASSERT_EQ(s + 4 * ps, walk_end);

	req.max_pages = 1;
	ASSERT_EQ(1, pagemap_scan(self->fd, s, s + 6 * ps, self->vec, 8, &req, &walk_end));
	ASSERT_EQ(s + ps, self->vec[0].end);
	ASSERT_EQ(s + ps, walk_end);

	req.max_pages = 2;
	ASSERT_EQ(1, pagemap_scan(self->fd, s, s + 6 * ps, self->vec, 8, &req, &walk_end));
	ASSERT_EQ(s + 2 * ps, self->vec[0].end);
	ASSERT_EQ(s + 4 * ps, walk_end);

	req.max_pages = 3;
	ASSERT_EQ(2, pagemap_scan(self->fd, s, s + 6 * ps, self->vec, 8, &req, &walk_end));
	ASSERT_EQ(s + 4 * ps, self->vec[1].start);
	ASSERT_EQ(s + 5 * ps, self->vec[1].end);
	ASSERT_EQ(s + 6 * ps, walk_end);

	ASSERT_EQ(1, pagemap_scan(self->fd, s, s + 6 * ps, self->vec, 1, &req, &walk_end));
	ASSERT_EQ(s + 4 * ps, walk_end);
}

/* Every other page of BOUNCE_PAGES present: BOUNCE_REGIONS regions */
#define BOUNCE_REGIONS	1500
#define BOUNCE_PAGES	(2 * BOUNCE_REGIONS - 1)

static char *map_alternating_pages(__u64 *cats)
{
	char *p = mmap(NULL, BOUNCE_PAGES * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t i;

	if (p == MAP_FAILED || madvise(p, BOUNCE_PAGES * page_size, MADV_NOHUGEPAGE))
		return NULL;
	for (i = 0; i < BOUNCE_PAGES; i++) {
		cats[i] = i % 2 ? 0 : PAGE_IS_PRESENT;
		if (!(i % 2))
			write_page(p + i * page_size);
	}
	return p;
}

/* Output cut past the first 512 regions: walk_end is the first left out */
TEST_F(pagemap, vec_len_cut_past_bounce_buffer)
{
	const size_t lens[] = { 512, 513, 1000, 1499 };
	struct scan_req req = { .mask = PAGE_IS_PRESENT, .ret = PAGE_IS_PRESENT };
	__u64 *cats = calloc(BOUNCE_PAGES, sizeof(*cats));
	struct page_region *vec = calloc(2000, sizeof(*vec));
	char *p = map_alternating_pages(cats);
	__u64 walk_end;
	size_t i;

	ASSERT_TRUE(p && vec);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		ASSERT_EQ(lens[i], check_scan(_metadata, self->fd, addr_of(p), cats, 0,
					      BOUNCE_PAGES, &req, vec, lens[i], &walk_end));
		ASSERT_EQ(addr_of(p) + 2 * lens[i] * page_size, walk_end);
	}
	req.max_pages = 1200;
	ASSERT_EQ(1200, check_scan(_metadata, self->fd, addr_of(p), cats, 0, BOUNCE_PAGES,
				   &req, vec, 2000, &walk_end));
	munmap(p, BOUNCE_PAGES * page_size);
	free(cats);
	free(vec);
}

/*
 * Deliberate difference (a): a complete scan that produced more than 512
 * regions sets walk_end to the end (upstream leaves it at the start of the
 * last batch of 512).
 */
TEST_F(pagemap, walk_end_exact_past_bounce_buffer)
{
	struct scan_req req = { .mask = PAGE_IS_PRESENT, .ret = PAGE_IS_PRESENT };
	__u64 *cats = calloc(BOUNCE_PAGES, sizeof(*cats));
	struct page_region *vec = calloc(2000, sizeof(*vec));
	char *p = map_alternating_pages(cats);
	__u64 end = addr_of(p) + BOUNCE_PAGES * page_size, walk_end;

	ASSERT_TRUE(p && vec);
	EXPECT_EQ(BOUNCE_REGIONS, pagemap_scan(self->fd, addr_of(p), end, vec, 2000, &req,
					       &walk_end));
	EXPECT_EQ(end, walk_end)
		TH_LOG("vec_len 2000: walk_end is page %lld of %d",
		       page_index(walk_end, addr_of(p)), BOUNCE_PAGES);
	EXPECT_EQ(BOUNCE_REGIONS, pagemap_scan(self->fd, addr_of(p), end, vec, BOUNCE_REGIONS,
					       &req, &walk_end));
	EXPECT_EQ(end, walk_end)
		TH_LOG("vec_len 1500: walk_end is page %lld of %d",
		       page_index(walk_end, addr_of(p)), BOUNCE_PAGES);
	ASSERT_LE(0, check_scan(_metadata, self->fd, addr_of(p), cats, 0, BOUNCE_PAGES, &req,
				vec, 2000, NULL));
	munmap(p, BOUNCE_PAGES * page_size);
	free(cats);
	free(vec);
}

static int clear_soft_dirty(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	int ret;

	if (fd < 0)
		return -1;
	ret = write(fd, "4", 1) == 1 ? 0 : -1;
	close(fd);
	return ret;
}

static const struct scan_req req_criu = {
	.inverted = PAGE_IS_PFNZERO | PAGE_IS_FILE,
	.mask = PAGE_IS_PFNZERO | PAGE_IS_FILE,
	.anyof = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	.ret = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_SOFT_DIRTY,
};

#define CRIU_PAGES	16
#define CRIU_SWAP_FROM	5

/* Memory as CRIU sees it: anonymous, zero page, file pages and their copies */
struct criu_mem {
	char *anon;
	char *priv;		/* private file mapping */
	char *shared;		/* shared file mapping */
	int fd;
	__u64 anon_cats[CRIU_PAGES];
	__u64 priv_cats[CRIU_PAGES];
	__u64 shared_cats[CRIU_PAGES];
};

static int criu_map(struct criu_mem *m)
{
	size_t len = CRIU_PAGES * page_size;

	memset(m, 0, sizeof(*m));
	m->fd = open_regular_file(len);
	if (m->fd < 0)
		return -1;
	m->anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m->priv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, m->fd, 0);
	m->shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->anon == MAP_FAILED || m->priv == MAP_FAILED || m->shared == MAP_FAILED)
		return -1;
	if (madvise(m->anon, len, MADV_NOHUGEPAGE) || madvise(m->priv, len, MADV_RANDOM) ||
	    madvise(m->shared, len, MADV_RANDOM))
		return -1;
	return 0;
}

static void criu_unmap(struct criu_mem *m)
{
	munmap(m->anon, CRIU_PAGES * page_size);
	munmap(m->priv, CRIU_PAGES * page_size);
	munmap(m->shared, CRIU_PAGES * page_size);
	close(m->fd);
}

/*
 * Fill the memory, clear soft-dirty, write some more. Only the pages CRIU
 * must dump match: present or swapped, neither the zero page nor a file
 * page; the ones written after clear_refs are soft-dirty.
 */
static void criu_fill(struct criu_mem *m)
{
	const __u64 sd = soft_dirty_enabled ? PAGE_IS_SOFT_DIRTY : 0;
	const __u64 anon = PAGE_IS_PRESENT | PAGE_IS_WRITTEN;
	const size_t ps = page_size;
	size_t i;

	for (i = 0; i < CRIU_PAGES; i++) {
		m->anon_cats[i] = PAGE_IS_WRITTEN;
		m->priv_cats[i] = PAGE_IS_WRITTEN;
		m->shared_cats[i] = PAGE_IS_WRITTEN;
	}
	for (i = 0; i < 3; i++)
		write_page(m->anon + i * ps);
	write_page(m->anon + 5 * ps);
	write_page(m->anon + 9 * ps);
	read_page(m->anon + 3 * ps);
	read_page(m->anon + 4 * ps);
	read_page(m->anon + 10 * ps);
	read_page(m->priv);
	read_page(m->priv + ps);
	write_page(m->priv + 2 * ps);
	write_page(m->priv + 3 * ps);
	write_page(m->shared + 6 * ps);
	write_page(m->shared + 7 * ps);
	clear_soft_dirty();
	write_page(m->anon + 2 * ps);
	write_page(m->anon + 11 * ps);
	write_page(m->priv + ps);

	set_pages(m->anon_cats, anon, 0, 1, 5, 9, -1);
	set_pages(m->anon_cats, anon | sd, 2, 11, -1);
	set_pages(m->anon_cats, anon | PAGE_IS_PFNZERO, 3, 4, 10, -1);
	set_pages(m->priv_cats, anon | PAGE_IS_FILE, 0, -1);
	set_pages(m->priv_cats, anon | sd, 1, -1);
	set_pages(m->priv_cats, anon, 2, 3, -1);
	set_pages(m->shared_cats, anon | PAGE_IS_FILE, 6, 7, -1);
}

static void check_criu(struct __test_metadata *_metadata, struct _test_data_pagemap *self,
		       struct criu_mem *m)
{
	check_anon_area(_metadata, self, m->anon, m->anon_cats, CRIU_PAGES, &req_criu);
	check_anon_area(_metadata, self, m->priv, m->priv_cats, CRIU_PAGES, &req_criu);
	check_anon_area(_metadata, self, m->shared, m->shared_cats, CRIU_PAGES, &req_criu);
}

/* CRIU's dump request: no zero or file pages, present or swapped ones */
TEST_F(pagemap, criu_pattern)
{
	struct criu_mem m;

	ASSERT_EQ(0, criu_map(&m));
	criu_fill(&m);
	check_criu(_metadata, self, &m);
	criu_unmap(&m);
}

#define PAGE_OUT_ROUNDS	20

/*
 * First page at @p whose swapped state differs from @want, or @pages if
 * none; *@unexpected is set when it is swapped but should not be, which no
 * retry can mend.
 */
static size_t first_swap_mismatch(int fd, char *p, size_t pages, const bool *want,
				  bool *unexpected)
{
	size_t i;

	for (i = 0; i < pages; i++) {
		bool swapped = pagemap_entry(fd, p + i * page_size) & PM_SWAPPED_BIT;

		if (swapped != want[i]) {
			*unexpected = swapped;
			return i;
		}
	}
	return pages;
}

/*
 * MADV_PAGEOUT @pages pages at @p until the @want ones are all in swap.
 * One call may leave some behind: a page still in another CPU's LRU add
 * batch is not on the LRU yet (MADV_PAGEOUT drains only the batch of the
 * CPU it runs on), and a THP that is briefly referenced elsewhere does not
 * split. So retry a bounded number of times, each time from the next CPU,
 * and fail with the page that stayed.
 */
static bool page_out(struct __test_metadata *_metadata, int fd, char *p, size_t pages,
		     const bool *want)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	bool unexpected = false;
	cpu_set_t saved, one;
	size_t bad = 0;
	int round;

	if (sched_getaffinity(0, sizeof(saved), &saved))
		CPU_ZERO(&saved);
	for (round = 0; round < PAGE_OUT_ROUNDS; round++) {
		CPU_ZERO(&one);
		CPU_SET(round % (cpus > 0 ? cpus : 1), &one);
		sched_setaffinity(0, sizeof(one), &one);
		if (madvise(p, pages * page_size, MADV_PAGEOUT)) {
			TH_LOG("MADV_PAGEOUT: %s", strerror(errno));
			break;
		}
		bad = first_swap_mismatch(fd, p, pages, want, &unexpected);
		if (bad == pages || unexpected)
			break;
		usleep(20000);
	}
	if (CPU_COUNT(&saved))
		sched_setaffinity(0, sizeof(saved), &saved);
	if (bad == pages)
		return true;
	if (round < PAGE_OUT_ROUNDS && !unexpected)
		return false;	/* madvise() failed, logged above */
	TH_LOG("page %zu: swapped %d, expected %d after %d MADV_PAGEOUT round(s)%s", bad,
	       !want[bad], want[bad], round + (round < PAGE_OUT_ROUNDS),
	       want[bad] ? " (is there swap?)" : "");
	return false;
}

/* CRIU's dump request over memory with swapped pages (guest: needs swap) */
TEST_F(pagemap, criu_pattern_with_swap)
{
	bool want[CRIU_PAGES] = { false };
	struct criu_mem m;
	size_t i;

	ASSERT_TRUE(in_guest()) TH_LOG("needs the guest (swap)");
	ASSERT_EQ(0, criu_map(&m));
	criu_fill(&m);
	/* pages 5 and up: the anonymous ones swap out, the zero page stays */
	for (i = CRIU_SWAP_FROM; i < CRIU_PAGES; i++)
		want[i] = (m.anon_cats[i] & PAGE_IS_PRESENT) &&
			  !(m.anon_cats[i] & PAGE_IS_PFNZERO);
	ASSERT_TRUE(page_out(_metadata, self->fd, m.anon + CRIU_SWAP_FROM * page_size,
			     CRIU_PAGES - CRIU_SWAP_FROM, want + CRIU_SWAP_FROM));
	for (i = 0; i < CRIU_PAGES; i++) {
		if (want[i]) {
			m.anon_cats[i] &= ~PAGE_IS_PRESENT;
			m.anon_cats[i] |= PAGE_IS_SWAPPED;
		}
	}
	check_criu(_metadata, self, &m);
	criu_unmap(&m);
}

/* clear_refs "4" clears SOFT_DIRTY, a write sets it (needs soft-dirty) */
TEST_F(pagemap, soft_dirty_cleared_then_set)
{
	struct scan_req req = { .mask = PAGE_IS_SOFT_DIRTY, .ret = PAGE_IS_SOFT_DIRTY };
	__u64 cats[AREA_PAGES];
	char *fresh;
	size_t i;

	ASSERT_TRUE(soft_dirty_enabled)
		TH_LOG("needs the guest (a kernel with CONFIG_MEM_SOFT_DIRTY)");
	for (i = 0; i < AREA_PAGES; i++) {
		write_page(self->area + i * page_size);
		cats[i] = PAGE_IS_SOFT_DIRTY;
	}
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &req);
	ASSERT_EQ(0, clear_soft_dirty());
	memset(cats, 0, sizeof(cats));
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &req);
	write_page(self->area + page_size);
	write_page(self->area + 4 * page_size);
	set_pages(cats, PAGE_IS_SOFT_DIRTY, 1, 4, -1);
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &req);

	/* a new VMA is soft-dirty as a whole (VM_SOFTDIRTY) */
	fresh = mmap(NULL, 4 * page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(fresh != MAP_FAILED);
	for (i = 0; i < 4; i++)
		cats[i] = PAGE_IS_SOFT_DIRTY;
	check_anon_area(_metadata, self, fresh, cats, 4, &req);
	munmap(fresh, 4 * page_size);
}

/* The parent scans the pagemap of a child it forked: the child's pages */
TEST_F(pagemap, fork_child_pagemap_scanned_by_parent)
{
	struct scan_req req = { .mask = PAGE_IS_PRESENT, .ret = PAGE_IS_PRESENT };
	__u64 cats[AREA_PAGES] = { 0 };
	int to_child[2], to_parent[2];
	char *fresh, c = 0;
	int status, fd;
	pid_t pid;

	fresh = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(fresh != MAP_FAILED);
	ASSERT_EQ(0, madvise(fresh, self->len, MADV_NOHUGEPAGE));
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		write_page(fresh + 2 * page_size);
		write_page(fresh + 3 * page_size);
		write_page(fresh + 9 * page_size);
		if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(1, read(to_parent[0], &c, 1));
	fd = open_pagemap(pid);
	ASSERT_LE(0, fd);
	set_pages(cats, PAGE_IS_PRESENT, 2, 3, 9, -1);
	EXPECT_EQ(2, check_scan(_metadata, fd, addr_of(fresh), cats, 0, AREA_PAGES, &req,
				self->vec, 8, NULL));
	memset(cats, 0, sizeof(cats));
	check_anon_area(_metadata, self, fresh, cats, AREA_PAGES, &req);
	close(fd);
	ASSERT_EQ(1, write(to_child[1], &c, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	munmap(fresh, self->len);
}

/*
 * In a forked child: the memory is no longer async-WP there. (The parent's
 * pagemap fd still reads the parent's mm: a pagemap file is bound to the mm
 * of the process it was opened for.)
 */
static int cow_child(struct _test_data_pagemap *self)
{
	struct scan_req wpa = { .mask = PAGE_IS_WPALLOWED, .ret = PAGE_IS_WPALLOWED };
	__u64 s = addr_of(self->area), e = s + self->len;
	int fd = open_pagemap(0);

	if (fd < 0)
		return 12;
	if (pagemap_scan(fd, s, e, self->vec, 8, &req_protect_written, NULL) != -1 ||
	    errno != EPERM)
		return 10;
	if (pagemap_scan(fd, s, e, self->vec, 8, &wpa, NULL))
		return 11;
	close(fd);
	write_value(self->area + 5 * page_size, 7);
	write_value(self->area + 6 * page_size, 7);
	return 0;
}

/*
 * Fork with protected memory: each side's writes break CoW; only the
 * parent's are reported to the parent.
 */
TEST_F(pagemap, fork_cow_write_tracking)
{
	int uffd = uffd_open_wp_async();
	__u64 cats[AREA_PAGES] = { 0 };
	int to_child[2], to_parent[2];
	int status, i;
	char c = 0;
	pid_t pid;

	ASSERT_LE(0, uffd);
	for (i = 0; i < AREA_PAGES; i++)
		write_page(self->area + i * page_size);
	ASSERT_EQ(0, track_writes(uffd, self->area, self->len));
	write_page(self->area);
	write_page(self->area + 3 * page_size);
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		status = cow_child(self);
		if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1)
			_exit(1);
		_exit(status);
	}
	ASSERT_EQ(1, read(to_parent[0], &c, 1));
	write_page(self->area + 6 * page_size);
	write_page(self->area + 8 * page_size);
	ASSERT_EQ(1, write(to_child[1], &c, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	set_pages(cats, PAGE_IS_WRITTEN, 0, 3, 6, 8, -1);
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &req_protect_written);
	memset(cats, 0, sizeof(cats));
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &req_protect_written);
	/* the child's writes went to its own copies */
	ASSERT_EQ(1, self->area[5 * page_size]);
	ASSERT_EQ(1, self->area[6 * page_size]);
	close(uffd);
}

/*
 * mremap moves the pages with their categories; without
 * UFFD_FEATURE_EVENT_REMAP the moved VMA is no longer async-WP.
 */
TEST_F(pagemap, mremap_moves_pages_and_drops_wp_async)
{
	const __u64 sd = soft_dirty_enabled ? PAGE_IS_SOFT_DIRTY : 0;
	struct scan_req all = { .ret = ALL_CATEGORIES };
	__u64 old = addr_of(self->area), walk_end;
	int uffd = uffd_open_wp_async();
	__u64 cats[AREA_PAGES];
	struct mem to;
	char *dst;
	size_t i;

	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, track_writes(uffd, self->area, self->len));
	write_page(self->area + 2 * page_size);
	write_page(self->area + 7 * page_size);
	read_page(self->area + 4 * page_size);
	ASSERT_EQ(0, mem_map(&to, MEM_ANON, self->len));
	dst = to.addr;
	ASSERT_TRUE(mremap(self->area, self->len, self->len, MREMAP_MAYMOVE | MREMAP_FIXED,
			   dst) == dst);

	for (i = 0; i < AREA_PAGES; i++)
		cats[i] = PAGE_IS_WRITTEN | sd;
	cats[0] |= PAGE_IS_PRESENT;
	cats[2] |= PAGE_IS_PRESENT;
	cats[7] |= PAGE_IS_PRESENT;
	cats[4] |= PAGE_IS_PRESENT | PAGE_IS_PFNZERO;
	check_anon_area(_metadata, self, dst, cats, AREA_PAGES, &all);
	errno = 0;
	ASSERT_EQ(-1, pagemap_scan(self->fd, addr_of(dst), addr_of(dst) + self->len, self->vec,
				   8, &req_protect_written, NULL));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(0, pagemap_scan(self->fd, old, old + self->len, self->vec, 8, &all,
				  &walk_end));
	ASSERT_EQ(old + self->len, walk_end);
	mem_unmap(&to);
	close(uffd);
}

/* Opening another process's pagemap follows the ptrace rule */
TEST_F(pagemap, pagemap_of_parent_needs_ptrace_rights)
{
	struct scan_req req = { .mask = PAGE_IS_PRESENT, .ret = PAGE_IS_PRESENT };
	pid_t parent = getpid(), pid;
	int status, fd;

	/* as root: allowed, and it is the parent's memory */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		fd = open_pagemap(parent);
		if (fd < 0)
			_exit(1);
		if (pagemap_scan(fd, addr_of(self->area), addr_of(self->area) + self->len,
				 self->vec, 8, &req, NULL) != 1 ||
		    self->vec[0].end != addr_of(self->area) + page_size)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	/* as nobody: EACCES */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (setgroups(0, NULL) || setgid(NOBODY_ID) || setuid(NOBODY_ID))
			_exit(3);
		fd = open_pagemap(parent);
		if (fd >= 0)
			_exit(4);
		_exit(errno == EACCES ? 0 : 5);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* Swapped pages are SWAPPED, not PRESENT, and written (guest: needs swap) */
TEST_F(pagemap, swapped_pages_classified)
{
	const __u64 sd = soft_dirty_enabled ? PAGE_IS_SOFT_DIRTY : 0;
	struct scan_req all = { .ret = ALL_CATEGORIES };
	bool want[AREA_PAGES] = { false };
	__u64 cats[AREA_PAGES];
	size_t i;

	ASSERT_TRUE(in_guest()) TH_LOG("needs the guest (swap)");
	for (i = 0; i < AREA_PAGES; i++)
		cats[i] = PAGE_IS_WRITTEN | sd;
	for (i = 0; i < AREA_PAGES; i += 3) {
		write_page(self->area + i * page_size);
		want[i] = true;
		cats[i] |= PAGE_IS_SWAPPED;
	}
	ASSERT_TRUE(page_out(_metadata, self->fd, self->area, AREA_PAGES, want));
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &all);

	read_page(self->area + 3 * page_size);
	cats[3] ^= PAGE_IS_SWAPPED | PAGE_IS_PRESENT;
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &all);
}

/* Write tracking through swap-out and swap-in (guest: needs swap) */
TEST_F(pagemap, swapped_pages_write_tracking)
{
	struct scan_req state = { .ret = PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN |
					 PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
	const __u64 wpa = PAGE_IS_WPALLOWED;
	bool want[AREA_PAGES] = { false };
	int uffd = uffd_open_wp_async();
	__u64 cats[AREA_PAGES];
	size_t i;

	ASSERT_TRUE(in_guest()) TH_LOG("needs the guest (swap)");
	ASSERT_LE(0, uffd);
	for (i = 0; i < AREA_PAGES; i++)
		write_page(self->area + i * page_size);
	ASSERT_EQ(0, track_writes(uffd, self->area, self->len));
	for (i = 0; i < AREA_PAGES; i++) {
		want[i] = true;
		cats[i] = i % 4 ? 0 : PAGE_IS_WRITTEN;
		if (!(i % 4))
			write_page(self->area + i * page_size);
	}
	ASSERT_TRUE(page_out(_metadata, self->fd, self->area, AREA_PAGES, want));
	for (i = 0; i < AREA_PAGES; i++)
		cats[i] |= wpa | PAGE_IS_SWAPPED;
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &state);
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &req_protect_written);
	for (i = 0; i < AREA_PAGES; i++)
		cats[i] &= ~PAGE_IS_WRITTEN;
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &state);

	/* swap-in by reading keeps the protection; a write is tracked */
	for (i = 0; i < AREA_PAGES; i += 2) {
		read_page(self->area + i * page_size);
		cats[i] = wpa | PAGE_IS_PRESENT;
	}
	write_page(self->area + 2 * page_size);
	write_page(self->area + 5 * page_size);
	cats[2] = wpa | PAGE_IS_PRESENT | PAGE_IS_WRITTEN;
	cats[5] = wpa | PAGE_IS_PRESENT | PAGE_IS_WRITTEN;
	check_anon_area(_metadata, self, self->area, cats, AREA_PAGES, &state);
	close(uffd);
}

/* ---------------------------------------------------------------------- */
/* Long walks, holes filled during a scan, undo, pinned pages              */
/* ---------------------------------------------------------------------- */

#ifdef __LP64__
/* Whether child @pid is still running, without reaping it */
static bool child_alive(pid_t pid)
{
	siginfo_t info = {};

	return !waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) && !info.si_pid;
}

static double now_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Far more address space than a 32-bit process has */
#define SPARSE_LEN	(16UL << 40)

/*
 * Fork a child that scans the SPARSE_LEN of hugetlb address space at @p
 * (with @wp, a WP_MATCHING scan that every hole matches, so each gets a
 * marker). Returns its pid once it is about to enter the ioctl.
 */
static pid_t start_sparse_scan(char *p, bool wp)
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe(ready))
		return -1;
	pid = fork();
	if (!pid) {
		struct scan_req req = req_written;
		struct page_region vec[4];
		int fd = open_pagemap(0), uffd;

		req.mask = PAGE_IS_PRESENT;
		if (wp) {
			uffd = uffd_open_wp_async();
			if (uffd < 0 || uffd_register_wp(uffd, p, SPARSE_LEN))
				_exit(2);
			req.flags = PM_SCAN_WP_MATCHING;
			req.mask = 0;
			req.ret = PAGE_IS_WPALLOWED;
		}
		if (write(ready[1], "", 1) != 1)
			_exit(2);
		pagemap_scan(fd, addr_of(p), addr_of(p) + SPARSE_LEN, vec, 4, &req, NULL);
		_exit(0);
	}
	close(ready[1]);
	if (pid > 0 && read(ready[0], &c, 1) != 1)
		pid = -1;
	close(ready[0]);
	return pid;
}

/* SIGKILL @pid after @delay s; returns how long it took to die, or -1 */
static double kill_latency(pid_t pid, double delay)
{
	double t0;
	int status;

	usleep(delay * 1e6);
	if (!child_alive(pid))
		return -1;
	t0 = now_seconds();
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status))
		return -1;
	return now_seconds() - t0;
}

static char *map_sparse_hugetlb(void)
{
	char *p = mmap(NULL, SPARSE_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * A hugetlb VMA is walked one huge page at a time, mapped or not. Scanning
 * 16 TiB of sparse MAP_NORESERVE hugetlb memory is 8 million callbacks: it
 * must yield the CPU and give way to SIGKILL. Timed against a whole scan on
 * this machine: a child killed a quarter into its scan must be gone within
 * another quarter, not finish it.
 */
TEST(sparse_hugetlb_scan_is_killable)
{
	double t0, full, waited;
	int status;
	pid_t pid;
	char *p;

	global_init();
	p = map_sparse_hugetlb();
	ASSERT_TRUE(!!p) TH_LOG("16 TiB of hugetlb address space: %s", strerror(errno));
	t0 = now_seconds();
	pid = start_sparse_scan(p, false);
	ASSERT_LT(0, pid);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	full = now_seconds() - t0;
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	TH_LOG("a whole scan takes %.2f s", full);

	pid = start_sparse_scan(p, false);
	ASSERT_LT(0, pid);
	waited = kill_latency(pid, full / 4);
	ASSERT_LE(0, waited) TH_LOG("the scan ended before the kill");
	ASSERT_GT(full / 4, waited) TH_LOG("the killed scan went on for %.2f s", waited);
	munmap(p, SPARSE_LEN);
}

/*
 * With WP_MATCHING every huge page of the hole also gets a page table
 * entry and a marker: the whole scan takes far longer than the 5 s the
 * child is given to die once killed half a second in.
 */
TEST(sparse_hugetlb_wp_scan_is_killable)
{
	double waited;
	pid_t pid;
	char *p;

	global_init();
	p = map_sparse_hugetlb();
	ASSERT_TRUE(!!p) TH_LOG("16 TiB of hugetlb address space: %s", strerror(errno));
	pid = start_sparse_scan(p, true);
	ASSERT_LT(0, pid);
	waited = kill_latency(pid, 0.5);
	ASSERT_LE(0, waited) TH_LOG("the scan ended before the kill");
	ASSERT_GT(5.0, waited) TH_LOG("the killed scan went on for %.1f s", waited);
	munmap(p, SPARSE_LEN);
}
#endif /* __LP64__ */

#define HOLE_PAGES	(32 * HPAGE_SIZE / 4096)
#define HOLE_ROUNDS	200	/* at most */
#define HOLE_MIN_ROUNDS	30	/* at least, however slow the machine */
#define HOLE_SECONDS	50	/* between the two */

struct hole_writer {
	char *area;
	size_t pages;
	int go;			/* accessed atomically */
	int stop;
	uint64_t rnd;
};

/* Write a byte of a random page over and over, so its page faults in */
static void *hole_write(void *arg)
{
	struct hole_writer *w = arg;

	while (!__atomic_load_n(&w->go, __ATOMIC_ACQUIRE))
		;
	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		size_t i = next_random(&w->rnd) % w->pages;

		write_value(w->area + i * page_size, 1 + (char)(i & 0x3f));
	}
	return NULL;
}

/*
 * What a dumper that copies only the present pages it is told about ends
 * up with: reported present pages are copied, reported holes are zero.
 */
static void hole_apply_report(const struct page_region *vec, long n, const char *area,
			      char *image, size_t pages)
{
	__u64 base = addr_of(area), a;
	long r;

	for (r = 0; r < n; r++) {
		for (a = vec[r].start; a < vec[r].end; a += page_size) {
			size_t i = (a - base) / page_size;

			if (i >= pages)
				continue;
			image[i] = (vec[r].categories & PAGE_IS_PRESENT) ? area[i * page_size] : 0;
		}
	}
}

/*
 * Holes of a fresh async uffd-wp VMA are reported written, then filled
 * with markers. A page faulted in there between the two must not be
 * protected: the scan told the caller "hole", so only a later scan can
 * tell it about that page. A writer thread faults pages in while the
 * first scan runs; the image built from the reports must end up equal to
 * the memory.
 */
TEST_F_TIMEOUT(pagemap, holes_filled_during_scan_are_reported, 120)
{
	const struct scan_req req = {
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.mask = PAGE_IS_WRITTEN,
		.ret = PAGE_IS_WRITTEN | PAGE_IS_PRESENT,
	};
	size_t len = HOLE_PAGES * page_size, vec_len = HOLE_PAGES, i;
	struct page_region *vec = calloc(vec_len, sizeof(*vec));
	char *image = calloc(HOLE_PAGES, 1);
	struct hole_writer w = { .pages = HOLE_PAGES, .rnd = 42 };
	struct timespec t0;
	int round, uffd, lost = 0;
	pthread_t thread;
	struct mem m;
	long n;

	ASSERT_TRUE(vec && image);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (round = 0; round < HOLE_ROUNDS && !lost; round++) {
		if (round >= HOLE_MIN_ROUNDS && seconds_since(&t0) > HOLE_SECONDS)
			break;
		ASSERT_EQ(0, mem_map(&m, MEM_ANON, len));
		uffd = uffd_open_wp_async();
		ASSERT_LE(0, uffd);
		/* registered only: all of it is holes, which count as written */
		ASSERT_EQ(0, uffd_register_wp(uffd, m.addr, len));
		memset(image, 0, HOLE_PAGES);
		w.area = m.addr;
		w.go = 0;
		w.stop = 0;
		ASSERT_EQ(0, pthread_create(&thread, NULL, hole_write, &w));
		__atomic_store_n(&w.go, 1, __ATOMIC_RELEASE);
		n = pagemap_scan(self->fd, addr_of(m.addr), addr_of(m.addr) + len, vec, vec_len,
				 &req, NULL);
		__atomic_store_n(&w.stop, 1, __ATOMIC_RELAXED);
		pthread_join(thread, NULL);
		ASSERT_LE(0, n) TH_LOG("scan: %s", strerror(errno));
		hole_apply_report(vec, n, m.addr, image, HOLE_PAGES);
		n = pagemap_scan(self->fd, addr_of(m.addr), addr_of(m.addr) + len, vec, vec_len,
				 &req, NULL);
		ASSERT_LE(0, n) TH_LOG("scan: %s", strerror(errno));
		hole_apply_report(vec, n, m.addr, image, HOLE_PAGES);
		for (i = 0; i < HOLE_PAGES; i++) {
			if (image[i] != m.addr[i * page_size]) {
				TH_LOG("round %d: page %zu written during the scan never reported",
				       round, i);
				lost++;
				break;
			}
		}
		close(uffd);
		mem_unmap(&m);
	}
	TH_LOG("%d rounds in %.1f s", round, seconds_since(&t0));
	ASSERT_EQ(0, lost);
	free(vec);
	free(image);
}

#define UNDO_WRITTEN	600	/* isolated written pages: as many regions */
#define UNDO_BATCH	512	/* regions the kernel copies out at once */

/*
 * A scan whose vec faults after the first batch of regions was copied out
 * returns that batch, with walk_end where it ends, and unprotects exactly
 * what the failed batch had protected: its written pages are reported
 * again, and no page that was clean before the call (nor any of the first
 * batch) comes back as written.
 */
TEST_F(pagemap, vec_fault_mid_call_undoes_only_its_batch)
{
	size_t len = 2 * UNDO_WRITTEN * page_size, vec_bytes, i;
	size_t good = UNDO_BATCH * sizeof(struct page_region);
	struct page_region *vec, *check;
	__u64 base, walk_end;
	struct mem m;
	char *vmem;
	long n;
	int uffd;

	ASSERT_EQ(0, mem_map(&m, MEM_ANON, len));
	base = addr_of(m.addr);
	uffd = uffd_open_wp_async();
	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, track_writes(uffd, m.addr, len));
	for (i = 0; i < UNDO_WRITTEN; i++)
		write_page(m.addr + 2 * i * page_size);

	/* vec[0, 512) is writable, the rest of it is PROT_NONE */
	vec_bytes = (good + page_size - 1) / page_size * page_size + page_size;
	ASSERT_EQ(0, good % page_size) TH_LOG("512 regions are not whole pages");
	vmem = mmap(NULL, vec_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(vmem != MAP_FAILED);
	ASSERT_EQ(0, mprotect(vmem + good, vec_bytes - good, PROT_NONE));
	vec = (struct page_region *)vmem;

	n = pagemap_scan(self->fd, base, base + len, vec, UNDO_WRITTEN, &req_protect_written,
			 &walk_end);
	ASSERT_EQ(UNDO_BATCH, n) TH_LOG("returned %ld, errno %d", n, n < 0 ? errno : 0);
	ASSERT_EQ(base + 2 * UNDO_BATCH * page_size, walk_end);
	for (i = 0; i < UNDO_BATCH; i++) {
		ASSERT_EQ(base + 2 * i * page_size, vec[i].start);
		ASSERT_EQ(base + (2 * i + 1) * page_size, vec[i].end);
	}

	/* Exactly the written pages of the failed batch are written again */
	check = calloc(UNDO_WRITTEN, sizeof(*check));
	ASSERT_TRUE(!!check);
	n = pagemap_scan(self->fd, base, base + len, check, UNDO_WRITTEN, &req_written, NULL);
	ASSERT_EQ(UNDO_WRITTEN - UNDO_BATCH, n);
	for (i = 0; i < (size_t)n; i++) {
		ASSERT_EQ(base + 2 * (UNDO_BATCH + i) * page_size, check[i].start);
		ASSERT_EQ(base + (2 * (UNDO_BATCH + i) + 1) * page_size, check[i].end);
	}
	free(check);
	munmap(vmem, vec_bytes);
	close(uffd);
	mem_unmap(&m);
}

#ifndef PAGEMAP_IOCTL_NO_IO_URING
/*
 * Pages pinned by io_uring's fixed buffers (FOLL_PIN | FOLL_LONGTERM) are
 * written by READ_FIXED through the pin, not through the page tables.
 * PAGEMAP_SCAN must leave such pages unprotected, so that every scan
 * reports them written; once unpinned, they are protected again.
 */
FIXTURE(pinned) {
	struct mem mem;
	int pagemap_fd;
	int uffd;
	int src;
	size_t nr_pages;
	struct page_region *vec;
	struct io_uring ring;
};

FIXTURE_VARIANT(pinned) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(pinned, anon) { .type = MEM_ANON };
FIXTURE_VARIANT_ADD(pinned, thp) { .type = MEM_THP };
FIXTURE_VARIANT_ADD(pinned, shmem) { .type = MEM_SHMEM };
FIXTURE_VARIANT_ADD(pinned, memfd) { .type = MEM_MEMFD };
FIXTURE_VARIANT_ADD(pinned, hugetlb_private) { .type = MEM_HUGETLB_PRIVATE };
FIXTURE_VARIANT_ADD(pinned, hugetlb_shared) { .type = MEM_HUGETLB_SHARED };
FIXTURE_VARIANT_ADD(pinned, hugetlb_memfd) { .type = MEM_HUGETLB_MEMFD };

FIXTURE_SETUP(pinned)
{
	size_t len = 2 * HPAGE_SIZE, i;

	global_init();
	self->uffd = -1;
	ASSERT_EQ(0, mem_map(&self->mem, variant->type, len));
	self->nr_pages = len / page_size;
	for (i = 0; i < len; i += self->mem.unit)
		write_page(self->mem.addr + i);
	self->pagemap_fd = open_pagemap(0);
	ASSERT_LE(0, self->pagemap_fd);
	self->uffd = uffd_open_wp_async();
	ASSERT_LE(0, self->uffd);
	ASSERT_EQ(0, track_writes(self->uffd, self->mem.addr, len));
	self->src = open_source_file();
	ASSERT_LE(0, self->src);
	self->vec = calloc(self->nr_pages, sizeof(*self->vec));
	ASSERT_TRUE(!!self->vec);
	ASSERT_EQ(0, io_uring_queue_init(8, &self->ring, 0));
}

FIXTURE_TEARDOWN(pinned)
{
	io_uring_queue_exit(&self->ring);
	mem_unmap(&self->mem);
	close(self->pagemap_fd);
	if (self->uffd >= 0)
		close(self->uffd);
	close(self->src);
	free(self->vec);
}

/* Pages reported written by a scan over all the memory, with @flags */
static long pinned_written_pages(struct _test_data_pinned *self, __u64 flags)
{
	struct scan_req req = req_written;
	long n, r, pages = 0;

	req.flags = flags;
	n = pagemap_scan(self->pagemap_fd, addr_of(self->mem.addr),
			 addr_of(self->mem.addr) + self->nr_pages * page_size, self->vec,
			 self->nr_pages, &req, NULL);
	if (n < 0)
		return n;
	for (r = 0; r < n; r++)
		pages += (self->vec[r].end - self->vec[r].start) / page_size;
	return pages;
}

/* READ_FIXED one page of the source file into page @i, through the pin */
static bool pinned_read_fixed(struct _test_data_pinned *self, size_t i)
{
	char *p = self->mem.addr + i * page_size;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&self->ring);
	struct io_uring_cqe *cqe;
	bool ok;

	if (!sqe)
		return false;
	io_uring_prep_read_fixed(sqe, self->src, p, page_size, 0, 0);
	if (io_uring_submit(&self->ring) != 1 || io_uring_wait_cqe(&self->ring, &cqe))
		return false;
	ok = cqe->res == (int)page_size;
	io_uring_cqe_seen(&self->ring, cqe);
	return ok && p[page_size - 1] == 0x5a;
}

TEST_F(pinned, writes_through_a_pin_are_reported)
{
	const __u64 wp = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
	struct iovec iov = { .iov_base = self->mem.addr, .iov_len = self->mem.len };
	size_t all = self->nr_pages;

	ASSERT_EQ(0, pinned_written_pages(self, wp)) TH_LOG("protected memory reported written");
	/* Pinning for write faults the protection away: all written */
	ASSERT_EQ(0, io_uring_register_buffers(&self->ring, &iov, 1));
	ASSERT_EQ(all, pinned_written_pages(self, wp));
	/* That scan must have left the pinned pages writable */
	ASSERT_EQ(all, pinned_written_pages(self, 0));
	ASSERT_TRUE(pinned_read_fixed(self, 3));
	ASSERT_TRUE(pinned_read_fixed(self, all - 1));
	ASSERT_EQ(all, pinned_written_pages(self, wp)) TH_LOG("writes through the pin lost");
	ASSERT_EQ(all, pinned_written_pages(self, wp));

	/* Unpinned, the pages are protected again and stay clean */
	ASSERT_EQ(0, io_uring_unregister_buffers(&self->ring));
	ASSERT_EQ(all, pinned_written_pages(self, wp));
	ASSERT_EQ(0, pinned_written_pages(self, wp));
}

/* The same holds for UFFDIO_WRITEPROTECT of async uffd-wp memory */
TEST_F(pinned, writeprotect_leaves_pinned_pages_writable)
{
	struct iovec iov = { .iov_base = self->mem.addr, .iov_len = self->mem.len };
	size_t all = self->nr_pages;

	ASSERT_EQ(0, io_uring_register_buffers(&self->ring, &iov, 1));
	ASSERT_EQ(0, uffd_write_protect(self->uffd, self->mem.addr, self->mem.len));
	ASSERT_EQ(all, pinned_written_pages(self, 0)) TH_LOG("pinned pages were protected");
	ASSERT_TRUE(pinned_read_fixed(self, 1));
	ASSERT_EQ(all, pinned_written_pages(self, 0));

	ASSERT_EQ(0, io_uring_unregister_buffers(&self->ring));
	ASSERT_EQ(0, uffd_write_protect(self->uffd, self->mem.addr, self->mem.len));
	ASSERT_EQ(0, pinned_written_pages(self, 0));
}

/*
 * Pinned while unprotected, so that no write fault splits a THP: a huge
 * pmd that is pinned stays writable under UFFDIO_WRITEPROTECT and
 * WP_MATCHING alike.
 */
TEST_F(pinned, pinned_huge_pmd_stays_writable)
{
	struct uffdio_writeprotect unprotect = {
		.range = { .start = addr_of(self->mem.addr), .len = self->mem.len },
	};
	struct iovec iov = { .iov_base = self->mem.addr, .iov_len = self->mem.len };
	const __u64 wp = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
	size_t all = self->nr_pages;

	ASSERT_EQ(0, ioctl(self->uffd, UFFDIO_WRITEPROTECT, &unprotect));
	ASSERT_EQ(0, io_uring_register_buffers(&self->ring, &iov, 1));
	if (variant->type == MEM_THP)
		ASSERT_TRUE(thps_mapped(self->mem.addr, 2)) TH_LOG("the THPs were split");
	ASSERT_EQ(0, uffd_write_protect(self->uffd, self->mem.addr, self->mem.len));
	ASSERT_EQ(all, pinned_written_pages(self, 0)) TH_LOG("pinned pages were protected");
	ASSERT_EQ(all, pinned_written_pages(self, wp));
	ASSERT_TRUE(pinned_read_fixed(self, 7));
	ASSERT_EQ(all, pinned_written_pages(self, wp)) TH_LOG("writes through the pin lost");
	if (variant->type == MEM_THP)
		ASSERT_TRUE(thps_mapped(self->mem.addr, 2)) TH_LOG("the THPs were split");
}

/*
 * A shared page stays in the page cache, and pinned, when MADV_DONTNEED
 * zaps its entry. UFFDIO_WRITEPROTECT then puts a marker in the hole, and
 * a read maps the page again over it: it must not take the marker's
 * protection, or writes through the pin go unreported. Private memory
 * gets new pages there, which the pin does not reach: protected as usual.
 */
TEST_F(pinned, pinned_page_faulted_in_over_a_marker_stays_writable)
{
	struct iovec iov = { .iov_base = self->mem.addr, .iov_len = self->mem.len };
	const bool shared = written_page_is_file(variant->type);
	size_t all = self->nr_pages, i;

	ASSERT_EQ(0, io_uring_register_buffers(&self->ring, &iov, 1));
	ASSERT_EQ(0, madvise(self->mem.addr, self->mem.len, MADV_DONTNEED));
	ASSERT_EQ(0, uffd_write_protect(self->uffd, self->mem.addr, self->mem.len));
	for (i = 0; i < self->mem.len; i += page_size)
		read_page(self->mem.addr + i);
	if (!shared) {
		ASSERT_EQ(0, pinned_written_pages(self, 0)) TH_LOG("new pages not protected");
		return;
	}
	ASSERT_EQ(all, pinned_written_pages(self, 0)) TH_LOG("pinned pages were protected");
	ASSERT_TRUE(pinned_read_fixed(self, 5));
	ASSERT_EQ(all, pinned_written_pages(self, PM_SCAN_WP_MATCHING))
		TH_LOG("writes through the pin lost");
	ASSERT_EQ(all, pinned_written_pages(self, 0));
}
#endif

/*
 * /proc/<pid> files of a task without an mm, a kernel thread or a zombie:
 * the files that need the mm refuse open() with ESRCH, the seq_file lists
 * of mappings open and read as empty (upstream since "proc: fix the issue
 * of proc_mem_open returning NULL").
 */
#define PF_KTHREAD		0x00200000

struct no_mm_file {
	const char *name;
	int open_errno;		/* 0: open() succeeds and read() returns 0 */
};

static const struct no_mm_file no_mm_files[] = {
	{ "pagemap", ESRCH },
	{ "mem", ESRCH },
	{ "environ", ESRCH },
	{ "auxv", ESRCH },
	{ "smaps_rollup", ESRCH },
	{ "maps", 0 },
	{ "smaps", 0 },
	{ "numa_maps", 0 },
};

/* The flags field of /proc/<pid>/stat, the 7th after the command name */
static bool task_flags(pid_t pid, unsigned long *flags)
{
	char path[64], buf[1024], *p, *end;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	for (i = 0; p && i < 7; i++)
		p = strchr(p + 1, ' ');
	if (!p)
		return false;
	*flags = strtoul(p, &end, 10);
	return end != p;
}

/* Whether @f of @pid behaves as upstream's on a task with no mm */
static bool no_mm_file_ok(struct __test_metadata *_metadata, pid_t pid,
			  const struct no_mm_file *f)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd, e;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, f->name);
	fd = open(path, O_RDONLY);
	e = errno;
	if (fd < 0) {
		if (e == f->open_errno)
			return true;
		TH_LOG("%s: open() failed with %s, expected %s", path, strerror(e),
		       f->open_errno ? strerror(f->open_errno) : "success");
		return false;
	}
	/* Read it only: PAGEMAP_SCAN on a NULL mm oopses some kernels */
	n = read(fd, buf, sizeof(buf));
	e = errno;
	close(fd);
	if (f->open_errno) {
		TH_LOG("%s: open() succeeded (read() %zd, %s), expected %s", path, n,
		       n < 0 ? strerror(e) : "no error", strerror(f->open_errno));
		return false;
	}
	if (n == 0)
		return true;
	TH_LOG("%s: read() returned %zd (%s), expected 0", path, n,
	       n < 0 ? strerror(e) : "data");
	return false;
}

FIXTURE(no_mm) {
	pid_t pid;
	bool zombie;
};

FIXTURE_VARIANT(no_mm) {
	bool zombie;
};

/* kthreadd, pid 2 */
FIXTURE_VARIANT_ADD(no_mm, kernel_thread) {
	.zombie = false,
};

/* A child that exited and has not been reaped */
FIXTURE_VARIANT_ADD(no_mm, zombie) {
	.zombie = true,
};

FIXTURE_SETUP(no_mm)
{
	unsigned long flags;
	siginfo_t info;

	self->zombie = false;
	if (!variant->zombie) {
		self->pid = 2;
		ASSERT_TRUE(task_flags(self->pid, &flags));
		ASSERT_TRUE(flags & PF_KTHREAD) TH_LOG("pid 2 is not a kernel thread");
		return;
	}
	self->pid = fork();
	ASSERT_LE(0, self->pid);
	if (!self->pid)
		_exit(0);
	self->zombie = true;
	ASSERT_EQ(0, waitid(P_PID, self->pid, &info, WEXITED | WNOWAIT));
	ASSERT_EQ(self->pid, info.si_pid);
}

FIXTURE_TEARDOWN(no_mm)
{
	if (self->zombie)
		waitpid(self->pid, NULL, 0);
}

TEST_F(no_mm, proc_files_as_upstream)
{
	size_t i;
	int bad = 0;

	for (i = 0; i < ARRAY_SIZE(no_mm_files); i++)
		bad += !no_mm_file_ok(_metadata, self->pid, &no_mm_files[i]);
	EXPECT_EQ(0, bad);
}

/* PAGEMAP_SCAN fails with ESRCH (and read() is at EOF) on a pagemap of a gone mm */
static void check_mm_gone(struct __test_metadata *_metadata, struct _test_data_pagemap *self,
			  int fd, const char *when)
{
	struct pm_scan_arg arg;
	__u64 ent;

	valid_arg(self, &arg);
	EXPECT_TRUE(scan_fails(_metadata, fd, &arg, ESRCH, when));
	valid_arg(self, &arg);
	arg.flags = PM_SCAN_WP_MATCHING;
	arg.category_mask = PAGE_IS_WRITTEN;
	EXPECT_TRUE(scan_fails(_metadata, fd, &arg, ESRCH, when));
	EXPECT_EQ(0, pread(fd, &ent, sizeof(ent), 0)) TH_LOG("%s: read()", when);
}

/* A pagemap opened while its task lived, used once the task's mm is gone */
TEST_F(pagemap, scan_esrch_once_target_mm_gone)
{
	int to_child[2];
	siginfo_t info;
	char c;
	int fd;
	pid_t pid;

	ASSERT_EQ(0, pipe(to_child));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(to_child[1]);
		_exit(read(to_child[0], &c, 1) == 0 ? 0 : 1);
	}
	close(to_child[0]);
	fd = open_pagemap(pid);
	ASSERT_LE(0, fd);
	close(to_child[1]);
	ASSERT_EQ(0, waitid(P_PID, pid, &info, WEXITED | WNOWAIT));
	check_mm_gone(_metadata, self, fd, "zombie");
	ASSERT_EQ(pid, waitpid(pid, NULL, 0));
	check_mm_gone(_metadata, self, fd, "reaped");
	close(fd);
}

/* ---------------------------------------------------------------------- */
/* Discarding protected memory: what becomes of the uffd-wp protection     */
/* ---------------------------------------------------------------------- */

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED	24
#endif
#define PM_UFFD_WP_BIT		0x0200000000000000ULL
#define PM_PRESENT_BIT		0x8000000000000000ULL

/*
 * The units of the memory, in turn: written (W), read (R) or untouched (U)
 * before they were protected, then read (r) or written (w) after.
 */
#define DISCARD_PATTERN		"WRUrw"

static char discard_state(size_t unit)
{
	return DISCARD_PATTERN[unit % (sizeof(DISCARD_PATTERN) - 1)];
}

/* Memory of one type under async uffd-wp, touched as DISCARD_PATTERN says */
struct discard_env {
	struct mem mem;
	int pagemap_fd;
	int uffd;
	size_t nr_units;
	size_t nr_pages;
	size_t per_unit;	/* pages per unit */
	__u64 *cats;
	struct page_region *vec;
};

static void discard_setup(struct __test_metadata *_metadata, struct discard_env *e,
			  enum mem_type t)
{
	bool huge = is_hugetlb(t) || t == MEM_THP;
	size_t u, thps = 0;

	global_init();
	e->uffd = -1;
	e->pagemap_fd = -1;
	e->nr_units = huge ? 5 : 20;
	ASSERT_EQ(0, mem_map(&e->mem, t, e->nr_units * (huge ? HPAGE_SIZE : page_size)))
		TH_LOG("mapping the memory failed: %s", strerror(errno));
	e->nr_pages = e->mem.len / page_size;
	e->per_unit = e->mem.unit / page_size;
	e->pagemap_fd = open_pagemap(0);
	ASSERT_LE(0, e->pagemap_fd);
	e->cats = calloc(e->nr_pages, sizeof(*e->cats));
	e->vec = calloc(e->nr_pages, sizeof(*e->vec));
	ASSERT_TRUE(e->cats && e->vec);

	for (u = 0; u < e->nr_units; u++) {
		char *p = e->mem.addr + u * e->mem.unit;

		if (discard_state(u) == 'W') {
			write_page(p);
			thps++;
		} else if (discard_state(u) == 'R') {
			read_page(p);
			thps += !thp_huge_zero_page;
		}
	}
	if (t == MEM_THP)
		ASSERT_TRUE(thps_mapped(e->mem.addr, thps)) TH_LOG("THPs were not allocated");
	e->uffd = uffd_open_wp_async();
	ASSERT_LE(0, e->uffd);
	ASSERT_EQ(0, track_writes(e->uffd, e->mem.addr, e->mem.len));
	for (u = 0; u < e->nr_units; u++) {
		char *p = e->mem.addr + u * e->mem.unit;

		if (discard_state(u) == 'w')
			write_page(p);
		else if (discard_state(u) == 'r')
			read_page(p);
	}
}

static void discard_teardown(struct discard_env *e)
{
	mem_unmap(&e->mem);
	if (e->pagemap_fd >= 0)
		close(e->pagemap_fd);
	if (e->uffd >= 0)
		close(e->uffd);
	free(e->cats);
	free(e->vec);
}

/*
 * Categories of the pages once the memory was discarded (zapped). @keeps:
 * the zap left markers where the protection was. Otherwise there are only
 * empty entries and page-table holes, written but for hugetlb ones.
 */
static void expect_discarded(struct discard_env *e, bool keeps)
{
	__u64 cat = PAGE_IS_WPALLOWED | (is_hugetlb(e->mem.type) ? PAGE_IS_HUGE : 0);
	size_t i;

	for (i = 0; i < e->nr_pages; i++) {
		/* a page written since it was protected has no protection left */
		if (keeps && discard_state(i / e->per_unit) != 'w')
			e->cats[i] = cat | PAGE_IS_SWAPPED;
		else if (is_hugetlb(e->mem.type))
			e->cats[i] = cat;	/* "not written", see pagemap.rst */
		else
			e->cats[i] = cat | PAGE_IS_WRITTEN;
	}
}

/*
 * PAGEMAP_SCAN reports the categories expected, and /proc/self/pagemap has
 * PM_UFFD_WP set on the pages not written (here: the markers) only.
 */
static void check_wp_state(struct __test_metadata *_metadata, struct discard_env *e,
			   __u64 ret_mask)
{
	const struct scan_req all = { .ret = ret_mask };
	__u64 base = addr_of(e->mem.addr);
	size_t i, bad = 0;

	EXPECT_LE(0, check_scan(_metadata, e->pagemap_fd, base, e->cats, 0, e->nr_pages, &all,
				e->vec, e->nr_pages, NULL));
	EXPECT_LE(0, check_scan(_metadata, e->pagemap_fd, base, e->cats, 0, e->nr_pages,
				&req_written, e->vec, e->nr_pages, NULL));
	for (i = 0; i < e->nr_pages; i++) {
		__u64 ent = pagemap_entry(e->pagemap_fd, e->mem.addr + i * page_size);
		bool wp = !(e->cats[i] & PAGE_IS_WRITTEN);

		/* empty hugetlb entries: neither written nor protected */
		if (is_hugetlb(e->mem.type) && !(e->cats[i] & ~(PAGE_IS_WPALLOWED | PAGE_IS_HUGE)))
			wp = false;
		if (!!(ent & PM_UFFD_WP_BIT) == wp &&
		    !!(ent & PM_PRESENT_BIT) == !!(e->cats[i] & PAGE_IS_PRESENT))
			continue;
		if (!bad++)
			TH_LOG("page %zu: pagemap entry %#llx, expected PM_UFFD_WP %s, %s", i,
			       (unsigned long long)ent, wp ? "set" : "clear",
			       e->cats[i] & PAGE_IS_PRESENT ? "present" : "not present");
	}
	EXPECT_EQ(0, bad) TH_LOG("%zu pages with a wrong pagemap entry", bad);
}

static void check_discarded(struct __test_metadata *_metadata, struct discard_env *e)
{
	check_wp_state(_metadata, e, ALL_CATEGORIES & ~PAGE_IS_SOFT_DIRTY);
}

/*
 * Then write the first page of each untouched (U) unit: it is written now
 * whatever it was, and the other pages keep their state.
 */
static void write_untouched_units(struct __test_metadata *_metadata, struct discard_env *e)
{
	size_t i;

	for (i = 0; i < e->nr_pages; i++) {
		if (discard_state(i / e->per_unit) != 'U')
			continue;
		if (!(i % e->per_unit))
			write_page(e->mem.addr + i * page_size);
		e->cats[i] = PAGE_IS_WRITTEN;
	}
	EXPECT_LE(0, check_scan(_metadata, e->pagemap_fd, addr_of(e->mem.addr), e->cats, 0,
				e->nr_pages, &req_written, e->vec, e->nr_pages, NULL));
}

/*
 * MADV_DONTNEED and MADV_DONTNEED_LOCKED, over memory of every type. As
 * upstream does since UFFD_FEATURE_WP_UNPOPULATED, a zap drops all the
 * protection of anonymous memory, markers included: all of it reads as
 * written, in the pagemap too. Other memory keeps the protection as
 * markers, the private copies of a MAP_PRIVATE file mapping included.
 */
FIXTURE(dontneed) {
	struct discard_env e;
};

FIXTURE_VARIANT(dontneed) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(dontneed, anon) { .type = MEM_ANON };
FIXTURE_VARIANT_ADD(dontneed, thp) { .type = MEM_THP };
FIXTURE_VARIANT_ADD(dontneed, hugetlb_private) { .type = MEM_HUGETLB_PRIVATE };
FIXTURE_VARIANT_ADD(dontneed, hugetlb_shared) { .type = MEM_HUGETLB_SHARED };
FIXTURE_VARIANT_ADD(dontneed, hugetlb_memfd) { .type = MEM_HUGETLB_MEMFD };
FIXTURE_VARIANT_ADD(dontneed, shmem) { .type = MEM_SHMEM };
FIXTURE_VARIANT_ADD(dontneed, memfd) { .type = MEM_MEMFD };
FIXTURE_VARIANT_ADD(dontneed, file_private) { .type = MEM_FILE_PRIVATE };
FIXTURE_VARIANT_ADD(dontneed, file_shared) { .type = MEM_FILE_SHARED };

FIXTURE_SETUP(dontneed)
{
	discard_setup(_metadata, &self->e, variant->type);
}

FIXTURE_TEARDOWN(dontneed)
{
	discard_teardown(&self->e);
}

static void check_dontneed(struct __test_metadata *_metadata, struct discard_env *e, int advice)
{
	ASSERT_EQ(0, madvise(e->mem.addr, e->mem.len, advice))
		TH_LOG("madvise(%d): %s", advice, strerror(errno));
	expect_discarded(e, e->mem.type != MEM_ANON && e->mem.type != MEM_THP);
	check_discarded(_metadata, e);
	write_untouched_units(_metadata, e);
}

/* Issue 7.1: MADV_DONTNEED drops the uffd-wp markers of anonymous memory only */
TEST_F(dontneed, protection_kept_but_in_anon)
{
	check_dontneed(_metadata, &self->e, MADV_DONTNEED);
}

TEST_F(dontneed, locked_protection_kept_but_in_anon)
{
	check_dontneed(_metadata, &self->e, MADV_DONTNEED_LOCKED);
}

/*
 * Taking the data from under the mappings keeps the protection as markers,
 * as upstream does: truncating the file and extending it again, punching a
 * hole, or MADV_REMOVE (a hole punch through the mapping). Even the private
 * copies of a MAP_PRIVATE file mapping, which truncation discards, leave
 * markers. hugetlbfs truncation alone drops them (upstream too).
 */
enum { FILE_TRUNCATE, FILE_PUNCH_HOLE, FILE_MADV_REMOVE };

FIXTURE(file_discard) {
	struct discard_env e;
};

FIXTURE_VARIANT(file_discard) {
	enum mem_type type;
	int how;
};

FIXTURE_VARIANT_ADD(file_discard, shmem_madv_remove) {
	.type = MEM_SHMEM, .how = FILE_MADV_REMOVE };
FIXTURE_VARIANT_ADD(file_discard, memfd_truncate) { .type = MEM_MEMFD, .how = FILE_TRUNCATE };
FIXTURE_VARIANT_ADD(file_discard, memfd_punch_hole) {
	.type = MEM_MEMFD, .how = FILE_PUNCH_HOLE };
/* ext2 cannot punch holes */
FIXTURE_VARIANT_ADD(file_discard, file_private_truncate) {
	.type = MEM_FILE_PRIVATE, .how = FILE_TRUNCATE };
FIXTURE_VARIANT_ADD(file_discard, file_shared_truncate) {
	.type = MEM_FILE_SHARED, .how = FILE_TRUNCATE };
FIXTURE_VARIANT_ADD(file_discard, hugetlb_shared_madv_remove) {
	.type = MEM_HUGETLB_SHARED, .how = FILE_MADV_REMOVE };
FIXTURE_VARIANT_ADD(file_discard, hugetlb_memfd_truncate) {
	.type = MEM_HUGETLB_MEMFD, .how = FILE_TRUNCATE };
FIXTURE_VARIANT_ADD(file_discard, hugetlb_memfd_punch_hole) {
	.type = MEM_HUGETLB_MEMFD, .how = FILE_PUNCH_HOLE };

FIXTURE_SETUP(file_discard)
{
	discard_setup(_metadata, &self->e, variant->type);
}

FIXTURE_TEARDOWN(file_discard)
{
	discard_teardown(&self->e);
}

TEST_F(file_discard, protection_kept)
{
	struct discard_env *e = &self->e;
	int ret;

	switch (variant->how) {
	case FILE_TRUNCATE:
		ret = ftruncate(e->mem.fd, 0);
		if (!ret)
			ret = ftruncate(e->mem.fd, e->mem.len);
		break;
	case FILE_PUNCH_HOLE:
		ret = fallocate(e->mem.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
				e->mem.len);
		break;
	default:
		ret = madvise(e->mem.addr, e->mem.len, MADV_REMOVE);
		break;
	}
	ASSERT_EQ(0, ret) TH_LOG("discarding the file's data: %s", strerror(errno));
	expect_discarded(e, !is_hugetlb(e->mem.type) || variant->how != FILE_TRUNCATE);
	check_discarded(_metadata, e);
	write_untouched_units(_metadata, e);
}

/*
 * MADV_FREE on protected anonymous memory only lets reclaim take the
 * pages: until then they stay mapped and protected, and markers stay. A
 * page in swap is freed at once, and its protection with it.
 */
FIXTURE(lazyfree) {
	struct discard_env e;
};

FIXTURE_VARIANT(lazyfree) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(lazyfree, anon) { .type = MEM_ANON };
FIXTURE_VARIANT_ADD(lazyfree, thp) { .type = MEM_THP };

FIXTURE_SETUP(lazyfree)
{
	discard_setup(_metadata, &self->e, variant->type);
}

FIXTURE_TEARDOWN(lazyfree)
{
	discard_teardown(&self->e);
}

TEST_F(lazyfree, protection_kept)
{
	struct discard_env *e = &self->e;
	size_t i;

	ASSERT_EQ(0, madvise(e->mem.addr, e->mem.len, MADV_FREE));
	for (i = 0; i < e->nr_pages; i++) {
		char state = discard_state(i / e->per_unit);
		bool first = !(i % e->per_unit);

		/* populated before protection, or the 4 KiB touched after it */
		if (state == 'W' || state == 'R' || (first && state != 'U'))
			e->cats[i] = PAGE_IS_WPALLOWED | PAGE_IS_PRESENT |
				     (state == 'w' ? PAGE_IS_WRITTEN : 0);
		else
			e->cats[i] = PAGE_IS_WPALLOWED | PAGE_IS_SWAPPED;
	}
	check_wp_state(_metadata, e, PAGE_IS_WPALLOWED | PAGE_IS_PRESENT | PAGE_IS_SWAPPED |
				     PAGE_IS_WRITTEN);
}

/* (guest: needs swap) */
TEST_F(lazyfree, swapped_out_protection_dropped)
{
	struct discard_env *e = &self->e;
	bool *want = calloc(e->nr_pages, sizeof(*want));
	size_t i;

	ASSERT_TRUE(in_guest()) TH_LOG("needs the guest (swap)");
	ASSERT_TRUE(!!want);
	/* every page populated and protected, then swapped out */
	for (i = 0; i < e->nr_pages; i++)
		write_page(e->mem.addr + i * page_size);
	ASSERT_EQ(0, uffd_write_protect(e->uffd, e->mem.addr, e->mem.len));
	for (i = 0; i < e->nr_pages; i++) {
		want[i] = true;
		e->cats[i] = PAGE_IS_WPALLOWED | PAGE_IS_SWAPPED;
	}
	ASSERT_TRUE(page_out(_metadata, e->pagemap_fd, e->mem.addr, e->nr_pages, want));
	check_wp_state(_metadata, e, PAGE_IS_WPALLOWED | PAGE_IS_PRESENT | PAGE_IS_SWAPPED |
				     PAGE_IS_WRITTEN);

	ASSERT_EQ(0, madvise(e->mem.addr, e->mem.len, MADV_FREE));
	for (i = 0; i < e->nr_pages; i++)
		e->cats[i] = PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN;
	check_wp_state(_metadata, e, PAGE_IS_WPALLOWED | PAGE_IS_PRESENT | PAGE_IS_SWAPPED |
				     PAGE_IS_WRITTEN);
	free(want);
}

/* ---------------------------------------------------------------------- */
/* Hugetlb page tables shared between processes                            */
/* ---------------------------------------------------------------------- */

/*
 * Guards the walks of hugetlb page tables against pmd unsharing: a shared
 * hugetlb mapping of a whole 1 GiB aligned GiB shares its pmd page with every
 * other process mapping the same GiB of the file (huge_pmd_share()). A hole
 * punch anywhere in it unshares the page from all of them but one, which
 * frees it when it unmaps. pagemap read(), PAGEMAP_SCAN, smaps, numa_maps,
 * mincore() and mbind() walking the page tables of the others must not be
 * left with a pointer into it.
 *
 * It takes two 1 GiB aligned GiBs of address space: 64-bit only.
 */
#if __SIZEOF_POINTER__ == 8

/* Huge pages in use: the even ones stay, the odd ones are punched */
#define SHARE_PAGES		8
#define SHARE_SECONDS		15
#define SHARE_CHILD_CYCLES	4	/* map, share, punch; per child */
#define SHARE_WALKERS		5	/* threads */
#define PM_PFN_MASK		0x007fffffffffffffULL
#define PM_SOFT_DIRTY		0x0080000000000000ULL
#define PM_EXCLUSIVE		0x0100000000000000ULL
#define PM_UFFD_WP		0x0200000000000000ULL
#define PM_FILE			0x2000000000000000ULL
#define PM_PRESENT		0x8000000000000000ULL

enum share_count {
	SHARE_TOUCHES,
	SHARE_IOCTL_SCANS,
	SHARE_READ_SCANS,
	SHARE_STAT_READS,
	SHARE_WP_SCANS,
	SHARE_NR_COUNTS
};

static const char * const share_count_name[SHARE_NR_COUNTS] = {
	"touch rounds", "PAGEMAP_SCANs", "pagemap reads",
	"smaps/numa_maps/mincore rounds", "WP_MATCHING scans",
};

FIXTURE(pmd_share) {
	struct mem file;	/* a 1 GiB hugetlbfs file, and a reservation */
	char *addr;		/* all of the file, on a 1 GiB boundary */
	struct mem wp;		/* a reservation for the uffd-wp mapping */
	char *wp_addr;		/* SHARE_PAGES huge pages of the file, async uffd-wp */
	size_t wp_len;
	int pagemap_fd;
	int uffd;
	size_t hp;		/* pages in a huge page */
	__u64 pfn[SHARE_PAGES];	/* the frames the file's huge pages got */
	__u64 mapped_cats;	/* PAGEMAP_SCAN categories of a mapped huge page */
	int stop;
	pthread_mutex_t lock;
	char failure[512];	/* what a thread found wrong first */
	unsigned long count[SHARE_NR_COUNTS];
};

FIXTURE_SETUP(pmd_share)
{
	char *want;
	size_t i;

	global_init();
	self->hp = HPAGE_SIZE / page_size;
	self->uffd = -1;
	self->file.fd = -1;
	self->wp.fd = -1;
	pthread_mutex_init(&self->lock, NULL);
	self->pagemap_fd = open_pagemap(0);
	ASSERT_LE(0, self->pagemap_fd);

	self->file.fd = memfd_create("pmd_share", MFD_HUGETLB);
	ASSERT_LE(0, self->file.fd);
	ASSERT_EQ(0, ftruncate(self->file.fd, SZ_1G));
	want = reserve_aligned(&self->file, SZ_1G, SZ_1G);
	ASSERT_TRUE(!!want);
	/* NORESERVE: the file is larger than the hugetlb pool */
	self->addr = mmap(want, SZ_1G, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_NORESERVE | MAP_FIXED, self->file.fd, 0);
	ASSERT_EQ(want, self->addr);
	for (i = 0; i < SHARE_PAGES; i++)
		write_page(self->addr + i * HPAGE_SIZE);
	for (i = 0; i < SHARE_PAGES; i++) {
		__u64 e = pagemap_entry(self->pagemap_fd, self->addr + i * HPAGE_SIZE);

		ASSERT_TRUE(e & PM_PRESENT);
		self->pfn[i] = e & PM_PFN_MASK;
		ASSERT_NE(0, self->pfn[i]) TH_LOG("frame numbers are hidden: needs root");
		ASSERT_EQ(0, self->pfn[i] % self->hp);
	}

	/* The same pages again, in a GiB of their own, tracked by uffd-wp */
	self->wp_len = SHARE_PAGES * HPAGE_SIZE;
	want = reserve_aligned(&self->wp, self->wp_len, SZ_1G);
	ASSERT_TRUE(!!want);
	self->wp_addr = mmap(want, self->wp_len, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_NORESERVE | MAP_FIXED, self->file.fd, 0);
	ASSERT_EQ(want, self->wp_addr);
	ASSERT_EQ(0, madvise(self->wp_addr, self->wp_len, MADV_DONTFORK));
	self->uffd = uffd_open_wp_async();
	ASSERT_LE(0, self->uffd);
	ASSERT_EQ(0, uffd_register_wp(self->uffd, self->wp_addr, self->wp_len));
}

FIXTURE_TEARDOWN(pmd_share)
{
	mem_unmap(&self->wp);
	mem_unmap(&self->file);
	close(self->pagemap_fd);
	if (self->uffd >= 0)
		close(self->uffd);
}

static char *share_page(struct _test_data_pmd_share *self, size_t i)
{
	return self->addr + i * HPAGE_SIZE;
}

static bool page_mapped(int pagemap_fd, const char *p)
{
	return pagemap_entry(pagemap_fd, p) & PM_PRESENT;
}

static int punch_huge_page(struct _test_data_pmd_share *self, size_t i)
{
	return fallocate(self->file.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			 i * HPAGE_SIZE, HPAGE_SIZE);
}

static void share_fail(struct _test_data_pmd_share *self, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&self->lock);
	if (!self->failure[0]) {
		va_start(ap, fmt);
		vsnprintf(self->failure, sizeof(self->failure), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&self->lock);
	__atomic_store_n(&self->stop, 1, __ATOMIC_SEQ_CST);
}

static bool share_stopped(struct _test_data_pmd_share *self)
{
	return __atomic_load_n(&self->stop, __ATOMIC_SEQ_CST);
}

static void share_counted(struct _test_data_pmd_share *self, enum share_count c)
{
	__atomic_fetch_add(&self->count[c], 1, __ATOMIC_RELAXED);
}

/*
 * A child has the mapping but no page table for it (fork copies none for
 * shared mappings): touching huge page 0 shows it page 2, which only the
 * parent touched, if and only if the pmd page is shared. It then punches
 * huge page 1: the pmd page stays with one of the two, the other has its pud
 * cleared and sees none of the pages. Exit status: bit 0 shared, bit 1 page
 * 2 still seen after the punch, 4 an error.
 */
static int punching_child(struct _test_data_pmd_share *self)
{
	int fd = open_pagemap(0);
	int ret = 0;

	if (fd < 0)
		return 4;
	read_page(share_page(self, 0));
	if (page_mapped(fd, share_page(self, 2)))
		ret |= 1;
	if (punch_huge_page(self, 1))
		return 4;
	if (page_mapped(fd, share_page(self, 2)))
		ret |= 2;
	return ret;
}

/* The pmd page is shared, and a hole punch unshares it */
static void check_pmd_sharing(struct __test_metadata *_metadata,
			      struct _test_data_pmd_share *self)
{
	bool parent_sees;
	int status;
	__u64 e;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(punching_child(self));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_GT(4, WEXITSTATUS(status));
	ASSERT_TRUE(WEXITSTATUS(status) & 1) TH_LOG("the child did not share the pmd page");
	parent_sees = page_mapped(self->pagemap_fd, share_page(self, 2));
	ASSERT_NE(parent_sees, !!(WEXITSTATUS(status) & 2))
		TH_LOG("after the punch, parent %s page 2 and the child %s",
		       parent_sees ? "sees" : "doesn't see",
		       WEXITSTATUS(status) & 2 ? "did" : "didn't");
	read_page(share_page(self, 2));
	write_page(share_page(self, 1));
	e = pagemap_entry(self->pagemap_fd, share_page(self, 2));
	ASSERT_TRUE(e & PM_PRESENT);
	ASSERT_EQ(self->pfn[2], e & PM_PFN_MASK);
}

/*
 * Protect all of the uffd-wp mapping with one WP_MATCHING scan while it has
 * no page table yet: the walk finds a hole, allocates the page table and
 * leaves a marker in the first huge page.
 */
static void protect_wp_mapping(struct __test_metadata *_metadata,
			       struct _test_data_pmd_share *self)
{
	const struct scan_req all = {
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.ret = ALL_CATEGORIES,
	};
	__u64 base = addr_of(self->wp_addr), walk_end, next = base;
	struct page_region vec[SHARE_PAGES];
	long n, r;
	size_t i;
	__u64 e;

	n = pagemap_scan(self->pagemap_fd, base, base + self->wp_len, vec, SHARE_PAGES, &all,
			 &walk_end);
	ASSERT_LT(0, n);
	ASSERT_EQ(base + self->wp_len, walk_end);
	for (r = 0; r < n; r++) {
		ASSERT_EQ(next, vec[r].start);
		ASSERT_EQ(0, vec[r].categories & (PAGE_IS_PRESENT | PAGE_IS_WRITTEN));
		next = vec[r].end;
	}
	ASSERT_EQ(base + self->wp_len, next);
	/* The hole was the first huge page; the others are none, not written */
	for (i = 0; i < SHARE_PAGES; i++) {
		e = pagemap_entry(self->pagemap_fd, self->wp_addr + i * HPAGE_SIZE);
		ASSERT_EQ(i ? 0 : PM_UFFD_WP, e & (PM_UFFD_WP | PM_PRESENT)) TH_LOG("page %zu", i);
	}
}

/* Map the huge pages in use, the punched ones anew */
static void touch_share_pages(struct _test_data_pmd_share *self)
{
	size_t i;

	for (i = 0; i < SHARE_PAGES; i++) {
		if (i % 2)
			write_page(share_page(self, i));
		else
			read_page(share_page(self, i));
	}
}

/* Map the pages again after the punches unmapped them */
static void *share_toucher(void *arg)
{
	struct _test_data_pmd_share *self = arg;

	while (!share_stopped(self)) {
		touch_share_pages(self);
		share_counted(self, SHARE_TOUCHES);
	}
	return NULL;
}

/*
 * PAGEMAP_SCAN of the whole GiB for mapped pages: only the huge pages in use
 * can be there, whole, each with the categories of a mapped page.
 */
static void *share_scan_ioctl(void *arg)
{
	const struct scan_req mapped = {
		.anyof = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.ret = ALL_CATEGORIES,
	};
	struct _test_data_pmd_share *self = arg;
	__u64 base = addr_of(self->addr), walk_end;
	struct page_region vec[SHARE_PAGES];
	long n, i;

	while (!share_stopped(self)) {
		n = pagemap_scan(self->pagemap_fd, base, base + SZ_1G, vec, SHARE_PAGES,
				 &mapped, &walk_end);
		if (n < 0 || walk_end != base + SZ_1G) {
			share_fail(self, "PAGEMAP_SCAN returned %ld (errno %d), walk_end %#llx",
				   n, errno, walk_end);
			break;
		}
		for (i = 0; i < n; i++) {
			if (vec[i].start % HPAGE_SIZE || vec[i].end % HPAGE_SIZE ||
			    vec[i].start >= vec[i].end || vec[i].start < base ||
			    vec[i].end > base + SHARE_PAGES * HPAGE_SIZE ||
			    (vec[i].categories & ~PAGE_IS_SOFT_DIRTY) != self->mapped_cats) {
				share_fail(self,
					   "PAGEMAP_SCAN region [%#llx, %#llx) categories %#llx, expected huge pages [0, %d) with %#llx",
					   vec[i].start - base, vec[i].end - base,
					   vec[i].categories, SHARE_PAGES, self->mapped_cats);
				break;
			}
		}
		share_counted(self, SHARE_IOCTL_SCANS);
	}
	return NULL;
}

/*
 * The pagemap entries of huge page @i: all none, or all mapped with the
 * frames of one huge page, the one the file has if it was never punched.
 */
static bool check_huge_page_entries(struct _test_data_pmd_share *self, const __u64 *e,
				    size_t i)
{
	const __u64 mapped_ok = PM_PRESENT | PM_FILE | PM_EXCLUSIVE | PM_SOFT_DIRTY |
				PM_PFN_MASK;
	__u64 first = e[0] & PM_PFN_MASK;
	size_t j;

	if (!(e[0] & PM_PRESENT)) {
		for (j = 0; j < self->hp; j++) {
			if (e[j] & ~PM_SOFT_DIRTY) {
				share_fail(self,
					   "pagemap: huge page %zu entry %zu is %#llx, entry 0 %#llx",
					   i, j, e[j], e[0]);
				return false;
			}
		}
		return true;
	}
	if (i >= SHARE_PAGES || first % self->hp || (!(i % 2) && first != self->pfn[i])) {
		share_fail(self, "pagemap: huge page %zu mapped at frame %#llx (set up at %#llx)",
			   i, first, i < SHARE_PAGES ? self->pfn[i] : 0);
		return false;
	}
	for (j = 0; j < self->hp; j++) {
		if (!(e[j] & PM_PRESENT) || !(e[j] & PM_FILE) || (e[j] & ~mapped_ok) ||
		    (e[j] & PM_PFN_MASK) != first + j) {
			share_fail(self, "pagemap: huge page %zu entry %zu is %#llx, entry 0 %#llx",
				   i, j, e[j], e[0]);
			return false;
		}
	}
	return true;
}

/* pagemap read() of the whole GiB */
static void *share_scan_read(void *arg)
{
	struct _test_data_pmd_share *self = arg;
	size_t len = SZ_1G / page_size * sizeof(__u64), i;
	off_t off = addr_of(self->addr) / page_size * sizeof(__u64);
	__u64 *e = malloc(len);
	ssize_t got;

	if (!e) {
		share_fail(self, "no memory for the pagemap entries");
		return NULL;
	}
	while (!share_stopped(self)) {
		got = pread(self->pagemap_fd, e, len, off);
		if (got != (ssize_t)len) {
			share_fail(self, "pagemap read %zd of %zu bytes (errno %d)", got, len,
				   errno);
			break;
		}
		for (i = 0; i < SZ_1G / HPAGE_SIZE; i++)
			if (!check_huge_page_entries(self, e + i * self->hp, i))
				break;
		share_counted(self, SHARE_READ_SCANS);
	}
	free(e);
	return NULL;
}

/* The sum of the "N<node>=<pages>" counts of the numa_maps line of @addr */
static long numa_maps_pages(const void *addr)
{
	FILE *f = fopen("/proc/self/numa_maps", "r");
	char line[1024], start[32], *tok, *save;
	long pages = -1;
	unsigned long n;
	int node;

	if (!f)
		return -1;
	snprintf(start, sizeof(start), "%08lx ", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, start, strlen(start)))
			continue;
		pages = 0;
		for (tok = strtok_r(line, "\n ", &save); tok; tok = strtok_r(NULL, "\n ", &save))
			if (sscanf(tok, "N%d=%lu", &node, &n) == 2)
				pages += n;
		break;
	}
	fclose(f);
	return pages;
}

static bool read_whole_file(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return false;
	do {
		n = read(fd, buf, sizeof(buf));
	} while (n > 0);
	close(fd);
	return n == 0;
}

/*
 * smaps, smaps_rollup, numa_maps and mincore() of the GiB: no more huge
 * pages than are in use, and mincore() sees none of the pages never used.
 */
static void *share_scan_stats(void *arg)
{
	struct _test_data_pmd_share *self = arg;
	unsigned char *vec = malloc(SZ_1G / page_size);
	unsigned long shared_kb, private_kb, hp_kb = HPAGE_SIZE >> 10;
	char val[64], val2[64];
	size_t i;
	long pages;

	if (!vec) {
		share_fail(self, "no memory for the mincore vector");
		return NULL;
	}
	while (!share_stopped(self)) {
		if (!smaps_field(self->addr, "Shared_Hugetlb:", val, sizeof(val)) ||
		    !smaps_field(self->addr, "Private_Hugetlb:", val2, sizeof(val2))) {
			share_fail(self, "no Hugetlb fields in smaps");
			break;
		}
		shared_kb = strtoul(val, NULL, 10);
		private_kb = strtoul(val2, NULL, 10);
		if (shared_kb > SHARE_PAGES * hp_kb || shared_kb % hp_kb ||
		    private_kb > SHARE_PAGES * hp_kb || private_kb % hp_kb) {
			share_fail(self, "smaps: Shared_Hugetlb %lu kB, Private_Hugetlb %lu kB",
				   shared_kb, private_kb);
			break;
		}
		if (!read_whole_file("/proc/self/smaps_rollup")) {
			share_fail(self, "smaps_rollup read failed (errno %d)", errno);
			break;
		}
		pages = numa_maps_pages(self->addr);
		if (pages < 0 || pages > SHARE_PAGES) {
			share_fail(self, "numa_maps: %ld huge pages", pages);
			break;
		}
		if (mincore(self->addr, SZ_1G, vec)) {
			share_fail(self, "mincore failed (errno %d)", errno);
			break;
		}
		for (i = 0; i < SZ_1G / page_size; i++) {
			if (vec[i] > 1 || (vec[i] && i >= SHARE_PAGES * self->hp)) {
				share_fail(self, "mincore: page %zu is %u", i, vec[i]);
				break;
			}
		}
		share_counted(self, SHARE_STAT_READS);
	}
	free(vec);
	return NULL;
}

/*
 * Write some of the pages of the uffd-wp mapping, then WP_MATCHING: those
 * written are reported and protected again. Punches make an odd page none,
 * which is not written; the even ones are never punched, so exactly the
 * even pages written since the last scan are reported.
 */
static void *share_scan_wp(void *arg)
{
	struct _test_data_pmd_share *self = arg;
	__u64 base = addr_of(self->wp_addr), walk_end;
	struct page_region vec[SHARE_PAGES];
	bool written[SHARE_PAGES], reported[SHARE_PAGES];
	uint64_t rnd = 0x9e3779b97f4a7c15ULL;
	__u64 a;
	long n, r;
	size_t i;

	while (!share_stopped(self)) {
		uint64_t pick = next_random(&rnd);

		for (i = 0; i < SHARE_PAGES; i++) {
			written[i] = pick & (1ULL << i);
			reported[i] = false;
			if (written[i])
				write_page(self->wp_addr + i * HPAGE_SIZE);
		}
		n = pagemap_scan(self->pagemap_fd, base, base + self->wp_len, vec, SHARE_PAGES,
				 &req_protect_written, &walk_end);
		if (n < 0 || walk_end != base + self->wp_len) {
			share_fail(self, "WP_MATCHING scan returned %ld (errno %d)", n, errno);
			break;
		}
		for (r = 0; r < n; r++) {
			if (vec[r].start % HPAGE_SIZE || vec[r].end % HPAGE_SIZE ||
			    vec[r].start < base || vec[r].end > base + self->wp_len ||
			    vec[r].start >= vec[r].end) {
				share_fail(self, "WP_MATCHING region [%#llx, %#llx)",
					   vec[r].start - base, vec[r].end - base);
				return NULL;
			}
			for (a = vec[r].start; a < vec[r].end; a += HPAGE_SIZE)
				reported[(a - base) / HPAGE_SIZE] = true;
		}
		for (i = 0; i < SHARE_PAGES; i++) {
			if (reported[i] != written[i] && (reported[i] || !(i % 2))) {
				share_fail(self, "WP_MATCHING: page %zu written %d, reported %d",
					   i, written[i], reported[i]);
				return NULL;
			}
		}
		share_counted(self, SHARE_WP_SCANS);
	}
	return NULL;
}

/*
 * Share the pmd page (or make one the parent then shares), punch one of the
 * odd huge pages, which unshares the pmd page, and map the file again,
 * which frees the pmd page if this child was left with it. Exit status 0
 * if the pmd page was seen shared at least once, 1 if not, 2 on an error.
 */
static int sharer_child(struct _test_data_pmd_share *self, unsigned long round)
{
	int fd = open_pagemap(0);
	bool shared = false;
	size_t hole;
	int c;

	if (fd < 0)
		return 2;
	for (c = 0; c < SHARE_CHILD_CYCLES; c++) {
		hole = 2 * ((round * SHARE_CHILD_CYCLES + c) % (SHARE_PAGES / 2)) + 1;
		read_page(share_page(self, 0));
		shared |= page_mapped(fd, share_page(self, 2));
		write_page(share_page(self, hole));
		if (punch_huge_page(self, hole))
			return 2;
		if (mmap(self->addr, SZ_1G, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_NORESERVE | MAP_FIXED, self->file.fd, 0) != self->addr)
			return 2;
	}
	return shared ? 0 : 1;
}

/* The nodes of the huge pages in use, from move_pages() */
static bool share_page_nodes(struct _test_data_pmd_share *self, int *node)
{
	void *pages[SHARE_PAGES];
	size_t i;

	for (i = 0; i < SHARE_PAGES; i++)
		pages[i] = share_page(self, i);
	return !syscall(__NR_move_pages, 0, SHARE_PAGES, pages, NULL, node, 0);
}

static bool share_pages_on_node(struct __test_metadata *_metadata,
				struct _test_data_pmd_share *self, int want)
{
	int node[SHARE_PAGES];
	size_t i;

	/* Migration unshared the pmd page: this process may see none */
	touch_share_pages(self);
	if (!share_page_nodes(self, node)) {
		TH_LOG("move_pages failed (errno %d)", errno);
		return false;
	}
	for (i = 0; i < SHARE_PAGES; i++) {
		if (node[i] != want) {
			TH_LOG("huge page %zu is on node %d, not %d", i, node[i], want);
			return false;
		}
	}
	return true;
}

/*
 * With a child sharing the pmd page, mbind(MPOL_MF_MOVE_ALL) moves the huge
 * pages to node 1 and migrate_pages() moves them back to node 0.
 */
static void check_shared_migration(struct __test_metadata *_metadata,
				   struct _test_data_pmd_share *self)
{
	unsigned long node0 = 1UL << 0, node1 = 1UL << 1;
	unsigned long maxnode = sizeof(node0) * 8;
	int ready[2], done[2], status;
	char c = 0;
	pid_t pid;

	ASSERT_EQ(0, access("/sys/devices/system/node/node1", F_OK))
		TH_LOG("needs two NUMA nodes");
	touch_share_pages(self);
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = open_pagemap(0);

		close(done[1]);
		read_page(share_page(self, 0));
		c = fd >= 0 && page_mapped(fd, share_page(self, 2));
		if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) != 0)
			_exit(1);
		_exit(0);
	}
	close(done[0]);
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	ASSERT_EQ(1, c) TH_LOG("the child did not share the pmd page");

	ASSERT_EQ(0, syscall(__NR_mbind, self->addr, SZ_1G, MPOL_BIND, &node1, maxnode,
			     MPOL_MF_MOVE_ALL | MPOL_MF_STRICT))
		TH_LOG("mbind failed (errno %d)", errno);
	ASSERT_TRUE(share_pages_on_node(_metadata, self, 1));
	ASSERT_EQ(0, syscall(__NR_mbind, self->addr, SZ_1G, MPOL_DEFAULT, NULL, 0, 0));
	ASSERT_LE(0, syscall(__NR_migrate_pages, 0, maxnode, &node1, &node0))
		TH_LOG("migrate_pages failed (errno %d)", errno);
	ASSERT_TRUE(share_pages_on_node(_metadata, self, 0));

	close(done[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	close(ready[0]);
}

/*
 * Threads of this process walk its page tables in every way, while children
 * share the pmd page, punch holes and unmap it, for SHARE_SECONDS. KASAN
 * reports a walk that used the pmd page after it was freed; the walkers
 * check that all they saw is what the file could map there. Then mbind()
 * and migrate_pages() move the shared pages to the other node and back.
 */
TEST_F_TIMEOUT(pmd_share, walks_race_hole_punches_and_unshares, 180)
{
	void *(*const walker[SHARE_WALKERS])(void *) = {
		share_toucher, share_scan_ioctl, share_scan_read, share_scan_stats,
		share_scan_wp,
	};
	const struct scan_req all = { .ret = ALL_CATEGORIES };
	unsigned long rounds = 0, shared = 0;
	__u64 base = addr_of(self->addr);
	struct page_region vec[SHARE_PAGES];
	pthread_t threads[SHARE_WALKERS];
	struct timespec t0;
	int status, c;
	size_t i;
	pid_t pid;

	ASSERT_TRUE(in_guest()) TH_LOG("needs the guest, for KASAN and lockdep");
	check_pmd_sharing(_metadata, self);
	protect_wp_mapping(_metadata, self);
	touch_share_pages(self);
	ASSERT_EQ(1, pagemap_scan(self->pagemap_fd, base, base + HPAGE_SIZE, vec, 1, &all, NULL));
	self->mapped_cats = vec[0].categories & ~PAGE_IS_SOFT_DIRTY;
	ASSERT_EQ(PAGE_IS_PRESENT | PAGE_IS_FILE, self->mapped_cats & (PAGE_IS_PRESENT |
		  PAGE_IS_FILE | PAGE_IS_SWAPPED));

	for (i = 0; i < SHARE_WALKERS; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, walker[i], self));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!share_stopped(self) && seconds_since(&t0) < SHARE_SECONDS) {
		pid = fork();
		if (pid < 0) {
			share_fail(self, "fork failed (errno %d)", errno);
			break;
		}
		if (!pid)
			_exit(sharer_child(self, rounds));
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) > 1) {
			share_fail(self, "sharing child failed, status %#x", status);
			break;
		}
		shared += !WEXITSTATUS(status);
		rounds++;
	}
	__atomic_store_n(&self->stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < SHARE_WALKERS; i++)
		pthread_join(threads[i], NULL);
	ASSERT_FALSE(self->failure[0]) TH_LOG("%s", self->failure);

	TH_LOG("%lu children, %lu of them saw the pmd page shared", rounds, shared);
	for (c = 0; c < SHARE_NR_COUNTS; c++) {
		TH_LOG("%lu %s", self->count[c], share_count_name[c]);
		EXPECT_LE(2, self->count[c]);
	}
	ASSERT_LE(10, rounds);
	ASSERT_LE(rounds / 4, shared) TH_LOG("the pmd page was too rarely shared");

	check_shared_migration(_metadata, self);
}

#endif /* __SIZEOF_POINTER__ == 8 */

TEST_HARNESS_MAIN
