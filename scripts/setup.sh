#!/usr/bin/env bash
# Installs pnpm (pinned), the workspace's packages, and builds. Needs only Node.js 20 + npm.
set -euo pipefail
cd "$(dirname "$0")/.."
want=12.4.2
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$want" ]; then
  npm install -g "pnpm@$want" >/dev/null 2>&1 || npm install --prefix "$HOME/.local" -g "pnpm@$want" >/dev/null
  export PATH="$HOME/.local/bin:$PATH"
fi
pnpm install --frozen-lockfile --reporter=silent
pnpm run --silent build
