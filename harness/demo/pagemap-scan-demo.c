// SPDX-License-Identifier: GPL-2.0
/*
 * Write tracking the way Wine's GetWriteWatch() does it, shown on 64 pages:
 * register them with userfaultfd in async write-protect mode, write a known
 * set, and let one PAGEMAP_SCAN ioctl report exactly those pages while
 * protecting them again. Exits 0 only if every scan reports what was written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>

#define NPAGES 64

static long psize;
static char *area;
static int pagemap_fd;

static void die(const char *what)
{
	printf("demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void setup_write_tracking(void)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = {
		.range = { (unsigned long)area, NPAGES * psize },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { (unsigned long)area, NPAGES * psize },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0)
		die("userfaultfd");
	if (ioctl(uffd, UFFDIO_API, &api))
		die("UFFDIO_API with WP_ASYNC");
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
		die("UFFDIO_WRITEPROTECT");
}

/* One GetWriteWatch(WRITE_WATCH_FLAG_RESET): report and re-protect. */
static int scan_written(char *map)
{
	struct page_region regions[NPAGES];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (unsigned long)area,
		.end = (unsigned long)area + NPAGES * psize,
		.vec = (unsigned long)regions,
		.vec_len = NPAGES,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	int i, n, pages = 0;
	unsigned long p;

	memset(map, '.', NPAGES);
	map[NPAGES] = 0;
	n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
	if (n < 0)
		die("PAGEMAP_SCAN");
	for (i = 0; i < n; i++) {
		for (p = regions[i].start; p < regions[i].end; p += psize, pages++)
			map[(p - (unsigned long)area) / psize] = '#';
	}
	printf("  %d region(s), %2d page(s): %s\n", n, pages, map);
	return pages;
}

static int check(const char *expect)
{
	char map[NPAGES + 1];

	scan_written(map);
	if (strcmp(map, expect)) {
		printf("  expected:                %s\ndemo: FAILED\n", expect);
		return 1;
	}
	return 0;
}

/*
 * What a person would look at: tools/vm/pagemap-scan, run on this process
 * from outside, counts per mapping what the scans above see, the written
 * pages of the 64 among them. It only reads, so it protects nothing.
 */
static int show_with_tool(void)
{
	/* the guest's PATH has not its test directory */
	const char *tool = access("/tests/bin/pagemap-scan", X_OK) ?
			   "pagemap-scan" : "/tests/bin/pagemap-scan";
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "%s %d", tool, (int)getpid());
	printf("$ pagemap-scan %d   (from another process; 'written': pages 5 and 41)\n",
	       (int)getpid());
	if (system(cmd)) {
		printf("demo: pagemap-scan failed\n");
		return 1;
	}
	return 0;
}

int main(void)
{
	static const int first[] = { 1, 2, 3, 10, 40, 41, 42, 43, 63 };
	char expect[NPAGES + 1];
	int i, bad = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	psize = sysconf(_SC_PAGESIZE);
	area = mmap(NULL, NPAGES * psize, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (area == MAP_FAILED || pagemap_fd < 0)
		die("setup");
	setup_write_tracking();

	printf("demo: 64 pages, async uffd-wp; '#' = page PAGEMAP_SCAN reports written\n");
	memset(expect, '.', NPAGES);
	expect[NPAGES] = 0;
	for (i = 0; i < (int)(sizeof(first) / sizeof(first[0])); i++) {
		area[first[i] * psize] = 1;
		expect[first[i]] = '#';
	}
	printf("wrote pages 1-3, 10, 40-43, 63; scan and re-protect:\n");
	bad |= check(expect);

	printf("no writes since; scan again:\n");
	memset(expect, '.', NPAGES);
	bad |= check(expect);

	printf("read page 20, wrote page 5 and page 41 again; scan:\n");
	bad |= area[20 * psize];
	area[5 * psize] = 2;
	area[41 * psize] = 2;
	expect[5] = expect[41] = '#';
	bad |= show_with_tool();
	bad |= check(expect);

	printf(bad ? "demo: FAILED\n" : "demo: OK, every scan reported exactly the pages written\n");
	return bad;
}
