// SPDX-License-Identifier: GPL-2.0
/*
 * pagemap_fuzz: a seeded fuzzer of the PAGEMAP_SCAN ioctl and of
 * asynchronous userfaultfd write-protection (UFFD_FEATURE_WP_ASYNC), whose
 * every answer is checked against a truth model of the pages' writes.
 *
 * For each memory type (anonymous, THP, shmem, memfd, hugetlb private and
 * shared, a regular file mapped private and shared) a few regions are
 * registered for async uffd-wp, and several threads issue random
 * operations on them: writes (stores, read(2) and io_uring reads into the
 * pages), PAGEMAP_SCAN with random and with invalid arguments, from this
 * process and from a second one through /proc/<pid>/pagemap, userfaultfd
 * ioctls, mmap/munmap/mremap/mprotect, madvise, move_pages(), KSM, fork()
 * and clear_refs.
 *
 * The model.  Every write to a page draws a ticket from a global counter
 * before it stores and records it as done afterwards; every scan and
 * every operation that may hide writes records stamps from the same
 * counter when it starts and ends.  A page whose last completed write came
 * after the last scan that reported it (and after the last operation that
 * may legitimately reset its protection) must be reported as written by a
 * scan that covers it, reaches it (the page is below walk_end) and selects
 * written pages: missing it is a lost write, the bug this hunts.  Writes
 * concurrent with a scan may go either way: a scan that reports a page
 * covers every write begun before the scan ended, and one that does not
 * leaves them to the next.  Before judging, a scan waits for the
 * protecting operations that overlapped it, so that a page another thread
 * reported and protected meanwhile is not counted as lost.
 *
 * Besides lost writes, every scan is checked for what the ABI promises:
 * regions inside the range, page aligned, ascending, merged when adjacent
 * with equal categories, no more than vec_len of them nor max_pages pages,
 * the return value and walk_end consistent with them, nothing written to
 * vec beyond the return value, categories within return_mask and matching
 * the masks, only async uffd-wp VMAs with PM_SCAN_WP_MATCHING, and, when
 * no other thread can change the pages, the categories against a read() of
 * /proc/self/pagemap.  Invalid arguments must fail with the errno the ABI
 * gives for them.
 *
 * Where kernels that implement the ABI answer differently (this tree's
 * documented differences from upstream, and a few upstream quirks), a
 * probe at the start asks the kernel which answer it gives, prints it,
 * and the checks expect that answer: see probe_semantics(). On a 6.1
 * kernel, this backport, the documented answers are required.
 *
 * Usage: pagemap_fuzz [-s SEED] [-t SECONDS] [-n OPS] [-j THREADS]
 *                     [-T TYPES] [-r] [--no-soft-dirty] [--no-check-over-report]
 * The budget, 120 s by default, is shared by the memory types; each runs
 * in a child of the kselftest harness (fuzz.<type>.run) and reports its
 * own result, beside machine.features (what the machine lacks) and
 * machine.backport_semantics.  The seed is printed first; a failure
 * prints the seed, the failing operation, the last operations of every
 * thread and a command line that runs the same seed again.
 * PAGEMAP_FUZZ_SECONDS and PAGEMAP_FUZZ_SEED give defaults for -t and -s.
 *
 * A memory type or feature the machine lacks (huge pages, swap, a second
 * NUMA node, soft-dirty, ...) is a skip, named in the output; -r
 * (--require-all), or PMS_GUEST=1 as in the test guest, makes it a
 * failure.  PMS_EXT2_DIR names the directory for the regular files
 * (default /tmp unless that is tmpfs, then /var/tmp).  Exit status: 0
 * pass, 1 failure, 4 when the kernel has no PAGEMAP_SCAN or WP_ASYNC.
 *
 * io_uring is driven through its system calls: no liburing is needed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <linux/io_uring.h>

/* The harness header of this tree is not clean with -Wextra */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "../kselftest_harness.h"
#pragma GCC diagnostic pop

#ifndef MADV_PAGEOUT
#define MADV_COLD		20
#define MADV_PAGEOUT		21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#define MADV_POPULATE_WRITE	23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB		4U
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY	1
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE		0x2
#define MPOL_MF_MOVE_ALL	0x4
#endif

#define HPAGE_SIZE		(2UL << 20)
#define HPAGE_PAGES		512
#define MAX_THREADS		16
#define MAX_REGIONS		3
#define MAX_HIDERS		(MAX_THREADS + 4)
/* The largest region, in base pages: the scratch arrays are this big */
#define MAX_REGION_PAGES	4096
/* How many regions a scan's vec can take: more than the 512 of a batch */
#define VEC_CAP			1100
#define LOG_LEN			256
/* Pending writes a run must have seen before its judged share counts */
#define MIN_PENDING		1000
#define LOG_DUMP		200
#define SRC_LEN			(64UL << 10)
/* Huge pages the hugetlb types want free: 2 regions of 2, fork's copies */
#define NEED_HUGEPAGES		16
#define ALL_CATS		0xffULL
#define W			PAGE_IS_WRITTEN
/* An address above the user address space, with 4 and 5 level tables */
#define KERNEL_ADDR		0xffff800000000000ULL
#define POISON			0xa5a5a5a5a5a5a5a5ULL
#define CANARY			0x5ca1ab1edeadbeefULL

/* The bits of a /proc/PID/pagemap entry */
#define PM_PRESENT		0x8000000000000000ULL
#define PM_SWAP			0x4000000000000000ULL
#define PM_FILE			0x2000000000000000ULL
#define PM_UFFD_WP		0x0200000000000000ULL
#define PM_SOFT_DIRTY		0x0080000000000000ULL
#define PM_PFN_MASK		0x007fffffffffffffULL

struct options {
	uint64_t seed;
	double seconds;		/* for all memory types together */
	uint64_t ops;		/* likewise; 0: no limit */
	int threads;
	unsigned int types;	/* bit mask of enum mem_type */
	bool no_soft_dirty;
	bool check_over_report;
	bool require_all;	/* --require-all or PMS_GUEST */
};

static struct options opt = {
	.seconds = 120,
	.threads = 4,
	.check_over_report = true,
};

/* What this kernel and machine have, found by the probes at start */
struct features {
	bool pagemap_scan;
	bool wp_async;		/* and WP_UNPOPULATED, which it implies */
	bool soft_dirty;
	bool io_uring;
	bool ksm;
	bool swap;
	bool numa2;		/* nodes 0 and 1 both have memory */
	bool hugetlb;		/* enough free huge pages */
	bool file_ok;		/* file_dir is not tmpfs */
	uint64_t zero_pfn;	/* 0 when the PFN is hidden */
	/* Semantics where kernels may differ, see probe_semantics() */
	bool empty_is_written;	/* empty ptes are PAGE_IS_WRITTEN */
	bool undo_on_error;	/* a failed WP scan unprotects again */
	bool later_batch_regions; /* a late EFAULT returns earlier batches */
	bool wpasync_upfront;	/* CHECK_WPASYNC looks past an early stop */
	bool thp_stale_walk_end; /* a THP split by a WP scan keeps its cut */
	bool thp_split_unmerged; /* ... and leaves its region unmerged */
	bool stale_walk_end;	/* a scan done in batches keeps the first stop */
	char file_dir[256];
};

static struct features feat;
static size_t psize;
static int pagemap_fd;
static int src_fd;		/* data that read(2) and io_uring copy */
static uint64_t g_seq;		/* tickets and stamps, see stamp() */

/* splitmix64: small, fast and good enough to drive a fuzzer */
struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static bool rng_chance(struct rng *r, unsigned int percent)
{
	return rng_below(r, 100) < percent;
}

/* A value in [lo, hi] */
static uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	return lo + rng_below(r, hi - lo + 1);
}

/*
 * The model's clock: write tickets and the stamps of scans and other
 * operations come from one counter, so that they can be compared.
 */
static uint64_t stamp(void)
{
	return __atomic_add_fetch(&g_seq, 1, __ATOMIC_SEQ_CST);
}

static uint64_t aload(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void amax(uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_SEQ_CST);

	while (cur < v &&
	       !__atomic_compare_exchange_n(p, &cur, v, false,
					    __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST))
		;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

enum op_kind {
	OP_STORE,
	OP_FILL,
	OP_READ_PIPE,
	OP_READ_FILE,
	OP_URING,
	OP_STRIPE,
	OP_SCAN,
	OP_SCAN_TRACK,
	OP_SCAN_REMOTE,
	OP_SCAN_BAD,
	OP_PAGEMAP_CHECK,
	OP_UFFD_WP,
	OP_UFFD_REREG,
	OP_UFFD_REOPEN,
	OP_UFFD_ERRNO,
	OP_REMAP,
	OP_MMAP_OVER,
	OP_MREMAP,
	OP_MPROTECT,
	OP_MADVISE,
	OP_MOVE_PAGES,
	OP_KSM,
	OP_FORK,
	OP_CLEAR_REFS,
	OP_NR
};

struct op_desc {
	const char *name;
	unsigned int weight;	/* per mille, before ops that cannot run */
};

static const struct op_desc op_desc[OP_NR] = {
	[OP_STORE]		= { "store",		210 },
	[OP_FILL]		= { "fill",		 30 },
	[OP_READ_PIPE]		= { "read_pipe",	 40 },
	[OP_READ_FILE]		= { "read_file",	 30 },
	[OP_URING]		= { "io_uring",		 30 },
	[OP_STRIPE]		= { "stripe",		 10 },
	[OP_SCAN]		= { "scan",		120 },
	[OP_SCAN_TRACK]		= { "scan_track",	150 },
	[OP_SCAN_REMOTE]	= { "scan_remote",	 40 },
	[OP_SCAN_BAD]		= { "scan_bad",		 50 },
	[OP_PAGEMAP_CHECK]	= { "pagemap_check",	 20 },
	[OP_UFFD_WP]		= { "uffd_wp",		 35 },
	[OP_UFFD_REREG]		= { "uffd_rereg",	  8 },
	[OP_UFFD_REOPEN]	= { "uffd_reopen",	  4 },
	[OP_UFFD_ERRNO]		= { "uffd_errno",	 12 },
	[OP_REMAP]		= { "remap",		  5 },
	[OP_MMAP_OVER]		= { "mmap_over",	  3 },
	[OP_MREMAP]		= { "mremap",		  5 },
	[OP_MPROTECT]		= { "mprotect",		 12 },
	[OP_MADVISE]		= { "madvise",		 60 },
	[OP_MOVE_PAGES]		= { "move_pages",	 15 },
	[OP_KSM]		= { "ksm",		  8 },
	[OP_FORK]		= { "fork",		  8 },
	[OP_CLEAR_REFS]		= { "clear_refs",	  8 },
};

enum mem_type {
	MT_ANON,
	MT_THP,
	MT_SHMEM,
	MT_MEMFD,
	MT_HUGETLB,
	MT_HUGETLB_SHARED,
	MT_FILE,
	MT_FILE_SHARED,
	MT_NR
};

struct mem_type_desc {
	const char *name;
	size_t len;		/* of a region */
	int nregions;
	bool shared;		/* MAP_SHARED: writes go to the object */
	bool hugetlb;
	bool thp;
	bool has_fd;		/* backed by a file we keep open */
	bool anon_private;	/* private pages are anonymous (KSM, FREE) */
	/*
	 * The last region may be bigger: more than the 512 runs of pages
	 * that one batch of a scan gathers and protects.
	 */
	size_t big_len;
};

static const struct mem_type_desc mem_types[MT_NR] = {
	[MT_ANON] = { "anon", 1UL << 20, 3, false, false, false, false, true,
		      16UL << 20 },
	[MT_THP] = { "thp", 4UL << 20, 2, false, false, true, false, true },
	[MT_SHMEM] = { "shmem", 1UL << 20, 3, true, false, false, false, false },
	[MT_MEMFD] = { "memfd", 1UL << 20, 3, true, false, false, true, false,
		       16UL << 20 },
	[MT_HUGETLB] = { "hugetlb", 4UL << 20, 2, false, true, false, false,
			 false },
	[MT_HUGETLB_SHARED] = { "hugetlb_shared", 4UL << 20, 2, true, true,
				false, true, false },
	[MT_FILE] = { "file", 1UL << 20, 3, false, false, false, true, true },
	[MT_FILE_SHARED] = { "file_shared", 1UL << 20, 3, true, false, false,
			     true, false },
};

/* Alignment of ranges that must not cut a huge page */
static size_t mt_align(const struct mem_type_desc *mt)
{
	return mt->hugetlb || mt->thp ? HPAGE_SIZE : psize;
}

/*
 * Where reclaim drops the pte of a written page (shmem and shared file
 * pages go to swap or to the file, not to a swap entry in the pte): on a
 * kernel that does not count empty ptes as written, such a write is
 * invisible to PAGEMAP_SCAN's general path.
 */
static bool mt_reclaim_empties(const struct mem_type_desc *mt)
{
	return mt->shared && !mt->hugetlb;
}

/*
 * The model of one page. Tickets and stamps come from stamp().
 *  wb, wd: the newest ticket of a write begun, and of one completed.
 *  cov:    writes with tickets up to cov were covered by a report.
 *  dis:    writes with tickets below dis may have been hidden legitimately
 *          (protection reset or contents dropped: DONTNEED, a protecting
 *          UFFDIO_WRITEPROTECT, a VMA replaced, ...).
 *  tp:     end stamp of the last operation that protected the page for a
 *          while without reporting it (a failed scan that undid its
 *          protection): it excuses scans that overlapped it.
 */
struct page_state {
	uint64_t wb, wd, cov, dis, tp;
};

struct region {
	int idx;
	enum mem_type type;
	const struct mem_type_desc *mt;
	/*
	 * Writers, scans and madvise() take it shared; what changes the VMA,
	 * its registration or what the model believes of its protection
	 * takes it exclusive.
	 */
	pthread_rwlock_t lock;
	char *slot;		/* PROT_NONE reservation around the region */
	size_t slot_len;
	char *half[2];		/* the two places the region moves between */
	int cur;
	char *base;		/* == half[cur] */
	size_t len, npages;
	int fd;			/* backing file, or -1 */
	int uffd;
	uint64_t features;
	bool tainted;		/* the other half may hold a foreign mapping */
	bool merged;		/* was MADV_MERGEABLE: KSM may drop uffd-wp */
	uint8_t *prot;		/* per page, PROT_* as mapped */
	uint8_t *reg;		/* per page, registered for async uffd-wp */
	struct page_state *pg;
	/* Protecting operations in flight, see hider_enter() */
	pthread_mutex_t hmutex;
	pthread_cond_t hcond;
	uint64_t hstart[MAX_HIDERS];
};

static struct region regions[MAX_REGIONS];
static int nregions;
static pthread_mutex_t uffd_list_lock = PTHREAD_MUTEX_INITIALIZER;
/*
 * A forked child holds our userfaultfds until it exits: a closed one is
 * only released, and its VMAs unregistered, then. Forks take this shared,
 * closing a userfaultfd takes it exclusive.
 */
static pthread_rwlock_t fork_lock = PTHREAD_RWLOCK_INITIALIZER;

static char *page_addr(const struct region *r, size_t page)
{
	return r->base + page * psize;
}

/* The region page of @addr, or -1 if @addr is outside the region */
static long region_page(const struct region *r, uint64_t addr)
{
	if (addr < (uintptr_t)r->base || addr >= (uintptr_t)r->base + r->len)
		return -1;
	return (addr - (uintptr_t)r->base) / psize;
}

/*
 * Operations that may protect pages without reporting them, or drop what
 * they hold, run as "hiders": a scan that ends after a hider started waits
 * for it to finish and record what it did before judging its own result.
 */
static int hider_enter(struct region *r, uint64_t *start)
{
	int i;

	pthread_mutex_lock(&r->hmutex);
	for (;;) {
		for (i = 0; i < MAX_HIDERS; i++)
			if (!r->hstart[i])
				break;
		if (i < MAX_HIDERS)
			break;
		pthread_cond_wait(&r->hcond, &r->hmutex);
	}
	*start = stamp();
	r->hstart[i] = *start;
	pthread_mutex_unlock(&r->hmutex);
	return i;
}

static void hider_leave(struct region *r, int slot)
{
	pthread_mutex_lock(&r->hmutex);
	r->hstart[slot] = 0;
	pthread_cond_broadcast(&r->hcond);
	pthread_mutex_unlock(&r->hmutex);
}

/* Wait until every hider that started before @stamp has left */
static void hider_wait_before(struct region *r, uint64_t stamp)
{
	bool busy;
	int i;

	pthread_mutex_lock(&r->hmutex);
	do {
		busy = false;
		for (i = 0; i < MAX_HIDERS; i++)
			if (r->hstart[i] && r->hstart[i] < stamp)
				busy = true;
		if (busy)
			pthread_cond_wait(&r->hcond, &r->hmutex);
	} while (busy);
	pthread_mutex_unlock(&r->hmutex);
}

/* The region pages [*first, *first + *n) inside [start, end) */
static void range_pages(const struct region *r, uint64_t start, uint64_t end,
			size_t *first, size_t *n)
{
	uint64_t base = (uintptr_t)r->base, lo, hi;

	lo = start > base ? start : base;
	hi = end < base + r->len ? end : base + r->len;
	*first = lo < hi ? (lo - base) / psize : 0;
	*n = lo < hi ? (hi - base + psize - 1) / psize - *first : 0;
}

/* Writes to pages [first, first + n) before now may have been hidden */
static void model_forgive(struct region *r, size_t first, size_t n,
			  uint64_t when)
{
	size_t i;

	for (i = first; i < first + n && i < r->npages; i++)
		amax(&r->pg[i].dis, when);
}

static void model_forgive_all(struct region *r)
{
	model_forgive(r, 0, r->npages, stamp());
}

/*
 * A minimal io_uring of our own, through the raw system calls: one read
 * at a time, submitted and waited for, is all the fuzzer asks of it. The
 * kernel then writes the pages from its own context, a path that neither
 * a store nor read(2) takes.
 */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup	425
#define __NR_io_uring_enter	426
#endif

struct uring {
	int fd;
	void *sq_ring, *cq_ring;
	size_t sq_ring_len, cq_ring_len, sqes_len;
	unsigned int *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static void uring_exit(struct uring *u)
{
	if (u->sqes && u->sqes != MAP_FAILED)
		munmap(u->sqes, u->sqes_len);
	if (u->cq_ring && u->cq_ring != MAP_FAILED && u->cq_ring != u->sq_ring)
		munmap(u->cq_ring, u->cq_ring_len);
	if (u->sq_ring && u->sq_ring != MAP_FAILED)
		munmap(u->sq_ring, u->sq_ring_len);
	if (u->fd >= 0)
		close(u->fd);
	memset(u, 0, sizeof(*u));
	u->fd = -1;
}

static void *uring_map(int fd, size_t len, off_t what)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, fd, what);
}

/* 0, or -1 with errno set (ENOSYS, or EPERM where io_uring is disabled) */
static int uring_init(struct uring *u, unsigned int entries)
{
	struct io_uring_params p;
	int err;

	memset(u, 0, sizeof(*u));
	memset(&p, 0, sizeof(p));
	u->fd = syscall(__NR_io_uring_setup, entries, &p);
	if (u->fd < 0)
		return -1;
	u->sq_ring_len = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	u->cq_ring_len = p.cq_off.cqes +
			 p.cq_entries * sizeof(struct io_uring_cqe);
	/* Since 5.4 one mapping holds both rings */
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (u->cq_ring_len > u->sq_ring_len)
			u->sq_ring_len = u->cq_ring_len;
		u->cq_ring_len = u->sq_ring_len;
	}
	u->sq_ring = uring_map(u->fd, u->sq_ring_len, IORING_OFF_SQ_RING);
	if (u->sq_ring == MAP_FAILED)
		goto fail;
	u->cq_ring = p.features & IORING_FEAT_SINGLE_MMAP ? u->sq_ring :
		     uring_map(u->fd, u->cq_ring_len, IORING_OFF_CQ_RING);
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	u->sqes = uring_map(u->fd, u->sqes_len, IORING_OFF_SQES);
	if (u->cq_ring == MAP_FAILED || u->sqes == MAP_FAILED)
		goto fail;
	u->sq_tail = (unsigned int *)((char *)u->sq_ring + p.sq_off.tail);
	u->sq_mask = (unsigned int *)((char *)u->sq_ring + p.sq_off.ring_mask);
	u->sq_array = (unsigned int *)((char *)u->sq_ring + p.sq_off.array);
	u->cq_head = (unsigned int *)((char *)u->cq_ring + p.cq_off.head);
	u->cq_tail = (unsigned int *)((char *)u->cq_ring + p.cq_off.tail);
	u->cq_mask = (unsigned int *)((char *)u->cq_ring + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)((char *)u->cq_ring + p.cq_off.cqes);
	return 0;
fail:
	err = errno;
	uring_exit(u);
	errno = err;
	return -1;
}

