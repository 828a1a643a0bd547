// SPDX-License-Identifier: GPL-2.0
/*
 * pagemap-scan: what the pages of a process are, as PAGEMAP_SCAN sees them
 *
 * For each mapping of a process, count the pages that are present, swapped,
 * file-backed, the zero page, huge, soft-dirty and (in async uffd-wp ranges)
 * written; or list the runs of pages a selection of categories matches;
 * measure a write working set with soft-dirty; tell whether this kernel has
 * the interfaces all this rests on. See pagemap-scan.8.
 *
 * Each mapping costs one PAGEMAP_SCAN walk, resumed at walk_end whenever the
 * region buffer fills: the work grows with the number of runs of alike
 * pages, not with the size of the mapping as reading pagemap entries does.
 */

#define _FILE_OFFSET_BITS 64
#define _GNU_SOURCE
/* __u64 is unsigned long long everywhere, as %llu wants */
#define __SANE_USERSPACE_TYPES__
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
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
#include <sys/syscall.h>
#include <sys/utsname.h>
#include "../../include/uapi/linux/fs.h"
#include "../../include/uapi/linux/userfaultfd.h"

/* Exit statuses; EXIT STATUS in pagemap-scan.8 says the same */
#define EXIT_FAILED	1	/* any other error; --probe: something missing */
#define EXIT_USAGE	2	/* bad options or arguments */
#define EXIT_NOPROC	3	/* no such process, or it has no memory */
#define EXIT_NOPERM	4	/* not allowed to look at the process */
#define EXIT_NOFEATURE	5	/* the kernel lacks what the command needs */

/* Regions one ioctl returns at most; a longer scan resumes at walk_end */
#define VEC_LEN		256

/* Bit 55 of a /proc/PID/pagemap entry: the page is soft-dirty */
#define PM_ENTRY_SOFT_DIRTY	0x0080000000000000ULL

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

struct category {
	const char *name;	/* in --categories, --ranges and --json */
	const char *title;	/* of the table's column; NULL: no column */
	__u64 bit;
};

/* In the order of the table's columns, those without one last */
static const struct category categories[] = {
	{ "present",	"Present",	PAGE_IS_PRESENT },
	{ "swapped",	"Swapped",	PAGE_IS_SWAPPED },
	{ "file",	"File",		PAGE_IS_FILE },
	{ "pfnzero",	"Zero",		PAGE_IS_PFNZERO },
	{ "huge",	"Huge",		PAGE_IS_HUGE },
	{ "soft_dirty",	"SoftDirty",	PAGE_IS_SOFT_DIRTY },
	{ "written",	"Written",	PAGE_IS_WRITTEN },
	{ "wpallowed",	NULL,		PAGE_IS_WPALLOWED },
};

/* The categories counted per mapping: all but wpallowed */
#define NR_COUNTS	(ARRAY_SIZE(categories) - 1)
/* Indexes in categories[] of the counts that may be unknown */
#define CNT_SOFT_DIRTY	5
#define CNT_WRITTEN	6

#define ALL_CATEGORIES	(PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN | \
			 PAGE_IS_FILE | PAGE_IS_PRESENT | PAGE_IS_SWAPPED | \
			 PAGE_IS_PFNZERO | PAGE_IS_HUGE | PAGE_IS_SOFT_DIRTY)

struct mapping {
	__u64 start, end;
	char perms[5];
	char *name;		/* as in maps, "" when anonymous */
	bool scanned;		/* false: the kernel refused the range */
	bool wpallowed;		/* async uffd-wp: written means something */
	__u64 pages;		/* size */
	__u64 matched;		/* pages the selection matched */
	__u64 count[NR_COUNTS];	/* matched pages in each category */
	struct page_region *runs;	/* with --ranges */
	size_t nr_runs, runs_cap;
};

struct process {
	int pid;
	char *command;
	int pagemap;		/* open /proc/PID/pagemap */
	struct mapping *map;
	size_t nr_maps, maps_cap;
};

struct options {
	bool ranges;
	bool json;
	bool selected;		/* --categories or --any */
	__u64 mask, anyof, inverted;
};

struct scanner {
	int fd;
	struct pm_scan_arg arg;
	struct page_region vec[VEC_LEN];
};

static long page_size;
static int soft_dirty_tracking;	/* 1 yes, 0 no, < 0 could not tell */

