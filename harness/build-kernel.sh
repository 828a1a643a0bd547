#!/usr/bin/env bash
# Configure and build the patched kernel (bzImage) and install its uapi
# headers into build/linux/usr/include for the selftests. The release is
# 6.1.N-pagemapscan, the same as harness/deb's packages of this tree.
#
# .config = x86_64 defconfig + kernel/configs/kvm_guest.config +
# harness/config/pagemap-scan.config (+ $PMS_CONFIG_EXTRA, a fragment path,
# if set). Every option the fragment sets must survive olddefconfig.
# $PMS_CONFIG_FRAGMENT replaces pagemap-scan.config (harness/bench builds its
# own tree with harness/config/perf.config).
. "$(dirname "$0")/lib.sh"

FRAG=${PMS_CONFIG_FRAGMENT:-$HARNESS_DIR/config/pagemap-scan.config}
[ -r "$FRAG" ] || die "cannot read the config fragment $FRAG"
[ -z "${PMS_CONFIG_EXTRA:-}" ] || [ -r "$PMS_CONFIG_EXTRA" ] ||
	die "cannot read PMS_CONFIG_EXTRA=$PMS_CONFIG_EXTRA"
[ -f "$KSRC/Makefile" ] || die "no kernel tree in $KSRC: run harness/prepare-tree.sh"
cd "$KSRC"

want=$(cat "$FRAG" ${PMS_CONFIG_EXTRA:+"$PMS_CONFIG_EXTRA"} | sha1sum)
if [ ! -f .config ] || [ "$(cat .config.frag-sum 2>/dev/null)" != "$want" ]; then
	say "configuring: x86_64_defconfig + kvm_guest.config + ${FRAG#"$REPO_DIR"/}"
	make -s x86_64_defconfig
	scripts/kconfig/merge_config.sh -m .config kernel/configs/kvm_guest.config \
		"$FRAG" ${PMS_CONFIG_EXTRA:+"$PMS_CONFIG_EXTRA"} >/dev/null
	make -s olddefconfig
	bad=0
	while read -r line; do
		case "$line" in
		CONFIG_*=*) grep -qxF "$line" .config || { echo "  not set: $line" >&2; bad=1; } ;;
		"# CONFIG_"*" is not set")
			opt=${line#"# "}; opt=${opt%% *}
			grep -q "^$opt=" .config && { echo "  still on: $opt" >&2; bad=1; } ;;
		esac
	done < <(cat "$FRAG" ${PMS_CONFIG_EXTRA:+"$PMS_CONFIG_EXTRA"})
	[ $bad -eq 0 ] || die "config fragment did not apply (missing dependency?)"
	echo "$want" >.config.frag-sum
fi

command -v ccache >/dev/null || die "ccache missing: run harness/deps.sh"
set_kmake_vars
say "building bzImage with ccache, $JOBS jobs, ${KMAKE_VARS[*]} (log: ${LOG_DIR#"$REPO_DIR"/}/kernel-build.log)"
mkdir -p "$LOG_DIR"
ccache -z >/dev/null
run_logged "$LOG_DIR/kernel-build.log" \
	"grep -c '^  CC ' $LOG_DIR/kernel-build.log | xargs printf '%s objects compiled so far'" \
	make -j"$JOBS" CC="ccache gcc" "${KMAKE_VARS[@]}" bzImage
say "bzImage $(cat include/config/kernel.release) ready; ccache: $(ccache -s | grep -E 'Hits|hit' | head -1 | tr -s ' ')"
make -s headers_install >/dev/null
say "uapi headers installed in ${KSRC#"$REPO_DIR"/}/usr/include"
