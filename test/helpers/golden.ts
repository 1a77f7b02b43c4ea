/**
 * Golden images (issue 15): the committed inputs in fixtures/golden/, the image kinds built from
 * them with the CLI, their digests (whole image, GPT areas, each partition) and the manifest
 * fixtures/golden/manifest.json that pins them. Used by test/golden.test.ts, test/diff.test.ts
 * and scripts/golden-update.ts.
 *
 * The tarballs are made here, deterministically, with tar-stream: entries sorted by name, mode
 * 0755 for directories and executables, 0644 for other files, 0777 symlinks, uid/gid 0, mtime
 * SOURCE_DATE_EPOCH (so neither the checkout's umask nor its file times matter). They are signed
 * with the committed test-only key (Ed25519 signatures are deterministic).
 *
 * Known-good images are kept (sparse) in .cache/golden/<image sha256>.img, so a mismatch can be
 * explained with diffDisks(expected, actual) when the expected image was built on this machine
 * before (by a passing golden test or by `pnpm golden:update`).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as tarStream from 'tar-stream';
import { readSecretKeyFile, signFile } from '../../packages/ab/src/index.js';
import { openDisk } from '../../packages/diskimage/src/index.js';
import { repoRoot, runCli } from './cli.js';

export const GOLDEN_DIR = join(repoRoot, 'fixtures', 'golden');
export const MANIFEST_PATH = join(GOLDEN_DIR, 'manifest.json');
export const CACHE_DIR = join(repoRoot, '.cache', 'golden');
export const SOURCE_DATE_EPOCH = '1764374400'; // 2025-11-29T00:00:00Z
export const SEED = 'golden';
export const VERSION_1 = '20251101-000000';
export const VERSION_2 = '20251201-000000';
export const PUBKEY = join(GOLDEN_DIR, 'key', 'golden-test-only.pub');
export const SECKEY = join(GOLDEN_DIR, 'key', 'golden-test-only.key');

/** Small sizes keep a build to about a second; 4096-byte sectors need a 260M ESP for FAT32. */
export const SIZES = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M'];

/** Build a deterministic ustar tarball of `dir` (see the file comment). */
export async function tarTree(dir: string, out: string): Promise<void> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => void chunks.push(c));
  const done = new Promise<void>((res, rej) => {
    pack.on('end', () => res());
    pack.on('error', rej);
  });
  const mtime = new Date(Number(SOURCE_DATE_EPOCH) * 1000);
  const add = (h: tarStream.Headers, body?: Buffer) =>
    new Promise<void>((res, rej) => pack.entry({ mtime, uid: 0, gid: 0, uname: 'root', gname: 'root', ...h }, body, (e) => (e ? rej(e) : res())));
  const walk = async (rel: string): Promise<void> => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r));
      if (st.isSymbolicLink()) await add({ name: r, type: 'symlink', mode: 0o777, linkname: readlinkSync(join(dir, r)) });
      else if (st.isDirectory()) {
        await add({ name: `${r}/`, type: 'directory', mode: 0o755 });
        await walk(r);
      } else await add({ name: r, type: 'file', mode: st.mode & 0o100 ? 0o755 : 0o644 }, readFileSync(join(dir, r)));
    }
  };
  await walk('');
  pack.finalize();
  await done;
  writeFileSync(out, Buffer.concat(chunks));
}

export interface GoldenInputs {
  dir: string;
  osV1: string;
  osV2: string;
  esp: string;
  espV2: string;
  secret: string;
}

export const osComment = (v: string) => `type=psyopsOS filename=psyopsOS.x86_64.${v}.tar version=${v} kernel=golden alpine=3.20 architecture=x86_64`;

