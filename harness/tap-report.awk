# Reads the guest's test channel (as it grows) and prints each result; at the
# end prints the totals and exits non-zero on any failure, skip, missing
# result or unfinished run. Input markers come from harness/guest/init:
#   PMS-PLAN n, PMS-RUN id, PMS-EXIT id rc, PMS-END, PMS-SETUP-FAILED what
# Inside a PMS-RUN block, top-level TAP lines ("1..N", "ok N ...",
# "not ok N ...") are the binary's own results.
# key names the result for harness/baseline's expectations: the entry's id,
# or "id: name" for a binary's own TAP result; "" for the suite's own.
# With -v expect=FILE (lines "kind<TAB>key<TAB>reason", kind pass, fail or
# skip, as -v record=FILE writes them), a result that fails or skips where
# the base did too is KNOWN (with the base's reason) and counts neither as a
# pass nor as a failure; one that passed on the base and not here fails.
function result(kind, what, key, why,   k) {
	if (record != "" && key != "")
		printf "%s\t%s\t%s\n", kind, key, why > record
	if (key != "" && key in base) {
		seen[key] = 1
		if (kind != "pass" && base[key] != "pass") {
			known++
			printf "  KNOWN %s: %s on the base too%s\n", what, base[key],
				base_why[key] != "" ? " (" base_why[key] ")" : ""
			fflush()
			return
		}
		if (kind == "pass" && base[key] != "pass")
			what = what " (" base[key] "s on the base)"
		else if (kind != "pass")
			what = what " (passes on the base)"
	}
	if (kind == "pass") { pass++; printf "  PASS  %s\n", what }
	else if (kind == "skip") { skip++; printf "  SKIP  %s\n", what }
	else { fail++; printf "  FAIL  %s\n", what; failed[fail] = what }
	fflush()
}
# The last line of an entry's output that is not TAP: what it said last.
function last_words(   i) {
	for (i = nbuf; i > 0; i--)
		if (buf[i] !~ /^(not )?ok [0-9]/ && buf[i] !~ /^ *$/ && buf[i] !~ /^1\.\./)
			return substr(buf[i], 1, 160)
	return ""
}
function close_block(rc,   why) {
	why = last_words()
	if (inner > 0) {
		if (plan >= 0 && inner < plan)
			result("fail", id ": " inner " of " plan " planned results (crashed or killed?)", id, why)
		else if (rc != 0 && inner_fail == 0)
			result("fail", id ": exit status " rc " after all results passed", id, why)
	} else if (rc == 0) result("pass", id, id, "")
	else if (rc == 4) result("skip", id, id, why)
	else if (rc == 137) result("fail", id ": killed by the guest timeout", id, "killed by the guest timeout")
	else result("fail", id ": exit status " rc, id, "exit status " rc ": " why)
	if (verbose == 0 && rc != 0 && nbuf > 0) {
		printf "  ---- output of %s ----\n", id
		for (i = 1; i <= nbuf; i++) print "  | " buf[i]
	}
	id = ""; runs++
}
BEGIN {
	plan_runs = -1; id = ""; pass = fail = skip = known = runs = 0
	if (expect != "") {
		FS = "\t"
		while ((getline line < expect) > 0) {
			if (line ~ /^#/ || split(line, f, "\t") < 2) continue
			base[f[2]] = f[1]; base_why[f[2]] = f[3]
		}
		close(expect)
		FS = " "
	}
}
{ sub(/\r$/, "") }
/^PMS-BEGIN / { sub(/^PMS-BEGIN /, ""); printf "guest up: %s\n", $0; fflush(); next }
/^PMS-SETUP-FAILED / { result("fail", "guest setup: " substr($0, 18), "", ""); next }
/^PMS-PLAN / { plan_runs = $2 + 0; next }
/^PMS-RUN / {
	id = $2; plan = -1; inner = inner_fail = nbuf = 0
	printf "# %s\n", id; fflush(); next
}
/^PMS-EXIT / { if (id != "") close_block($3 + 0); next }
/^PMS-END/ { ended = 1; next }
id == "" { next }
{ if (nbuf < 400) buf[++nbuf] = $0; if (verbose) { print "  | " $0; fflush() } }
/^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; next }
/^ok [0-9]+/ || /^not ok [0-9]+/ {
	inner++
	name = $0
	sub(/^(not )?ok [0-9]+ *(- )?/, "", name)
	key = name
	sub(/ *#.*$/, "", key)
	key = id ": " key
	if ($1 == "not") { inner_fail++; result("fail", id ": " name, key, name) }
	else if (name ~ /(^| )# *[Ss][Kk][Ii][Pp]/) result("skip", id ": " name, key, name)
	else result("pass", id ": " name, key, "")
}
END {
	if (id != "") result("fail", id ": never finished (guest hang, panic or host timeout)", id, "never finished")
	if (plan_runs < 0) result("fail", "guest never started the suite (boot failure?)", "", "")
	else if (runs < plan_runs)
		result("fail", "suite: " runs " of " plan_runs " planned invocations ran", "", "")
	else if (!ended) result("fail", "suite: guest did not reach PMS-END", "", "")
	for (k in base)
		if (base[k] == "pass" && !(k in seen))
			result("fail", k ": no result, though it passes on the base", "", "")
	printf "%d %d %d %d\n", pass, fail, skip, known > counts
}
