// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of userfaultfd write protection (UFFDIO_REGISTER_MODE_WP):
 *
 *  - UFFDIO_WRITEPROTECT over a range spanning several VMAs, and the errors
 *    it reports for bad modes, bad ranges and VMAs not registered for WP;
 *  - synchronous protection: a write to a protected page is reported as a
 *    UFFD_PAGEFAULT_FLAG_WP message and waits until userspace resolves it;
 *  - UFFD_FEATURE_WP_UNPOPULATED: never-touched anonymous memory can be
 *    protected, and a read of it maps the zero page and keeps the protection;
 *  - UFFD_FEATURE_WP_ASYNC: the kernel resolves write faults itself, any
 *    memory type can be registered, and the PM_UFFD_WP bit of
 *    /proc/self/pagemap tells which pages were written;
 *  - UFFDIO_UNREGISTER and fork() drop or keep the protection as documented;
 *  - a page table allocation failure makes UFFDIO_WRITEPROTECT fail with
 *    ENOMEM instead of leaving memory silently unprotected.
 *
 * Every memory type is a FIXTURE_VARIANT.  Needs root (PFNs in the pagemap,
 * fault injection), free 2 MiB hugetlb pages and THP in "madvise" or
 * "always" mode.  Regular files are created in $PMS_EXT2_DIR, or in /var/tmp
 * when it is not set: it must not be tmpfs, which would be shmem.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <linux/kernel-page-flags.h>
#include <linux/magic.h>
#include <linux/mempolicy.h>
#include <linux/perf_event.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>

#include <liburing.h>

#include "../kselftest_harness.h"

#define SZ_2M			(2UL << 20)

/* Bits of a /proc/self/pagemap entry, see Documentation/admin-guide/mm/pagemap.rst */
#ifndef BIT_ULL
#define BIT_ULL(nr)		(1ULL << (nr))
#endif
#define PM_PFN_MASK		(BIT_ULL(55) - 1)
#define PM_UFFD_WP		BIT_ULL(57)
#define PM_PRESENT		BIT_ULL(63)

#define WP			UFFDIO_WRITEPROTECT_MODE_WP
#define DONTWAKE		UFFDIO_WRITEPROTECT_MODE_DONTWAKE

#define IOCTL_BIT(nr)		(1ULL << (nr))
/*
 * UFFDIO_REGISTER reports the range ioctls it guarantees.  Newer kernels add
 * bits this uapi does not define (UFFDIO_MOVE, UFFDIO_POISON), so only the
 * bits known here are compared.
 */
#define KNOWN_RANGE_IOCTLS	(IOCTL_BIT(_UFFDIO_WAKE) | IOCTL_BIT(_UFFDIO_COPY) | \
				 IOCTL_BIT(_UFFDIO_ZEROPAGE) | \
				 IOCTL_BIT(_UFFDIO_WRITEPROTECT) | IOCTL_BIT(_UFFDIO_CONTINUE))
#define RANGE_IOCTLS_WP		(IOCTL_BIT(_UFFDIO_WAKE) | IOCTL_BIT(_UFFDIO_COPY) | \
				 IOCTL_BIT(_UFFDIO_ZEROPAGE) | IOCTL_BIT(_UFFDIO_WRITEPROTECT))
/* hugetlb has no UFFDIO_ZEROPAGE */
#define RANGE_IOCTLS_WP_HUGETLB	(IOCTL_BIT(_UFFDIO_WAKE) | IOCTL_BIT(_UFFDIO_COPY) | \
				 IOCTL_BIT(_UFFDIO_WRITEPROTECT))

/* Synchronous tests: holes of every memory type can be protected */
#define SYNC_FEATURES		(UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_UNPOPULATED)
#define ASYNC_FEATURES		(UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_ASYNC)

static size_t page_size;

enum mem_type {
	MEM_ANON,		/* MAP_PRIVATE | MAP_ANONYMOUS */
	MEM_THP,		/* the same, one 2 MiB aligned PMD, MADV_HUGEPAGE */
	MEM_SHMEM,		/* MAP_SHARED | MAP_ANONYMOUS */
	MEM_MEMFD,		/* memfd_create() shmem, MAP_SHARED */
	MEM_HUGETLB,		/* MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB */
	MEM_HUGETLB_MEMFD,	/* memfd_create(MFD_HUGETLB), MAP_SHARED */
	MEM_FILE_SHARED,	/* regular file, MAP_SHARED */
	MEM_FILE_PRIVATE,	/* regular file, MAP_PRIVATE */
};

static const char * const mem_type_name[] = {
	[MEM_ANON] = "private anon",
	[MEM_THP] = "anon THP",
	[MEM_SHMEM] = "shared anon (shmem)",
	[MEM_MEMFD] = "memfd shmem",
	[MEM_HUGETLB] = "private hugetlb",
	[MEM_HUGETLB_MEMFD] = "memfd hugetlb",
	[MEM_FILE_SHARED] = "regular file MAP_SHARED",
	[MEM_FILE_PRIVATE] = "regular file MAP_PRIVATE",
};

static bool mem_is_hugetlb(enum mem_type type)
{
	return type == MEM_HUGETLB || type == MEM_HUGETLB_MEMFD;
}

/* Memory whose never-touched pages read as the shared zero page */
static bool mem_is_private_anon(enum mem_type type)
{
	return type == MEM_ANON || type == MEM_THP;
}

static bool mem_is_regular_file(enum mem_type type)
{
	return type == MEM_FILE_SHARED || type == MEM_FILE_PRIVATE;
}

struct mem_area {
	enum mem_type type;
	char *reserve;		/* PROT_NONE guard VMAs around the area */
	size_t reserve_len;
	char *addr;		/* the memory under test */
	size_t len;
	size_t unit;		/* what the kernel protects as one page: 4K or 2M */
	int fd;			/* backing file, or -1 */
};

/* Faults that reach userspace, counted by a thread that resolves them */
struct wp_handler {
	int uffd;
	size_t unit;		/* resolve a whole huge page at a time */
	pthread_t thread;
	bool running;
	int stop;
	int wp_faults;		/* UFFD_PAGEFAULT_FLAG_WP messages */
	int other_msgs;		/* any other message but UFFD_EVENT_FORK */
	int fork_events;
	int child_uffd;		/* uffd of the last UFFD_EVENT_FORK, or -1 */
	unsigned long last_addr;	/* address of the last WP fault */
	int error;		/* first errno the thread met, or 0 */
};

/* What every test works on: one area of one memory type and its uffd */
struct wp_env {
	struct mem_area mem;
	struct wp_handler handler;
	int uffd;
	int pagemap_fd;
};

/* Memory accesses the compiler may not drop or merge: they are what faults */
static void poke(char *p, char val)
{
	__atomic_store_n(p, val, __ATOMIC_SEQ_CST);
}

static char peek(const char *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static char *unit_start(const char *p, size_t unit)
{
	return (char *)((uintptr_t)p & ~(uintptr_t)(unit - 1));
}

/* The next functions return 0 or the errno of the failed ioctl */
static int uffd_api(int uffd, __u64 features, __u64 *features_out)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(uffd, UFFDIO_API, &api))
		return errno;
	if (features_out)
		*features_out = api.features;
	return 0;
}

static int register_range(int uffd, void *addr, size_t len, __u64 mode, __u64 *ioctls)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = mode,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		return errno;
	if (ioctls)
		*ioctls = reg.ioctls;
	return 0;
}

static int unregister_range(int uffd, void *addr, size_t len)
{
	struct uffdio_range range = { .start = (uintptr_t)addr, .len = len };

	return ioctl(uffd, UFFDIO_UNREGISTER, &range) ? errno : 0;
}

static int wp_range(int uffd, void *addr, size_t len, __u64 mode)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = mode,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) ? errno : 0;
}

/* For ioctls the helpers above do not cover */
static int ioctl_errno(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? errno : 0;
}

static int uffd_create(void)
{
	return syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
}

static int open_uffd(struct __test_metadata *_metadata, __u64 features)
{
	int uffd = uffd_create();

	ASSERT_GE(uffd, 0) TH_LOG("userfaultfd(): %s", strerror(errno));
	ASSERT_EQ(0, uffd_api(uffd, features, NULL))
		TH_LOG("UFFDIO_API refused features 0x%llx", (unsigned long long)features);
	return uffd;
}

/* True when a message is queued on @uffd: it must never be in async mode */
static bool uffd_readable(int uffd)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
}

static ssize_t read_pagemap(int fd, const char *addr, size_t npages, __u64 *ents)
{
	off_t off = (uintptr_t)addr / page_size * sizeof(*ents);

	return pread(fd, ents, npages * sizeof(*ents), off);
}

static __u64 pagemap_entry(struct __test_metadata *_metadata, int fd, const char *addr)
{
	__u64 ent;

	ASSERT_EQ((ssize_t)sizeof(ent), read_pagemap(fd, addr, 1, &ent));
	return ent;
}

static bool page_wp(struct __test_metadata *_metadata, int fd, const char *addr)
{
	return pagemap_entry(_metadata, fd, addr) & PM_UFFD_WP;
}

/* Pages of [addr, addr + len) that have PM_UFFD_WP, or -1: safe in a child */
static long count_wp_pages(int fd, const char *addr, size_t len)
{
	size_t npages = len / page_size, done, i, n;
	__u64 ents[512];
	long count = 0;

	for (done = 0; done < npages; done += n) {
		n = npages - done < 512 ? npages - done : 512;
		if (read_pagemap(fd, addr + done * page_size, n, ents) !=
		    (ssize_t)(n * sizeof(*ents)))
			return -1;
		for (i = 0; i < n; i++)
			count += !!(ents[i] & PM_UFFD_WP);
	}
	return count;
}

static long count_wp(struct __test_metadata *_metadata, int fd, const char *addr, size_t len)
{
	long count = count_wp_pages(fd, addr, len);

	ASSERT_GE(count, 0) TH_LOG("reading /proc/self/pagemap failed");
	return count;
}

/*
 * Pages of the area whose PM_UFFD_WP differs from "protected unless in the
 * same unit as @a or @b": what async mode leaves after writes to @a and @b.
 */
static int wp_mismatches(struct __test_metadata *_metadata, struct wp_env *e,
			 const char *a, const char *b)
{
	struct mem_area *m = &e->mem;
	int mismatches = 0;
	char *p;

	for (p = m->addr; p < m->addr + m->len; p += page_size) {
		bool written = unit_start(p, m->unit) == unit_start(a, m->unit) ||
			       unit_start(p, m->unit) == unit_start(b, m->unit);

		if (page_wp(_metadata, e->pagemap_fd, p) == !written)
			continue;
		if (!mismatches)
			TH_LOG("page %zu: PM_UFFD_WP is %s", (size_t)(p - m->addr) / page_size,
			       written ? "set after a write" : "clear on an unwritten page");
		mismatches++;
	}
	return mismatches;
}

/* Number of VMAs that overlap [addr, addr + len) */
static int count_vmas(struct __test_metadata *_metadata, const char *addr, size_t len)
{
	unsigned long start = (uintptr_t)addr, end = start + len, lo, hi;
	char line[512];
	int n = 0;
	FILE *f;

	f = fopen("/proc/self/maps", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo < end && hi > start)
			n++;
	fclose(f);
	return n;
}

