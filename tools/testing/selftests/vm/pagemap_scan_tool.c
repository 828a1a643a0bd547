// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of tools/vm/pagemap-scan. A child maps a layout whose every page
 * is known: a THP, anonymous pages partly written and partly read (the
 * zero page), a private file mapping with one page copied on write, a
 * PROT_NONE area and async uffd-wp pages partly written. The tool's table,
 * --json, --ranges and selections must report exactly that; --wss,
 * --probe and the errors (no such process, no permission, a kernel thread,
 * a kernel without PAGEMAP_SCAN, bad usage) are checked too.
 *
 * The tool is $PAGEMAP_SCAN_TOOL, or pagemap-scan beside this program.
 * Where the kernel tracks soft-dirty pages their counts are checked; with
 * PMS_GUEST=1 (the test guest) a kernel without soft-dirty fails, elsewhere
 * the tool must then show soft-dirty as unknown and refuse --wss.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>

#include "../kselftest_harness.h"

#define HPAGE_SIZE		(2UL << 20)
#define NOBODY_ID		65534
#define PM_ENTRY_SOFT_DIRTY	0x0080000000000000ULL
#define PF_KTHREAD		0x00200000

/* Exit statuses of the tool */
#define EXIT_MISSING		1
#define EXIT_USAGE		2
#define EXIT_NOPROC		3
#define EXIT_NOPERM		4
#define EXIT_NOFEATURE		5

static unsigned long ps;

/* The regions of the layout, each mapping one VMA */
/*
 * R_STRIPES has every other page written: more runs than the tool's vec
 * holds, so that it must resume at walk_end. R_SPARSE has only its first
 * page written: its empty ptes and its page tables never allocated come in
 * regions that differ in PAGE_IS_WRITTEN alone, one run once that is
 * dropped outside async uffd-wp memory.
 */
enum {
	R_THP, R_ANON, R_FILE, R_NONE, R_UFFD, R_STRIPES, R_SPARSE, NR_REGIONS
};

static const unsigned long region_pages[NR_REGIONS] = {
	[R_THP] = 512, [R_ANON] = 16, [R_FILE] = 8, [R_NONE] = 4, [R_UFFD] = 8,
	[R_STRIPES] = 1024, [R_SPARSE] = 1024,
};

static const char * const region_perms[NR_REGIONS] = {
	[R_THP] = "rw-p", [R_ANON] = "rw-p", [R_FILE] = "rw-p",
	[R_NONE] = "---p", [R_UFFD] = "rw-p", [R_STRIPES] = "rw-p",
	[R_SPARSE] = "rw-p",
};

/* The counts per mapping, in the tool's order */
enum {
	C_MATCHED, C_PRESENT, C_SWAPPED, C_FILE, C_PFNZERO, C_HUGE,
	C_SOFT_DIRTY, C_WRITTEN, NR_C
};

static const char * const count_key[NR_C] = {
	"matched", "present", "swapped", "file", "pfnzero", "huge",
	"soft_dirty", "written",
};

#define UNKNOWN	(-1L)	/* '-' in the table, null in JSON */
#define SD	(-2L)	/* soft_dirty: all matched pages, if it is tracked */

/*
 * With no selection. Pages of the uffd region never written carry a
 * uffd-wp marker, which PAGEMAP_SCAN reports as swapped, as upstream does.
 */
static const long plain_counts[NR_REGIONS][NR_C] = {
	[R_THP]  = { 512, 512, 0, 0, 0, 512, SD, UNKNOWN },
	[R_ANON] = { 16, 6, 0, 0, 1, 0, SD, UNKNOWN },
	[R_FILE] = { 8, 8, 0, 7, 0, 0, SD, UNKNOWN },
	[R_NONE] = { 4, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_UFFD] = { 8, 3, 5, 0, 1, 0, SD, 2 },
	[R_STRIPES] = { 1024, 512, 0, 0, 0, 0, SD, UNKNOWN },
	[R_SPARSE] = { 1024, 1, 0, 0, 0, 0, SD, UNKNOWN },
};

/* --categories present,!file */
static const long present_not_file_counts[NR_REGIONS][NR_C] = {
	[R_THP]  = { 512, 512, 0, 0, 0, 512, SD, UNKNOWN },
	[R_ANON] = { 6, 6, 0, 0, 1, 0, SD, UNKNOWN },
	[R_FILE] = { 1, 1, 0, 0, 0, 0, SD, UNKNOWN },
	[R_NONE] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_UFFD] = { 3, 3, 0, 0, 1, 0, SD, 2 },
	[R_STRIPES] = { 512, 512, 0, 0, 0, 0, SD, UNKNOWN },
	[R_SPARSE] = { 1, 1, 0, 0, 0, 0, SD, UNKNOWN },
};

/* --any swapped,pfnzero */
static const long swapped_or_zero_counts[NR_REGIONS][NR_C] = {
	[R_THP]  = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_ANON] = { 1, 1, 0, 0, 1, 0, SD, UNKNOWN },
	[R_FILE] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_NONE] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_UFFD] = { 6, 1, 5, 0, 1, 0, SD, 0 },
	[R_STRIPES] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_SPARSE] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
};

/* --categories huge: no page of the uffd region, which is wpallowed still */
static const long huge_counts[NR_REGIONS][NR_C] = {
	[R_THP]  = { 512, 512, 0, 0, 0, 512, SD, UNKNOWN },
	[R_ANON] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_FILE] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_NONE] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_UFFD] = { 0, 0, 0, 0, 0, 0, SD, 0 },
	[R_STRIPES] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
	[R_SPARSE] = { 0, 0, 0, 0, 0, 0, SD, UNKNOWN },
};

