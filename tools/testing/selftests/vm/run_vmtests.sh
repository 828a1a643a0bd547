#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#please run as root

# Kselftest framework requirement - SKIP code is 4.
ksft_skip=4

# Every category that a run_test below names; -t picks among these.
all_categories="hugetlb mmap gup_test userfaultfd compaction mlock \
process_mrelease mremap hugevm vmalloc hmm madv_populate memfd_secret ksm \
ksm_numa pkey soft_dirty pagemap migration"

# Usage: in_list word "list of words"
in_list() {
	local w

	for w in $2; do
		[ "$w" = "$1" ] && return 0
	done
	return 1
}

usage() {
	cat <<EOF
Usage: $0 [-h] [-n] [-t "CATEGORY ..."]...

Runs the vm selftests (as root) and reports each one as a TAP result.
Exits 0 when all passed, 4 when some were skipped and none failed, 1
otherwise.

  -t CATEGORIES  run only the tests of these categories (names separated
                 by spaces; -t may be repeated); without -t, run them all
  -n             no TAP: plain test output, no ok/not ok lines
  -h             print this help

Categories:
  hugetlb           hugetlbfs mappings, and mremap and madvise of them
  mmap              mmap(2) flags: MAP_FIXED_NOREPLACE, MAP_POPULATE
  gup_test          get_user_pages() and pin_user_pages() via gup_test
  userfaultfd       userfaultfd(2): the stress test on every memory type,
                    and uffd-wp (write protection: synchronous, async,
                    unpopulated, across VMAs)
  compaction        compaction of unevictable pages
  mlock             mlock(2), mlock2(2) and RLIMIT_MEMLOCK
  process_mrelease  process_mrelease(2)
  mremap            mremap(2)
  hugevm            very large virtual address spaces
  vmalloc           vmalloc smoke test (test_vmalloc module)
  hmm               HMM smoke test (test_hmm module)
  madv_populate     MADV_POPULATE_READ and MADV_POPULATE_WRITE
  memfd_secret      memfd_secret(2)
  ksm               KSM on one NUMA node, and KSM of PROT_NONE pages
                    (protnone-ksm-migrate)
  ksm_numa          KSM across two NUMA nodes
  pkey              memory protection keys
  soft_dirty        the soft-dirty bit of /proc/PID/pagemap
  pagemap           the PAGEMAP_SCAN ioctl (pagemap_ioctl and, where
                    built, pagemap_ioctl_32), tools/vm/pagemap-scan
                    (pagemap_scan_tool), and a seeded fuzzer of both
                    PAGEMAP_SCAN and async uffd-wp (pagemap_fuzz: about
                    2 minutes, PAGEMAP_FUZZ_SECONDS and PAGEMAP_FUZZ_SEED
                    change that and the seed)
  migration         move_pages(2) of PROT_NONE pages (protnone-ksm-migrate)

Example: $0 -t "pagemap userfaultfd"
EOF
}

selected_categories=
t_given=
tap=1
while getopts "hnt:" opt; do
	case "$opt" in
	h) usage; exit 0 ;;
	n) tap= ;;
	t) selected_categories="$selected_categories $OPTARG"; t_given=1 ;;
	*) usage >&2; exit 1 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -ne 0 ]; then
	echo "$0: unexpected argument '$1'" >&2
	exit 1
fi
if [ -n "$t_given" ] && [ -z "${selected_categories//[[:space:]]/}" ]; then
	echo "$0: -t needs at least one category (-h lists them)" >&2
	exit 1
fi
for c in $selected_categories; do
	if ! in_list "$c" "$all_categories"; then
		echo "$0: unknown category '$c' (-h lists them)" >&2
		exit 1
	fi
done

mnt=./huge
exitcode=0
count_total=0
count_pass=0
count_fail=0
count_skip=0

#get huge pagesize and freepages from /proc/meminfo
while read -r name size unit; do
	if [ "$name" = "HugePages_Free:" ]; then
		freepgs="$size"
	fi
	if [ "$name" = "Hugepagesize:" ]; then
		hpgsize_KB="$size"
	fi
done < /proc/meminfo

# Simple hugetlbfs tests have a hardcoded minimum requirement of
# huge pages totaling 256MB (262144KB) in size.  The userfaultfd
# hugetlb test requires a minimum of 2 * nr_cpus huge pages.  Take
# both of these requirements into account and attempt to increase
# number of huge pages available.
nr_cpus=$(nproc)
hpgsize_MB=$((hpgsize_KB / 1024))
half_ufd_size_MB=$((((nr_cpus * hpgsize_MB + 127) / 128) * 128))
needmem_KB=$((half_ufd_size_MB * 2 * 1024))

