#!/usr/bin/env bash
# The whole test command (`make check` runs it after building): unit tests in C
# under ASan/UBSan, then the integration and stress suites against a real
# mount. Ends with one line `N passed, N failed`.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/../build/tests"
up=0
uf=0
for t in "$build"/test_*; do
	[ -x "$t" ] || continue
	out=$("$t" 2>&1)
	rc=$?
	echo "$out"
	line=$(echo "$out" | grep -E '^unit .*: [0-9]+ passed, [0-9]+ failed' | tail -1)
	if [ -z "$line" ]; then
		echo "# $t crashed or printed no summary (exit $rc)"
		uf=$((uf + 1))
		continue
	fi
	p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	up=$((up + p))
	uf=$((uf + f))
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && uf=$((uf + 1))
done
UNIT_PASSED=$up UNIT_FAILED=$uf exec "$here/run-bats.sh" "$@"
