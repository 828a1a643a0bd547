# Which kernel objects of a kbuild tree a "make" would compile now: make's own
# rule, read from the .cmd files kbuild leaves beside each object.
#
# Input (stdin), run from the top of the tree:
#   "M <mtime> <path>" lines for every file of the tree (find -printf),
#   then the .cmd files, concatenated; each starts with its "cmd_<target>"
#   line, then "source_<target> := file", "deps_<target> := \" and one
#   dependency a line up to a blank line, then "target: $(wildcard tool)".
# An object is a target whose command has -nostdinc (the kernel's own
# compiles, which the build log shows as "CC" or "AS"; host programs and
# objtool have none) and ends in .o or .s. It is out of date when it is
# missing, or when its source or a dependency is newer than it or is gone
# (a "$(wildcard ...)" dependency may be absent: kbuild lists every config
# option a file tests). A changed command line (kbuild's if_changed) is not
# seen: only a new .config or new flags do that, and build-kernel.sh then
# counts on the record of a complete build instead.
#
# Output: "<objects> <out of date>"; with -v list=1 first one
# "stale <target> <why>" line per object out of date.

$1 == "M" && NF == 3 { mt[$3] = $2 + 0; next }
/^cmd_/ {
	flush()
	target = $1
	sub(/^cmd_/, "", target)
	obj = ($0 ~ / -nostdinc / && target ~ /\.[os]$/)
	if (obj) {
		nobj++
		tmt = (target in mt) ? mt[target] : -1
		stale = (tmt < 0)
		why = stale ? "(not built)" : ""
	}
	indeps = 0
	next
}
!obj || stale { next }
/^source_/ { check($3, 0); next }
/^deps_/ { indeps = 1; next }
indeps && NF == 0 { indeps = 0; next }
indeps {
	if ($1 == "$(wildcard") {
		p = $2
		sub(/\)$/, "", p)
		check(p, 1)
	} else if ($1 != "\\")
		check($1, 0)
	next
}
/: \$\(wildcard [^)]*\)$/ {
	p = $NF
	sub(/\)$/, "", p)
	check(p, 1)
}

# "a/./b/../c" or "a//c" as find prints it: "a/c", "a/c"
function norm(p,   n, i, k, part, out, r) {
	n = split(p, part, "/")
	k = 0
	for (i = 1; i <= n; i++) {
		if (part[i] == "." || part[i] == "")
			continue
		if (part[i] == ".." && k > 0 && out[k] != "..") {
			k--
			continue
		}
		out[++k] = part[i]
	}
	r = (substr(p, 1, 1) == "/") ? "/" : ""
	for (i = 1; i <= k; i++)
		r = r (i > 1 ? "/" : "") out[i]
	return r
}

function check(p, optional) {
	# Compiler headers (absolute paths) are outside the tree: never changed.
	if (substr(p, 1, 1) == "/")
		return
	if (p ~ /(^|\/)\.\.?\// || p ~ /\/\//)
		p = norm(p)
	if (p in mt) {
		if (mt[p] > tmt) {
			stale = 1
			why = p
		}
	} else if (!optional) {
		stale = 1
		why = p " (gone)"
	}
}

function flush() {
	if (obj && stale) {
		nstale++
		if (list)
			print "stale", target, why
	}
	obj = 0
}

END {
	flush()
	printf "%d %d\n", nobj, nstale
}