static void error(const char *fmt, ...)
{
	va_list ap;

	fputs("pagemap-scan: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void *xrealloc(void *p, size_t nr, size_t size)
{
	p = reallocarray(p, nr, size);
	if (!p) {
		error("out of memory");
		exit(EXIT_FAILED);
	}
	return p;
}

static void print_usage(FILE *f)
{
	fputs("usage: pagemap-scan [--ranges] [--json] [--categories LIST] [--any LIST] PID\n"
	      "       pagemap-scan --wss PID INTERVAL [COUNT]\n"
	      "       pagemap-scan --probe [--json]\n"
	      "\n"
	      "  -r, --ranges           list the runs of matching pages, not counts\n"
	      "  -c, --categories LIST  only pages in all these categories\n"
	      "  -a, --any LIST         only pages in at least one of these\n"
	      "  -j, --json             one JSON object on standard output\n"
	      "  -w, --wss              write working set every INTERVAL seconds\n"
	      "  -p, --probe            does this kernel have what the tool needs?\n"
	      "  -h, --help             this text\n"
	      "\n"
	      "LIST is a comma-separated list of present, swapped, file, pfnzero,\n"
	      "huge, soft_dirty, written, wpallowed; a leading '!' inverts one.\n"
	      "See pagemap-scan(8).\n", f);
}

/*
 * Hints for a refused open of /proc/PID/maps or pagemap. Both need ptrace
 * read access (PTRACE_MODE_READ), which Yama does not restrict: it only
 * governs attaching, so its setting is shown to rule it out.
 */
static void ptrace_hint(void)
{
	int scope = -1;
	FILE *f;

	f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
	if (f) {
		if (fscanf(f, "%d", &scope) != 1)
			scope = -1;
		fclose(f);
	}
	fputs("hint: the page tables of a process are readable with ptrace read access:\n"
	      "  by its own user (same uid and gid), when it is dumpable (not a setuid\n"
	      "  program, not prctl(PR_SET_DUMPABLE, 0)), or with CAP_SYS_PTRACE (root)\n",
	      stderr);
	if (scope >= 0)
		fprintf(stderr,
			"  /proc/sys/kernel/yama/ptrace_scope (%d) limits only attaching, not reading\n",
			scope);
	fputs("  a security module (SELinux, AppArmor) may refuse it as well\n",
	      stderr);
}

static void no_pagemap_scan(void)
{
	error("this kernel has no PAGEMAP_SCAN (Linux >= 6.7, or the 6.1 backport)");
}

/* Say why @err kept us from @what of process @pid; return the exit status */
static int proc_error(int pid, const char *what, int err)
{
	switch (err) {
	case ENOENT:
		if (access("/proc/self/maps", R_OK)) {
			error("no /proc/self/maps: is proc mounted on /proc?");
			return EXIT_FAILED;
		}
		error("no process with PID %d", pid);
		return EXIT_NOPROC;
	case ESRCH:
		error("process %d has no memory (a kernel thread, or it exited)",
		      pid);
		return EXIT_NOPROC;
	case ENOTTY:
		no_pagemap_scan();
		return EXIT_NOFEATURE;
	case EACCES:
	case EPERM:
		error("%s of process %d: %s", what, pid, strerror(err));
		ptrace_hint();
		return EXIT_NOPERM;
	}
	error("%s of process %d: %s", what, pid, strerror(err));
	return EXIT_FAILED;
}

static int open_proc(int pid, const char *file, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	return open(path, flags | O_CLOEXEC);
}

/* /proc/PID/cmdline with spaces for the NULs, or "[comm]" when empty */
static char *read_command(int pid)
{
	char buf[256], *s;
	ssize_t i, n;
	int fd;

	fd = open_proc(pid, "cmdline", O_RDONLY);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		while (n > 0 && !buf[n - 1])
			n--;
		for (i = 0; i < n; i++)
			buf[i] = buf[i] ? buf[i] : ' ';
		buf[n] = '\0';
		return strdup(buf);
	}
	fd = open_proc(pid, "comm", O_RDONLY);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return strdup("");
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (asprintf(&s, "[%s]", buf) < 0)
		return NULL;
	return s;
}

/* One line of /proc/PID/maps: "start-end perms offset dev inode   name" */
static int parse_maps_line(char *line, struct mapping *m)
{
	unsigned long long start, end;
	int name_at = -1;

	line[strcspn(line, "\n")] = '\0';
	if (sscanf(line, "%llx-%llx %4s %*s %*s %*s %n", &start, &end,
		   m->perms, &name_at) < 3 || name_at < 0 || end <= start)
		return -1;
	m->start = start;
	m->end = end;
	m->pages = (end - start) / page_size;
	m->name = strdup(line + name_at);
	return m->name ? 0 : -1;
}

static int read_maps(struct process *proc)
{
	struct mapping *m;
	size_t len = 0;
	char *line = NULL;
	int fd, ret = 0;
	FILE *f;

	fd = open_proc(proc->pid, "maps", O_RDONLY);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -errno;
	}
	errno = 0;
	while (!ret && getline(&line, &len, f) > 0) {
		if (proc->nr_maps == proc->maps_cap) {
			proc->maps_cap = proc->maps_cap * 2 + 64;
			proc->map = xrealloc(proc->map, proc->maps_cap,
					     sizeof(*proc->map));
		}
		m = &proc->map[proc->nr_maps];
		memset(m, 0, sizeof(*m));
		if (parse_maps_line(line, m)) {
			error("cannot parse maps line: %s", line);
			ret = -EINVAL;
		} else {
			proc->nr_maps++;
		}
	}
	if (!ret && ferror(f))
		ret = errno ? -errno : -EIO;
	free(line);
	fclose(f);
	return ret;
}

static void free_maps(struct process *proc)
{
	size_t i;

	for (i = 0; i < proc->nr_maps; i++) {
		free(proc->map[i].name);
		free(proc->map[i].runs);
	}
	proc->nr_maps = 0;
}