/** Make the signed tarballs in `dir` from fixtures/golden/. */
export async function makeGoldenInputs(dir: string): Promise<GoldenInputs> {
  mkdirSync(dir, { recursive: true });
  const sk = await readSecretKeyFile(SECKEY);
  const one = async (tree: string, name: string, comment?: string) => {
    const out = join(dir, name);
    await tarTree(join(GOLDEN_DIR, tree), out);
    if (comment) writeFileSync(`${out}.minisig`, await signFile(out, sk, comment));
    return out;
  };
  return {
    dir,
    osV1: await one('os-v1', 'psyopsOS-v1.tar', osComment(VERSION_1)),
    osV2: await one('os-v2', 'psyopsOS-v2.tar', osComment(VERSION_2)),
    esp: await one('esp', 'psyopsESP.tar', `type=psyopsESP filename=psyopsESP.x86_64-uefi.${VERSION_1}.tar version=${VERSION_1}`),
    espV2: await one('esp-v2', 'psyopsESP-v2.tar', `type=psyopsESP filename=psyopsESP.x86_64-uefi.${VERSION_2}.tar version=${VERSION_2}`),
    secret: await one('secret', 'secret.tar'),
  };
}

export interface GoldenKind {
  name: string;
  what: string;
  /** Start from a copy of this kind's image instead of creating one. */
  base?: string;
  /** CLI argument lists run in order; IMG is the image being built. */
  steps: (img: string, i: GoldenInputs) => string[][];
}

const create = (img: string, i: GoldenInputs, sizes = SIZES, extra: string[] = []) => [
  'create', img, '--os-tar', i.osV1, '--esp-tar', i.esp, '--secret-tar', i.secret, '--pubkey', PUBKEY, ...sizes, '--seed', SEED, ...extra,
];
/** The same with a 260M ESP (an option given twice is an array to yargs: never repeat one). */
const SIZES_4K = ['--esp-size', '260M', ...SIZES.slice(2)];

export const GOLDEN_KINDS: GoldenKind[] = [
  { name: 'default-512', what: 'create, 512-byte sectors', steps: (img, i) => [create(img, i)] },
  { name: 'sector-4096', what: 'create, 4096-byte sectors (260M ESP)', steps: (img, i) => [create(img, i, SIZES_4K, ['--sector-size', '4096'])] },
  { name: 'layout-only', what: 'create --layout-only', steps: (img) => [['create', img, '--layout-only', ...SIZES, '--seed', SEED]] },
  {
    name: 'update-b',
    what: 'default-512, then update slot B with OS v2 (booted psyopsOS-A; arms a trial of B)',
    base: 'default-512',
    steps: (img, i) => [['update', img, '--slot', 'b', '--os-tar', i.osV2, '--pubkey', PUBKEY, '--booted-label', 'psyopsOS-A']],
  },
  { name: 'set-default-b', what: 'default-512, then set-default b', base: 'default-512', steps: (img) => [['set-default', img, 'b']] },
  { name: 'set-next-b', what: 'default-512, then set-next b --tries 3', base: 'default-512', steps: (img) => [['set-next', img, 'b', '--tries', '3']] },
  {
    name: 'update-esp',
    what: 'default-512, then update-esp with ESP v2 (a changed and an added EFI program)',
    base: 'default-512',
    steps: (img, i) => [['update-esp', img, '--esp-tar', i.espV2, '--pubkey', PUBKEY]],
  },
];

export interface GoldenDigests {
  size: number;
  sectorSize: number;
  image: string;
  /** The sectors outside the usable area: protective MBR, both headers and entry arrays. */
  gpt: string;
  /** GPT partition name → sha256 of the partition's bytes. */
  partitions: Record<string, string>;
}

export interface Manifest {
  comment: string;
  sourceDateEpoch: string;
  seed: string;
  kinds: Record<string, GoldenDigests & { what: string; commands: string[] }>;
}

async function hashRanges(path: string, ranges: [number, number][]): Promise<string> {
  const h = createHash('sha256');
  for (const [start, end] of ranges) {
    if (end <= start) continue;
    for await (const c of createReadStream(path, { start, end: end - 1, highWaterMark: 1 << 20 })) h.update(c as Buffer);
  }
  return h.digest('hex');
}

