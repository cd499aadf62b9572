#!/usr/bin/env bash
# The Python client's tests (examples/python/tests, Debian's python3-pytest).
# They start a sandboxfs of their own on a temporary mount (build/sandboxfs,
# build/images: `make all image` first) and need root and /dev/fuse.
# Prints pytest's report, then, last, the line the tally adds:
#   python: N passed, N failed, N skipped
# Counted as one failure, with a sentence: no python3 with pytest, pytest
# ending without its summary line, or failing (exit status) with no failed
# test (an internal or usage error, a timeout). Exits non-zero if anything
# failed.
#
# Environment: PYTHON (an interpreter to try first), PYTEST_TIMEOUT (seconds
# for the whole run, default 900: then SIGINT, so the fixtures unmount),
# SANDBOXFS, SBX_IMAGES (the daemon and images, default build/...).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

py=""
for c in "${PYTHON:-}" python3 /usr/bin/python3; do
	if [[ -n "$c" ]] && "$c" -c 'import pytest' >/dev/null 2>&1; then
		py=$c
		break
	fi
done
if [[ -z "$py" ]]; then
	echo "# no python3 with pytest (apt-get install python3-pytest): the Python client's tests did not run"
	echo "python: 0 passed, 1 failed, 0 skipped"
	exit 1
fi

out=$(mktemp)
cd "$root" || exit 1
PYTHONDONTWRITEBYTECODE=1 timeout -s INT -k 120 "${PYTEST_TIMEOUT:-900}" \
	"$py" -m pytest -q -rfEs -p no:cacheprovider examples/python/tests 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
# pytest's last line: "3 failed, 60 passed, 2 skipped, 1 error in 12.34s".
summary=$(grep -E '^([0-9]+ [a-z]+.*|no tests ran) in [0-9.]+s' "$out" | tail -n 1)
rm -f "$out"
count() { echo "$summary" | grep -oE "[0-9]+ $1\\b" | awk '{s += $1} END {print s + 0}'; }
passed=$(($(count passed) + $(count xpassed)))
failed=$(($(count failed) + $(count errors?)))
skipped=$(($(count skipped) + $(count xfailed)))
if ((rc == 124 || rc == 137)); then
	echo "# pytest still running after ${PYTEST_TIMEOUT:-900} s: interrupted"
	failed=$((failed + 1))
elif [[ -z "$summary" ]]; then
	echo "# pytest ended without its summary line (exit $rc)"
	failed=$((failed + 1))
elif ((rc != 0 && failed == 0)); then
	echo "# pytest failed (exit $rc) without a failing test"
	failed=$((failed + 1))
fi
echo "python: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
