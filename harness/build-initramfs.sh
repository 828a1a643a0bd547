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
vmtests=0
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
		[ "$d" = vmtests ] && vmtests=1
		;;
	*)
		[ -f "$TESTS_OUT/vm/$b" ] || die "no $TESTS_OUT/vm/$b: run harness/build-tests.sh $list"
		cp "$TESTS_OUT/vm/$b" "$root/tests/bin/$b"
		;;
	esac
done < <(awk '{ print $3 }' "$root/tests/list" | sort -u)

# 6.1's vm selftests (harness/vmtests.list) include bash scripts, and two
# of them load modules (test_vmalloc, test_hmm): those of the kernel the
# guest boots, from its linux-image package $PMS_KERNEL_DEB, else from
# $PMS_MODULES_ROOT (a modules_install INSTALL_MOD_PATH).
if [ "$vmtests" -eq 1 ]; then
	[ -x /bin/bash-static ] || die "/bin/bash-static missing: run harness/deps.sh"
	cp /bin/bash-static "$root/bin/bash"
	if [ -n "${PMS_KERNEL_DEB:-}" ]; then
		mods=$(mktemp -d)
		dpkg-deb -x "$PMS_KERNEL_DEB" "$mods"
	else
		mods=${PMS_MODULES_ROOT:?vmtests need PMS_KERNEL_DEB or PMS_MODULES_ROOT for the modules}
	fi
	[ -d "$mods/lib/modules" ] || die "no lib/modules in ${PMS_KERNEL_DEB:-$mods}"
	mkdir -p "$root/lib" "$root/boot"
	cp -a "$mods/lib/modules" "$root/lib/modules"
	# va_128TBswitch.sh reads the config (PGTABLE_LEVELS) from /boot with
	# "gzip -dcfq", which in busybox takes only gzip's format: compressed.
	if [ -n "${PMS_KERNEL_DEB:-}" ]; then
		config=$(ls "$mods"/boot/config-*)
	else
		config=$KSRC/.config
		config_name=config-$(cat "$KSRC/include/config/kernel.release")
	fi
	gzip -9nc "$config" >"$root/boot/${config_name:-${config##*/}}"
	[ -z "${PMS_KERNEL_DEB:-}" ] || rm -rf "$mods"
fi
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$BUILD_DIR/initramfs.cpio"
say "initramfs: $(du -h "$BUILD_DIR/initramfs.cpio" | cut -f1), $(wc -l <"$root/tests/list") invocations"
