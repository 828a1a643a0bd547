#!/usr/bin/env bash
# Boot build/linux's bzImage (or the image of the linux-image package
# $PMS_KERNEL_DEB) under QEMU TCG with build/initramfs.cpio, stream
# the guest's results as they arrive, then check the kernel log for splats.
# Prints "N passed, N failed, N skipped" last; exits non-zero on any failure,
# skip, missing result, hang, panic, timeout or kernel splat.
#
# Environment:
#   PMS_THP      always|madvise|never (default madvise)
#   PMS_HUGEPAGES  2 MiB hugetlb pages reserved at boot (default 256)
#   PMS_SWAP     zram swap size, "" for none (default 512M)
#   PMS_MEM_MIB  guest memory, split over 2 NUMA nodes (default 4096)
#   PMS_CPUS     vCPUs, an even number, half on each node (default 2)
#   PMS_TIMEOUT  host-side limit in seconds (default 3000)
#   PMS_VERBOSE  1 to echo every line the tests print
#   PMS_EXPECT   expected results (harness/baseline's file): a failure the
#                base has too is KNOWN, not a failure (tap-report.awk)
#   PMS_RECORD   write every result there, in PMS_EXPECT's format
#   PMS_LA57     1 for a CPU with 5-level paging (la57; default off, as on
#                most machines): 6.1's va_128TBswitch needs it
#   PMS_CMDLINE  more kernel parameters
#   PMS_KMEMLEAK 1 to boot with kmemleak=on: the guest's last result is
#                then a leak check of everything the list did
#   PMS_KERNEL_DEB  a linux-image .deb (harness/deb): boot its /boot/vmlinuz-*,
#                extracted with dpkg-deb -x into build/guest-kernel/
# build/criu-rootfs.img (harness/criu-rootfs.sh), when it exists, is the
# guest's /dev/vda for the CRIU tests: a read-only virtio disk.
. "$(dirname "$0")/lib.sh"

tag=${1:-tests}
thp=${PMS_THP:-madvise}
kernel_log=$LOG_DIR/$tag-kernel.log
test_log=$LOG_DIR/$tag-output.log
mkdir -p "$LOG_DIR"
: >"$kernel_log"
: >"$test_log"

cmdline="console=ttyS0 panic=-1 oops=panic panic_on_warn=0 loglevel=5"
cmdline+=" transparent_hugepage=$thp hugepages=${PMS_HUGEPAGES:-256}"
cmdline+=" zram.num_devices=2 pms.swap=${PMS_SWAP-512M}"
cmdline+=" softlockup_panic=0 hung_task_timeout_secs=120"
[ "${PMS_KMEMLEAK:-0}" != 1 ] || cmdline+=" kmemleak=on pms.kmemleak=1"
[ -z "${PMS_CMDLINE:-}" ] || cmdline+=" $PMS_CMDLINE"

# Two NUMA nodes, half the vCPUs each, so migration between nodes can be
# tested (6.1's migration selftest wants 3 CPUs or more).
mem_mib=${PMS_MEM_MIB:-4096}
mem=${mem_mib}M
half=$((mem_mib / 2))M
cpus=${PMS_CPUS:-2}
[ $((cpus % 2)) -eq 0 ] && [ "$cpus" -ge 2 ] || die "PMS_CPUS must be even, not $cpus"
per=$((cpus / 2))
cpus0=0 cpus1=$per
[ "$per" -eq 1 ] || { cpus0=0-$((per - 1)); cpus1=$per-$((cpus - 1)); }

