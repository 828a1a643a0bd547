// SPDX-License-Identifier: GPL-2.0
/*
 * pagemap_bench: what it costs a process to learn which of its pages were
 * written, mechanism by mechanism, on the same memory and the same writes.
 * Runs unmodified on this series and on upstream kernels >= 6.8; what a
 * kernel lacks is reported as "n/a", never as a crash.
 *
 * A point of the matrix is an anonymous range (its size, 4K pages or THP,
 * split into 1 or more VMAs, with or without a second thread of the process
 * spinning on another CPU) and a set of pages to write in each cycle (a
 * fraction of the range, as random isolated pages or as dense runs; the same
 * pages for every mechanism). For each mechanism in turn every page of the
 * range is written (populated), the mechanism is armed, and each cycle
 *	writes	one word into each chosen page, in ascending order (timed:
 *		this includes the faults the mechanism takes),
 *	collects the set of pages written and re-arms the mechanism (timed,
 *		with the TLB shootdowns it caused: the "TLB" row of
 *		/proc/interrupts summed over the CPUs, before and after),
 *	checks	the set against a truth bitmap of the pages written since the
 *		last collect (not timed).
 * Then the mechanism is disarmed. The next one starts from the same state:
 * on THP points the range is mapped afresh, as the 4K writes split huge
 * pmds and only a new mapping frees the page tables that leaves; on
 * 4K points they are kept (which spares a TCG guest most of its populate
 * time) and the populating writes undo what protection the last mechanism
 * left, such as the read-only ptes of clear_refs. The first --warmup cycles
 * are checked but not timed.
 *
 * Mechanisms (letter and name, for --mech):
 *  a scan-wp	PAGEMAP_SCAN with PM_SCAN_WP_MATCHING, category_mask =
 *		return_mask = PAGE_IS_WRITTEN: get and reset in one call,
 *		looped on walk_end (Wine's GetWriteWatch); async uffd-wp.
 *  b scan+uffd	PAGEMAP_SCAN get without WP, then UFFDIO_WRITEPROTECT of
 *		the whole range; async uffd-wp.
 *  c pm-uffd	pagemap read(): a present or swapped page without the
 *		uffd-wp bit 57 was written; then UFFDIO_WRITEPROTECT of the
 *		range; async uffd-wp.
 *  d sd-read	soft-dirty: pagemap read() of bit 55, then clear_refs "4".
 *  e sd-scan	soft-dirty through PAGEMAP_SCAN (PAGE_IS_SOFT_DIRTY), then
 *		clear_refs "4".
 *  f mprotect	mprotect(PROT_READ) of the range; a SIGSEGV handler records
 *		the page and makes it writable again (Wine's fallback).
 *  g uffd-sync	synchronous uffd-wp: a handler thread records each fault and
 *		un-protects the faulting page (UFFDIO_WRITEPROTECT mode 0).
 *  h mincore	mincore() of the range: tracks nothing, the floor of a scan.
 * clear_refs "4" acts on the whole process, so d and e pay for the rest of
 * the process too, as a real user of soft-dirty does.
 *
 * Granularity the truth check holds each mechanism to:
 *  - a, b, c, g: the 4K page, on THP too: an async uffd-wp write fault on a
 *    protected huge pmd splits it and un-protects only the page written;
 *    the sync handler un-protects only the faulting page.
 *  - f: the 4K page: the handler makes only the faulting page writable.
 *  - d, e: the 4K page on 4K points. On THP points the huge page: a write to
 *    a clean huge pmd dirties all of it, so a reported page that was not
 *    written is accepted when a page of the same naturally aligned huge page
 *    was written in that cycle.
 *  - h: nothing to check (mincore does not see writes); pages that are not
 *    resident are counted and warned about.
 * A written page that is not reported fails, for every mechanism.
 *
 * 4096 VMAs: the range is cut into equal chunks and every other chunk gets
 * MADV_DONTDUMP. Adjacent VMAs then differ in vm_flags and never merge, while
 * all of them stay writable, registered and tracked, and mprotect() of the
 * whole range (mechanism f) keeps them apart. The count is checked in
 * /proc/self/maps. THP points use MADV_HUGEPAGE, 4K points MADV_NOHUGEPAGE,
 * and the share of the range in huge pages (AnonHugePages of
 * /proc/self/smaps) is reported as thp%. Before a THP point populates, it
 * asks for compaction (vm.compact_memory, when allowed) so that a mechanism
 * does not get fewer huge pages because an earlier one fragmented memory;
 * the thp_fault_alloc and thp_fault_fallback counts of its populate tell a
 * failed allocation from a range that was never eligible.
 *
 * Mechanism f splits a VMA at each isolated writable page: a point whose
 * writes would need more VMAs than vm.max_map_count allows is "n/a" for it.
 *
 * On busy points the spinning thread's share of its CPU is measured too: a
 * thread that another task pushed off its CPU needs no shootdown, so a low
 * share (a shared machine) explains low TLB counts.
 *
 * Output: one block per point as it completes, a summary of the cycle cost
 * (median ms, and ratio to scan-wp) at the end, and with --csv one row per
 * mechanism and point; "--csv -" prints the CSV after the summary, between
 * "pagemap_bench: csv begin" and "csv end" lines, for a guest whose only
 * output is its console. Exit status: 0 if every check passed, 1 if a check or
 * an operation of a mechanism failed or a mechanism named by --require was
 * n/a, 2 on bad usage, a failed setup, or an error of a fault handler (which
 * cannot let the run go on).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <linux/fs.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>

#ifndef PAGEMAP_SCAN
#error "needs the uapi headers of a kernel with PAGEMAP_SCAN (headers_install)"
#endif

#ifndef BIT_ULL
#define BIT_ULL(nr)		(1ULL << (nr))
#endif
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#endif

/* Bits of a /proc/pid/pagemap entry */
#define PM_SOFT_DIRTY		BIT_ULL(55)
#define PM_UFFD_WP		BIT_ULL(57)
#define PM_SWAP			BIT_ULL(62)
#define PM_PRESENT		BIT_ULL(63)

#define BITS_PER_LONG		(8 * sizeof(long))
#define MAX_LIST		32
#define MAX_POINTS		1024
#define MAX_REPORTS		8
/* pagemap entries read per read() call */
#define PM_CHUNK		16384
/* VMAs the process has besides the range, and some room */
#define VMA_SLACK		64

enum status { RES_OK, RES_NA, RES_FAIL };

struct point {
	unsigned long size;
	double pct;
	bool dense;
	bool thp;
	unsigned int nvmas;
	bool busy;
};

/* The pages one cycle writes: ascending indexes into the range */
struct cycle_pages {
	__u32 *page;
	unsigned long nr;
	unsigned long runs;
};

/* The memory of a point, between PROT_NONE guards */
struct area {
	char *resv;
	unsigned long resv_size;
	char *base;
	unsigned long size;
	unsigned long npages;
	unsigned long *truth;
	unsigned long *reported;
	unsigned long *live;
	unsigned char *residency;
};

struct result {
	enum status status;
	char why[200];
	double thp_pct;
	/* share of its CPU the busy thread had during the cycles, or -1 */
	double busy_pct;
	/* THP faults of the populate that got, or failed to get, a huge page */
	long thp_alloc;
	long thp_fallback;
	unsigned long samples;
	double *write_ms;
	double *collect_ms;
	double *cycle_ms;
	double *tlb;
};

/* One mechanism armed on one point */
struct run {
	const struct mech *mech;
	const struct point *pt;
	struct area *area;
	int uffd;
	int stop_pipe[2];
	pthread_t handler;
	bool handler_started;
	unsigned long not_resident;
	char err[200];
};

struct mech {
	char letter;
	const char *name;
	/* reports whole huge pages of a THP point */
	bool huge_granular;
	/* reports written pages at all (all but mincore) */
	bool checked;
	bool (*available)(char *why, size_t len);
	int (*arm)(struct run *r);
	int (*collect)(struct run *r);
	void (*disarm)(struct run *r);
};

static struct {
	unsigned long psize;
	unsigned int pshift;
	unsigned long hpage;
	unsigned int cpus[2];
	unsigned int nr_cpus;
	cpu_set_t main_cpus;
	int pagemap_fd;
	int clear_refs_fd;
	struct page_region *vec;
	__u64 *pm_buf;
	bool have_scan;
	bool have_async;
	bool have_sync_wp;
	bool have_soft_dirty;
	__u64 async_features;
	char no_scan[160];
	char no_async[160];
	char no_sync_wp[160];
	char no_soft_dirty[160];
} sys;

static struct {
	unsigned long sizes[MAX_LIST];
	unsigned int nr_sizes;
	double pcts[MAX_LIST];
	unsigned int nr_pcts;
	bool dense[2];
	unsigned int nr_dense;
	bool thp[2];
	unsigned int nr_thp;
	unsigned int vmas[MAX_LIST];
	unsigned int nr_vmas;
	bool busy[2];
	unsigned int nr_busy;
	struct point points[MAX_POINTS];
	unsigned int nr_points;
	unsigned int cycles;
	unsigned int warmup;
	unsigned int run_pages;
	unsigned long vec_len;
	unsigned long seed;
	unsigned int mechs;
	unsigned int required;	/* mechanisms whose n/a is a failure */
	const char *csv;
} opt;

