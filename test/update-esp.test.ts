/**
 * `diskimg update-esp` with real readers: a disk made by `create` from the boot fixtures, a trial of
 * B armed (so grub.cfg has the counting block and grubenv a trial), then the ESP payload replaced
 * from a signed tarball and from a repository served by nginx. mtools (mdir/mcopy) reads the
 * result, fsck.fat -n is clean, grub-script-check accepts grub.cfg, which keeps its default and
 * counting block, and grubenv is byte-identical. Refusals (wrong type, no BOOTX64.EFI, wrong key,
 * no room) leave the ESP byte-identical. Power cuts after sampled writes (FaultDevice) always leave
 * a bootable set and a volume fsck.fat accepts (lost clusters only). One QEMU boot after update-esp.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { updateEsp } from '../packages/ab/src/index.js';
import { FaultDevice, FileDevice, openDisk, PowerCut, Fat32Volume, findFilesystemPartition } from '../packages/diskimage/src/index.js';
import { CowDevice } from '../packages/diskimage/src/fat32/test-util.js';
import { parseGrubCfg } from '../packages/grubcfg/src/index.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { needTools, skipOrFail } from './helpers/skip.js';
import { getBootFixtures, skipReason } from './helpers/fixtures.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { bootImage, parseInitReport } from './helpers/qemu.js';
import { espFile, extract, have, partition, shaRange, tarDir } from './helpers/update.js';

const work = mkdtempSync(join(tmpdir(), 'update-esp-'));
const www = join(work, 'www');
const repo = join(www, 'repo');
mkdirSync(repo, { recursive: true });
const ENV = { SOURCE_DATE_EPOCH: '1764374400', http_proxy: '', HTTP_PROXY: '', no_proxy: '', NO_PROXY: '' };
const fixSkip = skipReason({ qemu: false });
const qemuSkip = skipReason();
const missing = ['mdir', 'mcopy', 'fsck.fat', 'grub-script-check', 'sfdisk', 'tar'].filter((c) => !have(c));
const skip = fixSkip ?? (missing.length ? `missing ${missing.join(', ')}` : undefined);
const closers: (() => Promise<void> | void)[] = [];
test.after.always(async () => {
  for (const c of closers.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
});
const cli = (args: string[]): Promise<CliResult> => runCli(args, { env: ENV });
async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r;
}
function skipped(t: ExecutionContext, why: string | undefined): boolean {
  if (!why) return false;
  skipOrFail(t, why, { tool: /nginx/i.test(why) ? 'nginx' : /qemu|ovmf|fixture|kernel/i.test(why) ? 'qemu' : 'tools' });
  return true;
}
const MT = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
const mdir = (img: string, path: string) => {
  const esp = partition(img, 'PSYOPSOSEFI');
  const r = spawnSync('mdir', ['-b', '-i', `${img}@@${esp.start}`, `::${path}`], { encoding: 'utf8', env: MT });
  return r.status === 0 ? r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/^::/, '')) : [];
};
/** fsck.fat -n on the ESP: problems other than those a cut may leave (lost clusters, free count). */
function fsckProblems(img: string, allowLost: boolean): string[] {
  const part = extract(img, 'PSYOPSOSEFI', work);
  try {
    const r = spawnSync('fsck.fat', ['-n', part], { encoding: 'utf8' });
    const lines = `${r.stdout}${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
    const info = /^fsck\.fat \d|: \d+ files, \d+\/\d+ clusters$|^Checking we can access|^Leaving filesystem unchanged/;
    const lost = /unused clusters|lost cluster|Reclaimed|Free cluster summary|Auto-correcting|Checking for unused clusters|^\d+\) |^Reclaim|^FATs differ|^Using first FAT|contains a free cluster|Set it to|really/i;
    const p = lines.filter((l) => !info.test(l) && !(allowLost && lost.test(l)));
    if (r.status !== 0 && !allowLost && p.length === 0) p.push(`exit ${r.status}`);
    return p;
  } finally {
    rmSync(part, { force: true });
  }
}

let key: { pub: string; sec: string };
let base: string; // create from the fixtures; trial of B armed
let esp1: string; // new payload: BOOTX64.EFI + tools/memtest.efi + manifest naming it
let esp2: string; // next payload: memtest dropped, tools/other.efi instead
let bootEfi: Buffer;
let nginx: Nginx | undefined;
let nginxSkip: string | undefined;

function payload(name: string, files: Record<string, Buffer | string>): string {
  const dir = join(work, name);
  for (const [p, d] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), d);
  }
  return tarDir(dir, join(work, `${name}.tar`));
}
async function signEsp(tar: string, version: string, type = 'psyopsESP'): Promise<string> {
  await ok(['sign', tar, '--seckey', key.sec, '--trusted', `type=${type}`, `filename=psyopsESP.x86_64-uefi.${version}.tar`, `version=${version}`]);
  return tar;
}

test.before(async () => {
  if (skip) return;
  const f = getBootFixtures();
  await ok(['keygen', '--out', join(work, 'k')]);
  key = { pub: join(work, 'k.pub'), sec: join(work, 'k.key') };
  bootEfi = readFileSync(join(f.espDir, 'EFI/BOOT/BOOTX64.EFI'));
  base = join(work, 'base.img');
  // A verified base (ESP 20251101-000000): update-esp orders releases against the ESP's own signature.
  const os0 = join(work, 'os0.tar');
  copyFileSync(f.osTarA, os0);
  await ok(['sign', os0, '--seckey', key.sec, '--trusted', 'type=psyopsOS', 'filename=psyopsOS.x86_64.20251101-000000.tar', 'version=20251101-000000']);
  const esp0 = join(work, 'esp0.tar');
  copyFileSync(f.espTar, esp0);
  await signEsp(esp0, '20251101-000000');
  await ok(['create', base, '--os-tar', os0, '--esp-tar', esp0, '--pubkey', key.pub, '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '48M', '--seed', 'esp']);
  await ok(['set-next', base, 'b']); // counting block + trial in grubenv: update-esp must keep both
  const memtest = randomBytes(700_000);
  esp1 = await signEsp(payload('esp1', { 'EFI/BOOT/BOOTX64.EFI': bootEfi, 'tools/memtest.efi': memtest, 'manifest.json': '{"extra_programs": {"/tools/memtest.efi": "memtest86+"}}\n' }), '20251201-000000');
  esp2 = payload('esp2', { 'EFI/BOOT/BOOTX64.EFI': bootEfi, 'tools/other.efi': randomBytes(300_000), 'manifest.json': '{"extra_programs": {"/tools/other.efi": "Other tool"}}\n' });
  await ok(['publish', '--repo', repo, '--esp-tar', esp2, '--seckey', key.sec, '--version', '20251215-000000']);
  const n = await startNginx(work, www);
  if (typeof n === 'string') nginxSkip = n;
  else {
    nginx = n;
    closers.push(() => n.stop());
  }
});

let imgN = 0;
function fresh(): string {
  const img = join(work, `d${imgN++}.img`);
  copyFileSync(base, img);
  return img;
}
const espSha = (img: string) => {
  const p = partition(img, 'PSYOPSOSEFI');
  return shaRange(img, p.start, p.size);
};

function checkEsp(t: ExecutionContext, img: string, before: { cfg: string; env: Buffer }, extra: string) {
  t.deepEqual(fsckProblems(img, false), []);
  t.true(espFile(img, '/EFI/BOOT/BOOTX64.EFI').equals(bootEfi));
  const cfg = espFile(img, '/grub/grub.cfg').toString('utf8');
  const cfgFile = join(work, `cfg-${Math.random()}`);
  writeFileSync(cfgFile, cfg);
  const sc = spawnSync('grub-script-check', [cfgFile], { encoding: 'utf8' });
  t.is(sc.status, 0, sc.stdout + sc.stderr);
  const p = parseGrubCfg(cfg);
  const old = parseGrubCfg(before.cfg);
  t.is(p.defaultLabel, old.defaultLabel);
  t.true(p.countingBlock);
  t.is(/# BEGIN psyopsOS boot counting[\s\S]*# END psyopsOS boot counting\n/.exec(cfg)?.[0], /# BEGIN psyopsOS boot counting[\s\S]*# END psyopsOS boot counting\n/.exec(before.cfg)?.[0]);
  t.deepEqual(p.slots.map((s) => [s.title, s.cmdline?.join(' ')]), old.slots.map((s) => [s.title, s.cmdline?.join(' ')]));
  t.deepEqual(p.entries.filter((e) => e.kind === 'efi-program').map((e) => e.chainloader), [extra]);
  t.true(espFile(img, '/grub/grubenv').equals(before.env), 'grubenv unchanged');
}

test.serial('update-esp from a signed tarball: mtools sees the new payload, fsck.fat clean, grub.cfg keeps default + counting block (grub-script-check), grubenv unchanged; again = nothing written', async (t) => {
  if (skipped(t, skip)) return;
  const img = fresh();
  const before = { cfg: espFile(img, '/grub/grub.cfg').toString('utf8'), env: espFile(img, '/grub/grubenv') };
  const r = await cli(['update-esp', img, '--esp-tar', esp1, '--pubkey', key.pub, '--json']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.json.added, ['/tools/memtest.efi']);
  t.deepEqual(r.json.changed, ['/manifest.json']);
  t.is(r.json.newVersion, '20251201-000000');
  t.true(mdir(img, '/tools').some((l) => /memtest\.efi$/i.test(l)), mdir(img, '/tools').join('\n'));
  t.true(espFile(img, '/tools/memtest.efi').equals(readFileSync(join(work, 'esp1/tools/memtest.efi'))));
  t.regex(espFile(img, '/psyopsESP.tar.minisig').toString(), /type=psyopsESP filename=psyopsESP.x86_64-uefi.20251201-000000.tar/);
  checkEsp(t, img, before, '/tools/memtest.efi');
  const sha = espSha(img);
  const again = await cli(['update-esp', img, '--esp-tar', esp1, '--pubkey', key.pub]);
  t.is(again.code, 0);
  t.regex(again.stdout, /already holds 20251201-000000; nothing written/);
  t.is(espSha(img), sha);

  // Then from the repository over nginx: memtest (dropped by the new payload) is removed.
  if (nginxSkip) return t.log(`repository part skipped: ${nginxSkip}`);
  const rr = await cli(['update-esp', img, '--repo', `http://127.0.0.1:${nginx!.port}/repo/`, '--pubkey', key.pub, '--json']);
  t.is(rr.code, 0, rr.stderr);
  t.deepEqual(rr.json.removed, ['/tools/memtest.efi']);
  t.deepEqual(mdir(img, '/tools').map((l) => l.toLowerCase()), ['/tools/other.efi']);
  t.regex(espFile(img, '/psyopsESP.tar.minisig').toString(), /version=20251215-000000/);
  checkEsp(t, img, before, '/tools/other.efi');
  // check sees the ESP up to date now (and the OS pointer missing is an error, not "up to date").
  const c = await cli(['check', img, '--repo', `http://127.0.0.1:${nginx!.port}/repo/`, '--pubkey', key.pub]);
  t.is(c.code, 1);
  t.regex(c.stderr, /no psyopsOS release for x86_64/);
});

