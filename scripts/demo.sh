#!/usr/bin/env bash
# The main job on bundled demo inputs (fixtures/demo): make a signing key, sign the OS and ESP
# tarballs with upstream-style trusted comments, build a verified image, then show it.
# The slot's /squashfs is a small real SquashFS (fixtures/demo/make-squashfs.sh made it), so show
# prints the OS and packages lists it. DEMO_OUT (default demo/), DEMO_SKIP_SETUP=1 and DISKIMG_CLI
# (a command line) are for test/demo-user.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${DEMO_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh
out=${DEMO_OUT:-demo}
rm -rf "$out" && mkdir -p "$out"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1764374400}
version=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d-%H%M%S 2>/dev/null || date -u -r "$SOURCE_DATE_EPOCH" +%Y%m%d-%H%M%S)
tar -C fixtures/demo/os -cf "$out/psyopsOS.tar" .
tar -C fixtures/demo/esp -cf "$out/psyopsESP.tar" .
read -r -a cli <<<"${DISKIMG_CLI:-node packages/cli/bin/diskimg.js}"
diskimg() { "${cli[@]}" "$@"; }
diskimg keygen --out "$out/demo"
diskimg sign "$out/psyopsOS.tar" --seckey "$out/demo.key" \
  --trusted type=psyopsOS filename=psyopsOS.x86_64.$version.tar version=$version kernel=demo alpine=3.20 architecture=x86_64
diskimg sign "$out/psyopsESP.tar" --seckey "$out/demo.key" \
  --trusted type=psyopsESP filename=psyopsESP.x86_64-uefi.$version.tar version=$version
diskimg create "$out/demo.img" --os-tar "$out/psyopsOS.tar" --esp-tar "$out/psyopsESP.tar" \
  --secret-dir fixtures/demo/secret --pubkey "$out/demo.pub" --seed demo
diskimg show "$out/demo.img"
diskimg ls "$out/demo.img" psyopsOS-A:/
diskimg ls "$out/demo.img" 'psyopsOS-A:/squashfs!/etc'
diskimg packages "$out/demo.img" a