static void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "pagemap_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static void warn_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fflush(stdout);
	fprintf(stderr, "pagemap_bench: warning: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static void *zalloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);

	if (!p)
		fatal("cannot allocate %zu bytes", size);
	return p;
}

/* Record why an operation of a mechanism failed; returns -1 */
static int run_error(struct run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return -1;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Bitmaps of the pages of a range */

static unsigned long map_words(unsigned long bits)
{
	return (bits + BITS_PER_LONG - 1) / BITS_PER_LONG;
}

static void bit_set(unsigned long *map, unsigned long i)
{
	map[i / BITS_PER_LONG] |= 1UL << (i % BITS_PER_LONG);
}

static bool bit_test(const unsigned long *map, unsigned long i)
{
	return map[i / BITS_PER_LONG] & (1UL << (i % BITS_PER_LONG));
}

/* Set bits [from, to) a word at a time where the run covers whole words */
static void bits_set_range(unsigned long *map, unsigned long from,
			   unsigned long to)
{
	while (from < to && from % BITS_PER_LONG)
		bit_set(map, from++);
	while (from + BITS_PER_LONG <= to) {
		map[from / BITS_PER_LONG] = ~0UL;
		from += BITS_PER_LONG;
	}
	while (from < to)
		bit_set(map, from++);
}

static bool bits_any(const unsigned long *map, unsigned long from,
		     unsigned long to)
{
	for (; from < to; from++)
		if (bit_test(map, from))
			return true;
	return false;
}

/* Deterministic pseudo-random numbers (splitmix64) */
static __u64 rand_next(__u64 *state)
{
	__u64 z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Reading /proc files */

static char *read_file(const char *path, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = zalloc(cap);
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	for (;;) {
		if (n + 1 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				fatal("cannot allocate %zu bytes", cap);
		}
		got = read(fd, buf + n, cap - n - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += got;
	}
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* Sum of the TLB shootdown interrupts of all CPUs, or -1 if not counted */
static long tlb_shootdowns(void)
{
	char *buf = read_file("/proc/interrupts", NULL);
	char *p, *end;
	long sum = 0;

	if (!buf)
		return -1;
	p = strstr(buf, "TLB:");
	if (!p) {
		free(buf);
		return -1;
	}
	p += 4;
	for (;;) {
		unsigned long v = strtoul(p, &end, 10);

		if (end == p)
			break;
		sum += v;
		p = end;
	}
	free(buf);
	return sum;
}

static long read_long(const char *path, long dflt)
{
	char *buf = read_file(path, NULL);
	long v = dflt;

	if (buf) {
		v = strtol(buf, NULL, 10);
		free(buf);
	}
	return v;
}

/* The value of @name in /proc/vmstat, or -1 */
static long vmstat(const char *buf, const char *name)
{
	size_t len = strlen(name);
	const char *p;

	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, len) && p[len] == ' ')
			return strtol(p + len + 1, NULL, 10);
	return -1;
}

static void thp_faults(long *alloc, long *fallback)
{
	char *buf = read_file("/proc/vmstat", NULL);

	*alloc = buf ? vmstat(buf, "thp_fault_alloc") : -1;
	*fallback = buf ? vmstat(buf, "thp_fault_fallback") : -1;
	free(buf);
}

/* Ask the kernel to defragment memory; only root may, and it may not */
static void defragment(void)
{
	int fd = open("/proc/sys/vm/compact_memory", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, "1", 1) != 1)
		warn_msg("vm.compact_memory: %s", strerror(errno));
	close(fd);
}

/* VMAs of /proc/self/maps inside [base, base + size), and all of them */
static unsigned long count_vmas(const char *base, unsigned long size,
				unsigned long *total)
{
	unsigned long start, end, in = 0, all = 0;
	unsigned long lo = (unsigned long)base, hi = lo + size;
	char line[512];
	FILE *f;

	f = fopen("/proc/self/maps", "re");
	if (!f)
		fatal("/proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx", &start, &end) != 2)
			continue;
		all++;
		if (start >= lo && end <= hi)
			in++;
	}
	fclose(f);
	if (total)
		*total = all;
	return in;
}

/* Share of [base, base + size) mapped by huge pages, in percent */
static double thp_share(const char *base, unsigned long size)
{
	unsigned long lo = (unsigned long)base, hi = lo + size;
	unsigned long start, end, kb, huge_kb = 0;
	bool inside = false;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			inside = start >= lo && end <= hi;
			continue;
		}
		if (inside && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			huge_kb += kb;
	}
	free(line);
	fclose(f);
	return 100.0 * huge_kb * 1024 / size;
}

/* userfaultfd */

static int uffd_open(__u64 features, __u64 *supported, char *why, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd;

	fd = syscall(__NR_userfaultfd,
		     O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0 && errno == EINVAL)
		fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, len, "userfaultfd(): %s", strerror(errno));
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		snprintf(why, len, "UFFDIO_API features %#llx: %s",
			 (unsigned long long)features, strerror(errno));
		close(fd);
		return -1;
	}
	if (supported)
		*supported = api.features;
	return fd;
}

static int uffd_register_wp(int fd, void *addr, unsigned long len,
			    char *why, size_t why_len)
{
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
		snprintf(why, why_len, "UFFDIO_REGISTER_MODE_WP: %s",
			 strerror(errno));
		return -1;
	}
	if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
		snprintf(why, why_len, "UFFDIO_WRITEPROTECT not offered");
		return -1;
	}
	return 0;
}

static int uffd_protect(int fd, void *addr, unsigned long len, bool wp)
{
	struct uffdio_writeprotect arg = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(fd, UFFDIO_WRITEPROTECT, &arg);
}

static void uffd_unregister(int fd, void *addr, unsigned long len)
{
	struct uffdio_range range = {
		.start = (unsigned long)addr, .len = len,
	};

	if (ioctl(fd, UFFDIO_UNREGISTER, &range))
		warn_msg("UFFDIO_UNREGISTER: %s", strerror(errno));
}

/* What the kernel offers, probed once on a page of its own */

