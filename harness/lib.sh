# shellcheck shell=bash
# Shared settings and helpers for the harness scripts. Sourced, not run.

set -euo pipefail

HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$HARNESS_DIR/.." && pwd)
# Everything generated lives under build/ (ignored by git): the extracted
# package trees, the kernel objects, the selftest binaries and the initramfs.
BUILD_DIR=${PMS_BUILD_DIR:-$REPO_DIR/build}
KSRC=$BUILD_DIR/linux
PRISTINE=$BUILD_DIR/pristine
TESTS_OUT=$BUILD_DIR/selftests
LOG_DIR=$BUILD_DIR/logs
# The guest of harness/vmtests.list, the same for the base (harness/baseline)
# and the series (harness/test), as run-guest.sh's environment: 4 vCPUs
# (6.1's migration test wants 3), la57 (va_128TBswitch wants 5-level
# paging), secretmem on (off by default in 6.1; memfd_secret needs it).
VMTESTS_GUEST=(PMS_CPUS=4 PMS_LA57=1 PMS_CMDLINE=secretmem.enable=1)
JOBS=${PMS_JOBS:-$(nproc)}

# shellcheck source=harness/BASE
. "$HARNESS_DIR/BASE"

# Paths that are tooling, never part of the kernel series.
TOOLING_PATHS=(README.md .gitignore .ci harness)

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
# Hash paths relative to the kernel tree so a fresh clone elsewhere hits.
export CCACHE_BASEDIR=$KSRC
export CCACHE_NOHASHDIR=1
# Reproducible version strings: otherwise init/version.c changes every build.
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
export KBUILD_BUILD_USER=pms
export KBUILD_BUILD_HOST=pms

# The release string of the test tree's kernel (uname -r = 6.1.N-pagemapscan)
# and of harness/deb's packages of it. Every make of that tree that links
# vmlinux passes "${KMAKE_VARS[@]}" (see set_kmake_vars), so a build for the
# suite and one for the package never differ in LOCALVERSION or in the
# #version of uname -v: a difference would recompile what includes
# utsrelease.h and relink vmlinux each time one follows the other.
PMS_LOCALVERSION=-pagemapscan

# The Debian version of the packages harness/deb builds: the base package's
# version (the installed linux-source-6.1 the tree in build dir $1 was
# extracted from, else harness/BASE's), then "+pagemapscan." and the number
# of commits that touch kernel-tree paths. Tooling commits leave it alone;
# every change of the series sorts after the one before, so apt upgrades.
pkg_version() {
	local dir=${1:-$BUILD_DIR} base n p excl=()
	base=$(awk '{ print $2 }' "$dir/tree.stamp" 2>/dev/null || true)
	case "$base" in "" | unknown) base=$version ;; esac
	for p in "${TOOLING_PATHS[@]}"; do excl+=(":(exclude)$p"); done
	n=$(git -C "$REPO_DIR" rev-list --count HEAD -- . "${excl[@]}" 2>/dev/null) || n=0
	echo "$base+pagemapscan.$n"
}

# KMAKE_VARS: what every make of the test tree that links vmlinux passes.
# The #version of uname -v is the Debian revision, as bindeb-pkg's own
# debian/rules sets it (KBUILD_BUILD_VERSION=<revision>).
set_kmake_vars() {
	local pv
	# An upstream tree (harness/bench --against) keeps its own release: only
	# prepare-tree.sh's trees of the series, which have applied.list, are
	# "-pagemapscan".
	if [ ! -f "$BUILD_DIR/applied.list" ]; then
		KMAKE_VARS=()
		return
	fi
	pv=$(pkg_version)
	KMAKE_VARS=(LOCALVERSION="$PMS_LOCALVERSION" KBUILD_BUILD_VERSION="${pv##*-}")
}

# The linux-image package harness/deb made of the test tree's current build.
test_image_deb() {
	local rel
	rel=$(cat "$KSRC/include/config/kernel.release" 2>/dev/null) ||
		die "no kernel built in ${KSRC#"$REPO_DIR"/}: run harness/deb"
	echo "$BUILD_DIR/deb/linux-image-${rel}_$(pkg_version)_amd64.deb"
}

now() { date +%s; }
# One clock for a whole command: the scripts it runs inherit its start.
T0=${PMS_T0:-$(now)}
export PMS_T0=$T0
say() { printf '[%4ds] %s\n' "$(($(now) - T0))" "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# "95 s" or "3 min 20 s" for a number of seconds.
duration() {
	if [ "$1" -lt 60 ]; then
		echo "$1 s"
	else
		echo "$(($1 / 60)) min $(($1 % 60)) s"
	fi
}

# A progress line for a run_logged progress command: how far a count of
# units is, and the time left. Usage: progress_of DONE TOTAL UNIT STATE
# [TAIL]. TOTAL is an estimate ("?" when unknown); STATE a file that keeps
# when and where the count was first seen moving, so the rate is the mean
# since then (the setup before the first unit does not count), and when it
# last moved (progress_quiet reads it); TAIL the seconds the work takes
# after the last unit (the link of a kernel), added to the time left.
progress_of() {
	local cnt=$1 total=$2 unit=$3 state=$4 tail=${5:-0} t t1='' d1='' tl='' dl='' left pct
	t=$(now)
	if [ -s "$state" ]; then
		{ read -r t1 d1; read -r tl dl; } <"$state" || true
	fi
	if [ -z "$t1" ] && [ "$cnt" -gt 0 ]; then
		t1=$t d1=$cnt
	fi
	if [ -n "$t1" ] && [ "$cnt" != "$dl" ]; then
		tl=$t dl=$cnt
		printf '%s %s\n%s %s\n' "$t1" "$d1" "$tl" "$dl" >"$state"
	fi
	if [ "$total" = "?" ]; then
		echo "$cnt $unit so far (no estimate of the total)"
		return
	fi
	if [ "$cnt" -ge "$total" ]; then
		# The estimate was low, or the rest is linking: no percentage past it.
		echo "$cnt of ~$total $unit, finishing"
		return
	fi
	pct=$((cnt * 100 / total))
	left=
	if [ -n "$t1" ] && [ "$cnt" -gt "$d1" ] && [ "$t" -gt "$t1" ]; then
		left=$(((total - cnt) * (t - t1) / (cnt - d1) + tail))
		left=", about $(duration "$left") left"
	fi
	echo "$cnt of ~$total $unit ($pct%)$left"
}

# Seconds since the count of a progress_of STATE file last moved, or nothing.
progress_quiet() {
	local tl='' dl=''
	[ -s "$1" ] && { read -r _; read -r tl dl; } <"$1"
	[ -n "$tl" ] && echo $(($(now) - tl))
	return 0
}

# Run a long command with its output in a log file, printing a progress line
# every 30 s so nobody stares at a silent terminal. $1 = log, $2 = progress
# command (prints one short line), rest = the command.
run_logged() {
	local log=$1 progress=$2 pid rc
	shift 2
	"$@" >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		for _ in $(seq 30); do
			sleep 1
			kill -0 "$pid" 2>/dev/null || break
		done
		kill -0 "$pid" 2>/dev/null && say "  ... $(eval "$progress")"
	done
	rc=0
	wait "$pid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$log" >&2
		die "command failed (exit $rc), full log: $log"
	fi
}