#set proper nr_hugepages
if [ -n "$freepgs" ] && [ -n "$hpgsize_KB" ]; then
	nr_hugepgs=$(cat /proc/sys/vm/nr_hugepages)
	needpgs=$((needmem_KB / hpgsize_KB))
	tries=2
	while [ "$tries" -gt 0 ] && [ "$freepgs" -lt "$needpgs" ]; do
		lackpgs=$((needpgs - freepgs))
		echo 3 > /proc/sys/vm/drop_caches
		if ! echo $((lackpgs + nr_hugepgs)) > /proc/sys/vm/nr_hugepages; then
			echo "Please run this test as root"
			exit $ksft_skip
		fi
		while read -r name size unit; do
			if [ "$name" = "HugePages_Free:" ]; then
				freepgs=$size
			fi
		done < /proc/meminfo
		tries=$((tries - 1))
	done
	if [ "$freepgs" -lt "$needpgs" ]; then
		printf "Not enough huge pages available (%d < %d)\n" \
		       "$freepgs" "$needpgs"
		exit 1
	fi
else
	echo "no hugetlbfs support in kernel?"
	exit 1
fi

#filter 64bit architectures
ARCH64STR="arm64 ia64 mips64 parisc64 ppc64 ppc64le riscv64 s390x sh64 sparc64 x86_64"
if [ -z "$ARCH" ]; then
	ARCH=$(uname -m 2>/dev/null | sed -e 's/aarch64.*/arm64/')
fi
VADDR64=0
echo "$ARCH64STR" | grep -q "$ARCH" && VADDR64=1

# Is a test of these categories (one or more, space separated) to run?
selected() {
	local c

	[ -z "$selected_categories" ] && return 0
	for c in $1; do
		in_list "$c" "$selected_categories" && return 0
	done
	return 1
}

# In TAP mode everything but our own result lines is a TAP comment, so that
# the TAP a test prints itself is read as nested in its result, not as ours.
tap_comment() {
	if [ -n "$tap" ]; then
		sed -e 's/^/# /'
	else
		cat
	fi
}

tap_result() {
	if [ -n "$tap" ]; then
		echo "$*"
	fi
}

