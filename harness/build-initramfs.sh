#!/usr/bin/env bash
# Pack busybox-static, the guest init, the test list and the static test
# binaries into build/initramfs.cpio. Usage: build-initramfs.sh [list]
. "$(dirname "$0")/lib.sh"

list=${1:-$HARNESS_DIR/tests.list}
root=$BUILD_DIR/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt,tests/bin}
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$HARNESS_DIR/guest/init" "$root/init"
grep -v '^#' "$list" | awk 'NF' >"$root/tests/list"
for b in $(awk '{ print $3 }' "$root/tests/list" | sort -u); do
	cp "$TESTS_OUT/vm/$b" "$root/tests/bin/$b"
done
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$BUILD_DIR/initramfs.cpio"
say "initramfs: $(du -h "$BUILD_DIR/initramfs.cpio" | cut -f1), $(wc -l <"$root/tests/list") invocations"
