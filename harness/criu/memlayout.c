// SPDX-License-Identifier: GPL-2.0
/*
 * The process CRIU dumps and restores in harness/criu/suite.py: a known
 * memory layout whose expected dump the driver can compute.
 *
 *   memlayout DIR FILE      the layout (regions below), FILE a scratch file
 *                           on a disk filesystem for the private mapping
 *   memlayout --bench MIB PCT DIR
 *                           MIB of anonymous memory, PCT % of its pages
 *                           written (chosen at random, fixed seed)
 *
 * At start it writes DIR/layout: "region NAME START PAGES" per region, then
 * "written NAME RANGES" (the pages that hold data) and "phase2 NAME RANGES"
 * (the pages SIGUSR2 writes), RANGES being page indexes like "3 5-9".
 * Then it waits for signals in sigsuspend(), doing the work outside the
 * handlers:
 *   SIGUSR1  read a name from DIR/req and write DIR/NAME: "checksum HEX" and
 *            "data NAME RANGES" per region, the pages PAGEMAP_SCAN reports
 *            as holding data (present or swapped, not the zero page; in the
 *            private file mapping only the anonymous copies; in the shared
 *            region the pages in its page cache, from mincore())
 *   SIGUSR2  do the phase-2 writes, then write DIR/phase2-done
 *   SIGTERM  exit 0
 * The checksum covers the data pages' offsets and contents, and every page
 * of the file mapping, so it also proves a restore put each page back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PAGE		4096UL
#define HPAGE		(2UL << 20)
#define MAX_PAGES	1024

enum kind { ANON, THP, SHARED, FILEMAP, PROTNONE };

struct region {
	const char *name;
	enum kind kind;
	size_t pages;
	char *p;
	bool written[MAX_PAGES];
	bool phase2[MAX_PAGES];
};

/* Index ranges of a region, terminated by {-1}. */
struct span {
	int from, to;
};

static const struct span anon_written[] = {
	{ 3, 3 }, { 17, 17 }, { 100, 100 }, { 511, 511 }, { 700, 700 },
	{ 1023, 1023 }, { 200, 215 }, { 400, 463 }, { 800, 802 }, { -1, -1 }
};
/* Read only: the zero page, which no dump may hold. */
static const struct span anon_read[] = {
	{ 5, 9 }, { 300, 331 }, { 900, 900 }, { -1, -1 }
};
/* Written, then pushed out to swap with MADV_PAGEOUT. */
static const struct span anon_swapped[] = {
	{ 600, 615 }, { 1000, 1000 }, { -1, -1 }
};
/* Phase 2: a written page, a zero page, a never touched one, a run's page. */
static const struct span anon_phase2[] = {
	{ 3, 3 }, { 5, 5 }, { 1010, 1010 }, { 450, 450 }, { -1, -1 }
};
static const struct span shared_written[] = {
	{ 0, 2 }, { 10, 10 }, { 33, 33 }, { 63, 63 }, { -1, -1 }
};
/* The file mapping: pages read (page cache) and written (anon copies). */
static const struct span file_read[] = { { 0, 15 }, { -1, -1 } };
static const struct span file_written[] = { { 20, 21 }, { 40, 40 }, { -1, -1 } };
static const struct span file_phase2[] = { { 20, 20 }, { 30, 30 }, { -1, -1 } };
static const struct span protnone_written[] = { { 1, 3 }, { 50, 50 }, { -1, -1 } };
/* One write into the THP dirties its whole pmd. */
static const struct span thp_phase2[] = { { 7, 7 }, { -1, -1 } };

static struct region regions[] = {
	{ .name = "anon", .kind = ANON, .pages = 1024 },
	{ .name = "thp", .kind = THP, .pages = 512 },
	{ .name = "thpzero", .kind = THP, .pages = 512 },
	{ .name = "shared", .kind = SHARED, .pages = 64 },
	{ .name = "file", .kind = FILEMAP, .pages = 64 },
	{ .name = "protnone", .kind = PROTNONE, .pages = 64 },
};
#define NR_REGIONS (sizeof(regions) / sizeof(regions[0]))

static const char *dir;
static unsigned int generation;
static size_t swapped_at_start;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "memlayout: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, ": %s\n", strerror(errno));
	va_end(ap);
	exit(1);
}

static struct region *region(const char *name)
{
	size_t i;

	for (i = 0; i < NR_REGIONS; i++)
		if (!strcmp(regions[i].name, name))
			return &regions[i];
	abort();
}

