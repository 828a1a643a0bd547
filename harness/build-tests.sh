#!/usr/bin/env bash
# Build what a test list runs in the guest. Usage: build-tests.sh [list]
#
# - The binaries it names, statically, against the patched tree's own uapi
#   headers (build/linux/usr/include, from make headers_install), with the
#   kselftest Makefile of tools/testing/selftests/vm, into build/selftests/vm.
# - An entry "DIR/NAME" is harness tooling: harness/DIR/build.sh builds
#   build/selftests/DIR.
# - "kselftest" is a guest script (harness/guest/kselftest) that runs the
#   kselftest install: when the list uses it, the vm selftests are also built
#   and installed the way kernel CI systems do it,
#   "make -C tools/testing/selftests TARGETS=vm install" (statically), into
#   build/kselftest (run_kselftest.sh, kselftest-list.txt, vm/...).
. "$(dirname "$0")/lib.sh"

list=${1:-$HARNESS_DIR/tests.list}
[ -r "$list" ] || die "no test list $list"
mapfile -t names < <(grep -v '^#' "$list" | awk 'NF { print $3 }' | sort -u)
[ -d "$KSRC/usr/include/linux" ] || die "no installed headers: run harness/build-kernel.sh"

bins=()
kselftest=0
for n in "${names[@]}"; do
	case $n in
	kselftest) kselftest=1 ;;
	*/*) ;;
	*) bins+=("$n") ;;
	esac
done

# Every ELF file under $@ must be static: the guest has no shared libraries.
check_static() {
	local f
	while IFS= read -r -d '' f; do
		[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
		if readelf -l "$f" | grep -q INTERP; then
			die "$f is not static"
		fi
	done < <(find "$@" -type f -print0)
}

mapfile -t dirs < <(grep -v '^#' "$list" | awk 'NF && $3 ~ /\// { sub(/\/.*/, "", $3); print $3 }' | sort -u)

mkdir -p "$TESTS_OUT/vm" "$LOG_DIR"
if [ ${#bins[@]} -gt 0 ]; then
	targets=()
	for b in "${bins[@]}"; do targets+=("$TESTS_OUT/vm/$b"); done
	say "building ${#bins[@]} selftest binaries statically: ${bins[*]}"
	make -C "$KSRC/tools/testing/selftests/vm" -j"$JOBS" \
		OUTPUT="$TESTS_OUT/vm" KHDR_INCLUDES="-isystem $KSRC/usr/include" \
		LDFLAGS=-static "${targets[@]}" >"$LOG_DIR/selftests-build.log" 2>&1 ||
		{ tail -n 40 "$LOG_DIR/selftests-build.log" >&2; die "selftest build failed"; }
	check_static "${targets[@]}"
	say "selftests built in ${TESTS_OUT#"$REPO_DIR"/}/vm"
fi

if [ $kselftest -eq 1 ]; then
	dest=$BUILD_DIR/kselftest
	log=$LOG_DIR/kselftest-install.log
	say "make -C tools/testing/selftests TARGETS=vm install, statically" \
		"(log: ${log#"$REPO_DIR"/})"
	rm -rf "$dest"
	# O= puts the objects in a directory of their own, build/kselftest-obj,
	# not in the tree's tools/testing/selftests/vm: a binary left there by
	# an earlier dynamic build would be taken as up to date and installed
	# (protection_keys_32's rule ignores LDFLAGS, so only CC="gcc -static"
	# makes it static). O= also points the headers at $O/usr/include, so
	# KHDR_INCLUDES names the tree's installed ones.
	make -C "$KSRC/tools/testing/selftests" -j"$JOBS" TARGETS=vm \
		O="$BUILD_DIR/kselftest-obj" KHDR_INCLUDES="-isystem $KSRC/usr/include" \
		INSTALL_PATH="$dest" CC="gcc -static" LDFLAGS=-static install >"$log" 2>&1 ||
		{ tail -n 40 "$log" >&2; die "kselftest install failed"; }
	for f in run_kselftest.sh vm/run_vmtests.sh; do
		[ -x "$dest/$f" ] || die "the kselftest install has no $f"
	done
	check_static "$dest"
	say "kselftests installed in ${dest#"$REPO_DIR"/}:" \
		"$(grep -c '^vm:' "$dest/kselftest-list.txt") vm tests in kselftest-list.txt," \
		"$(find "$dest/vm" -type f | wc -l) files"
fi

for d in "${dirs[@]}"; do
	[ -x "$HARNESS_DIR/$d/build.sh" ] || die "no harness/$d/build.sh for the list entry $d/..."
	"$HARNESS_DIR/$d/build.sh" "$TESTS_OUT/$d"
done
