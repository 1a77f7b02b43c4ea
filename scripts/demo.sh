#!/usr/bin/env bash
# The main job on bundled demo inputs: build an image, then show it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p demo
pnpm exec diskimg create demo/demo.img --seed demo
pnpm exec diskimg show demo/demo.img