/* Read @len bytes at @off of @fd into @dst: bytes read, or -errno */
static long uring_read(struct uring *u, int fd, void *dst, size_t len,
		       off_t off)
{
	unsigned int tail = *u->sq_tail, idx = tail & *u->sq_mask, head;
	struct io_uring_sqe *sqe = &u->sqes[idx];
	long ret;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_READ;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)dst;
	sqe->len = len;
	sqe->off = off;
	u->sq_array[idx] = idx;
	/* The kernel must see the entry before the tail that publishes it */
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	ret = syscall(__NR_io_uring_enter, u->fd, 1, 1,
		      IORING_ENTER_GETEVENTS, NULL, 0);
	if (ret < 0)
		return -errno;
	if (ret != 1)
		return -EIO;
	head = *u->cq_head;
	/* A signal may end the wait early: wait again until it completes */
	while (head == __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) {
		ret = syscall(__NR_io_uring_enter, u->fd, 0, 1,
			      IORING_ENTER_GETEVENTS, NULL, 0);
		if (ret < 0 && errno != EINTR)
			return -errno;
	}
	ret = u->cqes[head & *u->cq_mask].res;
	__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
	return ret;
}

/* A log entry: what an operation was asked and what it got */
struct log_entry {
	uint64_t seq;
	uint16_t op;
	int8_t region;
	uint8_t done;
	int32_t err;
	int64_t ret;
	uint64_t a[8];
};

struct worker {
	int id;
	pthread_t thread;
	struct rng rng;
	struct log_entry log[LOG_LEN];
	uint64_t nlog;
	uint64_t ops[OP_NR];
	uint64_t pages_checked;	/* pages a scan had to report if written */
	uint64_t excused;	/* ... of those, pending but excused */
	uint64_t pending_seen;	/* pending writes that scans reported */
	uint64_t pend_checked;	/* pending writes a scan was judged on */
	uint64_t pend_skipped;	/* ... and those in a scan's range it was not */
	struct page_region *vec;
	uint64_t *pre, *post;
	uint8_t *reported;
	uint8_t *mine;		/* pages quiet_rescan() wrote */
	uint64_t *pm_before, *pm_after, *pm_cats;	/* per page */
	char *argarea;		/* RW, PROT_NONE, RO, RW pages */
	int pipe[2];
	struct uring ring;
	bool ring_ok;
};

static struct worker workers[MAX_THREADS + 1];
static __thread struct worker *self;
static __thread sigjmp_buf fault_jmp;
/* Written with __atomic builtins: a signal handler reads them */
static __thread sig_atomic_t fault_armed;
static __thread sig_atomic_t fault_sig;

static bool stop_phase;
static bool failed;
static int fail_count;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_text[16384];
static size_t fail_len;

static bool stopping(void)
{
	return __atomic_load_n(&stop_phase, __ATOMIC_RELAXED);
}

static struct log_entry *log_begin(struct worker *w, enum op_kind op,
				   const struct region *r)
{
	struct log_entry *e = &w->log[w->nlog++ % LOG_LEN];

	memset(e, 0, sizeof(*e));
	e->seq = stamp();
	e->op = op;
	e->region = r ? r->idx : -1;
	w->ops[op]++;
	return e;
}

static void log_end(struct log_entry *e, long ret, int err)
{
	e->ret = ret;
	e->err = ret < 0 ? err : 0;
	e->done = 1;
}

static void fail_append(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (fail_len >= sizeof(fail_text) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(fail_text + fail_len, sizeof(fail_text) - fail_len,
		      fmt, ap);
	va_end(ap);
	if (n > 0)
		fail_len = fail_len + n < sizeof(fail_text) ?
			   fail_len + n : sizeof(fail_text) - 1;
}

/*
 * Report a failure: the first one is kept with its details, the phase
 * stops, and the main thread prints it with the logs once the workers
 * are gone. Returns with fail_lock held (see fail_done()) if this is the
 * first failure, so that callers can append details.
 */
static bool fail_start(const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&fail_lock);
	fail_count++;
	__atomic_store_n(&stop_phase, true, __ATOMIC_RELAXED);
	if (failed) {
		pthread_mutex_unlock(&fail_lock);
		return false;
	}
	failed = true;
	fail_append("thread %d: %s\n", self ? self->id : -1, line);
	if (self && self->nlog) {
		const struct log_entry *e =
			&self->log[(self->nlog - 1) % LOG_LEN];

		fail_append("failing op: #%llu %s\n",
			    (unsigned long long)e->seq, op_desc[e->op].name);
	}
	return true;
}

static void fail_done(void)
{
	pthread_mutex_unlock(&fail_lock);
}

#define FAIL(...) do {					\
	if (fail_start(__VA_ARGS__))			\
		fail_done();				\
} while (0)

/* Region setup: a PROT_NONE slot, the mapping, its userfaultfd */

static int open_backing_file(struct region *r)
{
	char path[512];
	char buf[4096];
	size_t off;
	int fd;

	switch (r->type) {
	case MT_MEMFD:
		fd = memfd_create("pagemap_fuzz", MFD_CLOEXEC);
		break;
	case MT_HUGETLB_SHARED:
		fd = memfd_create("pagemap_fuzz", MFD_CLOEXEC | MFD_HUGETLB);
		break;
	default:
		snprintf(path, sizeof(path), "%s/pagemap_fuzz.%d.%d",
			 feat.file_dir, getpid(), r->idx);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(path);
		break;
	}
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, r->len)) {
		close(fd);
		return -errno;
	}
	/* Real data in the page cache of regular files, not a sparse file */
	if (r->type == MT_FILE || r->type == MT_FILE_SHARED) {
		memset(buf, 0x5a + r->idx, sizeof(buf));
		for (off = 0; off < r->len; off += sizeof(buf))
			if (pwrite(fd, buf, sizeof(buf), off) != sizeof(buf)) {
				close(fd);
				return -EIO;
			}
	}
	r->fd = fd;
	return 0;
}

