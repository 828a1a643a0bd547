// SPDX-License-Identifier: GPL-2.0
/*
 * PROT_NONE pages must stay visible to the kernel's own page table walkers:
 *
 *  - KSM merges identical pages of a MADV_MERGEABLE area that is mapped
 *    PROT_NONE;
 *  - move_pages(2) reports the node of PROT_NONE pages and migrates them to
 *    another node.
 *
 * Both look pages up with follow_page().  An upstream change in 6.5 made
 * follow_page() skip PROT_NONE ptes, as if they were NUMA hinting faults,
 * which broke both; a backport must not bring that back.
 *
 * Needs root (KSM knobs), CONFIG_KSM, and two NUMA nodes with memory for the
 * migration test: with a single node that test fails and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/mempolicy.h>

#include "../kselftest_harness.h"

#define NR_PAGES		32
#define PATTERN			0x5a
#define KSM_DIR			"/sys/kernel/mm/ksm"
#define KSM_WAIT_MS		20000
#define POLL_MS			50
#define MAX_NODES		64

static size_t page_size;

enum mem_type {
	MEM_ANON,		/* MAP_PRIVATE | MAP_ANONYMOUS */
	MEM_SHMEM,		/* MAP_SHARED | MAP_ANONYMOUS */
};

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t len = strlen(val), ret;

	if (fd < 0)
		return -1;
	ret = write(fd, val, len);
	close(fd);
	return ret == len ? 0 : -1;
}

static int read_file(const char *path, char *buf, size_t size)
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

