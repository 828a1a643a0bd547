// SPDX-License-Identifier: GPL-2.0
/*
 * Robustness tests of the PAGEMAP_SCAN ioctl and of asynchronous
 * userfaultfd write-protection: allocation failures injected while they
 * run, concurrent scanners and concurrent changes of the target, the
 * largest inputs, permission checks, and one test for each upstream fix
 * whose class of bug our implementation could have too.
 *
 * The property most tests check is the one write trackers rely on: a
 * page written after it was protected is reported by the next scan, and a
 * page that was not written is not.
 *
 * Environment:
 *   PMS_GUEST=1   set in the test guest. What this file needs and a
 *                 developer's host may lack (fault injection, swap, two
 *                 NUMA nodes) is skipped without it and fails with it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>

#include "../kselftest_harness.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif
#ifndef MADV_FREE
#define MADV_FREE		8
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT		26
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY	1
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE		0x2
#endif

#define SZ_2M			(2UL << 20)
#define SZ_1G			(1024UL << 20)
#define SZ_512G			(512UL << 30)
#define ALL_CATS		0xffULL
/*
 * All but soft-dirty, for tests about something else: whether a huge PMD
 * is soft-dirty depends on the kernel (none without MEM_SOFT_DIRTY; on
 * x86 pmd_mkdirty() sets it, so a written THP is).
 */
#define CATS_BUT_SD		(ALL_CATS & ~(__u64)PAGE_IS_SOFT_DIRTY)
/* walk_end is set to this beforehand, to see whether the kernel wrote it */
#define POISON_END		0xdead0000beef0000ULL
#define VEC_FILL		0xa5
#define UNPRIV_UID		65534
#define OTHER_UID		65533
#define SLEEPER_ARG		"--pagemap-robust-sleeper"
#define DEBUGFS_MAGIC		0x64626720

/* /proc/PID/pagemap entry bits */
#define PME_PRESENT		0x8000000000000000ULL
#define PME_SWAP		0x4000000000000000ULL
#define PME_UFFD_WP		0x0200000000000000ULL

/* Anything that can only happen if the kernel hangs takes longer */
#define HANG_SECONDS		30

static size_t psize;
static int sink;

static void init_globals(void)
{
	psize = sysconf(_SC_PAGESIZE);
}

static bool in_guest(void)
{
	const char *g = getenv("PMS_GUEST");

	return g && *g && strcmp(g, "0");
}

/*
 * Where the test environment, not the kernel under test, lacks something
 * (swap on a developer's host, say): skip there, but fail in the guest,
 * which is set up to have it. Every SKIP of this file goes through here.
 *
 * Note on kselftest_harness.h: ASSERT_*() and EXPECT_*() expand to two
 * statements (the check, then a for loop that runs the optional TH_LOG()
 * and bails out), so under an if or for without braces only the check is
 * conditional. Every such use in this file is braced.
 */
#define NEED(cond, fmt, ...) do {					\
	bool __have = (cond);						\
									\
	if (!__have) {							\
		if (in_guest()) {					\
			ASSERT_TRUE(__have)				\
				TH_LOG(fmt " (required in the guest)",	\
				       ##__VA_ARGS__);			\
		}							\
		SKIP(return, fmt, ##__VA_ARGS__);			\
	}								\
} while (0)

static __u64 u64_of(const void *p)
{
	return (uintptr_t)p;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static __u64 rnd(__u64 *s)
{
	/* xorshift64: reproducible per seed, good enough to pick pages */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void poke(char *p, char v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static char peek(const char *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static long read_long_file(const char *path, long dflt)
{
	char buf[64];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return dflt;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return dflt;
	buf[n] = '\0';
	return strtol(buf, NULL, 0);
}

static int write_file(const char *path, const char *val)
{
	ssize_t len = strlen(val), n;
	int fd;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	n = write(fd, val, len);
	close(fd);
	return n == len ? 0 : -1;
}

static int open_pagemap(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid ? pid : getpid());
	return open(path, O_RDONLY);
}

static __u64 pme(int fd, const void *addr)
{
	__u64 e = 0;

	if (pread(fd, &e, sizeof(e), (uintptr_t)addr / psize * sizeof(e)) != sizeof(e))
		return 0;
	return e;
}

/* ---------------------------------------------------------------------- */
/* The ioctl                                                               */
/* ---------------------------------------------------------------------- */

struct req {
	__u64 flags;
	__u64 max_pages;
	__u64 inverted;
	__u64 mask;
	__u64 anyof;
	__u64 ret;
};

static const struct req q_written = {
	.mask = PAGE_IS_WRITTEN, .ret = PAGE_IS_WRITTEN,
};

static const struct req q_wp_written = {
	.flags = PM_SCAN_WP_MATCHING, .mask = PAGE_IS_WRITTEN, .ret = PAGE_IS_WRITTEN,
};

static void fill_arg(struct pm_scan_arg *a, __u64 start, __u64 end,
		     struct page_region *vec, __u64 vec_len, const struct req *r)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->flags = r->flags;
	a->start = start;
	a->end = end;
	a->walk_end = POISON_END;
	a->vec = u64_of(vec);
	a->vec_len = vec_len;
	a->max_pages = r->max_pages;
	a->category_inverted = r->inverted;
	a->category_mask = r->mask;
	a->category_anyof_mask = r->anyof;
	a->return_mask = r->ret;
}

static long scan(int fd, const void *start, const void *end, struct page_region *vec,
		 __u64 vec_len, const struct req *r, __u64 *walk_end)
{
	struct pm_scan_arg a;
	long ret;

	fill_arg(&a, u64_of(start), u64_of(end), vec, vec_len, r);
	ret = ioctl(fd, PAGEMAP_SCAN, &a);
	if (walk_end)
		*walk_end = a.walk_end;
	return ret;
}

/*
 * Mark in @seen (one bool per page from @base, @npages of them) the pages
 * of @n regions; false if a region is malformed, outside the area or
 * reports a page already marked.
 */
static bool mark(const struct page_region *v, long n, const char *base, size_t npages,
		 bool *seen)
{
	__u64 b = u64_of(base), a;
	long i;

	for (i = 0; i < n; i++) {
		if (v[i].start >= v[i].end || v[i].start < b ||
		    v[i].end > b + npages * psize || (v[i].start | v[i].end) % psize)
			return false;
		for (a = v[i].start; a < v[i].end; a += psize) {
			if (seen[(a - b) / psize])
				return false;
			seen[(a - b) / psize] = true;
		}
	}
	return true;
}

/*
 * Scan [base, base + npages pages) with @r until walk_end reaches the end,
 * @vec_len regions a call, and mark what is reported in @seen. Returns the
 * number of pages reported, or -1 (errno set, or EPROTO for a bad answer).
 */
static long scan_all(int fd, char *base, size_t npages, const struct req *r,
		     size_t vec_len, bool *seen)
{
	struct page_region *v = calloc(vec_len, sizeof(*v));
	__u64 pos = u64_of(base), end = pos + npages * psize, we;
	long n, pages = 0, i, calls = 0;

	if (!v)
		return -1;
	while (pos < end) {
		n = scan(fd, (void *)(uintptr_t)pos, (void *)(uintptr_t)end, v, vec_len, r, &we);
		if (n < 0 || we <= pos || we > end || !mark(v, n, base, npages, seen) ||
		    ++calls > (long)npages + 1) {
			if (n >= 0)
				errno = EPROTO;
			free(v);
			return -1;
		}
		for (i = 0; i < n; i++)
			pages += (v[i].end - v[i].start) / psize;
		/*
		 * Upstream may leave walk_end at the start of the last batch
		 * of a call that went on to the end (our kernel does not, see
		 * pagemap.rst): resume after the regions then, which is right
		 * either way.
		 */
		pos = n && v[n - 1].end > we ? v[n - 1].end : we;
	}
	free(v);
	return pages;
}

/* Pages where @got and @want differ, logged (the first few) */
static size_t diff_pages(struct __test_metadata *_metadata, const char *what,
			 const bool *got, const bool *want, size_t npages)
{
	size_t i, bad = 0;

	for (i = 0; i < npages; i++) {
		if (got[i] == want[i])
			continue;
		if (bad++ < 8)
			TH_LOG("%s: page %zu %s", what, i,
			       got[i] ? "reported, not expected" : "expected, not reported");
	}
	if (bad > 8)
		TH_LOG("%s: %zu pages differ in all", what, bad);
	return bad;
}

/* ---------------------------------------------------------------------- */
/* userfaultfd                                                             */
/* ---------------------------------------------------------------------- */

#define ASYNC_FEATURES	(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | \
			 UFFD_FEATURE_WP_HUGETLBFS_SHMEM)

static int uffd_open(int flags, __u64 features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags);

	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api) || (api.features & features) != features) {
		close(fd);
		errno = EOPNOTSUPP;
		return -1;
	}
	return fd;
}

static int uffd_register(int uffd, void *addr, size_t len, __u64 mode)
{
	struct uffdio_register reg = {
		.range = { .start = u64_of(addr), .len = len },
		.mode = mode,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &reg);
}

static int uffd_wp(int uffd, void *addr, size_t len, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = u64_of(addr), .len = len },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
}

/* Register for async write tracking and protect all of it */
static int track(int uffd, void *addr, size_t len)
{
	if (uffd_register(uffd, addr, len, UFFDIO_REGISTER_MODE_WP))
		return -1;
	return uffd_wp(uffd, addr, len, true);
}

/* ---------------------------------------------------------------------- */
/* Memory                                                                  */
/* ---------------------------------------------------------------------- */

/*
 * Reserve @len + @align bytes of address space and return the @align
 * boundary inside; *resv and *resv_len say what to unmap. A PROT_NONE
 * reservation around the mapping keeps it from merging with neighbours.
 */
