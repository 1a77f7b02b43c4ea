#!/usr/bin/env bash
# Mutation check (not in CI: slow): applies realistic one-line bugs to a scratch copy of the
# committed tree one at a time and runs the fast tests of each area; reports caught/missed.
#   bash scripts/mutants.sh              all mutants
#   bash scripts/mutants.sh gpt fat      by area (gpt fat ext4 minisign grub tar update bootState) or mutant id
#   bash scripts/mutants.sh --list
# Exit 1 when any mutant is missed (or stale). Run it before resolving an issue that touches a format.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node scripts/mutants.mjs "$@"