/* AnonHugePages of the VMA that holds @addr: PMD-mapped THP, in kB */
static unsigned long anon_huge_kb(struct __test_metadata *_metadata, const char *addr)
{
	unsigned long a = (uintptr_t)addr, lo, hi, kb = 0;
	bool in_vma = false;
	char line[512];
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in_vma = lo <= a && a < hi;
			continue;
		}
		if (in_vma && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* PFN of the shared zero page, which a read of an anonymous hole maps */
static __u64 zero_page_pfn(struct __test_metadata *_metadata, int pagemap_fd)
{
	char *p = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	__u64 ent;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, peek(p));
	ent = pagemap_entry(_metadata, pagemap_fd, p);
	munmap(p, page_size);
	ASSERT_TRUE(ent & PM_PRESENT);
	ASSERT_NE(0, ent & PM_PFN_MASK) TH_LOG("pagemap hides PFNs: run as root");
	return ent & PM_PFN_MASK;
}

/* An unlinked file on a real filesystem: tmpfs would make it shmem */
static int open_regular_file(struct __test_metadata *_metadata)
{
	const char *dir = getenv("PMS_EXT2_DIR");
	struct statfs sfs;
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/var/tmp";
	snprintf(path, sizeof(path), "%s/uffd-wp.XXXXXX", dir);
	fd = mkstemp(path);
	ASSERT_GE(fd, 0) TH_LOG("mkstemp(%s): %s", path, strerror(errno));
	unlink(path);
	ASSERT_EQ(0, fstatfs(fd, &sfs));
	ASSERT_NE(TMPFS_MAGIC, sfs.f_type)
		TH_LOG("%s is tmpfs: set PMS_EXT2_DIR to a disk filesystem", dir);
	return fd;
}

/*
 * Map the area in the middle of a PROT_NONE reservation, so that it has
 * known neighbours: unregistered VMAs below and above it, that tests can
 * also unmap to make holes.  THP and hugetlb need 2 MiB alignment.
 */
static void mem_area_map(struct __test_metadata *_metadata, struct mem_area *m,
			 enum mem_type type)
{
	int flags = MAP_FIXED | MAP_SHARED;
	size_t align = page_size;
	char *p;

	m->type = type;
	m->unit = page_size;
	m->len = 16 * page_size;
	if (type == MEM_THP) {
		m->len = SZ_2M;
		align = SZ_2M;
	} else if (mem_is_hugetlb(type)) {
		m->len = 4 * SZ_2M;
		m->unit = SZ_2M;
		align = SZ_2M;
	}

	m->reserve_len = m->len + 3 * align;
	m->reserve = mmap(NULL, m->reserve_len, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, m->reserve);
	/* At least one align of guard on each side */
	m->addr = unit_start(m->reserve + 2 * align - 1, align);

	switch (type) {
	case MEM_ANON:
	case MEM_THP:
		flags = MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	case MEM_SHMEM:
		flags |= MAP_ANONYMOUS;
		break;
	case MEM_HUGETLB:
		flags = MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
		break;
	case MEM_MEMFD:
		m->fd = memfd_create("uffd-wp", 0);
		break;
	case MEM_HUGETLB_MEMFD:
		m->fd = memfd_create("uffd-wp", MFD_HUGETLB);
		break;
	case MEM_FILE_SHARED:
		m->fd = open_regular_file(_metadata);
		break;
	case MEM_FILE_PRIVATE:
		m->fd = open_regular_file(_metadata);
		flags = MAP_FIXED | MAP_PRIVATE;
		break;
	}
	if (!(flags & MAP_ANONYMOUS)) {
		ASSERT_GE(m->fd, 0) TH_LOG("memfd_create(): %s", strerror(errno));
		ASSERT_EQ(0, ftruncate(m->fd, m->len));
	}

	p = mmap(m->addr, m->len, PROT_READ | PROT_WRITE, flags, m->fd, 0);
	ASSERT_EQ(m->addr, p)
		TH_LOG("mmap of %s failed: %s%s", mem_type_name[type], strerror(errno),
		       mem_is_hugetlb(type) ? " (free 2 MiB hugetlb pages needed)" : "");
	if (type == MEM_THP)
		ASSERT_EQ(0, madvise(m->addr, m->len, MADV_HUGEPAGE));
}

static void mem_area_unmap(struct mem_area *m)
{
	if (m->reserve && m->reserve != MAP_FAILED)
		munmap(m->reserve, m->reserve_len);
	if (m->fd >= 0)
		close(m->fd);
}

/* Write @val to every 4K page: for THP the first write maps a huge page */
static void fill(struct mem_area *m, size_t len, char val)
{
	size_t off;

	for (off = 0; off < len; off += page_size)
		poke(m->addr + off, val);
}

/* Number of 4K pages of the area that do not hold @val */
static int count_not(struct mem_area *m, char val)
{
	int n = 0;
	size_t off;

	for (off = 0; off < m->len; off += page_size)
		n += peek(m->addr + off) != val;
	return n;
}