/* After clear_refs 4 and writes of anon pages 3 and 7 */
static const long cleared_counts[NR_REGIONS][NR_C] = {
	[R_THP]  = { 512, 512, 0, 0, 0, 512, 0, UNKNOWN },
	[R_ANON] = { 16, 8, 0, 0, 1, 0, 2, UNKNOWN },
	[R_FILE] = { 8, 8, 0, 7, 0, 0, 0, UNKNOWN },
	[R_NONE] = { 4, 0, 0, 0, 0, 0, 0, UNKNOWN },
	[R_UFFD] = { 8, 3, 5, 0, 1, 0, 0, 2 },
	[R_STRIPES] = { 1024, 512, 0, 0, 0, 0, 0, UNKNOWN },
	[R_SPARSE] = { 1024, 1, 0, 0, 0, 0, 0, UNKNOWN },
};

/* A run of --ranges: pages from @first on, categories without soft_dirty */
struct run_spec {
	unsigned long first, pages;
	unsigned long long cats;
};

#define P	PAGE_IS_PRESENT
#define S	PAGE_IS_SWAPPED
#define F	PAGE_IS_FILE
#define Z	PAGE_IS_PFNZERO
#define H	PAGE_IS_HUGE
#define W	PAGE_IS_WRITTEN
#define A	PAGE_IS_WPALLOWED

static const struct run_spec thp_runs[] = { { 0, 512, P | H } };

static const struct run_spec anon_runs[] = {
	{ 0, 3, P }, { 3, 2, 0 }, { 5, 1, P }, { 6, 3, 0 }, { 9, 1, P },
	{ 10, 2, 0 }, { 12, 1, P | Z }, { 13, 3, 0 },
};

static const struct run_spec file_runs[] = {
	{ 0, 3, P | F }, { 3, 1, P }, { 4, 4, P | F },
};

static const struct run_spec none_runs[] = { { 0, 4, 0 } };

static const struct run_spec sparse_runs[] = { { 0, 1, P }, { 1, 1023, 0 } };

static const struct run_spec uffd_runs[] = {
	{ 0, 1, S | A }, { 1, 1, P | W | A }, { 2, 2, S | A },
	{ 4, 1, P | W | A }, { 5, 1, S | A }, { 6, 1, P | Z | A },
	{ 7, 1, S | A },
};

static const struct {
	const struct run_spec *runs;
	size_t nr;
} region_runs[NR_REGIONS] = {
	[R_THP] = { thp_runs, ARRAY_SIZE(thp_runs) },
	[R_ANON] = { anon_runs, ARRAY_SIZE(anon_runs) },
	[R_FILE] = { file_runs, ARRAY_SIZE(file_runs) },
	[R_NONE] = { none_runs, ARRAY_SIZE(none_runs) },
	[R_UFFD] = { uffd_runs, ARRAY_SIZE(uffd_runs) },
	[R_SPARSE] = { sparse_runs, ARRAY_SIZE(sparse_runs) },
};

/* Run @i of region @reg into @s; false past the last one */
static bool region_run(int reg, size_t i, struct run_spec *s)
{
	if (reg == R_STRIPES) {
		s->first = i;
		s->pages = 1;
		s->cats = i % 2 ? 0 : P;
		return i < region_pages[reg];
	}
	if (i >= region_runs[reg].nr)
		return false;
	*s = region_runs[reg].runs[i];
	return true;
}

/* The category names in the order the tool lists them */
static const struct {
	const char *name;
	unsigned long long bit;
} category_names[] = {
	{ "present", PAGE_IS_PRESENT }, { "swapped", PAGE_IS_SWAPPED },
	{ "file", PAGE_IS_FILE }, { "pfnzero", PAGE_IS_PFNZERO },
	{ "huge", PAGE_IS_HUGE }, { "soft_dirty", PAGE_IS_SOFT_DIRTY },
	{ "written", PAGE_IS_WRITTEN }, { "wpallowed", PAGE_IS_WPALLOWED },
};

static bool in_guest(void)
{
	return getenv("PMS_GUEST");
}

static const char *tool_path(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("PAGEMAP_SCAN_TOOL");
	char *slash;
	ssize_t n;

	if (env)
		return env;
	n = readlink("/proc/self/exe", path, sizeof(path) - 16);
	if (n <= 0)
		return "pagemap-scan";
	path[n] = '\0';
	slash = strrchr(path, '/');
	snprintf(slash + 1, 16, "pagemap-scan");
	return path;
}

/* 1 if this kernel tracks soft-dirty (bit 55 of a fresh page), else 0 */
static int kernel_soft_dirty(void)
{
	unsigned long long entry = 0;
	char *page;
	int fd;

	page = mmap(NULL, ps, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return 0;
	page[0] = 1;
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd >= 0 && pread(fd, &entry, sizeof(entry),
			     (unsigned long)page / ps * sizeof(entry)) < 0)
		entry = 0;
	if (fd >= 0)
		close(fd);
	munmap(page, ps);
	return !!(entry & PM_ENTRY_SOFT_DIRTY);
}

/* Running the tool */

#define RUN_AS_NOBODY		1	/* without the rights to look */
#define RUN_NO_PAGEMAP_SCAN	2	/* as on a kernel without the ioctl */

struct run {
	int status;		/* exit status, -1 if killed */
	char *out, *err;
};

static char *read_back(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	if (buf)
		buf[len] = '\0';
	close(fd);
	return buf ? buf : strdup("");
}