static char *reserve(size_t len, size_t align, char **resv, size_t *resv_len)
{
	char *r;

	*resv_len = len + 2 * align;
	r = mmap(NULL, *resv_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (r == MAP_FAILED) {
		*resv = NULL;
		return NULL;
	}
	*resv = r;
	return (char *)(((uintptr_t)r + align) & ~(uintptr_t)(align - 1));
}

static char *map_at(char *addr, size_t len, int flags, int fd)
{
	char *p = mmap(addr, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Free 2 MiB hugetlb pages, from /proc/meminfo */
static long free_hugepages(void)
{
	char line[128];
	long n = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/*
 * AnonHugePages of the VMA that contains @addr, in bytes, from
 * /proc/self/smaps: whether THPs really back a range, told by something
 * else than the ioctl under test.
 */
static long anon_huge_bytes(const void *addr)
{
	unsigned long lo, hi, a = (uintptr_t)addr;
	bool in = false;
	char line[512];
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* a VMA's first line: "lo-hi perms ...", no other has "-" before " " */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = lo <= a && a < hi;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb < 0 ? -1 : kb << 10;
}

static bool thp_enabled(void)
{
	char buf[128] = "";
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY);

	if (fd < 0)
		return false;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = '\0';
	close(fd);
	return !strstr(buf, "[never]");
}

static bool swap_enabled(void)
{
	char line[256];
	int lines = 0;
	FILE *f = fopen("/proc/swaps", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		lines++;
	fclose(f);
	return lines > 1;
}

/* Retry MADV_PAGEOUT until @p is swapped out (or discarded), a few times */
static bool page_out(int pmfd, char *p, size_t len)
{
	size_t i;
	int round;
	bool all;

	for (round = 0; round < 20; round++) {
		madvise(p, len, MADV_PAGEOUT);
		all = true;
		for (i = 0; i < len; i += psize)
			all &= !(pme(pmfd, p + i) & PME_PRESENT);
		if (all)
			return true;
		usleep(10000);
	}
	return false;
}

/* Wait for @pid at most @secs seconds; false (and *status unset) on timeout */
static bool wait_child(pid_t pid, double secs, int *status)
{
	double t0 = now();

	while (now() - t0 < secs) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0)
			return false;
		usleep(2000);
	}
	return false;
}

static int drop_privileges(uid_t uid)
{
	if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
		return -1;
	/* a change of credentials made it non-dumpable: /proc/PID owned by root */
	return prctl(PR_SET_DUMPABLE, 1);
}

/* ---------------------------------------------------------------------- */
/* Allocation failures injected during the operations                     */
/* ---------------------------------------------------------------------- */

/*
 * Two ways of injecting, both restricted to the thread under test:
 *
 * - /proc/thread-self/fail-nth: the Nth allocation the thread makes that
 *   reaches should_fail() fails. For N = 1, 2, ... this fails each
 *   allocation of the operation once, in turn, until an operation makes
 *   fewer than N (the file then still holds what is left of N): that last
 *   run had no failure injected, and it must succeed and answer right. An
 *   operation still injected at N = FI_MAX_NTH fails the test: the
 *   allocations after the FI_MAX_NTH-th would go untested.
 * - task-filter with make-it-fail, probability 100, and pairs of interval
 *   and times, so that several allocations of one call fail.
 *
 * fail-nth bypasses probability, task-filter, interval, times and space,
 * but not the allocators' own filters, applied before should_fail(): so
 * only the variant's allocator reaches it, the other being told to ignore
 * every allocation (failslab: cache-filter with no cache marked;
 * fail_page_alloc: a min-order above MAX_ORDER), and the count of fail-nth
 * is of one allocator's allocations only. ignore-gfp-wait (default Y) is
 * turned off, or no GFP_KERNEL allocation would be failed. verbose=0
 * keeps the injected failures out of the kernel log, which the harness
 * scans for splats ("Call Trace:"). Every setting is restored at teardown,
 * and by the setup itself when it fails half way (the harness runs no
 * teardown then); a test killed by its timeout leaves them set.
 */
#define FAILSLAB		"/sys/kernel/debug/failslab"
#define FAIL_PAGE_ALLOC		"/sys/kernel/debug/fail_page_alloc"
#define FI_MAX_NTH		256	/* fail-nth rounds at most, see above */
#define FI_MAX_KNOBS		24

struct fi_knob {
	const char *dir;
	const char *name;
	const char *val;
};

static const struct fi_knob fi_slab_target[] = {
	{ FAILSLAB, "probability", "0" },
	{ FAILSLAB, "verbose", "0" },
	{ FAILSLAB, "task-filter", "Y" },
	{ FAILSLAB, "ignore-gfp-wait", "N" },
	{ FAILSLAB, "cache-filter", "N" },
	{ FAILSLAB, "space", "0" },
	{ FAILSLAB, "interval", "1" },
	{ FAILSLAB, "times", "-1" },
	{ FAIL_PAGE_ALLOC, "probability", "0" },
	{ FAIL_PAGE_ALLOC, "verbose", "0" },
	{ FAIL_PAGE_ALLOC, "task-filter", "Y" },
	{ FAIL_PAGE_ALLOC, "min-order", "99" },
	{ FAIL_PAGE_ALLOC, "ignore-gfp-wait", "Y" },
	{ FAIL_PAGE_ALLOC, "ignore-gfp-highmem", "Y" },
	{ NULL },
};

static const struct fi_knob fi_page_target[] = {
	{ FAIL_PAGE_ALLOC, "probability", "0" },
	{ FAIL_PAGE_ALLOC, "verbose", "0" },
	{ FAIL_PAGE_ALLOC, "task-filter", "Y" },
	{ FAIL_PAGE_ALLOC, "ignore-gfp-wait", "N" },
	{ FAIL_PAGE_ALLOC, "ignore-gfp-highmem", "N" },
	{ FAIL_PAGE_ALLOC, "min-order", "0" },
	{ FAIL_PAGE_ALLOC, "space", "0" },
	{ FAIL_PAGE_ALLOC, "interval", "1" },
	{ FAIL_PAGE_ALLOC, "times", "-1" },
	{ FAILSLAB, "probability", "0" },
	{ FAILSLAB, "verbose", "0" },
	{ FAILSLAB, "task-filter", "Y" },
	{ FAILSLAB, "cache-filter", "Y" },
	{ FAILSLAB, "ignore-gfp-wait", "Y" },
	{ NULL },
};

/* interval, times: with probability 100 while make-it-fail is set */
static const int fi_rates[][2] = { { 1, 1 }, { 1, 3 }, { 2, 4 }, { 3, -1 } };

/*
 * The area an operation works on, 16 MiB laid out so that every kind of
 * entry and every level of page table is there, placed 12 MiB below a
 * 1 GiB boundary in a fresh 512 GiB slot:
 *   [0, 4M)    4 KiB pages, every other one written (512 regions: more
 *              than one batch of the kernel's buffer)
 *   [4M, 6M)   a THP, written
 *   [6M, 8M)   a THP range read only: the huge zero page
 *   [8M, 12M)  untouched, its page table there
 *   [12M, 16M) untouched, past the 1 GiB boundary: no page table at all
 * FI_TRACKED protects [0, 4M) and [8M, 12M) only: a write to a protected
 * huge PMD splits it, so the THP and the huge zero page are left written
 * (unprotected), to be still mapped by their PMDs when the operation runs;
 * [12M, 16M) is left unprotected too, written holes. FI_REGISTERED
 * protects nothing and writes one page of the THP, which stays PMD-mapped;
 * the huge zero page is only read, so it stays too.
 */
#define FI_LEN			(16UL << 20)
#define FI_PAGES		(FI_LEN / 4096)
#define FI_SMALL		(4UL << 20)
#define FI_HUGE_END		(FI_SMALL + 2 * SZ_2M)
#define FI_PROTECTED		(12UL << 20)

struct fi_area {
	char *resv, *p;
	size_t resv_len;
	int uffd;
	struct page_region *vec;	/* fresh each round: faulting it allocates */
	size_t vec_len;
	__u64 walk_end;			/* of the operation, when it is a scan */
	bool huge_ok;			/* the THP and the huge zero page are PMDs */
	bool pre[FI_PAGES];		/* written and not yet reported */
	bool post[FI_PAGES];		/* written after the operation */
	bool seen[FI_PAGES];
};

enum fi_setup { FI_NONE, FI_REGISTERED, FI_TRACKED };

/* Whether [4M, 6M) is a THP and [6M, 8M) the huge zero page, both PMDs */
static bool fi_huge_ok(int pmfd, struct fi_area *a)
{
	const struct req huge = { .mask = PAGE_IS_HUGE, .ret = PAGE_IS_HUGE | PAGE_IS_PFNZERO };
	struct page_region v[4];

	if (scan(pmfd, a->p + FI_SMALL, a->p + FI_HUGE_END, v, 4, &huge, NULL) != 2)
		return false;
	return v[0].start == u64_of(a->p + FI_SMALL) && v[0].end == v[1].start &&
	       v[1].end == u64_of(a->p + FI_HUGE_END) && v[0].categories == PAGE_IS_HUGE &&
	       v[1].categories == (PAGE_IS_HUGE | PAGE_IS_PFNZERO);
}

static int fi_build(struct fi_area *a, int pmfd, enum fi_setup setup, __u64 *seed)
{
	char *slot;
	size_t i;

	memset(a->pre, 0, sizeof(a->pre));
	memset(a->post, 0, sizeof(a->post));
	a->uffd = -1;
	a->walk_end = 0;
	slot = reserve(SZ_512G, SZ_512G, &a->resv, &a->resv_len);
	if (!slot)
		return -1;
	a->p = map_at(slot + SZ_1G - FI_PROTECTED, FI_LEN, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (!a->p || madvise(a->p, FI_SMALL, MADV_NOHUGEPAGE) ||
	    madvise(a->p + FI_SMALL, FI_LEN - FI_SMALL, MADV_HUGEPAGE))
		return -1;
	a->vec_len = 1024;
	a->vec = mmap(NULL, a->vec_len * sizeof(*a->vec), PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->vec == MAP_FAILED)
		return -1;
	sink += peek(a->p + FI_SMALL + SZ_2M);
	poke(a->p + FI_SMALL, 1);
	a->huge_ok = fi_huge_ok(pmfd, a);
	if (setup == FI_NONE) {
		for (i = 0; i < FI_SMALL / psize; i += 2)
			poke(a->p + i * psize, 1);
		return 0;
	}
	a->uffd = uffd_open(0, ASYNC_FEATURES);
	if (a->uffd < 0 || uffd_register(a->uffd, a->p, FI_LEN, UFFDIO_REGISTER_MODE_WP))
		return -1;
	if (setup == FI_TRACKED) {
		if (uffd_wp(a->uffd, a->p, FI_SMALL, true) ||
		    uffd_wp(a->uffd, a->p + FI_HUGE_END, FI_PROTECTED - FI_HUGE_END, true))
			return -1;
		for (i = FI_SMALL / psize; i < FI_HUGE_END / psize; i++)
			a->pre[i] = true;
		for (i = FI_PROTECTED / psize; i < FI_PAGES; i++)
			a->pre[i] = true;
	}
	for (i = 0; i < FI_SMALL / psize; i += 2) {
		poke(a->p + i * psize, 1);
		a->pre[i] = true;
	}
	if (setup == FI_REGISTERED) {
		/* and a page of the THP, somewhere */
		i = (FI_SMALL + (rnd(seed) % 512) * psize) / psize;
		poke(a->p + i * psize, 2);
		a->pre[i] = true;
	}
	/* nothing above may have split them */
	a->huge_ok = a->huge_ok && fi_huge_ok(pmfd, a);
	return 0;
}

static void fi_destroy(struct fi_area *a)
{
	if (a->uffd >= 0)
		close(a->uffd);
	if (a->vec && a->vec != MAP_FAILED)
		munmap(a->vec, a->vec_len * sizeof(*a->vec));
	if (a->resv)
		munmap(a->resv, a->resv_len);
	memset(a, 0, sizeof(*a));
}

/* Write about one page in 8, and every page written before (see below) */
static void fi_write_after(struct fi_area *a, __u64 *seed, bool also_pre)
{
	size_t i;

	for (i = 0; i < FI_PAGES; i++) {
		if (!(rnd(seed) % 8) || (also_pre && a->pre[i])) {
			poke(a->p + i * psize, 3);
			a->post[i] = true;
		}
	}
}

/* What a scan of WRITTEN pages finds now, injection off */
static bool fi_written(int pmfd, struct fi_area *a)
{
	memset(a->seen, 0, sizeof(a->seen));
	return scan_all(pmfd, a->p, FI_PAGES, &q_written, 512, a->seen) >= 0;
}

FIXTURE(inject) {
	char saved_path[FI_MAX_KNOBS][96];
	char saved_val[FI_MAX_KNOBS][32];
	int nsaved;
	int nth_fd, mif_fd, pmfd;
	bool mounted;		/* debugfs mounted by the setup */
	const char *missing;
	int injected;		/* rounds in which a failure was injected */
	int failed;		/* operations that failed */
	int clean_nth;		/* the fail-nth that injected nothing, 0: none */
};

FIXTURE_VARIANT(inject) {
	const struct fi_knob *knobs;
	const char *dir;
	bool slab;
};

FIXTURE_VARIANT_ADD(inject, failslab) {
	.knobs = fi_slab_target,
	.dir = FAILSLAB,
	.slab = true,
};

FIXTURE_VARIANT_ADD(inject, fail_page_alloc) {
	.knobs = fi_page_target,
	.dir = FAIL_PAGE_ALLOC,
};

/* Disarm, and put back every setting saved; the number that failed */
static int fi_restore(FIXTURE_DATA(inject) *self)
{
	int i, bad = 0;

	if (self->nth_fd >= 0 && pwrite(self->nth_fd, "0", 1, 0) != 1)
		bad++;
	if (self->mif_fd >= 0 && pwrite(self->mif_fd, "0", 1, 0) != 1)
		bad++;
	/* probability was saved first: restoring it first disarms */
	for (i = 0; i < self->nsaved; i++)
		bad += !!write_file(self->saved_path[i], self->saved_val[i]);
	self->nsaved = 0;
	return bad;
}

FIXTURE_SETUP(inject)
{
	const struct fi_knob *k;
	struct statfs sfs;
	char path[96];
	ssize_t n;
	int fd;

	init_globals();
	self->nth_fd = -1;
	self->mif_fd = -1;
	self->pmfd = open_pagemap(0);
	ASSERT_LE(0, self->pmfd);
	/* debugfs may just not be mounted on a developer's host */
	if ((statfs("/sys/kernel/debug", &sfs) || sfs.f_type != DEBUGFS_MAGIC) &&
	    !mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL))
		self->mounted = true;
	if (access(variant->dir, F_OK) || access(FAILSLAB, F_OK) ||
	    access(FAIL_PAGE_ALLOC, F_OK)) {
		/* CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAULT_INJECTION_DEBUG_FS */
		self->missing = "no failslab and fail_page_alloc in debugfs";
		return;
	}
	self->nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	self->mif_fd = open("/proc/thread-self/make-it-fail", O_RDWR);
	if (self->nth_fd < 0 || self->mif_fd < 0) {
		self->missing = "no /proc/thread-self/fail-nth or make-it-fail";
		return;
	}
	for (k = variant->knobs; k->dir; k++) {
		bool ok = self->nsaved < FI_MAX_KNOBS;

		snprintf(path, sizeof(path), "%s/%s", k->dir, k->name);
		fd = ok ? open(path, O_RDONLY) : -1;
		n = fd < 0 ? -1 : read(fd, self->saved_val[self->nsaved], 31);
		if (fd >= 0)
			close(fd);
		ok = n > 0;
		if (ok) {
			self->saved_val[self->nsaved][n] = '\0';
			strcpy(self->saved_path[self->nsaved], path);
			self->nsaved++;
			ok = !write_file(path, k->val);
		}
		if (!ok) {
			TH_LOG("cannot save or set %s: %s", path, strerror(errno));
			EXPECT_EQ(0, fi_restore(self));
			ASSERT_TRUE(ok);
		}
	}
}

FIXTURE_TEARDOWN(inject)
{
	/*
	 * No TH_LOG() on an EXPECT here: after an ASSERT of the test the
	 * harness still has its trigger set, and would print it regardless.
	 */
	int bad = fi_restore(self);

	if (bad)
		TH_LOG("cannot restore %d fault injection settings", bad);
	EXPECT_EQ(0, bad);
	if (self->nth_fd >= 0)
		close(self->nth_fd);
	if (self->mif_fd >= 0)
		close(self->mif_fd);
	close(self->pmfd);
	if (self->mounted)
		umount("/sys/kernel/debug");
}

typedef long (*fi_op_fn)(struct fi_area *a, int pmfd);

/*
 * Run @op once with injection set up for @round: rounds 0 .. FI_MAX_NTH-1
 * are fail-nth = round + 1, the next ones the rates of fi_rates[]. Returns
 * the operation's result with its errno in *err; *injected says whether a
 * failure was injected (for a rate with times -1, whether it may have been).
 * An operation in which nothing was injected must succeed.
 */
static long fi_run(struct __test_metadata *_metadata, FIXTURE_DATA(inject) *self,
		   const char *dir, int round, fi_op_fn op, struct fi_area *a,
		   int *err, bool *injected)
{
	char path[96], buf[32];
	long ret;
	int e, r;

	if (round < FI_MAX_NTH) {
		r = snprintf(buf, sizeof(buf), "%d", round + 1);
		ASSERT_EQ(r, pwrite(self->nth_fd, buf, r, 0));
		ret = op(a, self->pmfd);
		e = errno;
		memset(buf, 0, sizeof(buf));
		ASSERT_LT(0, pread(self->nth_fd, buf, sizeof(buf) - 1, 0));
		ASSERT_EQ(1, pwrite(self->nth_fd, "0", 1, 0));
		/* consumed: it counted down to zero and failed that one */
		*injected = !strtol(buf, NULL, 10);
	} else {
		const int *rate = fi_rates[round - FI_MAX_NTH];

		snprintf(path, sizeof(path), "%s/interval", dir);
		snprintf(buf, sizeof(buf), "%d", rate[0]);
		ASSERT_EQ(0, write_file(path, buf));
		snprintf(path, sizeof(path), "%s/times", dir);
		snprintf(buf, sizeof(buf), "%d", rate[1]);
		ASSERT_EQ(0, write_file(path, buf));
		snprintf(path, sizeof(path), "%s/probability", dir);
		ASSERT_EQ(0, write_file(path, "100"));
		ASSERT_EQ(1, pwrite(self->mif_fd, "1", 1, 0));
		ret = op(a, self->pmfd);
		e = errno;
		ASSERT_EQ(1, pwrite(self->mif_fd, "0", 1, 0));
		ASSERT_EQ(0, write_file(path, "0"));
		snprintf(path, sizeof(path), "%s/times", dir);
		*injected = rate[1] < 0 || read_long_file(path, rate[1]) != rate[1];
	}
	*err = e;
	if (*injected)
		self->injected++;
	if (ret < 0)
		self->failed++;
	/* an allocation failure must show as one of these, nothing else */
	if (ret < 0) {
		EXPECT_TRUE(e == ENOMEM || e == EFAULT || e == EAGAIN || e == EINTR)
			TH_LOG("round %d: failed with %s", round, strerror(e));
	}
	if (!*injected) {
		ASSERT_LE(0, ret)
			TH_LOG("round %d: failed with %s, nothing injected", round, strerror(e));
	}
	return ret;
}

/*
 * Rounds to run: fail-nth until an operation needs no more (the round
 * that injected nothing is the last of them), then the rates.
 */
static bool fi_next_round(FIXTURE_DATA(inject) *self, int *round, bool injected)
{
	if (*round < FI_MAX_NTH && !injected) {
		self->clean_nth = *round + 1;
		*round = FI_MAX_NTH;
	} else {
		(*round)++;
	}
	return *round < FI_MAX_NTH + (int)ARRAY_SIZE(fi_rates);
}

#define FI_BEGIN(self)							\
	do {								\
		if ((self)->missing) {					\
			NEED(false, "%s", (self)->missing);		\
		}							\
	} while (0)

/*
 * fail-nth must have come to a run without injection. @must: the
 * operation surely allocates from this allocator (page tables and faulting
 * in the fresh vec from the page allocator; a VMA, or the 8 KiB record of
 * what a WP scan with a vec protected, from slab), so a run that injected
 * nothing tested nothing.
 */
static void fi_report(struct __test_metadata *_metadata, FIXTURE_DATA(inject) *self,
		      bool must)
{
	TH_LOG("fail-nth 1..%d, %d rounds injected a failure, %d operations failed",
	       self->clean_nth, self->injected, self->failed);
	EXPECT_LT(0, self->clean_nth)
		TH_LOG("still failing at fail-nth %d: later allocations untested", FI_MAX_NTH);
	if (must) {
		EXPECT_LT(0, self->injected);
	}
}

static long op_scan(struct fi_area *a, int pmfd)
{
	return scan(pmfd, a->p, a->p + FI_LEN, a->vec, a->vec_len, &q_written, &a->walk_end);
}

static long op_wp_scan(struct fi_area *a, int pmfd)
{
	return scan(pmfd, a->p, a->p + FI_LEN, a->vec, a->vec_len, &q_wp_written,
		    &a->walk_end);
}

static long op_wp_scan_novec(struct fi_area *a, int pmfd)
{
	return scan(pmfd, a->p, a->p + FI_LEN, NULL, 0, &q_wp_written, &a->walk_end);
}

static long op_writeprotect(struct fi_area *a, int pmfd)
{
	return uffd_wp(a->uffd, a->p, FI_LEN, true);
}

/* Registering from 1 MiB on splits the first VMA: a VMA and tree nodes */
static long op_register(struct fi_area *a, int pmfd)
{
	return uffd_register(a->uffd, a->p + (1UL << 20), FI_LEN - (1UL << 20),
			     UFFDIO_REGISTER_MODE_WP);
}

/*
 * A scan that only reports: when it succeeds it is exactly the scan made
 * just before it without injection; when a batch after the first fails
 * it returns the earlier batches, a prefix of that answer, with walk_end
 * at the first region left out.
 */
TEST_F_TIMEOUT(inject, scan_fails_cleanly_or_answers_right, 600)
{
	static struct page_region ref[1024];
	__u64 seed = 1, want_end;
	struct fi_area a = {};
	int round = 0, err;
	bool injected;
	long n, nref;

	FI_BEGIN(self);
	do {
		ASSERT_EQ(0, fi_build(&a, self->pmfd, FI_TRACKED, &seed));
		NEED(a.huge_ok, "no THP or huge zero page for the layout");
		nref = scan(self->pmfd, a.p, a.p + FI_LEN, ref, 1024, &q_written, NULL);
		ASSERT_LT(512, nref);
		n = fi_run(_metadata, self, variant->dir, round, op_scan, &a, &err, &injected);
		if (n >= 0) {
			ASSERT_GE(nref, n);
			ASSERT_EQ(0, memcmp(ref, a.vec, n * sizeof(*ref)))
				TH_LOG("round %d: regions differ", round);
			ASSERT_TRUE(n == nref || (n && n % 512 == 0))
				TH_LOG("round %d: %ld of %ld regions", round, n, nref);
			/*
			 * Upstream (a developer's host) may leave walk_end of a
			 * complete answer at its last batch, see scan_all().
			 */
			want_end = n == nref ? u64_of(a.p + FI_LEN) : ref[n].start;
			ASSERT_TRUE(a.walk_end == want_end ||
				    (!in_guest() && n == nref &&
				     a.walk_end == ref[(n - 1) / 512 * 512].start))
				TH_LOG("round %d: %ld of %ld regions, walk_end %#llx, not %#llx",
				       round, n, nref, a.walk_end, want_end);
		}
		fi_destroy(&a);
	} while (fi_next_round(self, &round, injected));
	fi_report(_metadata, self, !variant->slab);
}

/*
 * PM_SCAN_WP_MATCHING with a vec: whatever the call reported is protected,
 * and every page written before it that it did not report is still
 * written, so the next scan reports it. (That is this series' guarantee
 * for a failed batch, see pagemap.rst; upstream keeps the protection of a
 * failed batch and loses those writes.) This is checked before anything
 * is written again. A call that returns reports every written page before
 * its walk_end. Then pages written after the call, the ones written before
 * included, are reported too: no TLB entry that allows a write without a
 * fault is left behind.
 */
TEST_F_TIMEOUT(inject, wp_scan_loses_no_write, 600)
{
	bool want[FI_PAGES], rep[FI_PAGES];
	__u64 seed = 2, done;
	struct fi_area a = {};
	int round = 0, err;
	bool injected;
	size_t i;
	long n;

	FI_BEGIN(self);
	do {
		ASSERT_EQ(0, fi_build(&a, self->pmfd, FI_TRACKED, &seed));
		NEED(a.huge_ok, "no THP or huge zero page for the layout");
		n = fi_run(_metadata, self, variant->dir, round, op_wp_scan, &a, &err,
			   &injected);
		memset(rep, 0, sizeof(rep));
		done = 0;
		if (n >= 0) {
			ASSERT_TRUE(mark(a.vec, n, a.p, FI_PAGES, rep))
				TH_LOG("round %d: bad regions", round);
			ASSERT_LT(u64_of(a.p), a.walk_end);
			ASSERT_GE(u64_of(a.p + FI_LEN), a.walk_end);
			done = (a.walk_end - u64_of(a.p)) / psize;
		}
		for (i = 0; i < FI_PAGES; i++) {
			ASSERT_FALSE(rep[i] && !a.pre[i])
				TH_LOG("round %d: page %zu reported, not written", round, i);
			ASSERT_FALSE(i < done && a.pre[i] && !rep[i])
				TH_LOG("round %d: page %zu written, not reported", round, i);
		}
		/* the undo: what was not reported is written still */
		ASSERT_TRUE(fi_written(self->pmfd, &a));
		for (i = 0; i < FI_PAGES; i++)
			want[i] = a.pre[i] && !rep[i];
		ASSERT_EQ(0, diff_pages(_metadata, "left written", a.seen, want, FI_PAGES))
			TH_LOG("round %d: call returned %ld (%s)", round, n,
			       n < 0 ? strerror(err) : "ok");
		fi_write_after(&a, &seed, true);
		ASSERT_TRUE(fi_written(self->pmfd, &a));
		for (i = 0; i < FI_PAGES; i++)
			want[i] = a.post[i] || (a.pre[i] && !rep[i]);
		ASSERT_EQ(0, diff_pages(_metadata, "after the call", a.seen, want, FI_PAGES))
			TH_LOG("round %d: call returned %ld (%s)", round, n,
			       n < 0 ? strerror(err) : "ok");
		fi_destroy(&a);
	} while (fi_next_round(self, &round, injected));
	fi_report(_metadata, self, true);
}

/*
 * Without a vec nothing is reported (and, see pagemap.rst, nothing is
 * undone), so a failure may leave some written pages protected and others
 * not; but every page written afterwards is reported, and on success only
 * those.
 */
TEST_F_TIMEOUT(inject, wp_scan_without_vec_loses_no_later_write, 600)
{
	__u64 seed = 3;
	struct fi_area a = {};
	int round = 0, err;
	bool injected;
	size_t i;
	long n;

	FI_BEGIN(self);
	do {
		ASSERT_EQ(0, fi_build(&a, self->pmfd, FI_TRACKED, &seed));
		NEED(a.huge_ok, "no THP or huge zero page for the layout");
		n = fi_run(_metadata, self, variant->dir, round, op_wp_scan_novec, &a, &err,
			   &injected);
		ASSERT_GE(0, n);
		if (!n) {
			ASSERT_EQ(u64_of(a.p + FI_LEN), a.walk_end);
		}
		fi_write_after(&a, &seed, true);
		ASSERT_TRUE(fi_written(self->pmfd, &a));
		for (i = 0; i < FI_PAGES; i++) {
			ASSERT_FALSE(a.post[i] && !a.seen[i])
				TH_LOG("round %d: page %zu lost", round, i);
			if (!n) {
				ASSERT_EQ(a.post[i], a.seen[i]) TH_LOG("round %d: page %zu",
								       round, i);
			} else {
				ASSERT_FALSE(a.seen[i] && !a.post[i] && !a.pre[i])
					TH_LOG("round %d: page %zu", round, i);
			}
		}
		fi_destroy(&a);
	} while (fi_next_round(self, &round, injected));
	fi_report(_metadata, self, !variant->slab);
}

/*
 * UFFDIO_WRITEPROTECT of populated pages, a THP, the huge zero page and
 * holes with and without page tables (markers need them). Whether it
 * fails or not, a write afterwards to any page, one written just before
 * included (its writable TLB entry must be gone), is reported; on success
 * nothing else is. Protecting again without injection then works.
 */
TEST_F_TIMEOUT(inject, writeprotect_leaves_no_write_unseen, 600)
{
	__u64 seed = 4;
	struct fi_area a = {};
	int round = 0, err;
	bool injected;
	size_t i;
	long ret;

	FI_BEGIN(self);
	do {
		ASSERT_EQ(0, fi_build(&a, self->pmfd, FI_REGISTERED, &seed));
		NEED(a.huge_ok, "no THP or huge zero page for the layout");
		ret = fi_run(_metadata, self, variant->dir, round, op_writeprotect, &a, &err,
			     &injected);
		fi_write_after(&a, &seed, true);
		ASSERT_TRUE(fi_written(self->pmfd, &a));
		for (i = 0; i < FI_PAGES; i++) {
			ASSERT_FALSE(a.post[i] && !a.seen[i])
				TH_LOG("round %d: page %zu lost", round, i);
			if (!ret) {
				ASSERT_EQ(a.post[i], a.seen[i]) TH_LOG("round %d: page %zu",
								       round, i);
			}
		}
		/* and the range recovers */
		memset(a.post, 0, sizeof(a.post));
		memset(a.pre, 0, sizeof(a.pre));
		ASSERT_EQ(0, uffd_wp(a.uffd, a.p, FI_LEN, true));
		fi_write_after(&a, &seed, false);
		ASSERT_TRUE(fi_written(self->pmfd, &a));
		ASSERT_EQ(0, diff_pages(_metadata, "protected again", a.seen, a.post, FI_PAGES));
		fi_destroy(&a);
	} while (fi_next_round(self, &round, injected));
	fi_report(_metadata, self, !variant->slab);
}

/*
 * UFFDIO_REGISTER that has to split a VMA. A failure leaves the VMAs
 * usable: registering again works, and then exactly the registered range
 * is WPALLOWED and write tracking works in all of it.
 */
TEST_F_TIMEOUT(inject, register_fails_cleanly, 600)
{
	const struct req wpa = { .ret = PAGE_IS_WPALLOWED };
	size_t first = (1UL << 20) / 4096, i;
	struct page_region v[8];
	__u64 seed = 5;
	struct fi_area a = {};
	int round = 0, err;
	bool injected;
	long ret, n;

	FI_BEGIN(self);
	do {
		ASSERT_EQ(0, fi_build(&a, self->pmfd, FI_NONE, &seed));
		a.uffd = uffd_open(0, ASYNC_FEATURES);
		ASSERT_LE(0, a.uffd);
		ret = fi_run(_metadata, self, variant->dir, round, op_register, &a, &err,
			     &injected);
		if (ret) {
			ASSERT_EQ(0, op_register(&a, self->pmfd))
				TH_LOG("round %d: %s", round, strerror(errno));
		}
		n = scan(self->pmfd, a.p, a.p + FI_LEN, v, 8, &wpa, NULL);
		ASSERT_EQ(2, n) TH_LOG("round %d: WPALLOWED in %ld regions", round, n);
		ASSERT_EQ(u64_of(a.p) + (1UL << 20), v[1].start);
		ASSERT_EQ(u64_of(a.p + FI_LEN), v[1].end);
		ASSERT_EQ(PAGE_IS_WPALLOWED, v[1].categories);
		ASSERT_EQ(0, v[0].categories);
		ASSERT_EQ(0, uffd_wp(a.uffd, a.p + (1UL << 20), FI_LEN - (1UL << 20), true));
		fi_write_after(&a, &seed, false);
		ASSERT_TRUE(fi_written(self->pmfd, &a));
		for (i = first; i < FI_PAGES; i++) {
			ASSERT_EQ(a.post[i], a.seen[i]) TH_LOG("round %d: page %zu", round, i);
		}
		fi_destroy(&a);
	} while (fi_next_round(self, &round, injected));
	fi_report(_metadata, self, variant->slab);
}

/* ---------------------------------------------------------------------- */
/* Concurrency                                                             */
/* ---------------------------------------------------------------------- */

/* The end of the user address space as PAGEMAP_SCAN accepts it */
static __u64 user_end(int pmfd)
{
	static const __u64 ends[] = { (1ULL << 56) - 4096, (1ULL << 47) - 4096 };
	const struct req none = { .mask = PAGE_IS_WPALLOWED };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ends); i++)
		if (scan(pmfd, NULL, (void *)(uintptr_t)ends[i], NULL, 0, &none, NULL) == 0)
			return ends[i];
	return 0;
}