static void handle_msg(struct wp_handler *h, const struct uffd_msg *msg)
{
	unsigned long addr;
	int err;

	switch (msg->event) {
	case UFFD_EVENT_PAGEFAULT:
		if (!(msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
			__atomic_fetch_add(&h->other_msgs, 1, __ATOMIC_SEQ_CST);
			break;
		}
		addr = msg->arg.pagefault.address;
		__atomic_store_n(&h->last_addr, addr, __ATOMIC_SEQ_CST);
		/* Count before resolving: the writer checks as soon as it resumes */
		__atomic_fetch_add(&h->wp_faults, 1, __ATOMIC_SEQ_CST);
		err = wp_range(h->uffd, unit_start((char *)addr, h->unit), h->unit, 0);
		if (err)
			__atomic_store_n(&h->error, err, __ATOMIC_SEQ_CST);
		break;
	case UFFD_EVENT_FORK:
		if (h->child_uffd >= 0)
			close(h->child_uffd);
		h->child_uffd = msg->arg.fork.ufd;
		__atomic_fetch_add(&h->fork_events, 1, __ATOMIC_SEQ_CST);
		break;
	default:
		__atomic_fetch_add(&h->other_msgs, 1, __ATOMIC_SEQ_CST);
		break;
	}
}

static void *handler_thread(void *arg)
{
	struct wp_handler *h = arg;
	struct pollfd pfd = { .fd = h->uffd, .events = POLLIN };
	struct uffd_msg msg;

	while (!__atomic_load_n(&h->stop, __ATOMIC_SEQ_CST)) {
		/* A short timeout, so that the thread notices ->stop */
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		if (read(h->uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			if (errno == EAGAIN)
				continue;
			__atomic_store_n(&h->error, errno, __ATOMIC_SEQ_CST);
			break;
		}
		handle_msg(h, &msg);
	}
	return NULL;
}

static void handler_start(struct __test_metadata *_metadata, struct wp_handler *h, int uffd,
			  size_t unit)
{
	h->uffd = uffd;
	h->unit = unit;
	h->stop = 0;
	ASSERT_EQ(0, pthread_create(&h->thread, NULL, handler_thread, h));
	h->running = true;
}

static void handler_stop(struct wp_handler *h)
{
	if (h->running) {
		__atomic_store_n(&h->stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(h->thread, NULL);
		h->running = false;
	}
	if (h->child_uffd >= 0)
		close(h->child_uffd);
	h->child_uffd = -1;
}

static int wp_faults(struct wp_handler *h)
{
	return __atomic_load_n(&h->wp_faults, __ATOMIC_SEQ_CST);
}

/*
 * The handler counts a fork event after reading it, and reading it is what
 * lets fork() return: the count may lag a little behind.
 */
static int wait_for_count(int *counter, int want)
{
	int waited_ms, n = 0;

	for (waited_ms = 0; waited_ms < 5000; waited_ms += 10) {
		n = __atomic_load_n(counter, __ATOMIC_SEQ_CST);
		if (n >= want)
			break;
		usleep(10 * 1000);
	}
	return n;
}

static void env_setup(struct __test_metadata *_metadata, struct wp_env *e, enum mem_type type)
{
	e->uffd = -1;
	e->pagemap_fd = -1;
	e->handler.child_uffd = -1;
	e->mem.fd = -1;
	page_size = getpagesize();
	e->pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_GE(e->pagemap_fd, 0);
	mem_area_map(_metadata, &e->mem, type);
}

static void env_teardown(struct __test_metadata *_metadata, struct wp_env *e)
{
	handler_stop(&e->handler);
	EXPECT_EQ(0, e->handler.error) TH_LOG("fault handler: %s", strerror(e->handler.error));
	EXPECT_EQ(0, e->handler.other_msgs) TH_LOG("unexpected uffd messages");
	if (e->uffd >= 0)
		close(e->uffd);
	if (e->pagemap_fd >= 0)
		close(e->pagemap_fd);
	mem_area_unmap(&e->mem);
}

/* Open the uffd with @features and register the whole area in WP mode */
static void env_register(struct __test_metadata *_metadata, struct wp_env *e, __u64 features)
{
	e->uffd = open_uffd(_metadata, features);
	ASSERT_EQ(0, register_range(e->uffd, e->mem.addr, e->mem.len,
				    UFFDIO_REGISTER_MODE_WP, NULL))
		TH_LOG("cannot register %s for WP", mem_type_name[e->mem.type]);
}

static void env_start_handler(struct __test_metadata *_metadata, struct wp_env *e)
{
	handler_start(_metadata, &e->handler, e->uffd, e->mem.unit);
}

/*
 * Fork, and return how many pages of the area have PM_UFFD_WP in the child.
 * The child only reads its pagemap: a write could block on its uffd.
 */
static long child_count_wp(struct __test_metadata *_metadata, struct wp_env *e,
			   bool then_write)
{
	long count = -1;
	int pipefd[2], status;
	pid_t pid;

	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int fd = open("/proc/self/pagemap", O_RDONLY);
		size_t off;

		if (fd >= 0)
			count = count_wp_pages(fd, e->mem.addr, e->mem.len);
		if (write(pipefd[1], &count, sizeof(count)) != sizeof(count))
			_exit(2);
		/*
		 * An unregistered child must be able to write everywhere: a
		 * protection it inherited would fault for ever, which the
		 * alarm turns into a failure.
		 */
		if (then_write) {
			alarm(20);
			for (off = 0; off < e->mem.len; off += page_size)
				e->mem.addr[off] = 3;
		}
		_exit(0);
	}
	close(pipefd[1]);
	ASSERT_EQ((ssize_t)sizeof(count), read(pipefd[0], &count, sizeof(count)));
	close(pipefd[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_GE(count, 0) TH_LOG("the child could not read its pagemap");
	return count;
}

/* An address in the second half of the area, not at a unit boundary */
static char *second_half(struct mem_area *m)
{
	return m->addr + m->len / 2 + page_size;
}

/*
 * Synchronous write protection, for the memory types that support it
 * without UFFD_FEATURE_WP_ASYNC.
 */
FIXTURE(sync_wp) {
	struct wp_env e;
};

FIXTURE_VARIANT(sync_wp) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(sync_wp, anon) {
	.type = MEM_ANON,
};

FIXTURE_VARIANT_ADD(sync_wp, anon_thp) {
	.type = MEM_THP,
};

FIXTURE_VARIANT_ADD(sync_wp, shmem) {
	.type = MEM_SHMEM,
};

FIXTURE_VARIANT_ADD(sync_wp, memfd) {
	.type = MEM_MEMFD,
};

FIXTURE_VARIANT_ADD(sync_wp, hugetlb) {
	.type = MEM_HUGETLB,
};

FIXTURE_VARIANT_ADD(sync_wp, hugetlb_memfd) {
	.type = MEM_HUGETLB_MEMFD,
};

FIXTURE_SETUP(sync_wp)
{
	env_setup(_metadata, &self->e, variant->type);
}

FIXTURE_TEARDOWN(sync_wp)
{
	env_teardown(_metadata, &self->e);
}

/*
 * One UFFDIO_WRITEPROTECT covers all the VMAs of its range: mprotect() splits
 * the area in two VMAs, the whole range is protected, and after the first
 * half is writable again a write to each half is a WP fault.  Unprotecting
 * across the split works the same way.
 */
TEST_F(sync_wp, protect_across_vmas)
{
	struct wp_env *e = &self->e;
	char *addr = e->mem.addr;
	size_t len = e->mem.len, half = len / 2;

	env_register(_metadata, e, SYNC_FEATURES);
	fill(&e->mem, len, 1);
	env_start_handler(_metadata, e);

	ASSERT_EQ(0, mprotect(addr, half, PROT_READ));
	ASSERT_EQ(2, count_vmas(_metadata, addr, len));
	ASSERT_EQ(0, wp_range(e->uffd, addr, len, WP));
	ASSERT_EQ(0, mprotect(addr, half, PROT_READ | PROT_WRITE));
	EXPECT_EQ(len / page_size, count_wp(_metadata, e->pagemap_fd, addr, len));

	poke(addr, 2);
	EXPECT_EQ(1, wp_faults(&e->handler));
	poke(addr + half, 3);
	EXPECT_EQ(2, wp_faults(&e->handler));

	ASSERT_EQ(0, mprotect(addr, half, PROT_READ));
	ASSERT_EQ(2, count_vmas(_metadata, addr, len));
	ASSERT_EQ(0, wp_range(e->uffd, addr, len, 0));
	ASSERT_EQ(0, mprotect(addr, half, PROT_READ | PROT_WRITE));
	EXPECT_EQ(0, count_wp(_metadata, e->pagemap_fd, addr, len));

	fill(&e->mem, len, 4);
	EXPECT_EQ(2, wp_faults(&e->handler));
	EXPECT_EQ(0, count_not(&e->mem, 4));
}

/*
 * Every VMA of the range must be registered for WP: a VMA registered for
 * MISSING only, or not registered at all, makes the ioctl fail with ENOENT.
 * A VMA registered for MISSING | WP is fine.
 */
TEST_F(sync_wp, protect_needs_wp_vmas)
{
	struct wp_env *e = &self->e;
	char *addr = e->mem.addr;
	size_t len = e->mem.len, half = len / 2;
	int uffd;

	e->uffd = open_uffd(_metadata, SYNC_FEATURES);
	uffd = e->uffd;
	ASSERT_EQ(0, register_range(uffd, addr, half, UFFDIO_REGISTER_MODE_WP, NULL));
	ASSERT_EQ(0, register_range(uffd, addr + half, half,
				    UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP, NULL));
	ASSERT_EQ(2, count_vmas(_metadata, addr, len));
	EXPECT_EQ(0, wp_range(uffd, addr, len, WP));
	EXPECT_EQ(0, wp_range(uffd, addr, len, 0));

	/* The second half registered for MISSING faults only */
	ASSERT_EQ(0, unregister_range(uffd, addr + half, half));
	ASSERT_EQ(0, register_range(uffd, addr + half, half, UFFDIO_REGISTER_MODE_MISSING, NULL));
	EXPECT_EQ(ENOENT, wp_range(uffd, addr, len, WP));
	EXPECT_EQ(ENOENT, wp_range(uffd, addr + half, half, WP));
	EXPECT_EQ(ENOENT, wp_range(uffd, addr, len, 0));
	EXPECT_EQ(0, wp_range(uffd, addr, half, WP));

	/* The second half not registered at all */
	ASSERT_EQ(0, unregister_range(uffd, addr + half, half));
	EXPECT_EQ(ENOENT, wp_range(uffd, addr, len, WP));
	EXPECT_EQ(ENOENT, wp_range(uffd, addr + half, half, WP));
	EXPECT_EQ(0, wp_range(uffd, addr, half, 0));
}

/*
 * The errors of UFFDIO_WRITEPROTECT, as the upstream kernel reports them.
 * The area has unregistered PROT_NONE VMAs right below and above it.
 */
TEST_F(sync_wp, writeprotect_errnos)
{
	struct wp_env *e = &self->e;
	char *addr = e->mem.addr;
	size_t len = e->mem.len, unit = e->mem.unit;
	int uffd;

	env_register(_metadata, e, SYNC_FEATURES);
	uffd = e->uffd;

	EXPECT_EQ(0, wp_range(uffd, addr, len, WP));
	/* Unprotect without waking the faulting threads */
	EXPECT_EQ(0, wp_range(uffd, addr, len, DONTWAKE));
	/* Protection never wakes anybody: asking for both is an error */
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, len, WP | DONTWAKE));
	/* Unknown mode bits */
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, len, 1ULL << 2));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, len, 1ULL << 63));

	/* Ranges that are not page aligned, empty or wrap around */
	EXPECT_EQ(EINVAL, wp_range(uffd, addr + 1, page_size, WP));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr + page_size / 2, page_size, WP));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, page_size + 1, WP));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, 0, WP));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, -(uintptr_t)addr, WP));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, (size_t)-page_size, WP));

	/* Beyond the user address space */
	EXPECT_EQ(EINVAL, wp_range(uffd, (void *)(1UL << 63), page_size, WP));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, 1UL << 62, WP));

	/* Address 0 is not checked against mmap_min_addr: there is no VMA */
	EXPECT_EQ(ENOENT, wp_range(uffd, NULL, page_size, WP));

	/* VMAs that are not registered: the guards around the area */
	EXPECT_EQ(ENOENT, wp_range(uffd, addr - unit, unit, WP));
	EXPECT_EQ(ENOENT, wp_range(uffd, addr, len + unit, WP));
	EXPECT_EQ(ENOENT, wp_range(uffd, addr - unit, len + unit, WP));

	/* Holes between VMAs are skipped, but a range must hit a VMA */
	ASSERT_EQ(0, munmap(addr - unit, unit));
	EXPECT_EQ(ENOENT, wp_range(uffd, addr - unit, unit, WP));
	EXPECT_EQ(0, wp_range(uffd, addr - unit, unit + len, WP));
	EXPECT_EQ(len / page_size, count_wp(_metadata, e->pagemap_fd, addr, len));
	EXPECT_EQ(0, wp_range(uffd, addr - unit, unit + len, 0));
	EXPECT_EQ(0, count_wp(_metadata, e->pagemap_fd, addr, len));

	if (!mem_is_hugetlb(e->mem.type))
		return;
	/* hugetlb ranges must be aligned to the huge page size */
	EXPECT_EQ(EINVAL, wp_range(uffd, addr + page_size, unit, WP));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, unit + page_size, WP));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr, page_size, WP));
	EXPECT_EQ(EINVAL, wp_range(uffd, addr + unit, unit / 2, 0));
	EXPECT_EQ(0, wp_range(uffd, addr + unit, unit, WP));
	EXPECT_EQ(unit / page_size, count_wp(_metadata, e->pagemap_fd, addr, len));
}

/*
 * A write to a protected page is a WP fault message for that page (hugetlb
 * reports the start of the huge page), and the write completes once the
 * handler unprotects it.  Reads of protected pages do not fault.
 */
TEST_F(sync_wp, write_fault_reported)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *target = second_half(m);
	size_t npages = m->len / page_size;

	env_register(_metadata, e, SYNC_FEATURES);
	fill(m, m->len, 1);
	env_start_handler(_metadata, e);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	EXPECT_EQ(npages, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));

	EXPECT_EQ(1, peek(m->addr));
	EXPECT_EQ(1, peek(target));
	EXPECT_EQ(0, wp_faults(&e->handler));

	poke(target, 2);
	EXPECT_EQ(1, wp_faults(&e->handler));
	EXPECT_EQ(unit_start(target, m->unit),
		  unit_start((char *)e->handler.last_addr, m->unit));
	EXPECT_GE(target, (char *)e->handler.last_addr);
	EXPECT_EQ(2, peek(target));
	EXPECT_FALSE(page_wp(_metadata, e->pagemap_fd, target));
	EXPECT_TRUE(page_wp(_metadata, e->pagemap_fd, m->addr));
	EXPECT_EQ(npages - m->unit / page_size,
		  count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
}

/*
 * Protect, unprotect, protect again: writes fault exactly while protected,
 * for a page that was populated first and for one that was never touched.
 */
TEST_F(sync_wp, protect_unprotect_cycle)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *populated = m->addr, *untouched = second_half(m);

	env_register(_metadata, e, SYNC_FEATURES);
	env_start_handler(_metadata, e);

	poke(populated, 1);
	EXPECT_EQ(0, wp_faults(&e->handler));

	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	poke(populated, 2);
	EXPECT_EQ(1, wp_faults(&e->handler));
	poke(untouched, 2);
	EXPECT_EQ(2, wp_faults(&e->handler));

	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, 0));
	EXPECT_EQ(0, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	poke(populated, 3);
	poke(untouched, 3);
	EXPECT_EQ(2, wp_faults(&e->handler));

	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	EXPECT_EQ(m->len / page_size, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	poke(populated, 4);
	EXPECT_EQ(3, wp_faults(&e->handler));
	poke(untouched, 4);
	EXPECT_EQ(4, wp_faults(&e->handler));
	EXPECT_EQ(4, peek(populated));
	EXPECT_EQ(4, peek(untouched));
}

/*
 * A never-touched range can be protected (for anonymous memory thanks to
 * UFFD_FEATURE_WP_UNPOPULATED).  A read of it is no fault for userspace,
 * maps the zero page for private anonymous memory, and keeps the
 * protection: the next write is a WP fault.
 */
TEST_F(sync_wp, untouched_read_keeps_wp)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *target = second_half(m);
	__u64 zero_pfn = 0, ent;

	if (mem_is_private_anon(m->type))
		zero_pfn = zero_page_pfn(_metadata, e->pagemap_fd);
	env_register(_metadata, e, SYNC_FEATURES);
	env_start_handler(_metadata, e);

	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	EXPECT_EQ(m->len / page_size, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));

	EXPECT_EQ(0, peek(target));
	EXPECT_EQ(0, wp_faults(&e->handler));
	ent = pagemap_entry(_metadata, e->pagemap_fd, target);
	EXPECT_TRUE(ent & PM_PRESENT);
	EXPECT_TRUE(ent & PM_UFFD_WP);
	if (mem_is_private_anon(m->type))
		EXPECT_EQ(zero_pfn, ent & PM_PFN_MASK);

	poke(target, 1);
	EXPECT_EQ(1, wp_faults(&e->handler));
	EXPECT_EQ(1, peek(target));
	EXPECT_FALSE(page_wp(_metadata, e->pagemap_fd, target));
}

/* A write to a never-touched protected page is a WP fault, once per page */
TEST_F(sync_wp, untouched_write_faults)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *first = m->addr + page_size, *last = m->addr + m->len - page_size;

	env_register(_metadata, e, SYNC_FEATURES);
	env_start_handler(_metadata, e);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));

	poke(first, 1);
	EXPECT_EQ(1, wp_faults(&e->handler));
	EXPECT_EQ(unit_start(first, m->unit), unit_start((char *)e->handler.last_addr, m->unit));
	poke(first, 2);
	EXPECT_EQ(1, wp_faults(&e->handler));
	poke(last, 3);
	EXPECT_EQ(2, wp_faults(&e->handler));
	EXPECT_EQ(unit_start(last, m->unit), unit_start((char *)e->handler.last_addr, m->unit));
	EXPECT_EQ(2, peek(first));
	EXPECT_EQ(3, peek(last));
	EXPECT_EQ(m->len / page_size - 2 * m->unit / page_size,
		  count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
}

