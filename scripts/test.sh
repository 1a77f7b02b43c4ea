#!/usr/bin/env bash
# The whole test suite: setup, Debian test tools, typecheck, then every ava test.
# Ends with ava's real counts as "N passed, N failed[, N skipped]" and ava's exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/test-deps.sh
bash scripts/pnpm.sh exec tsc -p tsconfig.test.json
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# TAP: ava's own totals ("# pass N", "# skip N", "# fail N") are exact, failures included.
set +e
bash scripts/pnpm.sh exec ava --tap "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
bash scripts/ava-summary.sh "$log" "$rc"
exit "$rc"
