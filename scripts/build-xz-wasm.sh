#!/usr/bin/env bash
# Builds liblzma's .xz DECODER (LZMA1/LZMA2, delta, BCJ x86/PowerPC/IA-64/ARM/ARM-Thumb/ARM64/SPARC;
# checks CRC32/CRC64/SHA-256) from Debian's xz-utils source with Debian's emscripten into a
# standalone wasm with no imports (packages/diskimage/src/compress/xz-shim.c is the whole API), and
# writes it base64-embedded to packages/diskimage/src/compress/xz-wasm.generated.ts, with the
# versions and the wasm's sha256 in its header comment. CI does not run this (emscripten is big);
# test/xz.test.ts checks the committed sha256 and, where emcc is installed, that a rebuild is
# byte-identical.
#
#   scripts/build-xz-wasm.sh [--out FILE.ts] [--wasm FILE.wasm] [--src DIR]
#
# --src DIR: a directory holding the Debian source package files (.dsc, .orig.tar.xz,
# .debian.tar.xz) instead of fetching them. Fetching tries `apt-get source` (needs a deb-src entry
# for bookworm), then the Debian pool, then snapshot.debian.org; the tarballs' sha256 are pinned.
#
# Needs (Debian 12): apt-get install emscripten dpkg-dev (emscripten 3.1.6~dfsg-5: clang-14, lld-14,
# binaryen 108, node-acorn). Takes ~10 minutes on 2 cores (configure runs emcc for every probe).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/packages/diskimage/src/compress/xz-wasm.generated.ts"
WASM_OUT=""
SRC=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$(realpath -m "$2")"; shift 2 ;;
    --wasm) WASM_OUT="$(realpath -m "$2")"; shift 2 ;;
    --src) SRC="$(realpath "$2")"; shift 2 ;;
    *) echo "build-xz-wasm: unknown argument $1 (usage: $0 [--out FILE.ts] [--wasm FILE.wasm] [--src DIR])" >&2; exit 2 ;;
  esac
done

# The pinned source: Debian 12 (bookworm) xz-utils.
XZ_DEB_VERSION=5.4.1-1+deb12u1
XZ_UPSTREAM=5.4.1
ORIG=xz-utils_${XZ_UPSTREAM}.orig.tar.xz
DEBTAR=xz-utils_${XZ_DEB_VERSION}.debian.tar.xz
DSC=xz-utils_${XZ_DEB_VERSION}.dsc
ORIG_SHA256=5d9827aa1875b21c288f78864bb26d2650b436ea8d2cad364e4921eb6266a5a5
DEBTAR_SHA256=3e162db2b76480c7e157f4c2f6ff9a426fc023f262d4dc3287530b36e2843ebe

for c in emcc emconfigure emmake dpkg-source; do
  command -v "$c" >/dev/null || { echo "build-xz-wasm: $c not found: apt-get install emscripten dpkg-dev" >&2; exit 1; }
done

WORK="$(mktemp -d /tmp/build-xz-wasm.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

if [ -n "$SRC" ]; then
  cp "$SRC/$DSC" "$SRC/$ORIG" "$SRC/$DEBTAR" .
elif ! apt-get source --download-only "xz-utils=$XZ_DEB_VERSION" >/dev/null 2>&1; then
  echo "build-xz-wasm: apt-get source failed (no deb-src entry?); fetching from the Debian archive" >&2
  got=""
  for base in https://deb.debian.org/debian/pool/main/x/xz-utils \
      "https://snapshot.debian.org/archive/debian/20250520T000000Z/pool/main/x/xz-utils"; do
    if curl -fsSLO "$base/$DSC" && curl -fsSLO "$base/$ORIG" && curl -fsSLO "$base/$DEBTAR"; then got=1; break; fi
  done
  [ -n "$got" ] || { echo "build-xz-wasm: cannot fetch xz-utils $XZ_DEB_VERSION source (give --src DIR)" >&2; exit 1; }
fi
echo "$ORIG_SHA256  $ORIG" | sha256sum -c --quiet
echo "$DEBTAR_SHA256  $DEBTAR" | sha256sum -c --quiet
dpkg-source --no-check -x "$DSC" xz >/dev/null