/*
 * UFFDIO_UNREGISTER drops the protection of populated pages and holes
 * alike: no PM_UFFD_WP remains and writes go through without a message.
 */
TEST_F(sync_wp, unregister_clears_wp)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;

	env_register(_metadata, e, SYNC_FEATURES);
	fill(m, m->len / 2, 1);
	env_start_handler(_metadata, e);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	EXPECT_EQ(m->len / page_size, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));

	ASSERT_EQ(0, unregister_range(e->uffd, m->addr, m->len));
	EXPECT_EQ(0, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	fill(m, m->len, 2);
	EXPECT_EQ(0, wp_faults(&e->handler));
	EXPECT_EQ(0, count_not(m, 2));
	EXPECT_EQ(0, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
}

/*
 * With UFFD_FEATURE_EVENT_FORK the uffd receives a fork event, and the
 * child inherits the protection of populated pages and of holes.
 */
TEST_F(sync_wp, fork_event_keeps_wp)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	size_t npages = m->len / page_size;

	env_register(_metadata, e, SYNC_FEATURES | UFFD_FEATURE_EVENT_FORK);
	fill(m, m->len / 2, 1);
	env_start_handler(_metadata, e);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));

	EXPECT_EQ(npages, child_count_wp(_metadata, e, false));
	EXPECT_EQ(1, wait_for_count(&e->handler.fork_events, 1));
	EXPECT_EQ(npages, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
}

/*
 * Without UFFD_FEATURE_EVENT_FORK the child is not registered, so it must
 * not inherit any uffd-wp bit; the parent keeps its protection.
 */
TEST_F(sync_wp, fork_without_event_drops_wp)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	size_t npages = m->len / page_size;

	env_register(_metadata, e, SYNC_FEATURES);
	fill(m, m->len / 2, 1);
	env_start_handler(_metadata, e);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));

	EXPECT_EQ(0, child_count_wp(_metadata, e, true));
	EXPECT_EQ(0, __atomic_load_n(&e->handler.fork_events, __ATOMIC_SEQ_CST));
	EXPECT_EQ(npages, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	poke(m->addr, 2);
	EXPECT_EQ(1, wp_faults(&e->handler));
}

/*
 * Private anonymous memory with and without UFFD_FEATURE_WP_UNPOPULATED,
 * side by side: only with the feature do never-touched pages get
 * protected.
 */
FIXTURE(anon_unpopulated) {
	struct wp_env plain;
	struct wp_env unpop;
};

FIXTURE_VARIANT(anon_unpopulated) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(anon_unpopulated, anon) {
	.type = MEM_ANON,
};

FIXTURE_VARIANT_ADD(anon_unpopulated, anon_thp) {
	.type = MEM_THP,
};

FIXTURE_SETUP(anon_unpopulated)
{
	env_setup(_metadata, &self->plain, variant->type);
	env_setup(_metadata, &self->unpop, variant->type);
}

FIXTURE_TEARDOWN(anon_unpopulated)
{
	env_teardown(_metadata, &self->plain);
	env_teardown(_metadata, &self->unpop);
}

TEST_F(anon_unpopulated, write_faults_only_with_feature)
{
	struct wp_env *plain = &self->plain, *unpop = &self->unpop;
	size_t len = plain->mem.len;

	env_register(_metadata, plain, 0);
	env_register(_metadata, unpop, UFFD_FEATURE_WP_UNPOPULATED);
	env_start_handler(_metadata, plain);
	env_start_handler(_metadata, unpop);

	ASSERT_EQ(0, wp_range(plain->uffd, plain->mem.addr, len, WP));
	ASSERT_EQ(0, wp_range(unpop->uffd, unpop->mem.addr, len, WP));
	EXPECT_EQ(0, count_wp(_metadata, plain->pagemap_fd, plain->mem.addr, len));
	EXPECT_EQ(len / page_size, count_wp(_metadata, unpop->pagemap_fd, unpop->mem.addr, len));

	poke(second_half(&plain->mem), 1);
	EXPECT_EQ(0, wp_faults(&plain->handler));
	poke(second_half(&unpop->mem), 1);
	EXPECT_EQ(1, wp_faults(&unpop->handler));
}

/*
 * UFFD_FEATURE_WP_ASYNC: the kernel resolves WP faults without messages.
 * Registering in WP mode works for any memory type, regular files included.
 */
FIXTURE(async_wp) {
	struct wp_env e;
};

FIXTURE_VARIANT(async_wp) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(async_wp, anon) {
	.type = MEM_ANON,
};

FIXTURE_VARIANT_ADD(async_wp, anon_thp) {
	.type = MEM_THP,
};

FIXTURE_VARIANT_ADD(async_wp, shmem) {
	.type = MEM_SHMEM,
};

FIXTURE_VARIANT_ADD(async_wp, memfd) {
	.type = MEM_MEMFD,
};

FIXTURE_VARIANT_ADD(async_wp, hugetlb) {
	.type = MEM_HUGETLB,
};

FIXTURE_VARIANT_ADD(async_wp, hugetlb_memfd) {
	.type = MEM_HUGETLB_MEMFD,
};

FIXTURE_VARIANT_ADD(async_wp, file_shared) {
	.type = MEM_FILE_SHARED,
};

FIXTURE_VARIANT_ADD(async_wp, file_private) {
	.type = MEM_FILE_PRIVATE,
};

FIXTURE_SETUP(async_wp)
{
	env_setup(_metadata, &self->e, variant->type);
}

FIXTURE_TEARDOWN(async_wp)
{
	env_teardown(_metadata, &self->e);
}

/*
 * WP mode registers with WP_ASYNC and reports the range ioctls of the memory
 * type.  A regular file accepts nothing else: not MISSING, not MISSING | WP,
 * and not WP without WP_ASYNC.  The other types also work synchronously.
 */
TEST_F(async_wp, register_modes)
{
	struct mem_area *m = &self->e.mem;
	__u64 expected = mem_is_hugetlb(m->type) ? RANGE_IOCTLS_WP_HUGETLB : RANGE_IOCTLS_WP;
	__u64 ioctls = 0;
	int uffd, sync_uffd, expected_err = mem_is_regular_file(m->type) ? EINVAL : 0;

	self->e.uffd = open_uffd(_metadata, ASYNC_FEATURES);
	uffd = self->e.uffd;
	ASSERT_EQ(0, register_range(uffd, m->addr, m->len, UFFDIO_REGISTER_MODE_WP, &ioctls));
	TH_LOG("%s: UFFDIO_REGISTER(WP) ioctls 0x%llx", mem_type_name[m->type],
	       (unsigned long long)ioctls);
	EXPECT_EQ(expected, ioctls & KNOWN_RANGE_IOCTLS);
	ASSERT_EQ(0, unregister_range(uffd, m->addr, m->len));

	EXPECT_EQ(expected_err, register_range(uffd, m->addr, m->len,
					       UFFDIO_REGISTER_MODE_MISSING, NULL));
	if (!expected_err)
		EXPECT_EQ(0, unregister_range(uffd, m->addr, m->len));
	EXPECT_EQ(expected_err, register_range(uffd, m->addr, m->len,
					       UFFDIO_REGISTER_MODE_MISSING |
					       UFFDIO_REGISTER_MODE_WP, NULL));
	if (!expected_err)
		EXPECT_EQ(0, unregister_range(uffd, m->addr, m->len));

	sync_uffd = open_uffd(_metadata, UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	EXPECT_EQ(expected_err, register_range(sync_uffd, m->addr, m->len,
					       UFFDIO_REGISTER_MODE_WP, NULL));
	close(sync_uffd);
}

/*
 * Writes to protected pages succeed at once with no message queued, and
 * clear PM_UFFD_WP exactly on what they wrote: one 4K page even inside a
 * PMD-mapped THP, the whole huge page for hugetlb.
 */
TEST_F(async_wp, writes_clear_wp_bit)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *a = second_half(m), *b = m->addr + m->len - page_size;

	env_register(_metadata, e, ASYNC_FEATURES);
	fill(m, m->len, 1);
	if (m->type == MEM_THP)
		ASSERT_LE(SZ_2M >> 10, anon_huge_kb(_metadata, m->addr))
			TH_LOG("the area is not a PMD-mapped THP");
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	EXPECT_EQ(m->len / page_size, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));

	poke(a, 2);
	EXPECT_FALSE(uffd_readable(e->uffd));
	EXPECT_EQ(0, wp_mismatches(_metadata, e, a, a));
	poke(b, 3);
	EXPECT_FALSE(uffd_readable(e->uffd));
	EXPECT_EQ(0, wp_mismatches(_metadata, e, a, b));
	EXPECT_EQ(2, peek(a));
	EXPECT_EQ(3, peek(b));
	EXPECT_EQ(1, peek(m->addr));
}

/*
 * Never-touched memory is protected too (WP_ASYNC implies WP_UNPOPULATED):
 * after one write, only the written page lacks PM_UFFD_WP, and a read of a
 * hole keeps its protection.
 */
TEST_F(async_wp, untouched_writes)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *a = second_half(m);

	env_register(_metadata, e, ASYNC_FEATURES);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	EXPECT_EQ(m->len / page_size, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));

	poke(a, 1);
	EXPECT_FALSE(uffd_readable(e->uffd));
	EXPECT_EQ(0, wp_mismatches(_metadata, e, a, a));
	EXPECT_EQ(0, peek(m->addr));
	EXPECT_TRUE(page_wp(_metadata, e->pagemap_fd, m->addr));
	EXPECT_EQ(1, peek(a));
}

/* Protecting again after writes re-arms the tracking of the written pages */
TEST_F(async_wp, reprotect_after_write)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *a = second_half(m);

	env_register(_metadata, e, ASYNC_FEATURES);
	fill(m, m->len, 1);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	poke(a, 2);
	EXPECT_EQ(0, wp_mismatches(_metadata, e, a, a));

	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	EXPECT_EQ(m->len / page_size, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	poke(a, 3);
	EXPECT_EQ(0, wp_mismatches(_metadata, e, a, a));

	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, 0));
	EXPECT_EQ(0, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	EXPECT_FALSE(uffd_readable(e->uffd));
	EXPECT_EQ(3, peek(a));
}

