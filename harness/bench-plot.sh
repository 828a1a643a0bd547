#!/usr/bin/env bash
# Plot the CSV of pagemap_bench --csv as a PNG: the median cost of a whole
# write + collect + reset cycle against the fraction of pages written, one
# line per mechanism, log scale, one panel per range size.
#
# Usage: harness/bench-plot.sh [options] CSV [PNG]
#   CSV may also be a log holding the output of "pagemap_bench --csv -" (a
#   guest's console). PNG defaults to CSV with its extension made .png.
#   The matrix has more axes than a plot: the rows plotted are those of one
#   pattern, page size, VMA count and busy mode, by default random/4k/1/idle
#   (or those of the first row when the CSV has none of these).
#   --pattern random|dense   --pages 4k|thp   --vmas N   --busy idle|busy
#   A CSV of harness/bench with rows of several kernels (its "kernel" column)
#   gets one line per mechanism and kernel: solid for the first kernel,
#   dashed for the second, and so on, in the same colour.
# Installs Debian's gnuplot-nox when gnuplot is missing. Prints the PNG path.
# shellcheck source=harness/lib.sh
. "$(dirname "$0")/lib.sh"

usage() { sed -n '2,/^# Installs/s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

pattern='' pages='' vmas='' busy=''
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--pattern) pattern=${2:?}; shift 2 ;;
	--pages) pages=${2:?}; shift 2 ;;
	--vmas) vmas=${2:?}; shift 2 ;;
	--busy)
		case ${2:?} in
		idle | 0) busy=0 ;;
		busy | 1) busy=1 ;;
		*) die "--busy takes idle or busy" ;;
		esac
		shift 2 ;;
	-h | --help) usage ;;
	-*) echo "unknown option $1" >&2; usage 2 >&2 ;;
	*) args+=("$1"); shift ;;
	esac