/* Map the region at @addr, replacing what is there (our own slot) */
static int map_region(struct region *r, char *addr)
{
	const struct mem_type_desc *mt = r->mt;
	int flags = MAP_FIXED | (mt->shared ? MAP_SHARED : MAP_PRIVATE);
	size_t off;
	void *p;

	if (!mt->has_fd)
		flags |= MAP_ANONYMOUS;
	if (mt->hugetlb && !mt->has_fd)
		flags |= MAP_HUGETLB;
	p = mmap(addr, r->len, PROT_READ | PROT_WRITE, flags,
		 mt->has_fd ? r->fd : -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->base = addr;
	memset(r->prot, PROT_READ | PROT_WRITE, r->npages);
	memset(r->reg, 0, r->npages);
	if (r->type == MT_ANON)
		madvise(addr, r->len, MADV_NOHUGEPAGE);
	if (r->type == MT_THP) {
		/*
		 * Fault in the THPs before registering: markers placed in an
		 * unpopulated range would keep them from ever being allocated.
		 */
		madvise(addr, r->len, MADV_HUGEPAGE);
		for (off = 0; off < r->len; off += HPAGE_SIZE)
			__atomic_store_n(addr + off, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

/* Give the region's place back to the slot: PROT_NONE, no pages */
static int unmap_region(struct region *r)
{
	void *p = mmap(r->base, r->len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		       -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	memset(r->reg, 0, r->npages);
	memset(r->prot, PROT_NONE, r->npages);
	return 0;
}

static uint64_t pick_uffd_features(struct rng *rng)
{
	uint64_t f = UFFD_FEATURE_WP_ASYNC;

	/* WP_ASYNC implies WP_UNPOPULATED; asking for it must not hurt */
	if (rng_chance(rng, 50))
		f |= UFFD_FEATURE_WP_UNPOPULATED;
	if (rng_chance(rng, 50))
		f |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	if (rng_chance(rng, 30))
		f |= UFFD_FEATURE_EVENT_FORK;
	return f;
}

static int uffd_create(struct rng *rng, uint64_t features)
{
	int flags = O_CLOEXEC | O_NONBLOCK;
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = features,
	};
	uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	int fd;

	/* Async faults are resolved for kernel accesses too */
	if (rng_chance(rng, 30))
		flags |= UFFD_USER_MODE_ONLY;
	fd = syscall(__NR_userfaultfd, flags);
	if (fd < 0) {
		FAIL("userfaultfd(%#x): %s", flags, strerror(errno));
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		FAIL("UFFDIO_API features %#llx: %s",
		     (unsigned long long)features, strerror(errno));
		close(fd);
		return -1;
	}
	if ((api.features & want) != want) {
		FAIL("UFFDIO_API reports features %#llx, without WP_ASYNC or WP_UNPOPULATED",
		     (unsigned long long)api.features);
		close(fd);
		return -1;
	}
	return fd;
}

static int uffd_register(struct region *r, size_t first, size_t n)
{
	struct uffdio_register reg = {
		.range = {
			.start = (uintptr_t)page_addr(r, first),
			.len = n * psize,
		},
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (ioctl(r->uffd, UFFDIO_REGISTER, &reg)) {
		FAIL("UFFDIO_REGISTER %s region %d pages %zu+%zu: %s",
		     r->mt->name, r->idx, first, n, strerror(errno));
		return -1;
	}
	if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
		FAIL("UFFDIO_REGISTER of %s offers no UFFDIO_WRITEPROTECT (ioctls %#llx)",
		     r->mt->name, (unsigned long long)reg.ioctls);
		return -1;
	}
	memset(r->reg + first, 1, n);
	return 0;
}

static int uffd_protect(struct region *r, size_t first, size_t n)
{
	struct uffdio_writeprotect wp = {
		.range = {
			.start = (uintptr_t)page_addr(r, first),
			.len = n * psize,
		},
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	/* An EVENT_FORK uffd refuses while a fork is under way */
	while (ioctl(r->uffd, UFFDIO_WRITEPROTECT, &wp)) {
		if (errno == EAGAIN &&
		    (r->features & UFFD_FEATURE_EVENT_FORK)) {
			usleep(1000);
			continue;
		}
		FAIL("UFFDIO_WRITEPROTECT %s region %d pages %zu+%zu: %s",
		     r->mt->name, r->idx, first, n, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Register the whole region and protect it, as a tracker starts: what was
 * written before is forgiven.
 */
static int region_arm(struct region *r)
{
	if (uffd_register(r, 0, r->npages) || uffd_protect(r, 0, r->npages))
		return -1;
	model_forgive_all(r);
	return 0;
}

static int region_new_uffd(struct region *r, struct rng *rng)
{
	uint64_t features = pick_uffd_features(rng);
	int fd = uffd_create(rng, features);

	if (fd < 0)
		return -1;
	pthread_mutex_lock(&uffd_list_lock);
	r->uffd = fd;
	r->features = features;
	pthread_mutex_unlock(&uffd_list_lock);
	return 0;
}

static void region_close_uffd(struct region *r)
{
	pthread_mutex_lock(&uffd_list_lock);
	if (r->uffd >= 0)
		close(r->uffd);
	r->uffd = -1;
	pthread_mutex_unlock(&uffd_list_lock);
	memset(r->reg, 0, r->npages);
}

static int reserve_slot(struct region *r)
{
	size_t guard = mt_align(r->mt) > 16 * psize ? mt_align(r->mt) :
		       16 * psize;
	size_t len = 3 * guard + 2 * r->len;
	char *p, *slot;

	p = mmap(NULL, len + HPAGE_SIZE, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	slot = (char *)(((uintptr_t)p + HPAGE_SIZE - 1) & ~(HPAGE_SIZE - 1));
	if (slot > p)
		munmap(p, slot - p);
	munmap(slot + len, p + len + HPAGE_SIZE - (slot + len));
	r->slot = slot;
	r->slot_len = len;
	r->half[0] = slot + guard;
	r->half[1] = slot + 2 * guard + r->len;
	r->cur = 0;
	r->base = r->half[0];
	return 0;
}

static int setup_region(struct region *r, int idx, enum mem_type type,
			struct rng *rng)
{
	pthread_rwlockattr_t attr;
	int err;

	memset(r, 0, sizeof(*r));
	r->idx = idx;
	r->type = type;
	r->mt = &mem_types[type];
	r->len = idx == r->mt->nregions - 1 && r->mt->big_len ?
		 r->mt->big_len : r->mt->len;
	r->npages = r->len / psize;
	r->fd = -1;
	r->uffd = -1;
	r->prot = calloc(r->npages, 1);
	r->reg = calloc(r->npages, 1);
	r->pg = calloc(r->npages, sizeof(*r->pg));
	if (!r->prot || !r->reg || !r->pg)
		return -ENOMEM;
	/* Exclusive operations must not starve behind busy writers */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&r->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&r->hmutex, NULL);
	pthread_cond_init(&r->hcond, NULL);
	err = reserve_slot(r);
	if (!err && r->mt->has_fd)
		err = open_backing_file(r);
	if (!err)
		err = map_region(r, r->base);
	if (err)
		return err;
	if (region_new_uffd(r, rng) || region_arm(r))
		return -EIO;
	return 0;
}

static void teardown_region(struct region *r)
{
	region_close_uffd(r);
	if (r->slot)
		munmap(r->slot, r->slot_len);
	if (r->fd >= 0)
		close(r->fd);
	free(r->prot);
	free(r->reg);
	free(r->pg);
	pthread_rwlock_destroy(&r->lock);
	pthread_mutex_destroy(&r->hmutex);
	pthread_cond_destroy(&r->hcond);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->uffd = -1;
}

/* Pick a run of at most @max pages, aligned as the type needs */
static void pick_run(struct worker *w, const struct region *r, size_t max,
		     size_t *first, size_t *n)
{
	size_t unit = mt_align(r->mt) / psize;
	size_t units = r->npages / unit;

	if (unit > 1 && rng_chance(&w->rng, 70)) {
		*first = rng_below(&w->rng, units) * unit;
		*n = unit * rng_range(&w->rng, 1, units - *first / unit);
		return;
	}
	*first = rng_below(&w->rng, r->npages);
	*n = rng_range(&w->rng, 1, max < r->npages - *first ? max :
				 r->npages - *first);
}

/* Writes */

/* The VMAs of the region's slot, for a failure report */
static void append_maps(const struct region *r)
{
	unsigned long start, end;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return;
	fail_append("  VMAs of its slot [%p, %p):\n", r->slot,
		    r->slot + r->slot_len);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &start, &end) == 2 &&
		    end > (uintptr_t)r->slot &&
		    start < (uintptr_t)r->slot + r->slot_len)
			fail_append("    %s", line);
	fclose(f);
}

static void fault_handler(int sig)
{
	if (__atomic_load_n(&fault_armed, __ATOMIC_RELAXED)) {
		__atomic_store_n(&fault_armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&fault_sig, sig, __ATOMIC_RELAXED);
		siglongjmp(fault_jmp, 1);
	}
	/* Not ours: die of it, with a core if so configured */
	signal(sig, SIG_DFL);
}

static const char *sig_name(int sig)
{
	return sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : "signal";
}

/*
 * Store into pages [addr, addr + n pages): one word per page, or whole
 * pages of a value KSM can merge. Returns 0, or the signal it got.
 */
static int guarded_store(char *addr, size_t n, uint64_t ticket, bool fill,
			 size_t word)
{
	size_t i;

	__atomic_store_n(&fault_sig, 0, __ATOMIC_RELAXED);
	if (sigsetjmp(fault_jmp, 1))
		return __atomic_load_n(&fault_sig, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_armed, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < n; i++) {
		char *page = addr + i * psize;

		if (fill)
			memset(page, ticket & 1 ? 0x11 : 0x22, psize);
		else
			__atomic_store_n((uint64_t *)page + word, ticket,
					 __ATOMIC_RELAXED);
	}
	__atomic_store_n(&fault_armed, 0, __ATOMIC_SEQ_CST);
	return 0;
}

/* Let the kernel write: read(2) from a pipe, pread(), io_uring */
static long kernel_write(struct worker *w, enum op_kind op, char *dst,
			 size_t len, off_t off, int *err)
{
	static char data[8 * 4096];
	size_t done = 0;
	long ret = 0;

	*err = 0;
	if (op == OP_READ_PIPE) {
		if (len > sizeof(data))
			len = sizeof(data);
		if (write(w->pipe[1], data, len) != (ssize_t)len) {
			*err = errno;
			return -1;
		}
		while (done < len) {
			ret = read(w->pipe[0], dst + done, len - done);
			if (ret <= 0)
				break;
			done += ret;
		}
		if (ret < 0) {
			*err = errno;
			/* Leave the pipe empty for the next one */
			while (read(w->pipe[0], data, sizeof(data)) > 0)
				;
			return -1;
		}
		return done;
	}
	if (op == OP_READ_FILE) {
		ret = pread(src_fd, dst, len, off);
		if (ret < 0)
			*err = errno;
		return ret;
	}
	if (op == OP_URING && w->ring_ok) {
		ret = uring_read(&w->ring, src_fd, dst, len, off);
		if (ret < 0) {
			*err = -ret;
			return -1;
		}
		return ret;
	}
	*err = EOPNOTSUPP;
	return -1;
}

static void op_write(struct worker *w, struct region *r, enum op_kind op)
{
	size_t first, n, i, len = 0, written;
	struct log_entry *e;
	uint64_t ticket;
	long ret = 0;
	int err = 0;
	off_t off;
	char *dst;

	pthread_rwlock_rdlock(&r->lock);
	first = rng_below(&w->rng, r->npages);
	n = rng_range(&w->rng, 1, 8);
	if (n > r->npages - first)
		n = r->npages - first;
	/* Only pages the model knows writable: the run stops before others */
	for (i = 0; i < n; i++)
		if (!(r->prot[first + i] & PROT_WRITE))
			break;
	n = i;
	dst = page_addr(r, first);
	e = log_begin(w, op, r);
	e->a[0] = (uintptr_t)dst;
	e->a[1] = n;
	if (!n)
		goto out;
	ticket = stamp();
	e->a[2] = ticket;
	for (i = 0; i < n; i++)
		amax(&r->pg[first + i].wb, ticket);

	written = n;
	if (op == OP_STORE || op == OP_FILL) {
		int sig = guarded_store(dst, n, ticket, op == OP_FILL,
					rng_below(&w->rng, psize / 8));

		if (sig && fail_start("%s writing %s region %d page %zu (+%zu) at %p",
				      sig_name(sig), r->mt->name, r->idx,
				      first, n, dst)) {
			fail_append("  the model holds it mapped and writable\n");
			append_maps(r);
			fail_done();
		}
		if (sig) {
			ret = -1;
			err = EFAULT;
			written = 0;
		}
	} else {
		/* Leave the last page partly written: it is written still */
		len = n * psize - rng_below(&w->rng, psize);
		off = rng_below(&w->rng, SRC_LEN - len + 1);
		e->a[3] = len;
		ret = kernel_write(w, op, dst, len, off, &err);
		if (ret != (long)len) {
			FAIL("%s of %zu bytes into %s region %d page %zu returned %ld (%s)",
			     op_desc[op].name, len, r->mt->name, r->idx, first,
			     ret, strerror(err));
			written = ret > 0 ? (ret + psize - 1) / psize : 0;
		}
	}
	for (i = 0; i < written; i++)
		amax(&r->pg[first + i].wd, ticket);
out:
	log_end(e, ret, err);
	pthread_rwlock_unlock(&r->lock);
}

/*
 * Every second or third page of a long stretch: written runs apart from
 * each other, more than a scan's batch of 512 can protect.
 */
static void op_stripe(struct worker *w, struct region *r)
{
	size_t first, last, step = rng_range(&w->rng, 2, 3), p, n = 0;
	struct log_entry *e;
	uint64_t ticket;
	int sig;

	pthread_rwlock_rdlock(&r->lock);
	first = rng_below(&w->rng, r->npages);
	last = first + rng_range(&w->rng, 1, 3 * VEC_CAP);
	if (last > r->npages)
		last = r->npages;
	e = log_begin(w, OP_STRIPE, r);
	e->a[0] = (uintptr_t)page_addr(r, first);
	e->a[1] = last - first;
	e->a[2] = step;
	ticket = stamp();
	e->a[3] = ticket;
	for (p = first; p < last; p += step) {
		if (!(r->prot[p] & PROT_WRITE))
			continue;
		amax(&r->pg[p].wb, ticket);
		sig = guarded_store(page_addr(r, p), 1, ticket, false, 0);
		if (sig) {
			if (fail_start("%s writing %s region %d page %zu",
				       sig_name(sig), r->mt->name, r->idx, p)) {
				append_maps(r);
				fail_done();
			}
			break;
		}
		amax(&r->pg[p].wd, ticket);
		n++;
	}
	log_end(e, n, 0);
	pthread_rwlock_unlock(&r->lock);
}

/* PAGEMAP_SCAN: arguments, execution, the checks of its answer */

struct scan {
	struct pm_scan_arg arg;
	uint64_t end;		/* arg.end rounded up to a page */
	bool remote;		/* issued by the second process */
	bool wp;
	bool has_vec;		/* vec and vec_len both given */
	bool vec_ptr;		/* vec given, perhaps with vec_len 0 */
	bool quirk;		/* hugetlb WP scan where kernels differ */
	bool loose;		/* walk_end may not say where the walk ended */
	long ret;
	int err;
	uint64_t s0, s1;	/* stamps around the ioctl */
	size_t first, last;	/* region pages inside [start, end) */
	int hslot;
};

static bool remote_ok;
static int remote_sock = -1;
static pid_t remote_pid;
static pthread_mutex_t remote_lock = PTHREAD_MUTEX_INITIALIZER;

static long remote_scan(struct worker *w, struct scan *s);

/* Do these masks select every written page of an async uffd-wp VMA? */
static bool selects_written(const struct pm_scan_arg *a)
{
	uint64_t known = PAGE_IS_WRITTEN | PAGE_IS_WPALLOWED;
	uint64_t cats = known ^ a->category_inverted;

	if (a->category_mask & ~known)
		return false;
	if ((cats & a->category_mask) != a->category_mask)
		return false;
	return !a->category_anyof_mask ||
	       (cats & known & a->category_anyof_mask);
}

/* The write tracker's query, which kernels serve by a path of its own */
static bool tracker_query(const struct pm_scan_arg *a)
{
	return a->category_mask == W && a->return_mask == W &&
	       !a->category_anyof_mask && !a->category_inverted;
}

static uint64_t random_cats(struct rng *rng, unsigned int percent)
{
	uint64_t c = 0;
	int i;

	for (i = 0; i < 8; i++)
		if (rng_chance(rng, percent))
			c |= 1ULL << i;
	return c;
}

static void gen_masks(struct worker *w, struct pm_scan_arg *a, bool track)
{
	struct rng *rng = &w->rng;

	if (track) {
		a->category_mask = W;
		a->return_mask = W;
		/* Sometimes the same question the general way */
		if (rng_chance(rng, 20))
			a->return_mask |= random_cats(rng, 40);
		return;
	}
	switch (rng_below(rng, 10)) {
	case 0:
		/* Everything, page by page */
		a->return_mask = rng_chance(rng, 50) ? ALL_CATS :
				 random_cats(rng, 50);
		break;
	case 1:
	case 2:
	case 3:
		a->category_mask = W;
		a->return_mask = random_cats(rng, 40) |
				 (rng_chance(rng, 70) ? W : 0);
		break;
	default:
		a->category_mask = random_cats(rng, 20);
		a->category_inverted = random_cats(rng, 25);
		if (rng_chance(rng, 30))
			a->category_anyof_mask = random_cats(rng, 30);
		a->return_mask = rng_chance(rng, 50) ? ALL_CATS :
				 random_cats(rng, 40);
		break;
	}
}

/* A range around the region, in pages from its base, maybe unaligned */
static void gen_range(struct worker *w, const struct region *r,
		      struct pm_scan_arg *a)
{
	long unit = mt_align(r->mt) / psize;
	long np = r->npages, ext = unit > 1 ? unit : 4;
	struct rng *rng = &w->rng;
	long p0, p1;

	switch (rng_below(rng, 10)) {
	case 0:
	case 1:
		p0 = 0;
		p1 = np;
		break;
	case 2:
		/* Into the PROT_NONE guards around it */
		p0 = -(long)rng_below(rng, ext + 1);
		p1 = np + rng_below(rng, ext + 1);
		break;
	case 3:
		p0 = rng_below(rng, np + 1);
		p1 = rng_chance(rng, 50) ? p0 : p0 + 1;
		break;
	default:
		p0 = rng_below(rng, np);
		p1 = p0 + rng_range(rng, 1, np - p0);
		break;
	}
	if (unit > 1 && rng_chance(rng, 50)) {
		p0 = p0 >= 0 ? p0 / unit * unit : -unit;
		p1 = p1 <= np ? (p1 + unit - 1) / unit * unit : np + unit;
	}
	if (p1 > np + ext)
		p1 = np + ext;
	a->start = (uintptr_t)r->base + p0 * (long)psize;
	a->end = (uintptr_t)r->base + p1 * (long)psize;
	if (p1 > p0 && rng_chance(rng, 15))
		a->end -= rng_range(rng, 1, psize - 1);
}

static uint64_t gen_vec_len(struct rng *rng)
{
	unsigned int c = rng_below(rng, 100);

	if (c < 10)
		return 1;
	if (c < 30)
		return rng_range(rng, 2, 8);
	if (c < 50)
		return rng_range(rng, 9, 64);
	return rng_range(rng, 65, VEC_CAP);
}

static uint64_t gen_max_pages(struct rng *rng, bool track)
{
	unsigned int c = rng_below(rng, 100);

	if (c < (track ? 80 : 60))
		return 0;
	if (c < (track ? 88 : 75))
		return rng_range(rng, 1, 8);
	if (c < 90)
		return rng_range(rng, 9, 600);
	return HPAGE_PAGES * rng_range(rng, 1, 2);
}

/* Fill in what follows from the argument */
static void scan_prepare(const struct region *r, struct scan *s)
{
	const struct pm_scan_arg *a = &s->arg;
	uint64_t lo, hi, base = (uintptr_t)r->base;
	uint64_t hsz = mt_align(r->mt);

	s->end = (a->end + psize - 1) & ~(uint64_t)(psize - 1);
	s->wp = a->flags & PM_SCAN_WP_MATCHING;
	s->vec_ptr = a->vec;
	s->has_vec = a->vec && a->vec_len;
	lo = a->start > base ? a->start : base;
	hi = s->end < base + r->len ? s->end : base + r->len;
	s->first = lo < hi ? (lo - base) / psize : 0;
	s->last = lo < hi ? (hi - base) / psize : 0;
	/*
	 * A hugetlb page that a WP scan covers only in part, or that what
	 * is left of max_pages cannot take whole: upstream backs it out of
	 * the report, leaves walk_end at its start and walks on, this tree
	 * reports it unprotected (see Documentation/admin-guide/mm/
	 * pagemap.rst). Neither misses a write it promises to report, but
	 * walk_end then says little: such scans are only checked for form.
	 */
	s->quirk = r->mt->hugetlb && s->wp &&
		   ((lo < hi && ((lo | hi) & (hsz - 1))) ||
		    (s->has_vec && a->max_pages % HPAGE_PAGES));
	/*
	 * Upstream cuts a written THP's region at max_pages, then splits the
	 * THP to protect only what it reports and takes the region back, but
	 * not the walk_end of the cut: the walk goes on at pte level, and
	 * walk_end can end up short of what it reported or of the end.
	 */
	s->loose = s->quirk || (feat.thp_stale_walk_end && s->wp &&
				s->has_vec && a->max_pages && !r->mt->hugetlb);
	/*
	 * Upstream sets walk_end where a batch stops, not where the walk
	 * ends: a scan that needs more than one batch of 512 regions and
	 * then completes keeps the first batch's stop as walk_end.
	 */
	if (feat.stale_walk_end && s->has_vec && a->vec_len > 512)
		s->loose = true;
}

static void gen_scan(struct worker *w, const struct region *r,
		     struct scan *s, bool track)
{
	struct pm_scan_arg *a = &s->arg;
	struct rng *rng = &w->rng;

	memset(s, 0, sizeof(*s));
	a->size = sizeof(*a);
	gen_range(w, r, a);
	if (track)
		a->flags = (rng_chance(rng, 90) ? PM_SCAN_WP_MATCHING : 0) |
			   (rng_chance(rng, 10) ? PM_SCAN_CHECK_WPASYNC : 0);
	else
		a->flags = (rng_chance(rng, 35) ? PM_SCAN_WP_MATCHING : 0) |
			   (rng_chance(rng, 15) ? PM_SCAN_CHECK_WPASYNC : 0);
	gen_masks(w, a, track);
	a->vec = (uintptr_t)w->vec;
	a->vec_len = gen_vec_len(rng);
	if (rng_chance(rng, 5)) {
		a->vec = 0;
		a->vec_len = 0;
	} else if (rng_chance(rng, 3)) {
		a->vec_len = 0;
	}
	a->max_pages = gen_max_pages(rng, track);
	scan_prepare(r, s);
}

static void poison_vec(struct page_region *v, uint64_t vec_len)
{
	uint64_t n = vec_len + 4 < VEC_CAP ? vec_len + 4 : VEC_CAP;

	memset(v, 0xa5, n * sizeof(*v));
}

static void scan_exec(struct worker *w, struct region *r, struct scan *s)
{
	size_t i;

	poison_vec(w->vec, s->arg.vec_len);
	s->arg.walk_end = CANARY;
	s->hslot = -1;
	if (s->wp)
		s->hslot = hider_enter(r, &s->s0);
	else
		s->s0 = stamp();
	for (i = s->first; i < s->last; i++)
		w->pre[i - s->first] = aload(&r->pg[i].wd);
	if (s->remote) {
		s->ret = remote_scan(w, s);
	} else {
		s->ret = ioctl(pagemap_fd, PAGEMAP_SCAN, &s->arg);
		s->err = errno;
	}
	for (i = s->first; i < s->last; i++)
		w->post[i - s->first] = aload(&r->pg[i].wb);
	s->s1 = stamp();
}

static void scan_describe(const struct scan *s, const struct region *r)
{
	const struct pm_scan_arg *a = &s->arg;

	fail_append("  %s scan of %s region %d [%p, %p)\n",
		    s->remote ? "remote" : "local", r->mt->name, r->idx,
		    r->base, r->base + r->len);
	fail_append("  start %#llx (page %+ld) end %#llx (page %+ld)\n",
		    (unsigned long long)a->start,
		    ((long)a->start - (long)(uintptr_t)r->base) / (long)psize,
		    (unsigned long long)a->end,
		    ((long)s->end - (long)(uintptr_t)r->base) / (long)psize);
	fail_append("  flags %#llx inverted %#llx mask %#llx anyof %#llx return %#llx\n",
		    (unsigned long long)a->flags,
		    (unsigned long long)a->category_inverted,
		    (unsigned long long)a->category_mask,
		    (unsigned long long)a->category_anyof_mask,
		    (unsigned long long)a->return_mask);
	fail_append("  vec %s vec_len %llu max_pages %llu\n",
		    a->vec ? "yes" : "no", (unsigned long long)a->vec_len,
		    (unsigned long long)a->max_pages);
	fail_append("  returned %ld (%s), walk_end %#llx (page %+ld), stamps %llu..%llu\n",
		    s->ret, s->ret < 0 ? strerror(s->err) : "ok",
		    (unsigned long long)a->walk_end,
		    ((long)a->walk_end - (long)(uintptr_t)r->base) /
		    (long)psize,
		    (unsigned long long)s->s0, (unsigned long long)s->s1);
}

static void regions_describe(const struct worker *w, const struct region *r,
			     long n)
{
	long i;

	for (i = 0; i < n && i < 40; i++)
		fail_append("    [%ld] pages %+ld..%+ld categories %#llx\n", i,
			    ((long)w->vec[i].start - (long)(uintptr_t)r->base) /
			    (long)psize,
			    ((long)w->vec[i].end - (long)(uintptr_t)r->base) /
			    (long)psize,
			    (unsigned long long)w->vec[i].categories);
	if (n > 40)
		fail_append("    ... %ld regions in all\n", n);
}

static void scan_fail(struct worker *w, struct region *r,
		      const struct scan *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!fail_start("PAGEMAP_SCAN: %s", line))
		return;
	scan_describe(s, r);
	if (s->ret > 0)
		regions_describe(w, r, s->ret);
	fail_done();
}

/* Is some page of [start, end) outside the region's async uffd-wp VMAs? */
static bool range_has_unregistered(const struct region *r, uint64_t start,
				   uint64_t end)
{
	uint64_t addr;
	long p;

	for (addr = start; addr < end; addr += psize) {
		p = region_page(r, addr);
		if (p < 0 || !r->reg[p])
			return true;
	}
	return false;
}

/* What the categories of one region can never say together */
static const char *incoherent_cats(const struct region *r, uint64_t c,
				   uint64_t known)
{
	if ((known & (PAGE_IS_PFNZERO | PAGE_IS_PRESENT)) ==
	    (PAGE_IS_PFNZERO | PAGE_IS_PRESENT) &&
	    (c & PAGE_IS_PFNZERO) && !(c & PAGE_IS_PRESENT))
		return "the zero page, not present";
	if ((c & PAGE_IS_PRESENT) && (c & PAGE_IS_SWAPPED))
		return "present and swapped";
	if ((known & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)) ==
	    (PAGE_IS_PRESENT | PAGE_IS_SWAPPED) && (c & PAGE_IS_FILE) &&
	    !(c & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)))
		return "a file page with no entry";
	if ((c & PAGE_IS_FILE) && (r->type == MT_ANON || r->type == MT_THP ||
				   r->type == MT_HUGETLB))
		return "a file page in anonymous private memory";
	if ((c & PAGE_IS_SOFT_DIRTY) && !feat.soft_dirty && !opt.no_soft_dirty)
		return "soft-dirty on a kernel without soft-dirty";
	return NULL;
}

/* What w->reported says of a page: not in the answer is 0 */
#define REPORTED	1	/* reported written, or with W not asked */
#define REPORTED_CLEAN	2	/* reported, PAGE_IS_WRITTEN clear */

/* The page-by-page part of check_regions() for region @i */
static bool check_region_pages(struct worker *w, struct region *r,
			       const struct scan *s, long i)
{
	const struct page_region *v = &w->vec[i];
	uint64_t ret_mask = s->arg.return_mask, addr;
	long p;

	for (addr = v->start; addr < v->end; addr += psize) {
		p = region_page(r, addr);
		if (p < 0) {
			if (s->wp) {
				scan_fail(w, r, s,
					  "region %ld reports %#llx, in no async uffd-wp VMA, with PM_SCAN_WP_MATCHING",
					  i, (unsigned long long)addr);
				return false;
			}
			if (v->categories & PAGE_IS_WPALLOWED) {
				scan_fail(w, r, s,
					  "region %ld: %#llx is not registered but PAGE_IS_WPALLOWED",
					  i, (unsigned long long)addr);
				return false;
			}
			continue;
		}
		/*
		 * A page reported without PAGE_IS_WRITTEN, where return_mask
		 * asks for it, is reported as not written: as for a page left
		 * out, a write done before the scan makes that a lost write.
		 */
		w->reported[p] = (ret_mask & W) && !(v->categories & W) ?
				 REPORTED_CLEAN : REPORTED;
		if (s->wp && !r->reg[p]) {
			scan_fail(w, r, s,
				  "region %ld reports page %ld, not registered, with PM_SCAN_WP_MATCHING",
				  i, p);
			return false;
		}
		if ((ret_mask & PAGE_IS_WPALLOWED) &&
		    !(v->categories & PAGE_IS_WPALLOWED) != !r->reg[p]) {
			scan_fail(w, r, s,
				  "region %ld: page %ld is %sregistered but %s PAGE_IS_WPALLOWED",
				  i, p, r->reg[p] ? "" : "not ",
				  r->reg[p] ? "lacks" : "has");
			return false;
		}
	}
	return true;
}

/*
 * Upstream takes back the region of a THP that a WP scan splits, but
 * leaves the slot it used: the pte-level region that follows is not merged
 * with the one before, though their categories are equal.
 */
static bool thp_split_boundary(const struct region *r, const struct scan *s,
			       uint64_t addr)
{
	return feat.thp_split_unmerged && s->wp && !r->mt->hugetlb &&
	       !(addr & (HPAGE_SIZE - 1));
}

/*
 * The kernel gathers at most 512 regions per batch and drops the mmap lock
 * between two (pagemap.rst): while other threads run, or ksmd on merged
 * pages, the page a batch stopped before may change and match the region
 * before it when the next batch starts there. With everything quiet, as in
 * final_scans(), regions must be merged across batches too.
 */
#define SCAN_BATCH		512
static bool workers_running;

static bool batch_boundary(const struct region *r, long i)
{
	return !(i % SCAN_BATCH) &&
	       (__atomic_load_n(&workers_running, __ATOMIC_RELAXED) ||
		r->merged);
}

/*
 * Check the form of a successful scan's answer: the return value,
 * walk_end and the regions. Marks the region pages reported in
 * w->reported. Returns false after reporting a failure.
 */
static bool check_regions(struct worker *w, struct region *r,
			  struct scan *s, uint64_t *pages)
{
	const struct pm_scan_arg *a = &s->arg;
	uint64_t prev_end = 0, prev_cats = 0, total = 0, known = a->return_mask;
	const struct page_region *v = w->vec;
	uint64_t checked, x;
	const char *why;
	long i, n = s->ret;

	memset(w->reported, 0, r->npages);
	if (!s->has_vec && n) {
		scan_fail(w, r, s, "returned %ld regions without an output array", n);
		return false;
	}
	if (s->has_vec && (uint64_t)n > a->vec_len) {
		scan_fail(w, r, s, "returned %ld regions, more than vec_len", n);
		return false;
	}
	if (a->walk_end == CANARY) {
		scan_fail(w, r, s, "walk_end was not written");
		return false;
	}
	if ((a->walk_end & (psize - 1)) || a->walk_end < a->start ||
	    a->walk_end > s->end) {
		scan_fail(w, r, s, "walk_end is not a page address in [start, end]");
		return false;
	}
	for (i = 0; i < n; i++) {
		if (v[i].start >= v[i].end || ((v[i].start | v[i].end) &
					       (psize - 1))) {
			scan_fail(w, r, s, "region %ld is empty or not page aligned", i);
			return false;
		}
		if (v[i].start < a->start || v[i].end > s->end) {
			scan_fail(w, r, s, "region %ld lies outside the range", i);
			return false;
		}
		if (i && v[i].start < prev_end) {
			scan_fail(w, r, s, "region %ld overlaps or precedes region %ld", i, i - 1);
			return false;
		}
		if (i && v[i].start == prev_end && v[i].categories == prev_cats &&
		    !thp_split_boundary(r, s, v[i].start) &&
		    !batch_boundary(r, i)) {
			scan_fail(w, r, s,
				  "regions %ld and %ld are adjacent with equal categories, not merged",
				  i - 1, i);
			return false;
		}
		if (v[i].categories & ~known) {
			scan_fail(w, r, s, "region %ld has categories outside return_mask", i);
			return false;
		}
		if (!s->loose && v[i].end > a->walk_end) {
			scan_fail(w, r, s, "region %ld ends beyond walk_end", i);
			return false;
		}
		x = v[i].categories ^ a->category_inverted;
		checked = a->category_mask & known;
		if ((x & checked) != checked ||
		    (a->category_anyof_mask &&
		     !(a->category_anyof_mask & ~known) &&
		     !(x & a->category_anyof_mask))) {
			scan_fail(w, r, s, "region %ld has categories the masks do not select", i);
			return false;
		}
		why = incoherent_cats(r, v[i].categories, known);
		if (why) {
			scan_fail(w, r, s, "region %ld: %s", i, why);
			return false;
		}
		if (!check_region_pages(w, r, s, i))
			return false;
		total += (v[i].end - v[i].start) / psize;
		prev_end = v[i].end;
		prev_cats = v[i].categories;
	}
	if (s->has_vec && a->max_pages && total > a->max_pages) {
		scan_fail(w, r, s, "reported %llu pages, more than max_pages",
			  (unsigned long long)total);
		return false;
	}
	if (s->vec_ptr) {
		uint64_t end = (uint64_t)n + 4 + (s->has_vec ? a->vec_len - n : 0);
		const uint64_t *q;

		if (end > VEC_CAP)
			end = VEC_CAP;
		for (q = (const uint64_t *)&v[n]; q < (const uint64_t *)&v[end];
		     q++)
			if (*q != POISON) {
				scan_fail(w, r, s, "vec was written past the %ld regions returned",
					  n);
				return false;
			}
	}
	if (a->walk_end < s->end && !s->loose &&
	    !(s->has_vec && ((uint64_t)n == a->vec_len ||
			     (a->max_pages && total == a->max_pages)))) {
		scan_fail(w, r, s,
			  "stopped before the end with vec not full and max_pages not reached");
		return false;
	}
	if ((a->flags & PM_SCAN_CHECK_WPASYNC) &&
	    range_has_unregistered(r, a->start, a->walk_end)) {
		scan_fail(w, r, s,
			  "PM_SCAN_CHECK_WPASYNC walked a VMA without async uffd-wp and succeeded");
		return false;
	}
	*pages = total;
	return true;
}

static void lost_write(struct worker *w, struct region *r,
		       const struct scan *s, size_t p)
{
	const struct page_state *pg = &r->pg[p];
	uint64_t pme = 0;

	pread(pagemap_fd, &pme, sizeof(pme),
	      (uintptr_t)page_addr(r, p) / psize * sizeof(pme));
	if (!fail_start("LOST WRITE: %s region %d page %zu (%p) was written and is not reported",
			r->mt->name, r->idx, p, page_addr(r, p)))
		return;
	fail_append("  write ticket %llu done before the scan (stamp %llu)\n",
		    (unsigned long long)w->pre[p - s->first],
		    (unsigned long long)s->s0);
	fail_append("  last report covered up to %llu, protection reset at %llu\n",
		    (unsigned long long)aload(&pg->cov),
		    (unsigned long long)aload(&pg->dis));
	fail_append("  transient protection ended at %llu\n",
		    (unsigned long long)aload(&pg->tp));
	fail_append("  pagemap now %#llx: present %d swapped %d uffd-wp %d\n",
		    (unsigned long long)pme, !!(pme & PM_PRESENT),
		    !!(pme & PM_SWAP), !!(pme & PM_UFFD_WP));
	fail_append("  registered %d, prot %d\n", r->reg[p], r->prot[p]);
	scan_describe(s, r);
	regions_describe(w, r, s->ret);
	fail_done();
}

/*
 * Is the scan held to every pending write of the pages it reached? Not
 * where the kernel may legitimately miss some, as explained here.
 */
static bool scan_judged(const struct region *r, const struct scan *s)
{
	/* Without an output array nothing is reported, nothing is missed */
	if (!s->has_vec || s->quirk || !selects_written(&s->arg))
		return false;
	/*
	 * Without PM_SCAN_WP_MATCHING, a hugetlb entry is read without its
	 * page table lock; a fault on any part of the huge page (COW after
	 * fork, an async uffd-wp fault), migration or UFFDIO_WRITEPROTECT
	 * clears it for a moment, and an empty hugetlb entry is not written:
	 * such a scan can miss a written huge page. That is so upstream too;
	 * only protecting scans, which lock, are held to every write.
	 */
	if (r->mt->hugetlb && !s->wp)
		return false;
	if (!feat.empty_is_written && mt_reclaim_empties(r->mt) &&
	    !tracker_query(&s->arg))
		return false;
	return true;
}

/* A write done before the scan that nothing since covered or excused */
static bool page_pending(const struct region *r, const struct worker *w,
			 const struct scan *s, size_t p)
{
	const struct page_state *pg = &r->pg[p];
	uint64_t pre = w->pre[p - s->first];

	return pre > aload(&pg->cov) && pre >= aload(&pg->dis);
}

/*
 * The truth model's verdict: every page the scan reached, that it had to
 * report if written and did not report (or reported as not written),
 * must have no write that was done before the scan started and is
 * neither covered by an earlier report nor older than the last reset of
 * its protection.
 */
static void check_lost_writes(struct worker *w, struct region *r,
			      const struct scan *s)
{
	size_t p;

	if (!scan_judged(r, s))
		return;
	for (p = s->first; p < s->last; p++) {
		if ((uintptr_t)page_addr(r, p) >= s->arg.walk_end)
			break;
		if (!r->reg[p] || w->reported[p] == REPORTED)
			continue;
		w->pages_checked++;
		if (!page_pending(r, w, s, p))
			continue;
		if (aload(&r->pg[p].tp) > s->s0) {
			w->excused++;
			continue;
		}
		lost_write(w, r, s, p);
		return;
	}
}

/*
 * Before the scan is recorded: of the pages with a pending write in its
 * range, how many it was judged on (the verdict of check_lost_writes()
 * applies to them: reported written, or a failure), and how many it was
 * not (a scan that need not report every write, pages past walk_end,
 * pages reported with PAGE_IS_WRITTEN not asked).
 */
static void count_pending(struct worker *w, const struct region *r,
			  const struct scan *s)
{
	bool judged = scan_judged(r, s);
	size_t p;

	for (p = s->first; p < s->last; p++) {
		if (!r->reg[p] || !page_pending(r, w, s, p))
			continue;
		if (w->reported[p] == REPORTED)
			w->pending_seen++;
		if (judged && (uintptr_t)page_addr(r, p) < s->arg.walk_end &&
		    (w->reported[p] != REPORTED ||
		     (s->arg.return_mask & W) || (s->arg.category_mask & W)))
			w->pend_checked++;
		else
			w->pend_skipped++;
	}
}

/* Record what a successful scan did to the model */
static void scan_record(struct worker *w, struct region *r,
			const struct scan *s)
{
	size_t p;

	if (!s->wp)
		return;
	if (!s->has_vec) {
		/* It protected what was written, and told nobody */
		model_forgive(r, s->first, s->last - s->first, s->s1);
		return;
	}
	/* A page reported not written is not covered: it was not, then */
	for (p = s->first; p < s->last; p++)
		if (w->reported[p] == REPORTED)
			amax(&r->pg[p].cov, w->post[p - s->first]);
}

static void scan_failed(struct worker *w, struct region *r,
			const struct scan *s)
{
	const struct pm_scan_arg *a = &s->arg;
	size_t p;

	if (s->err == EPERM && (a->flags & PM_SCAN_CHECK_WPASYNC)) {
		if (!range_has_unregistered(r, a->start, s->end))
			scan_fail(w, r, s,
				  "EPERM with PM_SCAN_CHECK_WPASYNC, but every VMA of the range is async uffd-wp");
		else if (a->walk_end == CANARY ||
			 (a->walk_end & (psize - 1)) ||
			 a->walk_end < a->start || a->walk_end > s->end)
			scan_fail(w, r, s, "EPERM with walk_end not set to a page in [start, end]");
	} else if (s->err != ENOMEM) {
		scan_fail(w, r, s, "failed with %s", strerror(s->err));
	}
	if (!s->wp)
		return;
	/*
	 * It may have protected pages before it failed. This tree undoes
	 * that (only scans that overlapped may have missed those pages);
	 * upstream leaves them protected and reported to nobody.
	 */
	for (p = s->first; p < s->last; p++) {
		if (feat.undo_on_error)
			amax(&r->pg[p].tp, s->s1);
		else
			amax(&r->pg[p].dis, s->s1);
	}
}

static void scan_judge(struct worker *w, struct region *r, struct scan *s)
{
	uint64_t pages = 0;
	bool ok;

	if (s->ret < 0) {
		scan_failed(w, r, s);
		if (s->hslot >= 0)
			hider_leave(r, s->hslot);
		return;
	}
	ok = check_regions(w, r, s, &pages);
	if (ok)
		count_pending(w, r, s);
	if (ok)
		scan_record(w, r, s);
	else if (s->wp)
		model_forgive(r, s->first, s->last - s->first, s->s1);
	if (s->hslot >= 0)
		hider_leave(r, s->hslot);
	if (!ok)
		return;
	/* Scans that protected pages meanwhile must have said so first */
	hider_wait_before(r, s->s1);
	check_lost_writes(w, r, s);
}

static void log_scan(struct log_entry *e, const struct scan *s)
{
	const struct pm_scan_arg *a = &s->arg;

	e->a[0] = a->start;
	e->a[1] = a->end;
	e->a[2] = a->flags | (s->remote ? 1ULL << 32 : 0) |
		  (a->vec ? 1ULL << 33 : 0);
	e->a[3] = a->category_inverted | a->category_mask << 8 |
		  a->category_anyof_mask << 16 | a->return_mask << 24;
	e->a[4] = a->vec_len;
	e->a[5] = a->max_pages;
	e->a[6] = a->walk_end;
}

static void op_scan(struct worker *w, struct region *r, enum op_kind op)
{
	struct log_entry *e;
	struct scan s;

	pthread_rwlock_rdlock(&r->lock);
	gen_scan(w, r, &s, op == OP_SCAN_TRACK);
	s.remote = op == OP_SCAN_REMOTE;
	e = log_begin(w, op, r);
	log_scan(e, &s);
	scan_exec(w, r, &s);
	e->a[6] = s.arg.walk_end;
	log_end(e, s.ret, s.err);
	scan_judge(w, r, &s);
	pthread_rwlock_unlock(&r->lock);
}

/* PAGEMAP_SCAN with arguments that must be refused */

enum bad_case {
	BAD_SIZE,
	BAD_FLAGS,
	BAD_CATEGORY,
	BAD_START_UNALIGNED,
	BAD_REVERSED,
	BAD_END_KERNEL,
	BAD_START_KERNEL,
	BAD_VEC_LEN_NO_VEC,
	BAD_VEC_KERNEL,
	BAD_VEC_OVERFLOW,
	BAD_ARG_NULL,
	BAD_ARG_UNMAPPED,
	BAD_ARG_CROSSING,
	BAD_ARG_READONLY,
	BAD_VEC_READONLY,
	BAD_VEC_PARTIAL,
	BAD_CMD,
	BAD_SIZE_AND_FLAGS,
	BAD_UNALIGNED_BEFORE_RANGE,
	BAD_RANGE_BEFORE_VEC,
	BAD_FLAGS_AND_CATEGORY,
	BAD_RANGE_AND_VEC_OVERFLOW,
	OK_VEC_WITHOUT_LEN,
	OK_EMPTY_RANGE,
	BAD_NR
};

static const char * const bad_names[BAD_NR] = {
	"size", "flags", "category", "start_unaligned", "reversed",
	"end_kernel", "start_kernel", "vec_len_no_vec", "vec_kernel",
	"vec_overflow", "arg_null", "arg_unmapped", "arg_crossing",
	"arg_readonly", "vec_readonly", "vec_partial", "cmd",
	"size_and_flags", "unaligned_before_range", "range_before_vec",
	"flags_and_category", "range_and_vec_overflow", "vec_without_len",
	"empty_range",
};

/* The worker's argument area: RW, PROT_NONE, RO, RW, PROT_NONE pages */
#define ARG_RW		0
#define ARG_NONE	1
#define ARG_RO		2
#define ARG_VEC		3

struct bad_scan {
	struct pm_scan_arg a;
	void *argp;		/* where the ioctl reads it from */
	unsigned long cmd;
	int expect;		/* errno, or 0 for success */
	bool maybe_ok;		/* success with at most ok_max regions too */
	uint64_t ok_max;
	bool walks;		/* may scan, and protect, before failing */
	bool pre_scan;		/* fails before scanning: walk_end kept */
};

static char *arg_page(struct worker *w, int i)
{
	return w->argarea + i * psize;
}

/* Registered pages [*first, *first + *n) of the region, if there are any */
static bool registered_run(struct worker *w, const struct region *r,
			   size_t *first, size_t *n)
{
	size_t p, start = rng_below(&w->rng, r->npages), i;

	for (i = 0; i < r->npages; i++) {
		p = (start + i) % r->npages;
		if (r->reg[p])
			break;
	}
	if (i == r->npages)
		return false;
	*first = p;
	for (*n = 0; p + *n < r->npages && r->reg[p + *n] && *n < 64; (*n)++)
		;
	return true;
}

static void gen_bad(struct worker *w, const struct region *r,
		    struct bad_scan *b, enum bad_case c)
{
	struct pm_scan_arg *a = &b->a;
	struct rng *rng = &w->rng;
	__u64 *masks[4] = {
		&a->category_inverted, &a->category_mask,
		&a->category_anyof_mask, &a->return_mask,
	};
	static const uint64_t sizes[] = { 0, 8, 88, 95, 97, 104, 192 };
	size_t first = 0, n = 1;

	memset(b, 0, sizeof(*b));
	a->size = sizeof(*a);
	a->start = (uintptr_t)r->base;
	a->end = a->start + r->len;
	a->vec = (uintptr_t)w->vec;
	a->vec_len = rng_range(rng, 1, VEC_CAP);
	a->return_mask = random_cats(rng, 50);
	if (rng_chance(rng, 40))
		a->flags = PM_SCAN_WP_MATCHING;
	a->walk_end = CANARY;
	b->argp = arg_page(w, ARG_RW);
	b->cmd = PAGEMAP_SCAN;
	b->expect = EINVAL;
	b->pre_scan = true;

	switch (c) {
	case BAD_SIZE:
		a->size = rng_chance(rng, 70) ?
			  sizes[rng_below(rng, ARRAY_SIZE(sizes))] :
			  rng_next(rng) | 1;
		break;
	case BAD_FLAGS:
		a->flags |= 1ULL << rng_range(rng, 8, 63);
		break;
	case BAD_CATEGORY:
		*masks[rng_below(rng, 4)] |= 1ULL << rng_range(rng, 16, 63);
		break;
	case BAD_START_UNALIGNED:
		a->start += rng_range(rng, 1, psize - 1);
		break;
	case BAD_REVERSED:
		a->start += rng_below(rng, r->npages) * psize;
		a->end = a->start - rng_range(rng, 1, 4 * psize);
		b->expect = EFAULT;
		break;
	case BAD_END_KERNEL:
		a->end = rng_chance(rng, 50) ? KERNEL_ADDR + rng_below(rng, 1 << 20) :
			 ~0ULL - rng_below(rng, 1 << 20);
		b->expect = EFAULT;
		break;
	case BAD_START_KERNEL:
		a->start = KERNEL_ADDR + rng_below(rng, 64) * psize;
		a->end = a->start + rng_range(rng, 1, 16) * psize;
		b->expect = EFAULT;
		break;
	case BAD_VEC_LEN_NO_VEC:
		a->vec = 0;
		break;
	case BAD_VEC_KERNEL:
		a->vec = KERNEL_ADDR + rng_below(rng, 4096);
		b->expect = EFAULT;
		break;
	case BAD_VEC_OVERFLOW:
		a->vec_len = rng_chance(rng, 50) ? ~0ULL - rng_below(rng, 16) :
			     (1ULL << rng_range(rng, 59, 63)) + rng_below(rng, 16);
		b->expect = EFAULT;
		break;
	case BAD_ARG_NULL:
		b->argp = NULL;
		b->expect = EFAULT;
		break;
	case BAD_ARG_UNMAPPED:
		b->argp = arg_page(w, ARG_NONE) + rng_below(rng, psize / 8) * 8;
		b->expect = EFAULT;
		break;
	case BAD_ARG_CROSSING:
		/* Its first bytes readable, the rest in the PROT_NONE page */
		b->argp = arg_page(w, ARG_NONE) - rng_range(rng, 1, 11) * 8;
		b->expect = EFAULT;
		break;
	case BAD_ARG_READONLY:
		/* walk_end cannot be written back */
		b->argp = arg_page(w, ARG_RO);
		b->expect = EFAULT;
		b->walks = true;
		break;
	case BAD_VEC_READONLY:
	case BAD_VEC_PARTIAL:
		/*
		 * Something is surely reported: all masks 0 select every page
		 * of a scanned VMA, and a WP scan needs registered pages.
		 */
		if (a->flags && registered_run(w, r, &first, &n)) {
			/* A hugetlb page only part of which is asked is not */
			if (r->mt->hugetlb) {
				first = first / HPAGE_PAGES * HPAGE_PAGES;
				n = HPAGE_PAGES;
			}
			a->start = (uintptr_t)page_addr(r, first);
			a->end = a->start + n * psize;
		} else {
			a->flags = 0;
		}
		b->expect = EFAULT;
		b->walks = true;
		b->pre_scan = false;
		if (c == BAD_VEC_READONLY) {
			a->vec = (uintptr_t)arg_page(w, ARG_RO);
			a->vec_len = rng_range(rng, 1, psize / sizeof(struct page_region));
			break;
		}
		/* Room for a few regions, then the PROT_NONE page */
		b->ok_max = rng_range(rng, 1, 8);
		a->vec = (uintptr_t)(arg_page(w, ARG_VEC + 1) -
				     b->ok_max * sizeof(struct page_region));
		a->vec_len = b->ok_max + rng_range(rng, 1, 100);
		b->maybe_ok = true;
		break;
	case BAD_CMD:
		b->cmd = rng_chance(rng, 50) ?
			 _IOC(_IOC_READ | _IOC_WRITE, 'f', 16,
			      sizeof(*a) - rng_range(rng, 1, 8)) :
			 _IOWR('f', rng_range(rng, 17, 31), struct pm_scan_arg);
		break;
	case BAD_SIZE_AND_FLAGS:
		a->size = sizes[rng_below(rng, ARRAY_SIZE(sizes))];
		a->flags |= 1ULL << rng_range(rng, 8, 63);
		a->start += 1;
		break;
	case BAD_UNALIGNED_BEFORE_RANGE:
		/* Alignment is checked before the range is */
		a->start += rng_range(rng, 1, psize - 1);
		a->end = a->start - psize;
		a->vec = KERNEL_ADDR;
		break;
	case BAD_RANGE_BEFORE_VEC:
		/* The range is checked before vec_len without vec */
		a->end = a->start - psize;
		a->vec = 0;
		b->expect = EFAULT;
		break;
	case BAD_FLAGS_AND_CATEGORY:
		a->flags |= 1ULL << rng_range(rng, 8, 63);
		*masks[rng_below(rng, 4)] |= 1ULL << rng_range(rng, 16, 63);
		a->start = KERNEL_ADDR;
		break;
	case BAD_RANGE_AND_VEC_OVERFLOW:
		a->end = KERNEL_ADDR;
		a->vec_len = ~0ULL;
		b->expect = EFAULT;
		break;
	case OK_VEC_WITHOUT_LEN:
		/* As if there were no vec: nothing is written there */
		a->vec_len = 0;
		b->expect = 0;
		b->walks = true;
		b->pre_scan = false;
		break;
	case OK_EMPTY_RANGE:
		a->start += rng_below(rng, r->npages) * psize;
		a->end = a->start;
		b->expect = 0;
		b->pre_scan = false;
		break;
	default:
		break;
	}
}

static void put_arg(struct worker *w, struct bad_scan *b)
{
	char *ro = arg_page(w, ARG_RO);

	if (b->argp == ro) {
		mprotect(ro, psize, PROT_READ | PROT_WRITE);
		memcpy(ro, &b->a, sizeof(b->a));
		mprotect(ro, psize, PROT_READ);
	} else if (b->argp == arg_page(w, ARG_RW)) {
		memcpy(b->argp, &b->a, sizeof(b->a));
	} else if (b->argp) {
		/* Only the part that can be written, up to the hole */
		char *hole = arg_page(w, ARG_NONE);

		if ((char *)b->argp < hole)
			memcpy(b->argp, &b->a, hole - (char *)b->argp);
	}
}

static void op_scan_bad(struct worker *w, struct region *r)
{
	enum bad_case c = rng_below(&w->rng, BAD_NR);
	struct log_entry *e;
	struct bad_scan b;
	uint64_t s0 = 0, walk_end = CANARY;
	int hslot = -1, err;
	bool wp;
	long ret;

	pthread_rwlock_rdlock(&r->lock);
	gen_bad(w, r, &b, c);
	wp = b.a.flags & PM_SCAN_WP_MATCHING;
	put_arg(w, &b);
	poison_vec(w->vec, 8);
	e = log_begin(w, OP_SCAN_BAD, r);
	e->a[0] = b.a.start;
	e->a[1] = b.a.end;
	e->a[2] = b.a.flags;
	e->a[3] = c;
	e->a[4] = b.a.vec_len;
	e->a[5] = b.a.vec;
	if (b.walks && wp)
		hslot = hider_enter(r, &s0);
	ret = ioctl(pagemap_fd, b.cmd, b.argp);
	err = errno;
	if (b.argp == arg_page(w, ARG_RW))
		walk_end = ((struct pm_scan_arg *)b.argp)->walk_end;
	log_end(e, ret, err);

	if (hslot >= 0) {
		/*
		 * What it protected is forgiven: upstream keeps pages it
		 * protected when the call fails; this tree undoes them, but
		 * scans that overlapped may have seen them protected.
		 */
		size_t p;
		uint64_t s1 = stamp();

		for (p = 0; p < r->npages; p++) {
			if (ret < 0 && feat.undo_on_error && !b.maybe_ok)
				amax(&r->pg[p].tp, s1);
			else
				amax(&r->pg[p].dis, s1);
		}
		hider_leave(r, hslot);
	}
	if (ret < 0 && err != b.expect)
		FAIL("PAGEMAP_SCAN with bad argument (%s) failed with %s, not %s",
		     bad_names[c], strerror(err), strerror(b.expect));
	else if (ret >= 0 && b.expect && !(b.maybe_ok && (uint64_t)ret <= b.ok_max))
		FAIL("PAGEMAP_SCAN with bad argument (%s) returned %ld, expected %s",
		     bad_names[c], ret, strerror(b.expect));
	else if (ret > 0 && !b.expect)
		FAIL("PAGEMAP_SCAN (%s) returned %ld regions, expected 0",
		     bad_names[c], ret);
	else if (b.pre_scan && walk_end != CANARY)
		FAIL("PAGEMAP_SCAN (%s) refused its argument but wrote walk_end",
		     bad_names[c]);
	else if (c == OK_VEC_WITHOUT_LEN && w->vec[0].start != POISON)
		FAIL("PAGEMAP_SCAN with vec_len 0 wrote to vec");
	else if (c == OK_EMPTY_RANGE && walk_end != b.a.end)
		FAIL("PAGEMAP_SCAN of an empty range: walk_end %#llx, not end %#llx",
		     (unsigned long long)walk_end, (unsigned long long)b.a.end);
	pthread_rwlock_unlock(&r->lock);
}

/*
 * The second process: it scans this one through /proc/<pid>/pagemap, as
 * CRIU does, and sends the answers back.
 */
struct remote_req {
	struct pm_scan_arg arg;
	int vec_ptr;
};

struct remote_rep {
	int64_t ret;
	int32_t err;
	uint64_t walk_end;
	uint32_t n;
	struct page_region v[VEC_CAP];
};

static void remote_serve(int sock, pid_t parent)
{
	static struct remote_rep rep;
	struct remote_req req;
	char path[64];
	int fd, err;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", parent);
	fd = open(path, O_RDONLY);
	err = fd < 0 ? errno : 0;
	if (send(sock, &err, sizeof(err), 0) != sizeof(err) || fd < 0)
		_exit(0);
	while (recv(sock, &req, sizeof(req), 0) == sizeof(req)) {
		n = req.arg.vec_len + 4 < VEC_CAP ? req.arg.vec_len + 4 :
			VEC_CAP;
		if (!req.vec_ptr)
			n = 0;
		memset(rep.v, 0xa5, n * sizeof(rep.v[0]));
		if (req.vec_ptr)
			req.arg.vec = (uintptr_t)rep.v;
		req.arg.walk_end = CANARY;
		rep.ret = ioctl(fd, PAGEMAP_SCAN, &req.arg);
		rep.err = errno;
		rep.walk_end = req.arg.walk_end;
		rep.n = n;
		if (send(sock, &rep, offsetof(struct remote_rep, v) +
			 n * sizeof(rep.v[0]), 0) < 0)
			break;
	}
	_exit(0);
}

static bool remote_start(void)
{
	pid_t parent = getpid();
	int sv[2], err = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return false;
	remote_pid = fork();
	if (remote_pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	if (!remote_pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		remote_serve(sv[1], parent);
	}
	close(sv[1]);
	remote_sock = sv[0];
	if (recv(remote_sock, &err, sizeof(err), 0) != sizeof(err) || err) {
		ksft_print_msg("second process cannot open our pagemap: %s\n",
			       strerror(err ? err : EPIPE));
		return false;
	}
	return true;
}

static void remote_stop(void)
{
	if (remote_sock >= 0)
		close(remote_sock);
	remote_sock = -1;
	if (remote_pid > 0)
		waitpid(remote_pid, NULL, 0);
	remote_pid = 0;
	remote_ok = false;
}

static long remote_scan(struct worker *w, struct scan *s)
{
	static struct remote_rep rep;
	struct remote_req req = {
		.arg = s->arg,
		.vec_ptr = s->vec_ptr,
	};
	ssize_t n;
	long ret;

	pthread_mutex_lock(&remote_lock);
	n = send(remote_sock, &req, sizeof(req), 0);
	if (n == sizeof(req))
		n = recv(remote_sock, &rep, sizeof(rep), 0);
	if (n < (ssize_t)offsetof(struct remote_rep, v)) {
		pthread_mutex_unlock(&remote_lock);
		FAIL("the second process does not answer");
		s->err = EPIPE;
		return -1;
	}
	memcpy(w->vec, rep.v, rep.n * sizeof(rep.v[0]));
	s->arg.walk_end = rep.walk_end;
	s->err = rep.err;
	ret = rep.ret;
	pthread_mutex_unlock(&remote_lock);
	return ret;
}

/* Userfaultfd operations */

/* What UFFDIO_WRITEPROTECT must give for this range and mode: 0, -errno */
static int expect_uffd_wp(const struct region *r, uint64_t start,
			  uint64_t len, uint64_t mode)
{
	uint64_t addr, mask = HPAGE_SIZE - 1;
	long p;

	if ((start | len) & (psize - 1) || !len)
		return -EINVAL;
	if (mode & ~(UFFDIO_WRITEPROTECT_MODE_WP |
		     UFFDIO_WRITEPROTECT_MODE_DONTWAKE))
		return -EINVAL;
	if ((mode & UFFDIO_WRITEPROTECT_MODE_WP) &&
	    (mode & UFFDIO_WRITEPROTECT_MODE_DONTWAKE))
		return -EINVAL;
	/* VMA by VMA: one not registered fails, a hugetlb one misaligned */
	for (addr = start; addr < start + len; addr += psize) {
		p = region_page(r, addr);
		if (p < 0 || !r->reg[p])
			return -ENOENT;
		if (r->mt->hugetlb && ((start | (start + len)) & mask))
			return -EINVAL;
	}
	return 0;
}

static void op_uffd_wp(struct worker *w, struct region *r)
{
	struct rng *rng = &w->rng;
	struct uffdio_writeprotect wp;
	uint64_t mode, s0 = 0, start, len;
	size_t first, n;
	struct log_entry *e;
	int hslot = -1, expect, err;
	unsigned int c;
	long ret;

	pthread_rwlock_rdlock(&r->lock);
	c = rng_below(rng, 100);
	if (c < 60) {
		first = 0;
		n = r->npages;
	} else {
		pick_run(w, r, 64, &first, &n);
	}
	start = (uintptr_t)page_addr(r, first);
	len = n * psize;
	if (c >= 90) {
		switch (rng_below(rng, 4)) {
		case 0:
			start += rng_range(rng, 1, psize - 1);
			break;
		case 1:
			len = 0;
			break;
		case 2:
			/* Into the guard after it */
			len = (uintptr_t)r->base + r->len - start +
			      rng_range(rng, 1, 4) * psize;
			break;
		default:
			start = (uintptr_t)r->base - psize;
			len = psize;
			break;
		}
	}
	c = rng_below(rng, 100);
	mode = c < 70 ? UFFDIO_WRITEPROTECT_MODE_WP :
	       c < 85 ? 0 :
	       c < 90 ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE :
	       c < 95 ? UFFDIO_WRITEPROTECT_MODE_WP |
			UFFDIO_WRITEPROTECT_MODE_DONTWAKE :
	       1ULL << rng_range(rng, 2, 63);
	expect = expect_uffd_wp(r, start, len, mode);
	/* What it may protect: the region's part of the range */
	range_pages(r, start, start + len, &first, &n);
	wp.range.start = start;
	wp.range.len = len;
	wp.mode = mode;
	e = log_begin(w, OP_UFFD_WP, r);
	e->a[0] = start;
	e->a[1] = len;
	e->a[2] = mode;
	if (mode & UFFDIO_WRITEPROTECT_MODE_WP)
		hslot = hider_enter(r, &s0);
	ret = ioctl(r->uffd, UFFDIO_WRITEPROTECT, &wp);
	err = errno;
	if (hslot >= 0) {
		/* Protected, reported to nobody: forgiven (also if it failed) */
		model_forgive(r, first, n, stamp());
		hider_leave(r, hslot);
	}
	log_end(e, ret, err);
	if (ret && err == EAGAIN && (r->features & UFFD_FEATURE_EVENT_FORK))
		goto out;
	if (ret ? -err != expect : expect != 0)
		FAIL("UFFDIO_WRITEPROTECT %s region %d [%#llx, +%#llx) mode %#llx: %s, not %s",
		     r->mt->name, r->idx, (unsigned long long)start,
		     (unsigned long long)len, (unsigned long long)mode,
		     ret ? strerror(err) : "success",
		     expect ? strerror(-expect) : "success");
out:
	pthread_rwlock_unlock(&r->lock);
}

static void expect_errno(const char *what, const struct region *r, long ret,
			 int err, int expect);

static bool uffd_unregister(struct region *r, size_t first, size_t n)
{
	struct uffdio_range range = {
		.start = (uintptr_t)page_addr(r, first),
		.len = n * psize,
	};

	if (ioctl(r->uffd, UFFDIO_UNREGISTER, &range)) {
		FAIL("UFFDIO_UNREGISTER %s region %d pages %zu+%zu: %s",
		     r->mt->name, r->idx, first, n, strerror(errno));
		return false;
	}
	memset(r->reg + first, 0, n);
	return true;
}

/*
 * UFFDIO_UNREGISTER checks that every VMA of the range could be
 * registered as it is: a regular file's VMA only can when registered for
 * async uffd-wp, so one that is not registered makes it fail.
 */
static bool unregister_refused(const struct region *r, size_t first,
			       size_t n)
{
	size_t i;

	if (r->type != MT_FILE && r->type != MT_FILE_SHARED)
		return false;
	for (i = first; i < first + n; i++)
		if (!r->reg[i])
			return true;
	return false;
}

/* Unregister all or part of the region, or register it all again */
static void op_uffd_rereg(struct worker *w, struct region *r)
{
	size_t unit = mt_align(r->mt) / psize, first, n;
	unsigned int c = rng_below(&w->rng, 100);
	struct uffdio_range range;
	struct log_entry *e;
	long ret;

	pthread_rwlock_wrlock(&r->lock);
	e = log_begin(w, OP_UFFD_REREG, r);
	if (c < 30) {
		first = rng_below(&w->rng, r->npages / unit) * unit;
		n = unit * rng_range(&w->rng, 1, (r->npages - first) / unit);
		e->a[0] = first;
		e->a[1] = n;
		if (!unregister_refused(r, first, n)) {
			uffd_unregister(r, first, n);
		} else {
			range.start = (uintptr_t)page_addr(r, first);
			range.len = n * psize;
			ret = ioctl(r->uffd, UFFDIO_UNREGISTER, &range);
			expect_errno("UFFDIO_UNREGISTER of a range with an unregistered file VMA",
				     r, ret, errno, EINVAL);
		}
	} else {
		e->a[0] = 0;
		e->a[1] = r->npages;
		e->a[2] = 1;
		if (c >= 80 || unregister_refused(r, 0, r->npages) ||
		    uffd_unregister(r, 0, r->npages))
			region_arm(r);
	}
	model_forgive_all(r);
	log_end(e, 0, 0);
	pthread_rwlock_unlock(&r->lock);
}

/* Close the userfaultfd (its VMAs lose their registration), start anew */
static void op_uffd_reopen(struct worker *w, struct region *r)
{
	struct log_entry *e;

	pthread_rwlock_wrlock(&r->lock);
	e = log_begin(w, OP_UFFD_REOPEN, r);
	pthread_rwlock_wrlock(&fork_lock);
	region_close_uffd(r);
	pthread_rwlock_unlock(&fork_lock);
	if (!region_new_uffd(r, &w->rng))
		region_arm(r);
	e->a[0] = r->features;
	model_forgive_all(r);
	log_end(e, 0, 0);
	pthread_rwlock_unlock(&r->lock);
}

static void expect_errno(const char *what, const struct region *r, long ret,
			 int err, int expect)
{
	if (ret == -1 && err == expect)
		return;
	FAIL("%s on %s region %d: %s, expected %s", what, r->mt->name,
	     r->idx, ret ? strerror(err) : "success", strerror(expect));
}

static int scratch_uffd(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* UFFDIO_API's handshake, and UFFDIO_REGISTER's refusals */
static void op_uffd_errno(struct worker *w, struct region *r)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_api api = { .api = UFFD_API };
	unsigned int c = rng_below(&w->rng, 8);
	uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	size_t first = 0, n = 0;
	struct log_entry *e;
	int fd = -1, err;
	long ret;

	pthread_rwlock_wrlock(&r->lock);
	e = log_begin(w, OP_UFFD_ERRNO, r);
	e->a[0] = c;
	if (!registered_run(w, r, &first, &n))
		c = c < 4 ? c : 0;
	if (r->mt->hugetlb) {
		first = first / HPAGE_PAGES * HPAGE_PAGES;
		n = HPAGE_PAGES;
	}
	reg.range.start = (uintptr_t)page_addr(r, first);
	reg.range.len = n * psize;
	switch (c) {
	case 0:
		/* Nothing but UFFDIO_API before UFFDIO_API */
		fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		ret = ioctl(fd, UFFDIO_REGISTER, &reg);
		expect_errno("UFFDIO_REGISTER before UFFDIO_API", r, ret,
			     errno, EINVAL);
		break;
	case 1:
		/* A bad handshake leaves the context to a good one, once */
		fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		api.api = 0xab;
		api.features = UFFD_FEATURE_WP_ASYNC;
		ret = ioctl(fd, UFFDIO_API, &api);
		expect_errno("UFFDIO_API with a bad api", r, ret, errno,
			     EINVAL);
		if (api.features || api.ioctls)
			FAIL("a refused UFFDIO_API leaves features %#llx ioctls %#llx, not zeroes",
			     (unsigned long long)api.features,
			     (unsigned long long)api.ioctls);
		api.api = UFFD_API;
		api.features = UFFD_FEATURE_WP_ASYNC;
		ret = ioctl(fd, UFFDIO_API, &api);
		if (ret || (api.features & want) != want)
			FAIL("UFFDIO_API after a refused one: %s, features %#llx",
			     ret ? strerror(errno) : "ok",
			     (unsigned long long)api.features);
		ret = ioctl(fd, UFFDIO_API, &api);
		expect_errno("a second UFFDIO_API", r, ret, errno, EINVAL);
		break;
	case 2:
		fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		api.features = UFFD_FEATURE_WP_ASYNC |
			       1ULL << rng_range(&w->rng, 40, 62);
		ret = ioctl(fd, UFFDIO_API, &api);
		expect_errno("UFFDIO_API with an unknown feature", r, ret,
			     errno, EINVAL);
		break;
	case 3:
		fd = scratch_uffd(UFFD_FEATURE_WP_ASYNC);
		reg.mode = rng_chance(&w->rng, 50) ? 0 :
			   1ULL << rng_range(&w->rng, 3, 63);
		ret = ioctl(fd, UFFDIO_REGISTER, &reg);
		expect_errno("UFFDIO_REGISTER with a bad mode", r, ret, errno,
			     EINVAL);
		break;
	case 4:
		/* A VMA belongs to one userfaultfd */
		fd = scratch_uffd(UFFD_FEATURE_WP_ASYNC);
		ret = ioctl(fd, UFFDIO_REGISTER, &reg);
		expect_errno("UFFDIO_REGISTER of a range another uffd has",
			     r, ret, errno, EBUSY);
		break;
	case 5:
		fd = scratch_uffd(UFFD_FEATURE_WP_ASYNC);
		if (rng_chance(&w->rng, 50))
			reg.range.start += rng_range(&w->rng, 1, psize - 1);
		else
			reg.range.len = 0;
		ret = ioctl(fd, UFFDIO_REGISTER, &reg);
		expect_errno("UFFDIO_REGISTER of a bad range", r, ret, errno,
			     EINVAL);
		break;
	default:
		/*
		 * A regular file can only be registered for async uffd-wp
		 * alone; other memory refuses MINOR unless shmem or hugetlb;
		 * what can be registered is busy.
		 */
		fd = scratch_uffd(c == 6 ? 0 : UFFD_FEATURE_WP_ASYNC);
		reg.mode = c == 6 ? UFFDIO_REGISTER_MODE_WP :
			   UFFDIO_REGISTER_MODE_MISSING |
			   UFFDIO_REGISTER_MODE_WP;
		if (r->type == MT_ANON || r->type == MT_THP)
			reg.mode = UFFDIO_REGISTER_MODE_MINOR;
		ret = ioctl(fd, UFFDIO_REGISTER, &reg);
		err = errno;
		expect_errno("UFFDIO_REGISTER in a mode this memory lacks", r,
			     ret, err,
			     r->type == MT_FILE || r->type == MT_FILE_SHARED ||
			     r->type == MT_ANON || r->type == MT_THP ?
			     EINVAL : EBUSY);
		break;
	}
	e->a[1] = reg.range.start;
	e->a[2] = reg.range.len;
	if (fd >= 0)
		close(fd);
	log_end(e, 0, 0);
	pthread_rwlock_unlock(&r->lock);
}

/* Operations on the VMAs: the model of the region starts over after them */

static void op_remap(struct worker *w, struct region *r, enum op_kind op)
{
	struct log_entry *e;
	int err = 0;

	pthread_rwlock_wrlock(&r->lock);
	e = log_begin(w, op, r);
	e->a[0] = (uintptr_t)r->base;
	if (op == OP_REMAP)
		err = unmap_region(r);
	if (!err)
		err = map_region(r, r->base);
	if (err)
		FAIL("%s of %s region %d: %s", op_desc[op].name, r->mt->name,
		     r->idx, strerror(-err));
	else
		region_arm(r);
	model_forgive_all(r);
	log_end(e, err, -err);
	pthread_rwlock_unlock(&r->lock);
}

/*
 * mremap() moves one VMA: make the region one again (mprotect, madvise
 * and partial registration split it) before moving it.
 */
static void region_make_one_vma(struct region *r)
{
	mprotect(r->base, r->len, PROT_READ | PROT_WRITE);
	memset(r->prot, PROT_READ | PROT_WRITE, r->npages);
	if (r->type == MT_ANON || r->type == MT_THP)
		madvise(r->base, r->len,
			r->type == MT_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	if (r->merged)
		madvise(r->base, r->len, MADV_MERGEABLE);
	uffd_register(r, 0, r->npages);
}

static bool region_is_one_vma(const struct region *r)
{
	unsigned long start, end;
	char line[512];
	bool one = false;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &start, &end) == 2 &&
		    start == (uintptr_t)r->base) {
			one = end == (uintptr_t)r->base + r->len;
			break;
		}
	fclose(f);
	return one;
}

static void op_mremap(struct worker *w, struct region *r)
{
	int flags = MREMAP_MAYMOVE | MREMAP_FIXED;
	struct log_entry *e;
	char *old, *to;
	bool dontunmap;
	void *p;

	pthread_rwlock_wrlock(&r->lock);
	old = r->base;
	to = r->half[!r->cur];
	e = log_begin(w, OP_MREMAP, r);
	e->a[0] = (uintptr_t)old;
	e->a[1] = (uintptr_t)to;
	if (r->tainted) {
		log_end(e, 0, 0);
		goto out;
	}
	region_make_one_vma(r);
	/*
	 * A kernel that moves several VMAs at once may fail part way and
	 * leave some moved: move only a region that is one VMA.
	 */
	if (!region_is_one_vma(r)) {
		model_forgive_all(r);
		log_end(e, 0, 0);
		goto out;
	}
	/* The old range stays mapped, so there is no hole to refill */
	dontunmap = !r->mt->hugetlb && rng_chance(&w->rng, 40);
	e->a[2] = dontunmap;
	p = mremap(old, r->len, r->len, flags |
		   (dontunmap ? MREMAP_DONTUNMAP : 0), to);
	if (p == MAP_FAILED && dontunmap)
		p = mremap(old, r->len, r->len, flags, to);
	if (p == MAP_FAILED) {
		/* Out of VMAs or memory: nothing moved */
		log_end(e, -1, errno);
		if (errno != ENOMEM)
			FAIL("mremap of %s region %d: %s", r->mt->name, r->idx,
			     strerror(errno));
		model_forgive_all(r);
		goto out;
	}
	r->cur = !r->cur;
	r->base = to;
	/* Give the old place back to our slot at once */
	if (dontunmap)
		p = mmap(old, r->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_FIXED | MAP_NORESERVE, -1, 0);
	else
		p = mmap(old, r->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
	if (p != old) {
		/* Someone else mapped it meanwhile: never move back there */
		if (p != MAP_FAILED)
			munmap(p, r->len);
		r->tainted = true;
	}
	/* Without EVENT_REMAP the moved VMA has lost its registration */
	memset(r->reg, 0, r->npages);
	region_arm(r);
	model_forgive_all(r);
	log_end(e, 0, 0);
out:
	pthread_rwlock_unlock(&r->lock);
}

static void op_mprotect(struct worker *w, struct region *r)
{
	static const int prots[] = {
		PROT_READ, PROT_NONE, PROT_READ | PROT_WRITE,
		PROT_READ | PROT_WRITE,
	};
	int prot = prots[rng_below(&w->rng, ARRAY_SIZE(prots))];
	size_t unit = mt_align(r->mt) / psize, first, n;
	struct log_entry *e;
	long ret;

	pthread_rwlock_wrlock(&r->lock);
	if (unit > 1 && r->mt->hugetlb) {
		first = rng_below(&w->rng, r->npages / unit) * unit;
		n = unit;
	} else {
		pick_run(w, r, 64, &first, &n);
	}
	e = log_begin(w, OP_MPROTECT, r);
	e->a[0] = (uintptr_t)page_addr(r, first);
	e->a[1] = n * psize;
	e->a[2] = prot;
	ret = mprotect(page_addr(r, first), n * psize, prot);
	log_end(e, ret, errno);
	if (ret)
		FAIL("mprotect %s region %d pages %zu+%zu %d: %s", r->mt->name,
		     r->idx, first, n, prot, strerror(errno));
	else
		memset(r->prot + first, prot, n);
	pthread_rwlock_unlock(&r->lock);
}

/* madvise(), and what each advice may do to what a scan reports */

struct advice {
	int advice;
	const char *name;
};

static const struct advice advices[] = {
	{ MADV_DONTNEED, "DONTNEED" },
	{ MADV_FREE, "FREE" },
	{ MADV_PAGEOUT, "PAGEOUT" },
	{ MADV_COLD, "COLD" },
	{ MADV_WILLNEED, "WILLNEED" },
	{ MADV_HUGEPAGE, "HUGEPAGE" },
	{ MADV_NOHUGEPAGE, "NOHUGEPAGE" },
	{ MADV_COLLAPSE, "COLLAPSE" },
	{ MADV_REMOVE, "REMOVE" },
	{ MADV_POPULATE_READ, "POPULATE_READ" },
	{ MADV_POPULATE_WRITE, "POPULATE_WRITE" },
};

/* May this advice make a write invisible, legitimately? */
static bool advice_hides(const struct region *r, int advice)
{
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_FREE:
	case MADV_REMOVE:
		return true;
	case MADV_PAGEOUT:
		return !feat.empty_is_written && mt_reclaim_empties(r->mt);
	case MADV_COLLAPSE:
		/* A file THP collapse replaces the page tables */
		return !r->mt->anon_private;
	default:
		return false;
	}
}

/* Errors that are no news for an advice on this memory */
static bool advice_may_fail(const struct region *r, int advice, int err)
{
	if (err == EAGAIN || err == ENOMEM || err == EBUSY || err == EINTR)
		return true;
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_COLD:
	case MADV_WILLNEED:
	case MADV_POPULATE_READ:
		return r->mt->hugetlb && err == EINVAL;
	case MADV_PAGEOUT:
	case MADV_FREE:
	case MADV_HUGEPAGE:
	case MADV_NOHUGEPAGE:
	case MADV_COLLAPSE:
	case MADV_REMOVE:
		return err == EINVAL || err == EOPNOTSUPP || err == EPERM ||
		       (advice == MADV_REMOVE && err == EACCES);
	case MADV_POPULATE_WRITE:
		return r->mt->hugetlb && err == EINVAL;
	default:
		return false;
	}
}

static void op_madvise(struct worker *w, struct region *r)
{
	const struct advice *a = &advices[rng_below(&w->rng,
						     ARRAY_SIZE(advices))];
	size_t first, n, i;
	struct log_entry *e;
	int hslot = -1, err, need;
	uint64_t s0;
	long ret;

	pthread_rwlock_rdlock(&r->lock);
	pick_run(w, r, 64, &first, &n);
	/* Populating needs the access it simulates */
	need = a->advice == MADV_POPULATE_WRITE ? PROT_WRITE :
	       a->advice == MADV_POPULATE_READ ? PROT_READ : 0;
	for (i = 0; need && i < n; i++)
		if (!(r->prot[first + i] & need))
			break;
	if (need)
		n = i;
	e = log_begin(w, OP_MADVISE, r);
	e->a[0] = (uintptr_t)page_addr(r, first);
	e->a[1] = n * psize;
	e->a[2] = a->advice;
	if (!n) {
		log_end(e, 0, 0);
		goto out;
	}
	if (advice_hides(r, a->advice))
		hslot = hider_enter(r, &s0);
	ret = madvise(page_addr(r, first), n * psize, a->advice);
	err = errno;
	if (hslot >= 0) {
		model_forgive(r, first, n, stamp());
		hider_leave(r, hslot);
	}
	log_end(e, ret, err);
	if (ret && !advice_may_fail(r, a->advice, err))
		FAIL("madvise(%s) of %s region %d pages %zu+%zu: %s", a->name,
		     r->mt->name, r->idx, first, n, strerror(err));
out:
	pthread_rwlock_unlock(&r->lock);
}

static void op_move_pages(struct worker *w, struct region *r)
{
	void *pages[8];
	int nodes[8], status[8];
	struct log_entry *e;
	size_t n, i;
	int flags;
	long ret;

	pthread_rwlock_rdlock(&r->lock);
	n = rng_range(&w->rng, 1, 8);
	for (i = 0; i < n; i++) {
		pages[i] = page_addr(r, rng_below(&w->rng, r->npages));
		nodes[i] = rng_below(&w->rng, 2);
	}
	flags = rng_chance(&w->rng, 20) ? MPOL_MF_MOVE_ALL : MPOL_MF_MOVE;
	e = log_begin(w, OP_MOVE_PAGES, r);
	e->a[0] = (uintptr_t)pages[0];
	e->a[1] = n;
	e->a[2] = flags;
	/* Sometimes only ask where they are */
	ret = syscall(__NR_move_pages, 0, n, pages,
		      rng_chance(&w->rng, 10) ? NULL : nodes, status, flags);
	log_end(e, ret, errno);
	if (ret < 0 && errno != ENOMEM && errno != EBUSY && errno != EAGAIN &&
	    errno != EACCES && errno != ENOENT && errno != EPERM)
		FAIL("move_pages() in %s region %d: %s", r->mt->name, r->idx,
		     strerror(errno));
	pthread_rwlock_unlock(&r->lock);
}

static void op_ksm(struct worker *w, struct region *r)
{
	bool merge = rng_chance(&w->rng, 70);
	struct log_entry *e;
	long ret;

	pthread_rwlock_rdlock(&r->lock);
	e = log_begin(w, OP_KSM, r);
	e->a[0] = merge;
	ret = madvise(r->base, r->len, merge ? MADV_MERGEABLE :
		      MADV_UNMERGEABLE);
	log_end(e, ret, errno);
	if (merge && !ret)
		r->merged = true;
	if (ret && errno != EAGAIN && errno != ENOMEM && errno != EINTR)
		FAIL("madvise(%s) of %s region %d: %s",
		     merge ? "MERGEABLE" : "UNMERGEABLE", r->mt->name, r->idx,
		     strerror(errno));
	pthread_rwlock_unlock(&r->lock);
}

/*
 * fork(): the child writes its own copy (or, for shared memory, the pages
 * the parent sees, through page tables the parent's scans do not look at)
 * and exits. With UFFD_FEATURE_EVENT_FORK the fork waits until the event
 * reader has taken the event.
 */
static void op_fork(struct worker *w, struct region *r)
{
	size_t pages[4], n, i;
	struct log_entry *e;
	int status = 0;
	pid_t pid;

	pthread_rwlock_rdlock(&r->lock);
	/* Private hugetlb: the child's copies could exhaust the pool */
	n = r->type == MT_HUGETLB ? 0 : rng_range(&w->rng, 0, 4);
	for (i = 0; i < n; i++) {
		pages[i] = rng_below(&w->rng, r->npages);
		if (!(r->prot[pages[i]] & PROT_WRITE))
			pages[i] = r->npages;
	}
	e = log_begin(w, OP_FORK, r);
	e->a[0] = n;
	e->a[1] = r->features;
	pthread_rwlock_rdlock(&fork_lock);
	pid = fork();
	if (!pid) {
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		for (i = 0; i < n; i++)
			if (pages[i] < r->npages)
				__atomic_store_n(page_addr(r, pages[i]), 7,
						 __ATOMIC_RELAXED);
		_exit(0);
	}
	if (pid < 0) {
		pthread_rwlock_unlock(&fork_lock);
		log_end(e, -1, errno);
		if (errno != EAGAIN && errno != ENOMEM)
			FAIL("fork: %s", strerror(errno));
		goto out;
	}
	waitpid(pid, &status, 0);
	pthread_rwlock_unlock(&fork_lock);
	log_end(e, status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		FAIL("a forked child writing %s region %d died: status %#x",
		     r->mt->name, r->idx, status);
out:
	pthread_rwlock_unlock(&r->lock);
}

static void op_clear_refs(struct worker *w)
{
	const char *what = feat.soft_dirty && rng_chance(&w->rng, 70) ? "4" :
			   "1";
	struct log_entry *e = log_begin(w, OP_CLEAR_REFS, NULL);
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	long ret = -1;

	e->a[0] = what[0] - '0';
	if (fd >= 0) {
		ret = write(fd, what, 1);
		close(fd);
	}
	log_end(e, ret, errno);
	if (ret != 1)
		FAIL("echo %s > /proc/self/clear_refs: %s", what,
		     strerror(errno));
}

/*
 * /proc/self/pagemap against PAGEMAP_SCAN, with the region to ourselves:
 * both describe the same page table entries, and a page written since it
 * was last reported must not carry the uffd-wp bit.
 */

static bool pagemap_read(const struct region *r, uint64_t *out)
{
	size_t len = r->npages * sizeof(*out);

	return pread(pagemap_fd, out, len,
		     (uintptr_t)r->base / psize * sizeof(*out)) == (ssize_t)len;
}

static void compare_page(const struct region *r, size_t p, uint64_t pm,
			 uint64_t c)
{
	bool present = pm & PM_PRESENT, swapped = !present && (pm & PM_SWAP);
	bool hugetlb = r->mt->hugetlb;
	const char *what = NULL;

	if (!!(c & PAGE_IS_PRESENT) != present)
		what = "present";
	else if (!hugetlb && !!(c & PAGE_IS_SWAPPED) != swapped)
		what = "swapped";
	else if ((present || (swapped && !hugetlb)) &&
		 !(c & PAGE_IS_WRITTEN) != !!(pm & PM_UFFD_WP))
		what = "uffd-wp (not written)";
	/* read() calls the huge zero page a file page, the ioctl does not */
	else if (present && !(c & PAGE_IS_PFNZERO) &&
		 !!(c & PAGE_IS_FILE) != !!(pm & PM_FILE))
		what = "file or shared";
	else if (!hugetlb && feat.soft_dirty &&
		 !!(c & PAGE_IS_SOFT_DIRTY) != !!(pm & PM_SOFT_DIRTY))
		what = "soft-dirty";
	else if (present && feat.zero_pfn && !(c & PAGE_IS_HUGE) &&
		 !!(c & PAGE_IS_PFNZERO) !=
		 ((pm & PM_PFN_MASK) == feat.zero_pfn))
		what = "zero page";
	if (what)
		FAIL("pagemap and PAGEMAP_SCAN disagree on %s: %s region %d page %zu: %#llx, %#llx",
		     what, r->mt->name, r->idx, p, (unsigned long long)pm,
		     (unsigned long long)c);
}

/* A scan of [start, end of the region) into w->vec, as full as it gets */
static void init_region_scan(struct worker *w, struct region *r,
			     struct scan *s, uint64_t start, uint64_t flags,
			     uint64_t mask, uint64_t ret_mask)
{
	memset(s, 0, sizeof(*s));
	s->arg.size = sizeof(s->arg);
	s->arg.flags = flags;
	s->arg.start = start;
	s->arg.end = (uintptr_t)r->base + r->len;
	s->arg.vec = (uintptr_t)w->vec;
	s->arg.vec_len = VEC_CAP;
	s->arg.category_mask = mask;
	s->arg.return_mask = ret_mask;
	scan_prepare(r, s);
}

/*
 * Scan the whole region, resuming at walk_end as a real caller does when
 * vec fills up; @each is called with each batch's answer. Returns the
 * stamp the first scan started at, or 0 if a scan failed.
 */
static uint64_t scan_region(struct worker *w, struct region *r,
			    enum op_kind op, uint64_t flags, uint64_t mask,
			    uint64_t ret_mask,
			    void (*each)(struct worker *, struct region *,
					 const struct scan *))
{
	uint64_t start = (uintptr_t)r->base, first = 0;
	struct log_entry *e;
	struct scan s;

	while (start < (uintptr_t)r->base + r->len && !stopping()) {
		init_region_scan(w, r, &s, start, flags, mask, ret_mask);
		e = log_begin(w, op, r);
		log_scan(e, &s);
		scan_exec(w, r, &s);
		e->a[6] = s.arg.walk_end;
		log_end(e, s.ret, s.err);
		scan_judge(w, r, &s);
		if (!first)
			first = s.s0;
		if (s.ret < 0 || stopping())
			return 0;
		if (each)
			each(w, r, &s);
		if (s.arg.walk_end <= start) {
			FAIL("PAGEMAP_SCAN of %s region %d made no progress from %#llx",
			     r->mt->name, r->idx, (unsigned long long)start);
			return 0;
		}
		start = s.arg.walk_end;
	}
	return first;
}

/* Remember the categories a batch of the pagemap check reported */
static void note_categories(struct worker *w, struct region *r,
			    const struct scan *s)
{
	uint64_t addr;
	long i;

	for (i = 0; i < s->ret; i++)
		for (addr = w->vec[i].start; addr < w->vec[i].end;
		     addr += psize)
			if (region_page(r, addr) >= 0)
				w->pm_cats[region_page(r, addr)] =
					w->vec[i].categories;
}

/*
 * The second scan of quiet_rescan(): only the pages it wrote, w->mine,
 * may be reported, or all of a huge page one of them is in.
 */
static void only_mine(struct worker *w, struct region *r,
		      const struct scan *s)
{
	uint64_t addr;
	size_t q, h;
	long i, p;

	for (i = 0; i < s->ret; i++) {
		for (addr = w->vec[i].start; addr < w->vec[i].end;
		     addr += psize) {
			p = region_page(r, addr);
			if (p < 0 || w->mine[p])
				continue;
			if (w->vec[i].categories & PAGE_IS_HUGE) {
				h = p / HPAGE_PAGES * HPAGE_PAGES;
				for (q = h; q < h + HPAGE_PAGES &&
				     q < r->npages && !w->mine[q]; q++)
					;
				if (q < h + HPAGE_PAGES && q < r->npages)
					continue;
			}
			scan_fail(w, r, s,
				  "over-report: page %ld was protected and not written since",
				  p);
			return;
		}
	}
}

/*
 * With the region to ourselves: a WP scan of all of it, a few stores,
 * and a second WP scan. Everything written before was just protected:
 * the second reports the pages stored to and nothing else (KSM may
 * replace protected pages: not with it).
 */
static void quiet_rescan(struct worker *w, struct region *r,
			 enum op_kind op)
{
	size_t i, n, p;
	uint64_t ticket;

	scan_region(w, r, op, PM_SCAN_WP_MATCHING, W, W, NULL);
	if (!opt.check_over_report || r->merged || stopping())
		return;
	memset(w->mine, 0, r->npages);
	n = rng_range(&w->rng, 0, 4);
	for (i = 0; i < n; i++) {
		p = rng_below(&w->rng, r->npages);
		if (!(r->prot[p] & PROT_WRITE))
			continue;
		ticket = stamp();
		amax(&r->pg[p].wb, ticket);
		if (guarded_store(page_addr(r, p), 1, ticket, false, 2)) {
			FAIL("a store to %s region %d page %zu faulted",
			     r->mt->name, r->idx, p);
			return;
		}
		amax(&r->pg[p].wd, ticket);
		w->mine[p] = 1;
	}
	scan_region(w, r, op, PM_SCAN_WP_MATCHING, W, W | PAGE_IS_HUGE,
		    only_mine);
}

/* No category combination reads like this */
#define CATS_UNSEEN	(~0ULL)

static void op_pagemap_check(struct worker *w, struct region *r)
{
	const uint64_t stable = PM_PRESENT | PM_SWAP | PM_FILE | PM_UFFD_WP |
				PM_SOFT_DIRTY | PM_PFN_MASK;
	uint64_t *pm_before = w->pm_before, *pm_after = w->pm_after;
	uint64_t *pm_cats = w->pm_cats, wd, s0;
	const struct page_state *pg;
	size_t p;

	pthread_rwlock_wrlock(&r->lock);
	for (p = 0; p < r->npages; p++)
		pm_cats[p] = CATS_UNSEEN;
	if (!pagemap_read(r, pm_before)) {
		FAIL("read of /proc/self/pagemap: %s", strerror(errno));
		goto out;
	}
	s0 = scan_region(w, r, OP_PAGEMAP_CHECK, 0, 0, ALL_CATS,
			 note_categories);
	if (!s0)
		goto out;
	if (!pagemap_read(r, pm_after)) {
		FAIL("read of /proc/self/pagemap: %s", strerror(errno));
		goto out;
	}
	for (p = 0; p < r->npages && !stopping(); p++) {
		if (pm_cats[p] == CATS_UNSEEN) {
			FAIL("PAGEMAP_SCAN with all masks 0 left out %s region %d page %zu",
			     r->mt->name, r->idx, p);
			break;
		}
		/* KSM, reclaim, NUMA balancing may have changed it meanwhile */
		if ((pm_before[p] ^ pm_after[p]) & stable)
			continue;
		compare_page(r, p, pm_before[p], pm_cats[p]);
		pg = &r->pg[p];
		wd = aload(&pg->wd);
		if (r->reg[p] && wd > aload(&pg->cov) && wd > aload(&pg->dis) &&
		    aload(&pg->tp) <= s0 && (pm_before[p] & PM_UFFD_WP) &&
		    ((pm_before[p] & PM_PRESENT) ||
		     ((pm_before[p] & PM_SWAP) && !r->mt->hugetlb)))
			FAIL("LOST WRITE: %s region %d page %zu written (%llu), uffd-wp %#llx",
			     r->mt->name, r->idx, p, (unsigned long long)wd,
			     (unsigned long long)pm_before[p]);
	}
	if (!stopping())
		quiet_rescan(w, r, OP_PAGEMAP_CHECK);
out:
	pthread_rwlock_unlock(&r->lock);
}

/*
 * Takes the UFFD_EVENT_FORK messages that let fork() go on. It reads
 * without blocking, under the lock that closing a userfaultfd takes: a
 * poll() sleeping on one would hold the file, and delay its release (and
 * the unregistering of its VMAs) past the close().
 */
static bool reader_stop;

static void *event_reader(void *arg)
{
	struct uffd_msg msg;
	int i;

	(void)arg;

	while (!__atomic_load_n(&reader_stop, __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&uffd_list_lock);
		for (i = 0; i < nregions; i++) {
			if (regions[i].uffd < 0 ||
			    !(regions[i].features & UFFD_FEATURE_EVENT_FORK))
				continue;
			while (read(regions[i].uffd, &msg, sizeof(msg)) ==
			       sizeof(msg))
				if (msg.event == UFFD_EVENT_FORK)
					close((int)msg.arg.fork.ufd);
		}
		pthread_mutex_unlock(&uffd_list_lock);
		usleep(2000);
	}
	return NULL;
}

/* The workers */

static unsigned int op_weights[OP_NR];
static double phase_deadline;
static uint64_t phase_ops, phase_done;

static void set_op_weights(const struct mem_type_desc *mt)
{
	int op;

	for (op = 0; op < OP_NR; op++)
		op_weights[op] = op_desc[op].weight;
	if (!feat.io_uring)
		op_weights[OP_URING] = 0;
	if (!remote_ok)
		op_weights[OP_SCAN_REMOTE] = 0;
	if (!feat.numa2)
		op_weights[OP_MOVE_PAGES] = 0;
	if (!feat.ksm || !mt->anon_private)
		op_weights[OP_KSM] = 0;
}

static enum op_kind pick_op(struct worker *w)
{
	unsigned int total = 0, x;
	int op;

	for (op = 0; op < OP_NR; op++)
		total += op_weights[op];
	x = rng_below(&w->rng, total);
	for (op = 0; op < OP_NR - 1; op++) {
		if (x < op_weights[op])
			break;
		x -= op_weights[op];
	}
	return op;
}

static void do_op(struct worker *w, struct region *r, enum op_kind op)
{
	switch (op) {
	case OP_STORE:
	case OP_FILL:
	case OP_READ_PIPE:
	case OP_READ_FILE:
	case OP_URING:
		op_write(w, r, op);
		break;
	case OP_STRIPE:
		op_stripe(w, r);
		break;
	case OP_SCAN:
	case OP_SCAN_TRACK:
	case OP_SCAN_REMOTE:
		op_scan(w, r, op);
		break;
	case OP_SCAN_BAD:
		op_scan_bad(w, r);
		break;
	case OP_PAGEMAP_CHECK:
		op_pagemap_check(w, r);
		break;
	case OP_UFFD_WP:
		op_uffd_wp(w, r);
		break;
	case OP_UFFD_REREG:
		op_uffd_rereg(w, r);
		break;
	case OP_UFFD_REOPEN:
		op_uffd_reopen(w, r);
		break;
	case OP_UFFD_ERRNO:
		op_uffd_errno(w, r);
		break;
	case OP_REMAP:
	case OP_MMAP_OVER:
		op_remap(w, r, op);
		break;
	case OP_MREMAP:
		op_mremap(w, r);
		break;
	case OP_MPROTECT:
		op_mprotect(w, r);
		break;
	case OP_MADVISE:
		op_madvise(w, r);
		break;
	case OP_MOVE_PAGES:
		op_move_pages(w, r);
		break;
	case OP_KSM:
		op_ksm(w, r);
		break;
	case OP_FORK:
		op_fork(w, r);
		break;
	case OP_CLEAR_REFS:
		op_clear_refs(w);
		break;
	default:
		break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct region *r;
	enum op_kind op;

	self = w;
	while (!stopping() && now() < phase_deadline) {
		if (phase_ops &&
		    __atomic_add_fetch(&phase_done, 1, __ATOMIC_RELAXED) >
		    phase_ops)
			break;
		op = pick_op(w);
		r = &regions[rng_below(&w->rng, nregions)];
		do_op(w, r, op);
	}
	return NULL;
}

static int worker_init(struct worker *w, int id)
{
	char *area;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->vec = calloc(VEC_CAP + 8, sizeof(*w->vec));
	w->pre = calloc(MAX_REGION_PAGES, sizeof(*w->pre));
	w->post = calloc(MAX_REGION_PAGES, sizeof(*w->post));
	w->reported = calloc(MAX_REGION_PAGES, 1);
	w->mine = calloc(MAX_REGION_PAGES, 1);
	w->pm_before = calloc(MAX_REGION_PAGES, sizeof(uint64_t));
	w->pm_after = calloc(MAX_REGION_PAGES, sizeof(uint64_t));
	w->pm_cats = calloc(MAX_REGION_PAGES, sizeof(uint64_t));
	area = mmap(NULL, 5 * psize, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!w->vec || !w->pre || !w->post || !w->reported || !w->mine ||
	    !w->pm_before || !w->pm_after || !w->pm_cats ||
	    area == MAP_FAILED || pipe(w->pipe))
		return -1;
	mprotect(area + ARG_NONE * psize, psize, PROT_NONE);
	mprotect(area + ARG_RO * psize, psize, PROT_READ);
	mprotect(area + (ARG_VEC + 1) * psize, psize, PROT_NONE);
	w->argarea = area;
	w->ring.fd = -1;
	return 0;
}

static void worker_seed(struct worker *w, enum mem_type type)
{
	w->rng.s = opt.seed ^ (0x100000001b3ULL * (type + 1)) ^
		   (0x9e3779b97f4a7c15ULL * (w->id + 1));
	w->nlog = 0;
}

/* After a failure: what every thread did last, in the order it did it */

static void print_entry(const struct log_entry *e, int tid)
{
	const char *name = op_desc[e->op].name;
	char args[256];

	switch (e->op) {
	case OP_SCAN:
	case OP_SCAN_TRACK:
	case OP_SCAN_REMOTE:
	case OP_PAGEMAP_CHECK:
		snprintf(args, sizeof(args),
			 "[%#llx, %#llx) flags %#llx inv/mask/anyof/ret %08llx vec_len %llu max %llu walk_end %#llx",
			 (unsigned long long)e->a[0], (unsigned long long)e->a[1],
			 (unsigned long long)e->a[2], (unsigned long long)e->a[3],
			 (unsigned long long)e->a[4], (unsigned long long)e->a[5],
			 (unsigned long long)e->a[6]);
		break;
	case OP_SCAN_BAD:
		snprintf(args, sizeof(args),
			 "%s [%#llx, %#llx) flags %#llx vec %#llx vec_len %#llx",
			 e->a[3] < BAD_NR ? bad_names[e->a[3]] : "?",
			 (unsigned long long)e->a[0], (unsigned long long)e->a[1],
			 (unsigned long long)e->a[2], (unsigned long long)e->a[5],
			 (unsigned long long)e->a[4]);
		break;
	case OP_CLEAR_REFS:
		snprintf(args, sizeof(args), "%llu", (unsigned long long)e->a[0]);
		break;
	default:
		snprintf(args, sizeof(args), "%#llx %#llx %#llx %#llx",
			 (unsigned long long)e->a[0], (unsigned long long)e->a[1],
			 (unsigned long long)e->a[2], (unsigned long long)e->a[3]);
		break;
	}
	ksft_print_msg("  #%-9llu t%d %-14s r%-2d %s -> %s%lld%s%s\n",
		       (unsigned long long)e->seq, tid, name, e->region, args,
		       e->done ? "" : "(unfinished) ", (long long)e->ret,
		       e->err ? " " : "", e->err ? strerror(e->err) : "");
}

static int entry_cmp(const void *a, const void *b)
{
	const struct log_entry *x = *(const struct log_entry * const *)a;
	const struct log_entry *y = *(const struct log_entry * const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void dump_logs(int nworkers)
{
	static const struct log_entry *all[(MAX_THREADS + 1) * LOG_LEN];
	static int owner[(MAX_THREADS + 1) * LOG_LEN];
	int i, n = 0, first;
	uint64_t k, from;

	for (i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];

		from = w->nlog > LOG_LEN ? w->nlog - LOG_LEN : 0;
		for (k = from; k < w->nlog; k++)
			all[n++] = &w->log[k % LOG_LEN];
	}
	qsort(all, n, sizeof(all[0]), entry_cmp);
	for (i = 0; i < n; i++) {
		int t;

		for (t = 0; t < nworkers; t++)
			if (all[i] >= workers[t].log &&
			    all[i] < workers[t].log + LOG_LEN)
				owner[i] = t;
	}
	first = n > LOG_DUMP ? n - LOG_DUMP : 0;
	ksft_print_msg("the last %d operations of all threads, oldest first:\n",
		       n - first);
	for (i = first; i < n; i++)
		print_entry(all[i], owner[i]);
	ksft_print_msg("regions:\n");
	for (i = 0; i < nregions; i++)
		ksft_print_msg("  r%d %s [%p, %p) uffd features %#llx\n", i,
			       regions[i].mt->name, regions[i].base,
			       regions[i].base + regions[i].len,
			       (unsigned long long)regions[i].features);
}

/* System settings the fuzzer changes, put back on every way out */

struct setting {
	const char *path;
	char old[32];
	bool saved;
};

enum {
	SET_NR_HUGEPAGES,
	SET_KSM_RUN,
	SET_KSM_PAGES,
	SET_KSM_SLEEP,
	SET_NR
};

static struct setting settings[SET_NR] = {
	[SET_NR_HUGEPAGES] = { "/proc/sys/vm/nr_hugepages" },
	[SET_KSM_RUN] = { "/sys/kernel/mm/ksm/run" },
	[SET_KSM_PAGES] = { "/sys/kernel/mm/ksm/pages_to_scan" },
	[SET_KSM_SLEEP] = { "/sys/kernel/mm/ksm/sleep_millisecs" },
};

static bool write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok;
}

static bool read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return true;
}

static bool setting_set(int i, const char *val)
{
	struct setting *s = &settings[i];

	if (!s->saved) {
		if (!read_file(s->path, s->old, sizeof(s->old)))
			return false;
		s->saved = true;
	}
	return write_file(s->path, val);
}

/*
 * Remember the KSM settings in main(): a test's child changes them, and if
 * it is killed (a timeout) the parent's exit must still put them back.
 */
static void save_ksm_settings(void)
{
	int i;

	for (i = SET_KSM_RUN; i <= SET_KSM_SLEEP; i++) {
		struct setting *s = &settings[i];

		if (!s->saved)
			s->saved = read_file(s->path, s->old, sizeof(s->old));
	}
}

static void setting_restore(int i)
{
	struct setting *s = &settings[i];

	if (s->saved && write_file(s->path, s->old))
		s->saved = false;
}

static void restore_settings(void)
{
	int i;

	/* KSM first: its run=0 can stop, nr_hugepages may need memory */
	for (i = SET_NR - 1; i >= 0; i--)
		setting_restore(i);
}

static void exit_signal(int sig)
{
	restore_settings();
	_exit(128 + sig);
}

static void ksm_start(void)
{
	if (!feat.ksm)
		return;
	setting_set(SET_KSM_PAGES, "512");
	setting_set(SET_KSM_SLEEP, "10");
	setting_set(SET_KSM_RUN, "1");
}

static void ksm_stop(void)
{
	setting_restore(SET_KSM_RUN);
	setting_restore(SET_KSM_PAGES);
	setting_restore(SET_KSM_SLEEP);
}

static long meminfo_kb(const char *key)
{
	char line[256];
	long val = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			val = strtol(line + strlen(key), NULL, 10);
	fclose(f);
	return val;
}

/* Enough free 2 MiB huge pages for the hugetlb types, or false */
static bool ensure_hugepages(void)
{
	long free = meminfo_kb("HugePages_Free:");
	long total = meminfo_kb("HugePages_Total:");
	char val[32];

	if (meminfo_kb("Hugepagesize:") != 2048)
		return false;
	if (free >= NEED_HUGEPAGES)
		return true;
	snprintf(val, sizeof(val), "%ld", total + NEED_HUGEPAGES - free);
	setting_set(SET_NR_HUGEPAGES, val);
	free = meminfo_kb("HugePages_Free:");
	ksft_print_msg("nr_hugepages raised from %ld to %ld (restored at exit): %ld free\n",
		       total, meminfo_kb("HugePages_Total:"), free);
	return free >= NEED_HUGEPAGES;
}

/* Probes: what this kernel has, and how it answers where kernels differ */

static long probe_scan(void *start, size_t len, uint64_t flags, uint64_t mask,
		       uint64_t ret_mask, void *vec, uint64_t vec_len,
		       uint64_t max_pages)
{
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = flags,
		.start = (uintptr_t)start,
		.end = (uintptr_t)start + len,
		.vec = (uintptr_t)vec,
		.vec_len = vec_len,
		.max_pages = max_pages,
		.category_mask = mask,
		.return_mask = ret_mask,
	};

	return ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
}

/* @pages of anonymous memory, the first @reg registered and protected */
static char *probe_area(size_t pages, size_t reg, int *uffd)
{
	struct uffdio_register r = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	char *p = mmap(NULL, pages * psize, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	*uffd = -1;
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, pages * psize, MADV_NOHUGEPAGE);
	if (!reg)
		return p;
	*uffd = scratch_uffd(UFFD_FEATURE_WP_ASYNC);
	r.range.start = (uintptr_t)p;
	r.range.len = reg * psize;
	wp.range = r.range;
	if (*uffd < 0 || ioctl(*uffd, UFFDIO_REGISTER, &r) ||
	    ioctl(*uffd, UFFDIO_WRITEPROTECT, &wp)) {
		munmap(p, pages * psize);
		if (*uffd >= 0)
			close(*uffd);
		return NULL;
	}
	return p;
}

static void probe_area_free(char *p, size_t pages, int uffd)
{
	if (p)
		munmap(p, pages * psize);
	if (uffd >= 0)
		close(uffd);
}

/*
 * Written memory: a small page, then a PMD-mapped THP, registered for
 * async uffd-wp but not protected. Two WP scans that split the THP: one
 * whose max_pages cuts it (does walk_end stay at the cut, though nothing
 * is reported?), one whose range ends inside it (is the THP's part
 * merged with the small page's?).
 */
static void probe_thp_split(void)
{
	struct uffdio_register r = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct pm_scan_arg a = { .size = sizeof(a) };
	struct page_region v[8];
	char *map, *p;
	int uffd, i;

	map = mmap(NULL, 4 * HPAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return;
	p = (char *)(((uintptr_t)map + 2 * HPAGE_SIZE - 1) &
		     ~(HPAGE_SIZE - 1));
	madvise(p - HPAGE_SIZE, HPAGE_SIZE, MADV_NOHUGEPAGE);
	madvise(p, 2 * HPAGE_SIZE, MADV_HUGEPAGE);
	p[-1] = 1;
	memset(p, 1, 2 * HPAGE_SIZE);
	uffd = scratch_uffd(UFFD_FEATURE_WP_ASYNC);
	r.range.start = (uintptr_t)p - psize;
	r.range.len = 2 * HPAGE_SIZE + psize;
	a.start = (uintptr_t)p;
	a.end = a.start + HPAGE_SIZE;
	a.vec = (uintptr_t)v;
	a.vec_len = 8;
	a.category_mask = PAGE_IS_HUGE;
	a.return_mask = PAGE_IS_HUGE;
	/* Not THPs here: nothing to learn, nothing to fear either */
	if (uffd < 0 || ioctl(uffd, UFFDIO_REGISTER, &r) ||
	    ioctl(pagemap_fd, PAGEMAP_SCAN, &a) != 1 ||
	    v[0].end != a.end)
		goto out;
	a.flags = PM_SCAN_WP_MATCHING;
	a.max_pages = 8;
	feat.thp_stale_walk_end = !ioctl(pagemap_fd, PAGEMAP_SCAN, &a) &&
				  a.walk_end != a.end;
	a.start = (uintptr_t)p - psize;
	a.end = (uintptr_t)p + 3 * HPAGE_SIZE / 2;
	a.max_pages = 0;
	a.category_mask = W;
	a.return_mask = W | PAGE_IS_HUGE;
	i = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
	feat.thp_split_unmerged = i == 2 && v[0].end == v[1].start &&
				  v[0].categories == v[1].categories;
out:
	if (uffd >= 0)
		close(uffd);
	munmap(map, 4 * HPAGE_SIZE);
}

static void semantics(const char *what, bool yes, const char *no)
{
	ksft_print_msg("kernel: %s: %s%s%s%s\n", what, yes ? "yes" : "no",
		       !yes && no ? " (" : "", !yes && no ? no : "",
		       !yes && no ? ")" : "");
}

static void probe_semantics(void)
{
	struct page_region v[8];
	char *p, *ro;
	int uffd;
	long ret;

	/* An empty pte left by MADV_DONTNEED, in the general path */
	p = probe_area(4, 4, &uffd);
	if (p) {
		p[0] = 1;
		madvise(p, psize, MADV_DONTNEED);
		ret = probe_scan(p, 4 * psize, 0, W, W | PAGE_IS_PRESENT, v, 8, 0);
		feat.empty_is_written = ret > 0 && v[0].start == (uintptr_t)p;
	}
	probe_area_free(p, 4, uffd);

	/* A WP scan whose vec cannot be written: is its protection undone? */
	p = probe_area(2, 2, &uffd);
	ro = mmap(NULL, psize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p && ro != MAP_FAILED) {
		p[0] = 1;
		ret = probe_scan(p, 2 * psize, PM_SCAN_WP_MATCHING, W, W, ro, 4,
				 0);
		if (ret != -1 || errno != EFAULT)
			ksft_print_msg("probe: a WP scan into a read-only vec gave %ld (%s)\n",
				       ret, strerror(errno));
		ret = probe_scan(p, 2 * psize, 0, W, W, v, 8, 0);
		feat.undo_on_error = ret == 1;
	}
	if (ro != MAP_FAILED)
		munmap(ro, psize);
	probe_area_free(p, 2, uffd);

	/* 1024 regions, vec writable for the first batch of 512 only */
	p = probe_area(2048, 0, &uffd);
	ro = mmap(NULL, 8 * psize, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p && ro != MAP_FAILED) {
		size_t i;

		for (i = 0; i < 2048; i += 2)
			p[i * psize] = 1;
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.start = (uintptr_t)p,
			.end = (uintptr_t)p + 1536 * psize,
			.vec = (uintptr_t)ro,
			.vec_len = 1024,
			.category_mask = PAGE_IS_PRESENT,
			.return_mask = PAGE_IS_PRESENT,
		};

		for (i = 0; i < 2048; i += 2)
			p[i * psize] = 1;
		/* 768 regions, in two batches: where does walk_end say? */
		feat.stale_walk_end = ioctl(pagemap_fd, PAGEMAP_SCAN, &a) ==
				      768 && a.walk_end != a.end;
		mprotect(ro + 4 * psize, 4 * psize, PROT_READ);
		ret = probe_scan(p, 2048 * psize, 0, PAGE_IS_PRESENT,
				 PAGE_IS_PRESENT, ro, 1024, 0);
		feat.later_batch_regions = ret > 0;
	}
	if (ro != MAP_FAILED)
		munmap(ro, 8 * psize);
	probe_area_free(p, 2048, uffd);

	/* CHECK_WPASYNC, a VMA without uffd after where max_pages stops */
	p = probe_area(16, 8, &uffd);
	if (p) {
		/* The second written page stops the walk, in the first VMA */
		p[0] = 1;
		p[psize] = 1;
		ret = probe_scan(p, 16 * psize, PM_SCAN_CHECK_WPASYNC, W, W,
				 v, 8, 1);
		feat.wpasync_upfront = ret == -1 && errno == EPERM;
	}
	probe_area_free(p, 16, uffd);

	probe_thp_split();

	semantics("empty ptes in uffd-wp VMAs are PAGE_IS_WRITTEN",
		  feat.empty_is_written, "only the tracker's query sees them");
	semantics("a failed PM_SCAN_WP_MATCHING undoes its protection",
		  feat.undo_on_error, "their writes go unreported");
	semantics("EFAULT copying a later batch returns the earlier ones",
		  feat.later_batch_regions, "the call fails with EFAULT");
	semantics("PM_SCAN_CHECK_WPASYNC looks past where max_pages stops",
		  feat.wpasync_upfront, "EPERM only for VMAs walked");
	semantics("a THP split by a WP scan at max_pages keeps walk_end there",
		  feat.thp_stale_walk_end, NULL);
	semantics("a THP split by a WP scan leaves its region unmerged",
		  feat.thp_split_unmerged, NULL);
	semantics("a scan done in batches leaves walk_end where the first stopped",
		  feat.stale_walk_end, NULL);
}

static bool node_exists(int node)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	return !access(path, F_OK);
}

static bool swap_present(void)
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

static void pick_file_dir(void)
{
	const char *dir = getenv("PMS_EXT2_DIR");
	struct statfs sfs;

	if (!dir || !*dir) {
		/* tmpfs would make the "file" types shmem again */
		dir = "/tmp";
		if (!statfs(dir, &sfs) && sfs.f_type == TMPFS_MAGIC)
			dir = "/var/tmp";
	}
	snprintf(feat.file_dir, sizeof(feat.file_dir), "%s", dir);
	feat.file_ok = !statfs(dir, &sfs) && sfs.f_type != TMPFS_MAGIC;
}

/*
 * Soft-dirty works if clearing it (clear_refs 4) and writing a page sets
 * it again: CONFIG_MEM_SOFT_DIRTY=n kernels accept the clear but never
 * set the bit, and then no check of PAGE_IS_SOFT_DIRTY can be made.
 */
static bool soft_dirty_works(char *page)
{
	uint64_t e = 0;
	off_t off = (uintptr_t)page / psize * 8;

	page[0] = 1;
	if (!write_file("/proc/self/clear_refs", "4"))
		return false;
	if (pread(pagemap_fd, &e, sizeof(e), off) != sizeof(e) ||
	    (e & PM_SOFT_DIRTY))
		return false;
	page[0] = 2;
	if (pread(pagemap_fd, &e, sizeof(e), off) != sizeof(e))
		return false;
	return e & PM_SOFT_DIRTY;
}

static void probe_features(void)
{
	uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC };
	uint64_t e[1] = { 0 };
	struct utsname u;
	long ret;
	char *p;
	int fd;

	uname(&u);
	ksft_print_msg("kernel %s %s, page size %zu\n", u.release, u.version,
		       psize);
	p = mmap(NULL, 2 * psize, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	ret = probe_scan(p, 0, 0, 0, 0, NULL, 0, 0);
	feat.pagemap_scan = !ret;
	ksft_print_msg("PAGEMAP_SCAN: %s\n", ret ? strerror(errno) : "yes");

	fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 && !ioctl(fd, UFFDIO_API, &api))
		feat.wp_async = (api.features & want) == want;
	ksft_print_msg("UFFD_FEATURE_WP_ASYNC, WP_UNPOPULATED: %s\n",
		       feat.wp_async ? "yes" : fd < 0 ? strerror(errno) : "no");
	if (fd >= 0)
		close(fd);

	/* A page only read maps the zero page, if the PFN is shown */
	(void)__atomic_load_n(p, __ATOMIC_RELAXED);
	if (pread(pagemap_fd, e, sizeof(e[0]), (uintptr_t)p / psize * 8) ==
	    sizeof(e[0]) && (e[0] & PM_PRESENT))
		feat.zero_pfn = e[0] & PM_PFN_MASK;
	feat.soft_dirty = soft_dirty_works(p + psize);
	munmap(p, 2 * psize);
	ksft_print_msg("soft-dirty: %s\n", feat.soft_dirty ?
		       (opt.no_soft_dirty ? "yes, left alone (--no-soft-dirty)" : "yes") :
		       "no (CONFIG_MEM_SOFT_DIRTY off, or --no-soft-dirty)");
	if (opt.no_soft_dirty)
		feat.soft_dirty = false;
	{
		struct uring ring;

		feat.io_uring = !uring_init(&ring, 4);
		if (feat.io_uring)
			uring_exit(&ring);
	}
	ksft_print_msg("io_uring: %s\n", feat.io_uring ? "yes" : "no");
	feat.ksm = !access("/sys/kernel/mm/ksm/run", W_OK);
	ksft_print_msg("KSM: %s\n", feat.ksm ? "yes" : "no");
	feat.swap = swap_present();
	ksft_print_msg("swap: %s\n", feat.swap ? "yes" : "no");
	feat.numa2 = node_exists(0) && node_exists(1);
	ksft_print_msg("NUMA nodes 0 and 1: %s\n", feat.numa2 ? "yes" :
		       "no (move_pages() left out)");
	pick_file_dir();
	ksft_print_msg("regular files in %s\n", feat.file_dir);
}