/* Keep @r as a run of @m, merged with the last one if they touch */
static void add_run(struct mapping *m, const struct page_region *r)
{
	struct page_region *last = m->nr_runs ? &m->runs[m->nr_runs - 1] : NULL;

	if (last && last->end == r->start &&
	    last->categories == r->categories) {
		last->end = r->end;
		return;
	}
	if (m->nr_runs == m->runs_cap) {
		m->runs_cap = m->runs_cap * 2 + 16;
		m->runs = xrealloc(m->runs, m->runs_cap, sizeof(*m->runs));
	}
	m->runs[m->nr_runs++] = *r;
}

/*
 * Outside async uffd-wp ranges nothing is ever write-protected, so the
 * kernel reports every page as written: drop what tells nothing.
 */
static __u64 shown_categories(__u64 cats)
{
	if (!(cats & PAGE_IS_WPALLOWED))
		cats &= ~(__u64)PAGE_IS_WRITTEN;
	return cats;
}

static void count_region(struct mapping *m, const struct page_region *r,
			 bool keep_runs)
{
	struct page_region shown = *r;
	__u64 pages = (r->end - r->start) / page_size;
	size_t i;

	shown.categories = shown_categories(r->categories);
	if (r->categories & PAGE_IS_WPALLOWED)
		m->wpallowed = true;
	m->matched += pages;
	for (i = 0; i < NR_COUNTS; i++)
		if (shown.categories & categories[i].bit)
			m->count[i] += pages;
	if (keep_runs)
		add_run(m, &shown);
}

/*
 * Scan [@m->start, @m->end) with the masks in @s->arg, counting what is
 * found into @m. The kernel stops when vec is full and says at walk_end
 * where to resume. Returns 0 or a negative errno.
 */
static int scan_mapping(struct scanner *s, struct mapping *m, bool keep_runs)
{
	long i, n;

	s->arg.start = m->start;
	s->arg.end = m->end;
	while (s->arg.start < m->end) {
		s->arg.walk_end = 0;
		n = ioctl(s->fd, PAGEMAP_SCAN, &s->arg);
		if (n < 0)
			return -errno;
		for (i = 0; i < n; i++)
			count_region(m, &s->vec[i], keep_runs);
		/* A walk_end that does not advance would loop forever */
		if (s->arg.walk_end <= s->arg.start ||
		    s->arg.walk_end > m->end)
			return -EPROTO;
		s->arg.start = s->arg.walk_end;
	}
	m->scanned = true;
	return 0;
}

/*
 * Whether any page of @m may be write-protected by PAGEMAP_SCAN. Only
 * needed when the selection matched no page: otherwise every region says.
 */
static int probe_wpallowed(struct scanner *s, struct mapping *m)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = m->start,
		.end = m->end,
		.vec = (unsigned long)s->vec,
		.vec_len = 1,
		.max_pages = 1,
		.category_mask = PAGE_IS_WPALLOWED,
		.return_mask = PAGE_IS_WPALLOWED,
	};
	long n = ioctl(s->fd, PAGEMAP_SCAN, &arg);

	if (n < 0)
		return -errno;
	m->wpallowed = n > 0;
	return 0;
}

static void init_scanner(struct scanner *s, int fd, __u64 mask, __u64 anyof,
			 __u64 inverted, __u64 return_mask)
{
	memset(&s->arg, 0, sizeof(s->arg));
	s->fd = fd;
	s->arg.size = sizeof(s->arg);
	s->arg.vec = (unsigned long)s->vec;
	s->arg.vec_len = VEC_LEN;
	s->arg.category_mask = mask;
	s->arg.category_anyof_mask = anyof;
	s->arg.category_inverted = inverted;
	s->arg.return_mask = return_mask;
}

/*
 * Scan every mapping of @proc. A range the kernel refuses with EFAULT lies
 * beyond the user address space ([vsyscall]): it is shown unscanned.
 */
static int scan_process(struct process *proc, const struct options *opt)
{
	struct scanner *s = xrealloc(NULL, 1, sizeof(*s));
	struct mapping *m;
	int ret = 0;
	size_t i;

	init_scanner(s, proc->pagemap, opt->mask, opt->anyof, opt->inverted,
		     ALL_CATEGORIES);
	for (i = 0; i < proc->nr_maps && !ret; i++) {
		m = &proc->map[i];
		ret = scan_mapping(s, m, opt->ranges);
		if (ret == -EFAULT)
			ret = 0;
		else if (!ret && opt->selected && !m->matched)
			ret = probe_wpallowed(s, m);
	}
	free(s);
	return ret;
}

/*
 * Whether this kernel tracks soft-dirty pages: a page just written in a
 * new mapping is soft-dirty (bit 55 of its pagemap entry) if it does.
 * Returns 1 or 0, or a negative errno when it cannot tell.
 */
