/**
 * The release version built into the one-file CLI (dist/diskimg.mjs) by scripts/bundle.mjs, on the
 * line after the shebang:
 *
 *   #!/usr/bin/env node
 *   // diskimg-release: 20261130-163800
 *
 * It orders like every other release version (YYYYMMDD-HHMMSS, the commit's time unless
 * SOURCE_DATE_EPOCH or DISKIMG_RELEASE says otherwise), so `publish --bundle` can name the file
 * and `self-update` can tell newer from older without running anything.
 */
import { open } from 'node:fs/promises';

export const BUNDLE_RELEASE_MARK = '// diskimg-release: ';
/** The shebang and the marker line fit in this many bytes. */
const HEAD_BYTES = 256;
const RE = /^#![^\n]{0,128}\n\/\/ diskimg-release: ([A-Za-z0-9][A-Za-z0-9_+-]{0,63})\n/;

/** The release line for scripts/bundle.mjs's banner. */
export function bundleReleaseLine(version: string): string {
  return `${BUNDLE_RELEASE_MARK}${version}`;
}

/** The release version in the first bytes of `head`; undefined when it is not a bundle's head. */
export function parseBundleRelease(head: Uint8Array): string | undefined {
  return RE.exec(Buffer.from(head.subarray(0, HEAD_BYTES)).toString('latin1'))?.[1];
}

/** The release version of the bundle at `path`; undefined when the file is not a bundle (or has none). */
export async function readBundleRelease(path: string): Promise<string | undefined> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
    return parseBundleRelease(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}
