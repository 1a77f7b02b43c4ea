#!/usr/bin/env bash
# Runs the pinned pnpm with the given arguments, for any user, with nothing on PATH but Node.js
# and npm: the pnpm on PATH when it is exactly that version, else a copy npm installs once into
# .cache/pnpm-VERSION of this repository (no global install, no PATH or profile change; install
# scripts are not run: pnpm's launcher finds its platform binary without them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
want=12.4.2
if [ "$(pnpm --version 2>/dev/null || true)" = "$want" ]; then exec pnpm "$@"; fi
dir="$root/.cache/pnpm-$want"
if [ ! -x "$dir/node_modules/.bin/pnpm" ]; then
  echo "setup: installing pnpm $want into ${dir#"$root"/} (npm)" >&2
  npm install --prefix "$dir" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    --no-update-notifier --loglevel=error "pnpm@$want" >&2
fi
exec "$dir/node_modules/.bin/pnpm" "$@"