/* Write tracking of a private anonymous range: 4 KiB pages, then THPs */
struct tracked {
	char *resv, *p;
	size_t resv_len, pages, small;
	int uffd, pmfd;
	bool *want, *seen;
};

static int tracked_map(struct tracked *t, size_t small_pages, size_t thps)
{
	size_t len = small_pages * psize + thps * SZ_2M, i;

	memset(t, 0, sizeof(*t));
	t->uffd = -1;
	t->pages = len / psize;
	t->small = small_pages;
	t->want = calloc(t->pages, 1);
	t->seen = calloc(t->pages, 1);
	t->pmfd = open_pagemap(0);
	t->p = reserve(len + SZ_2M, SZ_2M, &t->resv, &t->resv_len);
	if (!t->want || !t->seen || t->pmfd < 0 || !t->p)
		return -1;
	/* the THPs first, aligned; the small pages after them */
	t->p = map_at(t->p, len, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (!t->p)
		return -1;
	if (thps && madvise(t->p, thps * SZ_2M, MADV_HUGEPAGE))
		return -1;
	if (small_pages && madvise(t->p + thps * SZ_2M, small_pages * psize, MADV_NOHUGEPAGE))
		return -1;
	for (i = 0; i < t->pages; i++)
		poke(t->p + i * psize, 1);
	t->uffd = uffd_open(0, ASYNC_FEATURES);
	if (t->uffd < 0)
		return -1;
	return track(t->uffd, t->p, len);
}

static void tracked_unmap(struct tracked *t)
{
	if (t->uffd >= 0)
		close(t->uffd);
	if (t->pmfd >= 0)
		close(t->pmfd);
	if (t->resv)
		munmap(t->resv, t->resv_len);
	free(t->want);
	free(t->seen);
	memset(t, 0, sizeof(*t));
	t->uffd = -1;
	t->pmfd = -1;
}

/* Write about one page in @one_in, remembering which */
static void tracked_write(struct tracked *t, __u64 *seed, unsigned int one_in)
{
	size_t i;

	memset(t->want, 0, t->pages);
	for (i = 0; i < t->pages; i++) {
		if (!(rnd(seed) % one_in)) {
			poke(t->p + i * psize, 2);
			t->want[i] = true;
		}
	}
}

/* Collect and re-protect with @vec_len regions a call: exactly what was written? */
static bool tracked_collect(struct __test_metadata *_metadata, struct tracked *t,
			    size_t vec_len)
{
	memset(t->seen, 0, t->pages);
	if (scan_all(t->pmfd, t->p, t->pages, &q_wp_written, vec_len, t->seen) < 0) {
		TH_LOG("scan: %s", strerror(errno));
		return false;
	}
	return !diff_pages(_metadata, "collected", t->seen, t->want, t->pages);
}

static int child_ready(int fd)
{
	return write(fd, "r", 1) == 1 ? 0 : -1;
}

static int await(int fd)
{
	char c;

	return read(fd, &c, 1) == 1 ? 0 : -1;
}

/*
 * The target's memory, in a child: a tracked range (so that WP_MATCHING has
 * pages to protect) and its own image. It tells @ready, waits for @go
 * (its pagemap is open then) and exits after @delay_us.
 */
static void target_body(int ready, int go, useconds_t delay_us)
{
	struct tracked t;
	__u64 seed = getpid();

	if (tracked_map(&t, 256, 2))
		_exit(10);
	tracked_write(&t, &seed, 3);
	if (child_ready(ready) || await(go))
		_exit(11);
	usleep(delay_us);
	_exit(0);
}

FIXTURE(conc) {
	int pmfd;
};

FIXTURE_SETUP(conc)
{
	init_globals();
	self->pmfd = open_pagemap(0);
	ASSERT_LE(0, self->pmfd);
}

FIXTURE_TEARDOWN(conc)
{
	close(self->pmfd);
}

/*
 * A pagemap opened while the target lived, scanned in a loop while the
 * target exits: every call succeeds until the mm is gone, then ESRCH.
 */
TEST_F_TIMEOUT(conc, scan_while_target_exits, 300)
{
	struct page_region *v = calloc(4096, sizeof(*v));
	int round, fds[2], go[2], fd, status;
	__u64 end = user_end(self->pmfd);
	struct req r = { .ret = ALL_CATS };
	long ret, calls;
	double t0;
	pid_t pid;

	ASSERT_TRUE(v && end);
	for (round = 0; round < 12; round++) {
		ASSERT_EQ(0, pipe(fds));
		ASSERT_EQ(0, pipe(go));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			close(fds[0]);
			close(go[1]);
			target_body(fds[1], go[0], 1000 * round);
		}
		close(fds[1]);
		close(go[0]);
		ASSERT_EQ(0, await(fds[0]));
		close(fds[0]);
		fd = open_pagemap(pid);
		ASSERT_LE(0, fd);
		ASSERT_EQ(1, write(go[1], "g", 1));
		close(go[1]);
		r.flags = round % 2 ? PM_SCAN_WP_MATCHING : 0;
		r.mask = round % 2 ? PAGE_IS_WRITTEN : 0;
		t0 = now();
		for (calls = 0;; calls++) {
			ret = scan(fd, NULL, (void *)(uintptr_t)end, v, 4096, &r, NULL);
			if (ret < 0)
				break;
			ASSERT_GT(HANG_SECONDS, now() - t0) TH_LOG("still scanning");
		}
		ASSERT_EQ(ESRCH, errno) TH_LOG("round %d, call %ld", round, calls);
		ASSERT_TRUE(wait_child(pid, HANG_SECONDS, &status));
		ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
		close(fd);
	}
	free(v);
}

