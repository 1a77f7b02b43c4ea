/**
 * Hostile tarballs (test/helpers/hostile-tar.ts) through every writer: `create --no-verify` (OS
 * tarball → ext4, ESP tarball → FAT), `update` with a genuine signature of ANOTHER file (the
 * parse happens before the signature can fail), `update --no-verify` and `update-esp` (signed
 * by another file's signature, and --no-verify). Each run is bounded: a timeout (the process
 * group is killed) and its peak RSS from `/usr/bin/time -f %M`. A refusal is one line on stderr
 * (no stack, no "internal error"), exit 1, and the booted slot, the ESP (boot state: grub.cfg,
 * grubenv) and the GPT are byte-identical; what is accepted passes e2fsck -fn / fsck.fat -n.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digests, espFile, extract, GRUBENV_B_STAGED, grubenvText } from './helpers/update.js';
import { BOOT_FILES, hostileTars, tar } from './helpers/hostile-tar.js';
import { needTools } from './helpers/skip.js';
import { runCliBounded, type BoundedResult } from './helpers/bounded-cli.js';

const work = mkdtempSync(join(tmpdir(), 'hostile-tar-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'hostile'];
const V1 = '20251129-000000';
const V2 = '20251201-000000';
const TIMEOUT_MS = Number(process.env.HOSTILE_TAR_TIMEOUT_MS ?? 90_000);
/** Peak RSS bound (KiB): node + tsx start near 100 MiB; an expanded hole or a drained 1 TiB would not fit. */
const MAX_RSS_KIB = 400 * 1024;


function sparseCopy(from: string, to: string): string {
  const r = spawnSync('cp', ['--sparse=always', from, to]);
  if (r.status !== 0) throw new Error(`cp ${from}: ${r.stderr}`);
  return to;
}

let key: { pub: string; sec: string };
let base: string;
let goodOs: string;
let goodEsp: string;
let otherOsSig: string;
let otherEspSig: string;

async function ok(args: string[]): Promise<void> {
  const r = await runCliBounded(args, { timeoutMs: TIMEOUT_MS, env: ENV });
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
}

test.before(async () => {
  await ok(['keygen', '--out', join(work, 'k')]);
  key = { pub: join(work, 'k.pub'), sec: join(work, 'k.key') };
  goodOs = join(work, 'good-os.tar');
  writeFileSync(goodOs, tar(BOOT_FILES));
  goodEsp = join(work, 'good-esp.tar');
  writeFileSync(goodEsp, tar(BOOT_FILES));
  const sign = (file: string, sig: string, type: string, version: string, filename: string) =>
    ok(['sign', file, '--seckey', key.sec, '--sig', sig, '--trusted', `type=${type}`, `filename=${filename}`, `version=${version}`, 'architecture=x86_64']);
  await sign(goodOs, `${goodOs}.minisig`, 'psyopsOS', V1, `psyopsOS.x86_64.${V1}.tar`);
  await sign(goodEsp, `${goodEsp}.minisig`, 'psyopsESP', V1, `psyopsESP.x86_64-uefi.${V1}.tar`);
  // Genuine signatures of ANOTHER file (the good tarballs), newer versions: what a mirror can replay.
  otherOsSig = join(work, 'other-os.minisig');
  otherEspSig = join(work, 'other-esp.minisig');
  await sign(goodOs, otherOsSig, 'psyopsOS', V2, `psyopsOS.x86_64.${V2}.tar`);
  await sign(goodEsp, otherEspSig, 'psyopsESP', V2, `psyopsESP.x86_64-uefi.${V2}.tar`);
  base = join(work, 'base.img');
  await ok(['create', base, '--os-tar', goodOs, '--esp-tar', goodEsp, '--pubkey', key.pub, ...SMALL]);
});

/** What each writer must do with each archive: everything is refused but these. */
const ACCEPTED: Record<string, Array<'create-os' | 'update'>> = {
  // 40 files of 1 GiB holes and 512 bytes of data each: ext4 keeps the holes (never expanded)
  'sparse-holes': ['create-os', 'update'],
  // ext4 is case-sensitive: EFI/… and efi/… are two paths there
  'case-variants': ['create-os', 'update'],
};

type Kind = 'create-os' | 'create-esp' | 'update' | 'update-esp';

function checkRun(t: ExecutionContext, what: string, r: BoundedResult): void {
  t.false(r.timedOut, `${what}: still running after ${TIMEOUT_MS / 1000} s (killed)`);
  t.true(r.rssKiB !== undefined && r.rssKiB > 0 && r.rssKiB < MAX_RSS_KIB, `${what}: peak RSS ${r.rssKiB} KiB (bound ${MAX_RSS_KIB})`);
  t.log(`${what}: exit ${r.code}, ${r.ms} ms, ${Math.round((r.rssKiB ?? 0) / 1024)} MiB: ${r.stderr.split('\n').filter((l) => !/warning:/.test(l))[0] ?? ''}`.slice(0, 300));
}

