# Reads the guest's test channel (as it grows) and prints each result; at the
# end prints the totals and exits non-zero on any failure, skip, missing
# result or unfinished run. Input markers come from harness/guest/init:
#   PMS-PLAN n, PMS-RUN id, PMS-EXIT id rc, PMS-END, PMS-SETUP-FAILED what
# Inside a PMS-RUN block, top-level TAP lines ("1..N", "ok N ...",
# "not ok N ...") are the binary's own results.
function result(kind, what) {
	if (kind == "pass") { pass++; printf "  PASS  %s\n", what }
	else if (kind == "skip") { skip++; printf "  SKIP  %s\n", what }
	else { fail++; printf "  FAIL  %s\n", what; failed[fail] = what }
	fflush()
}
function close_block(rc) {
	if (inner > 0) {
		if (plan >= 0 && inner < plan)
			result("fail", id ": " inner " of " plan " planned results (crashed or killed?)")
		else if (rc != 0 && inner_fail == 0)
			result("fail", id ": exit status " rc " after all results passed")
	} else if (rc == 0) result("pass", id)
	else if (rc == 4) result("skip", id)
	else if (rc == 137) result("fail", id ": killed by the guest timeout")
	else result("fail", id ": exit status " rc)
	if (verbose == 0 && rc != 0 && nbuf > 0) {
		printf "  ---- output of %s ----\n", id
		for (i = 1; i <= nbuf; i++) print "  | " buf[i]
	}
	id = ""; runs++
}
BEGIN { plan_runs = -1; id = ""; pass = fail = skip = runs = 0 }
{ sub(/\r$/, "") }
/^PMS-BEGIN / { sub(/^PMS-BEGIN /, ""); printf "guest up: %s\n", $0; fflush(); next }
/^PMS-SETUP-FAILED / { result("fail", "guest setup: " substr($0, 18)); next }
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
	if ($1 == "not") { inner_fail++; result("fail", id ": " name) }
	else if (name ~ /(^| )# *[Ss][Kk][Ii][Pp]/) result("skip", id ": " name)
	else result("pass", id ": " name)
}
END {
	if (id != "") result("fail", id ": never finished (guest hang, panic or host timeout)")
	if (plan_runs < 0) result("fail", "guest never started the suite (boot failure?)")
	else if (runs < plan_runs)
		result("fail", "suite: " runs " of " plan_runs " planned invocations ran")
	else if (!ended) result("fail", "suite: guest did not reach PMS-END")
	printf "%d %d %d\n", pass, fail, skip > counts
}