static int probe_soft_dirty(void)
{
	__u64 entry = 0;
	char *page;
	ssize_t n;
	int fd;

	page = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return -errno;
	page[0] = 1;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : pread(fd, &entry, sizeof(entry),
				(unsigned long)page / page_size * sizeof(entry));
	if (n != sizeof(entry))
		n = n < 0 ? -errno : -EIO;
	if (fd >= 0)
		close(fd);
	munmap(page, page_size);
	if (n < 0)
		return n;
	return !!(entry & PM_ENTRY_SOFT_DIRTY);
}

/* Parse a LIST of category names into @set; a '!' one into @inverted too */
static int parse_categories(const char *list, __u64 *set, __u64 *inverted)
{
	char *copy = strdup(list), *name, *save = NULL;
	bool invert;
	size_t i;
	int ret = 0;

	if (!copy)
		return -1;
	for (name = strtok_r(copy, ",", &save); name && !ret;
	     name = strtok_r(NULL, ",", &save)) {
		invert = name[0] == '!';
		name += invert;
		for (i = 0; name[i]; i++)
			name[i] = name[i] == '-' ? '_' : name[i];
		for (i = 0; i < ARRAY_SIZE(categories); i++)
			if (!strcmp(name, categories[i].name))
				break;
		if (i == ARRAY_SIZE(categories)) {
			error("unknown category '%s'", name);
			ret = -1;
			break;
		}
		*set |= categories[i].bit;
		if (invert)
			*inverted |= categories[i].bit;
	}
	if (!ret && !*set) {
		error("empty category list '%s'", list);
		ret = -1;
	}
	free(copy);
	return ret;
}

/*
 * The kernel applies one category_inverted to both masks, so a category
 * cannot be inverted in one list and not in the other.
 */
static int check_selection(const struct options *opt, __u64 inv_mask,
			   __u64 inv_anyof)
{
	__u64 both = opt->mask & opt->anyof;

	if ((inv_mask & both) != (inv_anyof & both)) {
		error("a category is inverted in --categories, not in --any, or the reverse");
		return -1;
	}
	return 0;
}

/* Table, --ranges and --json output */

static void json_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int len, i;

	putchar('"');
	for (; *p; p++) {
		if (*p == '"' || *p == '\\') {
			printf("\\%c", *p);
		} else if (*p < 0x20 || *p == 0x7f) {
			printf("\\u%04x", *p);
		} else if (*p < 0x80) {
			putchar(*p);
		} else {
			/* Keep valid UTF-8, replace any other byte */
			len = *p >= 0xf0 && *p < 0xf5 ? 4 : *p >= 0xe0 ? 3 :
			      *p >= 0xc2 && *p < 0xe0 ? 2 : 0;
			for (i = 1; i < len; i++)
				if ((p[i] & 0xc0) != 0x80)
					len = 0;
			if (!len) {
				fputs("\\ufffd", stdout);
				continue;
			}
			fwrite(p, 1, len, stdout);
			p += len - 1;
		}
	}
	putchar('"');
}

static void json_categories(__u64 cats)
{
	const char *sep = "";
	size_t i;

	putchar('[');
	for (i = 0; i < ARRAY_SIZE(categories); i++) {
		if (cats & categories[i].bit) {
			printf("%s\"%s\"", sep, categories[i].name);
			sep = ",";
		}
	}
	putchar(']');
}

/* Whether count @i of @m has a value, or shows as '-' / null */
static bool count_known(const struct mapping *m, size_t i)
{
	if (!m->scanned)
		return false;
	if (i == CNT_SOFT_DIRTY)
		return soft_dirty_tracking > 0;
	if (i == CNT_WRITTEN)
		return m->wpallowed;
	return true;
}

static void json_counts(const struct mapping *m)
{
	size_t i;

	printf("\"kbytes\":%llu,", m->pages * page_size / 1024);
	if (m->scanned)
		printf("\"matched\":%llu", m->matched);
	else
		fputs("\"matched\":null", stdout);
	for (i = 0; i < NR_COUNTS; i++) {
		printf(",\"%s\":", categories[i].name);
		if (count_known(m, i))
			printf("%llu", m->count[i]);
		else
			fputs("null", stdout);
	}
}

static void json_run(const struct page_region *r, const char *sep)
{
	printf("%s{\"start\":\"0x%llx\",\"end\":\"0x%llx\",", sep,
	       r->start, r->end);
	printf("\"pages\":%llu,\"categories\":",
	       (r->end - r->start) / page_size);
	json_categories(r->categories);
	putchar('}');
}

static void json_mapping(const struct mapping *m, const struct options *opt)
{
	size_t i;

	printf("{\"start\":\"0x%llx\",\"end\":\"0x%llx\",\"perms\":\"%s\",\"name\":",
	       m->start, m->end, m->perms);
	json_string(m->name);
	putchar(',');
	json_counts(m);
	if (opt->ranges) {
		fputs(",\"ranges\":[", stdout);
		for (i = 0; i < m->nr_runs; i++)
			json_run(&m->runs[i], i ? "," : "");
		putchar(']');
	}
	putchar('}');
}

/*
 * The sums over all mappings; written over the async uffd-wp ones only,
 * and unknown if there is none.
 */
