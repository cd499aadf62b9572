#!/usr/bin/env bash
# The whole test command (`make check` runs it after building): unit tests in C
# under ASan/UBSan, then the lint of the bats files and the integration and
# stress suites against a real mount (tests/run-bats.sh). Counts test cases:
# each C test case (`ok NAME` / `not ok NAME`, see tests/unit/unit.h) and each
# bats test; ends with `# N skipped` and the line `N passed, N failed`.
#
# A unit binary that is missing, stale (older than its source, unit.h, any
# engine/, vmm/ or net/ source or fs/inode.[ch]: rebuild with `make unit`), killed by its
# timeout (UNIT_TIMEOUT seconds, default 300) or ends without its summary line
# counts as one more failure, with a sentence saying why.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build/tests"
up=0
uf=0
us=0

fail() {
	echo "# $*"
	uf=$((uf + 1))
}

mapfile -t srcs < <(cd "$root" && ls tests/unit/test_*.c 2>/dev/null)
if [[ ! -d "$build" ]]; then
	fail "$build is missing: no unit test ran (run \`make unit\`)"
	srcs=()
elif [[ ${#srcs[@]} -eq 0 ]]; then
	fail "tests/unit has no test_*.c: no unit test ran"
fi
for src in "${srcs[@]}"; do
	t="$build/$(basename "$src" .c)"
	if [[ ! -x "$t" ]]; then
		fail "$t is missing: $src did not run (run \`make unit\`)"
		continue
	fi
	newer=$(cd "$root" && find "$src" tests/unit/unit.h engine vmm net fs/inode.[ch] -name '*.[ch]' -newer "$t" 2>/dev/null | head -n 3)
	if [[ -n "$newer" ]]; then
		fail "$t is stale (older than $(echo $newer)): run \`make unit\`"
		continue
	fi
	out=$(timeout "${UNIT_TIMEOUT:-300}" "$t" 2>&1)
	rc=$?
	echo "$out"
	line=$(echo "$out" | grep -E '^unit .*: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' | tail -n 1)
	if [[ -z "$line" ]]; then
		# Crashed or killed: the cases it reported, and one failure for the rest.
		up=$((up + $(echo "$out" | grep '^ok ' | grep -vc ' # skip ')))
		us=$((us + $(echo "$out" | grep -c '^ok .* # skip ')))
		uf=$((uf + $(echo "$out" | grep -c '^not ok ')))
		if ((rc == 124)); then
			fail "$t still running after ${UNIT_TIMEOUT:-300} s: killed"
		else
			fail "$t ended without its summary line (exit $rc)"
		fi
		continue
	fi
	read -r p f s < <(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/')
	up=$((up + p))
	uf=$((uf + f))
	us=$((us + s))
	if ((rc != 0 && f == 0)); then
		fail "$t exited $rc with no failing case"
	fi
done
# The Python client's tests (examples/python/tests: pytest against a mount of
# their own); each test case counts, as a unit test case does.
pyout=$(mktemp)
"$here/python.sh" 2>&1 | tee "$pyout"
pyline=$(grep -E '^python: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$pyout" | tail -n 1)
rm -f "$pyout"
if [[ -z "$pyline" ]]; then
	fail "tests/python.sh ended without its summary line"
else
	read -r p f s < <(echo "$pyline" | sed -E 's/^python: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/')
	up=$((up + p))
	uf=$((uf + f))
	us=$((us + s))
fi

UNIT_PASSED=$up UNIT_FAILED=$uf UNIT_SKIPPED=$us exec "$here/run-bats.sh" "$@"