/* ioctl(PAGEMAP_SCAN) fails with ENOTTY, as where it does not exist */
static int hide_pagemap_scan(void)
{
	unsigned int arg1 = offsetof(struct seccomp_data, args[1]);
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg1),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PAGEMAP_SCAN, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOTTY),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { ARRAY_SIZE(code), code };

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	code[2].k += 4;		/* the low half of the command */
#endif
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static int become_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY_ID, NOBODY_ID, NOBODY_ID))
		return -1;
	return setresuid(NOBODY_ID, NOBODY_ID, NOBODY_ID);
}

/* Run the tool with the NULL-terminated arguments; outputs into @r */
static void run_tool(struct run *r, int flags, ...)
{
	const char *argv[16] = { "pagemap-scan" };
	int out, err, status, argc = 1;
	va_list ap;
	pid_t pid;

	va_start(ap, flags);
	while (argc < 15 && (argv[argc] = va_arg(ap, const char *)))
		argc++;
	va_end(ap);

	out = memfd_create("pagemap-scan-out", 0);
	err = memfd_create("pagemap-scan-err", 0);
	pid = fork();
	if (!pid) {
		dup2(out, 1);
		dup2(err, 2);
		if ((flags & RUN_AS_NOBODY) && become_nobody())
			_exit(126);
		if ((flags & RUN_NO_PAGEMAP_SCAN) && hide_pagemap_scan())
			_exit(126);
		execv(tool_path(), (char **)argv);
		_exit(127);
	}
	r->status = -1;
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		r->status = WEXITSTATUS(status);
	r->out = read_back(out);
	r->err = read_back(err);
}

static void free_run(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* A JSON checker, RFC 8259 */

struct json {
	const char *p;
	int depth;
};

static bool json_value(struct json *j);

static void json_ws(struct json *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' ||
	       *j->p == '\r')
		j->p++;
}

static bool json_string(struct json *j)
{
	int i;

	if (*j->p++ != '"')
		return false;
	for (; *j->p != '"'; j->p++) {
		if ((unsigned char)*j->p < 0x20)
			return false;
		if (*j->p != '\\')
			continue;
		j->p++;
		if (*j->p == 'u') {
			for (i = 1; i <= 4; i++)
				if (!strchr("0123456789abcdefABCDEF", j->p[i]) ||
				    !j->p[i])
					return false;
			j->p += 4;
		} else if (!*j->p || !strchr("\"\\/bfnrt", *j->p)) {
			return false;
		}
	}
	j->p++;
	return true;
}