/* What page @i of @r holds once written in generation @gen. */
static void fill(struct region *r, size_t i, unsigned int gen)
{
	uint64_t *q = (uint64_t *)(r->p + i * PAGE);
	uint64_t v = ((uint64_t)(r - regions) << 48) ^ ((uint64_t)gen << 32) ^ i;
	size_t k;

	for (k = 0; k < PAGE / sizeof(*q); k++)
		q[k] = v * 0x9e3779b97f4a7c15ULL + k;
}

static void for_spans(const struct span *s, struct region *r, bool *mark,
		      bool write, unsigned int gen)
{
	volatile char sink;
	int i;

	for (; s->from >= 0; s++) {
		for (i = s->from; i <= s->to; i++) {
			if (write)
				fill(r, i, gen);
			else
				sink = r->p[i * PAGE];
			if (mark)
				mark[i] = true;
		}
	}
	(void)sink;
}

static void mark_spans(const struct span *s, bool *mark)
{
	int i;

	for (; s->from >= 0; s++)
		for (i = s->from; i <= s->to; i++)
			mark[i] = true;
}

static char *map_aligned(size_t len, size_t align, int prot, int flags)
{
	char *p = mmap(NULL, len + align, prot, flags | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		die("mmap %zu", len);
	a = (char *)(((uintptr_t)p + align - 1) & ~(align - 1));
	if (a > p)
		munmap(p, a - p);
	munmap(a + len, p + align - a);
	return a;
}

static long scan(char *start, size_t pages, struct page_region *vec, size_t n,
		 __u64 inverted, __u64 mask, __u64 anyof, __u64 ret)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uintptr_t)start,
		.end = (uintptr_t)start + pages * PAGE,
		.vec = (uintptr_t)vec,
		.vec_len = n,
		.category_inverted = inverted,
		.category_mask = mask,
		.category_anyof_mask = anyof,
		.return_mask = ret,
	};
	long got;
	int fd;

	/* Opened per scan: a dump must not find a /proc file open. */
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		die("/proc/self/pagemap");
	got = ioctl(fd, PAGEMAP_SCAN, &arg);
	if (got < 0)
		die("PAGEMAP_SCAN");
	close(fd);
	if (arg.walk_end != arg.end)
		die("PAGEMAP_SCAN stopped at %llx", arg.walk_end);
	return got;
}

/* Marks in @data the pages of @r that hold data; returns how many. */
static size_t data_pages(struct region *r, bool *data)
{
	struct page_region vec[MAX_PAGES];
	__u64 skip = PAGE_IS_PFNZERO;
	size_t n = 0, i;
	long got, k;

	memset(data, 0, MAX_PAGES);
	if (r->kind == SHARED) {
		unsigned char vec[MAX_PAGES];

		/*
		 * Shared memory holds data whether or not this mapping maps
		 * it: a restore fills the page cache, not our page tables.
		 */
		if (mincore(r->p, r->pages * PAGE, vec))
			die("mincore");
		for (i = 0; i < r->pages; i++)
			if (vec[i] & 1)
				data[i] = true, n++;
		return n;
	}
	if (r->kind == FILEMAP)
		skip |= PAGE_IS_FILE;
	got = scan(r->p, r->pages, vec, MAX_PAGES, skip, skip,
		   PAGE_IS_PRESENT | PAGE_IS_SWAPPED, PAGE_IS_PRESENT);
	for (k = 0; k < got; k++)
		for (i = (vec[k].start - (uintptr_t)r->p) / PAGE;
		     i < (vec[k].end - (uintptr_t)r->p) / PAGE; i++, n++)
			data[i] = true;
	return n;
}

static size_t count_category(struct region *r, __u64 cat)
{
	struct page_region vec[MAX_PAGES];
	size_t n = 0;
	long got, k;

	got = scan(r->p, r->pages, vec, MAX_PAGES, 0, cat, 0, cat);
	for (k = 0; k < got; k++)
		n += (vec[k].end - vec[k].start) / PAGE;
	return n;
}

static void print_ranges(FILE *f, const bool *mark, size_t pages)
{
	size_t i, j;

	for (i = 0; i < pages; i = j) {
		if (!mark[i]) {
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < pages && mark[j]; j++)
			;
		if (j - i == 1)
			fprintf(f, " %zu", i);
		else
			fprintf(f, " %zu-%zu", i, j - 1);
	}
	fputc('\n', f);
}

static FILE *open_out(const char *name, char *tmp, size_t len)
{
	FILE *f;

	snprintf(tmp, len, "%s/%s.tmp", dir, name);
	f = fopen(tmp, "w");
	if (!f)
		die("%s", tmp);
	return f;
}

