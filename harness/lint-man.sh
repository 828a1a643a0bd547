#!/usr/bin/env bash
# Check the man pages of the series (Documentation/man/*.[1-8]).
#
#   harness/lint-man.sh [--run]
#
# 1. Style: `mandoc -Tlint -W warning` and `groff -man -ww -z` on every page.
#    Any message fails (mandoc's STYLE level is below -W warning and is not
#    reported: it objects to man-pages' own lower-case titles).
# 2. Examples: the program of each page's EXAMPLES section, between the
#    lines `.\" SRC BEGIN (name.c)` and `.\" SRC END`, is turned back into C
#    and must compile with -Wall -Wextra -Werror against this tree's
#    include/uapi/linux/{fs,userfaultfd}.h (the build host's own uapi
#    headers are those of the base kernel, without PAGEMAP_SCAN). With
#    --run, each program is also run on this machine's kernel, which must
#    have the features, and its output must be what the page shows after
#    `$ ./a.out`.
# 3. Errnos: every errno the implementation returns must be listed in the
#    page's ERRORS section (in the subsection named in the table below), and
#    every errno listed there must come from the implementation, from a
#    callee named in the table, or from ioctl(2) itself. The errnos are
#    found by grepping the bodies of the functions named in the table for
#    -E<NAME> tokens (return -E..., ret = -E..., ERR_PTR(-E...)), comments
#    left out.
#
# What the grep in 3 cannot tell, and the table below therefore states by
# hand, with a reason for each entry:
# - errnos made by functions outside the table (split_vma(),
#   change_protection(), mmap_read_lock_killable(), ...): a callee
#   returning a new errno is only caught if someone adds it to the table;
# - errnos used internally and never returned (PAGEMAP_SCAN's -ENOSPC):
#   the script only checks that the code still compares against them;
# - reachability: a listed errno may be dead code, and a table function
#   may return a callee's errno that the callee never produces here;
# - causes: it checks that each errno is named, not that every cause of
#   it is described, nor that the order of the checks is right;
# - function bodies are found by kernel coding style (name( at column 0,
#   body up to the first `}` at column 0); macros that return are not
#   followed.
# shellcheck source=harness/lib.sh
. "$(dirname "$0")/lib.sh"

RUN=0
case "${1:-}" in
--run) RUN=1 ;;
"") ;;
*) die "usage: $0 [--run]" ;;
esac

# The tools, installed like harness/deps.sh does, only when missing.
PKGS=(mandoc groff-base gcc libc6-dev)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing missing packages: ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