# Usage: run_test "categories" [test binary] [arbitrary test arguments...]
run_test() {
	local categories=$1
	shift
	selected "$categories" || return 0

	local title="running $*"
	local sep=$(echo -n "$title" | tr "[:graph:][:space:]" -)
	printf "%s\n%s\n%s\n" "$sep" "$title" "$sep" | tap_comment

	"$@" 2>&1 | tap_comment
	local ret=${PIPESTATUS[0]}
	local name="$*"
	name=${name#./}
	count_total=$((count_total + 1))
	if [ $ret -eq 0 ]; then
		count_pass=$((count_pass + 1))
		echo "[PASS]" | tap_comment
		tap_result "ok $count_total $name"
	elif [ $ret -eq $ksft_skip ]; then
		count_skip=$((count_skip + 1))
		echo "[SKIP]" | tap_comment
		tap_result "ok $count_total $name # SKIP"
		# A skip must not hide an earlier failure.
		if [ $exitcode -eq 0 ]; then
			exitcode=$ksft_skip
		fi
	else
		count_fail=$((count_fail + 1))
		echo "[FAIL]" | tap_comment
		tap_result "not ok $count_total $name # exit=$ret"
		exitcode=1
	fi
}

tap_result "TAP version 13"

mkdir "$mnt"
mount -t hugetlbfs none "$mnt"

run_test hugetlb ./hugepage-mmap

shmmax=$(cat /proc/sys/kernel/shmmax)
shmall=$(cat /proc/sys/kernel/shmall)
echo 268435456 > /proc/sys/kernel/shmmax
echo 4194304 > /proc/sys/kernel/shmall
run_test hugetlb ./hugepage-shm
echo "$shmmax" > /proc/sys/kernel/shmmax
echo "$shmall" > /proc/sys/kernel/shmall

run_test hugetlb ./map_hugetlb

run_test hugetlb ./hugepage-mremap "$mnt"/huge_mremap
rm -f "$mnt"/huge_mremap

run_test hugetlb ./hugepage-vmemmap

run_test hugetlb ./hugetlb-madvise "$mnt"/madvise-test
rm -f "$mnt"/madvise-test

if selected hugetlb; then
	echo "NOTE: The above hugetlb tests provide minimal coverage.  Use"
	echo "      https://github.com/libhugetlbfs/libhugetlbfs.git for"
	echo "      hugetlb regression testing."
fi | tap_comment

run_test mmap ./map_fixed_noreplace

# get_user_pages_fast() benchmark
run_test gup_test ./gup_test -u
# pin_user_pages_fast() benchmark
run_test gup_test ./gup_test -a
# Dump pages 0, 19, and 4096, using pin_user_pages:
run_test gup_test ./gup_test -ct -F 0x1 0 19 0x1000

uffd_mods=("" ":dev")
for mod in "${uffd_mods[@]}"; do
	run_test userfaultfd ./userfaultfd anon${mod} 20 16
	# Hugetlb tests require source and destination huge pages. Pass in half
	# the size ($half_ufd_size_MB), which is used for *each*.
	run_test userfaultfd ./userfaultfd hugetlb${mod} "$half_ufd_size_MB" 32
	run_test userfaultfd ./userfaultfd hugetlb_shared${mod} "$half_ufd_size_MB" 32 \
		"$mnt"/uffd-test
	rm -f "$mnt"/uffd-test
	run_test userfaultfd ./userfaultfd shmem${mod} 20 16
done

# userfaultfd write protection: synchronous, async (UFFD_FEATURE_WP_ASYNC),
# unpopulated (UFFD_FEATURE_WP_UNPOPULATED), across VMAs; every memory type
run_test userfaultfd ./uffd-wp

#cleanup
umount "$mnt"
rm -rf "$mnt"
echo "$nr_hugepgs" > /proc/sys/vm/nr_hugepages

run_test compaction ./compaction_test

run_test mlock sudo -u nobody ./on-fault-limit

run_test mmap ./map_populate

run_test mlock ./mlock-random-test

run_test mlock ./mlock2-tests

run_test process_mrelease ./mrelease_test

run_test mremap ./mremap_test

run_test hugetlb ./thuge-gen

if [ $VADDR64 -ne 0 ]; then
	run_test hugevm ./virtual_address_range

	# virtual address 128TB switch test
	run_test hugevm ./va_128TBswitch.sh
fi # VADDR64

# vmalloc stability smoke test
run_test vmalloc ./test_vmalloc.sh smoke

run_test mremap ./mremap_dontunmap

run_test hmm ./test_hmm.sh smoke

# MADV_POPULATE_READ and MADV_POPULATE_WRITE tests
run_test madv_populate ./madv_populate

run_test memfd_secret ./memfd_secret

# KSM MADV_MERGEABLE test with 10 identical pages
run_test ksm ./ksm_tests -M -p 10
# KSM unmerge test
run_test ksm ./ksm_tests -U
# KSM test with 10 zero pages and use_zero_pages = 0
run_test ksm ./ksm_tests -Z -p 10 -z 0
# KSM test with 10 zero pages and use_zero_pages = 1
run_test ksm ./ksm_tests -Z -p 10 -z 1
# KSM test with 2 NUMA nodes and merge_across_nodes = 1
run_test ksm_numa ./ksm_tests -N -m 1
# KSM test with 2 NUMA nodes and merge_across_nodes = 0
run_test ksm_numa ./ksm_tests -N -m 0

# protection_keys tests
if [ -x ./protection_keys_32 ]
then
	run_test pkey ./protection_keys_32
fi

if [ -x ./protection_keys_64 ]
then
	run_test pkey ./protection_keys_64
fi

run_test soft_dirty ./soft-dirty

# The PAGEMAP_SCAN ioctl of /proc/PID/pagemap, and its compat path
run_test pagemap ./pagemap_ioctl
if [ -x ./pagemap_ioctl_32 ]; then
	run_test pagemap ./pagemap_ioctl_32
fi
# Allocation failures, races, limits and permissions of the same
run_test pagemap ./pagemap_robust
# tools/vm/pagemap-scan, installed beside its test
run_test pagemap ./pagemap_scan_tool
# Random operations on every memory type, every answer of PAGEMAP_SCAN
# checked against a model of the writes; it prints its seed, and on a
# failure the command line that runs that seed again
run_test pagemap ./pagemap_fuzz

# KSM merging and move_pages(2) of PROT_NONE pages
run_test "ksm migration" ./protnone-ksm-migrate

echo "SUMMARY: PASS=$count_pass SKIP=$count_skip FAIL=$count_fail" | tap_comment
tap_result "1..$count_total"

exit $exitcode
