# Prints the tables of harness/bench from its combined CSV: the rows of
# "pagemap_bench --csv" with one more column, "kernel" (patched, or the
# upstream version it ran against). For each kernel, one matrix per figure
# (point x mechanism): the whole cycle's median ms, its ratio to a (scan-wp),
# the collect + reset median ms and the TLB shootdowns per collect + reset.
# With two kernels, the first's figures divided by the second's.
BEGIN { FS = "," }
NR == 1 {
	for (i = 1; i <= NF; i++)
		col[$i] = i
	if (!("kernel" in col) || !("cycle_med_ms" in col)) {
		print "bench-table.awk: not a harness/bench CSV" > "/dev/stderr"
		exit 2
	}
	next
}
{
	k = $col["kernel"]
	p = label($col["size_bytes"], $col["written_pct"], $col["pattern"],
		  $col["page"], $col["vmas"], $col["busy"])
	m = $col["mech"] " " $col["name"]
	if (!(k in seen_k)) { seen_k[k]; kern[++nk] = k }
	if (!(p in seen_p)) { seen_p[p]; pts[++np] = p }
	if (!(m in seen_m)) { seen_m[m]; mechs[++nm] = m }
	st[k, p, m] = $col["status"]
	cyc[k, p, m] = $col["cycle_med_ms"]
	rat[k, p, m] = $col["ratio_cycle_a"]
	col_ms[k, p, m] = $col["collect_med_ms"]
	tlb[k, p, m] = $col["tlb_med"]
	cycles = $col["cycles"]
}
END {
	if (nk == 0)
		exit
	sort_str(mechs, nm)
	for (i = 1; i <= nk; i++) {
		k = kern[i]
		head = "[" k "] "
		matrix(head "whole cycle (write + collect + reset), median ms of " cycles " cycles", k, cyc, "%.3f")
		matrix(head "cycle cost / scan-wp's", k, rat, "%.2f")
		matrix(head "collect + reset, median ms", k, col_ms, "%.3f")
		matrix(head "TLB shootdowns per collect + reset (median, all CPUs)", k, tlb, "%.0f")
	}
	if (nk >= 2) {
		ratio(kern[1] " / " kern[2] ": whole cycle", kern[1], kern[2], cyc)
		ratio(kern[1] " / " kern[2] ": collect + reset", kern[1], kern[2], col_ms)
	}
}
function label(size, pct, pattern, page, vmas, busy,    s) {
	s = human(size) " " pct "% " pattern " " page
	if (vmas != 1)
		s = s " " vmas "vma"
	if (busy == 1)
		s = s " busy"
	return s
}
function header(title,    j) {
	printf "\n%s\n%-30s", title, "point"
	for (j = 1; j <= nm; j++)
		printf " %10s", substr(mechs[j], 3)
	printf "\n"
}
function cell(k, p, m, arr, fmt) {
	if (!((k, p, m) in st))
		return "-"
	if (st[k, p, m] == "n/a")
		return "n/a"
	if (st[k, p, m] != "ok")
		return "FAIL"
	if (arr[k, p, m] == "")
		return "-"
	return sprintf(fmt, arr[k, p, m])
}
function matrix(title, k, arr, fmt,    i, j) {
	header(title)
	for (i = 1; i <= np; i++) {
		printf "%-30s", pts[i]
		for (j = 1; j <= nm; j++)
			printf " %10s", cell(k, pts[i], mechs[j], arr, fmt)
		printf "\n"
	}
}
function ratio(title, k1, k2, arr,    i, j, p, m, a, b) {
	header(title)
	for (i = 1; i <= np; i++) {
		p = pts[i]
		printf "%-30s", p
		for (j = 1; j <= nm; j++) {
			m = mechs[j]
			a = cell(k1, p, m, arr, "%.6f")
			b = cell(k2, p, m, arr, "%.6f")
			if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0)
				printf " %10.2f", a / b
			else if (a == "FAIL" || b == "FAIL")
				printf " %10s", "FAIL"
			else
				printf " %10s", (a == "n/a" || b == "n/a") ? "n/a" : "-"
		}
		printf "\n"
	}
}
function human(n) {
	n += 0
	if (n % 1073741824 == 0) return n / 1073741824 "G"
	if (n % 1048576 == 0) return n / 1048576 "M"
	return n / 1024 "K"
}
function sort_str(a, n,    i, j, x) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			x = a[j]; a[j] = a[j - 1]; a[j - 1] = x
		}
}
