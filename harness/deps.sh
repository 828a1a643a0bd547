#!/usr/bin/env bash
# Install the Debian 12 packages the harness needs, only when one is missing.
# Needs root (or sudo) the first time; a no-op afterwards. Arguments: more
# packages a step needs besides these (harness/deb passes its own).
. "$(dirname "$0")/lib.sh"

PKGS=(
	"$package"               # the base kernel tree (harness/BASE)
	build-essential gcc-multilib flex bison bc cpio kmod xz-utils
	libelf-dev libssl-dev dwarves rsync ccache
	qemu-system-x86          # TCG boot of the patched kernel
	busybox-static           # guest userland
	liburing-dev             # io_uring tests link it statically
	quilt                    # harness/series --check applies the quilt form
	libnuma-dev libcap-dev   # static libs of the whole vm kselftest build
	bash-static              # run_vmtests.sh in the guest
	"$@"
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

say "installing missing packages: ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
	"${missing[@]}" >/dev/null