static void add_missing(char *buf, size_t len, bool have, const char *what)
{
	size_t n = strlen(buf);

	if (!have)
		snprintf(buf + n, len - n, "%s%s", n ? ", " : "", what);
}

/*
 * What the fuzzer leaves out here, "" if nothing: each is a skip, or with
 * --require-all a failure. Hugetlb and the regular file are not listed:
 * their memory types report them.
 */
static void missing_features(char *buf, size_t len)
{
	*buf = 0;
	add_missing(buf, len, feat.soft_dirty || opt.no_soft_dirty,
		    "soft-dirty");
	add_missing(buf, len, feat.numa2, "two NUMA nodes (move_pages)");
	add_missing(buf, len, feat.swap, "swap (MADV_PAGEOUT to swap)");
	add_missing(buf, len, feat.ksm, "KSM");
	add_missing(buf, len, remote_ok, "a second process scanning");
	add_missing(buf, len, feat.io_uring, "io_uring");
}

/* One memory type: regions, threads, the budget, the verdict */

struct phase_result {
	uint64_t ops, scans, checked, pending, excused;
	uint64_t pend_checked, pend_skipped;
	double seconds;
	char why[256];
};

static uint64_t scan_ops(const struct worker *w)
{
	return w->ops[OP_SCAN] + w->ops[OP_SCAN_TRACK] +
	       w->ops[OP_SCAN_REMOTE] + w->ops[OP_PAGEMAP_CHECK];
}