/* UFFDIO_UNREGISTER drops all protection, for every memory type */
TEST_F(async_wp, unregister_clears_wp)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;

	env_register(_metadata, e, ASYNC_FEATURES);
	fill(m, m->len / 2, 1);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	poke(second_half(m), 2);
	EXPECT_LT(0, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));

	ASSERT_EQ(0, unregister_range(e->uffd, m->addr, m->len));
	EXPECT_EQ(0, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	fill(m, m->len, 3);
	EXPECT_EQ(0, count_not(m, 3));
	EXPECT_EQ(0, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	EXPECT_FALSE(uffd_readable(e->uffd));
}

/* UFFDIO_API with WP_ASYNC: accepted, and reported with WP_UNPOPULATED */
TEST(api_wp_async_features)
{
	__u64 features = 0;
	int uffd = uffd_create();

	ASSERT_GE(uffd, 0);
	ASSERT_EQ(0, uffd_api(uffd, UFFD_FEATURE_WP_ASYNC, &features));
	EXPECT_TRUE(features & UFFD_FEATURE_WP_ASYNC);
	EXPECT_TRUE(features & UFFD_FEATURE_WP_UNPOPULATED);
	close(uffd);

	uffd = uffd_create();
	ASSERT_GE(uffd, 0);
	ASSERT_EQ(0, uffd_api(uffd, UFFD_FEATURE_WP_UNPOPULATED, &features));
	EXPECT_TRUE(features & UFFD_FEATURE_WP_UNPOPULATED);
	close(uffd);
}

/*
 * An unknown feature bit or a wrong api version is EINVAL and zeroes the
 * struct; the fd stays usable for a correct UFFDIO_API.
 */
TEST(api_rejects_bad_requests)
{
	struct uffdio_api api = { .api = UFFD_API };
	int uffd = uffd_create();

	ASSERT_GE(uffd, 0);
	api.features = UFFD_FEATURE_WP_ASYNC | (1ULL << 40);
	EXPECT_EQ(EINVAL, ioctl_errno(uffd, UFFDIO_API, &api));
	EXPECT_EQ(0, api.features);

	api.api = UFFD_API + 1;
	api.features = UFFD_FEATURE_WP_ASYNC;
	EXPECT_EQ(EINVAL, ioctl_errno(uffd, UFFDIO_API, &api));
	EXPECT_EQ(0, api.api);
	EXPECT_EQ(0, api.features);

	EXPECT_EQ(0, uffd_api(uffd, UFFD_FEATURE_WP_ASYNC, NULL));
	close(uffd);
}

/* UFFDIO_API is accepted once per fd */
TEST(api_twice)
{
	int uffd = uffd_create();

	ASSERT_GE(uffd, 0);
	EXPECT_EQ(0, uffd_api(uffd, UFFD_FEATURE_WP_ASYNC, NULL));
	EXPECT_EQ(EINVAL, uffd_api(uffd, UFFD_FEATURE_WP_ASYNC, NULL));
	EXPECT_EQ(EINVAL, uffd_api(uffd, 0, NULL));
	close(uffd);
}

/* Range ioctls before UFFDIO_API are EINVAL */
TEST(ioctls_before_api)
{
	struct uffdio_zeropage zero;
	struct uffdio_range range;
	struct uffdio_copy copy;
	int uffd;
	char *p;

	page_size = getpagesize();
	p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	range.start = (uintptr_t)p;
	range.len = page_size;
	memset(&zero, 0, sizeof(zero));
	zero.range = range;
	memset(&copy, 0, sizeof(copy));
	copy.dst = (uintptr_t)p;
	copy.src = (uintptr_t)p;
	copy.len = page_size;
	uffd = uffd_create();
	ASSERT_GE(uffd, 0);
	EXPECT_EQ(EINVAL, register_range(uffd, p, page_size, UFFDIO_REGISTER_MODE_WP, NULL));
	EXPECT_EQ(EINVAL, unregister_range(uffd, p, page_size));
	EXPECT_EQ(EINVAL, wp_range(uffd, p, page_size, WP));
	EXPECT_EQ(EINVAL, ioctl_errno(uffd, UFFDIO_WAKE, &range));
	EXPECT_EQ(EINVAL, ioctl_errno(uffd, UFFDIO_COPY, &copy));
	EXPECT_EQ(EINVAL, ioctl_errno(uffd, UFFDIO_ZEROPAGE, &zero));

	/* The fd is not spoiled: it works once initialized */
	ASSERT_EQ(0, uffd_api(uffd, UFFD_FEATURE_WP_ASYNC, NULL));
	EXPECT_EQ(0, register_range(uffd, p, page_size, UFFDIO_REGISTER_MODE_WP, NULL));
	EXPECT_EQ(0, wp_range(uffd, p, page_size, WP));
	close(uffd);
	munmap(p, page_size);
}

/*
 * Page table allocation failures.  Protecting a large never-touched anonymous
 * range with WP_UNPOPULATED allocates page tables for the markers; when
 * allocation fails the ioctl must report ENOMEM.  Failures are injected
 * with fail_page_alloc, only in this task (task-filter and make-it-fail).
 */
#define FAIL_PAGE_ALLOC		"/sys/kernel/debug/fail_page_alloc"
#define ENOMEM_AREA		(64UL << 20)

/* Settings, in the order they are applied: probability last arms it */
static const char * const fail_knobs[] = {
	"task-filter", "verbose", "ignore-gfp-wait", "ignore-gfp-highmem",
	"min-order", "interval", "times", "probability",
};

static const char * const fail_values[] = {
	"Y", "0", "N", "N", "0", "1", "-1", "100",
};

static int write_knob(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t len = strlen(val), ret;

	if (fd < 0)
		return -1;
	ret = write(fd, val, len);
	close(fd);
	return ret == len ? 0 : -1;
}

static int read_knob(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t ret;

	if (fd < 0)
		return -1;
	ret = read(fd, buf, size - 1);
	close(fd);
	if (ret <= 0)
		return -1;
	buf[ret] = '\0';
	return 0;
}

FIXTURE(wp_enomem) {
	char saved[ARRAY_SIZE(fail_knobs)][32];
	bool changed;
	int make_it_fail;
	int uffd;
	int pagemap_fd;
	char *area;
};

FIXTURE_VARIANT(wp_enomem) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(wp_enomem, anon) {
	.type = MEM_ANON,
};

FIXTURE_SETUP(wp_enomem)
{
	char path[256];
	size_t i;

	self->make_it_fail = -1;
	self->uffd = -1;
	self->pagemap_fd = -1;
	self->area = MAP_FAILED;
	page_size = getpagesize();
	ASSERT_EQ(0, access(FAIL_PAGE_ALLOC, F_OK))
		TH_LOG("%s missing: the kernel needs CONFIG_FAIL_PAGE_ALLOC and %s, %s",
		       FAIL_PAGE_ALLOC, "CONFIG_FAULT_INJECTION_DEBUG_FS",
		       "and debugfs must be mounted");
	for (i = 0; i < ARRAY_SIZE(fail_knobs); i++) {
		snprintf(path, sizeof(path), FAIL_PAGE_ALLOC "/%s", fail_knobs[i]);
		ASSERT_EQ(0, read_knob(path, self->saved[i], sizeof(self->saved[i])))
			TH_LOG("cannot read %s", path);
	}
	self->make_it_fail = open("/proc/self/make-it-fail", O_WRONLY);
	ASSERT_GE(self->make_it_fail, 0);
	self->pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_GE(self->pagemap_fd, 0);
	self->area = mmap(NULL, ENOMEM_AREA, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->area);
}

FIXTURE_TEARDOWN(wp_enomem)
{
	char path[256];
	int i;

	if (self->make_it_fail >= 0) {
		EXPECT_EQ(1, write(self->make_it_fail, "0", 1));
		close(self->make_it_fail);
	}
	/* Restore in reverse order: probability first disarms it */
	for (i = ARRAY_SIZE(fail_knobs) - 1; self->changed && i >= 0; i--) {
		snprintf(path, sizeof(path), FAIL_PAGE_ALLOC "/%s", fail_knobs[i]);
		EXPECT_EQ(0, write_knob(path, self->saved[i])) TH_LOG("restoring %s", path);
	}
	if (self->uffd >= 0)
		close(self->uffd);
	if (self->pagemap_fd >= 0)
		close(self->pagemap_fd);
	if (self->area != MAP_FAILED)
		munmap(self->area, ENOMEM_AREA);
}

static void arm_fail_page_alloc(struct __test_metadata *_metadata, bool *changed)
{
	char path[256];
	size_t i;

	*changed = true;
	for (i = 0; i < ARRAY_SIZE(fail_knobs); i++) {
		snprintf(path, sizeof(path), FAIL_PAGE_ALLOC "/%s", fail_knobs[i]);
		ASSERT_EQ(0, write_knob(path, fail_values[i])) TH_LOG("cannot set %s", path);
	}
}

TEST_F_TIMEOUT(wp_enomem, pgtable_alloc_failure, 120)
{
	char *addr = self->area, *p;
	int ret, uffd;

	self->uffd = open_uffd(_metadata, UFFD_FEATURE_WP_UNPOPULATED);
	uffd = self->uffd;
	ASSERT_EQ(0, register_range(uffd, addr, ENOMEM_AREA, UFFDIO_REGISTER_MODE_WP, NULL));

	/* Run once what runs while allocations fail, so that it needs nothing new */
	ASSERT_EQ(EINVAL, wp_range(uffd, addr, 0, WP));
	ASSERT_EQ(1, write(self->make_it_fail, "0", 1));

	arm_fail_page_alloc(_metadata, &self->changed);
	ASSERT_EQ(1, write(self->make_it_fail, "1", 1));
	ret = wp_range(uffd, addr, ENOMEM_AREA, WP);
	ASSERT_EQ(1, write(self->make_it_fail, "0", 1));
	ASSERT_EQ(0, write_knob(FAIL_PAGE_ALLOC "/probability", "0"));

	EXPECT_EQ(ENOMEM, ret) TH_LOG("UFFDIO_WRITEPROTECT returned %s", strerror(ret));

	/* Allocations work again: the same request succeeds and protects it all */
	ASSERT_EQ(0, wp_range(uffd, addr, ENOMEM_AREA, WP));
	for (p = addr; p < addr + ENOMEM_AREA; p += SZ_2M)
		EXPECT_TRUE(page_wp(_metadata, self->pagemap_fd, p));
	EXPECT_EQ(0, wp_range(uffd, addr, ENOMEM_AREA, 0));
}

/*
 * Special mappings: a VMA with VM_IO, VM_DONTEXPAND, VM_PFNMAP or VM_MIXEDMAP
 * that is not hugetlbfs is refused with EINVAL in every registration mode,
 * the asynchronous WP-only one included, as upstream does.  (The VM_PFNMAP
 * and VM_MIXEDMAP mappings a test can make, /dev/mem and io_uring rings,
 * were refused in every mode before and are not tested here.)
 */
struct reg_mode {
	const char *name;
	__u64 features;
	__u64 mode;
};

static const struct reg_mode special_reg_modes[] = {
	{ "MISSING", 0, UFFDIO_REGISTER_MODE_MISSING },
	{ "WP", UFFD_FEATURE_WP_HUGETLBFS_SHMEM, UFFDIO_REGISTER_MODE_WP },
	{ "MINOR", 0, UFFDIO_REGISTER_MODE_MINOR },
	{ "MISSING|WP", UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
	  UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP },
	{ "async WP", ASYNC_FEATURES, UFFDIO_REGISTER_MODE_WP },
	{ "async MISSING|WP", ASYNC_FEATURES,
	  UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP },
};

enum special_kind {
	SPECIAL_AIO_RING,	/* io_setup() ring: VM_DONTEXPAND */
	SPECIAL_PERF_RING,	/* perf ring buffer: VM_DONTEXPAND */
	SPECIAL_VDSO,		/* a special mapping: VM_DONTEXPAND */
	SPECIAL_UPROBES_XOL,	/* [uprobes] out-of-line slots: VM_IO */
};

/*
 * Bounds and VmFlags (space separated, a space at both ends) of the VMA that
 * holds @addr
 */
static bool vma_flags(const void *addr, void **start, size_t *len, char *flags, size_t size)
{
	unsigned long a = (uintptr_t)addr, lo, hi;
	bool in_vma = false, found = false;
	char line[512];
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in_vma = lo <= a && a < hi;
			if (in_vma) {
				*start = (void *)lo;
				*len = hi - lo;
			}
			continue;
		}
		if (in_vma && !strncmp(line, "VmFlags:", 8)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(flags, size, "%s ", line + 8);
			found = true;
		}
	}
	fclose(f);
	return found;
}