export async function digestImage(img: string): Promise<GoldenDigests> {
  const disk = await openDisk(img);
  try {
    const ss = disk.table.sectorSize;
    const size = disk.device.size;
    const partitions: Record<string, string> = {};
    for (const p of disk.partitions) partitions[p.name || `#${p.number}`] = await hashRanges(img, [[p.offset, p.offset + p.size]]);
    return {
      size,
      sectorSize: ss,
      image: await hashRanges(img, [[0, size]]),
      gpt: await hashRanges(img, [
        [0, disk.table.header.firstUsableLba * ss],
        [(disk.table.header.lastUsableLba + 1) * ss, size],
      ]),
      partitions,
    };
  } finally {
    await disk.close();
  }
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** A sparse copy (cp --sparse=always), so 300 MiB images cost what they hold. */
export function sparseCopy(from: string, to: string): void {
  sh('cp', ['--sparse=always', from, to]);
}

/** Run one diskimg command with the golden environment; throws with its stderr on failure. */
export async function diskimg(args: string[]): Promise<string> {
  const r = await runCli(args, { env: { SOURCE_DATE_EPOCH } });
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The commands of a kind, with paths shown relative to the repository (for the manifest). */
export function commandLines(k: GoldenKind, i: GoldenInputs): string[] {
  const show = (a: string) => (a.startsWith(i.dir) ? `$INPUTS/${relative(i.dir, a)}` : a.startsWith(repoRoot) ? relative(repoRoot, a) : a);
  const lines = k.steps('IMG', i).map((s) => `diskimg ${s.map(show).join(' ')}`);
  return k.base ? [`cp ${k.base}.img IMG`, ...lines] : lines;
}

/** Build every kind into `outDir/<kind>.img` (bases first). */
export async function buildGoldenImages(outDir: string, inputs: GoldenInputs, only?: string[]): Promise<Record<string, string>> {
  mkdirSync(outDir, { recursive: true });
  const built: Record<string, string> = {};
  const want = new Set(only ?? GOLDEN_KINDS.map((k) => k.name));
  for (const k of GOLDEN_KINDS) if (want.has(k.name) && k.base) want.add(k.base);
  for (const k of GOLDEN_KINDS) {
    if (!want.has(k.name)) continue;
    const img = join(outDir, `${k.name}.img`);
    rmSync(img, { force: true });
    if (k.base) sparseCopy(built[k.base]!, img);
    for (const s of k.steps(img, inputs)) await diskimg(s);
    built[k.name] = img;
  }
  return built;
}

export function readManifest(): Manifest | undefined {
  return existsSync(MANIFEST_PATH) ? (JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as Manifest) : undefined;
}

/** Which digests of `actual` differ from `expected` ("image", "gpt", partition names). */
export function digestMismatches(expected: GoldenDigests, actual: GoldenDigests): string[] {
  const out: string[] = [];
  if (expected.size !== actual.size) out.push(`size ${expected.size} -> ${actual.size}`);
  if (expected.image !== actual.image) out.push('image');
  if (expected.gpt !== actual.gpt) out.push('gpt');
  for (const n of new Set([...Object.keys(expected.partitions), ...Object.keys(actual.partitions)])) {
    if (expected.partitions[n] !== actual.partitions[n]) out.push(n);
  }
  return out;
}

export const cachedImage = (sha: string) => join(CACHE_DIR, `${sha}.img`);

/** Keep a known-good image in the cache (moved, not copied: `img` must be on the same filesystem). */
export function cacheImage(img: string, sha: string): void {
  mkdirSync(CACHE_DIR, { recursive: true });
  renameSync(img, cachedImage(sha));
}

/** Drop cached images the manifest no longer names. */
export function pruneCache(m: Manifest): void {
  if (!existsSync(CACHE_DIR)) return;
  const keep = new Set(Object.values(m.kinds).map((k) => `${k.image}.img`));
  for (const f of readdirSync(CACHE_DIR)) if (f.endsWith('.img') && !keep.has(f)) rmSync(join(CACHE_DIR, f), { force: true });
}