static void probe_kernel(void)
{
	struct pm_scan_arg arg = { .size = sizeof(arg) };
	__u64 pme = 0, features = 0;
	char *page;
	int fd;

	page = mmap(NULL, sys.psize, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		fatal("mmap: %s", strerror(errno));
	page[0] = 1;

	arg.start = (unsigned long)page;
	arg.end = arg.start + sys.psize;
	arg.vec = (unsigned long)sys.vec;
	arg.vec_len = 1;
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT;
	if (ioctl(sys.pagemap_fd, PAGEMAP_SCAN, &arg) == 1)
		sys.have_scan = true;
	else
		snprintf(sys.no_scan, sizeof(sys.no_scan),
			 "PAGEMAP_SCAN: %s", strerror(errno));

	fd = uffd_open(0, &features, sys.no_async, sizeof(sys.no_async));
	if (fd >= 0) {
		close(fd);
		if (!(features & UFFD_FEATURE_WP_ASYNC))
			snprintf(sys.no_async, sizeof(sys.no_async),
				 "no UFFD_FEATURE_WP_ASYNC");
		sys.async_features = features &
			(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED);
	}
	if (features & UFFD_FEATURE_WP_ASYNC) {
		fd = uffd_open(sys.async_features, NULL, sys.no_async,
			       sizeof(sys.no_async));
		if (fd >= 0) {
			sys.have_async = !uffd_register_wp(fd, page, sys.psize,
						sys.no_async,
						sizeof(sys.no_async));
			close(fd);
		}
	}
	fd = uffd_open(0, NULL, sys.no_sync_wp, sizeof(sys.no_sync_wp));
	if (fd >= 0) {
		sys.have_sync_wp = !uffd_register_wp(fd, page, sys.psize,
						sys.no_sync_wp,
						sizeof(sys.no_sync_wp));
		close(fd);
	}

	/* A kernel without soft-dirty accepts "4" but never sets bit 55 */
	if (write(sys.clear_refs_fd, "4", 1) != 1) {
		snprintf(sys.no_soft_dirty, sizeof(sys.no_soft_dirty),
			 "clear_refs: %s", strerror(errno));
	} else {
		off_t off = (unsigned long)page / sys.psize * sizeof(pme);

		page[0] = 2;
		if (pread(sys.pagemap_fd, &pme, sizeof(pme), off) !=
		    sizeof(pme))
			snprintf(sys.no_soft_dirty, sizeof(sys.no_soft_dirty),
				 "pagemap read: %s", strerror(errno));
		else if (!(pme & PM_SOFT_DIRTY))
			snprintf(sys.no_soft_dirty, sizeof(sys.no_soft_dirty),
				 "a written page is not soft-dirty (no CONFIG_MEM_SOFT_DIRTY)");
		else
			sys.have_soft_dirty = true;
	}
	munmap(page, sys.psize);
}

static bool avail(bool have, const char *no, char *why, size_t len)
{
	if (!have)
		snprintf(why, len, "%s", no);
	return have;
}

static bool avail_scan_async(char *why, size_t len)
{
	return avail(sys.have_scan, sys.no_scan, why, len) &&
	       avail(sys.have_async, sys.no_async, why, len);
}

static bool avail_async(char *why, size_t len)
{
	return avail(sys.have_async, sys.no_async, why, len);
}

static bool avail_soft_dirty(char *why, size_t len)
{
	return avail(sys.have_soft_dirty, sys.no_soft_dirty, why, len);
}

static bool avail_scan_soft_dirty(char *why, size_t len)
{
	return avail(sys.have_scan, sys.no_scan, why, len) &&
	       avail(sys.have_soft_dirty, sys.no_soft_dirty, why, len);
}

static bool avail_sync_wp(char *why, size_t len)
{
	return avail(sys.have_sync_wp, sys.no_sync_wp, why, len);
}

static bool avail_always(char *why, size_t len)
{
	return true;
}

/* Collectors shared by several mechanisms */

/* Mark one region PAGEMAP_SCAN returned, after checking that it is sane */
static int mark_region(struct run *r, const struct page_region *pr,
		       __u64 categories)
{
	struct area *a = r->area;
	unsigned long lo = (unsigned long)a->base, hi = lo + a->size;

	if (pr->start >= pr->end || pr->start < lo || pr->end > hi ||
	    ((pr->start | pr->end) & (sys.psize - 1)))
		return run_error(r,
				 "PAGEMAP_SCAN returned region %#llx-%#llx outside the range %#lx-%#lx",
				 (unsigned long long)pr->start,
				 (unsigned long long)pr->end, lo, hi);
	if (pr->categories != categories)
		return run_error(r,
				 "PAGEMAP_SCAN returned categories %#llx, not %#llx",
				 (unsigned long long)pr->categories,
				 (unsigned long long)categories);
	bits_set_range(a->reported, (pr->start - lo) >> sys.pshift,
		       (pr->end - lo) >> sys.pshift);
	return 0;
}

/* Report the pages of @categories, resuming at walk_end until the end */
static int scan_collect(struct run *r, __u64 flags, __u64 categories)
{
	struct area *a = r->area;
	__u64 end = (unsigned long)a->base + a->size;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = (unsigned long)a->base,
		.end = end,
		.vec = (unsigned long)sys.vec,
		.vec_len = opt.vec_len,
		.category_mask = categories,
		.return_mask = categories,
	};
	long i, n;

	while (arg.start < end) {
		n = ioctl(sys.pagemap_fd, PAGEMAP_SCAN, &arg);
		if (n < 0)
			return run_error(r, "PAGEMAP_SCAN: %s",
					 strerror(errno));
		for (i = 0; i < n; i++)
			if (mark_region(r, &sys.vec[i], categories))
				return -1;
		if (arg.walk_end <= arg.start || arg.walk_end > end)
			return run_error(r,
					 "PAGEMAP_SCAN: walk_end %#llx does not advance from %#llx",
					 (unsigned long long)arg.walk_end,
					 (unsigned long long)arg.start);
		arg.start = arg.walk_end;
	}
	return 0;
}

/* Mark the pages whose pagemap entry says they were written */
static int pagemap_collect(struct run *r, bool uffd_wp)
{
	struct area *a = r->area;
	off_t off = (unsigned long)a->base / sys.psize * sizeof(__u64);
	unsigned long i, j, n;
	ssize_t want;

	for (i = 0; i < a->npages; i += n) {
		n = a->npages - i < PM_CHUNK ? a->npages - i : PM_CHUNK;
		want = n * sizeof(__u64);
		if (pread(sys.pagemap_fd, sys.pm_buf, want,
			  off + i * sizeof(__u64)) != want)
			return run_error(r, "pagemap read: %s",
					 strerror(errno));
		for (j = 0; j < n; j++) {
			__u64 pme = sys.pm_buf[j];
			bool written;

			if (uffd_wp)
				written = (pme & (PM_PRESENT | PM_SWAP)) &&
					  !(pme & PM_UFFD_WP);
			else
				written = pme & PM_SOFT_DIRTY;
			if (written)
				bit_set(a->reported, i + j);
		}
	}
	return 0;
}

static int clear_soft_dirty(struct run *r)
{
	if (write(sys.clear_refs_fd, "4", 1) != 1)
		return run_error(r, "clear_refs: %s", strerror(errno));
	return 0;
}

static int protect_range(struct run *r)
{
	if (uffd_protect(r->uffd, r->area->base, r->area->size, true))
		return run_error(r, "UFFDIO_WRITEPROTECT: %s",
				 strerror(errno));
	return 0;
}

/* Hand over what the fault handlers recorded and start a new set */
static void take_live(struct area *a)
{
	size_t bytes = map_words(a->npages) * sizeof(long);

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	memcpy(a->reported, a->live, bytes);
	memset(a->live, 0, bytes);
}

/* a, b, c: async uffd-wp */

static int async_arm(struct run *r)
{
	struct area *a = r->area;

	r->uffd = uffd_open(sys.async_features, NULL, r->err, sizeof(r->err));
	if (r->uffd < 0)
		return -1;
	if (uffd_register_wp(r->uffd, a->base, a->size, r->err,
			     sizeof(r->err)))
		return -1;
	return protect_range(r);
}

static void uffd_disarm(struct run *r)
{
	if (r->uffd < 0)
		return;
	uffd_unregister(r->uffd, r->area->base, r->area->size);
	close(r->uffd);
	r->uffd = -1;
}

static int scan_wp_collect(struct run *r)
{
	return scan_collect(r, PM_SCAN_WP_MATCHING, PAGE_IS_WRITTEN);
}

static int scan_then_protect_collect(struct run *r)
{
	return scan_collect(r, 0, PAGE_IS_WRITTEN) ?: protect_range(r);
}

static int pagemap_uffd_collect(struct run *r)
{
	return pagemap_collect(r, true) ?: protect_range(r);
}

/* d, e: soft-dirty */

static int soft_dirty_arm(struct run *r)
{
	return clear_soft_dirty(r);
}

static int soft_dirty_read_collect(struct run *r)
{
	return pagemap_collect(r, false) ?: clear_soft_dirty(r);
}

static int soft_dirty_scan_collect(struct run *r)
{
	return scan_collect(r, 0, PAGE_IS_SOFT_DIRTY) ?: clear_soft_dirty(r);
}

static void no_disarm(struct run *r)
{
}

/* f: mprotect and SIGSEGV */

static struct {
	unsigned long base;
	unsigned long size;
	unsigned long *live;
} segv;
static struct sigaction segv_saved;

static void segv_handler(int sig, siginfo_t *si, void *ctx)
{
	static const char msg[] = "pagemap_bench: mprotect in SIGSEGV handler failed\n";
	unsigned long addr = (unsigned long)si->si_addr;
	unsigned long page;

	if (addr - segv.base >= segv.size) {
		/* Not ours: the fault repeats with the default action */
		sigaction(SIGSEGV, &segv_saved, NULL);
		return;
	}
	page = (addr - segv.base) >> sys.pshift;
	__atomic_fetch_or(&segv.live[page / BITS_PER_LONG],
			  1UL << (page % BITS_PER_LONG), __ATOMIC_RELAXED);
	if (mprotect((void *)(segv.base + (page << sys.pshift)), sys.psize,
		     PROT_READ | PROT_WRITE)) {
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		_exit(3);
	}
}

static int mprotect_arm(struct run *r)
{
	struct area *a = r->area;
	struct sigaction sa = {
		.sa_sigaction = segv_handler,
		.sa_flags = SA_SIGINFO | SA_RESTART,
	};

	segv.base = (unsigned long)a->base;
	segv.size = a->size;
	segv.live = a->live;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &segv_saved))
		return run_error(r, "sigaction: %s", strerror(errno));
	if (mprotect(a->base, a->size, PROT_READ))
		return run_error(r, "mprotect: %s", strerror(errno));
	return 0;
}

static int mprotect_collect(struct run *r)
{
	take_live(r->area);
	if (mprotect(r->area->base, r->area->size, PROT_READ))
		return run_error(r, "mprotect: %s", strerror(errno));
	return 0;
}

static void mprotect_disarm(struct run *r)
{
	if (mprotect(r->area->base, r->area->size, PROT_READ | PROT_WRITE))
		fatal("mprotect: %s", strerror(errno));
	sigaction(SIGSEGV, &segv_saved, NULL);
}

/* g: synchronous uffd-wp with a handler thread */