/*
 * The target execs while it is scanned: the fd keeps the old mm, so once
 * exec replaced it every call fails with ESRCH, and the new image is
 * reached only through a new open().
 */
TEST_F_TIMEOUT(conc, scan_while_target_execs, 300)
{
	struct page_region *v = calloc(1024, sizeof(*v));
	int ready[2], go[2], fd, nfd, round;
	__u64 end = user_end(self->pmfd);
	const struct req all = { .ret = ALL_CATS };
	char fdarg[16];
	long ret;
	double t0;
	pid_t pid;

	ASSERT_TRUE(v && end);
	for (round = 0; round < 4; round++) {
		ASSERT_EQ(0, pipe(ready));
		ASSERT_EQ(0, pipe(go));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			struct tracked t;
			__u64 seed = 7;

			close(ready[0]);
			close(go[1]);
			if (tracked_map(&t, 64, 1))
				_exit(10);
			tracked_write(&t, &seed, 2);
			child_ready(ready[1]);
			await(go[0]);
			snprintf(fdarg, sizeof(fdarg), "%d", ready[1]);
			execl("/proc/self/exe", "pagemap_robust", SLEEPER_ARG, fdarg, NULL);
			_exit(12);
		}
		close(ready[1]);
		close(go[0]);
		ASSERT_EQ(0, await(ready[0]));
		fd = open_pagemap(pid);
		ASSERT_LE(0, fd);
		ASSERT_LT(0, scan(fd, NULL, (void *)(uintptr_t)end, v, 1024, &all, NULL));
		ASSERT_EQ(1, write(go[1], "g", 1));
		t0 = now();
		do {
			ret = scan(fd, NULL, (void *)(uintptr_t)end, v, 1024,
				   round % 2 ? &q_wp_written : &all, NULL);
			ASSERT_GT(HANG_SECONDS, now() - t0);
		} while (ret >= 0);
		ASSERT_EQ(ESRCH, errno);
		/* the sleeper says it runs */
		ASSERT_EQ(0, await(ready[0]));
		ASSERT_EQ(-1, scan(fd, NULL, (void *)(uintptr_t)end, v, 1024, &q_wp_written,
				   NULL));
		ASSERT_EQ(ESRCH, errno);
		nfd = open_pagemap(pid);
		ASSERT_LE(0, nfd);
		ASSERT_LT(0, scan(nfd, NULL, (void *)(uintptr_t)end, v, 1024, &all, NULL));
		close(nfd);
		close(fd);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(ready[0]);
		close(go[1]);
	}
	free(v);
}

/* Shared state of the tests that run threads against a scanner */
struct race {
	struct tracked t;
	bool stop;
	long rounds;
	int err;		/* first unexpected errno of a helper thread */
	pthread_barrier_t bar;
	bool *seen2;
	size_t vec_len2;
};

/*
 * While the range is scanned with WP_MATCHING, chunks of it are unmapped,
 * mapped again, registered and written. Each scan succeeds (or, checking
 * WPASYNC, finds a chunk not yet registered); afterwards tracking is
 * exact. Upstream once signalled the mmu notifiers of a scan outside the
 * mmap lock, racing with exactly such changes ("fs/proc/task_mmu: move mmu
 * notification mechanism inside mm lock").
 */
static void *remapper(void *arg)
{
	struct race *r = arg;
	__u64 seed = 11;
	size_t chunks = r->t.pages * psize / SZ_2M, k, i;
	char *c;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		k = rnd(&seed) % chunks;
		c = r->t.p + k * SZ_2M;
		if (!map_at(c, SZ_2M, MAP_PRIVATE | MAP_ANONYMOUS, -1) ||
		    uffd_register(r->t.uffd, c, SZ_2M, UFFDIO_REGISTER_MODE_WP)) {
			r->err = errno;
			break;
		}
		for (i = 0; i < SZ_2M; i += 8 * psize)
			poke(c + i, 1);
		if (rnd(&seed) % 4 == 0 && mprotect(c, psize, PROT_READ))
			r->err = errno;
		if (rnd(&seed) % 8 == 0)
			munmap(c + psize, psize);
		r->rounds++;
	}
	return NULL;
}