kernel=$KSRC/arch/x86/boot/bzImage
if [ -n "${PMS_KERNEL_DEB:-}" ]; then
	[ -f "$PMS_KERNEL_DEB" ] || die "PMS_KERNEL_DEB: no such package: $PMS_KERNEL_DEB"
	rm -rf "$BUILD_DIR/guest-kernel"
	dpkg-deb -x "$PMS_KERNEL_DEB" "$BUILD_DIR/guest-kernel"
	images=("$BUILD_DIR"/guest-kernel/boot/vmlinuz-*)
	if [ ${#images[@]} -ne 1 ] || [ ! -f "${images[0]}" ]; then
		die "$(basename "$PMS_KERNEL_DEB") has not exactly one /boot/vmlinuz-*"
	fi
	kernel=${images[0]}
	say "kernel: /boot/${kernel##*/} of $(basename "$PMS_KERNEL_DEB")"
fi
[ -f "$kernel" ] || die "no kernel image $kernel: run harness/build-kernel.sh"

# The cached image must never change: readonly=on, and the guest mounts it ro.
disk=()
[ -f "$BUILD_DIR/criu-rootfs.img" ] &&
	disk=(-drive "file=$BUILD_DIR/criu-rootfs.img,format=raw,if=virtio,readonly=on")

la57=off
[ "${PMS_LA57:-0}" != 1 ] || la57=on
say "booting under qemu TCG (THP $thp, la57 $la57); kernel log: ${kernel_log#"$REPO_DIR"/}"
timeout -k 10 "${PMS_TIMEOUT:-3000}" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max,la57=$la57 -smp "$cpus,sockets=2,cores=$per,threads=1" -m "$mem" \
	-object "memory-backend-ram,id=m0,size=$half" \
	-object "memory-backend-ram,id=m1,size=$half" \
	-numa "node,nodeid=0,cpus=$cpus0,memdev=m0" \
	-numa "node,nodeid=1,cpus=$cpus1,memdev=m1" \
	-display none -monitor none -no-reboot \
	-kernel "$kernel" -initrd "$BUILD_DIR/initramfs.cpio" \
	-append "$cmdline" "${disk[@]}" \
	-serial "file:$kernel_log" -serial "file:$test_log" &
qpid=$!

counts=$(mktemp)
trap 'rm -f "$counts"; kill $qpid 2>/dev/null || true' EXIT
# mawk (Debian's default awk) buffers its input unless told not to.
awk=(awk)
awk -W version 2>&1 | grep -q mawk && awk+=(-W interactive)
tail -n +1 -F --pid=$qpid "$test_log" 2>/dev/null |
	"${awk[@]}" -v counts="$counts" -v verbose="${PMS_VERBOSE:-0}" \
		-v expect="${PMS_EXPECT:-}" -v record="${PMS_RECORD:-}" \
		-f "$HARNESS_DIR/tap-report.awk"
qrc=0
wait $qpid || qrc=$?
read -r pass fail skip known <"$counts"

[ $qrc -eq 124 ] && { echo "  FAIL  host timeout: guest killed after ${PMS_TIMEOUT:-3000}s"; fail=$((fail + 1)); }

# Kernel splats anywhere in the console log fail the run.
splat='WARNING:|BUG:|Oops|Kernel panic|kernel BUG|general protection fault|'
splat+='KASAN:|UBSAN:|rcu: INFO|INFO: rcu|detected stall|soft lockup|hard LOCKUP|'
splat+='blocked for more than|circular locking|lock state|recursive locking|'
splat+='suspicious RCU usage|list_(add|del) corruption|Bad page|bad pte|Bad rss-counter|'
splat+='page_table_check|invoked oom-killer|Call Trace:'
if grep -Eq "$splat" "$kernel_log"; then
	echo "  FAIL  kernel splat in the guest log (${kernel_log#"$REPO_DIR"/}):"
	grep -En -B2 -A25 -m1 "$splat" "$kernel_log" | sed 's/^/  | /' | head -60
	fail=$((fail + 1))
fi
say "guest finished"
rc=0
[ "$fail" -eq 0 ] || rc=1
if [ "$skip" -ne 0 ]; then
	echo "skipped tests fail this suite: a missing feature is a failure"
	rc=1
fi
[ "$known" -eq 0 ] || echo "$known results fail on the base too (KNOWN above): not counted"
echo "$pass passed, $fail failed, $skip skipped"
exit $rc