static bool has_vmflag(const char *flags, const char *flag)
{
	char word[8];

	snprintf(word, sizeof(word), " %s ", flag);
	return strstr(flags, word);
}

/* The start of the VMA named @name in /proc/self/maps, e.g. "[uprobes]" */
static void *find_named_vma(const char *name)
{
	unsigned long lo;
	char line[512];
	void *addr = NULL;
	FILE *f;

	f = fopen("/proc/self/maps", "r");
	if (!f)
		return NULL;
	while (!addr && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%lx-", &lo) == 1 && strlen(line) > strlen(name) &&
		    !strcmp(line + strlen(line) - strlen(name), name))
			addr = (void *)lo;
	}
	fclose(f);
	return addr;
}

/* Offset in its file of the code at @addr, from /proc/self/maps */
static bool file_offset_of(const void *addr, unsigned long *off)
{
	unsigned long a = (uintptr_t)addr, lo, hi, pgoff;
	char line[512];
	bool found = false;
	FILE *f;

	f = fopen("/proc/self/maps", "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %*s %lx", &lo, &hi, &pgoff) == 3 && lo <= a && a < hi) {
			*off = a - lo + pgoff;
			found = true;
		}
	fclose(f);
	return found;
}

/*
 * A function to put a uprobe on: a plain move, which the kernel steps out of
 * line, in the [uprobes] area it maps on the first hit.
 */
int uffd_wp_probed(int x);
asm(".pushsection .text\n"
	".globl uffd_wp_probed\n"
	".type uffd_wp_probed, @function\n"
	"uffd_wp_probed:\n"
	"	movl %edi, %eax\n"
	"	ret\n"
	".size uffd_wp_probed, . - uffd_wp_probed\n"
	".popsection\n");

static int read_int_file(const char *path, int *val)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%d", val) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

FIXTURE(special) {
	void *addr;		/* the start of what is registered */
	size_t len;
	void *map;		/* what the test mapped itself, or NULL */
	size_t map_len;
	int fd;
	aio_context_t aio;
};

FIXTURE_VARIANT(special) {
	enum special_kind kind;
	const char *flags[3];	/* VmFlags mnemonics the VMA must show */
};

FIXTURE_VARIANT_ADD(special, aio_ring) {
	.kind = SPECIAL_AIO_RING,
	.flags = { "de" },
};

FIXTURE_VARIANT_ADD(special, perf_ring) {
	.kind = SPECIAL_PERF_RING,
	.flags = { "de" },
};

FIXTURE_VARIANT_ADD(special, vdso) {
	.kind = SPECIAL_VDSO,
	.flags = { "de" },
};

FIXTURE_VARIANT_ADD(special, uprobes_xol) {
	.kind = SPECIAL_UPROBES_XOL,
	.flags = { "io" },
};

static void special_aio(struct __test_metadata *_metadata, struct _test_data_special *self)
{
	ASSERT_EQ(0, syscall(__NR_io_setup, 1, &self->aio))
		TH_LOG("io_setup(): %s", strerror(errno));
	/* The context id is the address of the ring */
	self->addr = (void *)(uintptr_t)self->aio;
}

static void special_perf(struct __test_metadata *_metadata, struct _test_data_special *self)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_DUMMY,
	};

	self->fd = syscall(__NR_perf_event_open, &attr, 0, -1, -1, 0);
	ASSERT_LE(0, self->fd) TH_LOG("perf_event_open(): %s", strerror(errno));
	/* The control page and one data page */
	self->map_len = 2 * page_size;
	self->map = mmap(NULL, self->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map) TH_LOG("perf mmap: %s", strerror(errno));
	self->addr = self->map;
}

static void special_vdso(struct __test_metadata *_metadata, struct _test_data_special *self)
{
	self->addr = (void *)getauxval(AT_SYSINFO_EHDR);
	ASSERT_NE(NULL, self->addr) TH_LOG("no vDSO");
}

/* Hit a uprobe in this task's own code, so that [uprobes] gets mapped */
static void special_uprobes_xol(struct __test_metadata *_metadata,
				struct _test_data_special *self)
{
	struct perf_event_attr attr = { .size = sizeof(attr) };
	unsigned long off;
	int type;

	ASSERT_EQ(0, read_int_file("/sys/bus/event_source/devices/uprobe/type", &type))
		TH_LOG("no uprobe PMU (CONFIG_UPROBE_EVENTS)");
	ASSERT_TRUE(file_offset_of((void *)uffd_wp_probed, &off));
	attr.type = type;
	attr.config1 = (uintptr_t)"/proc/self/exe";
	attr.config2 = off;
	self->fd = syscall(__NR_perf_event_open, &attr, 0, -1, -1, 0);
	ASSERT_LE(0, self->fd) TH_LOG("perf_event_open(uprobe): %s", strerror(errno));
	ASSERT_EQ(42, uffd_wp_probed(42));
	self->addr = find_named_vma("[uprobes]");
	ASSERT_NE(NULL, self->addr) TH_LOG("no [uprobes] mapping after the probe hit");
}

FIXTURE_SETUP(special)
{
	char flags[512] = "";
	size_t i;

	page_size = getpagesize();
	self->map = NULL;
	self->fd = -1;
	self->aio = 0;
	switch (variant->kind) {
	case SPECIAL_AIO_RING:
		special_aio(_metadata, self);
		break;
	case SPECIAL_PERF_RING:
		special_perf(_metadata, self);
		break;
	case SPECIAL_VDSO:
		special_vdso(_metadata, self);
		break;
	case SPECIAL_UPROBES_XOL:
		special_uprobes_xol(_metadata, self);
		break;
	}
	/* Register the whole VMA, which then needs no split */
	ASSERT_TRUE(vma_flags(self->addr, &self->addr, &self->len, flags, sizeof(flags)));
	TH_LOG("VMA of %zu pages, VmFlags:%s", self->len / page_size, flags);
	for (i = 0; i < ARRAY_SIZE(variant->flags) && variant->flags[i]; i++)
		ASSERT_TRUE(has_vmflag(flags, variant->flags[i]))
			TH_LOG("the VMA lacks \"%s\"", variant->flags[i]);
}

FIXTURE_TEARDOWN(special)
{
	if (self->map)
		munmap(self->map, self->map_len);
	if (self->aio)
		syscall(__NR_io_destroy, self->aio);
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(special, register_refused_in_every_mode)
{
	const struct reg_mode *m;
	int uffd, err, bad = 0;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(special_reg_modes); i++) {
		m = &special_reg_modes[i];
		uffd = open_uffd(_metadata, m->features);
		err = register_range(uffd, self->addr, self->len, m->mode, NULL);
		if (err != EINVAL) {
			TH_LOG("%s: %s, expected EINVAL", m->name,
			       err ? strerror(err) : "registered");
			bad++;
		}
		close(uffd);
	}
	EXPECT_EQ(0, bad);
}

/*
 * Issue 7.1: MADV_DONTNEED of synchronously protected memory. As upstream
 * does, a zap drops all the protection of private anonymous memory, the
 * markers of pages never touched included: the next writes complete with
 * no WP fault. Shmem and hugetlb keep the protection as markers, and each
 * write there is still a WP fault. Zapped are: a populated page (not for
 * THP, where one write would populate all of the area), a page read after
 * the protection, and pages never touched.
 */
TEST_F(sync_wp, dontneed_drops_only_anon_wp)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *populated = m->addr, *read = second_half(m);
	char *never = m->addr + m->len - page_size;
	bool anon = mem_is_private_anon(m->type);
	size_t npages = m->len / page_size;

	env_register(_metadata, e, SYNC_FEATURES);
	if (m->type != MEM_THP)
		fill(m, m->len / 2, 1);
	env_start_handler(_metadata, e);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	EXPECT_EQ(0, peek(read));
	EXPECT_EQ(npages, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));

	ASSERT_EQ(0, madvise(m->addr, m->len, MADV_DONTNEED));
	EXPECT_EQ(anon ? 0 : npages, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));

	poke(populated, 2);
	EXPECT_EQ(anon ? 0 : 1, wp_faults(&e->handler));
	poke(read, 3);
	EXPECT_EQ(anon ? 0 : 2, wp_faults(&e->handler));
	poke(never, 4);
	EXPECT_EQ(anon ? 0 : 3, wp_faults(&e->handler));
	EXPECT_EQ(2, peek(populated));
	EXPECT_EQ(3, peek(read));
	EXPECT_EQ(4, peek(never));
	EXPECT_EQ(anon ? 0 : npages - 3 * m->unit / page_size,
		  count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
}

/* KSM merging and unmerging must keep the uffd-wp and soft-dirty bits */

#define PM_SOFT_DIRTY		BIT_ULL(55)
#define KSM_DIR			"/sys/kernel/mm/ksm"
#define KSM_WAIT_MS		30000
#define KSM_POLL_MS		50
#define KSM_FILL		0x5a

/*
 * Pages of [addr, addr + len) that PAGEMAP_SCAN reports written, or -errno.
 * PM_SCAN_CHECK_WPASYNC makes it fail unless all of the range is registered
 * for async write protection.
 */
static long scan_written(int pagemap_fd, const char *addr, size_t len)
{
	struct page_region vec[32];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_CHECK_WPASYNC,
		.start = (uintptr_t)addr,
		.end = (uintptr_t)addr + len,
		.vec = (uintptr_t)vec,
		.vec_len = ARRAY_SIZE(vec),
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	long pages = 0, n, i;

	while (arg.start < arg.end) {
		n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
		if (n < 0)
			return -errno;
		for (i = 0; i < n; i++)
			pages += (vec[i].end - vec[i].start) / page_size;
		if (arg.walk_end <= arg.start)
			return -EIO;
		arg.start = arg.walk_end;
	}
	return pages;
}

/* The /proc/kpageflags word of the page mapped at @addr, 0 if none is */
static __u64 page_kflags(struct __test_metadata *_metadata, int pagemap_fd, const char *addr)
{
	__u64 ent = pagemap_entry(_metadata, pagemap_fd, addr), flags = 0;
	off_t off;
	int fd;

	if (!(ent & PM_PRESENT))
		return 0;
	ASSERT_NE(0, ent & PM_PFN_MASK) TH_LOG("pagemap hides PFNs: run as root");
	off = (ent & PM_PFN_MASK) * sizeof(flags);
	fd = open("/proc/kpageflags", O_RDONLY);
	ASSERT_GE(fd, 0) TH_LOG("/proc/kpageflags: %s", strerror(errno));
	EXPECT_EQ((ssize_t)sizeof(flags), pread(fd, &flags, sizeof(flags), off));
	close(fd);
	return flags;
}

/* Pages of [addr, addr + len) whose kpageflags have bit @kpf */
static long count_kflag(struct __test_metadata *_metadata, int pagemap_fd, const char *addr,
			size_t len, int kpf)
{
	long count = 0;
	size_t off;

	for (off = 0; off < len; off += page_size)
		count += !!(page_kflags(_metadata, pagemap_fd, addr + off) & BIT_ULL(kpf));
	return count;
}

/* Pages of [addr, addr + len) that pagemap reports soft-dirty */
static long count_soft_dirty(struct __test_metadata *_metadata, int pagemap_fd,
			     const char *addr, size_t len)
{
	long count = 0;
	size_t off;

	for (off = 0; off < len; off += page_size)
		count += !!(pagemap_entry(_metadata, pagemap_fd, addr + off) & PM_SOFT_DIRTY);
	return count;
}