/*
 * Every second page written, then one WP scan that reports every page as
 * one run (return_mask 0): it protects over a thousand runs, more than a
 * batch takes, and must still return the run merged, as a single
 * unlimited pass would.
 */
static void batch_boundaries(struct worker *w, struct region *r)
{
	uint64_t ticket = stamp();
	size_t p;

	for (p = 0; p < r->npages; p += 2) {
		if (!(r->prot[p] & PROT_WRITE))
			continue;
		amax(&r->pg[p].wb, ticket);
		if (guarded_store(page_addr(r, p), 1, ticket, false, 1))
			return;
		amax(&r->pg[p].wd, ticket);
	}
	scan_region(w, r, OP_SCAN, PM_SCAN_WP_MATCHING, 0, 0, NULL);
}

/* With the workers gone: every pending write must be in these scans */
static void final_scans(struct worker *w)
{
	int i;

	for (i = 0; i < nregions && !stopping(); i++) {
		struct region *r = &regions[i];

		pthread_rwlock_rdlock(&r->lock);
		if (r->npages > 2 * HPAGE_PAGES * 2)
			batch_boundaries(w, r);
		quiet_rescan(w, r, OP_SCAN_TRACK);
		pthread_rwlock_unlock(&r->lock);
	}
}

static int run_phase(enum mem_type type, double seconds, uint64_t ops,
		     struct phase_result *res)
{
	const struct mem_type_desc *mt = &mem_types[type];
	struct worker *main_w = &workers[opt.threads];
	uint64_t before_ops[MAX_THREADS + 1], before_scans[MAX_THREADS + 1];
	pthread_t reader;
	struct rng rng;
	double t0;
	int i, err;