static void sum_mappings(const struct process *proc, struct mapping *total)
{
	const struct mapping *m;
	size_t i, j;

	memset(total, 0, sizeof(*total));
	total->scanned = true;
	for (i = 0; i < proc->nr_maps; i++) {
		m = &proc->map[i];
		total->pages += m->pages;
		total->matched += m->matched;
		total->wpallowed |= m->wpallowed;
		/* Not written outside wpallowed: see shown_categories() */
		for (j = 0; j < NR_COUNTS; j++)
			total->count[j] += m->count[j];
	}
}

static void print_json(const struct process *proc, const struct options *opt)
{
	struct mapping total;
	size_t i;

	printf("{\"pid\":%d,\"command\":", proc->pid);
	json_string(proc->command);
	printf(",\"page_size\":%ld,\"soft_dirty_tracking\":%s,\"mappings\":[\n",
	       page_size, soft_dirty_tracking > 0 ? "true" : "false");
	for (i = 0; i < proc->nr_maps; i++) {
		json_mapping(&proc->map[i], opt);
		fputs(i + 1 < proc->nr_maps ? ",\n" : "\n", stdout);
	}
	sum_mappings(proc, &total);
	fputs("],\"totals\":{", stdout);
	json_counts(&total);
	fputs("}}\n", stdout);
}

static const char *category_list(__u64 cats, char *buf, size_t size)
{
	size_t i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(categories) && len < size; i++)
		if (cats & categories[i].bit)
			len += snprintf(buf + len, size - len, "%s%s",
					len ? "," : "", categories[i].name);
	return len ? buf : "-";
}

static const char *shown_name(const struct mapping *m)
{
	return m->name[0] ? m->name : "[ anon ]";
}

#define ADDR_WIDTH	((int)sizeof(long) * 2)

static void print_ranges(const struct process *proc)
{
	unsigned long long runs = 0, pages = 0, n;
	const struct page_region *r;
	const struct mapping *m;
	char buf[128];
	size_t i, j;

	printf("%d:   %s\n", proc->pid, proc->command);
	for (i = 0; i < proc->nr_maps; i++) {
		m = &proc->map[i];
		if (!m->nr_runs)
			continue;
		printf("%0*llx-%0*llx %s %s\n", ADDR_WIDTH, m->start,
		       ADDR_WIDTH, m->end, m->perms, shown_name(m));
		for (j = 0; j < m->nr_runs; j++) {
			r = &m->runs[j];
			n = (r->end - r->start) / page_size;
			printf("  %0*llx-%0*llx %8llu  %s\n", ADDR_WIDTH,
			       r->start, ADDR_WIDTH, r->end, n,
			       category_list(r->categories, buf, sizeof(buf)));
			pages += n;
		}
		runs += m->nr_runs;
	}
	printf("total: %llu runs, %llu pages\n", runs, pages);
}

/* The numbers of one table row: Kbytes, Matched, then the counts */
#define COL_KBYTES	0
#define COL_MATCHED	1
#define COL_COUNT0	2
#define NR_COLS		(COL_COUNT0 + NR_COUNTS)

struct table {
	bool matched;		/* show the Matched column */
	int width[NR_COLS];
};

static const char *column_title(size_t col)
{
	if (col == COL_KBYTES)
		return "Kbytes";
	if (col == COL_MATCHED)
		return "Matched";
	return categories[col - COL_COUNT0].title;
}

static const char *cell(const struct mapping *m, size_t col, char *buf,
			size_t size)
{
	__u64 v;

	if (col == COL_KBYTES) {
		v = m->pages * page_size / 1024;
	} else if (!m->scanned) {
		return "-";
	} else if (col == COL_MATCHED) {
		v = m->matched;
	} else {
		if (!count_known(m, col - COL_COUNT0))
			return "-";
		v = m->count[col - COL_COUNT0];
	}
	snprintf(buf, size, "%llu", v);
	return buf;
}

static void fit_row(struct table *t, const struct mapping *m)
{
	char buf[32];
	size_t col;
	int len;

	for (col = 0; col < NR_COLS; col++) {
		len = strlen(cell(m, col, buf, sizeof(buf)));
		if (len > t->width[col])
			t->width[col] = len;
	}
}

static void print_row(const struct table *t, const char *first,
		      const struct mapping *m, const char *perms,
		      const char *name)
{
	char buf[32];
	size_t col;

	printf("%-*s", ADDR_WIDTH, first);
	for (col = 0; col < NR_COLS; col++) {
		if (col == COL_MATCHED && !t->matched)
			continue;
		printf(" %*s", t->width[col],
		       m ? cell(m, col, buf, sizeof(buf)) : column_title(col));
	}
	if (perms)
		printf(" %-5s %s", perms, name);
	putchar('\n');
}