/*
 * The KSM knobs are global: a test saves them first, and when it changed
 * them, unmerges everything left with run=2 and restores them at the end.
 */
static const char * const ksm_knobs[] = {
	"sleep_millisecs", "pages_to_scan", "use_zero_pages", "run",
};

struct ksm_state {
	char saved[ARRAY_SIZE(ksm_knobs)][32];
	bool changed;
};

static void ksm_save(struct __test_metadata *_metadata, struct ksm_state *k)
{
	char path[128];
	size_t i;

	ASSERT_EQ(0, access(KSM_DIR "/run", W_OK))
		TH_LOG("%s/run not writable: CONFIG_KSM missing or not root", KSM_DIR);
	for (i = 0; i < ARRAY_SIZE(ksm_knobs); i++) {
		snprintf(path, sizeof(path), KSM_DIR "/%s", ksm_knobs[i]);
		ASSERT_EQ(0, read_knob(path, k->saved[i], sizeof(k->saved[i])))
			TH_LOG("cannot read %s", path);
	}
}

/* Called once the area is unmapped, so that run=2 has nothing of it to do */
static void ksm_restore(struct __test_metadata *_metadata, struct ksm_state *k)
{
	char path[128];
	int i;

	if (!k->changed)
		return;
	EXPECT_EQ(0, write_knob(KSM_DIR "/run", "2"));
	for (i = ARRAY_SIZE(ksm_knobs) - 1; i >= 0; i--) {
		snprintf(path, sizeof(path), KSM_DIR "/%s", ksm_knobs[i]);
		EXPECT_EQ(0, write_knob(path, k->saved[i])) TH_LOG("restoring %s", path);
	}
}

/*
 * Make the area mergeable, run ksmd fast, and wait until every page of it
 * maps a KSM page, or with @zero_pages the shared zero page.
 */
static void ksm_merge_all(struct __test_metadata *_metadata, struct wp_env *e,
			  struct ksm_state *k, bool zero_pages)
{
	const char * const values[] = { "10", "1000", zero_pages ? "1" : "0", "1" };
	int kpf = zero_pages ? KPF_ZERO_PAGE : KPF_KSM, waited;
	struct mem_area *m = &e->mem;
	long npages = m->len / page_size, merged = 0;
	char path[128];
	size_t i;

	ASSERT_EQ(0, madvise(m->addr, m->len, MADV_MERGEABLE));
	k->changed = true;
	for (i = 0; i < ARRAY_SIZE(ksm_knobs); i++) {
		snprintf(path, sizeof(path), KSM_DIR "/%s", ksm_knobs[i]);
		ASSERT_EQ(0, write_knob(path, values[i])) TH_LOG("cannot set %s", path);
	}
	for (waited = 0; waited < KSM_WAIT_MS; waited += KSM_POLL_MS) {
		merged = count_kflag(_metadata, e->pagemap_fd, m->addr, m->len, kpf);
		if (merged == npages)
			break;
		usleep(KSM_POLL_MS * 1000);
	}
	ASSERT_EQ(npages, merged)
		TH_LOG("ksmd merged %ld of %ld pages within %d ms", merged, npages, KSM_WAIT_MS);
}

/*
 * ksmd replaces the pte of every page it merges but one (the page that
 * becomes the KSM page), or of every page when it merges them with the
 * zero page: the new pte must keep what the old one tracked.
 */
FIXTURE(ksm_wp) {
	struct wp_env e;
	struct ksm_state ksm;
};

FIXTURE_VARIANT(ksm_wp) {
	char fill;		/* the first byte of every page, the rest is 0 */
	bool zero_pages;	/* use_zero_pages: merge with the zero page */
};

/* KSM only merges private anonymous memory */
FIXTURE_VARIANT_ADD(ksm_wp, anon) {
	.fill = KSM_FILL,
};

FIXTURE_VARIANT_ADD(ksm_wp, anon_zero_page) {
	.fill = 0,
	.zero_pages = true,
};

FIXTURE_SETUP(ksm_wp)
{
	env_setup(_metadata, &self->e, MEM_ANON);
	ksm_save(_metadata, &self->ksm);
}

FIXTURE_TEARDOWN(ksm_wp)
{
	env_teardown(_metadata, &self->e);
	ksm_restore(_metadata, &self->ksm);
}

/*
 * Async mode: pages written, then protected, then merged, are not reported
 * written, and keep PM_UFFD_WP; a write after the merge is reported.
 */
TEST_F_TIMEOUT(ksm_wp, async_merge_keeps_wp, 120)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	long npages = m->len / page_size;
	char *a = second_half(m);

	env_register(_metadata, e, ASYNC_FEATURES);
	fill(m, m->len, variant->fill);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	ASSERT_EQ(0, scan_written(e->pagemap_fd, m->addr, m->len));

	ksm_merge_all(_metadata, e, &self->ksm, variant->zero_pages);
	EXPECT_EQ(npages, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	EXPECT_EQ(0, scan_written(e->pagemap_fd, m->addr, m->len));

	poke(a, 7);
	EXPECT_FALSE(uffd_readable(e->uffd));
	EXPECT_EQ(1, scan_written(e->pagemap_fd, m->addr, m->len));
	EXPECT_EQ(0, wp_mismatches(_metadata, e, a, a));
	EXPECT_EQ(7, peek(a));
	EXPECT_EQ(1, count_not(m, variant->fill));
}

/* Sync mode: after the merge, the first write to every page is a WP fault */
TEST_F_TIMEOUT(ksm_wp, sync_merge_keeps_wp, 120)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	long npages = m->len / page_size;

	env_register(_metadata, e, SYNC_FEATURES);
	fill(m, m->len, variant->fill);
	env_start_handler(_metadata, e);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));

	ksm_merge_all(_metadata, e, &self->ksm, variant->zero_pages);
	EXPECT_EQ(npages, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	fill(m, m->len, 7);
	EXPECT_EQ(npages, wp_faults(&e->handler));
	EXPECT_EQ(0, count_not(m, 7));
}

/*
 * Soft-dirty: of pages all cleaned by clear_refs, the half written again
 * (with the same byte, so that they still merge) stays soft-dirty across
 * the merge, and the other half stays clean.
 */
TEST_F_TIMEOUT(ksm_wp, merge_keeps_soft_dirty, 120)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	size_t half = m->len / 2;

	fill(m, m->len, variant->fill);
	/* Mergeable first: the VMA change must not come after the clearing */
	ASSERT_EQ(0, madvise(m->addr, m->len, MADV_MERGEABLE));
	ASSERT_EQ(0, write_knob("/proc/self/clear_refs", "4"));
	ASSERT_EQ(0, count_soft_dirty(_metadata, e->pagemap_fd, m->addr, m->len));
	fill(m, half, variant->fill);
	ASSERT_EQ(half / page_size, count_soft_dirty(_metadata, e->pagemap_fd, m->addr, half));

	ksm_merge_all(_metadata, e, &self->ksm, variant->zero_pages);
	EXPECT_EQ(half / page_size, count_soft_dirty(_metadata, e->pagemap_fd, m->addr, half));
	EXPECT_EQ(0, count_soft_dirty(_metadata, e->pagemap_fd, m->addr + half, half));
}

/*
 * Unmerging (MADV_UNMERGEABLE, or run=2) gives every page of the area a
 * copy of its KSM page of its own: the copy keeps the protection, and
 * making it is not a write.  The pages are protected after the merge, so
 * that the KSM ptes have the bit whatever ksmd does with it.
 */
FIXTURE(ksm_unmerge_wp) {
	struct wp_env e;
	struct ksm_state ksm;
};

FIXTURE_SETUP(ksm_unmerge_wp)
{
	env_setup(_metadata, &self->e, MEM_ANON);
	ksm_save(_metadata, &self->ksm);
	fill(&self->e.mem, self->e.mem.len, KSM_FILL);
}

FIXTURE_TEARDOWN(ksm_unmerge_wp)
{
	env_teardown(_metadata, &self->e);
	ksm_restore(_metadata, &self->ksm);
}

TEST_F_TIMEOUT(ksm_unmerge_wp, async_unmerge_keeps_wp, 120)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	long npages = m->len / page_size;
	char *a = second_half(m);

	env_register(_metadata, e, ASYNC_FEATURES);
	ksm_merge_all(_metadata, e, &self->ksm, false);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	ASSERT_EQ(0, madvise(m->addr, m->len, MADV_UNMERGEABLE));

	EXPECT_EQ(0, count_kflag(_metadata, e->pagemap_fd, m->addr, m->len, KPF_KSM));
	EXPECT_EQ(npages, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	EXPECT_EQ(0, scan_written(e->pagemap_fd, m->addr, m->len));

	poke(a, 7);
	EXPECT_FALSE(uffd_readable(e->uffd));
	EXPECT_EQ(1, scan_written(e->pagemap_fd, m->addr, m->len));
	EXPECT_EQ(0, wp_mismatches(_metadata, e, a, a));
	EXPECT_EQ(1, count_not(m, KSM_FILL));
}

TEST_F_TIMEOUT(ksm_unmerge_wp, sync_unmerge_keeps_wp, 120)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	long npages = m->len / page_size;

	env_register(_metadata, e, SYNC_FEATURES);
	env_start_handler(_metadata, e);
	ksm_merge_all(_metadata, e, &self->ksm, false);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	ASSERT_EQ(0, madvise(m->addr, m->len, MADV_UNMERGEABLE));

	EXPECT_EQ(0, wp_faults(&e->handler));
	EXPECT_EQ(0, count_kflag(_metadata, e->pagemap_fd, m->addr, m->len, KPF_KSM));
	EXPECT_EQ(npages, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	fill(m, m->len, 7);
	EXPECT_EQ(npages, wp_faults(&e->handler));
	EXPECT_EQ(0, count_not(m, 7));
}

/* fork() with UFFD_FEATURE_EVENT_FORK: early-copied pages stay protected */

/*
 * What a forked child found in its own pagemap: pages with PM_UFFD_WP, and
 * pages PAGEMAP_SCAN reports written before and after one write of its own.
 */
struct child_report {
	long wp;
	long written;
	long written_after;
};

/*
 * fork() copies a page of a private mapping at once, instead of sharing it,
 * when it may be pinned for DMA; the huge zero pmd is shared as it is.
 */
FIXTURE(fork_wp) {
	struct wp_env e;
	struct io_uring ring;
	bool ring_up;
};

FIXTURE_VARIANT(fork_wp) {
	enum mem_type type;
	bool huge_zero;		/* map the huge zero page, pin nothing */
};

FIXTURE_VARIANT_ADD(fork_wp, anon_pinned) {
	.type = MEM_ANON,
};

FIXTURE_VARIANT_ADD(fork_wp, thp_pinned) {
	.type = MEM_THP,
};

FIXTURE_VARIANT_ADD(fork_wp, hugetlb_pinned) {
	.type = MEM_HUGETLB,
};

FIXTURE_VARIANT_ADD(fork_wp, thp_huge_zero) {
	.type = MEM_THP,
	.huge_zero = true,
};

