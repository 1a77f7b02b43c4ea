/**
 * A small `diskimg create` image (library buildImage) whose slots hold different signed OS
 * versions: slot A the fixture OS A signed as `versionA`, slot B the fixture OS B signed as
 * `versionB` (B's partition copied from a second image of the same layout, as `diskimg update`
 * will write it in place). Used by the boot-state API, crash and QEMU story tests.
 */
import { closeSync, copyFileSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, encodePublicKey, generateKeyPair, signFile } from '../../packages/ab/src/index.js';
import { openDisk } from '../../packages/diskimage/src/index.js';
import { PSYOPS_NAMES } from '../../packages/partitions/src/index.js';

export const VERSION_A = '20261101-000000';
export const VERSION_B = '20261201-000000';
const SIZES = { espSize: '40M', secretSize: '8M', slotSize: '48M' };

async function signedCopy(dir: string, tar: string, name: string, version: string, sk: ReturnType<typeof generateKeyPair>['secretKey']): Promise<string> {
  const copy = join(dir, name);
  copyFileSync(tar, copy);
  const tc = `type=psyopsOS filename=psyopsOS.x86_64.${version}.tar version=${version} kernel=6.1 alpine=3.20 architecture=x86_64`;
  writeFileSync(`${copy}.minisig`, await signFile(copy, sk, tc));
  return copy;
}

/** Copy partition `label`'s bytes from image `from` into image `to` (same layout). */
async function copyPartition(from: string, to: string, label: string): Promise<void> {
  const disk = await openDisk(from);
  const p = disk.partitions.find((x) => x.name === label)!;
  await disk.close();
  const src = openSync(from, 'r');
  const dst = openSync(to, 'r+');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let off = 0; off < p.size; off += buf.length) {
      const n = readSync(src, buf, 0, Math.min(buf.length, p.size - off), p.offset + off);
      writeSync(dst, buf, 0, n, p.offset + off);
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

/** Build DIR/NAME: slot A = osTarA as VERSION_A (the default), slot B = osTarB as VERSION_B. */
export async function buildAbImage(dir: string, name: string, f: { osTarA: string; osTarB: string; espTar: string }): Promise<string> {
  const { secretKey, publicKey } = generateKeyPair();
  const osA = await signedCopy(dir, f.osTarA, 'osA.tar', VERSION_A, secretKey);
  const osB = await signedCopy(dir, f.osTarB, 'osB.tar', VERSION_B, secretKey);
  const img = join(dir, name);
  const tmpB = join(dir, `${name}.b`);
  // Verified slots (a --no-verify slot has no version: policy.ts); the fixture ESP is unsigned.
  const pubkey = join(dir, `${name}.pub`);
  writeFileSync(pubkey, encodePublicKey(publicKey));
  const common = { espTar: f.espTar, pubkey, noVerifyEsp: true, seed: 'ab-image', ...SIZES };
  const prev = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = '1764374400';
  try {
    await buildImage({ output: img, osTar: osA, ...common });
    await buildImage({ output: tmpB, osTar: osB, ...common });
  } finally {
    if (prev === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = prev;
  }
  await copyPartition(tmpB, img, PSYOPS_NAMES.b);
  rmSync(tmpB);
  return img;
}