static bool json_digits(struct json *j)
{
	const char *start = j->p;

	while (*j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p != start;
}

static bool json_number(struct json *j)
{
	if (*j->p == '-')
		j->p++;
	if (*j->p == '0')
		j->p++;
	else if (!json_digits(j))
		return false;
	if (*j->p == '.') {
		j->p++;
		if (!json_digits(j))
			return false;
	}
	if (*j->p == 'e' || *j->p == 'E') {
		j->p++;
		if (*j->p == '+' || *j->p == '-')
			j->p++;
		if (!json_digits(j))
			return false;
	}
	return true;
}

/* An object (@close '}') or an array (']'), after its opening bracket */
static bool json_members(struct json *j, char close)
{
	json_ws(j);
	if (*j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		json_ws(j);
		if (close == '}') {
			if (!json_string(j))
				return false;
			json_ws(j);
			if (*j->p++ != ':')
				return false;
		}
		if (!json_value(j))
			return false;
		json_ws(j);
		if (*j->p == close) {
			j->p++;
			return true;
		}
		if (*j->p++ != ',')
			return false;
	}
}

static bool json_value(struct json *j)
{
	bool ok;

	json_ws(j);
	switch (*j->p) {
	case '{':
	case '[':
		if (++j->depth > 64)
			return false;
		ok = json_members(j, *j->p++ == '{' ? '}' : ']');
		j->depth--;
		return ok;
	case '"':
		return json_string(j);
	}
	if (!strncmp(j->p, "true", 4) || !strncmp(j->p, "null", 4)) {
		j->p += 4;
		return true;
	}
	if (!strncmp(j->p, "false", 5)) {
		j->p += 5;
		return true;
	}
	return json_number(j);
}

static bool json_valid(const char *text)
{
	struct json j = { text, 0 };

	if (!json_value(&j))
		return false;
	json_ws(&j);
	return !*j.p;
}

/* The layout */

struct layout_report {
	int err;		/* errno of the step that failed, or 0 */
	int step;
	unsigned long start[NR_REGIONS];
};

/*
 * A store, not a read-modify-write: a read fault first would map the huge
 * zero page, and on 6.1 a write to it splits the mapping into 4 KiB pages
 * instead of allocating a THP.
 */
static void touch(char *p)
{
	__atomic_store_n(p, 1, __ATOMIC_RELAXED);
}

static char peek(const char *p)
{
	char c = p[0];

	asm volatile("" : : "r" (c) : "memory");
	return c;
}

static int register_async_wp(char *p, size_t len)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = {
		.range = { (unsigned long)p, len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { (unsigned long)p, len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) ||
	    ioctl(fd, UFFDIO_REGISTER, &reg) ||
	    ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
		return -1;
	return 0;		/* the fd stays open for the child's life */
}

/* Fill region @r at @p; returns 0 or -1 with errno */
static int fill_region(int r, char *p, const char *file)
{
	size_t len = region_pages[r] * ps;
	int prot = r == R_NONE ? PROT_NONE : PROT_READ | PROT_WRITE;
	int flags = MAP_PRIVATE | MAP_FIXED;
	int fd = -1;
	size_t i;

	if (r == R_FILE)
		fd = open(file, O_RDONLY);
	else
		flags |= MAP_ANONYMOUS;
	if (r == R_FILE && fd < 0)
		return -1;
	if (mmap(p, len, prot, flags, fd, 0) != p)
		return -1;
	if (fd >= 0)
		close(fd);
	if (madvise(p, len, r == R_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		return -1;

	switch (r) {
	case R_THP:
		touch(p);
		break;
	case R_ANON:
		touch(p);
		touch(p + ps);
		touch(p + 2 * ps);
		touch(p + 5 * ps);
		touch(p + 9 * ps);
		peek(p + 12 * ps);
		break;
	case R_FILE:
		for (i = 0; i < region_pages[r]; i++)
			peek(p + i * ps);
		touch(p + 3 * ps);
		break;
	case R_UFFD:
		if (register_async_wp(p, len))
			return -1;
		touch(p + ps);
		touch(p + 4 * ps);
		peek(p + 6 * ps);
		break;
	case R_STRIPES:
		for (i = 0; i < region_pages[r]; i += 2)
			touch(p + i * ps);
		break;
	case R_SPARSE:
		touch(p);
		break;
	}
	return 0;
}

/*
 * Place the regions one page apart in a reservation, THP aligned, then
 * unmap the rest of it, so that no region merges with a neighbour.
 */
static void make_layout(struct layout_report *rep, const char *file)
{
	size_t size = 8 * HPAGE_SIZE;
	char *res, *p;
	int r;

	res = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		rep->err = errno;
		rep->step = -1;
		return;
	}
	p = (char *)(((unsigned long)res + HPAGE_SIZE) & ~(HPAGE_SIZE - 1));
	munmap(res, p - res);
	for (r = 0; r < NR_REGIONS; r++) {
		rep->start[r] = (unsigned long)p;
		if (fill_region(r, p, file)) {
			rep->err = errno;
			rep->step = r;
			return;
		}
		p += region_pages[r] * ps;
		munmap(p, ps);
		p += ps;
	}
	munmap(p, res + size - p);
}

/* Child commands: 'w' writes anon pages 3 and 7, 'l' writes all forever */
static void layout_child(int cmd, int ack, const char *file)
{
	struct layout_report rep = { 0 };
	struct timespec ms = { 0, 1000000 };
	char *anon, c;
	size_t i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	make_layout(&rep, file);
	if (write(ack, &rep, sizeof(rep)) != sizeof(rep) || rep.err)
		_exit(1);
	anon = (char *)rep.start[R_ANON];
	while (read(cmd, &c, 1) == 1) {
		if (c == 'w') {
			touch(anon + 3 * ps);
			touch(anon + 7 * ps);
			if (write(ack, &c, 1) != 1)
				_exit(1);
		}
		while (c == 'l') {
			for (i = 0; i < region_pages[R_ANON]; i++)
				touch(anon + i * ps);
			nanosleep(&ms, NULL);
		}
	}
	_exit(0);
}

static int make_file(char *path, size_t size)
{
	const char *dir = getenv("TMPDIR") ? : "/tmp";
	char page[4096];
	size_t done;
	int fd;

	snprintf(path, PATH_MAX, "%s/pagemap_scan_tool.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	memset(page, 'f', sizeof(page));
	for (done = 0; done < size; done += sizeof(page))
		if (write(fd, page, sizeof(page)) != sizeof(page))
			break;
	close(fd);
	return done < size ? -1 : 0;
}

/* What the tool must print */

static long resolve(long v, long matched, int soft_dirty)
{
	if (v != SD)
		return v;
	return soft_dirty ? matched : UNKNOWN;
}

static void format_count(char *buf, size_t size, long v, const char *none)
{
	if (v == UNKNOWN)
		snprintf(buf, size, "%s", none);
	else
		snprintf(buf, size, "%ld", v);
}

static const char *category_list(unsigned long long cats, char *buf,
				 size_t size)
{
	size_t i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(category_names); i++)
		if (cats & category_names[i].bit)
			len += snprintf(buf + len, size - len, "%s%s",
					len ? "," : "", category_names[i].name);
	return len ? buf : "-";
}

/* Collapse runs of blanks into one, for comparing table rows */
static void squeeze(char *s)
{
	bool blank = false;
	char *d = s;

	for (; *s; s++) {
		if (*s == ' ' && blank)
			continue;
		blank = *s == ' ';
		*d++ = *s;
	}
	*d = '\0';
}

/* The line of @text that starts with @prefix, copied into @line */
static bool find_line(const char *text, const char *prefix, char *line,
		      size_t size)
{
	const char *p = text, *nl;
	size_t len;

	for (; *p; p = nl + 1) {
		nl = strchrnul(p, '\n');
		len = nl - p;
		if (!strncmp(p, prefix, strlen(prefix)) && len < size) {
			memcpy(line, p, len);
			line[len] = '\0';
			return true;
		}
		if (!*nl)
			break;
	}
	return false;
}

/* The layout child, the file it maps and where its regions are */
struct target {
	pid_t child;
	int cmd, ack;		/* pipes to and from it */
	unsigned long start[NR_REGIONS];
	char file[PATH_MAX];
	char pid[16];		/* as the tool's argument */
	int soft_dirty;		/* the kernel tracks soft-dirty */
};

FIXTURE(layout) {
	struct target t;
};

FIXTURE_SETUP(layout)
{
	struct target *t = &self->t;
	struct layout_report rep;
	int cmd[2], ack[2];

	ps = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(0, access(tool_path(), X_OK))
		TH_LOG("no tool at %s: build it, or set PAGEMAP_SCAN_TOOL",
		       tool_path());
	t->soft_dirty = kernel_soft_dirty();
	if (in_guest())
		ASSERT_TRUE(t->soft_dirty)
			TH_LOG("the guest kernel must track soft-dirty");
	ASSERT_EQ(0, make_file(t->file, region_pages[R_FILE] * ps));
	ASSERT_EQ(0, pipe(cmd));
	ASSERT_EQ(0, pipe(ack));
	t->child = fork();
	ASSERT_LE(0, t->child);
	if (!t->child) {
		close(cmd[1]);
		close(ack[0]);
		layout_child(cmd[0], ack[1], t->file);
	}
	close(cmd[0]);
	close(ack[1]);
	t->cmd = cmd[1];
	t->ack = ack[0];
	ASSERT_EQ(sizeof(rep), read(t->ack, &rep, sizeof(rep)));
	ASSERT_EQ(0, rep.err)
		TH_LOG("layout region %d: %s", rep.step, strerror(rep.err));
	memcpy(t->start, rep.start, sizeof(t->start));
	snprintf(t->pid, sizeof(t->pid), "%d", t->child);
}

FIXTURE_TEARDOWN(layout)
{
	struct target *t = &self->t;

	kill(t->child, SIGKILL);
	waitpid(t->child, NULL, 0);
	close(t->cmd);
	close(t->ack);
	unlink(t->file);
}

static const char *region_name(const struct target *t, int r)
{
	return r == R_FILE ? t->file : "[ anon ]";
}

/* The table row the tool must print for region @r */
static void expected_row(const struct target *t, int r,
			 const long counts[NR_C], bool matched, char *buf,
			 size_t size)
{
	size_t len, c;
	char v[32];

	len = snprintf(buf, size, "%016lx %lu", t->start[r],
		       region_pages[r] * ps / 1024);
	for (c = matched ? C_MATCHED : C_PRESENT; c < NR_C; c++) {
		format_count(v, sizeof(v),
			     resolve(counts[c], counts[C_MATCHED],
				     t->soft_dirty), "-");
		len += snprintf(buf + len, size - len, " %s", v);
	}
	snprintf(buf + len, size - len, " %s %s", region_perms[r],
		 region_name(t, r));
}

/* The JSON object the tool must print for region @r */
static void expected_object(const struct target *t, int r,
			    const long counts[NR_C], char *buf, size_t size)
{
	size_t len, c;
	char v[32];

	len = snprintf(buf, size,
		       "{\"start\":\"0x%lx\",\"end\":\"0x%lx\",\"perms\":\"%s\",\"name\":\"%s\",\"kbytes\":%lu",
		       t->start[r], t->start[r] + region_pages[r] * ps,
		       region_perms[r], r == R_FILE ? t->file : "",
		       region_pages[r] * ps / 1024);
	for (c = 0; c < NR_C; c++) {
		format_count(v, sizeof(v),
			     resolve(counts[c], counts[C_MATCHED],
				     t->soft_dirty), "null");
		len += snprintf(buf + len, size - len, ",\"%s\":%s",
				count_key[c], v);
	}
	snprintf(buf + len, size - len, "}");
}

/* The right edges of the header's column titles line up with every row */
static bool table_aligned(const char *out)
{
	const char *header = strstr(out, "\nAddress"), *row, *nl, *mode;
	size_t edges[16], nr = 0, i, len;
	const char *p;

	if (!header)
		return false;
	header++;
	mode = strstr(header, " Mode ");
	for (p = header + strlen("Address"); p < mode && nr < 16; p++)
		if (p[0] != ' ' && p[1] == ' ')
			edges[nr++] = p + 1 - header;
	nl = strchr(header, '\n');
	for (row = nl + 1; nl && *row; row = nl + 1) {
		nl = strchrnul(row, '\n');
		len = nl - row;
		for (i = 0; i < nr; i++)
			if (len < edges[i] || row[edges[i] - 1] == ' ' ||
			    (len > edges[i] && row[edges[i]] != ' '))
				return false;
		if (!*nl)
			break;
	}
	return nr == 8 || nr == 9;
}

/* A table cell as a number; false for '-' */
static bool cell_number(const char *cell, long *v)
{
	char *end;

	*v = strtol(cell, &end, 10);
	return end != cell && !*end;
}

/*
 * The total line must hold the sums of the rows' columns, '-' where every
 * row has '-'. @cols is the number of columns after the address.
 */
static bool table_total_adds_up(const char *out, int cols)
{
	const char *row = strstr(out, "\nAddress"), *p;
	long sum[16] = { 0 }, v;
	bool known[16] = { false };
	char cell[32];
	int c, n;

	for (row = row ? strchr(row + 1, '\n') : NULL; row && row[1] != '-';
	     row = strchr(row + 1, '\n')) {
		p = row + 1 + 16;
		for (c = 0; c < cols; c++, p += n) {
			if (sscanf(p, " %31s%n", cell, &n) != 1)
				return false;
			if (cell_number(cell, &v)) {
				sum[c] += v;
				known[c] = true;
			}
		}
	}
	row = row ? strstr(row, "\ntotal ") : NULL;
	if (!row)
		return false;
	p = row + 1 + 16;
	for (c = 0; c < cols; c++, p += n) {
		if (sscanf(p, " %31s%n", cell, &n) != 1)
			return false;
		if (known[c] ? !cell_number(cell, &v) || v != sum[c] :
			       strcmp(cell, "-"))
			return false;
	}
	return true;
}

static void check_table(struct __test_metadata *_metadata,
			const struct target *t,
			const long counts[NR_REGIONS][NR_C], bool matched,
			const char *out)
{
	char want[PATH_MAX + 256], line[PATH_MAX + 256], prefix[32];
	int r;

	for (r = 0; r < NR_REGIONS; r++) {
		snprintf(prefix, sizeof(prefix), "%016lx ", t->start[r]);
		ASSERT_TRUE(find_line(out, prefix, line, sizeof(line)))
			TH_LOG("no row for region %d in:\n%s", r, out);
		squeeze(line);
		expected_row(t, r, counts[r], matched, want, sizeof(want));
		EXPECT_STREQ(want, line);
	}
	EXPECT_TRUE(table_aligned(out)) TH_LOG("misaligned:\n%s", out);
	EXPECT_TRUE(table_total_adds_up(out, matched ? 9 : 8))
		TH_LOG("wrong totals:\n%s", out);
}

/* The totals must be the sums of the mappings' counts */
static void check_json_totals(struct __test_metadata *_metadata,
			      const char *out, int soft_dirty)
{
	const char *maps = strstr(out, "\"mappings\":[");
	const char *totals = strstr(out, "],\"totals\":{");
	char key[32], want[64];
	long sum, v, numbers;
	const char *p;
	size_t c;

	ASSERT_TRUE(maps && totals) TH_LOG("%s", out);
	for (c = 0; c < NR_C; c++) {
		snprintf(key, sizeof(key), "\"%s\":", count_key[c]);
		sum = 0;
		numbers = 0;
		for (p = strstr(maps, key); p && p < totals;
		     p = strstr(p + 1, key)) {
			if (sscanf(p + strlen(key), "%ld", &v) == 1) {
				sum += v;
				numbers++;
			}
		}
		if (c == C_SOFT_DIRTY && !soft_dirty)
			snprintf(want, sizeof(want), "%snull", key);
		else if (c == C_WRITTEN && !numbers)
			snprintf(want, sizeof(want), "%snull", key);
		else
			snprintf(want, sizeof(want), "%s%ld", key, sum);
		EXPECT_NE(NULL, strstr(totals, want))
			TH_LOG("totals lack %s: %s", want, totals);
	}
}

static void check_json(struct __test_metadata *_metadata,
		       const struct target *t,
		       const long counts[NR_REGIONS][NR_C], const char *out)
{
	char want[PATH_MAX + 512];
	int r;

	ASSERT_TRUE(json_valid(out)) TH_LOG("not JSON:\n%s", out);
	snprintf(want, sizeof(want), "{\"pid\":%d,", t->child);
	EXPECT_EQ(0, strncmp(out, want, strlen(want)));
	snprintf(want, sizeof(want),
		 ",\"page_size\":%lu,\"soft_dirty_tracking\":%s,\"mappings\":[\n",
		 ps, t->soft_dirty ? "true" : "false");
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("no %s", want);
	for (r = 0; r < NR_REGIONS; r++) {
		expected_object(t, r, counts[r], want, sizeof(want));
		EXPECT_NE(NULL, strstr(out, want))
			TH_LOG("no %s in:\n%s", want, out);
	}
	check_json_totals(_metadata, out, t->soft_dirty);
}

/* Write "4" to clear_refs: only pages written from now on are soft-dirty */
static int clear_soft_dirty(pid_t pid)
{
	char path[64];
	int fd, ret;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ret = write(fd, "4", 1) == 1 ? 0 : -1;
	close(fd);
	return ret;
}

static bool own_pagemap_scan(void)
{
	struct page_region r;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (unsigned long)&r & ~(ps - 1),
		.vec = (unsigned long)&r,
		.vec_len = 1,
		.return_mask = PAGE_IS_PRESENT,
	};
	bool ok;
	int fd;

	arg.end = arg.start + ps;
	fd = open("/proc/self/pagemap", O_RDONLY);
	ok = fd >= 0 && ioctl(fd, PAGEMAP_SCAN, &arg) == 1;
	if (fd >= 0)
		close(fd);
	return ok;
}

static unsigned long long own_uffd_features(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);

	if (fd < 0)
		return 0;
	if (ioctl(fd, UFFDIO_API, &api))
		api.features = 0;
	close(fd);
	return api.features;
}

static void check_probe_line(struct __test_metadata *_metadata,
			     const char *out, const char *name, bool present)
{
	char line[512], got[64], state[8];
	int n;

	ASSERT_TRUE(find_line(out, name, line, sizeof(line)))
		TH_LOG("no %s line in:\n%s", name, out);
	n = sscanf(line, "%63s %7s", got, state);
	ASSERT_EQ(2, n);
	EXPECT_STREQ(present ? "yes" : "no", state) TH_LOG("%s", line);
}

/* A PID nobody has: a child that was reaped */
static pid_t gone_pid(void)
{
	pid_t pid = fork();

	if (!pid)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

/* A kernel thread (PF_KTHREAD in /proc/PID/stat), or 0 */
static pid_t find_kernel_thread(void)
{
	unsigned long flags;
	char path[64], buf[512], *p;
	pid_t pid;
	FILE *f;

	for (pid = 2; pid < 1000; pid++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %lu",
				&flags) == 1 && (flags & PF_KTHREAD))
			return pid;
	}
	return 0;
}

