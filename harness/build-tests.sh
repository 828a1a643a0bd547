#!/usr/bin/env bash
# Build the guest's test binaries statically against the patched tree's own
# uapi headers (build/linux/usr/include, from make headers_install), with the
# kselftest Makefile of tools/testing/selftests/vm.
. "$(dirname "$0")/lib.sh"

list=${1:-$HARNESS_DIR/tests.list}
mapfile -t bins < <(grep -v '^#' "$list" | awk 'NF { print $3 }' | sort -u)
[ -d "$KSRC/usr/include/linux" ] || die "no installed headers: run harness/build-kernel.sh"

mkdir -p "$TESTS_OUT/vm" "$LOG_DIR"
targets=()
for b in "${bins[@]}"; do targets+=("$TESTS_OUT/vm/$b"); done
say "building ${#bins[@]} selftest binaries statically: ${bins[*]}"
make -C "$KSRC/tools/testing/selftests/vm" -j"$JOBS" \
	OUTPUT="$TESTS_OUT/vm" KHDR_INCLUDES="-isystem $KSRC/usr/include" \
	LDFLAGS=-static "${targets[@]}" >"$LOG_DIR/selftests-build.log" 2>&1 ||
	{ tail -n 40 "$LOG_DIR/selftests-build.log" >&2; die "selftest build failed"; }
for t in "${targets[@]}"; do
	if readelf -l "$t" | grep -q INTERP; then
		die "$t is not static"
	fi
done
say "selftests built in ${TESTS_OUT#"$REPO_DIR"/}/vm"
