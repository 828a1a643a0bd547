#!/usr/bin/env bash
# Build, once, a minimal Debian trixie root filesystem holding Debian's own
# CRIU (>= 4.0, the first with PAGEMAP_SCAN) and pack it into an ext4 image,
# build/criu-rootfs.img, for the guest to mount from a virtio disk and chroot
# into. The image is cached: it is rebuilt only when it is missing, when this
# script changed, or with PMS_CRIU_REFRESH=1 (which rebuilds only if trixie's
# criu version differs from the recorded one). build/criu-rootfs.version
# records the criu version inside.
#
# Environment:
#   PMS_DEBIAN_MIRROR  Debian mirror (default: the first deb.debian.org-like
#                      "debian" URI of /etc/apt/sources.list*, else
#                      http://deb.debian.org/debian)
#   PMS_CRIU_SUITE     suite to bootstrap (default trixie)
#   PMS_CRIU_REFRESH   1: ask the archive whether criu moved on
. "$(dirname "$0")/lib.sh"

suite=${PMS_CRIU_SUITE:-trixie}
img=$BUILD_DIR/criu-rootfs.img
stamp=$BUILD_DIR/criu-rootfs.version
tree=$BUILD_DIR/criu-rootfs
debs=$BUILD_DIR/criu-debs
# criu, its crit tool (python3-pycriu) and iproute2 for `ip link set lo up`
include=criu,python3-pycriu,iproute2
key="$suite $include $(sha1sum <"$0" | cut -c1-12)"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
for p in debootstrap e2fsprogs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && continue
	say "installing $p"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done
[ -e "/usr/share/debootstrap/scripts/$suite" ] ||
	die "this debootstrap does not know the suite '$suite' (PMS_CRIU_SUITE)"

mirror=${PMS_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
	mirror=${mirror:-http://deb.debian.org/debian}
fi

recorded() { sed -n 2p "$stamp" 2>/dev/null; }
if [ -f "$img" ] && [ "$(sed -n 1p "$stamp" 2>/dev/null)" = "$key" ]; then
	if [ "${PMS_CRIU_REFRESH:-0}" != 1 ]; then
		say "criu rootfs cached: ${img#"$REPO_DIR"/}, criu $(recorded)"
		exit 0
	fi
	# Ask the archive, through the cached tree's own apt, for trixie's criu.
	cand=$($SUDO chroot "$tree" sh -c 'apt-get update -qq >/dev/null 2>&1 &&
		apt-cache policy criu' | awk '/Candidate:/ { print $2 }')
	[ -n "$cand" ] || die "could not ask $mirror for $suite's criu version"
	if [ "$cand" = "$(recorded)" ]; then
		say "criu rootfs up to date: criu $cand"
		exit 0
	fi
	say "criu moved from $(recorded) to $cand: rebuilding"
fi

mkdir -p "$LOG_DIR" "$debs"
t=$(now)
$SUDO rm -rf "$tree"
say "debootstrap --variant=minbase $suite from $mirror (log: build/logs/criu-debootstrap.log)"
run_logged "$LOG_DIR/criu-debootstrap.log" "tail -n1 $LOG_DIR/criu-debootstrap.log" \
	nice -n 10 $SUDO debootstrap --variant=minbase --include="$include" \
	--cache-dir="$debs" "$suite" "$tree" "$mirror"
# shellcheck disable=SC2016 # dpkg-query expands ${Version} itself
version=$($SUDO chroot "$tree" dpkg-query -W -f='${Version}' criu)
case "$version" in
[0-3].*) die "$suite's criu is $version; PAGEMAP_SCAN needs >= 4.0" ;;
esac
# What a guest never reads: documentation, translations, apt's caches.
$SUDO rm -rf "$tree"/usr/share/{doc,man,info,locale} "$tree"/var/cache/apt/*.bin \
	"$tree"/var/lib/apt/lists/*_Packages
size_mib=$(($($SUDO du -sm "$tree" | cut -f1) * 13 / 10 + 64))
rm -f "$img"
nice -n 10 $SUDO mke2fs -q -t ext4 -L pms-criu -d "$tree" "$img" "${size_mib}M"
printf '%s\n%s\n' "$key" "$version" >"$stamp"
say "criu rootfs: ${img#"$REPO_DIR"/} (${size_mib} MiB), criu $version, built in $(($(now) - t)) s"