/* A read fault maps the huge zero page on the whole PMD, if THP allows it */
static void map_huge_zero(struct __test_metadata *_metadata, struct wp_env *e)
{
	char knob[16] = "";
	__u64 kf;

	ASSERT_EQ(0, read_knob("/sys/kernel/mm/transparent_hugepage/use_zero_page",
			       knob, sizeof(knob)));
	ASSERT_EQ('1', knob[0]) TH_LOG("THP use_zero_page is off");
	ASSERT_EQ(0, peek(e->mem.addr));
	kf = page_kflags(_metadata, e->pagemap_fd, e->mem.addr + e->mem.len - page_size);
	ASSERT_TRUE((kf & BIT_ULL(KPF_ZERO_PAGE)) && (kf & BIT_ULL(KPF_THP)))
		TH_LOG("a read fault did not map the huge zero page (kpageflags 0x%llx)",
		       (unsigned long long)kf);
}

/* A registered io_uring buffer stays pinned (FOLL_PIN | FOLL_LONGTERM) */
static void pin_area(struct __test_metadata *_metadata, struct _test_data_fork_wp *self)
{
	struct mem_area *m = &self->e.mem;
	struct iovec iov = { .iov_base = m->addr, .iov_len = m->len };
	int ret;

	ret = io_uring_queue_init(4, &self->ring, 0);
	ASSERT_EQ(0, ret) TH_LOG("io_uring_queue_init(): %s", strerror(-ret));
	self->ring_up = true;
	ret = io_uring_register_buffers(&self->ring, &iov, 1);
	ASSERT_EQ(0, ret) TH_LOG("io_uring_register_buffers(): %s", strerror(-ret));
}

FIXTURE_SETUP(fork_wp)
{
	struct wp_env *e = &self->e;

	env_setup(_metadata, e, variant->type);
	if (variant->huge_zero) {
		map_huge_zero(_metadata, e);
		return;
	}
	fill(&e->mem, e->mem.len, 1);
	if (e->mem.type == MEM_THP)
		ASSERT_LE(SZ_2M >> 10, anon_huge_kb(_metadata, e->mem.addr))
			TH_LOG("the area is not a PMD-mapped THP");
	pin_area(_metadata, self);
}

FIXTURE_TEARDOWN(fork_wp)
{
	if (self->ring_up)
		io_uring_queue_exit(&self->ring);
	env_teardown(_metadata, &self->e);
}

/*
 * Register with @features, which have EVENT_FORK, and protect everything.
 * Returns how many pages that protected: in async mode, pages pinned for
 * DMA are left writable (see pinned.* in pagemap_ioctl.c), so none.
 */
static long fork_wp_protect(struct __test_metadata *_metadata, struct wp_env *e,
			    __u64 features, bool pinned)
{
	struct mem_area *m = &e->mem;
	long want = pinned && features == ASYNC_FEATURES ? 0 : m->len / page_size;

	env_register(_metadata, e, features | UFFD_FEATURE_EVENT_FORK);
	env_start_handler(_metadata, e);
	EXPECT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	EXPECT_EQ(want, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	return want;
}

/*
 * Wait for the WP fault of a write to @addr on @uffd, a child's, and resolve
 * it.  Returns whether it came.
 */
static bool resolve_child_fault(int uffd, const char *addr, size_t unit)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msg;
	char *start = unit_start(addr, unit);

	if (poll(&pfd, 1, 10000) <= 0 || read(uffd, &msg, sizeof(msg)) != sizeof(msg))
		return false;
	if (msg.event != UFFD_EVENT_PAGEFAULT ||
	    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) ||
	    unit_start((char *)(uintptr_t)msg.arg.pagefault.address, unit) != start)
		return false;
	return wp_range(uffd, start, unit, 0) == 0;
}

static void wait_child(struct __test_metadata *_metadata, pid_t pid)
{
	int status;

	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status 0x%x", status);
}

/*
 * Async mode: the child's pagemap shows every page protected and none
 * written, and a write of the child's is reported to the child. Pinned
 * pages were left writable in the parent, so the child's copies read as
 * written: the protection is kept, as it was, in every case.
 */
TEST_F(fork_wp, child_keeps_wp_async)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	struct child_report r = { .wp = -1, .written = -1, .written_after = -1 };
	char *a = second_half(m);
	int pipefd[2];
	long wp;
	pid_t pid;

	wp = fork_wp_protect(_metadata, e, ASYNC_FEATURES, !variant->huge_zero);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int fd = open("/proc/self/pagemap", O_RDONLY);

		if (fd >= 0) {
			r.wp = count_wp_pages(fd, m->addr, m->len);
			r.written = scan_written(fd, m->addr, m->len);
			poke(a, 2);
			r.written_after = scan_written(fd, m->addr, m->len);
		}
		_exit(write(pipefd[1], &r, sizeof(r)) == sizeof(r) ? 0 : 2);
	}
	close(pipefd[1]);
	ASSERT_EQ((ssize_t)sizeof(r), read(pipefd[0], &r, sizeof(r)));
	close(pipefd[0]);
	wait_child(_metadata, pid);
	EXPECT_EQ(1, wait_for_count(&e->handler.fork_events, 1));

	EXPECT_EQ(wp, r.wp);
	EXPECT_EQ(m->len / page_size - wp, r.written);
	EXPECT_EQ(wp ? m->unit / page_size : m->len / page_size, r.written_after);
}

/*
 * Sync mode: the child's pagemap shows every page protected, and a write
 * of the child's is a WP fault on the uffd the fork event handed over.
 */
TEST_F(fork_wp, child_keeps_wp_sync)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *a = second_half(m);
	int pipefd[2], child_uffd;
	long wp = -1;
	pid_t pid;

	fork_wp_protect(_metadata, e, SYNC_FEATURES, !variant->huge_zero);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int fd = open("/proc/self/pagemap", O_RDONLY);

		if (fd >= 0)
			wp = count_wp_pages(fd, m->addr, m->len);
		if (write(pipefd[1], &wp, sizeof(wp)) != sizeof(wp))
			_exit(2);
		/* Waits for the parent to resolve the fault; the alarm bounds it */
		alarm(20);
		poke(a, 2);
		_exit(peek(a) == 2 ? 0 : 3);
	}
	close(pipefd[1]);
	ASSERT_EQ((ssize_t)sizeof(wp), read(pipefd[0], &wp, sizeof(wp)));
	close(pipefd[0]);
	ASSERT_EQ(1, wait_for_count(&e->handler.fork_events, 1));
	child_uffd = __atomic_load_n(&e->handler.child_uffd, __ATOMIC_SEQ_CST);

	EXPECT_EQ(m->len / page_size, wp);
	EXPECT_TRUE(resolve_child_fault(child_uffd, a, m->unit))
		TH_LOG("the child's write raised no WP fault");
	wait_child(_metadata, pid);
}

/* Migration restores protected entries protected */

#define MAX_MIGRATE_UNITS	16

/*
 * move_pages(2) to another node of every unit of the area: 4K pages, the
 * THP as a whole (remove_migration_pmd()), hugetlb pages.
 */
FIXTURE(migrate_wp) {
	struct wp_env e;
	void *units[MAX_MIGRATE_UNITS];
	int nr_units;
	int target;
};

FIXTURE_VARIANT(migrate_wp) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(migrate_wp, anon) {
	.type = MEM_ANON,
};

FIXTURE_VARIANT_ADD(migrate_wp, anon_thp) {
	.type = MEM_THP,
};

FIXTURE_VARIANT_ADD(migrate_wp, hugetlb) {
	.type = MEM_HUGETLB,
};

static long move_pages(int count, void **pages, const int *nodes, int *status, int flags)
{
	return syscall(__NR_move_pages, 0, count, pages, nodes, status, flags);
}

/* The first node with memory that is not @node, or -1 */
static int other_node(struct __test_metadata *_metadata, int node)
{
	char list[256], *p = list, *end;
	long lo, hi;

	ASSERT_EQ(0, read_knob("/sys/devices/system/node/has_memory", list, sizeof(list)));
	while (*p && *p != '\n') {
		lo = strtol(p, &end, 10);
		ASSERT_NE(p, end) TH_LOG("cannot parse the node list \"%s\"", list);
		hi = lo;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		if (lo != node)
			return lo;
		if (hi > node)
			return node + 1;
		p = *end == ',' ? end + 1 : end;
	}
	return -1;
}

FIXTURE_SETUP(migrate_wp)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	size_t stride;
	int status = -1;

	env_setup(_metadata, e, variant->type);
	fill(m, m->len, 1);
	stride = m->type == MEM_THP ? SZ_2M : m->unit;
	for (self->nr_units = 0; self->nr_units * stride < m->len; self->nr_units++)
		self->units[self->nr_units] = m->addr + self->nr_units * stride;
	if (m->type == MEM_THP)
		ASSERT_LE(SZ_2M >> 10, anon_huge_kb(_metadata, m->addr))
			TH_LOG("the area is not a PMD-mapped THP");

	ASSERT_EQ(0, move_pages(1, self->units, NULL, &status, 0));
	ASSERT_LE(0, status) TH_LOG("move_pages() query: status %d", status);
	self->target = other_node(_metadata, status);
	ASSERT_LE(0, self->target) TH_LOG("needs two NUMA nodes with memory");
}

FIXTURE_TEARDOWN(migrate_wp)
{
	env_teardown(_metadata, &self->e);
}

/* Move every unit to the target node; a THP must move whole, still a PMD */
static void migrate_area(struct __test_metadata *_metadata, struct _test_data_migrate_wp *self)
{
	int nodes[MAX_MIGRATE_UNITS], status[MAX_MIGRATE_UNITS], i;
	struct mem_area *m = &self->e.mem;

	for (i = 0; i < self->nr_units; i++) {
		nodes[i] = self->target;
		status[i] = -1000;
	}
	ASSERT_EQ(0, move_pages(self->nr_units, self->units, nodes, status, MPOL_MF_MOVE))
		TH_LOG("move_pages() to node %d: %s", self->target, strerror(errno));
	for (i = 0; i < self->nr_units; i++)
		ASSERT_EQ(self->target, status[i]) TH_LOG("unit %d", i);
	if (m->type == MEM_THP)
		ASSERT_LE(SZ_2M >> 10, anon_huge_kb(_metadata, m->addr))
			TH_LOG("the THP was split, not migrated whole");
}

/* Async mode: nothing is written by the move, a later write is reported */
TEST_F_TIMEOUT(migrate_wp, async_migration_keeps_wp, 60)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *a = second_half(m);

	env_register(_metadata, e, ASYNC_FEATURES);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	migrate_area(_metadata, self);

	EXPECT_EQ(m->len / page_size, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	EXPECT_EQ(0, scan_written(e->pagemap_fd, m->addr, m->len));
	poke(a, 2);
	EXPECT_FALSE(uffd_readable(e->uffd));
	EXPECT_EQ(m->unit / page_size, scan_written(e->pagemap_fd, m->addr, m->len));
	EXPECT_EQ(0, wp_mismatches(_metadata, e, a, a));
	EXPECT_EQ(2, peek(a));
	EXPECT_EQ(1, peek(m->addr));
}

/* Sync mode: a write after the move is a WP fault */
TEST_F_TIMEOUT(migrate_wp, sync_migration_keeps_wp, 60)
{
	struct wp_env *e = &self->e;
	struct mem_area *m = &e->mem;
	char *a = second_half(m);

	env_register(_metadata, e, SYNC_FEATURES);
	env_start_handler(_metadata, e);
	ASSERT_EQ(0, wp_range(e->uffd, m->addr, m->len, WP));
	migrate_area(_metadata, self);

	EXPECT_EQ(m->len / page_size, count_wp(_metadata, e->pagemap_fd, m->addr, m->len));
	poke(a, 2);
	EXPECT_EQ(1, wp_faults(&e->handler));
	EXPECT_EQ(2, peek(a));
}

TEST_HARNESS_MAIN