# Reproducible: the time is the Debian changelog's, no path reaches the output (no debug info,
# NDEBUG), Debian's prebuilt emscripten system libraries (FROZEN_CACHE) are used.
SOURCE_DATE_EPOCH="$(cd xz && dpkg-parsechangelog -STimestamp)"
export SOURCE_DATE_EPOCH LC_ALL=C TZ=UTC
# Debian's emcc runs its JS optimizer (configure probes link to JS) with Debian's node-acorn.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
export EMCC_SKIP_SANITY_CHECK=1

CFLAGS="-Oz -ffile-prefix-map=$WORK=."
CONFIGURE_FLAGS=(
  --host=wasm32-unknown-emscripten
  --disable-encoders --enable-decoders=lzma1,lzma2,delta,x86,powerpc,ia64,arm,armthumb,arm64,sparc
  --enable-checks=crc32,crc64,sha256
  --disable-threads --disable-xz --disable-xzdec --disable-lzmadec --disable-lzmainfo
  --disable-lzma-links --disable-scripts --disable-doc --disable-shared --enable-static --disable-nls
  --disable-microlzma --disable-lzip-decoder --disable-assembler --disable-clmul-crc --disable-sandbox
  --disable-dependency-tracking
)
LINK_FLAGS=(
  -Oz --no-entry -sSTANDALONE_WASM -sALLOW_MEMORY_GROWTH -sMALLOC=emmalloc -sTOTAL_STACK=65536
  -sINITIAL_MEMORY=1MB -sMAXIMUM_MEMORY=256MB -sFILESYSTEM=0 -mbulk-memory
)
(cd xz && emconfigure ./configure "${CONFIGURE_FLAGS[@]}" CFLAGS="$CFLAGS" >"$WORK/configure.log" 2>&1) \
  || { tail -30 "$WORK/configure.log" >&2; exit 1; }
(cd xz && emmake make -j"$(nproc)" -C src/liblzma liblzma.la >"$WORK/make.log" 2>&1) || { tail -30 "$WORK/make.log" >&2; exit 1; }
cp "$ROOT/packages/diskimage/src/compress/xz-shim.c" shim.c
emcc $CFLAGS -I xz/src/liblzma/api shim.c xz/src/liblzma/.libs/liblzma.a "${LINK_FLAGS[@]}" -o xz.wasm

# No imports: the loader passes none.
node -e 'const m = new WebAssembly.Module(require("fs").readFileSync(process.argv[1])); const i = WebAssembly.Module.imports(m); if (i.length) { console.error("build-xz-wasm: the wasm imports", JSON.stringify(i)); process.exit(1); }' xz.wasm

SHA="$(sha256sum xz.wasm | cut -d' ' -f1)"
SIZE="$(stat -c %s xz.wasm)"
vers() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
EMCC_VERSION="$(emcc --version 2>/dev/null | sed -n 1p)"
{
  echo "// GENERATED by scripts/build-xz-wasm.sh; do not edit. Rebuild: bash scripts/build-xz-wasm.sh"
  echo "// liblzma decoder (xz-shim.c) as standalone wasm, no imports."
  echo "// xz-utils: Debian source $XZ_DEB_VERSION ($ORIG sha256 $ORIG_SHA256, $DEBTAR sha256 $DEBTAR_SHA256)"
  echo "// emscripten: Debian $(vers emscripten) ($EMCC_VERSION); clang-14 $(vers clang-14), lld-14 $(vers lld-14), binaryen $(vers binaryen)"
  echo "// configure: ${CONFIGURE_FLAGS[*]} CFLAGS=\"-Oz -ffile-prefix-map=BUILDDIR=.\""
  echo "// link: ${LINK_FLAGS[*]}"
  echo "// SOURCE_DATE_EPOCH: $SOURCE_DATE_EPOCH"
  echo "// wasm: $SIZE bytes, sha256 $SHA"
  echo "export const XZ_WASM_SHA256 = '$SHA';"
  echo "export const XZ_WASM_BASE64 ="
  echo "  '$(base64 -w0 xz.wasm)';"
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
[ -z "$WASM_OUT" ] || cp xz.wasm "$WASM_OUT"
echo "build-xz-wasm: $OUT: wasm $SIZE bytes, sha256 $SHA" >&2