	memset(res, 0, sizeof(*res));
	if (mt->hugetlb && !feat.hugetlb) {
		snprintf(res->why, sizeof(res->why),
			 "not enough free 2 MiB hugetlb pages");
		return opt.require_all ? KSFT_FAIL : KSFT_SKIP;
	}
	if ((type == MT_FILE || type == MT_FILE_SHARED) && !feat.file_ok) {
		snprintf(res->why, sizeof(res->why),
			 "%.64s is tmpfs: set PMS_EXT2_DIR to a disk file system",
			 feat.file_dir);
		return opt.require_all ? KSFT_FAIL : KSFT_SKIP;
	}
	remote_ok = remote_start();
	set_op_weights(mt);
	rng.s = opt.seed ^ (0xc2b2ae3d27d4eb4fULL * (type + 1));
	self = main_w;
	worker_seed(main_w, type);
	__atomic_store_n(&stop_phase, false, __ATOMIC_RELAXED);
	nregions = mt->nregions;
	for (i = 0; i < nregions; i++) {
		err = setup_region(&regions[i], i, type, &rng);
		if (err) {
			if (!failed)
				snprintf(res->why, sizeof(res->why),
					 "setting up region %d: %s", i,
					 strerror(err > 0 ? err : -err));
			nregions = i + 1;
			goto out;
		}
	}
	if (mt->anon_private)
		ksm_start();
	for (i = 0; i <= opt.threads; i++) {
		before_ops[i] = 0;
		before_scans[i] = scan_ops(&workers[i]);
		for (err = 0; err < OP_NR; err++)
			before_ops[i] += workers[i].ops[err];
	}
	phase_deadline = now() + seconds;
	phase_ops = ops;
	phase_done = 0;
	__atomic_store_n(&reader_stop, false, __ATOMIC_RELAXED);
	pthread_create(&reader, NULL, event_reader, NULL);
	t0 = now();
	__atomic_store_n(&workers_running, true, __ATOMIC_RELAXED);
	for (i = 0; i < opt.threads; i++) {
		worker_seed(&workers[i], type);
		pthread_create(&workers[i].thread, NULL, worker_main,
			       &workers[i]);
	}
	for (i = 0; i < opt.threads; i++)
		pthread_join(workers[i].thread, NULL);
	__atomic_store_n(&workers_running, false, __ATOMIC_RELAXED);
	res->seconds = now() - t0;
	if (!failed)
		final_scans(main_w);
	__atomic_store_n(&reader_stop, true, __ATOMIC_RELAXED);
	pthread_join(reader, NULL);
	for (i = 0; i <= opt.threads; i++) {
		uint64_t n = 0;

		for (err = 0; err < OP_NR; err++)
			n += workers[i].ops[err];
		res->ops += n - before_ops[i];
		res->scans += scan_ops(&workers[i]) - before_scans[i];
		res->checked += workers[i].pages_checked;
		res->pending += workers[i].pending_seen;
		res->excused += workers[i].excused;
		res->pend_checked += workers[i].pend_checked;
		res->pend_skipped += workers[i].pend_skipped;
		workers[i].pend_checked = 0;
		workers[i].pend_skipped = 0;
		workers[i].pages_checked = 0;
		workers[i].pending_seen = 0;
		workers[i].excused = 0;
	}
	if (mt->anon_private)
		ksm_stop();
out:
	if (failed)
		dump_logs(opt.threads + 1);
	for (i = 0; i < nregions; i++)
		teardown_region(&regions[i]);
	nregions = 0;
	remote_stop();
	if (failed)
		return KSFT_FAIL;
	if (res->why[0])
		return opt.require_all ? KSFT_FAIL : KSFT_SKIP;
	return KSFT_PASS;
}

