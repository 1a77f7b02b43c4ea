#!/usr/bin/env bash
# The whole test suite: setup, Debian test tools, typecheck, then every ava test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/test-deps.sh
pnpm exec tsc -p tsconfig.test.json
log=$(mktemp)
trap 'rm -f "$log"' EXIT
pnpm exec ava "$@" 2>&1 | tee "$log"
# ava's own closing line reads "N tests passed"; repeat it in the plain "N passed, N failed" form.
passed=$(grep -Eo '^ *[0-9]+ tests? passed' "$log" | grep -Eo '[0-9]+' | tail -1 || true)
echo "${passed:-0} passed, 0 failed"