test.serial('refused before the first write: type=psyopsOS, no BOOTX64.EFI, another key, no room, altered tarball; the ESP byte-identical', async (t) => {
  if (skipped(t, skip)) return;
  const img = fresh();
  const sha = espSha(img);
  const osTyped = await signEsp(payload('ostype', { 'EFI/BOOT/BOOTX64.EFI': bootEfi }), '20251202-000000', 'psyopsOS');
  const noBoot = await signEsp(payload('noboot', { 'EFI/BOOT/grubx64.efi': bootEfi }), '20251203-000000');
  const big = await signEsp(payload('big', { 'EFI/BOOT/BOOTX64.EFI': bootEfi, 'tools/huge.bin': randomBytes(36 << 20) }), '20251204-000000');
  await ok(['keygen', '--out', join(work, 'other')]);
  const altered = join(work, 'altered.tar');
  const bytes = readFileSync(esp1);
  bytes[bytes.length - 2048] ^= 1;
  writeFileSync(altered, bytes);
  copyFileSync(`${esp1}.minisig`, `${altered}.minisig`);
  const cases: [string[], RegExp][] = [
    [['--esp-tar', osTyped, '--pubkey', key.pub], /type=psyopsOS, not type=psyopsESP/],
    [['--esp-tar', noBoot, '--pubkey', key.pub], /no EFI\/BOOT\/BOOTX64\.EFI in the ESP payload/],
    [['--esp-tar', esp1, '--pubkey', join(work, 'other.pub')], /signed by key/],
    [['--esp-tar', big, '--pubkey', key.pub], /need .* free on PSYOPSOSEFI/],
    [['--esp-tar', altered, '--pubkey', key.pub], /signature verification failed/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(['update-esp', img, ...args]);
    t.is(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, re);
    t.is(espSha(img), sha, args.join(' '));
  }
});

/** The ESP after a cut: BOOTX64.EFI whole, grub.cfg parses with default A, every program it chainloads exists; fsck.fat: lost clusters at most. */
async function bootable(img: string, efis: Buffer[] = [bootEfi]): Promise<string[]> {
  const problems: string[] = [];
  const disk = await openDisk(img);
  try {
    const vol = await Fat32Volume.open((await findFilesystemPartition(disk, 'PSYOPSOSEFI')).region(), { readOnly: true });
    const efi = await vol.readFileBuffer('/EFI/BOOT/BOOTX64.EFI');
    if (!efis.some((e) => e.equals(efi))) problems.push('BOOTX64.EFI is neither the old nor the new one');
    const cfg = parseGrubCfg((await vol.readFileBuffer('/grub/grub.cfg')).toString('utf8'));
    if (cfg.defaultLabel !== 'psyopsOS-A' || !cfg.countingBlock) problems.push(`grub.cfg: default ${cfg.defaultLabel}, counting block ${cfg.countingBlock}`);
    for (const e of cfg.entries) if (e.chainloader && !(await vol.lookup(e.chainloader))) problems.push(`grub.cfg chainloads missing ${e.chainloader}`);
  } finally {
    await disk.close();
  }
  return [...problems, ...fsckProblems(img, true)];
}

test.serial('power cut after sampled writes of update-esp (every file changes, BOOTX64.EFI too): always BOOTX64.EFI + a grub.cfg that parses and names existing files; fsck.fat -n: lost clusters at most', async (t) => {
  if (skipped(t, skip)) return;
  const img = fresh();
  await ok(['update-esp', img, '--esp-tar', esp1, '--pubkey', key.pub]); // the old payload has a psyopsESP.files list
  // The next payload changes every file, BOOTX64.EFI too (trailing bytes after the PE image), and drops memtest.
  const newEfi = Buffer.concat([bootEfi, randomBytes(5000)]);
  const esp3 = await signEsp(payload('esp3', { 'EFI/BOOT/BOOTX64.EFI': newEfi, 'tools/other.efi': randomBytes(300_000), 'manifest.json': '{"extra_programs": {"/tools/other.efi": "Other tool"}}\n' }), '20251220-000000');
  const run = async (dev: FaultDevice) => updateEsp({ disk: dev, espTar: esp3, pubkey: key.pub });
  const baseDev = await FileDevice.open(img);
  closers.push(() => baseDev.close());
  const clean = new FaultDevice(new CowDevice(baseDev));
  await run(clean);
  const writes = clean.writes;
  const ks = writes <= 40 ? [...Array(writes).keys()] : [...new Set([...Array(40).keys()].map((i) => Math.floor((i * writes) / 40)).concat([writes - 1]))];
  const cutImg = join(work, 'cut.img');
  let checked = 0;
  for (const k of ks) {
    const cow = new CowDevice(baseDev);
    const fault = new FaultDevice(cow, { failAtWrite: k, tornSectors: k % 2 });
    await t.throwsAsync(() => run(fault), { instanceOf: PowerCut }, `k=${k}`);
    copyFileSync(img, cutImg);
    cow.applyTo(cutImg, () => Buffer.alloc(0));
    const p = await bootable(cutImg, [bootEfi, newEfi]);
    t.deepEqual(p, [], `cut at write ${k} of ${writes}`);
    checked++;
  }
  t.log(`${writes} writes, ${checked} cut points checked (${ks.length < writes ? 'sampled' : 'all'}, odd ones torn after one sector)`);
});

test.serial('QEMU: the image boots through GRUB after update-esp (the trial of B armed before it still runs)', async (t) => {
  if (skipped(t, skip ?? qemuSkip)) return;
  const img = fresh();
  await ok(['update-esp', img, '--esp-tar', esp1, '--pubkey', key.pub]);
  const r = await bootImage(img, { until: /PSYOPS-TEST-INIT version: VERSION=\S+/ });
  const rep = parseInitReport(r.log);
  t.is(rep.psyopsos, 'psyopsOS-B', r.log.split('\n').slice(-20).join('\n'));
  t.log(`GRUB booted ${rep.psyopsos} (${rep.version}) in ${(r.durationMs / 1000).toFixed(1)} s after update-esp`);
});