function checkRefusal(t: ExecutionContext, what: string, r: BoundedResult): void {
  t.is(r.code, 1, `${what}: exit ${r.code}: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l && !/^diskimg: warning:/.test(l));
  t.is(lines.length, 1, `${what}: not one line:\n${r.stderr.slice(0, 2000)}`);
  t.regex(lines[0] ?? '', /^diskimg: /, what);
  t.notRegex(r.stderr, /internal error|RangeError|\n\s+at /, what);
}

function fsckExt4(t: ExecutionContext, img: string, label: string): void {
  const part = extract(img, label, work);
  try {
    const r = spawnSync('e2fsck', ['-fn', part], { encoding: 'utf8' });
    t.is(r.status, 0, `e2fsck -fn ${label}: ${r.stdout}${r.stderr}`);
  } finally {
    rmSync(part, { force: true });
  }
}

function fsckFat(t: ExecutionContext, img: string): void {
  const part = extract(img, 'PSYOPSOSEFI', work);
  try {
    const r = spawnSync('fsck.fat', ['-n', part], { encoding: 'utf8' });
    t.is(r.status, 0, `fsck.fat -n: ${r.stdout}${r.stderr}`);
  } finally {
    rmSync(part, { force: true });
  }
}

async function one(t: ExecutionContext, name: string, file: string, kind: Kind, args: string[], label: string): Promise<void> {
  const what = `${name}: ${label}`;
  if (kind === 'create-os' || kind === 'create-esp') {
    const out = join(work, `${name}-${kind}.img`);
    const r = await runCliBounded(['create', out, ...args, ...SMALL, '--force'], { timeoutMs: TIMEOUT_MS, env: ENV });
    checkRun(t, what, r);
    if ((ACCEPTED[name] ?? []).includes(kind as 'create-os')) {
      t.is(r.code, 0, `${what}: ${r.stderr}`);
      fsckExt4(t, out, 'psyopsOS-A');
      fsckExt4(t, out, 'psyopsOS-B');
      fsckFat(t, out);
    } else checkRefusal(t, what, r);
    rmSync(out, { force: true });
    return;
  }
  const img = sparseCopy(base, join(work, `${name}-${label.replace(/\W+/g, '_')}.img`));
  const before = digests(img, ['p4']); // p4 = psyopsOS-B, the update's target; the rest must not move on a refusal
  const cfgBefore = espFile(img, '/grub/grub.cfg');
  const r = await runCliBounded([kind, img, ...args], { timeoutMs: TIMEOUT_MS, env: ENV });
  checkRun(t, what, r);
  if (kind === 'update' && (ACCEPTED[name] ?? []).includes('update') && args.includes('--no-verify')) {
    t.is(r.code, 0, `${what}: ${r.stderr}`);
    fsckExt4(t, img, 'psyopsOS-B');
  } else {
    // Signed by another file's signature: refused, at the latest when the signature fails.
    checkRefusal(t, what, r);
    const now = digests(img, ['p4']);
    t.deepEqual({ ...now, p1: '' }, { ...before, p1: '' }, `${what}: the booted slot or the GPT changed`);
    // Refused after B's first byte: the ESP's one change is grubenv marking B (update marks it first).
    if (kind === 'update' && now.p1 !== before.p1) {
      t.deepEqual(espFile(img, '/grub/grub.cfg'), cfgBefore, `${what}: grub.cfg changed`);
      t.is(grubenvText(img), GRUBENV_B_STAGED, `${what}: the ESP changed beyond marking B`);
    } else t.is(now.p1, before.p1, `${what}: the ESP changed`);
  }
  rmSync(img, { force: true });
}

for (const [name, data] of Object.entries(hostileTars())) {
  test(`${name}: create, update (signed by another file, and --no-verify) and update-esp answer in bounded time and memory, one line on refusal, nothing changed`, async (t) => {
    if (!needTools(t, 'sfdisk', 'e2fsck', 'fsck.fat', 'dd')) return;
    const file = join(work, `${name}.tar`);
    writeFileSync(file, data);
    const runs: Array<[Kind, string[], string]> = [
      ['create-os', ['--os-tar', file, '--esp-tar', goodEsp, '--no-verify'], 'create --os-tar --no-verify'],
      ['create-esp', ['--os-tar', goodOs, '--esp-tar', file, '--no-verify'], 'create --esp-tar --no-verify'],
      ['update', ['--slot', 'inactive', '--os-tar', file, '--os-sig', otherOsSig, '--pubkey', key.pub], 'update (signature of another file)'],
      ['update', ['--slot', 'inactive', '--os-tar', file, '--no-verify', '--allow-downgrade'], 'update --no-verify'],
      ['update-esp', ['--esp-tar', file, '--esp-sig', otherEspSig, '--pubkey', key.pub], 'update-esp (signature of another file)'],
      ['update-esp', ['--esp-tar', file, '--no-verify'], 'update-esp --no-verify'],
    ];
    for (const [kind, args, label] of runs) await one(t, name, file, kind, args, label);
  });
}