TEST_F_TIMEOUT(conc, wp_scan_while_range_is_remapped, 300)
{
	const struct req chk = { .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
				 .mask = PAGE_IS_WRITTEN, .ret = PAGE_IS_WRITTEN };
	struct page_region *v = calloc(256, sizeof(*v));
	struct race r = {};
	pthread_t th;
	long scans = 0, ret;
	__u64 seed = 12;
	int scan_err = 0;
	double t0;

	ASSERT_TRUE(!!v);
	ASSERT_EQ(0, tracked_map(&r.t, 0, 16));
	ASSERT_EQ(0, pthread_create(&th, NULL, remapper, &r));
	t0 = now();
	while (scans < 40 || (now() - t0 < 2 && scans < 100000)) {
		ret = scan(self->pmfd, r.t.p, r.t.p + r.t.pages * psize, scans % 3 ? v : NULL,
			   scans % 3 ? 256 : 0, scans % 5 ? &q_wp_written : &chk, NULL);
		if (ret < 0 && !(errno == EPERM && scans % 5 == 0)) {
			scan_err = errno;
			break;
		}
		scans++;
		if (now() - t0 > HANG_SECONDS)
			break;
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	ASSERT_EQ(0, scan_err) TH_LOG("scan %ld: %s", scans, strerror(scan_err));
	ASSERT_LE(40, scans) TH_LOG("only %ld scans in %d s", scans, HANG_SECONDS);
	ASSERT_EQ(0, r.err) TH_LOG("remapper: %s", strerror(r.err));
	TH_LOG("%ld scans, %ld remaps", scans, r.rounds);
	/* a stable range again: tracking is exact */
	ASSERT_TRUE(!!map_at(r.t.p, r.t.pages * psize, MAP_PRIVATE | MAP_ANONYMOUS, -1));
	ASSERT_EQ(0, track(r.t.uffd, r.t.p, r.t.pages * psize));
	tracked_write(&r.t, &seed, 5);
	ASSERT_TRUE(tracked_collect(_metadata, &r.t, 64));
	tracked_unmap(&r.t);
	free(v);
}

/* fork() in a loop; the children write to their copy and exit */
static void *forker(void *arg)
{
	struct race *r = arg;
	int status;
	pid_t pid;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		pid = fork();
		if (pid < 0) {
			r->err = errno;
			break;
		}
		if (!pid) {
			poke(r->t.p + (getpid() % r->t.pages) * psize, 9);
			_exit(0);
		}
		waitpid(pid, &status, 0);
		__atomic_add_fetch(&r->rounds, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * The tracked process forks all the time: its written pages are COW
 * shared, its protected ones copied into children that lose uffd-wp. The
 * parent's writes are still reported exactly, 4 KiB pages and THPs alike.
 */
TEST_F_TIMEOUT(conc, wp_scan_while_target_forks, 300)
{
	struct race r = {};
	__u64 seed = 13;
	pthread_t th;
	bool ok = true;
	int round;
	double t0;

	ASSERT_EQ(0, tracked_map(&r.t, 512, 2));
	ASSERT_EQ(0, pthread_create(&th, NULL, forker, &r));
	/* 30 rounds, and on until there were forks enough to race with */
	t0 = now();
	for (round = 0; ok && (round < 30 || (__atomic_load_n(&r.rounds, __ATOMIC_RELAXED) < 20 &&
					      !r.err && now() - t0 < HANG_SECONDS)); round++) {
		tracked_write(&r.t, &seed, 4);
		ok = tracked_collect(_metadata, &r.t, round % 2 ? 512 : 3);
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	ASSERT_TRUE(ok) TH_LOG("round %d", round - 1);
	ASSERT_EQ(0, r.err);
	TH_LOG("%d rounds, %ld forks", round, r.rounds);
	ASSERT_LE(20, r.rounds);
	tracked_unmap(&r.t);
}

static void *second_scanner(void *arg)
{
	struct race *r = arg;
	long ret;

	while (true) {
		pthread_barrier_wait(&r->bar);
		if (__atomic_load_n(&r->stop, __ATOMIC_RELAXED))
			break;
		memset(r->seen2, 0, r->t.pages);
		ret = scan_all(r->t.pmfd, r->t.p, r->t.pages, &q_wp_written, r->vec_len2,
			       r->seen2);
		if (ret < 0)
			r->err = errno;
		pthread_barrier_wait(&r->bar);
	}
	return NULL;
}

/*
 * Two threads collect the same range with WP_MATCHING at the same time,
 * with different vec_len: between them they report every page written
 * before they started, each page exactly once.
 */
TEST_F_TIMEOUT(conc, two_wp_scanners_lose_no_write, 300)
{
	static const size_t lens[] = { 1, 7, 64, 512 };
	struct race r = {};
	__u64 seed = 14;
	pthread_t th;
	size_t i, both;
	int round;

	ASSERT_EQ(0, tracked_map(&r.t, 1024, 4));
	r.seen2 = calloc(r.t.pages, 1);
	ASSERT_TRUE(!!r.seen2);
	ASSERT_EQ(0, pthread_barrier_init(&r.bar, NULL, 2));
	ASSERT_EQ(0, pthread_create(&th, NULL, second_scanner, &r));
	for (round = 0; round < 40; round++) {
		tracked_write(&r.t, &seed, round % 4 + 2);
		memset(r.t.seen, 0, r.t.pages);
		r.vec_len2 = lens[round % 4];
		pthread_barrier_wait(&r.bar);
		ASSERT_LE(0, scan_all(r.t.pmfd, r.t.p, r.t.pages, &q_wp_written,
				      lens[(round / 4) % 4], r.t.seen));
		pthread_barrier_wait(&r.bar);
		ASSERT_EQ(0, r.err);
		for (i = both = 0; i < r.t.pages; i++) {
			both += r.t.seen[i] && r.seen2[i];
			r.t.seen[i] |= r.seen2[i];
		}
		ASSERT_EQ(0, both) TH_LOG("round %d: pages reported twice", round);
		ASSERT_EQ(0, diff_pages(_metadata, "union", r.t.seen, r.t.want, r.t.pages));
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	pthread_barrier_wait(&r.bar);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&r.bar);
	free(r.seen2);
	tracked_unmap(&r.t);
}

#define SCANNERS	8

struct scanner {
	struct tracked t;
	const char *shared;
	const struct page_region *ref;
	long nref;
	int id;
	int bad;
};

/* A range of its own, collected exactly, and a shared one, read only */
static void *scanner_thread(void *arg)
{
	const struct req present = { .mask = PAGE_IS_PRESENT, .ret = ALL_CATS };
	struct scanner *s = arg;
	struct page_region v[64];
	__u64 seed = 100 + s->id;
	size_t i, j;
	long n;

	for (i = 0; i < 25 && !s->bad; i++) {
		memset(s->t.want, 0, s->t.pages);
		for (j = 0; j < s->t.pages; j++) {
			if (!(rnd(&seed) % 3)) {
				poke(s->t.p + j * psize, 5);
				s->t.want[j] = true;
			}
		}
		memset(s->t.seen, 0, s->t.pages);
		if (scan_all(s->t.pmfd, s->t.p, s->t.pages, &q_wp_written, 1 + i % 9,
			     s->t.seen) < 0) {
			s->bad = 1;
			break;
		}
		for (j = 0; j < s->t.pages; j++)
			if (s->t.seen[j] != s->t.want[j])
				s->bad = 2;
		n = scan(s->t.pmfd, s->shared, s->shared + 64 * psize, v, 64, &present, NULL);
		if (n != s->nref || memcmp(v, s->ref, n * sizeof(*v)))
			s->bad = 3;
	}
	return NULL;
}

/* Many threads scan at once, each its own range and all a shared one */
TEST_F_TIMEOUT(conc, many_threads_scan_at_once, 300)
{
	const struct req present = { .mask = PAGE_IS_PRESENT, .ret = ALL_CATS };
	struct scanner s[SCANNERS] = {};
	static struct page_region ref[64];
	pthread_t th[SCANNERS];
	char *shared;
	int i;

	shared = mmap(NULL, 64 * psize, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shared);
	ASSERT_EQ(0, madvise(shared, 64 * psize, MADV_NOHUGEPAGE));
	for (i = 0; i < 64; i += 3)
		poke(shared + i * psize, 1);
	s[0].nref = scan(self->pmfd, shared, shared + 64 * psize, ref, 64, &present, NULL);
	ASSERT_EQ(22, s[0].nref);
	for (i = 0; i < SCANNERS; i++) {
		ASSERT_EQ(0, tracked_map(&s[i].t, 128 + 64 * i, i % 2));
		s[i].shared = shared;
		s[i].ref = ref;
		s[i].nref = s[0].nref;
		s[i].id = i;
	}
	for (i = 0; i < SCANNERS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, scanner_thread, &s[i]));
	for (i = 0; i < SCANNERS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < SCANNERS; i++) {
		EXPECT_EQ(0, s[i].bad) TH_LOG("thread %d", i);
		tracked_unmap(&s[i].t);
	}
	munmap(shared, 64 * psize);
}

/*
 * SIGKILL stops a process that scans its whole address space over and
 * over, with a few thousand single-page VMAs spread over 64 TiB. The bound
 * is loose (TCG is slow): this catches a walk that ignores the signal.
 */
TEST_F_TIMEOUT(conc, sigkill_interrupts_huge_sparse_scan, 300)
{
	int fds[2], status;
	double t0, lat;
	pid_t pid;

	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = open_pagemap(0);
		__u64 end = user_end(fd);
		struct page_region *v = calloc(8192, sizeof(*v));
		const struct req all = { .ret = ALL_CATS };
		char *p;
		int i, mapped = 0;

		if (!v || !end)
			_exit(10);
		for (i = 0; i < 2048; i++) {
			p = mmap((void *)((1UL << 40) + i * (32UL << 30)), psize,
				 PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (p == MAP_FAILED)
				continue;
			poke(p, 1);
			mapped++;
		}
		if (mapped < 1024)
			_exit(11);
		child_ready(fds[1]);
		for (i = 0;; i++)
			scan(fd, NULL, (void *)(uintptr_t)end, i % 2 ? v : NULL,
			     i % 2 ? 8192 : 0, i % 2 ? &all : &q_wp_written, NULL);
	}
	close(fds[1]);
	ASSERT_EQ(0, await(fds[0]));
	usleep(200000);
	t0 = now();
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_TRUE(wait_child(pid, HANG_SECONDS, &status))
		TH_LOG("not dead %d s after SIGKILL", HANG_SECONDS);
	lat = now() - t0;
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	TH_LOG("killed after %.3f s", lat);
	close(fds[0]);
}

/* ---------------------------------------------------------------------- */
/* The largest inputs                                                      */
/* ---------------------------------------------------------------------- */

/* The largest gap between two VMAs, from /proc/self/maps */
static bool largest_gap(__u64 limit, __u64 *start, __u64 *end)
{
	unsigned long lo, hi, prev = 1UL << 20;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return false;
	*start = *end = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || hi > limit)
			continue;
		if (lo > prev && lo - prev > *end - *start) {
			*start = prev;
			*end = lo;
		}
		prev = hi;
	}
	fclose(f);
	if (limit > prev && limit - prev > *end - *start) {
		*start = prev;
		*end = limit;
	}
	return *end > *start;
}

/*
 * The whole address space, and the largest range with nothing mapped (all
 * of 128 TiB above the 4-level limit with 5-level paging, most of it
 * otherwise): no region, walk_end at the end, with and without WP.
 */
TEST_F_TIMEOUT(conc, empty_huge_ranges_report_nothing, 120)
{
	const struct req wpa = { .mask = PAGE_IS_WPALLOWED, .ret = ALL_CATS };
	const struct req all = { .ret = ALL_CATS };
	struct page_region v[16];
	__u64 end = user_end(self->pmfd), gs, ge, we;
	const struct req *reqs[] = { &all, &q_written, &q_wp_written };
	size_t i;

	ASSERT_NE(0, end);
	ASSERT_EQ(0, scan(self->pmfd, NULL, (void *)(uintptr_t)end, v, 16, &wpa, &we));
	ASSERT_EQ(end, we);
	if (end > (1ULL << 48)) {
		gs = 1ULL << 47;
		ge = gs + (128ULL << 40);
	} else {
		ASSERT_TRUE(largest_gap(end, &gs, &ge));
	}
	TH_LOG("empty range of %llu GiB", (ge - gs) >> 30);
	ASSERT_LE(1ULL << 40, ge - gs);
	for (i = 0; i < ARRAY_SIZE(reqs); i++) {
		we = 0;
		ASSERT_EQ(0, scan(self->pmfd, (void *)(uintptr_t)gs, (void *)(uintptr_t)ge, v,
				  16, reqs[i], &we));
		ASSERT_EQ(ge, we);
		ASSERT_EQ(0, scan(self->pmfd, (void *)(uintptr_t)gs, (void *)(uintptr_t)ge,
				  NULL, 0, reqs[i], &we));
		ASSERT_EQ(ge, we);
	}
}

/*
 * vec_len of 2^32 and more: only the address range of the array is
 * checked, not allocated for, so the call works and writes only the
 * regions found. The array is a small mapping at 1 TiB, with unmapped
 * address space after it, so a kernel that allocated or touched in
 * proportion to vec_len would fail or fault.
 */
TEST_F_TIMEOUT(conc, vec_len_of_4g_and_more, 120)
{
	static const __u64 lens[] = { 1ULL << 32, (1ULL << 32) + 1, 1ULL << 36, 1ULL << 40 };
	const struct req present = { .mask = PAGE_IS_PRESENT, .ret = PAGE_IS_PRESENT };
	struct page_region *vec;
	unsigned char res[16];
	__u64 we, wrap;
	char *area;
	size_t i;
	long n;

	vec = mmap((void *)(1UL << 40), 16 * psize, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_NE(MAP_FAILED, vec);
	area = mmap(NULL, 64 * psize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	ASSERT_EQ(0, madvise(area, 64 * psize, MADV_NOHUGEPAGE));
	for (i = 0; i < 64; i += 2)
		poke(area + i * psize, 1);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		n = scan(self->pmfd, area, area + 64 * psize, vec, lens[i], &present, &we);
		ASSERT_EQ(32, n) TH_LOG("vec_len %#llx: %s", lens[i], strerror(errno));
		ASSERT_EQ(u64_of(area + 64 * psize), we);
		for (n = 0; n < 32; n++) {
			ASSERT_EQ(u64_of(area + 2 * n * psize), vec[n].start);
			ASSERT_EQ(vec[n].start + psize, vec[n].end);
			ASSERT_EQ(PAGE_IS_PRESENT, vec[n].categories);
		}
		/* one page of the array written, the rest never touched */
		ASSERT_EQ(0, mincore(vec, 16 * psize, res));
		for (n = 1; n < 16; n++) {
			ASSERT_EQ(0, res[n] & 1) TH_LOG("vec page %ld touched", n);
		}
	}
	/* a length whose byte size wraps around to 8 is no small array */
	wrap = (~0ULL / sizeof(struct page_region)) + 1;
	ASSERT_EQ(-1, scan(self->pmfd, area, area + 64 * psize, vec, wrap, &present, NULL));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(-1, scan(self->pmfd, area, area + 64 * psize, vec, ~0ULL, &present, NULL));
	ASSERT_EQ(EFAULT, errno);
	munmap(vec, 16 * psize);
	munmap(area, 64 * psize);
}

/*
 * max_pages of ULONG_MAX is no limit; max_pages of 1 with WP_MATCHING,
 * resumed at walk_end each time, reports and protects one page a call, 4
 * KiB pages and the pages of a THP (split for it) alike.
 */
TEST_F_TIMEOUT(conc, max_pages_one_and_ulong_max, 120)
{
	struct req one = q_wp_written, huge = q_written;
	struct page_region v[8];
	__u64 seed = 21;
	struct tracked t;
	size_t written, i;
	__u64 pos, end, we;
	long calls = 0, n;

	ASSERT_EQ(0, tracked_map(&t, 64, 1));
	tracked_write(&t, &seed, 3);
	/* and every page of the THP */
	for (i = 0; i < 512; i++) {
		poke(t.p + i * psize, 3);
		t.want[i] = true;
	}
	for (i = written = 0; i < t.pages; i++)
		written += t.want[i];
	huge.max_pages = ULONG_MAX;
	memset(t.seen, 0, t.pages);
	ASSERT_EQ((long)written, scan_all(t.pmfd, t.p, t.pages, &huge, 512, t.seen));
	ASSERT_EQ(0, diff_pages(_metadata, "ULONG_MAX", t.seen, t.want, t.pages));
	huge.max_pages = ULONG_MAX - 1;
	memset(t.seen, 0, t.pages);
	ASSERT_EQ((long)written, scan_all(t.pmfd, t.p, t.pages, &huge, 512, t.seen));

	one.max_pages = 1;
	memset(t.seen, 0, t.pages);
	pos = u64_of(t.p);
	end = pos + t.pages * psize;
	while (pos < end) {
		n = scan(t.pmfd, (void *)(uintptr_t)pos, (void *)(uintptr_t)end, v, 8, &one, &we);
		ASSERT_LE(0, n);
		ASSERT_GE(1, n);
		ASSERT_TRUE(mark(v, n, t.p, t.pages, t.seen));
		if (n) {
			ASSERT_EQ(v[0].start + psize, v[0].end);
			/* the walk stops at the next matching page, not yet reported */
			ASSERT_LE(v[0].end, we);
			for (i = (v[0].end - u64_of(t.p)) / psize;
			     i < (we - u64_of(t.p)) / psize; i++)
				ASSERT_FALSE(t.want[i]) TH_LOG("page %zu skipped", i);
		}
		ASSERT_LT(pos, we);
		pos = we;
		ASSERT_GE((long)written + 1, ++calls);
	}
	ASSERT_EQ(0, diff_pages(_metadata, "max_pages 1", t.seen, t.want, t.pages));
	/* all protected now */
	memset(t.want, 0, t.pages);
	ASSERT_TRUE(tracked_collect(_metadata, &t, 8));
	tracked_unmap(&t);
}

static long count_vmas(void)
{
	char line[512];
	long n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !!strchr(line, '\n');
	fclose(f);
	return n;
}

/*
 * As many VMAs as vm.max_map_count allows, made by mprotect() of every
 * other page of one mapping: scanned in full and right, registered,
 * protected and tracked.
 */
TEST_F_TIMEOUT(conc, max_map_count_vmas, 600)
{
	const struct req present = { .mask = PAGE_IS_PRESENT, .ret = PAGE_IS_PRESENT };
	long max = read_long_file("/proc/sys/vm/max_map_count", 65530), have, pages, i;
	struct page_region *v;
	bool *want, *seen;
	__u64 seed = 22;
	int uffd;
	char *p;
	long n;

	have = count_vmas();
	ASSERT_LT(0, have);
	pages = max - have - 8;
	ASSERT_LT(1000, pages);
	p = mmap(NULL, pages * psize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, madvise(p, pages * psize, MADV_NOHUGEPAGE));
	want = calloc(pages, 1);
	seen = calloc(pages, 1);
	v = calloc(pages, sizeof(*v));
	ASSERT_TRUE(want && seen && v);
	for (i = 0; i < pages; i += 3)
		poke(p + i * psize, 1);
	for (i = 1; i < pages; i += 2) {
		ASSERT_EQ(0, mprotect(p + i * psize, psize, PROT_READ)) TH_LOG("page %ld", i);
	}
	ASSERT_LE(have + pages - 1, count_vmas());

	/* every third page present: one region each */
	n = scan(self->pmfd, p, p + pages * psize, v, pages, &present, NULL);
	ASSERT_EQ((pages + 2) / 3, n);
	ASSERT_TRUE(mark(v, n, p, pages, seen));
	for (i = 0; i < pages; i++) {
		ASSERT_EQ(!(i % 3), seen[i]) TH_LOG("page %ld", i);
	}

	uffd = uffd_open(0, ASYNC_FEATURES);
	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, track(uffd, p, pages * psize));
	for (i = 0; i < pages; i += 2) {
		if (!(rnd(&seed) % 5)) {
			poke(p + i * psize, 2);
			want[i] = true;
		}
	}
	memset(seen, 0, pages);
	ASSERT_LE(0, scan_all(self->pmfd, p, pages, &q_wp_written, 4096, seen))
		TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, diff_pages(_metadata, "tracked", seen, want, pages));
	memset(seen, 0, pages);
	ASSERT_EQ(0, scan_all(self->pmfd, p, pages, &q_written, 4096, seen));
	close(uffd);
	munmap(p, pages * psize);
	free(want);
	free(seen);
	free(v);
}

