#!/usr/bin/env bash
# Runs every benchmark under bench/ (pnpm bench). Each prints its own table with ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
pnpm run --silent build
pnpm run --silent bundle   # startup.bench.ts times the one-file bundle too
for b in bench/*.bench.ts; do
  [ -e "$b" ] || continue
  echo "# $b"
  node --import=tsx --conditions=source "$b"
done
