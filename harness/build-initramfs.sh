#!/usr/bin/env bash
# Pack busybox-static, the guest init, the test list and what it runs into
# build/initramfs.cpio. Usage: build-initramfs.sh [list]
#
# A list entry's program is a static test binary of build/selftests/vm or a
# guest script of harness/guest/. The "kselftest" script also brings the
# kselftest install (build/kselftest, as /kselftest) and bash (bash-static,
# as /bin/bash: run_vmtests.sh is a bash script; busybox sh runs the rest).
. "$(dirname "$0")/lib.sh"

list=${1:-$HARNESS_DIR/tests.list}
[ -r "$list" ] || die "no test list $list"
root=$BUILD_DIR/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt,tests/bin}
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$HARNESS_DIR/guest/init" "$root/init"
grep -v '^#' "$list" | awk 'NF' >"$root/tests/list"
while read -r b; do
	case $b in
	kselftest)
		[ -x "$BUILD_DIR/kselftest/run_kselftest.sh" ] ||
			die "no kselftest install in build/kselftest: run harness/build-tests.sh $list"
		[ -x /bin/bash-static ] || die "/bin/bash-static missing: run harness/deps.sh"
		cp "$HARNESS_DIR/guest/kselftest" "$root/tests/bin/kselftest"
		cp -a "$BUILD_DIR/kselftest" "$root/kselftest"
		cp /bin/bash-static "$root/bin/bash"
		;;
	*/*)
		d=${b%%/*}
		[ -d "$root/tests/bin/$d" ] || cp -r "$TESTS_OUT/$d" "$root/tests/bin/$d"
		;;
	*)
		[ -f "$TESTS_OUT/vm/$b" ] || die "no $TESTS_OUT/vm/$b: run harness/build-tests.sh $list"
		cp "$TESTS_OUT/vm/$b" "$root/tests/bin/$b"
		;;
	esac
done < <(awk '{ print $3 }' "$root/tests/list" | sort -u)
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$BUILD_DIR/initramfs.cpio"
say "initramfs: $(du -h "$BUILD_DIR/initramfs.cpio" | cut -f1), $(wc -l <"$root/tests/list") invocations"
