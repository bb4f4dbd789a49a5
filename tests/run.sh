#!/bin/sh
# Run every test binary given, print each one's cmocka report, then one closing
# line with the totals.  Exit non-zero if any binary failed.
passed=0; failed=0; skipped=0; status=0
log=$(mktemp)
for t in "$@"; do
	"$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
	if [ $rc -ne 0 ]; then
		status=1
		[ -z "$f" ] && failed=$((failed + 1)) && echo "$t exited with status $rc"
	fi
done
rm -f "$log"
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