/* Options */

static void usage(FILE *f, const char *prog)
{
	int t;

	fprintf(f,
		"Usage: %s [options]\n"
		"  -s, --seed N        seed of the random operations (default: from the clock)\n"
		"  -t, --seconds S     time for all memory types together (default %g)\n"
		"  -n, --ops N         operations for all memory types together (default: no limit)\n"
		"  -j, --threads N     threads issuing operations (default %d, at most %d)\n"
		"  -T, --types LIST    comma separated memory types, or all (default):\n"
		"                     ",
		prog, opt.seconds, opt.threads, MAX_THREADS);
	for (t = 0; t < MT_NR; t++)
		fprintf(f, " %s", mem_types[t].name);
	fprintf(f,
		"\n"
		"  -r, --require-all   a memory type or feature this machine lacks is a\n"
		"                      failure, not a skip (as is PMS_GUEST=1)\n"
		"  --no-soft-dirty     leave soft-dirty alone (clear_refs 4, its checks)\n"
		"  --no-check-over-report  do not fail if a page is reported written\n"
		"                      when nothing was written since it was protected\n"
		"                      (checked with the region quiet, and at the end)\n"
		"Environment: PAGEMAP_FUZZ_SECONDS, PAGEMAP_FUZZ_SEED give defaults;\n"
		"PMS_EXT2_DIR is where the regular files go.\n"
		"Exit status: 0 pass, 1 failure, 4 nothing to test (no PAGEMAP_SCAN).\n");
}

