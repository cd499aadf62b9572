#!/usr/bin/env bash
# Run the sandboxfs integration and stress suites (bats, TAP output) after the
# lint of their sources (tests/lint-bats.py), and print `# N skipped` then a
# final line `N passed, N failed`. Exits non-zero if anything failed.
#
#   tests/run-bats.sh                 # every .bats under tests/integration and tests/stress
#   tests/run-bats.sh FILE.bats ...   # only these files
#
# Counted as a failure, with a sentence: a lint finding (one per file), a
# suite directory without a .bats file, a file that does not exist or holds no
# test, a file whose planned tests did not all report, bats missing or failing
# on its own.
#
# Environment:
#   UNIT_PASSED, UNIT_FAILED, UNIT_SKIPPED  counts of unit test cases, added in
#   BATS_TEST_TIMEOUT         per-test limit in seconds (default 600)
#   SANDBOXFS, SBX_IMAGES     daemon binary and images dir (default build/...)
# Needs root, /dev/fuse, a built daemon (make && make image).
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

passed=0
failed=0
skipped=0
unit_passed="${UNIT_PASSED:-0}"
unit_failed="${UNIT_FAILED:-0}"
unit_skipped="${UNIT_SKIPPED:-0}"
[[ "$unit_passed" =~ ^[0-9]+$ ]] || unit_passed=0
[[ "$unit_failed" =~ ^[0-9]+$ ]] || unit_failed=0
[[ "$unit_skipped" =~ ^[0-9]+$ ]] || unit_skipped=0

fail() {
	echo "# $*"
	failed=$((failed + 1))
}

files=()
if [[ $# -gt 0 ]]; then
	for f in "$@"; do
		if [[ -f "$f" ]]; then
			files+=("$f")
		else
			fail "$f: no such file"
		fi
	done
else
	for suite in "$here/integration" "$here/stress"; do
		mapfile -t found < <(find "$suite" -maxdepth 1 -name '*.bats' 2>/dev/null | sort)
		if [[ ${#found[@]} -eq 0 ]]; then
			fail "$suite: no .bats file, the suite did not run"
		fi
		files+=("${found[@]}")
	done
fi

export BATS_TEST_TIMEOUT="${BATS_TEST_TIMEOUT:-600}"

if ! command -v bats >/dev/null 2>&1; then
	fail "bats not found: no integration test ran"
	files=()
fi

for f in "${files[@]}"; do
	"$here/lint-bats.py" "$f"
	rc=$?
	if ((rc == 1)); then
		fail "$f: assertions that cannot fail (above; see tests/lint-bats.py)"
	elif ((rc != 0)); then
		fail "tests/lint-bats.py could not check $f (exit $rc)"
	fi
done

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
		fail "$f: $((plan - ok - notok)) planned test(s) did not report"
		failed=$((failed + plan - ok - notok - 1))
	elif [[ -z "$plan" ]] || { ((rc != 0)) && ((notok == 0)); }; then
		fail "$f: bats failed (exit $rc) without reporting a failing test"
	elif ((plan == 0)); then
		fail "$f: no test in it"
	fi
done

echo "# $((skipped + unit_skipped)) skipped"
passed=$((passed + unit_passed))
failed=$((failed + unit_failed))
echo "$passed passed, $failed failed"
((failed == 0))