/* The tests of tools/vm/pagemap-scan */

TEST_F(layout, table)
{
	struct target *t = &self->t;
	struct run r;

	run_tool(&r, 0, t->pid, NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr(r.out, "Address ")) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "\ntotal ")) TH_LOG("%s", r.out);
	check_table(_metadata, t, plain_counts, false, r.out);
	free_run(&r);
}

TEST_F(layout, json)
{
	struct target *t = &self->t;
	struct run r;

	run_tool(&r, 0, "--json", t->pid, NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	check_json(_metadata, t, plain_counts, r.out);
	free_run(&r);
}

TEST_F(layout, ranges)
{
	struct target *t = &self->t;
	static char want[PATH_MAX + 128 * 1024];
	struct run_spec s;
	char cats[128];
	unsigned long long sd;
	unsigned long first;
	struct run r;
	size_t len, i;
	int reg;

	sd = t->soft_dirty ? PAGE_IS_SOFT_DIRTY : 0;
	run_tool(&r, 0, "--ranges", t->pid, NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	for (reg = 0; reg < NR_REGIONS; reg++) {
		first = t->start[reg];
		len = snprintf(want, sizeof(want), "\n%016lx-%016lx %s %s\n",
			       first, first + region_pages[reg] * ps,
			       region_perms[reg], region_name(t, reg));
		for (i = 0; region_run(reg, i, &s); i++)
			len += snprintf(want + len, sizeof(want) - len,
					"  %016lx-%016lx %8lu  %s\n",
					first + s.first * ps,
					first + (s.first + s.pages) * ps,
					s.pages,
					category_list(s.cats | sd, cats,
						      sizeof(cats)));
		EXPECT_NE(NULL, strstr(r.out, want))
			TH_LOG("no\n%s\nin\n%s", want, r.out);
	}
	free_run(&r);

	/* The same runs as JSON, with their categories as names */
	run_tool(&r, 0, "--ranges", "--json", t->pid, NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_TRUE(json_valid(r.out)) TH_LOG("not JSON:\n%s", r.out);
	snprintf(want, sizeof(want),
		 "\"ranges\":[{\"start\":\"0x%lx\",\"end\":\"0x%lx\",\"pages\":1,\"categories\":[\"swapped\",%s\"wpallowed\"]},",
		 t->start[R_UFFD], t->start[R_UFFD] + ps,
		 sd ? "\"soft_dirty\"," : "");
	EXPECT_NE(NULL, strstr(r.out, want)) TH_LOG("no %s", want);
	free_run(&r);
}

TEST_F(layout, categories)
{
	struct target *t = &self->t;
	char want[PATH_MAX + 256];
	struct run r;

	run_tool(&r, 0, "--json", "--categories", "present,!file", t->pid,
		 NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	check_json(_metadata, t, present_not_file_counts, r.out);
	free_run(&r);

	run_tool(&r, 0, "--categories", "present,!file", t->pid, NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr(r.out, " Matched ")) TH_LOG("%s", r.out);
	check_table(_metadata, t, present_not_file_counts, true, r.out);
	free_run(&r);

	run_tool(&r, 0, "--json", "--categories", "huge", t->pid, NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	check_json(_metadata, t, huge_counts, r.out);
	free_run(&r);

	/* Only async uffd-wp memory is wpallowed */
	run_tool(&r, 0, "--ranges", "--categories", "wpallowed", t->pid,
		 NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	snprintf(want, sizeof(want), "total: %zu runs, %lu pages\n",
		 ARRAY_SIZE(uffd_runs), region_pages[R_UFFD]);
	EXPECT_NE(NULL, strstr(r.out, want)) TH_LOG("%s", r.out);
	free_run(&r);
}

TEST_F(layout, any)
{
	struct target *t = &self->t;
	struct run r;

	run_tool(&r, 0, "--json", "--any", "swapped,pfnzero", t->pid,
		 NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	check_json(_metadata, t, swapped_or_zero_counts, r.out);
	free_run(&r);
}

TEST_F(layout, soft_dirty_after_clear_refs)
{
	struct target *t = &self->t;
	struct run r;
	char c = 'w';

	if (!t->soft_dirty) {
		/* Not the guest (see the setup): unknown, not a count */
		run_tool(&r, 0, t->pid, NULL);
		ASSERT_EQ(0, r.status);
		check_table(_metadata, t, plain_counts, false, r.out);
		free_run(&r);
		return;
	}
	ASSERT_EQ(0, clear_soft_dirty(t->child));
	ASSERT_EQ(1, write(t->cmd, &c, 1));
	ASSERT_EQ(1, read(t->ack, &c, 1));
	run_tool(&r, 0, "--json", t->pid, NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	check_json(_metadata, t, cleared_counts, r.out);
	free_run(&r);
}

TEST_F(layout, wss)
{
	struct target *t = &self->t;
	unsigned long pages, lines = 0;
	double mib, ms;
	char *line, *save = NULL;
	struct run r;
	char c = 'l';
	int n;

	if (!t->soft_dirty) {
		run_tool(&r, 0, "--wss", t->pid, "0.1", "1", NULL);
		EXPECT_EQ(EXIT_NOFEATURE, r.status);
		EXPECT_NE(NULL, strstr(r.err, "--wss needs soft-dirty"))
			TH_LOG("%s", r.err);
		free_run(&r);
		return;
	}
	/* The child now writes its 16 anon pages every millisecond */
	ASSERT_EQ(1, write(t->cmd, &c, 1));
	run_tool(&r, 0, "--wss", t->pid, "0.5", "3", NULL);
	ASSERT_EQ(0, r.status) TH_LOG("%s", r.err);
	ASSERT_EQ(0, strncmp(r.out, "# time", 6)) TH_LOG("%s", r.out);
	for (line = strtok_r(r.out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		lines++;
		n = sscanf(line, "%*s %lu %lf %lf", &pages, &mib, &ms);
		ASSERT_EQ(3, n) TH_LOG("%s", line);
		/* Its stack and data may add a few pages, nothing more */
		EXPECT_LE(region_pages[R_ANON], pages) TH_LOG("%s", line);
		EXPECT_GE(region_pages[R_ANON] + 32, pages) TH_LOG("%s", line);
		EXPECT_GT(0.006, mib - pages * ps / 1048576.0);
		EXPECT_LT(-0.006, mib - pages * ps / 1048576.0);
	}
	EXPECT_EQ(3, lines);
	free_run(&r);
}

TEST_F(layout, no_pagemap_scan)
{
	struct target *t = &self->t;
	const char *msg = "this kernel has no PAGEMAP_SCAN (Linux >= 6.7, or the 6.1 backport)";
	struct run r;

	run_tool(&r, RUN_NO_PAGEMAP_SCAN, t->pid, NULL);
	EXPECT_EQ(EXIT_NOFEATURE, r.status);
	EXPECT_NE(NULL, strstr(r.err, msg)) TH_LOG("%s", r.err);
	EXPECT_STREQ("", r.out);
	free_run(&r);

	run_tool(&r, RUN_NO_PAGEMAP_SCAN, "--probe", NULL);
	EXPECT_EQ(EXIT_MISSING, r.status);
	check_probe_line(_metadata, r.out, "PAGEMAP_SCAN:", false);
	free_run(&r);
}

TEST(probe)
{
	unsigned long long features;
	bool scan, async, unpop;
	int sd, all;
	struct run r;

	ps = sysconf(_SC_PAGESIZE);
	scan = own_pagemap_scan();
	features = own_uffd_features();
	async = features & UFFD_FEATURE_WP_ASYNC;
	unpop = features & UFFD_FEATURE_WP_UNPOPULATED;
	sd = kernel_soft_dirty();
	all = scan && async && unpop && sd;
	if (in_guest())
		ASSERT_TRUE(all) TH_LOG("the guest kernel lacks a feature");

	run_tool(&r, 0, "--probe", NULL);
	EXPECT_EQ(all ? 0 : EXIT_MISSING, r.status) TH_LOG("%s", r.out);
	check_probe_line(_metadata, r.out, "PAGEMAP_SCAN:", scan);
	check_probe_line(_metadata, r.out, "UFFD_FEATURE_WP_ASYNC:", async);
	check_probe_line(_metadata, r.out, "UFFD_FEATURE_WP_UNPOPULATED:",
			 unpop);
	check_probe_line(_metadata, r.out, "soft-dirty:", sd);
	free_run(&r);

	run_tool(&r, 0, "--probe", "--json", NULL);
	EXPECT_EQ(all ? 0 : EXIT_MISSING, r.status);
	EXPECT_TRUE(json_valid(r.out)) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, scan ? "\"pagemap_scan\":true" :
				      "\"pagemap_scan\":false"));
	EXPECT_NE(NULL, strstr(r.out, sd ? "\"soft_dirty\":true" :
				      "\"soft_dirty\":false"));
	free_run(&r);
}

TEST(missing_pid)
{
	char pid[16], want[64];
	struct run r;

	snprintf(pid, sizeof(pid), "%d", gone_pid());
	snprintf(want, sizeof(want), "no process with PID %s\n", pid);
	run_tool(&r, 0, pid, NULL);
	EXPECT_EQ(EXIT_NOPROC, r.status);
	EXPECT_NE(NULL, strstr(r.err, want)) TH_LOG("%s", r.err);
	EXPECT_STREQ("", r.out);
	free_run(&r);
}

TEST(no_permission)
{
	char pid[16];
	struct run r;

	/* Root looks at itself as nobody; others at init, owned by root */
	snprintf(pid, sizeof(pid), "%d", geteuid() ? 1 : getpid());
	run_tool(&r, geteuid() ? 0 : RUN_AS_NOBODY, pid, NULL);
	EXPECT_EQ(EXIT_NOPERM, r.status) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "Permission denied")) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "hint: ")) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr(r.err, "CAP_SYS_PTRACE")) TH_LOG("%s", r.err);
	free_run(&r);
}

TEST(kernel_thread)
{
	pid_t kthread = find_kernel_thread();
	char pid[16];
	struct run r;

	if (!kthread && !in_guest())
		return;		/* a container without kernel threads */
	ASSERT_NE(0, kthread) TH_LOG("no kernel thread found");
	snprintf(pid, sizeof(pid), "%d", kthread);
	run_tool(&r, 0, pid, NULL);
	EXPECT_EQ(EXIT_NOPROC, r.status);
	EXPECT_NE(NULL, strstr(r.err, "has no memory")) TH_LOG("%s", r.err);
	free_run(&r);
}

TEST(bad_usage)
{
	static const char * const cases[][6] = {
		{ NULL },
		{ "0", NULL },
		{ "1x", NULL },
		{ "--categories", "bogus", "1", NULL },
		{ "--categories", "present", "--any", "!present", "1", NULL },
		{ "--wss", "1", NULL },
		{ "--wss", "1", "0", NULL },
		{ "--probe", "1", NULL },
		{ "--ranges", "--wss", "1", "1", NULL },
		{ "1", "2", NULL },
	};
	struct run r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		run_tool(&r, 0, cases[i][0], cases[i][1], cases[i][2],
			 cases[i][3], cases[i][4], NULL);
		EXPECT_EQ(EXIT_USAGE, r.status) TH_LOG("case %zu", i);
		EXPECT_NE(NULL, strstr(r.err, "usage: ")) TH_LOG("%s", r.err);
		free_run(&r);
	}
}

TEST_HARNESS_MAIN