static unsigned int parse_types(const char *list)
{
	char *copy = strdup(list), *tok, *save = NULL;
	unsigned int mask = 0;
	int t;

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "all")) {
			mask = (1U << MT_NR) - 1;
			continue;
		}
		for (t = 0; t < MT_NR; t++)
			if (!strcmp(tok, mem_types[t].name))
				break;
		if (t == MT_NR) {
			fprintf(stderr, "unknown memory type '%s'\n", tok);
			exit(KSFT_FAIL);
		}
		mask |= 1U << t;
	}
	free(copy);
	return mask;
}

/* Parsers that leave *out alone, its default shown by usage(), on error */
static bool parse_number(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		return false;
	*out = v;
	return true;
}

static void bad_usage(const char *prog, const char *what)
{
	if (what)
		fprintf(stderr, "%s: bad %s\n", prog, what);
	usage(stderr, prog);
	exit(KSFT_FAIL);
}

static void parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "ops", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 'j' },
		{ "types", required_argument, NULL, 'T' },
		{ "require-all", no_argument, NULL, 'r' },
		{ "no-soft-dirty", no_argument, NULL, 'D' },
		{ "check-over-report", no_argument, NULL, 'O' },
		{ "no-check-over-report", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	const char *env;
	bool seeded = false;
	uint64_t n;
	int c;

	opt.types = (1U << MT_NR) - 1;
	env = getenv("PAGEMAP_FUZZ_SECONDS");
	if (env && *env && !parse_number(env, &opt.seconds))
		bad_usage(argv[0], "PAGEMAP_FUZZ_SECONDS");
	env = getenv("PAGEMAP_FUZZ_SEED");
	if (env && *env) {
		if (!parse_u64(env, &opt.seed))
			bad_usage(argv[0], "PAGEMAP_FUZZ_SEED");
		seeded = true;
	}
	env = getenv("PMS_GUEST");
	opt.require_all = env && *env;
	while ((c = getopt_long(argc, argv, "s:t:n:j:T:rh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 's':
			if (!parse_u64(optarg, &opt.seed))
				bad_usage(argv[0], "seed");
			seeded = true;
			break;
		case 't':
			if (!parse_number(optarg, &opt.seconds))
				bad_usage(argv[0], "seconds");
			break;
		case 'n':
			if (!parse_u64(optarg, &opt.ops))
				bad_usage(argv[0], "operation count");
			break;
		case 'j':
			if (!parse_u64(optarg, &n) || n < 1 || n > MAX_THREADS)
				bad_usage(argv[0], "thread count");
			opt.threads = n;
			break;
		case 'T':
			opt.types = parse_types(optarg);
			break;
		case 'r':
			opt.require_all = true;
			break;
		case 'D':
			opt.no_soft_dirty = true;
			break;
		case 'O':
			opt.check_over_report = true;
			break;
		case 'o':
			opt.check_over_report = false;
			break;
		case 'h':
			usage(stdout, argv[0]);
			exit(KSFT_PASS);
		default:
			bad_usage(argv[0], NULL);
		}
	}
	if (!opt.types || opt.seconds <= 0 || optind != argc)
		bad_usage(argv[0], NULL);
	if (!seeded) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		opt.seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ ts.tv_nsec ^
			   (uint64_t)getpid() << 40;
	}
}

static void print_failure(const char *type)
{
	char *line, *save = NULL;

	ksft_print_msg("FAILURE (seed %llu, %s):\n",
		       (unsigned long long)opt.seed, type);
	for (line = strtok_r(fail_text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		ksft_print_msg("%s\n", line);
	if (fail_count > 1)
		ksft_print_msg("(%d failures in all, the first shown)\n",
			       fail_count);
}

static const char *prog_name;

/* One command line that runs the failing memory type's operations again */
static void print_reproduce(enum mem_type type, double seconds, uint64_t ops)
{
	char extra[64] = "";

	if (ops)
		snprintf(extra, sizeof(extra), " --ops %llu",
			 (unsigned long long)ops);
	ksft_print_msg("reproduce: %s --seed %llu --types %s --threads %d --seconds %g%s%s%s\n",
		       prog_name, (unsigned long long)opt.seed,
		       mem_types[type].name, opt.threads, seconds, extra,
		       opt.no_soft_dirty ? " --no-soft-dirty" : "",
		       opt.check_over_report ? "" : " --no-check-over-report");
	if (opt.threads > 1)
		ksft_print_msg("threads interleave anew each run: %s\n",
			       "--threads 1 --ops N repeats the same operations");
}

static void print_op_counts(const char *type)
{
	char line[2048];
	uint64_t count[OP_NR] = { 0 }, total = 0;
	size_t n = 0;
	int i, op;

	for (i = 0; i <= opt.threads; i++)
		for (op = 0; op < OP_NR; op++)
			count[op] += workers[i].ops[op];
	for (op = 0; op < OP_NR; op++) {
		total += count[op];
		if (count[op])
			n += snprintf(line + n,
				      n < sizeof(line) ? sizeof(line) - n : 0,
				      " %s=%llu", op_desc[op].name,
				      (unsigned long long)count[op]);
	}
	ksft_print_msg("%s: %llu ops:%s\n", type, (unsigned long long)total,
		       line);
}

static void setup_process(void)
{
	struct sigaction sa = { .sa_handler = fault_handler };
	char buf[4096];
	size_t off;

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, exit_signal);
	signal(SIGTERM, exit_signal);
	atexit(restore_settings);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		ksft_exit_fail_msg("/proc/self/pagemap: %s\n", strerror(errno));
	src_fd = memfd_create("pagemap_fuzz_src", MFD_CLOEXEC);
	for (off = 0; src_fd >= 0 && off < SRC_LEN; off += sizeof(buf)) {
		memset(buf, 0x30 + off / sizeof(buf), sizeof(buf));
		if (pwrite(src_fd, buf, sizeof(buf), off) != sizeof(buf))
			ksft_exit_fail_msg("source file: %s\n", strerror(errno));
	}
	if (src_fd < 0)
		ksft_exit_fail_msg("memfd_create: %s\n", strerror(errno));
}

/*
 * The tests. main() parses the options and probes the kernel once; the
 * harness then forks a child per memory type, which runs that type's
 * share of the budget: a crash or hang in one type is that type's
 * failure, and the others still run.
 */

static int ntypes;		/* memory types selected */
static uint64_t ops_each;	/* each type's share of --ops */
static char missing[256];	/* features this machine lacks, or "" */

/* A fixture with no variants, so that the test is not a bare TEST() */
FIXTURE(machine) {
};

FIXTURE_SETUP(machine)
{
}

FIXTURE_TEARDOWN(machine)
{
}

TEST_F(machine, features)
{
	if (!missing[0])
		return;
	if (opt.require_all)
		ASSERT_TRUE(false) TH_LOG("missing: %s", missing);
	SKIP(return, "features missing (a failure with --require-all): %s",
	     missing);
}

/*
 * PAGEMAP_SCAN on 6.1 is this backport, which documents four answers that
 * differ from upstream's (Documentation/admin-guide/mm/pagemap.rst,
 * "Differences from upstream Linux"). The fuzzer's checks adopt what the
 * probes found, so that they hold on upstream kernels as well; on this
 * tree the probes must find the documented answers, or a regression would
 * only change what the fuzzer expects.
 */
static bool kernel_is_this_backport(void)
{
	struct utsname u;

	return !uname(&u) && !strncmp(u.release, "6.1.", 4);
}

TEST_F(machine, backport_semantics)
{
	if (!kernel_is_this_backport())
		SKIP(return, "not a 6.1 kernel: upstream answers are adopted");
	EXPECT_TRUE(feat.undo_on_error)
		TH_LOG("a failed PM_SCAN_WP_MATCHING keeps its protection");
	EXPECT_TRUE(feat.later_batch_regions)
		TH_LOG("EFAULT in a later batch loses the earlier regions");
	EXPECT_TRUE(feat.wpasync_upfront)
		TH_LOG("PM_SCAN_CHECK_WPASYNC checks only the VMAs walked");
	EXPECT_FALSE(feat.stale_walk_end)
		TH_LOG("walk_end is stale after more than one batch");
}

FIXTURE(fuzz) {
};

FIXTURE_VARIANT(fuzz) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(fuzz, anon) { .type = MT_ANON };
FIXTURE_VARIANT_ADD(fuzz, thp) { .type = MT_THP };
FIXTURE_VARIANT_ADD(fuzz, shmem) { .type = MT_SHMEM };
FIXTURE_VARIANT_ADD(fuzz, memfd) { .type = MT_MEMFD };
FIXTURE_VARIANT_ADD(fuzz, hugetlb) { .type = MT_HUGETLB };
FIXTURE_VARIANT_ADD(fuzz, hugetlb_shared) { .type = MT_HUGETLB_SHARED };
FIXTURE_VARIANT_ADD(fuzz, file) { .type = MT_FILE };
FIXTURE_VARIANT_ADD(fuzz, file_shared) { .type = MT_FILE_SHARED };

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

/*
 * What must belong to the test's child, not to main(): /proc/self/pagemap
 * opened by main() describes main()'s memory, and io_uring rings are made
 * here so that their requests run for this mm.
 */
static void child_open_own(void)
{
	int i;

	close(pagemap_fd);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		ksft_exit_fail_msg("/proc/self/pagemap: %s\n", strerror(errno));

	for (i = 0; i <= opt.threads; i++)
		workers[i].ring_ok = feat.io_uring &&
				     !uring_init(&workers[i].ring, 4);
}

/* The timeout is set in main() from the budget: see fuzz_set_timeout() */
TEST_F(fuzz, run)
{
	const char *name = mem_types[variant->type].name;
	double seconds = opt.seconds / (ntypes ? ntypes : 1);
	struct phase_result res;
	uint64_t pend_total;
	int ret;

	if (!(opt.types & (1U << variant->type)))
		SKIP(return, "%s: not in --types", name);
	child_open_own();
	ret = run_phase(variant->type, seconds, ops_each, &res);
	print_op_counts(name);
	if (ret == KSFT_FAIL) {
		if (failed) {
			print_failure(name);
			print_reproduce(variant->type, seconds, ops_each);
		}
		ASSERT_TRUE(false) TH_LOG("%s: %s", name,
					  failed ? "see above" : res.why);
	}
	if (ret == KSFT_SKIP)
		SKIP(return, "%s: %s", name, res.why);
	pend_total = res.pend_checked + res.pend_skipped;
	ksft_print_msg("%s: %llu ops in %.1f s (%.0f/s), %llu scans\n", name,
		       (unsigned long long)res.ops, res.seconds,
		       res.seconds > 0 ? res.ops / res.seconds : 0,
		       (unsigned long long)res.scans);
	ksft_print_msg("%s: %llu pages had to be reported if written\n",
		       name, (unsigned long long)res.checked);
	ksft_print_msg("%s: %llu written pages were, %llu excused by an undo\n",
		       name, (unsigned long long)res.pending,
		       (unsigned long long)res.excused);
	ksft_print_msg("%s: pending writes scanned: %llu judged, %llu not (%.1f%% judged)\n",
		       name, (unsigned long long)res.pend_checked,
		       (unsigned long long)res.pend_skipped,
		       pend_total ? 100.0 * res.pend_checked / pend_total : 0);
	/* A run that checked nothing has tested nothing */
	ASSERT_TRUE(res.scans > 0);
	ASSERT_TRUE(res.checked > 0) TH_LOG("%s: no scan had a write to report",
					    name);
	ASSERT_TRUE(res.pend_checked > 0)
		TH_LOG("%s: no scan was judged on a pending write", name);
	/*
	 * Exemptions (hugetlb, walk_end, masks that cannot say) must leave
	 * most pending writes judged: a tenth is no test of lost writes.
	 */
	ASSERT_FALSE(pend_total >= MIN_PENDING &&
		     res.pend_checked * 10 < pend_total)
		TH_LOG("%s: only %llu of %llu pending writes were judged", name,
		       (unsigned long long)res.pend_checked,
		       (unsigned long long)pend_total);
}

/*
 * The harness kills a test that outlives its timeout, a hang's only
 * verdict; the budget is known only now, so the test's fixed default is
 * replaced with the type's share and room for setup and final scans.
 */
static void fuzz_set_timeout(double seconds)
{
	_fuzz_run_object.timeout = (int)(seconds * 2) + 120;
}

int main(int argc, char **argv)
{
	bool remote_works;
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	prog_name = argv[0];
	psize = sysconf(_SC_PAGESIZE);
	parse_options(argc, argv);
	/* One TAP header, before the probes' messages, not another later */
	ksft_print_header();
	setenv("KSFT_TAP_LEVEL", "1", 0);
	ksft_print_msg("seed %llu\n", (unsigned long long)opt.seed);
	setup_process();
	probe_features();
	for (i = 0; i < MT_NR; i++)
		ntypes += !!(opt.types & (1U << i));
	if (opt.types & ((1U << MT_HUGETLB) | (1U << MT_HUGETLB_SHARED)))
		feat.hugetlb = ensure_hugepages();
	else
		feat.hugetlb = true;
	ksft_print_msg("hugetlb: %s\n", feat.hugetlb ? "yes" :
		       "no (not enough free 2 MiB pages)");
	if (!feat.pagemap_scan || !feat.wp_async) {
		/* Without them there is nothing to test */
		if (opt.require_all)
			ksft_exit_fail_msg("no PAGEMAP_SCAN or UFFD_FEATURE_WP_ASYNC\n");
		ksft_exit_skip("no PAGEMAP_SCAN or UFFD_FEATURE_WP_ASYNC\n");
	}
	probe_semantics();
	remote_works = remote_start();
	remote_stop();
	remote_ok = remote_works;
	for (i = 0; i <= opt.threads; i++)
		if (worker_init(&workers[i], i))
			ksft_exit_fail_msg("worker setup: %s\n", strerror(errno));
	missing_features(missing, sizeof(missing));
	ops_each = opt.ops ? (opt.ops + ntypes - 1) / ntypes : 0;
	fuzz_set_timeout(opt.seconds / ntypes);
	/* The children change KSM's settings: restore them here too */
	save_ksm_settings();
	ksft_print_msg("%d memory types, %g s each, %d threads; seed %llu\n",
		       ntypes, opt.seconds / ntypes, opt.threads,
		       (unsigned long long)opt.seed);
	return test_harness_run(argc, argv);
}