static void print_table(const struct process *proc, const struct options *opt)
{
	struct table t = { .matched = opt->selected };
	struct mapping total;
	char addr[32];
	size_t i, col;

	sum_mappings(proc, &total);
	for (col = 0; col < NR_COLS; col++)
		t.width[col] = strlen(column_title(col));
	for (i = 0; i < proc->nr_maps; i++)
		fit_row(&t, &proc->map[i]);
	fit_row(&t, &total);

	printf("%d:   %s\n", proc->pid, proc->command);
	print_row(&t, "Address", NULL, "Mode", "Mapping");
	for (i = 0; i < proc->nr_maps; i++) {
		snprintf(addr, sizeof(addr), "%0*llx", ADDR_WIDTH,
			 proc->map[i].start);
		print_row(&t, addr, &proc->map[i], proc->map[i].perms,
			  shown_name(&proc->map[i]));
	}
	printf("%.*s", ADDR_WIDTH, "--------------------------------");
	for (col = 0; col < NR_COLS; col++)
		if (col != COL_MATCHED || t.matched)
			printf(" %.*s", t.width[col],
			       "--------------------------------");
	putchar('\n');
	print_row(&t, "total", &total, NULL, NULL);
}

/* Open @pid's pagemap and read its maps; returns an exit status */
static int open_process(struct process *proc)
{
	int ret;

	proc->pagemap = open_proc(proc->pid, "pagemap", O_RDONLY);
	if (proc->pagemap < 0)
		return proc_error(proc->pid, "cannot open the pagemap", errno);
	ret = read_maps(proc);
	if (ret)
		return proc_error(proc->pid, "cannot read the maps", -ret);
	if (!proc->nr_maps)
		return proc_error(proc->pid, "no mappings", ESRCH);
	return 0;
}

static int report(int pid, const struct options *opt)
{
	struct process proc = { .pid = pid, .pagemap = -1 };
	int ret;

	ret = open_process(&proc);
	if (ret)
		goto out;
	proc.command = read_command(pid);
	ret = scan_process(&proc, opt);
	if (ret) {
		ret = proc_error(pid, "PAGEMAP_SCAN", -ret);
		goto out;
	}
	if (opt->json)
		print_json(&proc, opt);
	else if (opt->ranges)
		print_ranges(&proc);
	else
		print_table(&proc, opt);
	ret = fflush(stdout) ? EXIT_FAILED : 0;
out:
	free_maps(&proc);
	free(proc.map);
	free(proc.command);
	if (proc.pagemap >= 0)
		close(proc.pagemap);
	return ret;
}

/* --wss */