/*
 * 1 GiB of THPs, each faulted by one write: one HUGE region; protected
 * whole, then one page written in every fourth THP: exactly those pages
 * are reported, the THPs not written stay PMD-mapped.
 */
TEST_F_TIMEOUT(conc, thp_gigabyte_range, 600)
{
	const struct req huge = { .mask = PAGE_IS_HUGE, .ret = CATS_BUT_SD };
	const size_t units = SZ_1G / SZ_2M, upages = SZ_2M / 4096;
	struct page_region *v = calloc(units, sizeof(*v));
	struct tracked t = {};
	size_t u, i, nhuge = 0;
	bool *is_huge = calloc(units, 1);
	long n;

	ASSERT_TRUE(v && is_huge);
	memset(&t, 0, sizeof(t));
	t.pages = SZ_1G / psize;
	t.want = calloc(t.pages, 1);
	t.seen = calloc(t.pages, 1);
	t.pmfd = open_pagemap(0);
	t.p = reserve(SZ_1G, SZ_2M, &t.resv, &t.resv_len);
	ASSERT_TRUE(t.want && t.seen && t.p);
	ASSERT_TRUE(!!map_at(t.p, SZ_1G, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1));
	ASSERT_EQ(0, madvise(t.p, SZ_1G, MADV_HUGEPAGE));
	for (u = 0; u < units; u++)
		poke(t.p + u * SZ_2M, 1);
	n = scan(t.pmfd, t.p, t.p + SZ_1G, v, units, &huge, NULL);
	ASSERT_LE(0, n);
	for (i = 0; i < (size_t)n; i++) {
		ASSERT_EQ(0, (v[i].start - u64_of(t.p)) % SZ_2M);
		ASSERT_EQ(0, (v[i].end - v[i].start) % SZ_2M);
		ASSERT_EQ(PAGE_IS_HUGE | PAGE_IS_PRESENT | PAGE_IS_WRITTEN, v[i].categories);
		for (u = (v[i].start - u64_of(t.p)) / SZ_2M;
		     u < (v[i].end - u64_of(t.p)) / SZ_2M; u++)
			is_huge[u] = true;
	}
	for (u = 0; u < units; u++)
		nhuge += is_huge[u];
	TH_LOG("%zu of %zu units are THPs", nhuge, units);
	NEED(nhuge >= units / 2, "only %zu of %zu THPs could be allocated", nhuge, units);

	t.uffd = uffd_open(0, ASYNC_FEATURES);
	ASSERT_LE(0, t.uffd);
	ASSERT_EQ(0, uffd_register(t.uffd, t.p, SZ_1G, UFFDIO_REGISTER_MODE_WP));
	/* protect with the scan itself, without a vec */
	ASSERT_EQ(0, scan(t.pmfd, t.p, t.p + SZ_1G, NULL, 0, &q_wp_written, NULL));
	for (u = 0; u < units; u += 4) {
		i = u * upages + (u % upages);
		poke(t.p + i * psize, 2);
		t.want[i] = true;
	}
	ASSERT_TRUE(tracked_collect(_metadata, &t, 512));
	n = scan(t.pmfd, t.p, t.p + SZ_1G, v, units, &huge, NULL);
	ASSERT_LE(0, n);
	memset(t.seen, 0, t.pages);
	ASSERT_TRUE(mark(v, n, t.p, t.pages, t.seen));
	for (u = 0; u < units; u++) {
		if (is_huge[u] && u % 4) {
			ASSERT_TRUE(t.seen[u * upages]) TH_LOG("THP %zu was split", u);
		}
	}
	tracked_unmap(&t);
	free(v);
	free(is_huge);
}

/* ---------------------------------------------------------------------- */
/* Permissions                                                             */
/* ---------------------------------------------------------------------- */

/*
 * A child running as @uid (non-dumpable if asked) that tells @ready and
 * sleeps until killed.
 */
static pid_t sleeping_child(uid_t uid, bool dumpable, int *ready_fd)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid)
		goto parent;
	close(fds[0]);
	if (drop_privileges(uid) || (!dumpable && prctl(PR_SET_DUMPABLE, 0)))
		_exit(1);
	child_ready(fds[1]);
	for (;;)
		pause();
parent:
	close(fds[1]);
	*ready_fd = fds[0];
	if (pid > 0 && await(fds[0])) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

/* In a child as @uid: open() of @target's pagemap fails with EACCES? */
static int open_as(uid_t uid, pid_t target)
{
	pid_t pid = fork();
	int status, fd;

	if (!pid) {
		if (drop_privileges(uid))
			_exit(2);
		fd = open_pagemap(target);
		if (fd >= 0)
			_exit(0);
		_exit(errno == EACCES ? 1 : 3);
	}
	if (pid < 0 || !wait_child(pid, HANG_SECONDS, &status) || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * The ptrace read check of open(): another user's pagemap is refused, the
 * same user's is not unless the process is not dumpable.
 */
TEST_F_TIMEOUT(conc, other_users_pagemap_refused, 120)
{
	int rfd;
	pid_t t;

	t = sleeping_child(UNPRIV_UID, true, &rfd);
	ASSERT_LT(0, t);
	EXPECT_EQ(1, open_as(OTHER_UID, t))
		TH_LOG("uid %d opened uid %d's pagemap", OTHER_UID, UNPRIV_UID);
	EXPECT_EQ(0, open_as(UNPRIV_UID, t)) TH_LOG("the same uid was refused");
	kill(t, SIGKILL);
	waitpid(t, NULL, 0);
	close(rfd);

	t = sleeping_child(UNPRIV_UID, false, &rfd);
	ASSERT_LT(0, t);
	EXPECT_EQ(1, open_as(UNPRIV_UID, t)) TH_LOG("a non-dumpable task's pagemap opened");
	kill(t, SIGKILL);
	waitpid(t, NULL, 0);
	close(rfd);
}

/* A setuid-root copy of this program, in a directory that honours setuid */
static bool make_setuid_copy(char *path, size_t len)
{
	static const char * const fixed[] = { "/tmp", "/var/tmp", "/dev/shm" };
	const char *dirs[ARRAY_SIZE(fixed) + 1] = { getenv("TMPDIR") };
	char buf[65536];
	struct statvfs sv;
	ssize_t n;
	size_t i;
	int in, out;

	for (i = 0; i < ARRAY_SIZE(fixed); i++)
		dirs[i + 1] = fixed[i];
	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (!dirs[i] || statvfs(dirs[i], &sv) || (sv.f_flag & ST_NOSUID))
			continue;
		snprintf(path, len, "%s/pagemap_robust_suid.XXXXXX", dirs[i]);
		out = mkstemp(path);
		if (out < 0)
			continue;
		in = open("/proc/self/exe", O_RDONLY);
		while (in >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, n) != n)
				break;
		if (in >= 0)
			close(in);
		if (!fchown(out, 0, 0) && !fchmod(out, 04755) && !close(out))
			return true;
		close(out);
		unlink(path);
	}
	return false;
}

/* The effective uid in /proc/@pid/status, or -1 */
static long euid_of(pid_t pid)
{
	char path[64], line[256];
	long r, e = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %ld %ld", &r, &e) == 2)
			break;
	fclose(f);
	return e;
}

/*
 * A pagemap opened (by the same unprivileged user) before its task execs a
 * setuid-root program keeps the old mm: it can neither scan nor protect
 * the new image (ESRCH), and a new open() is refused.
 */
TEST_F_TIMEOUT(conc, setuid_exec_detaches_open_pagemap, 120)
{
	char exe[PATH_MAX];
	int status;
	pid_t pid;

	NEED(make_setuid_copy(exe, sizeof(exe)), "no directory allows a setuid program");
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		const struct req all = { .ret = ALL_CATS };
		struct page_region v[64];
		int ready[2], go[2], fd, rc = 0;
		char fdarg[16];
		__u64 end;
		pid_t c;

		if (drop_privileges(UNPRIV_UID) || pipe(ready) || pipe(go))
			_exit(20);
		c = fork();
		if (!c) {
			close(ready[0]);
			close(go[1]);
			await(go[0]);
			snprintf(fdarg, sizeof(fdarg), "%d", ready[1]);
			execl(exe, "pagemap_robust", SLEEPER_ARG, fdarg, NULL);
			_exit(21);
		}
		close(ready[1]);
		close(go[0]);
		fd = open_pagemap(c);
		end = fd < 0 ? 0 : user_end(fd);
		if (!end || scan(fd, NULL, (void *)(uintptr_t)end, v, 64, &all, NULL) <= 0)
			rc = 22;
		if (!rc && (write(go[1], "g", 1) != 1 || await(ready[0])))
			rc = 23;
		if (!rc && euid_of(c) != 0)
			rc = 24;
		if (!rc && (scan(fd, NULL, (void *)(uintptr_t)end, v, 64, &all, NULL) != -1 ||
			    errno != ESRCH))
			rc = 25;
		if (!rc && (scan(fd, NULL, (void *)(uintptr_t)end, NULL, 0, &q_wp_written,
				 NULL) != -1 || errno != ESRCH))
			rc = 26;
		if (!rc && (open_pagemap(c) >= 0 || errno != EACCES))
			rc = 27;
		kill(c, SIGKILL);
		waitpid(c, NULL, 0);
		_exit(rc);
	}
	ASSERT_TRUE(wait_child(pid, HANG_SECONDS * 2, &status));
	unlink(exe);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("step %d failed (see the test)",
						 WEXITSTATUS(status));
}

/*
 * What Wine does as an ordinary user: a userfaultfd for user-mode faults
 * only (allowed whatever vm.unprivileged_userfaultfd says), async WP, and
 * PAGEMAP_SCAN. Writes by the user and by the kernel on its behalf (read()
 * into the buffer: a kernel-mode fault, which such an fd does not handle
 * synchronously) are both tracked, in populated and unpopulated pages.
 */
