#!/usr/bin/env bash
# Run the sandboxfs integration and stress suites (bats, TAP output) and print
# a final line `N passed, N failed`. Exits non-zero if anything failed.
#
#   tests/run-bats.sh                 # every .bats under tests/integration and tests/stress
#   tests/run-bats.sh FILE.bats ...   # only these files
#
# Environment:
#   UNIT_PASSED, UNIT_FAILED  counts from the unit tests, added to the totals
#   BATS_TEST_TIMEOUT         per-test limit in seconds (default 600)
#   SANDBOXFS, SBX_IMAGES     daemon binary and images dir (default build/...)
# Needs root, /dev/fuse, a built daemon (make && make image).
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -gt 0 ]]; then
	files=("$@")
else
	mapfile -t files < <(find "$here/integration" "$here/stress" -maxdepth 1 -name '*.bats' 2>/dev/null | sort)
fi

export BATS_TEST_TIMEOUT="${BATS_TEST_TIMEOUT:-600}"

passed=0
failed=0
skipped=0
unit_passed="${UNIT_PASSED:-0}"
unit_failed="${UNIT_FAILED:-0}"
[[ "$unit_passed" =~ ^[0-9]+$ ]] || unit_passed=0
[[ "$unit_failed" =~ ^[0-9]+$ ]] || unit_failed=0

if ! command -v bats >/dev/null 2>&1; then
	echo "bats not found" >&2
	echo "$((unit_passed)) passed, $((unit_failed + 1)) failed"
	exit 1
fi

if [[ ${#files[@]} -eq 0 ]]; then
	echo "no .bats files found" >&2
fi

for f in "${files[@]}"; do
	echo "# ---- $f"
	out=$(mktemp)
	bats --tap "$f" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	plan=$(grep -m1 -E '^1\.\.[0-9]+' "$out" | sed 's/^1\.\.//')
	ok=$(grep -c -E '^ok [0-9]+' "$out")
	skip=$(grep -c -E '^ok [0-9]+ .*# skip' "$out")
	notok=$(grep -c -E '^not ok [0-9]+' "$out")
	rm -f "$out"
	passed=$((passed + ok - skip))
	skipped=$((skipped + skip))
	failed=$((failed + notok))
	# Tests planned but never reported (bats died, or a file-level failure).
	if [[ -n "$plan" ]] && ((ok + notok < plan)); then
		missing=$((plan - ok - notok))
		echo "# $f: $missing planned test(s) did not report"
		failed=$((failed + missing))
	elif [[ -z "$plan" ]] || { ((rc != 0)) && ((notok == 0)); }; then
		echo "# $f: bats failed (exit $rc) without reporting a failing test"
		failed=$((failed + 1))
	fi
done

((skipped > 0)) && echo "# $skipped skipped"
passed=$((passed + unit_passed))
failed=$((failed + unit_failed))
echo "$passed passed, $failed failed"
((failed == 0))