static void handle_wp_faults(struct run *r)
{
	struct area *a = r->area;
	unsigned long base = (unsigned long)a->base;
	struct uffd_msg msg[16];
	unsigned long addr, page;
	ssize_t n, i;

	n = read(r->uffd, msg, sizeof(msg));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0)
		fatal("uffd-sync handler: read: %s", strerror(errno));
	for (i = 0; i < n / (ssize_t)sizeof(msg[0]); i++) {
		addr = msg[i].arg.pagefault.address;
		if (msg[i].event != UFFD_EVENT_PAGEFAULT ||
		    !(msg[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) ||
		    addr - base >= a->size)
			fatal("uffd-sync handler: unexpected event %u flags %#llx at %#lx",
			      msg[i].event,
			      (unsigned long long)msg[i].arg.pagefault.flags,
			      addr);
		page = (addr - base) >> sys.pshift;
		__atomic_fetch_or(&a->live[page / BITS_PER_LONG],
				  1UL << (page % BITS_PER_LONG),
				  __ATOMIC_SEQ_CST);
		while (uffd_protect(r->uffd,
				    (void *)(base + (page << sys.pshift)),
				    sys.psize, false))
			if (errno != EAGAIN)
				fatal("uffd-sync handler: UFFDIO_WRITEPROTECT: %s",
				      strerror(errno));
	}
}

static void *uffd_handler_thread(void *arg)
{
	struct run *r = arg;
	struct pollfd pfd[2] = {
		{ .fd = r->uffd, .events = POLLIN },
		{ .fd = r->stop_pipe[0], .events = POLLIN },
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fatal("uffd-sync handler: poll: %s", strerror(errno));
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP))
			fatal("uffd-sync handler: userfaultfd hung up");
		if (pfd[0].revents & POLLIN)
			handle_wp_faults(r);
	}
	return NULL;
}

static int sync_arm(struct run *r)
{
	struct area *a = r->area;
	int err;

	r->uffd = uffd_open(0, NULL, r->err, sizeof(r->err));
	if (r->uffd < 0)
		return -1;
	if (uffd_register_wp(r->uffd, a->base, a->size, r->err,
			     sizeof(r->err)))
		return -1;
	if (pipe2(r->stop_pipe, O_CLOEXEC))
		return run_error(r, "pipe: %s", strerror(errno));
	err = pthread_create(&r->handler, NULL, uffd_handler_thread, r);
	if (err)
		return run_error(r, "pthread_create: %s", strerror(err));
	r->handler_started = true;
	return protect_range(r);
}

static int sync_collect(struct run *r)
{
	take_live(r->area);
	return protect_range(r);
}

static void sync_disarm(struct run *r)
{
	if (r->handler_started) {
		if (write(r->stop_pipe[1], "x", 1) != 1)
			fatal("pipe write: %s", strerror(errno));
		pthread_join(r->handler, NULL);
		r->handler_started = false;
	}
	if (r->stop_pipe[0] >= 0) {
		close(r->stop_pipe[0]);
		close(r->stop_pipe[1]);
		r->stop_pipe[0] = -1;
		r->stop_pipe[1] = -1;
	}
	uffd_disarm(r);
}

/* h: mincore */

static int mincore_collect(struct run *r)
{
	struct area *a = r->area;
	unsigned long i;

	if (mincore(a->base, a->size, a->residency))
		return run_error(r, "mincore: %s", strerror(errno));
	for (i = 0; i < a->npages; i++)
		if (!(a->residency[i] & 1))
			r->not_resident++;
	return 0;
}

static int nothing_to_arm(struct run *r)
{
	return 0;
}

static const struct mech mechs[] = {
	{ 'a', "scan-wp", false, true, avail_scan_async,
	  async_arm, scan_wp_collect, uffd_disarm },
	{ 'b', "scan+uffd", false, true, avail_scan_async,
	  async_arm, scan_then_protect_collect, uffd_disarm },
	{ 'c', "pm-uffd", false, true, avail_async,
	  async_arm, pagemap_uffd_collect, uffd_disarm },
	{ 'd', "sd-read", true, true, avail_soft_dirty,
	  soft_dirty_arm, soft_dirty_read_collect, no_disarm },
	{ 'e', "sd-scan", true, true, avail_scan_soft_dirty,
	  soft_dirty_arm, soft_dirty_scan_collect, no_disarm },
	{ 'f', "mprotect", false, true, avail_always,
	  mprotect_arm, mprotect_collect, mprotect_disarm },
	{ 'g', "uffd-sync", false, true, avail_sync_wp,
	  sync_arm, sync_collect, sync_disarm },
	{ 'h', "mincore", false, false, avail_always,
	  nothing_to_arm, mincore_collect, no_disarm },
};

#define NR_MECHS	ARRAY_SIZE(mechs)

/* The busy second thread */

static struct {
	pthread_t thread;
	clockid_t clock;
	bool stop;
	bool running;
	unsigned long spins;
	__u64 wall0;
	__u64 cpu0;
} busy;

static void *busy_spin(void *arg)
{
	__atomic_store_n(&busy.running, true, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&busy.stop, __ATOMIC_RELAXED))
		busy.spins++;
	return NULL;
}

static __u64 clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void pin_main(unsigned int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fatal("sched_setaffinity: %s", strerror(errno));
}

static void busy_start(void)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int err;

	pin_main(sys.cpus[0]);
	CPU_ZERO(&set);
	CPU_SET(sys.cpus[1], &set);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	busy.stop = false;
	busy.running = false;
	err = pthread_create(&busy.thread, &attr, busy_spin, NULL);
	if (err)
		fatal("pthread_create: %s", strerror(err));
	pthread_attr_destroy(&attr);
	while (!__atomic_load_n(&busy.running, __ATOMIC_SEQ_CST))
		sched_yield();
	err = pthread_getcpuclockid(busy.thread, &busy.clock);
	if (err)
		fatal("pthread_getcpuclockid: %s", strerror(err));
	busy.wall0 = now_ns();
	busy.cpu0 = clock_ns(busy.clock);
}

/*
 * Stop the busy thread; returns the share of its CPU it ran, in percent.
 * A thread that is not on its CPU (another task of the machine took it)
 * needs no shootdown, so a low share explains low TLB counts.
 */
static double busy_end(void)
{
	__u64 cpu = clock_ns(busy.clock) - busy.cpu0;
	__u64 wall = now_ns() - busy.wall0;

	__atomic_store_n(&busy.stop, true, __ATOMIC_SEQ_CST);
	pthread_join(busy.thread, NULL);
	if (sched_setaffinity(0, sizeof(sys.main_cpus), &sys.main_cpus))
		fatal("sched_setaffinity: %s", strerror(errno));
	return wall ? 100.0 * cpu / wall : 0;
}

/* Points: labels, memory, and the pages of each cycle */

static void format_size(char *buf, size_t len, unsigned long size)
{
	if (!(size % (1UL << 30)))
		snprintf(buf, len, "%luG", size >> 30);
	else if (!(size % (1UL << 20)))
		snprintf(buf, len, "%luM", size >> 20);
	else
		snprintf(buf, len, "%luK", size >> 10);
}

static void point_label(char *buf, size_t len, const struct point *pt)
{
	char size[32];

	format_size(size, sizeof(size), pt->size);
	snprintf(buf, len, "%s %g%% %s %s %uvma %s", size, pt->pct,
		 pt->dense ? "dense" : "random", pt->thp ? "thp" : "4k",
		 pt->nvmas, pt->busy ? "busy" : "idle");
}

/*
 * Map the range afresh at a->base, in pt->nvmas VMAs. A new mapping, not
 * MADV_DONTNEED, is what lets the next mechanism of a THP point fault in
 * huge pages again: a zap leaves the page tables of the pmds that an
 * earlier mechanism split, and a pmd with a page table gets 4K pages.
 */