static void close_out(FILE *f, const char *tmp, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (fclose(f) || rename(tmp, path))
		die("%s", path);
}

static uint64_t fnv(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *c = buf;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ c[i]) * 0x100000001b3ULL;
	return h;
}

static void report(void)
{
	static bool data[NR_REGIONS][MAX_PAGES];
	char name[128] = "", tmp[512], path[512];
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i, r;
	FILE *f;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/req", dir);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die("%s", path);
	n = read(fd, name, sizeof(name) - 1);
	close(fd);
	if (n <= 0)
		die("empty %s", path);
	name[strcspn(name, "\n/")] = 0;

	/* Categories first: reading swapped pages brings them back. */
	for (r = 0; r < NR_REGIONS; r++)
		data_pages(&regions[r], data[r]);
	f = open_out(name, tmp, sizeof(tmp));
	for (r = 0; r < NR_REGIONS; r++) {
		struct region *g = &regions[r];

		fprintf(f, "data %s", g->name);
		print_ranges(f, data[r], g->pages);
		fprintf(f, "swapped %s %zu\n", g->name,
			count_category(g, PAGE_IS_SWAPPED));
		fprintf(f, "huge %s %zu\n", g->name,
			count_category(g, PAGE_IS_HUGE));
		fprintf(f, "zero %s %zu\n", g->name,
			count_category(g, PAGE_IS_PFNZERO));
	}
	for (r = 0; r < NR_REGIONS; r++) {
		struct region *g = &regions[r];

		if (g->kind == PROTNONE && mprotect(g->p, g->pages * PAGE, PROT_READ))
			die("mprotect");
		for (i = 0; i < g->pages; i++) {
			if (!data[r][i] && g->kind != FILEMAP)
				continue;
			h = fnv(h, &r, sizeof(r));
			h = fnv(h, &i, sizeof(i));
			h = fnv(h, g->p + i * PAGE, PAGE);
		}
		if (g->kind == PROTNONE && mprotect(g->p, g->pages * PAGE, PROT_NONE))
			die("mprotect");
	}
	fprintf(f, "checksum %016llx\n", (unsigned long long)h);
	close_out(f, tmp, name);
}

static void phase2(void)
{
	char tmp[512];
	FILE *f;

	generation++;
	for_spans(anon_phase2, region("anon"), NULL, true, generation);
	for_spans(file_phase2, region("file"), NULL, true, generation);
	for_spans(thp_phase2, region("thp"), NULL, true, generation);
	f = open_out("phase2-done", tmp, sizeof(tmp));
	fprintf(f, "generation %u\n", generation);
	close_out(f, tmp, "phase2-done");
}

/* MADV_PAGEOUT skips pages still on a CPU's LRU batch: retry from each CPU. */
static size_t page_out(struct region *r, const struct span *s)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = 0, got = 0;
	cpu_set_t saved, one;
	const struct span *t;
	int round;

	for (t = s; t->from >= 0; t++)
		want += t->to - t->from + 1;
	sched_getaffinity(0, sizeof(saved), &saved);
	for (round = 0; round < 20 && got < want; round++) {
		CPU_ZERO(&one);
		CPU_SET(round % (cpus > 0 ? cpus : 1), &one);
		sched_setaffinity(0, sizeof(one), &one);
		for (t = s; t->from >= 0; t++)
			madvise(r->p + t->from * PAGE,
				(t->to - t->from + 1) * PAGE, MADV_PAGEOUT);
		got = count_category(r, PAGE_IS_SWAPPED);
		usleep(20000);
	}
	sched_setaffinity(0, sizeof(saved), &saved);
	return got;
}