TEST_F_TIMEOUT(conc, user_mode_only_uffd_tracks_writes, 120)
{
	pid_t pid = fork();
	int status;

	ASSERT_LE(0, pid);
	if (!pid) {
		const size_t pages = 64;
		bool want[64] = {}, seen[64] = {};
		char *p, buf[64];
		int uffd, pmfd, fds[2];
		size_t i;

		if (drop_privileges(UNPRIV_UID))
			_exit(30);
		if (read_long_file("/proc/sys/vm/unprivileged_userfaultfd", 0) == 0 &&
		    syscall(__NR_userfaultfd, O_CLOEXEC) >= 0)
			_exit(31);
		uffd = uffd_open(UFFD_USER_MODE_ONLY, ASYNC_FEATURES);
		if (uffd < 0)
			_exit(32);
		p = mmap(NULL, pages * psize, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		pmfd = open_pagemap(0);
		if (p == MAP_FAILED || pmfd < 0 || madvise(p, pages * psize, MADV_NOHUGEPAGE))
			_exit(33);
		/* the first half populated, the second untouched (markers) */
		for (i = 0; i < pages / 2; i++)
			poke(p + i * psize, 1);
		if (track(uffd, p, pages * psize) || pipe(fds))
			_exit(34);
		memset(buf, 'k', sizeof(buf));
		for (i = 0; i < pages; i += 4) {
			poke(p + i * psize, 2);
			want[i] = true;
			if (write(fds[1], buf, sizeof(buf)) != sizeof(buf) ||
			    read(fds[0], p + (i + 1) * psize + 8, sizeof(buf)) != sizeof(buf))
				_exit(35);
			want[i + 1] = true;
		}
		if (scan_all(pmfd, p, pages, &q_wp_written, 7, seen) < 0)
			_exit(36);
		for (i = 0; i < pages; i++)
			if (seen[i] != want[i])
				_exit(37);
		if (memcmp(p + psize + 8, buf, sizeof(buf)))
			_exit(38);
		/* and protected again */
		memset(seen, 0, sizeof(seen));
		if (scan_all(pmfd, p, pages, &q_written, 7, seen) != 0)
			_exit(39);
		_exit(0);
	}
	ASSERT_TRUE(wait_child(pid, HANG_SECONDS, &status));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("step %d failed (see the test)",
						 WEXITSTATUS(status));
}

/*
 * The answer is regions and nothing else: vec filled with a pattern, every
 * region well formed, in the range, in order, merged, with only bits of
 * the return mask; the bytes past the last region untouched; and of the
 * argument only walk_end written. Over memory of every kind at hand, with
 * every single category as return mask and all of them.
 */
TEST_F_TIMEOUT(conc, output_carries_only_regions, 120)
{
	struct page_region vec[64];
	struct pm_scan_arg a, before;
	const size_t pages = 1024;
	char *p, *sh, *end;
	int bit, uffd, round;
	long n, i;

	p = mmap(NULL, pages * psize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	sh = mmap(NULL, 64 * psize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(MAP_FAILED, sh);
	for (i = 0; i < (long)pages; i += 5)
		poke(p + i * psize, 1);
	for (i = 3; i < (long)pages; i += 7)
		sink += peek(p + i * psize);
	for (i = 0; i < 64; i += 2)
		poke(sh + i * psize, 1);
	uffd = uffd_open(0, ASYNC_FEATURES);
	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, track(uffd, p + pages / 2 * psize, pages / 2 * psize));
	for (i = pages / 2; i < (long)pages; i += 11)
		poke(p + i * psize, 2);
	for (round = 0; round < 2; round++) {
		char *s = round ? sh : p;

		end = round ? sh + 64 * psize : p + pages * psize;
		for (bit = -1; bit < 8; bit++) {
			memset(vec, VEC_FILL, sizeof(vec));
			fill_arg(&a, u64_of(s), u64_of(end), vec, 64,
				 &(struct req){ .ret = bit < 0 ? ALL_CATS : 1ULL << bit });
			before = a;
			n = ioctl(self->pmfd, PAGEMAP_SCAN, &a);
			ASSERT_LE(0, n);
			ASSERT_GE(64, n);
			ASSERT_NE(POISON_END, a.walk_end);
			a.walk_end = before.walk_end;
			ASSERT_EQ(0, memcmp(&a, &before, sizeof(a))) TH_LOG("argument changed");
			for (i = 0; i < n; i++) {
				ASSERT_EQ(0, vec[i].start % psize);
				ASSERT_EQ(0, vec[i].end % psize);
				ASSERT_LT(vec[i].start, vec[i].end);
				ASSERT_LE(u64_of(s), vec[i].start);
				ASSERT_GE(u64_of(end), vec[i].end);
				ASSERT_EQ(0, vec[i].categories & ~before.return_mask);
				if (i) {
					ASSERT_LE(vec[i - 1].end, vec[i].start);
					ASSERT_FALSE(vec[i - 1].end == vec[i].start &&
						     vec[i - 1].categories == vec[i].categories)
						TH_LOG("regions %ld and %ld not merged", i - 1, i);
				}
			}
			for (i = n * sizeof(*vec); i < (long)sizeof(vec); i++) {
				ASSERT_EQ(VEC_FILL, ((unsigned char *)vec)[i])
					TH_LOG("byte %ld", i);
			}
		}
	}
	close(uffd);
	munmap(p, pages * psize);
	munmap(sh, 64 * psize);
}

/* ---------------------------------------------------------------------- */
/* Regressions of upstream fixes                                           */
/* ---------------------------------------------------------------------- */

#define PF_KTHREAD		0x00200000

static bool is_kthread(const char *pid)
{
	char path[64], buf[1024], *p;
	unsigned long flags;
	int i, fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
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
	flags = strtoul(p, NULL, 10);
	return flags & PF_KTHREAD;
}

/*
 * "proc: fix the issue of proc_mem_open returning NULL": the pagemap of a
 * kernel thread (no mm) cannot be opened (ESRCH), for every kernel thread
 * and through task/<tid> too; were it opened, PAGEMAP_SCAN on it oopsed
 * upstream (do_pagemap_scan() on a NULL mm), so this asks for an error, in
 * a child, should open() ever succeed.
 */
TEST_F_TIMEOUT(conc, kernel_thread_pagemap_refused, 120)
{
	struct pm_scan_arg a;
	struct dirent *de;
	char path[600];
	int fd, n = 0, status;
	DIR *d = opendir("/proc");
	pid_t pid;

	ASSERT_TRUE(!!d);
	while ((de = readdir(d)) && n < 256) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || !is_kthread(de->d_name))
			continue;
		n++;
		snprintf(path, sizeof(path), "/proc/%s/pagemap", de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0 && errno == ENOENT)
			continue;	/* it just exited */
		if (fd >= 0) {
			pid = fork();
			ASSERT_LE(0, pid);
			if (!pid) {
				fill_arg(&a, 0, 1UL << 30, NULL, 0, &q_wp_written);
				_exit(ioctl(fd, PAGEMAP_SCAN, &a) == -1 ? 0 : 1);
			}
			ASSERT_TRUE(wait_child(pid, HANG_SECONDS, &status));
			EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
				TH_LOG("%s: PAGEMAP_SCAN did not fail", path);
			close(fd);
			EXPECT_TRUE(false) TH_LOG("%s: opened", path);
			continue;
		}
		EXPECT_EQ(ESRCH, errno) TH_LOG("%s: %s", path, strerror(errno));
		snprintf(path, sizeof(path), "/proc/%s/task/%s/pagemap", de->d_name, de->d_name);
		fd = open(path, O_RDONLY);
		EXPECT_TRUE(fd < 0 && (errno == ESRCH || errno == ENOENT)) TH_LOG("%s", path);
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	ASSERT_LT(0, n) TH_LOG("no kernel thread found");
}

/*
 * "fs/proc/task_mmu: check p->vec_buf for NULL": PM_SCAN_WP_MATCHING with
 * vec_len 0 over part of a written THP dereferenced the missing buffer
 * when the THP was split. Ranges starting, ending, or both, inside THPs:
 * exactly the pages of the range are protected.
 */
TEST_F_TIMEOUT(conc, thp_wp_without_vec_over_part_of_thp, 120)
{
	static const size_t cut[][2] = { { 256, 1536 }, { 0, 1024 + 1 }, { 511, 1536 },
					 { 1, 2 } };
	struct tracked t;
	__u64 seed = 31;
	size_t c, i;

	for (c = 0; c < ARRAY_SIZE(cut); c++) {
		ASSERT_EQ(0, tracked_map(&t, 0, 3));
		NEED(anon_huge_bytes(t.p) == 3 * SZ_2M, "no THPs (%ld bytes)",
		     anon_huge_bytes(t.p));
		/* written as THPs: unprotect all of it */
		ASSERT_EQ(0, uffd_wp(t.uffd, t.p, t.pages * psize, false));
		ASSERT_EQ(0, scan(t.pmfd, t.p + cut[c][0] * psize, t.p + cut[c][1] * psize,
				  NULL, 0, &q_wp_written, NULL));
		for (i = 0; i < t.pages; i++) {
			bool in = i >= cut[c][0] && i < cut[c][1];

			ASSERT_EQ(in, !!(pme(t.pmfd, t.p + i * psize) & PME_UFFD_WP))
				TH_LOG("cut %zu: page %zu", c, i);
		}
		/* and writes to them are seen */
		ASSERT_EQ(0, uffd_wp(t.uffd, t.p, t.pages * psize, true));
		tracked_write(&t, &seed, 9);
		ASSERT_TRUE(tracked_collect(_metadata, &t, 16));
		tracked_unmap(&t);
	}
}

FIXTURE(huge) {
	int pmfd, uffd;
	char *resv, *p;
	size_t resv_len, len, hpage;
	long saved_1g;
};

FIXTURE_VARIANT(huge) {
	int flags;
	bool memfd;
	bool gigantic;
};

FIXTURE_VARIANT_ADD(huge, private) {
	.flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
};

FIXTURE_VARIANT_ADD(huge, shared) {
	.flags = MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB,
};

FIXTURE_VARIANT_ADD(huge, memfd) {
	.flags = MAP_SHARED,
	.memfd = true,
};

FIXTURE_VARIANT_ADD(huge, gigantic) {
	.flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (30 << MAP_HUGE_SHIFT),
	.gigantic = true,
};

#define GIGANTIC_DIR	"/sys/kernel/mm/hugepages/hugepages-1048576kB/"
#define GIGANTIC_NR	GIGANTIC_DIR "nr_hugepages"

/*
 * The test writes its private 1 GiB page in a forked child, which has
 * no share in the parent's reservation: it needs a second free page.
 * A 1 GiB page is rarely found at runtime once memory has been used,
 * so pages reserved at boot are taken first; the pool grows only by
 * what is missing, and *@saved keeps its size for teardown (-1: left
 * as it was).
 */
static bool gigantic_pages_free(long *saved)
{
	long nr = read_long_file(GIGANTIC_NR, -1);
	long missing = 2 - read_long_file(GIGANTIC_DIR "free_hugepages", 0);
	char val[32];

	if (nr < 0)
		return false;
	if (missing <= 0)
		return true;
	*saved = nr;
	snprintf(val, sizeof(val), "%ld", nr + missing);
	write_file(GIGANTIC_NR, val);
	return read_long_file(GIGANTIC_NR, 0) == nr + missing;
}

FIXTURE_SETUP(huge)
{
	int fd = -1;

	init_globals();
	self->saved_1g = -1;
	self->uffd = -1;
	self->pmfd = open_pagemap(0);
	ASSERT_LE(0, self->pmfd);
	self->hpage = variant->gigantic ? SZ_1G : SZ_2M;
	self->len = variant->gigantic ? SZ_1G : 8 * SZ_2M;
	if (variant->gigantic) {
		if (!gigantic_pages_free(&self->saved_1g))
			return;
	} else if (free_hugepages() < 8) {
		return;
	}
	/* 4 huge pages each side of a 1 GiB boundary: those after it have no page table */
	self->p = reserve(self->len + SZ_1G, SZ_1G, &self->resv, &self->resv_len);
	ASSERT_TRUE(!!self->p);
	if (!variant->gigantic)
		self->p += SZ_1G - self->len / 2;
	if (variant->memfd) {
		fd = memfd_create("pagemap_robust", MFD_HUGETLB);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, ftruncate(fd, self->len));
	}
	self->p = map_at(self->p, self->len, variant->flags, fd);
	if (fd >= 0)
		close(fd);
	ASSERT_TRUE(!!self->p);
}

FIXTURE_TEARDOWN(huge)
{
	char val[32];

	if (self->uffd >= 0)
		close(self->uffd);
	if (self->resv)
		munmap(self->resv, self->resv_len);
	if (self->saved_1g >= 0) {
		snprintf(val, sizeof(val), "%ld", self->saved_1g);
		write_file(GIGANTIC_NR, val);
	}
	close(self->pmfd);
}

/*
 * "fs/proc/task_mmu: fix hugetlb self-deadlock in pagemap_scan_pte_hole()":
 * protecting a hugetlb hole with no page table took the hugetlb vma lock
 * for writing while the walk held it for reading. In a child, bounded: a
 * deadlocked task cannot be killed. Holes get markers, written pages are
 * protected, and later writes are reported.
 * "fs/proc/task_mmu: use huge_page_size() in pagemap_scan_hugetlb_entry()"
 * (the gigantic variant): a written 1 GiB page was never protected.
 */
TEST_F_TIMEOUT(huge, wp_matching_over_holes_without_page_table, 180)
{
	const size_t n = self->len / self->hpage;
	int status;
	pid_t pid;

	NEED(self->p, "too few free %s hugetlb pages", variant->gigantic ? "1 GiB" : "2 MiB");
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct page_region v[16];
		const struct req all = { .flags = PM_SCAN_WP_MATCHING, .ret = ALL_CATS };
		size_t i;
		long r;

		/* its own pagemap and registration: a child inherits neither */
		self->pmfd = open_pagemap(0);
		self->uffd = uffd_open(0, ASYNC_FEATURES);
		if (self->uffd < 0 || uffd_register(self->uffd, self->p, self->len,
						    UFFDIO_REGISTER_MODE_WP))
			_exit(39);
		/* a page before the boundary written, so its page table exists */
		poke(self->p, 1);
		r = scan(self->pmfd, self->p, self->p + self->len, v, 16, &all, NULL);
		if (r < 1) {
			fprintf(stderr, "# scan: %ld (%s)\n", r, strerror(errno));
			_exit(40);
		}
		/*
		 * The written page is protected, and so is the first huge page
		 * past the boundary, a hole. (Its marker needs a page table:
		 * the entries after it are then empty entries, not holes, and
		 * those are never protected, not being written.)
		 */
		for (i = 0; i < n; i++) {
			char *h = self->p + i * self->hpage;

			if ((!i || !((uintptr_t)h & (SZ_1G - 1))) &&
			    !(pme(self->pmfd, h) & PME_UFFD_WP)) {
				fprintf(stderr, "# huge page %zu: %#llx\n", i, pme(self->pmfd, h));
				_exit(41);
			}
		}
		/* nothing written now */
		if (scan(self->pmfd, self->p, self->p + self->len, v, 16, &q_wp_written, NULL))
			_exit(42);
		for (i = 0; i < n; i += 2)
			poke(self->p + i * self->hpage + 4096, 2);
		r = scan(self->pmfd, self->p, self->p + self->len, v, 16, &q_wp_written, NULL);
		if (r != (long)(n + 1) / 2 || v[0].end - v[0].start != self->hpage)
			_exit(43);
		if (scan(self->pmfd, self->p, self->p + self->len, NULL, 0, &q_wp_written, NULL))
			_exit(44);
		_exit(0);
	}
	ASSERT_TRUE(wait_child(pid, HANG_SECONDS * 2, &status))
		TH_LOG("the scan hangs (in D state if deadlocked: see pid %d)", pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("step %d failed (see the test)",
						 WEXITSTATUS(status));
}

/*
 * "fs/proc/task_mmu: fix PAGE_IS_PFNZERO detection for the huge zero
 * folio" and the THP paths of protecting: the huge zero page read-faulted
 * in three THP ranges is PRESENT|HUGE|PFNZERO, can be protected whole or in
 * part, with or without vec and by UFFDIO_WRITEPROTECT, and writing to it
 * is reported page by page, the rest still reading zero.
 */
TEST_F_TIMEOUT(conc, huge_zero_pmd_protect_and_write, 120)
{
	const struct req cat = { .ret = CATS_BUT_SD };
	const bool zero = read_long_file("/sys/kernel/mm/transparent_hugepage/use_zero_page", 0);
	struct page_region v[8];
	__u64 seed = 41;
	struct tracked t;
	size_t i, round;
	long n;

	NEED(thp_enabled() && zero, "no THP or no huge zero page (use_zero_page)");
	for (round = 0; round < 3; round++) {
		memset(&t, 0, sizeof(t));
		t.pages = 3 * SZ_2M / psize;
		t.want = calloc(t.pages, 1);
		t.seen = calloc(t.pages, 1);
		t.pmfd = open_pagemap(0);
		t.p = reserve(3 * SZ_2M, SZ_2M, &t.resv, &t.resv_len);
		ASSERT_TRUE(t.p && t.want && t.seen);
		ASSERT_TRUE(!!map_at(t.p, 3 * SZ_2M, MAP_PRIVATE | MAP_ANONYMOUS, -1));
		ASSERT_EQ(0, madvise(t.p, 3 * SZ_2M, MADV_HUGEPAGE));
		for (i = 0; i < 3; i++)
			sink += peek(t.p + i * SZ_2M);
		n = scan(t.pmfd, t.p, t.p + 3 * SZ_2M, v, 8, &cat, NULL);
		ASSERT_EQ(1, n);
		ASSERT_EQ(PAGE_IS_PRESENT | PAGE_IS_HUGE | PAGE_IS_PFNZERO | PAGE_IS_WRITTEN,
			  v[0].categories);
		ASSERT_EQ(u64_of(t.p), v[0].start);
		ASSERT_EQ(u64_of(t.p + 3 * SZ_2M), v[0].end);
		t.uffd = uffd_open(0, ASYNC_FEATURES);
		ASSERT_LE(0, t.uffd);
		ASSERT_EQ(0, uffd_register(t.uffd, t.p, 3 * SZ_2M, UFFDIO_REGISTER_MODE_WP));
		if (round == 0)
			ASSERT_EQ(0, uffd_wp(t.uffd, t.p, 3 * SZ_2M, true));
		if (round == 1) {
			/* a partial range first, then the rest */
			ASSERT_EQ(0, scan(t.pmfd, t.p + SZ_2M / 2, t.p + 5 * SZ_2M / 2, NULL, 0,
					  &q_wp_written, NULL));
			ASSERT_EQ(0, scan(t.pmfd, t.p, t.p + 3 * SZ_2M, NULL, 0, &q_wp_written,
					  NULL));
		}
		if (round == 2)
			ASSERT_LE(1, scan(t.pmfd, t.p + psize, t.p + 3 * SZ_2M, v, 8,
					  &q_wp_written, NULL));
		if (round == 2)
			ASSERT_EQ(0, scan(t.pmfd, t.p, t.p + psize, NULL, 0, &q_wp_written, NULL));
		memset(t.want, 0, t.pages);
		ASSERT_TRUE(tracked_collect(_metadata, &t, 8));
		tracked_write(&t, &seed, 50);
		ASSERT_TRUE(tracked_collect(_metadata, &t, 8));
		for (i = 0; i < t.pages; i++)
			ASSERT_EQ(t.want[i] ? 2 : 0, peek(t.p + i * psize));
		tracked_unmap(&t);
	}
}