static void area_map(struct area *a, const struct point *pt)
{
	unsigned long chunk = pt->size / pt->nvmas, i, total;

	if (mmap(a->base, a->size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		fatal("mmap %lu bytes: %s", a->size, strerror(errno));
	if (madvise(a->base, a->size,
		    pt->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) && pt->thp)
		warn_msg("MADV_HUGEPAGE: %s", strerror(errno));
	for (i = 1; i < pt->nvmas; i += 2)
		if (madvise(a->base + i * chunk, chunk, MADV_DONTDUMP))
			fatal("MADV_DONTDUMP: %s", strerror(errno));
	if (count_vmas(a->base, a->size, &total) != pt->nvmas)
		fatal("the range has %lu VMAs, not %u",
		      count_vmas(a->base, a->size, NULL), pt->nvmas);
}

static void area_setup(struct area *a, const struct point *pt)
{
	unsigned long words;

	memset(a, 0, sizeof(*a));
	a->size = pt->size;
	a->npages = pt->size >> sys.pshift;
	a->resv_size = pt->size + 2 * sys.hpage;
	a->resv = mmap(NULL, a->resv_size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a->resv == MAP_FAILED)
		fatal("mmap %lu bytes: %s", a->resv_size, strerror(errno));
	/* Huge page aligned, with a PROT_NONE guard on each side */
	a->base = (char *)(((unsigned long)a->resv + sys.psize +
			    sys.hpage - 1) & ~(sys.hpage - 1));
	area_map(a, pt);

	words = map_words(a->npages);
	a->truth = zalloc(words * sizeof(long));
	a->reported = zalloc(words * sizeof(long));
	a->live = zalloc(words * sizeof(long));
	a->residency = zalloc(a->npages);
}

static void area_teardown(struct area *a)
{
	munmap(a->resv, a->resv_size);
	free(a->truth);
	free(a->reported);
	free(a->live);
	free(a->residency);
}

/* Map every page writable: fault it in, or resolve a write protection */
static void populate(struct area *a)
{
	unsigned long i;

	for (i = 0; i < a->npages; i++)
		__atomic_store_n((unsigned long *)(a->base + (i << sys.pshift)),
				 i, __ATOMIC_RELAXED);
}

/* Choose @want of @slots at random into @map (a bitmap of @slots bits) */
static void choose_slots(unsigned long *map, unsigned long slots,
			 unsigned long want, __u64 *rng)
{
	bool invert = want > slots / 2;
	unsigned long left = invert ? slots - want : want, i;

	memset(map, 0, map_words(slots) * sizeof(long));
	while (left) {
		i = rand_next(rng) % slots;
		if (!bit_test(map, i)) {
			bit_set(map, i);
			left--;
		}
	}
	if (!invert)
		return;
	for (i = 0; i < map_words(slots); i++)
		map[i] = ~map[i];
	if (slots % BITS_PER_LONG)
		map[slots / BITS_PER_LONG] &= (1UL << (slots % BITS_PER_LONG)) - 1;
}

static void make_cycle(struct cycle_pages *cp, const struct point *pt,
		       unsigned long npages, unsigned long *map, __u64 *rng)
{
	unsigned long want = (unsigned long)(pt->pct * npages / 100 + 0.5);
	unsigned long run = opt.run_pages, slots, nruns, i, s, n = 0;

	if (pt->pct > 0 && !want)
		want = 1;
	if (want > npages)
		want = npages;
	memset(map, 0, map_words(npages) * sizeof(long));
	if (!pt->dense) {
		choose_slots(map, npages, want, rng);
	} else {
		if (run > npages)
			run = npages;
		slots = npages / run;
		nruns = (want + run - 1) / run;
		if (nruns >= slots) {
			bits_set_range(map, 0, want);
		} else {
			unsigned long *smap = zalloc(map_words(slots) *
						     sizeof(long));
			unsigned long rest = want - (nruns - 1) * run;
			bool first = true;

			/* The lowest run is the partial one */
			choose_slots(smap, slots, nruns, rng);
			for (s = 0; s < slots; s++) {
				if (!bit_test(smap, s))
					continue;
				bits_set_range(map, s * run,
					       s * run + (first ? rest : run));
				first = false;
			}
			free(smap);
		}
	}

	cp->page = zalloc(want * sizeof(__u32));
	cp->runs = 0;
	for (i = 0; i < npages; i++) {
		if (!bit_test(map, i))
			continue;
		if (!n || cp->page[n - 1] != i - 1)
			cp->runs++;
		cp->page[n++] = i;
	}
	cp->nr = n;
}

static void write_pages(struct area *a, const struct cycle_pages *cp,
			unsigned long stamp)
{
	unsigned long i, *p;

	for (i = 0; i < cp->nr; i++) {
		p = (unsigned long *)(a->base +
				      ((unsigned long)cp->page[i] << sys.pshift));
		__atomic_store_n(p, stamp, __ATOMIC_RELAXED);
	}
}

/* The truth check of one cycle; returns the number of wrong pages */
static unsigned long check_cycle(struct run *r, unsigned int cycle)
{
	struct area *a = r->area;
	unsigned long per_huge = sys.hpage >> sys.pshift;
	bool huge = r->mech->huge_granular && r->pt->thp;
	unsigned long i, bad = 0, missed = 0, extra = 0;
	char label[96];

	point_label(label, sizeof(label), r->pt);
	for (i = 0; i < a->npages; i++) {
		unsigned long w = i / BITS_PER_LONG;
		unsigned long blk = i / per_huge * per_huge;
		bool written, seen;
		const char *what;

		/* Skip whole words that agree */
		if (!(i % BITS_PER_LONG) && a->truth[w] == a->reported[w]) {
			i += BITS_PER_LONG - 1;
			continue;
		}
		written = bit_test(a->truth, i);
		seen = bit_test(a->reported, i);
		if (written == seen)
			continue;
		if (written) {
			missed++;
			what = "was written but not reported";
		} else if (huge && bits_any(a->truth, blk, blk + per_huge)) {
			continue;
		} else {
			extra++;
			what = "was reported but not written since the last collect";
		}
		if (bad++ < MAX_REPORTS)
			fprintf(stderr,
				"pagemap_bench: FAIL: %s at %s, cycle %u: page %lu (offset %#lx) %s\n",
				r->mech->name, label, cycle, i,
				i << sys.pshift, what);
	}
	if (bad)
		fprintf(stderr,
			"pagemap_bench: FAIL: %s at %s, cycle %u: %lu written pages missed, %lu unwritten pages reported\n",
			r->mech->name, label, cycle, missed, extra);
	return bad;
}

/*
 * Isolated writable pages split the VMAs of mechanism f: fail early, as
 * n/a, where the kernel's VMA limit would make its handler's mprotect fail.
 */
static bool vma_budget(const struct area *a, const struct cycle_pages *cyc,
		       unsigned int nr, char *why, size_t len)
{
	long limit = read_long("/proc/sys/vm/max_map_count", 65530);
	unsigned long runs = 0, total, need;
	unsigned int c;

	for (c = 0; c < nr; c++)
		if (cyc[c].runs > runs)
			runs = cyc[c].runs;
	count_vmas(a->base, a->size, &total);
	need = total + 2 * runs + VMA_SLACK;
	if (need <= (unsigned long)limit)
		return true;
	snprintf(why, len, "needs about %lu VMAs, vm.max_map_count is %ld",
		 need, limit);
	return false;
}

static void record(struct result *res, double write_ms, double collect_ms,
		   long tlb)
{
	unsigned long n = res->samples++;

	res->write_ms[n] = write_ms;
	res->collect_ms[n] = collect_ms;
	res->cycle_ms[n] = write_ms + collect_ms;
	res->tlb[n] = tlb;
}

static void run_mech(const struct mech *m, const struct point *pt,
		     struct area *a, const struct cycle_pages *cyc,
		     struct result *res)
{
	unsigned int c, nr = opt.warmup + opt.cycles;
	struct run r = {
		.mech = m, .pt = pt, .area = a, .uffd = -1,
		.stop_pipe = { -1, -1 },
	};
	size_t bytes = map_words(a->npages) * sizeof(long);
	long tlb0, tlb1, alloc0, fallback0;
	__u64 t0, t1, t2, t3;
	unsigned long i, vmas;

	if (!m->available(res->why, sizeof(res->why)) ||
	    (m->letter == 'f' &&
	     !vma_budget(a, cyc, nr, res->why, sizeof(res->why)))) {
		res->status = RES_NA;
		return;
	}
	if (pt->thp)
		defragment();
	thp_faults(&alloc0, &fallback0);
	populate(a);
	thp_faults(&res->thp_alloc, &res->thp_fallback);
	res->thp_alloc = alloc0 < 0 ? -1 : res->thp_alloc - alloc0;
	res->thp_fallback = fallback0 < 0 ? -1 :
			    res->thp_fallback - fallback0;
	res->thp_pct = thp_share(a->base, a->size);
	res->busy_pct = -1;
	memset(a->live, 0, bytes);
	if (m->arm(&r))
		goto failed;
	if (pt->busy)
		busy_start();
	for (c = 0; c < nr; c++) {
		memset(a->truth, 0, bytes);
		for (i = 0; i < cyc[c].nr; i++)
			bit_set(a->truth, cyc[c].page[i]);
		memset(a->reported, 0, bytes);

		t0 = now_ns();
		write_pages(a, &cyc[c], c + 1);
		t1 = now_ns();
		tlb0 = tlb_shootdowns();
		t2 = now_ns();
		if (m->collect(&r))
			break;
		t3 = now_ns();
		tlb1 = tlb_shootdowns();

		if (m->checked && check_cycle(&r, c + 1)) {
			snprintf(r.err, sizeof(r.err),
				 "truth check failed in cycle %u", c + 1);
			break;
		}
		if (c >= opt.warmup)
			record(res, (t1 - t0) / 1e6, (t3 - t2) / 1e6,
			       tlb0 < 0 || tlb1 < 0 ? -1 : tlb1 - tlb0);
	}
	if (pt->busy)
		res->busy_pct = busy_end();
	if (c < nr)
		goto failed;
	if (r.not_resident)
		warn_msg("%s: %lu page(s) not resident in mincore()",
			 m->name, r.not_resident);
	res->status = RES_OK;
	goto out;
failed:
	res->status = RES_FAIL;
	snprintf(res->why, sizeof(res->why), "%s", r.err);
out:
	/* Every disarm copes with an arm that stopped half way */
	m->disarm(&r);
	if (pt->thp)
		area_map(a, pt);
	vmas = count_vmas(a->base, a->size, NULL);
	if (vmas != pt->nvmas)
		fatal("%s left %lu VMAs in the range instead of %u", m->name,
		      vmas, pt->nvmas);
}

/* Statistics and output */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static double median(const double *v, unsigned long n)
{
	double *s, m;

	if (!n)
		return 0;
	s = zalloc(n * sizeof(*s));
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

static double minimum(const double *v, unsigned long n)
{
	double m = n ? v[0] : 0;
	unsigned long i;

	for (i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

static double maximum(const double *v, unsigned long n)
{
	double m = n ? v[0] : 0;
	unsigned long i;

	for (i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

static bool selected(unsigned int m)
{
	return opt.mechs & (1U << m);
}

/* Ratio of @res's median cycle to mechanism a's, or 0 if there is none */
static double ratio_to_a(const struct result *res, const struct result *all)
{
	double base;

	if (!selected(0) || all[0].status != RES_OK || res->status != RES_OK)
		return 0;
	base = median(all[0].cycle_ms, all[0].samples);
	return base > 0 ? median(res->cycle_ms, res->samples) / base : 0;
}

static void print_point(const struct point *pt, const struct cycle_pages *cyc,
			const struct result *res)
{
	double thp = 100, busy_pct = 100;
	long allocs = 0, fallbacks = 0;
	char label[96];
	unsigned int m;

	point_label(label, sizeof(label), pt);
	for (m = 0; m < NR_MECHS; m++)
		if (selected(m) && res[m].status == RES_OK &&
		    res[m].thp_pct < thp)
			thp = res[m].thp_pct;
	for (m = 0; m < NR_MECHS; m++) {
		if (!selected(m) || res[m].status != RES_OK)
			continue;
		allocs += res[m].thp_alloc;
		fallbacks += res[m].thp_fallback;
	}
	for (m = 0; m < NR_MECHS; m++)
		if (selected(m) && res[m].status == RES_OK &&
		    res[m].busy_pct >= 0 && res[m].busy_pct < busy_pct)
			busy_pct = res[m].busy_pct;
	printf("\n== %s: %lu of %lu pages written per cycle, %u cycles (+%u warm-up)\n",
	       label, cyc[0].nr, pt->size >> sys.pshift, opt.cycles,
	       opt.warmup);
	printf("  %-11s %4s %17s %17s %17s %7s %6s%s\n", "mechanism", "thp%",
	       "write ms (min)", "collect ms (min)", "cycle ms (min)",
	       "x(a)", "tlb", pt->busy ? "  busy%" : "");
	for (m = 0; m < NR_MECHS; m++) {
		const struct result *r = &res[m];
		double ratio = ratio_to_a(r, res);
		char rs[16] = "-", ts[16] = "-";

		if (!selected(m))
			continue;
		if (r->status != RES_OK) {
			printf("  %c %-9s %s: %s\n", mechs[m].letter,
			       mechs[m].name,
			       r->status == RES_NA ? "n/a" : "FAIL", r->why);
			continue;
		}
		if (ratio > 0)
			snprintf(rs, sizeof(rs), "%.2f", ratio);
		if (minimum(r->tlb, r->samples) >= 0)
			snprintf(ts, sizeof(ts), "%.0f",
				 median(r->tlb, r->samples));
		printf("  %c %-9s %4.0f %9.3f %7.3f %9.3f %7.3f %9.3f %7.3f %7s %6s",
		       mechs[m].letter, mechs[m].name, r->thp_pct,
		       median(r->write_ms, r->samples),
		       minimum(r->write_ms, r->samples),
		       median(r->collect_ms, r->samples),
		       minimum(r->collect_ms, r->samples),
		       median(r->cycle_ms, r->samples),
		       minimum(r->cycle_ms, r->samples), rs, ts);
		if (pt->busy)
			printf(" %6.0f", r->busy_pct);
		printf("\n");
	}
	if (pt->thp && thp < 90)
		printf("  note: THP point, %.0f%% in huge pages; %ld THP faults, %ld fell back\n",
		       thp, allocs, fallbacks);
	if (pt->busy && busy_pct < 90)
		printf("  note: busy%% < 90: the spinner was off its CPU at times\n");
	fflush(stdout);
}

static const char *const csv_fields[] = {
	"mech", "name", "size_bytes", "written_pct", "pattern", "page", "vmas",
	"busy", "cycles", "pages_written", "runs", "thp_pct", "status",
	"reason", "write_med_ms", "write_min_ms", "collect_med_ms",
	"collect_min_ms", "cycle_med_ms", "cycle_min_ms", "tlb_med",
	"tlb_min", "tlb_max", "ratio_cycle_a", "busy_cpu_pct",
	"thp_fault_alloc", "thp_fault_fallback",
};

static void csv_header(FILE *f)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(csv_fields); i++)
		fprintf(f, "%s%s", i ? "," : "", csv_fields[i]);
	fprintf(f, "\n");
}

static void csv_point(FILE *f, const struct point *pt,
		      const struct cycle_pages *cyc, const struct result *res)
{
	unsigned int m;
	char *p;

	for (m = 0; m < NR_MECHS; m++) {
		const struct result *r = &res[m];
		double ratio = ratio_to_a(r, res);
		char why[sizeof(r->why)];

		if (!selected(m))
			continue;
		/* keep the reason one CSV field */
		snprintf(why, sizeof(why), "%s", r->why);
		for (p = why; *p; p++)
			if (*p == ',' || *p == '"' || *p == '\n')
				*p = ';';
		fprintf(f, "%c,%s,%lu,%g,%s,%s,%u,%d,%u,%lu,%lu,%.1f,%s,%s",
			mechs[m].letter, mechs[m].name, pt->size, pt->pct,
			pt->dense ? "dense" : "random", pt->thp ? "thp" : "4k",
			pt->nvmas, pt->busy, opt.cycles, cyc[0].nr, cyc[0].runs,
			r->thp_pct, r->status == RES_OK ? "ok" :
			r->status == RES_NA ? "n/a" : "fail", why);
		if (r->status != RES_OK) {
			fprintf(f, ",,,,,,,,,,,,,\n");
			continue;
		}
		fprintf(f, ",%.4f,%.4f,%.4f,%.4f,%.4f,%.4f",
			median(r->write_ms, r->samples),
			minimum(r->write_ms, r->samples),
			median(r->collect_ms, r->samples),
			minimum(r->collect_ms, r->samples),
			median(r->cycle_ms, r->samples),
			minimum(r->cycle_ms, r->samples));
		if (minimum(r->tlb, r->samples) >= 0)
			fprintf(f, ",%.1f,%.0f,%.0f",
				median(r->tlb, r->samples),
				minimum(r->tlb, r->samples),
				maximum(r->tlb, r->samples));
		else
			fprintf(f, ",,,");
		if (ratio > 0)
			fprintf(f, ",%.3f", ratio);
		else
			fprintf(f, ",");
		if (r->busy_pct >= 0)
			fprintf(f, ",%.0f", r->busy_pct);
		else
			fprintf(f, ",");
		fprintf(f, ",%ld,%ld\n", r->thp_alloc, r->thp_fallback);
	}
	fflush(f);
}

/* Cycle medians of every point, then their ratios to mechanism a */
static void print_summary(struct result **all, bool ratios)
{
	unsigned int p, m;
	char label[96];

	printf("\n%s\n", ratios ? "cycle cost, ratio to a (scan-wp):" :
	       "cycle cost, median ms:");
	printf("%-34s", "point");
	for (m = 0; m < NR_MECHS; m++)
		if (selected(m))
			printf(" %10s", mechs[m].name);
	printf("\n");
	for (p = 0; p < opt.nr_points; p++) {
		point_label(label, sizeof(label), &opt.points[p]);
		printf("%-34s", label);
		for (m = 0; m < NR_MECHS; m++) {
			const struct result *r = &all[p][m];
			double v;

			if (!selected(m))
				continue;
			if (r->status == RES_NA) {
				printf(" %10s", "n/a");
				continue;
			}
			if (r->status == RES_FAIL) {
				printf(" %10s", "FAIL");
				continue;
			}
			v = ratios ? ratio_to_a(r, all[p]) :
				     median(r->cycle_ms, r->samples);
			if (ratios && v <= 0)
				printf(" %10s", "-");
			else
				printf(" %10.3f", v);
		}
		printf("\n");
	}
}

/* Command line */

static const struct point quick_points[] = {
	{ 64UL << 20, 0, false, false, 1, false },
	{ 64UL << 20, 1, false, false, 1, false },
	{ 64UL << 20, 100, false, false, 1, false },
	{ 256UL << 20, 0, false, false, 1, false },
	{ 256UL << 20, 1, false, false, 1, false },
	{ 256UL << 20, 1, true, false, 1, false },
	{ 256UL << 20, 1, false, true, 1, false },
	{ 256UL << 20, 1, false, false, 4096, false },
	{ 256UL << 20, 1, false, false, 1, true },
};

static void print_usage(FILE *f)
{
	fprintf(f,
		"Usage: pagemap_bench [options]\n"
		"Measure write tracking mechanisms: write, collect + reset, check.\n"
		"\n"
		"Matrix (the product of these lists; defaults in brackets):\n"
		"  -s, --sizes LIST      range sizes, K/M/G suffixes [64M,256M,1G]\n"
		"  -f, --fractions LIST  percent of pages written [0,0.1,1,10,100]\n"
		"  -p, --pattern LIST    random (isolated pages), dense (runs) [random]\n"
		"  -t, --pages LIST      4k, thp (MADV_HUGEPAGE) [4k]\n"
		"  -v, --vmas LIST       VMAs the range is split into [1]\n"
		"  -b, --busy LIST       idle, busy (a second thread spins on\n"
		"                        another CPU) [idle]\n"
		"  -F, --full            every value of every axis: sizes as above,\n"
		"                        random,dense x 4k,thp x 1,4096 x idle,busy\n"
		"  -q, --quick           a small set of points (a few minutes in a TCG\n"
		"                        guest): 64M at 0, 1, 100 %%; 256M at 0 %% and\n"
		"                        1 %% random, dense, thp, 4096 VMAs, busy\n"
		"  -P, --point SPEC      one point SIZE:PCT[:PATTERN[:PAGES[:VMAS[:BUSY]]]],\n"
		"                        repeatable; replaces the matrix\n"
		"\n"
		"Run:\n"
		"  -c, --cycles N        timed cycles per point and mechanism [7]\n"
		"  -w, --warmup N        checked but untimed cycles first [1]\n"
		"  -m, --mech LIST       mechanisms by letter or name [all]:\n"
		"                        a scan-wp    PAGEMAP_SCAN + PM_SCAN_WP_MATCHING\n"
		"                        b scan+uffd  PAGEMAP_SCAN, UFFDIO_WRITEPROTECT\n"
		"                        c pm-uffd    pagemap read bit 57, UFFDIO_WRITEPROTECT\n"
		"                        d sd-read    pagemap read bit 55, clear_refs 4\n"
		"                        e sd-scan    PAGEMAP_SCAN soft-dirty, clear_refs 4\n"
		"                        f mprotect   mprotect + SIGSEGV handler\n"
		"                        g uffd-sync  sync uffd-wp, handler thread\n"
		"                        h mincore    mincore(), the floor\n"
		"  -R, --require LIST    mechanisms that must be available: their\n"
		"                        n/a fails the run (a test of a kernel that\n"
		"                        should have them) [none]\n"
		"  -r, --run N           pages per dense run [64]\n"
		"  -V, --vec N           regions per PAGEMAP_SCAN call [1024]\n"
		"  -S, --seed N          seed of the page choice [1]\n"
		"  -o, --csv FILE        write one CSV row per mechanism and point\n"
		"                        (- : print it at the end, between marker lines)\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: 0 all checks passed, 1 a mechanism failed its truth\n"
		"check or an operation, or a --require one was n/a, 2 bad usage,\n"
		"setup or fault handler error.\n");
}

static unsigned long parse_size(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	switch (*end) {
	case 'k': case 'K':
		v <<= 10;
		end++;
		break;
	case 'm': case 'M':
		v <<= 20;
		end++;
		break;
	case 'g': case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end || !v || v % sys.psize)
		fatal("bad size \"%s\" (a multiple of the page size)", s);
	return v;
}

static double parse_pct(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end == '%')
		end++;
	if (end == s || *end || v < 0 || v > 100)
		fatal("bad written fraction \"%s\" (0 to 100 %%)", s);
	return v;
}

static unsigned long parse_ulong(const char *s, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (end == s || *end)
		fatal("bad %s \"%s\"", what, s);
	return v;
}

static bool parse_word(const char *s, const char *no, const char *yes,
		       const char *what)
{
	if (!strcmp(s, no) || !strcmp(s, "0"))
		return false;
	if (!strcmp(s, yes) || !strcmp(s, "1"))
		return true;
	fatal("bad %s \"%s\" (%s or %s)", what, s, no, yes);
	return false;
}

/* Split @list at commas, calling @fn on each item */
static void parse_list(const char *list, void (*fn)(const char *))
{
	char *copy = strdup(list), *save = NULL, *item;

	if (!copy)
		fatal("out of memory");
	for (item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save))
		fn(item);
	free(copy);
}

#define CHECK_ROOM(n, array) \
	do { \
		if ((n) >= sizeof(array) / sizeof((array)[0])) \
			fatal("too many values in a list"); \
	} while (0)

static void add_size(const char *s)
{
	CHECK_ROOM(opt.nr_sizes, opt.sizes);
	opt.sizes[opt.nr_sizes++] = parse_size(s);
}

static void add_pct(const char *s)
{
	CHECK_ROOM(opt.nr_pcts, opt.pcts);
	opt.pcts[opt.nr_pcts++] = parse_pct(s);
}

static void add_pattern(const char *s)
{
	CHECK_ROOM(opt.nr_dense, opt.dense);
	opt.dense[opt.nr_dense++] = parse_word(s, "random", "dense", "pattern");
}

static void add_pages(const char *s)
{
	CHECK_ROOM(opt.nr_thp, opt.thp);
	opt.thp[opt.nr_thp++] = parse_word(s, "4k", "thp", "page size");
}

static void add_vmas(const char *s)
{
	unsigned long v = parse_ulong(s, "VMA count");

	if (!v || v > 65536)
		fatal("bad VMA count \"%s\"", s);
	CHECK_ROOM(opt.nr_vmas, opt.vmas);
	opt.vmas[opt.nr_vmas++] = v;
}

static void add_busy(const char *s)
{
	CHECK_ROOM(opt.nr_busy, opt.busy);
	opt.busy[opt.nr_busy++] = parse_word(s, "idle", "busy", "busy mode");
}

/* The bit of mechanism @s (letter or name), or of all of them for "all" */
static unsigned int mech_bits(const char *s)
{
	unsigned int m;

	if (!strcmp(s, "all"))
		return (1U << NR_MECHS) - 1;
	for (m = 0; m < NR_MECHS; m++)
		if ((strlen(s) == 1 && s[0] == mechs[m].letter) ||
		    !strcmp(s, mechs[m].name))
			return 1U << m;
	fatal("unknown mechanism \"%s\" (see --help)", s);
	return 0;
}

static void add_mech(const char *s)
{
	opt.mechs |= mech_bits(s);
}

static void add_required(const char *s)
{
	opt.required |= mech_bits(s);
}

static void add_point(const struct point *pt)
{
	if (opt.nr_points >= MAX_POINTS)
		fatal("more than %d points", MAX_POINTS);
	opt.points[opt.nr_points++] = *pt;
}

static void parse_point(const char *spec)
{
	char *copy = strdup(spec), *save = NULL, *f[7] = { NULL };
	struct point pt = { .nvmas = 1 };
	unsigned int n;

	if (!copy)
		fatal("out of memory");
	f[0] = strtok_r(copy, ":", &save);
	for (n = 1; n < 7 && f[n - 1]; n++)
		f[n] = strtok_r(NULL, ":", &save);
	if (!f[0] || !f[1] || f[6])
		fatal("bad point \"%s\" (see --help)", spec);
	pt.size = parse_size(f[0]);
	pt.pct = parse_pct(f[1]);
	if (f[2])
		pt.dense = parse_word(f[2], "random", "dense", "pattern");
	if (f[3])
		pt.thp = parse_word(f[3], "4k", "thp", "page size");
	if (f[4])
		pt.nvmas = parse_ulong(f[4], "VMA count");
	if (f[5])
		pt.busy = parse_word(f[5], "idle", "busy", "busy mode");
	add_point(&pt);
	free(copy);
}

/* Take index @*k apart, the last axis varying fastest */
static unsigned int axis(unsigned long *k, unsigned int len)
{
	unsigned int i = *k % len;

	*k /= len;
	return i;
}

static void build_matrix(void)
{
	unsigned long total = (unsigned long)opt.nr_sizes * opt.nr_pcts *
			      opt.nr_dense * opt.nr_thp * opt.nr_vmas *
			      opt.nr_busy;
	unsigned long n, k;
	struct point pt;

	if (total > MAX_POINTS)
		fatal("the matrix has %lu points, more than %d", total,
		      MAX_POINTS);
	for (n = 0; n < total; n++) {
		k = n;
		pt.busy = opt.busy[axis(&k, opt.nr_busy)];
		pt.nvmas = opt.vmas[axis(&k, opt.nr_vmas)];
		pt.thp = opt.thp[axis(&k, opt.nr_thp)];
		pt.dense = opt.dense[axis(&k, opt.nr_dense)];
		pt.pct = opt.pcts[axis(&k, opt.nr_pcts)];
		pt.size = opt.sizes[axis(&k, opt.nr_sizes)];
		add_point(&pt);
	}
}

static void parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "fractions", required_argument, NULL, 'f' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "pages", required_argument, NULL, 't' },
		{ "vmas", required_argument, NULL, 'v' },
		{ "busy", required_argument, NULL, 'b' },
		{ "full", no_argument, NULL, 'F' },
		{ "quick", no_argument, NULL, 'q' },
		{ "point", required_argument, NULL, 'P' },
		{ "cycles", required_argument, NULL, 'c' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "mech", required_argument, NULL, 'm' },
		{ "run", required_argument, NULL, 'r' },
		{ "require", required_argument, NULL, 'R' },
		{ "vec", required_argument, NULL, 'V' },
		{ "seed", required_argument, NULL, 'S' },
		{ "csv", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool quick = false, full = false, axes = false;
	unsigned int i;
	int c;

	opt.cycles = 7;
	opt.warmup = 1;
	opt.run_pages = 64;
	opt.vec_len = 1024;
	opt.seed = 1;
	while ((c = getopt_long(argc, argv, "s:f:p:t:v:b:FqP:c:w:m:r:R:V:S:o:h",
				longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			parse_list(optarg, add_size);
			axes = true;
			break;
		case 'f':
			parse_list(optarg, add_pct);
			axes = true;
			break;
		case 'p':
			parse_list(optarg, add_pattern);
			axes = true;
			break;
		case 't':
			parse_list(optarg, add_pages);
			axes = true;
			break;
		case 'v':
			parse_list(optarg, add_vmas);
			axes = true;
			break;
		case 'b':
			parse_list(optarg, add_busy);
			axes = true;
			break;
		case 'F':
			full = true;
			break;
		case 'q':
			quick = true;
			break;
		case 'P':
			parse_point(optarg);
			break;
		case 'c':
			opt.cycles = parse_ulong(optarg, "cycle count");
			break;
		case 'w':
			opt.warmup = parse_ulong(optarg, "warm-up count");
			break;
		case 'm':
			parse_list(optarg, add_mech);
			break;
		case 'r':
			opt.run_pages = parse_ulong(optarg, "run length");
			break;
		case 'R':
			parse_list(optarg, add_required);
			break;
		case 'V':
			opt.vec_len = parse_ulong(optarg, "vec length");
			break;
		case 'S':
			opt.seed = parse_ulong(optarg, "seed");
			break;
		case 'o':
			opt.csv = optarg;
			break;
		case 'h':
			print_usage(stdout);
			exit(0);
		default:
			print_usage(stderr);
			exit(2);
		}
	}
	if (optind < argc)
		fatal("unexpected argument \"%s\" (see --help)", argv[optind]);
	if (!opt.cycles || !opt.run_pages || !opt.vec_len)
		fatal("--cycles, --run and --vec must be at least 1");
	if ((quick + full + !!opt.nr_points > 1) ||
	    ((quick || opt.nr_points) && axes))
		fatal("--quick, --full, --point and the matrix lists exclude each other");
	if (!opt.mechs)
		opt.mechs = (1U << NR_MECHS) - 1;
	if (opt.required & ~opt.mechs)
		fatal("--require names a mechanism that --mech leaves out");

	if (quick) {
		for (i = 0; i < ARRAY_SIZE(quick_points); i++)
			add_point(&quick_points[i]);
		return;
	}
	if (opt.nr_points)
		return;
	if (full) {
		opt.nr_dense = 0;
		opt.nr_thp = 0;
		opt.nr_vmas = 0;
		opt.nr_busy = 0;
		parse_list("random,dense", add_pattern);
		parse_list("4k,thp", add_pages);
		parse_list("1,4096", add_vmas);
		parse_list("idle,busy", add_busy);
	}
	if (!opt.nr_sizes)
		parse_list("64M,256M,1G", add_size);
	if (!opt.nr_pcts)
		parse_list("0,0.1,1,10,100", add_pct);
	if (!opt.nr_dense)
		add_pattern("random");
	if (!opt.nr_thp)
		add_pages("4k");
	if (!opt.nr_vmas)
		add_vmas("1");
	if (!opt.nr_busy)
		add_busy("idle");
	build_matrix();
}

static void check_points(void)
{
	bool busy = false;
	unsigned int p;

	for (p = 0; p < opt.nr_points; p++) {
		const struct point *pt = &opt.points[p];

		if (!pt->nvmas || pt->size % ((unsigned long)pt->nvmas *
					      sys.psize))
			fatal("%lu bytes cannot be split into %u VMAs of whole pages",
			      pt->size, pt->nvmas);
		busy |= pt->busy;
	}
	if (busy && sys.nr_cpus < 2)
		fatal("busy points need two CPUs, this process may use %u",
		      sys.nr_cpus);
}

static void setup_system(void)
{
	unsigned int cpu;
	long hpage;

	sys.psize = sysconf(_SC_PAGESIZE);
	for (sys.pshift = 0; (1UL << sys.pshift) < sys.psize; sys.pshift++)
		;
	hpage = read_long("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
			  2L << 20);
	sys.hpage = hpage > 0 ? hpage : 2UL << 20;

	if (sched_getaffinity(0, sizeof(sys.main_cpus), &sys.main_cpus))
		fatal("sched_getaffinity: %s", strerror(errno));
	for (cpu = 0; cpu < CPU_SETSIZE && sys.nr_cpus < 2; cpu++)
		if (CPU_ISSET(cpu, &sys.main_cpus))
			sys.cpus[sys.nr_cpus++] = cpu;

	sys.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (sys.pagemap_fd < 0)
		fatal("/proc/self/pagemap: %s", strerror(errno));
	sys.clear_refs_fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (sys.clear_refs_fd < 0)
		fatal("/proc/self/clear_refs: %s", strerror(errno));
	sys.vec = zalloc(opt.vec_len * sizeof(*sys.vec));
	sys.pm_buf = zalloc(PM_CHUNK * sizeof(*sys.pm_buf));
}

static void print_setup(void)
{
	char *thp = read_file("/sys/kernel/mm/transparent_hugepage/enabled",
			      NULL);
	char why[200];
	unsigned int m;

	printf("pagemap_bench: %u point(s), %u cycles (+%u warm-up), THP %s",
	       opt.nr_points, opt.cycles, opt.warmup,
	       thp ? thp : "unavailable\n");
	free(thp);
	for (m = 0; m < NR_MECHS; m++) {
		if (!selected(m))
			continue;
		if (mechs[m].available(why, sizeof(why)))
			printf("  %c %-9s available\n", mechs[m].letter,
			       mechs[m].name);
		else
			printf("  %c %-9s n/a: %s\n", mechs[m].letter,
			       mechs[m].name, why);
	}
	if (tlb_shootdowns() < 0)
		printf("  (no TLB row in /proc/interrupts: shootdowns not counted)\n");
}

/*
 * A mechanism the caller said the kernel has, but which was n/a: a test
 * must not pass on a kernel that lacks the feature it measures.
 */
static bool required_but_missing(unsigned int m, const struct result *res)
{
	if (!(opt.required & (1U << m)) || res->status != RES_NA)
		return false;
	printf("pagemap_bench: FAIL: %s is required but n/a: %s\n",
	       mechs[m].name, res->why);
	return true;
}

static void alloc_result(struct result *res)
{
	res->write_ms = zalloc(opt.cycles * sizeof(double));
	res->collect_ms = zalloc(opt.cycles * sizeof(double));
	res->cycle_ms = zalloc(opt.cycles * sizeof(double));
	res->tlb = zalloc(opt.cycles * sizeof(double));
}

int main(int argc, char **argv)
{
	unsigned int p, m, c, nr, failed = 0;
	bool csv_out;
	struct result **all;
	char *csv_buf = NULL;
	size_t csv_len = 0;
	FILE *csv = NULL;

	sys.psize = sysconf(_SC_PAGESIZE);
	parse_options(argc, argv);
	csv_out = opt.csv && !strcmp(opt.csv, "-");
	setup_system();
	check_points();
	probe_kernel();
	print_setup();

	if (opt.csv) {
		if (csv_out)
			csv = open_memstream(&csv_buf, &csv_len);
		else
			csv = fopen(opt.csv, "we");
		if (!csv)
			fatal("%s: %s", opt.csv, strerror(errno));
		csv_header(csv);
	}
	nr = opt.warmup + opt.cycles;
	all = zalloc(opt.nr_points * sizeof(*all));
	for (p = 0; p < opt.nr_points; p++) {
		const struct point *pt = &opt.points[p];
		struct cycle_pages *cyc = zalloc(nr * sizeof(*cyc));
		__u64 rng = opt.seed * 0x100000001b3ULL + p;
		struct area a;

		area_setup(&a, pt);
		for (c = 0; c < nr; c++)
			make_cycle(&cyc[c], pt, a.npages, a.truth, &rng);
		all[p] = zalloc(NR_MECHS * sizeof(**all));
		for (m = 0; m < NR_MECHS; m++) {
			alloc_result(&all[p][m]);
			if (!selected(m))
				continue;
			run_mech(&mechs[m], pt, &a, cyc, &all[p][m]);
			failed += all[p][m].status == RES_FAIL;
			failed += required_but_missing(m, &all[p][m]);
		}
		print_point(pt, cyc, all[p]);
		if (csv)
			csv_point(csv, pt, cyc, all[p]);
		area_teardown(&a);
		for (c = 0; c < nr; c++)
			free(cyc[c].page);
		free(cyc);
	}
	if (csv && fclose(csv))
		fatal("%s: %s", opt.csv, strerror(errno));

	print_summary(all, false);
	print_summary(all, true);
	if (csv_out)
		printf("\npagemap_bench: csv begin\n%spagemap_bench: csv end\n",
		       csv_buf);
	if (failed) {
		printf("\npagemap_bench: FAIL: %u mechanism run(s) failed (see above)\n",
		       failed);
		return 1;
	}
	printf("\npagemap_bench: every available mechanism passed its truth check\n");
	return 0;
}