static long read_long(const char *path)
{
	char buf[64];

	if (read_file(path, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Every page of [addr, addr + len) full of @val */
static bool all_bytes(const char *addr, size_t len, char val)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (addr[i] != val)
			return false;
	return true;
}

/*
 * KSM over a PROT_NONE area.  The KSM knobs are global: the test saves and
 * restores them, and unmerges what it left with run=2.
 */
static const char * const ksm_knobs[] = { "sleep_millisecs", "pages_to_scan", "run" };
static const char * const ksm_values[] = { "10", "1000", "1" };

FIXTURE(ksm_protnone) {
	char saved[ARRAY_SIZE(ksm_knobs)][32];
	bool changed;
	char *area;
	size_t len;
};

FIXTURE_VARIANT(ksm_protnone) {
	enum mem_type type;
};

/* KSM only merges private anonymous memory */
FIXTURE_VARIANT_ADD(ksm_protnone, anon) {
	.type = MEM_ANON,
};

FIXTURE_SETUP(ksm_protnone)
{
	char path[128];
	size_t i;

	self->area = MAP_FAILED;
	page_size = getpagesize();
	self->len = NR_PAGES * page_size;
	ASSERT_EQ(0, access(KSM_DIR "/run", W_OK))
		TH_LOG("%s/run not writable: CONFIG_KSM missing or not root", KSM_DIR);
	for (i = 0; i < ARRAY_SIZE(ksm_knobs); i++) {
		snprintf(path, sizeof(path), KSM_DIR "/%s", ksm_knobs[i]);
		ASSERT_EQ(0, read_file(path, self->saved[i], sizeof(self->saved[i])))
			TH_LOG("cannot read %s", path);
	}
	self->area = mmap(NULL, self->len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->area);
}

FIXTURE_TEARDOWN(ksm_protnone)
{
	char path[128];
	int i;

	/* Unmap first, so that run=2 has nothing of ours to unmerge */
	if (self->area != MAP_FAILED)
		munmap(self->area, self->len);
	if (!self->changed)
		return;
	EXPECT_EQ(0, write_file(KSM_DIR "/run", "2"));
	for (i = ARRAY_SIZE(ksm_knobs) - 1; i >= 0; i--) {
		snprintf(path, sizeof(path), KSM_DIR "/%s", ksm_knobs[i]);
		EXPECT_EQ(0, write_file(path, self->saved[i])) TH_LOG("restoring %s", path);
	}
}

static void ksm_start(struct __test_metadata *_metadata, bool *changed)
{
	char path[128];
	size_t i;

	*changed = true;
	for (i = 0; i < ARRAY_SIZE(ksm_knobs); i++) {
		snprintf(path, sizeof(path), KSM_DIR "/%s", ksm_knobs[i]);
		ASSERT_EQ(0, write_file(path, ksm_values[i])) TH_LOG("cannot set %s", path);
	}
}

/* Poll this process's count of KSM-merged pages until it reaches @want */
static long wait_merged(long want)
{
	long merged = -1;
	int waited;

	for (waited = 0; waited < KSM_WAIT_MS; waited += POLL_MS) {
		merged = read_long("/proc/self/ksm_merging_pages");
		if (merged < 0 || merged >= want)
			break;
		sleep_ms(POLL_MS);
	}
	return merged;
}

/*
 * Identical pages made PROT_NONE after MADV_MERGEABLE: ksmd must still find
 * and merge every one of them, and their content must survive.
 */
TEST_F_TIMEOUT(ksm_protnone, merges_protnone_pages, 90)
{
	char *addr = self->area;

	memset(addr, PATTERN, self->len);
	ASSERT_EQ(0, madvise(addr, self->len, MADV_MERGEABLE));
	ASSERT_EQ(0, mprotect(addr, self->len, PROT_NONE));
	ASSERT_EQ(0, read_long("/proc/self/ksm_merging_pages"));

	ksm_start(_metadata, &self->changed);
	EXPECT_EQ(NR_PAGES, wait_merged(NR_PAGES))
		TH_LOG("ksmd did not merge the PROT_NONE pages within %d ms", KSM_WAIT_MS);

	ASSERT_EQ(0, mprotect(addr, self->len, PROT_READ));
	EXPECT_TRUE(all_bytes(addr, self->len, PATTERN));
	/* Reading merged pages does not unmerge them */
	EXPECT_EQ(NR_PAGES, read_long("/proc/self/ksm_merging_pages"));
}

/*
 * move_pages(2) on PROT_NONE pages, for anonymous and shmem memory mapped by
 * this process only.
 */
struct node_query {
	void *pages[NR_PAGES];
	int status[NR_PAGES];	/* node of each page, or -errno */
	int nodes[MAX_NODES];	/* nodes with memory */
	int nr_nodes;
};

FIXTURE(migrate_protnone) {
	char *area;
	size_t len;
	struct node_query q;
};

FIXTURE_VARIANT(migrate_protnone) {
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(migrate_protnone, anon) {
	.type = MEM_ANON,
};

FIXTURE_VARIANT_ADD(migrate_protnone, shmem) {
	.type = MEM_SHMEM,
};

/* Parse a sysfs node list such as "0", "0-1" or "0,2-3" */
static int parse_node_list(const char *list, int *nodes, int max)
{
	const char *p = list;
	int n = 0, lo, hi;
	char *end;

	while (*p && *p != '\n') {
		lo = strtol(p, &end, 10);
		if (end == p)
			return -1;
		hi = lo;
		if (*end == '-') {
			p = end + 1;
			hi = strtol(p, &end, 10);
			if (end == p)
				return -1;
		}
		for (; lo <= hi && n < max; lo++)
			nodes[n++] = lo;
		p = *end == ',' ? end + 1 : end;
	}
	return n;
}

FIXTURE_SETUP(migrate_protnone)
{
	int flags = variant->type == MEM_SHMEM ? MAP_SHARED : MAP_PRIVATE;
	char list[256];
	int i;

	self->area = MAP_FAILED;
	page_size = getpagesize();
	self->len = NR_PAGES * page_size;
	ASSERT_EQ(0, read_file("/sys/devices/system/node/has_memory", list, sizeof(list)));
	self->q.nr_nodes = parse_node_list(list, self->q.nodes, MAX_NODES);
	ASSERT_LT(0, self->q.nr_nodes) TH_LOG("cannot parse the node list \"%s\"", list);

	self->area = mmap(NULL, self->len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->area);
	memset(self->area, PATTERN, self->len);
	for (i = 0; i < NR_PAGES; i++)
		self->q.pages[i] = self->area + i * page_size;
	ASSERT_EQ(0, mprotect(self->area, self->len, PROT_NONE));
}

FIXTURE_TEARDOWN(migrate_protnone)
{
	if (self->area != MAP_FAILED)
		munmap(self->area, self->len);
}

static long move_pages(int count, void **pages, const int *nodes, int *status, int flags)
{
	return syscall(__NR_move_pages, 0, count, pages, nodes, status, flags);
}

static bool node_has_memory(struct node_query *q, int node)
{
	int i;

	for (i = 0; i < q->nr_nodes; i++)
		if (q->nodes[i] == node)
			return true;
	return false;
}

/* With nodes == NULL, move_pages() reports where each page is */
static void query_nodes(struct __test_metadata *_metadata, struct node_query *q)
{
	int i, st;

	for (i = 0; i < NR_PAGES; i++)
		q->status[i] = -1000;
	ASSERT_EQ(0, move_pages(NR_PAGES, q->pages, NULL, q->status, 0))
		TH_LOG("move_pages(): %s", strerror(errno));
	for (i = 0; i < NR_PAGES; i++) {
		st = q->status[i];
		ASSERT_TRUE(node_has_memory(q, st))
			TH_LOG("page %d of a PROT_NONE area: status %d (%s)", i, st,
			       st < 0 ? strerror(-st) : "no such node");
	}
}

/* The node of every PROT_NONE page is reported, not -ENOENT or -EFAULT */
TEST_F(migrate_protnone, query_node)
{
	query_nodes(_metadata, &self->q);
}

/*
 * PROT_NONE pages move to another node: the status array holds the target
 * node, a new query agrees, and the content is intact.
 */
TEST_F(migrate_protnone, move_to_other_node)
{
	struct node_query *q = &self->q;
	int nodes[NR_PAGES], target, i;

	query_nodes(_metadata, q);
	ASSERT_LE(2, q->nr_nodes)
		TH_LOG("needs two NUMA nodes with memory, this machine has %d", q->nr_nodes);

	/* Away from where the first page is; pages already there stay */
	target = q->nodes[0] == q->status[0] ? q->nodes[1] : q->nodes[0];
	for (i = 0; i < NR_PAGES; i++) {
		nodes[i] = target;
		q->status[i] = -1000;
	}
	ASSERT_EQ(0, move_pages(NR_PAGES, q->pages, nodes, q->status, MPOL_MF_MOVE))
		TH_LOG("move_pages(MPOL_MF_MOVE) to node %d: %s", target, strerror(errno));
	for (i = 0; i < NR_PAGES; i++)
		EXPECT_EQ(target, q->status[i]) TH_LOG("page %d", i);

	query_nodes(_metadata, q);
	for (i = 0; i < NR_PAGES; i++)
		EXPECT_EQ(target, q->status[i]) TH_LOG("page %d after the move", i);

	ASSERT_EQ(0, mprotect(self->area, self->len, PROT_READ));
	EXPECT_TRUE(all_bytes(self->area, self->len, PATTERN));
}

TEST_HARNESS_MAIN