/* Soft-dirty again from now on: only pages written after this count */
static int clear_soft_dirty(int pid)
{
	int fd, ret = 0;

	fd = open_proc(pid, "clear_refs", O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, "4", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_seconds(double seconds)
{
	struct timespec ts = {
		.tv_sec = (time_t)seconds,
		.tv_nsec = (long)((seconds - (time_t)seconds) * 1e9),
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * The pages written since clear_soft_dirty(): soft-dirty, and present or
 * swapped, but not the zero page. That leaves out what a new mapping has
 * not populated yet, soft-dirty as a whole, and pages only read.
 */
static int written_pages(struct process *proc, __u64 *pages)
{
	struct scanner *s = xrealloc(NULL, 1, sizeof(*s));
	int ret;
	size_t i;

	free_maps(proc);
	ret = read_maps(proc);
	if (!ret && !proc->nr_maps)
		ret = -ESRCH;
	init_scanner(s, proc->pagemap, PAGE_IS_SOFT_DIRTY | PAGE_IS_PFNZERO,
		     PAGE_IS_PRESENT | PAGE_IS_SWAPPED, PAGE_IS_PFNZERO,
		     PAGE_IS_SOFT_DIRTY);
	*pages = 0;
	for (i = 0; i < proc->nr_maps && !ret; i++) {
		ret = scan_mapping(s, &proc->map[i], false);
		if (ret == -EFAULT)
			ret = 0;
		*pages += proc->map[i].matched;
	}
	free(s);
	return ret;
}

static void print_wss_line(__u64 pages, double scan_seconds)
{
	struct timespec ts;
	char stamp[64], zone[8];
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);
	printf("%s.%03ld%s %10llu %10.2f %9.3f\n", stamp, ts.tv_nsec / 1000000,
	       zone, pages, (double)pages * page_size / (1 << 20),
	       scan_seconds * 1e3);
	fflush(stdout);
}

/*
 * One line of --wss: the pages written in @interval seconds. The next
 * interval starts as soon as the scan ends, as what is written from then
 * to the next clear_refs counts in no interval.
 */
static int wss_interval(struct process *proc, double interval, bool again)
{
	__u64 pages;
	double t;
	int ret;

	sleep_seconds(interval);
	t = now(CLOCK_MONOTONIC);
	ret = written_pages(proc, &pages);
	t = now(CLOCK_MONOTONIC) - t;
	if (ret)
		return proc_error(proc->pid, "PAGEMAP_SCAN", -ret);
	ret = again ? clear_soft_dirty(proc->pid) : 0;
	print_wss_line(pages, t);
	if (ret)
		return proc_error(proc->pid, "cannot write clear_refs", -ret);
	return 0;
}

static int measure_wss(int pid, double interval, long count)
{
	struct process proc = { .pid = pid, .pagemap = -1 };
	long i;
	int ret;

	if (soft_dirty_tracking <= 0) {
		error("--wss needs soft-dirty: this kernel has none (CONFIG_MEM_SOFT_DIRTY)");
		return EXIT_NOFEATURE;
	}
	ret = open_process(&proc);
	if (ret)
		goto out;
	ret = clear_soft_dirty(pid);
	if (ret) {
		ret = proc_error(pid, "cannot write clear_refs", -ret);
		goto out;
	}
	printf("# %-26s %10s %10s %9s\n", "time", "pages", "MiB", "scan ms");
	for (i = 0; !ret && (!count || i < count); i++)
		ret = wss_interval(&proc, interval, !count || i + 1 < count);
out:
	free_maps(&proc);
	free(proc.map);
	if (proc.pagemap >= 0)
		close(proc.pagemap);
	return ret;
}

/* --probe */

struct feature {
	const char *name;	/* in the text */
	const char *key;	/* in the JSON */
	int state;		/* 1 present, 0 missing, -1 cannot tell */
	char why[160];		/* when not present */
};

/* A real scan of a page of our own that was just written */
static void probe_pagemap_scan(struct feature *f)
{
	struct page_region r = { 0 };
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.vec = (unsigned long)&r,
		.vec_len = 1,
		.return_mask = PAGE_IS_PRESENT,
	};
	char *page;
	long n;
	int fd;

	page = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (page == MAP_FAILED || fd < 0) {
		f->state = -1;
		snprintf(f->why, sizeof(f->why), "cannot set up: %s",
			 strerror(errno));
		goto out;
	}
	page[0] = 1;
	arg.start = (unsigned long)page;
	arg.end = arg.start + page_size;
	n = ioctl(fd, PAGEMAP_SCAN, &arg);
	f->state = n == 1 && r.start == arg.start &&
		   (r.categories & PAGE_IS_PRESENT);
	if (n < 0 && errno == ENOTTY)
		snprintf(f->why, sizeof(f->why),
			 "the pagemap has no such ioctl (ENOTTY): Linux >= 6.7, or the 6.1 backport");
	else if (n < 0)
		snprintf(f->why, sizeof(f->why),
			 "the ioctl fails: %s (an older, different ABI?)",
			 strerror(errno));
	else if (!f->state)
		snprintf(f->why, sizeof(f->why),
			 "a page just written is not reported present");
out:
	if (fd >= 0)
		close(fd);
	if (page != MAP_FAILED)
		munmap(page, page_size);
}

/* A userfaultfd, by the syscall or by /dev/userfaultfd */
static int open_userfaultfd(void)
{
	int fd, dev, err;

	fd = syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	/* UFFD_USER_MODE_ONLY is from 5.11 */
	if (fd < 0 && errno == EINVAL)
		fd = syscall(__NR_userfaultfd, O_CLOEXEC);
	if (fd >= 0 || errno != EPERM)
		return fd < 0 ? -errno : fd;
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
	err = errno;
	close(dev);
	return fd < 0 ? -err : fd;
}

static void set_feature(struct feature *f, int state, const char *why)
{
	f->state = state;
	if (state != 1)
		snprintf(f->why, sizeof(f->why), "%s", why);
}

/*
 * UFFDIO_API asked for no feature reports every one the kernel has. When
 * it cannot be asked, the sysctl vm.unprivileged_userfaultfd still tells
 * whether the kernel has userfaultfd at all.
 */
static void probe_uffd(struct feature *async, struct feature *unpopulated)
{
	const char *missing = "not in the features UFFDIO_API reports";
	struct uffdio_api api = { .api = UFFD_API };
	int fd = open_userfaultfd();
	char why[sizeof(async->why)];
	int state = -1;

	if (fd == -EPERM) {
		snprintf(why, sizeof(why),
			 "cannot tell: userfaultfd(2) is refused (vm.unprivileged_userfaultfd, /dev/userfaultfd)");
	} else if (fd < 0 &&
		   access("/proc/sys/vm/unprivileged_userfaultfd", F_OK)) {
		state = 0;
		snprintf(why, sizeof(why),
			 "no userfaultfd(2): CONFIG_USERFAULTFD is off");
	} else if (fd < 0) {
		snprintf(why, sizeof(why), "cannot tell: userfaultfd(2): %s",
			 strerror(-fd));
	} else if (ioctl(fd, UFFDIO_API, &api)) {
		snprintf(why, sizeof(why), "cannot tell: UFFDIO_API: %s",
			 strerror(errno));
	} else {
		close(fd);
		set_feature(async, !!(api.features & UFFD_FEATURE_WP_ASYNC),
			    missing);
		set_feature(unpopulated,
			    !!(api.features & UFFD_FEATURE_WP_UNPOPULATED),
			    missing);
		return;
	}
	if (fd >= 0)
		close(fd);
	set_feature(async, state, why);
	set_feature(unpopulated, state, why);
}

static void probe_soft_dirty_feature(struct feature *f)
{
	f->state = soft_dirty_tracking;
	if (f->state < 0)
		snprintf(f->why, sizeof(f->why),
			 "cannot tell: reading /proc/self/pagemap: %s",
			 strerror(-soft_dirty_tracking));
	else if (!f->state)
		snprintf(f->why, sizeof(f->why),
			 "a page just written is not soft-dirty: CONFIG_MEM_SOFT_DIRTY is off");
}

static int probe(bool json)
{
	struct feature f[] = {
		{ .name = "PAGEMAP_SCAN", .key = "pagemap_scan" },
		{ .name = "UFFD_FEATURE_WP_ASYNC", .key = "uffd_wp_async" },
		{ .name = "UFFD_FEATURE_WP_UNPOPULATED", .key = "uffd_wp_unpopulated" },
		{ .name = "soft-dirty", .key = "soft_dirty" },
	};
	struct utsname u;
	bool all = true;
	size_t i;

	uname(&u);
	probe_pagemap_scan(&f[0]);
	probe_uffd(&f[1], &f[2]);
	probe_soft_dirty_feature(&f[3]);
	if (json) {
		fputs("{\"kernel\":", stdout);
		json_string(u.release);
	} else {
		printf("%-29s%s\n", "kernel:", u.release);
	}
	for (i = 0; i < ARRAY_SIZE(f); i++) {
		all &= f[i].state == 1;
		if (json)
			printf(",\"%s\":%s", f[i].key, f[i].state < 0 ? "null" :
			       f[i].state ? "true" : "false");
		else
			printf("%s:%*s%s%s%s%s\n", f[i].name,
			       (int)(28 - strlen(f[i].name)), "",
			       f[i].state == 1 ? "yes" : "no",
			       f[i].why[0] ? " (" : "", f[i].why,
			       f[i].why[0] ? ")" : "");
	}
	if (json)
		puts("}");
	return all ? 0 : EXIT_FAILED;
}

/* Command line */

static int parse_pid(const char *s, int *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX) {
		error("not a PID: '%s'", s);
		return -1;
	}
	*pid = v;
	return 0;
}

static int parse_wss_args(char **argv, int argc, double *interval,
			  long *count)
{
	char *end;

	if (argc < 2 || argc > 3) {
		error("--wss takes PID INTERVAL [COUNT]");
		return -1;
	}
	errno = 0;
	*interval = strtod(argv[1], &end);
	if (errno || end == argv[1] || *end || !isfinite(*interval) ||
	    *interval <= 0 || *interval > 1e6) {
		error("not an interval in seconds: '%s'", argv[1]);
		return -1;
	}
	*count = 0;
	if (argc == 3) {
		*count = strtol(argv[2], &end, 10);
		if (errno || end == argv[2] || *end || *count <= 0) {
			error("not a count of intervals: '%s'", argv[2]);
			return -1;
		}
	}
	return 0;
}

enum mode { MODE_REPORT, MODE_WSS, MODE_PROBE };

static const struct option long_options[] = {
	{ "ranges",	no_argument,		NULL, 'r' },
	{ "categories",	required_argument,	NULL, 'c' },
	{ "any",	required_argument,	NULL, 'a' },
	{ "json",	no_argument,		NULL, 'j' },
	{ "wss",	no_argument,		NULL, 'w' },
	{ "probe",	no_argument,		NULL, 'p' },
	{ "help",	no_argument,		NULL, 'h' },
	{ NULL,		0,			NULL, 0 },
};

static int parse_options(int argc, char **argv, struct options *opt,
			 enum mode *mode)
{
	__u64 inv_mask = 0, inv_anyof = 0;
	int c;

	while ((c = getopt_long(argc, argv, "rc:a:jwph", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'r':
			opt->ranges = true;
			break;
		case 'c':
			if (parse_categories(optarg, &opt->mask, &inv_mask))
				return -1;
			break;
		case 'a':
			if (parse_categories(optarg, &opt->anyof, &inv_anyof))
				return -1;
			break;
		case 'j':
			opt->json = true;
			break;
		case 'w':
			*mode = MODE_WSS;
			break;
		case 'p':
			*mode = MODE_PROBE;
			break;
		case 'h':
			print_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	opt->selected = opt->mask || opt->anyof;
	opt->inverted = inv_mask | inv_anyof;
	if (*mode != MODE_REPORT && (opt->ranges || opt->selected ||
				     (opt->json && *mode == MODE_WSS))) {
		error("--wss and --probe take no other options but --probe --json");
		return -1;
	}
	return check_selection(opt, inv_mask, inv_anyof);
}

int main(int argc, char **argv)
{
	enum mode mode = MODE_REPORT;
	struct options opt = { 0 };
	double interval;
	long count;
	int pid;

	page_size = sysconf(_SC_PAGESIZE);
	if (parse_options(argc, argv, &opt, &mode))
		goto bad_usage;
	argv += optind;
	argc -= optind;
	soft_dirty_tracking = probe_soft_dirty();

	switch (mode) {
	case MODE_PROBE:
		if (argc)
			goto bad_usage;
		return probe(opt.json);
	case MODE_WSS:
		if (parse_wss_args(argv, argc, &interval, &count) ||
		    parse_pid(argv[0], &pid))
			goto bad_usage;
		return measure_wss(pid, interval, count);
	case MODE_REPORT:
		if (argc != 1 || parse_pid(argv[0], &pid))
			goto bad_usage;
		return report(pid, &opt);
	}
bad_usage:
	print_usage(stderr);
	return EXIT_USAGE;
}
