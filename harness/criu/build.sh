#!/usr/bin/env bash
# Build what the guest's CRIU run needs into DIR (build/selftests/criu):
# memlayout, static, against the patched tree's uapi headers (PAGEMAP_SCAN),
# the guest script and suite.py, and the rootfs's recorded criu version.
# Usage: harness/criu/build.sh DIR
. "$(dirname "$0")/../lib.sh"

out=${1:?usage: build.sh DIR}
src=$HARNESS_DIR/criu
[ -d "$KSRC/usr/include/linux" ] || die "no installed headers: run harness/build-kernel.sh"
mkdir -p "$out"
gcc -O2 -Wall -Wextra -Werror -static -isystem "$KSRC/usr/include" \
	-o "$out/memlayout" "$src/memlayout.c"
cp "$src/run" "$src/suite.py" "$out/"
sed -n 2p "$BUILD_DIR/criu-rootfs.version" >"$out/rootfs.version" 2>/dev/null || true
say "criu guest files built in ${out#"$REPO_DIR"/}"