export LC_ALL=C	# one collation for sort and comm
MAN_DIR=$REPO_DIR/Documentation/man
cd "$REPO_DIR" || die "cannot cd to $REPO_DIR"
mapfile -t pages < <(find "$MAN_DIR" -maxdepth 1 -type f -name '*.[1-8]*' | sort)
[ ${#pages[@]} -gt 0 ] || die "no man pages in $MAN_DIR"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
checks=0
failed=0
pass() { checks=$((checks + 1)); say "  ok    $*"; }
fail() { checks=$((checks + 1)); failed=$((failed + 1)); say "  FAIL  $*"; }
show() { sed 's/^/        /' "$1"; }

# Which functions implement what a page documents. Fields, ';'-separated:
# page; ERRORS subsection (* for the whole section); source file; the
# function names (an ERE, matched whole).
IMPLEMENTATION='
PAGEMAP_SCAN.2;*;fs/proc/task_mmu.c;do_pagemap_cmd|do_pagemap_scan|pm_scan_[a-z_]+
ioctl_userfaultfd_wp.2;All operations;fs/userfaultfd.c;userfaultfd_ioctl
ioctl_userfaultfd_wp.2;UFFDIO_API;fs/userfaultfd.c;userfaultfd_api
ioctl_userfaultfd_wp.2;UFFDIO_REGISTER;fs/userfaultfd.c;userfaultfd_register|validate_range
ioctl_userfaultfd_wp.2;UFFDIO_UNREGISTER;fs/userfaultfd.c;userfaultfd_unregister|validate_range
ioctl_userfaultfd_wp.2;UFFDIO_WRITEPROTECT;fs/userfaultfd.c;userfaultfd_writeprotect|validate_range
ioctl_userfaultfd_wp.2;UFFDIO_WRITEPROTECT;mm/userfaultfd.c;mwriteprotect_range|mwriteprotect_vma|uffd_wp_range
'
# What the grep cannot see. Fields: page; subsection; kind; errnos; why.
# kind "callee": returned by a function outside the table, must be listed;
# "ioctl": from ioctl(2) itself, may be listed; "internal": used inside
# the implementation only, must not be listed, and the code must still
# compare against it (else it may escape now: re-examine).
EXCEPTIONS='
PAGEMAP_SCAN.2;*;internal;ENOSPC;pm_scan_report() and pm_scan_pause() stop the walk with it, do_pagemap_scan() turns it into a result
PAGEMAP_SCAN.2;*;callee;EINTR;mmap_read_lock_killable() in pm_scan_walk()
PAGEMAP_SCAN.2;*;ioctl;EBADF ENOTTY;a bad fd, or a file (or kernel) without the ioctl
ioctl_userfaultfd_wp.2;All operations;ioctl;EBADF ENOTTY;a bad fd, or a file that is not a userfaultfd
ioctl_userfaultfd_wp.2;UFFDIO_REGISTER;callee;ENOMEM;split_vma(): no memory, or vm.max_map_count
ioctl_userfaultfd_wp.2;UFFDIO_UNREGISTER;callee;ENOMEM EINVAL;split_vma(), EINVAL from hugetlb_vm_op_split() for an end inside a huge page
ioctl_userfaultfd_wp.2;UFFDIO_WRITEPROTECT;callee;ENOMEM;change_protection() via uffd_wp_range(): page tables for markers
'

# The lines of the bodies of functions whose names match the ERE $2 in
# file $1, without comments.
function_lines() {
	awk -v re="^($2)\$" '
	{
		line = $0
		if (incomment) {
			if (!index(line, "*/"))
				next
			line = substr(line, index(line, "*/") + 2)
			incomment = 0
		}
		while (match(line, /\/\*.*\*\//))
			line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
		if (index(line, "/*")) {
			line = substr(line, 1, index(line, "/*") - 1)
			incomment = 1
		}
	}
	!infn && $0 ~ /^[A-Za-z_].*\(/ && $0 !~ /;[ \t]*$/ {
		name = $0
		sub(/\(.*/, "", name)
		n = split(name, w, /[ \t*]+/)
		if (w[n] ~ re) {
			infn = 1
			found[w[n]] = 1
		}
	}
	infn { print line }
	infn && /^}/ { infn = 0 }
	END {
		for (f in found)
			print f > "/dev/stderr"
	}' "$1"
}

errnos_in() { { grep -oE -- '-E[A-Z0-9]+' || true; } | sed 's/^-//' | sort -u; }

# The errnos that the ERRORS section of page $1 lists, in subsection $2
# (* for all): the E-names on the line after each .TP.
page_errnos() {
	awk -v want="$2" '
	/^\.SH / { inerr = ($0 ~ /^\.SH +"?ERRORS"?$/); sub_ = ""; next }
	/^\.SS / { sub_ = $0; sub(/^\.SS +/, "", sub_); gsub(/"/, "", sub_); next }
	!inerr { next }
	/^\.TP/ { tag = 1; next }
	tag {
		tag = 0
		if (want != "*" && sub_ != want)
			next
		n = split($0, w, /[^A-Za-z0-9_]+/)
		for (i = 1; i <= n; i++)
			if (w[i] ~ /^E[A-Z0-9]+$/)
				print w[i]
	}' "$1" | sort -u
}

# Fields of the EXCEPTIONS entries for page $1, subsection $2, kind $3.
exceptions() {
	printf '%s\n' "$EXCEPTIONS" | awk -F';' -v p="$1" -v s="$2" -v k="$3" \
		'$1 == p && $2 == s && $3 == k { print $4 }' | tr ' ' '\n' | sed '/^$/d' | sort -u
}

# Source of the program between the SRC markers of page $1, unescaped.
example_source() {
	awk '
	/^\.\\" SRC BEGIN/ { on = 1; next }
	/^\.\\" SRC END/ { on = 0; next }
	on && /^\.(EX|EE|in)/ { next }
	on && /^[.\047]/ { print "roff request inside the example: " $0 > "/dev/stderr"; exit 1 }
	on {
		gsub(/\\-/, "-"); gsub(/\\\(ha/, "^"); gsub(/\\\[ha\]/, "^")
		gsub(/\\\(ti/, "~"); gsub(/\\\[ti\]/, "~"); gsub(/\\&/, "")
		gsub(/\\e/, "\\\\")
		print
	}' "$1"
}

# The output the page shows after "$ ./a.out", unescaped.
example_output() {
	awk '
	/^\.RB \$ " \.\/a\.out"/ { on = 1; next }
	on && /^\.EE/ { exit }
	on {
		gsub(/\\-/, "-"); gsub(/\\&/, ""); gsub(/\\e/, "\\\\")
		print
	}' "$1"
}

mkdir -p "$tmp/inc/linux"
cp include/uapi/linux/fs.h include/uapi/linux/userfaultfd.h "$tmp/inc/linux/"

for page in "${pages[@]}"; do
	name=$(basename "$page")
	say "$name"

	if mandoc -Tlint -W warning "$page" >"$tmp/out" 2>&1 && [ ! -s "$tmp/out" ]; then
		pass "mandoc -Tlint -W warning"
	else
		fail "mandoc -Tlint -W warning"
		show "$tmp/out"
	fi
	if groff -man -ww -z "$page" >"$tmp/out" 2>&1 && [ ! -s "$tmp/out" ]; then
		pass "groff -man -ww -z"
	else
		fail "groff -man -ww -z"
		show "$tmp/out"
	fi

	src=$(sed -n 's/^\.\\" SRC BEGIN (\(.*\))$/\1/p' "$page")
	if [ -n "$src" ]; then
		if ! example_source "$page" >"$tmp/$src" 2>"$tmp/out"; then
			fail "example $src: cannot extract"
			show "$tmp/out"
		elif gcc -std=gnu11 -Wall -Wextra -Werror -isystem "$tmp/inc" \
			-o "$tmp/${src%.c}" "$tmp/$src" >"$tmp/out" 2>&1; then
			pass "example $src compiles"
			if [ "$RUN" -eq 1 ]; then
				example_output "$page" >"$tmp/want"
				if (cd "$tmp" && timeout 60 "./${src%.c}") >"$tmp/got" 2>&1 &&
					diff -u "$tmp/want" "$tmp/got" >"$tmp/out"; then
					pass "example $src prints what the page shows"
				else
					fail "example $src: run (kernel $(uname -r))"
					cat "$tmp/got" >>"$tmp/out"
					show "$tmp/out"
				fi
			fi
		else
			fail "example $src: compile"
			show "$tmp/out"
		fi
	fi

	# Errnos, per subsection that the table names for this page.
	subs=$(printf '%s\n' "$IMPLEMENTATION" | awk -F';' -v p="$name" '$1 == p { print $2 }' | sort -u)
	[ -n "$subs" ] || continue
	while read -r sub; do
		: >"$tmp/bodies"
		while IFS=';' read -r p s file funcs; do
			if [ "$p" != "$name" ] || [ "$s" != "$sub" ]; then
				continue
			fi
			[ -f "$file" ] || die "$file missing"
			function_lines "$file" "$funcs" >>"$tmp/bodies" 2>"$tmp/found"
			# Every name of the table must still exist.
			for f in $(printf '%s\n' "$funcs" | tr '|' '\n' | grep -vE '[][+*?]'); do
				grep -qx "$f" "$tmp/found" || fail "$name: $f() not found in $file"
			done
		done < <(printf '%s\n' "$IMPLEMENTATION" | sed '/^$/d')
		internal=$(exceptions "$name" "$sub" internal)
		for e in $internal; do
			grep -qE "[!=]= *-$e\b" "$tmp/bodies" ||
				fail "$name: the code no longer catches internal -$e: re-examine"
		done
		{ errnos_in <"$tmp/bodies"; exceptions "$name" "$sub" callee; } | sort -u |
			grep -vxF -e "${internal:-//}" >"$tmp/must" || true
		{ cat "$tmp/must"; exceptions "$name" "$sub" ioctl; } | sort -u >"$tmp/may"
		page_errnos "$page" "$sub" >"$tmp/listed"
		label="ERRORS${sub:+ }${sub/#\*/}"
		label=${label% }
		absent=$(comm -23 "$tmp/must" "$tmp/listed" | tr '\n' ' ')
		extra=$(comm -13 "$tmp/may" "$tmp/listed" | tr '\n' ' ')
		if [ -z "$absent" ] && [ -z "$extra" ]; then
			pass "$label: kernel $(tr '\n' ' ' <"$tmp/must")| listed $(tr '\n' ' ' <"$tmp/listed")"
		else
			[ -z "$absent" ] || fail "$label: returned by the kernel, not listed: $absent"
			[ -z "$extra" ] || fail "$label: listed, not returned by the kernel: $extra"
		fi
	done <<<"$subs"
done

if [ "$failed" -eq 0 ]; then
	say "lint-man: ${#pages[@]} pages, $checks checks, all clean"
else
	say "lint-man: ${#pages[@]} pages, $failed of $checks checks failed"
	exit 1
fi