static void setup(const char *file)
{
	struct region *r;
	size_t i;
	int fd;

	r = region("anon");
	r->p = map_aligned(r->pages * PAGE, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	madvise(r->p, r->pages * PAGE, MADV_NOHUGEPAGE);
	for_spans(anon_written, r, r->written, true, 0);
	for_spans(anon_read, r, NULL, false, 0);
	for_spans(anon_swapped, r, r->written, true, 0);
	mark_spans(anon_phase2, r->phase2);

	r = region("thp");
	r->p = map_aligned(HPAGE, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	madvise(r->p, HPAGE, MADV_HUGEPAGE);
	for (i = 0; i < r->pages; i++) {
		fill(r, i, 0);
		r->written[i] = r->phase2[i] = true;
	}

	/* Read only: a huge zero pmd (use_zero_page), dumped by no path. */
	r = region("thpzero");
	r->p = map_aligned(HPAGE, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	madvise(r->p, HPAGE, MADV_HUGEPAGE);
	for (i = 0; i < r->pages; i += 64)
		(void)*(volatile char *)(r->p + i * PAGE);

	r = region("shared");
	r->p = mmap(NULL, r->pages * PAGE, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r->p == MAP_FAILED)
		die("mmap shared");
	for_spans(shared_written, r, r->written, true, 0);

	r = region("file");
	fd = open(file, O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		die("%s", file);
	if (lseek(fd, 0, SEEK_END) != (off_t)(r->pages * PAGE)) {
		char page[PAGE];

		if (ftruncate(fd, 0))
			die("truncate %s", file);
		for (i = 0; i < r->pages; i++) {
			memset(page, 'a' + i % 26, sizeof(page));
			if (write(fd, page, sizeof(page)) != sizeof(page))
				die("write %s", file);
		}
		fsync(fd);
	}
	r->p = mmap(NULL, r->pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (r->p == MAP_FAILED)
		die("mmap %s", file);
	close(fd);
	for_spans(file_read, r, NULL, false, 0);
	for_spans(file_written, r, r->written, true, 0);
	mark_spans(file_phase2, r->phase2);

	r = region("protnone");
	r->p = mmap(NULL, r->pages * PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->p == MAP_FAILED)
		die("mmap protnone");
	for_spans(protnone_written, r, r->written, true, 0);
	if (mprotect(r->p, r->pages * PAGE, PROT_NONE))
		die("mprotect");

	swapped_at_start = page_out(region("anon"), anon_swapped);
}

static void write_layout(void)
{
	char tmp[512];
	size_t r;
	FILE *f;

	f = open_out("layout", tmp, sizeof(tmp));
	fprintf(f, "pid %d\nswapped %zu\n", getpid(), swapped_at_start);
	for (r = 0; r < NR_REGIONS; r++)
		fprintf(f, "region %s %#lx %zu\n", regions[r].name,
			(unsigned long)regions[r].p, regions[r].pages);
	for (r = 0; r < NR_REGIONS; r++) {
		fprintf(f, "written %s", regions[r].name);
		print_ranges(f, regions[r].written, regions[r].pages);
		fprintf(f, "phase2 %s", regions[r].name);
		print_ranges(f, regions[r].phase2, regions[r].pages);
	}
	close_out(f, tmp, "layout");
}

static volatile sig_atomic_t pending[NSIG];

static void on_signal(int sig)
{
	pending[sig] = 1;
}

/*
 * sigsuspend(), not sigwaitinfo(): a dump's ptrace interrupt restarts it
 * (ERESTARTNOHAND) where sigwaitinfo() returns EINTR, and that errno and
 * the stack of the call after it would differ between two dumps.
 */
static int wait_loop(void (*usr1)(void), void (*usr2)(void))
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t set, old;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		while (!pending[SIGUSR1] && !pending[SIGUSR2] && !pending[SIGTERM])
			sigsuspend(&old);
		if (pending[SIGTERM])
			return 0;
		if (pending[SIGUSR1]) {
			pending[SIGUSR1] = 0;
			if (usr1)
				usr1();
		}
		if (pending[SIGUSR2]) {
			pending[SIGUSR2] = 0;
			if (usr2)
				usr2();
		}
	}
}

/* --bench: MIB of anonymous memory with PCT % of its pages written. */
static int bench(size_t mib, unsigned int pct)
{
	size_t pages = mib << 8, want = pages * pct / 100, n = 0, i;
	uint64_t x = 0x2545f4914f6cdd1dULL;
	unsigned char *seen;
	char tmp[512], *p;
	FILE *f;

	p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	seen = calloc(pages, 1);
	if (p == MAP_FAILED || !seen)
		die("mmap %zu MiB", mib);
	madvise(p, pages * PAGE, MADV_NOHUGEPAGE);
	while (n < want) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = x % pages;
		if (seen[i])
			continue;
		seen[i] = 1;
		memset(p + i * PAGE, (int)(i % 255) + 1, PAGE);
		n++;
	}
	free(seen);
	f = open_out("ready", tmp, sizeof(tmp));
	fprintf(f, "pid %d\nstart %#lx\npages %zu\nwritten %zu\n", getpid(),
		(unsigned long)p, pages, n);
	close_out(f, tmp, "ready");
	return wait_loop(NULL, NULL);
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "--bench")) {
		dir = argv[4];
		return bench(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
	}
	if (argc != 3) {
		fprintf(stderr, "usage: memlayout DIR FILE | --bench MIB PCT DIR\n");
		return 2;
	}
	dir = argv[1];
	setup(argv[2]);
	write_layout();
	return wait_loop(report, phase2);
}
