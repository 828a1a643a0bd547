#!/usr/bin/env bash
# Extract the base package's kernel tree into build/ and apply the series.
#
# The series is the difference between the pristine imports in this repo
# (commits whose subject starts with "Import pristine") and the working files
# at the same paths; files that no import introduced are new files. A file is
# written into the build tree only when its content changes, so make rebuilds
# only what the series changed since the last run.
#
# If the installed package is not the version the imports came from and its
# copy of a touched file differs from the import, the change is merged three
# ways (git merge-file); a conflict stops the run and names the file, so a
# stable fix in the package is never silently overwritten.
. "$(dirname "$0")/lib.sh"

[ -f "$tarball" ] || die "$tarball missing: run harness/deps.sh"
installed=$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || echo unknown)
stamp="$package $installed $(stat -c %s-%Y "$tarball")"

mkdir -p "$BUILD_DIR"
if [ "$(cat "$BUILD_DIR/tree.stamp" 2>/dev/null)" != "$stamp" ]; then
	say "extracting $package $installed (once per package version)"
	rm -rf "$KSRC" "$PRISTINE" "$BUILD_DIR/tree.stamp" "$BUILD_DIR/applied.list"
	mkdir -p "$PRISTINE"
	tar -xJf "$tarball" -C "$PRISTINE" --strip-components=1
	cp -a "$PRISTINE" "$KSRC"
	echo "$stamp" >"$BUILD_DIR/tree.stamp"
fi
[ "$installed" = "$version" ] ||
	say "note: $package $installed installed, series imported from $version: merging"

cd "$REPO_DIR"
excl=()
for p in "${TOOLING_PATHS[@]}"; do excl+=(":(exclude)$p"); done
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- . "${excl[@]}")
[ ${#files[@]} -gt 0 ] || die "no kernel-tree files in $REPO_DIR"

# The commit that imported a base file pristine, or nothing for new files.
import_commit() {
	local c
	c=$(git log --diff-filter=A --format='%H %s' -- "$1" 2>/dev/null | tail -n 1 || true)
	case "${c#* }" in "Import pristine"*) echo "${c%% *}" ;; esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
changed=0
for f in "${files[@]}"; do
	[ -f "$f" ] || continue
	imp=$(import_commit "$f")
	if [ -z "$imp" ]; then
		[ -e "$PRISTINE/$f" ] &&
			die "$f: new in the series but the package has it now; import it pristine first"
		cp "$f" "$tmp/result"
	else
		git show "$imp:$f" >"$tmp/base"
		if cmp -s "$tmp/base" "$PRISTINE/$f"; then
			cp "$f" "$tmp/result"
		else
			cp "$f" "$tmp/result"
			git merge-file -L series -L "import@${imp:0:12}" -L "$package-$installed" \
				"$tmp/result" "$tmp/base" "$PRISTINE/$f" ||
				die "$f: the package changed it since the import and the series does not merge; re-import and rebase"
			say "merged package update into $f"
		fi
	fi
	if ! cmp -s "$tmp/result" "$KSRC/$f"; then
		mkdir -p "$(dirname "$KSRC/$f")"
		cp "$tmp/result" "$KSRC/$f"
		chmod --reference="$f" "$KSRC/$f"
		changed=$((changed + 1))
	fi
done

# Files the previous run applied that the series no longer has: restore.
if [ -f "$BUILD_DIR/applied.list" ]; then
	while read -r f; do
		printf '%s\n' "${files[@]}" | grep -qxF "$f" && continue
		if [ ! -e "$PRISTINE/$f" ]; then
			rm -f "$KSRC/$f"
		elif cmp -s "$PRISTINE/$f" "$KSRC/$f"; then
			continue
		else
			cp "$PRISTINE/$f" "$KSRC/$f"
		fi
		changed=$((changed + 1))
	done <"$BUILD_DIR/applied.list"
fi
printf '%s\n' "${files[@]}" >"$BUILD_DIR/applied.list"
say "series applied: ${#files[@]} files in the series, $changed updated in ${KSRC#"$REPO_DIR"/}"
