#!/usr/bin/env bash
# ava-summary.sh LOG RC: the closing line of scripts/test.sh from ava's TAP output in LOG and its
# exit status RC: "N passed, N failed" (", N skipped" when any), alone on a line. The counts are
# ava's own totals; when ava stopped before printing them, the results it did report are counted,
# and a non-zero RC with no failure reported counts as one failure (said on stderr).
set -euo pipefail
log=$1 rc=$2
count() { grep -E "^# $1 [0-9]+$" "$log" | tail -1 | grep -Eo '[0-9]+' || true; }
passed=$(count pass) failed=$(count fail) skipped=$(count skip)
if [ -z "$passed" ] && [ -z "$failed" ]; then
  passed=$(grep -Ec '^ok [0-9]+ ' "$log" || true)
  failed=$(grep -Ec '^not ok [0-9]+ ' "$log" || true)
  skipped=$(grep -Ec '^ok [0-9]+ .*# SKIP' "$log" || true)
  passed=$((passed - skipped))
  [ "$skipped" -eq 0 ] && skipped=
  echo "test.sh: ava exited with status $rc before reporting its totals; counted the results it reported" >&2
fi
passed=${passed:-0} failed=${failed:-0}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "test.sh: ava exited with status $rc but reported no failed test; counting it as one failure" >&2
  failed=1
fi
echo "${passed} passed, ${failed} failed${skipped:+, ${skipped} skipped}"
