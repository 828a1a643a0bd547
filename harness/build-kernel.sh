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
mkdir -p "$LOG_DIR"
# The progress line: objects compiled (the log's CC and AS lines of the
# kernel's own objects; objtool's, with absolute paths, are not counted),
# of the estimate of kbuild-estimate.sh, with the time left at the rate so
# far plus the link time of the last complete build.
read -r kb_total kb_link kb_why < <("$HARNESS_DIR/kbuild-estimate.sh" --count) || true
[ -n "$kb_total" ] || kb_total="?"
[ -n "$kb_link" ] || kb_link=0
say "estimate: $kb_total objects to compile ($kb_why)"
kb_state=$LOG_DIR/kernel-build.progress
rm -f "$kb_state"
kbuild_progress() {
	local n
	n=$(grep -cE '^  (CC|AS) +[^/ ]' "$LOG_DIR/kernel-build.log" || true)
	progress_of "$n" "$kb_total" "objects compiled" "$kb_state" "$kb_link"
}
say "building bzImage with ccache, $JOBS jobs, ${KMAKE_VARS[*]} (log: ${LOG_DIR#"$REPO_DIR"/}/kernel-build.log)"
ccache -z >/dev/null
kb_t0=$(now)
run_logged "$LOG_DIR/kernel-build.log" kbuild_progress \
	make -j"$JOBS" CC="ccache gcc" "${KMAKE_VARS[@]}" bzImage
kb_n=$(grep -cE '^  (CC|AS) +[^/ ]' "$LOG_DIR/kernel-build.log" || true)
say "bzImage $(cat include/config/kernel.release) ready: $kb_n objects compiled (estimate $kb_total) in" \
	"$(duration $(($(now) - kb_t0))); ccache: $(ccache -s | grep -E 'Hits|hit' | head -1 | tr -s ' ')"
# Record the objects of this complete build, and how long it linked after
# the last compile (known to the 30 s of the progress lines, and only when
# objects were compiled at a measured time); else keep the last record's.
kb_quiet=$(progress_quiet "$kb_state")
"$HARNESS_DIR/kbuild-estimate.sh" --record "${kb_quiet:-$kb_link}" | sed 's/^/  /'
make -s headers_install >/dev/null
say "uapi headers installed in ${KSRC#"$REPO_DIR"/}/usr/include"
# $PMS_MODULES_ROOT: also the modules, installed there (harness/baseline:
# its guest loads test_vmalloc and test_hmm, which the series' guest gets
# from the linux-image package).
if [ -n "${PMS_MODULES_ROOT:-}" ]; then
	say "building and installing the modules into ${PMS_MODULES_ROOT#"$REPO_DIR"/}"
	modules_progress() { echo "$(grep -c '^  CC \[M\]' "$LOG_DIR/modules-build.log" || true) module objects compiled"; }
	run_logged "$LOG_DIR/modules-build.log" modules_progress \
		make -j"$JOBS" CC="ccache gcc" "${KMAKE_VARS[@]}" modules
	rm -rf "$PMS_MODULES_ROOT"
	make -s "${KMAKE_VARS[@]}" INSTALL_MOD_PATH="$PMS_MODULES_ROOT" modules_install
fi