/*
 * "mm/pagemap: fix ioctl(PAGEMAP_SCAN) on vma check": a VMA registered
 * with an async WP context, but for missing faults only, is no
 * write-protect VMA: not WPALLOWED, never protected by WP_MATCHING, and
 * CHECK_WPASYNC fails on it.
 */
TEST_F_TIMEOUT(conc, missing_only_registration_not_wp_allowed, 120)
{
	const struct req wpa = { .ret = PAGE_IS_WPALLOWED };
	const struct req chk = { .flags = PM_SCAN_CHECK_WPASYNC, .ret = ALL_CATS };
	const size_t pages = 32;
	struct page_region v[8];
	int uffd;
	size_t i;
	char *p;

	p = mmap(NULL, 2 * pages * psize, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* populated first: a missing fault would wait for us forever */
	for (i = 0; i < 2 * pages; i++)
		poke(p + i * psize, 1);
	uffd = uffd_open(0, ASYNC_FEATURES);
	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, uffd_register(uffd, p, pages * psize, UFFDIO_REGISTER_MODE_MISSING));
	ASSERT_EQ(0, uffd_register(uffd, p + pages * psize, pages * psize,
				   UFFDIO_REGISTER_MODE_WP));
	ASSERT_EQ(2, scan(self->pmfd, p, p + 2 * pages * psize, v, 8, &wpa, NULL));
	ASSERT_EQ(0, v[0].categories);
	ASSERT_EQ(u64_of(p + pages * psize), v[1].start);
	ASSERT_EQ(PAGE_IS_WPALLOWED, v[1].categories);
	ASSERT_EQ(1, scan(self->pmfd, p, p + 2 * pages * psize, v, 8, &q_wp_written, NULL));
	ASSERT_EQ(u64_of(p + pages * psize), v[0].start);
	ASSERT_EQ(0, scan(self->pmfd, p, p + 2 * pages * psize, NULL, 0, &q_wp_written,
			  NULL));
	for (i = 0; i < pages; i++) {
		ASSERT_EQ(0, pme(self->pmfd, p + i * psize) & PME_UFFD_WP) TH_LOG("page %zu", i);
	}
	ASSERT_EQ(-1, scan(self->pmfd, p, p + 2 * pages * psize, v, 8, &chk, NULL));
	ASSERT_EQ(EPERM, errno);
	/* writes there need no fault handling */
	for (i = 0; i < pages; i++)
		poke(p + i * psize, 2);
	close(uffd);
	munmap(p, 2 * pages * psize);
}

/*
 * A WP_MATCHING scan that matches every page (no masks) over a range
 * where every other page was written: one region, however many separate
 * runs it protects. The kernel stops to copy out after remembering 512
 * protected runs (to undo them on a failure); the region it was building
 * then must go on in the next batch, as one unlimited pass would report
 * it, and as upstream does. With vec_len 1 too: the one region covers all.
 */
TEST_F_TIMEOUT(conc, wp_scan_of_many_runs_is_one_region, 120)
{
	const struct req every = { .flags = PM_SCAN_WP_MATCHING };
	const size_t pages = 4096;
	struct page_region v[4];
	int uffd, round;
	__u64 walk_end;
	size_t i;
	char *p;

	p = mmap(NULL, pages * psize, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	uffd = uffd_open(0, ASYNC_FEATURES);
	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, track(uffd, p, pages * psize));
	for (round = 0; round < 2; round++) {
		/* 2048 written runs of one page: four times the 512 */
		for (i = 0; i < pages; i += 2)
			poke(p + i * psize, round + 1);
		ASSERT_EQ(1, scan(self->pmfd, p, p + pages * psize, v, round ? 1 : 4,
				  &every, &walk_end));
		ASSERT_EQ(u64_of(p), v[0].start);
		ASSERT_EQ(u64_of(p + pages * psize), v[0].end);
		ASSERT_EQ(0, v[0].categories);
		ASSERT_EQ(u64_of(p + pages * psize), walk_end);
		/* and it protected every page it was given */
		ASSERT_EQ(0, scan(self->pmfd, p, p + pages * psize, v, 4, &q_written, NULL));
	}
	close(uffd);
	munmap(p, pages * psize);
}

FIXTURE(lazyfree) {
	struct tracked t;
};

FIXTURE_VARIANT(lazyfree) {
	size_t small, thps;
	bool racing;
};

FIXTURE_VARIANT_ADD(lazyfree, anon) { .small = 512 };
FIXTURE_VARIANT_ADD(lazyfree, thp) { .thps = 2 };
FIXTURE_VARIANT_ADD(lazyfree, anon_racing_writer) { .small = 512, .racing = true };

FIXTURE_SETUP(lazyfree)
{
	init_globals();
	ASSERT_EQ(0, tracked_map(&self->t, variant->small, variant->thps));
}

FIXTURE_TEARDOWN(lazyfree)
{
	tracked_unmap(&self->t);
}

static void *lazy_writer(void *arg)
{
	struct tracked *t = arg;
	size_t i;

	for (i = 1; i < t->pages; i += 2)
		poke(t->p + i * psize, 7);
	return NULL;
}

/*
 * "fs/proc/task_mmu: fix loss of young/dirty bits during pagemap scan":
 * protecting a pte must keep its dirty bit. A page freed with MADV_FREE
 * and written again is dirty only in its pte (the write needs no fault);
 * if protecting dropped that bit, reclaim would discard the page and the
 * data with it. The odd pages are written again, the even ones not (they
 * are discarded, which shows reclaim ran). In the racing variant a thread
 * writes them again while the scan protects them.
 */
TEST_F_TIMEOUT(lazyfree, wp_keeps_dirty_bit, 120)
{
	struct tracked *t = &self->t;
	size_t i, discarded = 0;
	pthread_t th;
	int round;

	if (variant->thps) {
		NEED(anon_huge_bytes(t->p) == (long)(variant->thps * SZ_2M), "no THPs (%ld bytes)",
		     anon_huge_bytes(t->p));
	}
	ASSERT_EQ(0, uffd_wp(t->uffd, t->p, t->pages * psize, false));
	for (round = 0; round < 3; round++) {
		for (i = 0; i < t->pages; i++)
			poke(t->p + i * psize, 5);
		ASSERT_EQ(0, madvise(t->p, t->pages * psize, MADV_FREE));
		/* the writer races with the scan, or comes before it */
		if (!variant->racing)
			lazy_writer(t);
		else
			ASSERT_EQ(0, pthread_create(&th, NULL, lazy_writer, t));
		ASSERT_EQ(0, scan(t->pmfd, t->p, t->p + t->pages * psize, NULL, 0,
				  &q_wp_written, NULL));
		if (variant->racing)
			pthread_join(th, NULL);
		page_out(t->pmfd, t->p, t->pages * psize);
		for (i = 0; i < t->pages; i++) {
			char c = peek(t->p + i * psize);

			if (!(i % 2)) {
				discarded += !c;
				continue;
			}
			ASSERT_EQ(7, c)
				TH_LOG("round %d: page %zu lost its data", round, i);
		}
		/* unprotect for the next round */
		ASSERT_EQ(0, uffd_wp(t->uffd, t->p, t->pages * psize, false));
	}
	NEED(discarded, "MADV_PAGEOUT discarded no clean lazyfree page");
}

/*
 * "fs/proc/task_mmu: fix uffd-wp confusion in pagemap_scan_pmd_entry()":
 * the path that protects without a vec tested the uffd-wp bit of swap
 * entries as if they were present ptes. Swapped-out pages, written or
 * protected already, are protected by such a scan, shown by pagemap, and
 * their writes after swap-in are reported.
 */
TEST_F_TIMEOUT(conc, swapped_pages_protected_without_vec, 120)
{
	struct tracked t;
	__u64 seed = 51;
	size_t i;

	NEED(swap_enabled(), "no swap");
	ASSERT_EQ(0, tracked_map(&t, 64, 0));
	/* the odd pages written (unprotected), the even ones still protected */
	for (i = 1; i < t.pages; i += 2)
		poke(t.p + i * psize, 3);
	ASSERT_TRUE(page_out(t.pmfd, t.p, t.pages * psize));
	for (i = 0; i < t.pages; i++) {
		__u64 e = pme(t.pmfd, t.p + i * psize);

		ASSERT_TRUE(e & PME_SWAP) TH_LOG("page %zu", i);
		ASSERT_EQ(!(i % 2), !!(e & PME_UFFD_WP)) TH_LOG("page %zu", i);
	}
	ASSERT_EQ(0, scan(t.pmfd, t.p, t.p + t.pages * psize, NULL, 0, &q_wp_written, NULL));
	for (i = 0; i < t.pages; i++) {
		__u64 e = pme(t.pmfd, t.p + i * psize);

		ASSERT_TRUE(e & PME_SWAP) TH_LOG("page %zu swapped in", i);
		ASSERT_TRUE(e & PME_UFFD_WP) TH_LOG("page %zu not protected", i);
	}
	memset(t.want, 0, t.pages);
	ASSERT_TRUE(tracked_collect(_metadata, &t, 16));
	tracked_write(&t, &seed, 3);
	ASSERT_TRUE(tracked_collect(_metadata, &t, 16));
	for (i = 0; i < t.pages; i++)
		ASSERT_EQ(t.want[i] ? 2 : (i % 2 ? 3 : 1), peek(t.p + i * psize));
	tracked_unmap(&t);
}

static long nodes_online(void)
{
	long n = 0;
	char path[64];

	while (n < 64) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%ld", n);
		if (access(path, F_OK))
			break;
		n++;
	}
	return n;
}

struct migrator {
	struct tracked *t;
	bool stop;
	long passes;		/* move_pages() calls done */
	long moved;		/* pages they moved from one node to the other */
	int err;
};

static void *migrate_loop(void *arg)
{
	struct migrator *m = arg;
	size_t n = m->t->pages, i;
	void **pages = calloc(n, sizeof(void *));
	int *nodes = calloc(n, sizeof(int)), *status = calloc(n, sizeof(int));
	int *prev = calloc(n, sizeof(int));
	int node = 1;

	if (!pages || !nodes || !status || !prev) {
		m->err = ENOMEM;
		return NULL;
	}
	for (i = 0; i < n; i++)
		prev[i] = -1;
	while (!__atomic_load_n(&m->stop, __ATOMIC_RELAXED)) {
		for (i = 0; i < n; i++) {
			pages[i] = m->t->p + i * psize;
			nodes[i] = node;
		}
		/* > 0: pages left where they were (busy, say): not an error */
		if (syscall(__NR_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE) < 0) {
			m->err = errno;
			break;
		}
		/* moved: on the other node before, on this one now */
		for (i = 0; i < n; i++) {
			if (status[i] == node && prev[i] >= 0 && prev[i] != node)
				__atomic_add_fetch(&m->moved, 1, __ATOMIC_RELAXED);
			prev[i] = status[i];
		}
		node = !node;
		__atomic_add_fetch(&m->passes, 1, __ATOMIC_RELAXED);
	}
	free(pages);
	free(nodes);
	free(status);
	free(prev);
	return NULL;
}

/*
 * Pages migrate between two nodes all the time while they are written and
 * collected with WP_MATCHING: a scan that meets a migration entry must
 * protect it (and it must stay protected when migration completes), so
 * that each round reports exactly the pages written, no more, no less.
 */
TEST_F_TIMEOUT(conc, wp_scan_races_migration, 300)
{
	struct migrator m = {};
	struct tracked t;
	__u64 seed = 61;
	pthread_t th;
	int round;
	bool ok = true;
	double t0;

	NEED(nodes_online() >= 2, "one NUMA node");
	ASSERT_EQ(0, tracked_map(&t, 256, 1));
	m.t = &t;
	ASSERT_EQ(0, pthread_create(&th, NULL, migrate_loop, &m));
	/*
	 * 40 rounds, and on until the range went back and forth a few times:
	 * under TCG one move_pages() of the range may take longer than all
	 * the rounds.
	 */
	t0 = now();
	for (round = 0; ok && (round < 40 || (__atomic_load_n(&m.passes, __ATOMIC_RELAXED) < 4 &&
					      !m.err && now() - t0 < HANG_SECONDS)); round++) {
		tracked_write(&t, &seed, 5);
		ok = tracked_collect(_metadata, &t, round % 2 ? 4 : 256);
	}
	__atomic_store_n(&m.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	ASSERT_TRUE(ok) TH_LOG("round %d", round - 1);
	ASSERT_EQ(0, m.err) TH_LOG("move_pages: %s", strerror(m.err));
	TH_LOG("%d rounds, %ld passes of move_pages(), %ld pages moved", round, m.passes,
	       m.moved);
	ASSERT_LE(4, m.passes);
	ASSERT_LT(0, m.moved) TH_LOG("no page ever migrated");
	tracked_unmap(&t);
}

/* ---------------------------------------------------------------------- */

/* The image a setuid or exec test runs: tell the fd in argv[2], then wait */
static int sleeper(int argc, char **argv)
{
	int fd = argc > 2 ? atoi(argv[2]) : -1;

	if (fd >= 0 && write(fd, "s", 1) != 1)
		return 1;
	for (;;)
		pause();
	return 0;
}

static void __attribute__((constructor)) robust_constructor_order(void)
{
	/* as TEST_HARNESS_MAIN does: run the tests in the order written */
	if (!__constructor_order)
		__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], SLEEPER_ARG))
		return sleeper(argc, argv);
	return test_harness_run(argc, argv);
}
