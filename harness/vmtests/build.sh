#!/usr/bin/env bash
# Build the programs of harness/vmtests.list into $1 (build/selftests/vmtests):
# 6.1's vm selftests from the test tree's tools/testing/selftests/vm, static
# (CC="gcc -static": the _32/_64 rules ignore LDFLAGS), their scripts, and the
# guest wrapper harness/vmtests/run. harness/baseline builds the same
# programs from the base's tree (PMS_BUILD_DIR=build/baseline).
. "$(dirname "$0")/../lib.sh"

out=${1:?usage: build.sh OUTDIR}
src=$KSRC/tools/testing/selftests/vm
list=$HARNESS_DIR/vmtests.list
[ -d "$KSRC/usr/include/linux" ] || die "no installed headers: run harness/build-kernel.sh"
mapfile -t progs < <(grep -v '^#' "$list" | awk 'NF && $3 == "vmtests/run" { print $4 }' | sort -u)
bins=() scripts=()
for p in "${progs[@]}"; do
	case $p in
	*.sh) scripts+=("$p") ;;
	*) bins+=("$p") ;;
	esac
done
# The scripts run binaries of their own: test_hmm.sh hmm-tests,
# va_128TBswitch.sh va_128TBswitch.
bins+=(hmm-tests va_128TBswitch)
rm -rf "$out"
mkdir -p "$out" "$LOG_DIR"
log=$LOG_DIR/vmtests-build.log
say "building ${#bins[@]} of 6.1's vm selftest programs statically (log: ${log#"$REPO_DIR"/})"
targets=()
for b in "${bins[@]}"; do targets+=("$out/$b"); done
make -C "$src" -j"$JOBS" OUTPUT="$out" KHDR_INCLUDES="-isystem $KSRC/usr/include" \
	CC="gcc -static" LDFLAGS=-static "${targets[@]}" >"$log" 2>&1 ||
	{ tail -n 40 "$log" >&2; die "vm selftest build failed"; }
# mrelease_test.c takes __NR_process_mrelease from <sys/syscall.h> without
# including it, and else calls syscall -1 and skips (ENOSYS).
make -C "$src" OUTPUT="$out" KHDR_INCLUDES="-isystem $KSRC/usr/include" \
	CC="gcc -static -include sys/syscall.h" LDFLAGS=-static -W mrelease_test.c \
	"$out/mrelease_test" >>"$log" 2>&1 ||
	{ tail -n 20 "$log" >&2; die "mrelease_test build failed"; }
for s in "${scripts[@]}"; do install -m 755 "$src/$s" "$out/$s"; done
install -m 755 "$HARNESS_DIR/vmtests/run" "$out/run"
for f in "$out"/*; do
	[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
	! readelf -l "$f" | grep -q INTERP || die "$f is not static"
done
say "vm selftests built in ${out#"$REPO_DIR"/}: $(find "$out" -type f | wc -l) files"
