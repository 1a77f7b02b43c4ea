#!/usr/bin/env bash
# The whole test suite: setup, Debian test tools, then every ava test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/test-deps.sh
pnpm exec tsc -p tsconfig.test.json
pnpm exec ava "$@"
