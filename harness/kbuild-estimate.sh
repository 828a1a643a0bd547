#!/usr/bin/env bash
# How many kernel objects the next "make bzImage" of build/linux will compile,
# for the progress line of build-kernel.sh. Usage:
#   kbuild-estimate.sh           one line for people
#   kbuild-estimate.sh --count   "<objects> <link s> <why>": the number, or
#                                "?" when unknown, the seconds the last
#                                complete build took after its last compile
#                                (0 when unknown), and the line for people
#   kbuild-estimate.sh --list    also every object out of date, and why
#   kbuild-estimate.sh --record [LINK_SECONDS]
#                                after a complete build: record its objects
#
# The count is
#   objects already built that make's rule finds out of date (harness/
#   kbuild-stale.awk: source or a dependency newer than the object, from the
#   .cmd files kbuild leaves, in about 2 s for the whole tree)
# + objects of a complete build of this .config that are not built yet: the
#   record of the last complete build of the same .config (by its sha1) in
#   build/kernel-objects, else in ~/.cache/pagemap-scan/kernel-objects (a
#   new clone on a machine that built the config already: CI), else, when
#   the tree has a vmlinux, the objects it has. Objects left over from
#   another .config count as built (they are few, and never rebuilt).
# A cold build is then the recorded total, or "?" (count only) where this
# config was never built; a warm one the out-of-date objects: a touched .c
# is 1, a touched header every object that includes it. What it cannot see:
# objects that kbuild rebuilds because their command line changed (new
# flags) and objects a changed Makefile adds; for a new .config, whose
# include/config/ stamps change only during the build, it falls back on
# the complete-build total, an upper bound.
. "$(dirname "$0")/lib.sh"

mode=${1:-}
case $mode in
"" | --count | --list | --record) ;;
*) die "usage: ${0##*/} [--count|--list|--record]" ;;
esac
[ -f "$KSRC/.config" ] || die "no build/linux/.config: run harness/build-kernel.sh"
cd "$KSRC"

cache_rec=${XDG_CACHE_HOME:-$HOME/.cache}/pagemap-scan/kernel-objects
build_rec=$BUILD_DIR/kernel-objects
cfg=$(sha1sum .config | cut -c1-40)

scan() {
	{
		find . -type f -printf 'M %T@ %P\n'
		find . -name '.*.cmd' -exec cat {} +
	} | awk -v list="${1:-0}" -f "$HARNESS_DIR/kbuild-stale.awk"
}

# Record lines: <.config sha1> <objects> <link seconds> <date>
if [ "$mode" = --record ]; then
	[ -f vmlinux ] || die "no vmlinux: record only after a complete build"
	link=${2:-0}
	case $link in '' | *[!0-9]*) die "--record: LINK_SECONDS must be a number" ;; esac
	read -r objects _ < <(scan)
	line="$cfg $objects $link $(date -u +%Y-%m-%dT%H:%MZ)"
	for rec in "$build_rec" "$cache_rec"; do
		mkdir -p "$(dirname "$rec")"
		{ grep -v "^$cfg " "$rec" 2>/dev/null || true; echo "$line"; } >"$rec.tmp"
		mv "$rec.tmp" "$rec"
	done
	echo "recorded: this .config compiles $objects objects, then links for ${link} s"
	exit 0
fi

# The record of this .config: build/ first, then the machine's cache.
recorded() {
	local rec
	for rec in "$build_rec" "$cache_rec"; do
		[ -r "$rec" ] || continue
		if grep -q "^$cfg " "$rec"; then
			grep "^$cfg " "$rec" | tail -n 1 | cut -d' ' -f"$1"
			return
		fi
	done
}
full=$(recorded 2)
basis="recorded complete build"
if [ -z "$full" ] && [ -f vmlinux ]; then
	basis="objects of the last build"
fi

if [ "$mode" = --list ]; then
	scan 1 | sed '$d'
fi
read -r built stale < <(scan)
[ -n "$full" ] || { [ -f vmlinux ] && full=$built; }

# .config newer than the last link: new config symbols reach the objects
# only through include/config/ during the build, so count them all.
if [ -f vmlinux ] && [ .config -nt vmlinux ] && [ -n "$full" ]; then
	todo=$full
	why="the .config changed since the last build: up to all $full objects"
elif [ -n "$full" ]; then
	missing=$((full - built))
	[ $missing -ge 0 ] || missing=0
	todo=$((stale + missing))
	why="$stale of $built built objects out of date, $missing of $full ($basis) not built yet"
elif [ "$built" -gt 0 ]; then
	todo="?"
	why="$stale of $built built objects out of date; no record of a complete build of this .config"
else
	todo="?"
	why="cold build of a .config never built here: no total known"
fi

case $mode in
--count) link=$(recorded 3); echo "$todo ${link:-0} $why" ;;
*) echo "$todo objects to compile ($why)" ;;
esac