done
if [ ${#args[@]} -lt 1 ] || [ ${#args[@]} -gt 2 ]; then
	usage 2 >&2
fi
csv=${args[0]}
png=${args[1]:-${csv%.*}.png}
[ -r "$csv" ] || die "cannot read $csv"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! head -n 1 "$csv" | grep -q '^mech,name,size_bytes,'; then
	# the CSV block of "pagemap_bench --csv -" in a console log
	tr -d '\r' <"$csv" | sed -n '/^pagemap_bench: csv begin$/,/^pagemap_bench: csv end$/p' |
		sed '1d;$d' >"$tmp/data.csv"
	head -n 1 "$tmp/data.csv" | grep -q '^mech,name,size_bytes,' ||
		die "$csv is neither a pagemap_bench CSV nor a log with one"
	csv=$tmp/data.csv
fi

if ! command -v gnuplot >/dev/null; then
	say "installing gnuplot-nox"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
		--no-install-recommends gnuplot-nox >/dev/null
fi
term="pngcairo noenhanced font ',10'"
gnuplot -e 'set terminal pngcairo' 2>/dev/null || term="png noenhanced"

# One data file per size (columns: x position, then one per mechanism, NaN
# where a mechanism has no result) and the gnuplot script that plots them.
awk -F, -v dir="$tmp" -v png="$png" -v term="$term" \
	-v want_pattern="$pattern" -v want_page="$pages" \
	-v want_vmas="$vmas" -v want_busy="$busy" '
NR == 1 {
	for (i = 1; i <= NF; i++)
		col[$i] = i
	next
}
{ rows[NR] = $0 }
END {
	# several kernels (harness/bench --against): a line per mechanism and kernel
	nkern = 0
	if ("kernel" in col)
		for (r = 2; r <= NR; r++) {
			split(rows[r], f, ",")
			if (!(f[col["kernel"]] in kern_no)) {
				kern_no[f[col["kernel"]]] = ++nkern
				kern_name[nkern] = f[col["kernel"]]
			}
		}
	# the rows of the wanted pattern, page size, VMAs and busy mode
	p = want_pattern; t = want_page; v = want_vmas; b = want_busy
	if (p t v b == "") {
		p = "random"; t = "4k"; v = 1; b = 0
		if (!match_any(p, t, v, b)) {
			split(rows[2], f, ",")
			p = f[col["pattern"]]; t = f[col["page"]]
			v = f[col["vmas"]]; b = f[col["busy"]]
		}
	}
	for (r = 2; r <= NR; r++) {
		split(rows[r], f, ",")
		if ((p != "" && f[col["pattern"]] != p) ||
		    (t != "" && f[col["page"]] != t) ||
		    (v != "" && f[col["vmas"]] != v) ||
		    (b != "" && f[col["busy"]] != b))
			continue
		size = f[col["size_bytes"]] + 0
		frac = f[col["written_pct"]]
		mech = f[col["mech"]] " " f[col["name"]]
		if (nkern > 1)
			mech = mech " [" f[col["kernel"]] "]"
		if (!(size in seen_size)) { seen_size[size]; sizes[++nsize] = size }
		if (!(frac in seen_frac)) { seen_frac[frac]; fracs[++nfrac] = frac }
		if (!(mech in seen_mech)) { seen_mech[mech]; mechs[++nmech] = mech }
		if (f[col["status"]] == "fail")
			failed++
		if (f[col["status"]] == "ok" && f[col["cycle_med_ms"]] > 0) {
			val[size, frac, mech] = f[col["cycle_med_ms"]]
			has[size, mech]
			plotted[mech]
		}
		cycles = f[col["cycles"]]
	}
	if (!nsize) {
		print "no rows for pattern=" p " page=" t " vmas=" v " busy=" b > "/dev/stderr"
		exit 1
	}
	if (failed)
		print "warning: " failed " mechanism run(s) failed their truth check: not plotted" > "/dev/stderr"
	sort_num(sizes, nsize); sort_num(fracs, nfrac); sort_str(mechs, nmech)

	gp = dir "/plot.gp"
	printf "set terminal %s size %d,480\n", term, 80 + 460 * nsize > gp
	printf "set output \"%s\"\n", png > gp
	printf "set datafile missing \"NaN\"\n" > gp
	absent = ""
	for (m = 1; m <= nmech; m++)
		if (!(mechs[m] in plotted))
			absent = absent (absent == "" ? "" : ", ") mechs[m]
	if (absent != "")
		absent = "\\nnot plotted (n/a or failed): " absent
	if (nkern > 1) {
		kl = ""
		for (i = 1; i <= nkern; i++)
			kl = kl (i > 1 ? ", " : "") kern_name[i] (i == 1 ? " solid" : i == 2 ? " dashed" : " dash type " i)
		absent = absent "\\n" kl
	}
	printf "set multiplot layout 1,%d title \"pagemap_bench: whole cycle (write + collect + reset), median of %s cycles; %s pages, %s, %s VMA(s), %s%s\"\n", \
		nsize, cycles, t, p, v, b == 1 ? "busy second thread" : "alone", absent > gp
	printf "set logscale y\nset grid ytics mytics xtics\n" > gp
	printf "set xlabel \"pages written (%% of the range)\"\n" > gp
	printf "set ylabel \"ms per cycle\"\n" > gp
	printf "set xrange [-0.3:%f]\n", nfrac - 0.7 > gp
	xt = ""
	for (i = 1; i <= nfrac; i++)
		xt = xt (i > 1 ? ", " : "") "\"" fracs[i] "\" " i - 1
	printf "set xtics (%s)\n", xt > gp
	printf "set key top left font \",9\"\n" > gp
	for (s = 1; s <= nsize; s++) {
		size = sizes[s]
		dat = dir "/size-" size ".dat"
		for (i = 1; i <= nfrac; i++) {
			line = i - 1
			for (m = 1; m <= nmech; m++) {
				k = size SUBSEP fracs[i] SUBSEP mechs[m]
				line = line " " (k in val ? val[k] : "NaN")
			}
			print line > dat
		}
		close(dat)
		printf "set title \"%s\"\n", human(size) > gp
		if (s > 1)
			printf "unset key\n" > gp
		plots = ""
		for (m = 1; m <= nmech; m++) {
			if (!((size, mechs[m]) in has))
				continue
			# one style per mechanism letter, the same in every plot
			st = index("abcdefghijklmnop", substr(mechs[m], 1, 1))
			dt = 1
			if (nkern > 1 && match(mechs[m], /\[[^]]*\]$/))
				dt = kern_no[substr(mechs[m], RSTART + 1, RLENGTH - 2)]
			plots = plots (plots == "" ? "" : ", ") sprintf("\"%s\" using 1:%d with linespoints lw 2 pt %d lt %d dt %d title \"%s\"", dat, m + 1, st, st, dt, mechs[m])
		}
		if (plots == "")
			printf "set label 1 \"no results\" at graph 0.4,0.5\nplot 1 notitle lc rgb \"white\"\nunset label 1\n" > gp
		else
			print "plot " plots > gp
	}
	print "unset multiplot" > gp
	close(gp)
}
function match_any(p, t, v, b,    r, f) {
	for (r = 2; r <= NR; r++) {
		split(rows[r], f, ",")
		if (f[col["pattern"]] == p && f[col["page"]] == t &&
		    f[col["vmas"]] == v && f[col["busy"]] == b)
			return 1
	}
	return 0
}
function human(n) {
	if (n % 1073741824 == 0) return n / 1073741824 " GiB"
	if (n % 1048576 == 0) return n / 1048576 " MiB"
	return n / 1024 " KiB"
}
function sort_num(a, n,    i, j, x) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
			x = a[j]; a[j] = a[j - 1]; a[j - 1] = x
		}
}
function sort_str(a, n,    i, j, x) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			x = a[j]; a[j] = a[j - 1]; a[j - 1] = x
		}
}' "$csv"

gnuplot "$tmp/plot.gp" || die "gnuplot failed on $tmp/plot.gp"
echo "$png"
