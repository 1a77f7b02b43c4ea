#!/usr/bin/env bash
# Installs the workspace's packages with the pinned pnpm (scripts/pnpm.sh) and builds.
# Needs only Node.js 20 + npm; works as root or as any user (no global install, no PATH change).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/pnpm.sh install --frozen-lockfile --reporter=silent
bash scripts/pnpm.sh run --silent build
