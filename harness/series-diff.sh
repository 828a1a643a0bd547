#!/usr/bin/env bash
# Print the whole series as one patch: every kernel-tree file against its
# pristine import (or /dev/null for a new file). For review and for
# scripts/checkpatch.pl, e.g.:
#   harness/series-diff.sh | build/linux/scripts/checkpatch.pl --strict --no-tree -
. "$(dirname "$0")/lib.sh"

cd "$REPO_DIR"
excl=()
for p in "${TOOLING_PATHS[@]}"; do excl+=(":(exclude)$p"); done
git ls-files -- . "${excl[@]}" | while read -r f; do
	imp=$(git log --diff-filter=A --format='%H %s' -- "$f" | tail -n 1 || true)
	case "${imp#* }" in
	"Import pristine"*)
		git diff "${imp%% *}" -- "$f" ;;
	*)
		git diff "$(git hash-object -t tree /dev/null)" -- "$f" ;;
	esac
done
