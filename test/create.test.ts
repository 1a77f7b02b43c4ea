/**
 * `diskimg create` with full inputs: determinism, the --json summary, signature checks
 * cross-checked with the real minisign CLI, and the bad inputs of issue 5 — each a one-line
 * error naming the input, with no image (or temporary file) left behind.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { runCli, type CliResult } from './helpers/cli.js';
import { sha256 } from './gpt-helpers.js';
import { needRoot, needTools, skipOrFail } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'create-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const EPOCH = { SOURCE_DATE_EPOCH: '1764374400' };
// Most images here are never booted: no ESP payload needed (--no-bootloader).
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--no-bootloader'];
const have = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;

function tree(name: string, files: Record<string, string | Buffer>): string {
  const d = join(work, name);
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), data);
  }
  return d;
}

function tarOf(dir: string, out: string): string {
  execFileSync('tar', ['-C', dir, '--sort=name', '--mtime=@1700000000', '--owner=0', '--group=0', '-cf', out, '.']);
  return out;
}

const osDir = tree('os', {
  kernel: Buffer.alloc(300_000, 1),
  initramfs: Buffer.alloc(200_000, 2),
  modloop: 'modloop',
  squashfs: Buffer.alloc(1_000_000, 3),
  'System.map': 'map',
  config: 'config',
  'boot/dtbs/a.dtb': 'dtb',
});
const osTar = tarOf(osDir, join(work, 'os.tar'));
const espTar = tarOf(tree('esp', { 'EFI/BOOT/BOOTX64.EFI': Buffer.alloc(50_000, 4), 'memtest64.efi': 'm', 'manifest.json': '{"extra_programs": {"/memtest64.efi": "Memtest86+"}}' }), join(work, 'esp.tar'));

function oneLine(t: import('ava').ExecutionContext, r: CliResult, re: RegExp): void {
  t.is(r.code, 1, r.stdout + r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, re);
}

/** No image and no temporary file left in `dir` other than what was there. */
function noLeftovers(t: import('ava').ExecutionContext, dir: string, out: string): void {
  t.false(existsSync(out), `${out} was left behind`);
  // Other tests build in `dir` at the same time: look only for this image's temporary file.
  t.deepEqual(readdirSync(dir).filter((n) => n.startsWith(`.${basename(out)}.partial-`)), []);
}

test('same inputs, seed and SOURCE_DATE_EPOCH give a byte-identical image; --json has layout and digests', async (t) => {
  const a = join(work, 'det-a.img');
  const b = join(work, 'det-b.img');
  const args = ['--os-tar', osTar, '--esp-tar', espTar, '--no-verify', '--seed', 'det', ...SMALL];
  const ra = await runCli(['create', a, ...args, '--json'], { env: EPOCH });
  t.is(ra.code, 0, ra.stderr);
  t.is((await runCli(['create', b, ...args], { env: EPOCH })).code, 0);
  t.is(await sha256(a), await sha256(b));
  const j = ra.json;
  t.deepEqual(j.partitions.map((p: any) => p.name), ['PSYOPSOSEFI', 'psyops-secret', 'psyopsOS-A', 'psyopsOS-B']);
  t.regex(j.digests['psyopsOS-A'], /^[0-9a-f]{64}$/);
  t.is(j.defaultSlot, 'psyopsOS-A');
  t.deepEqual(j.esp.extraPrograms, ['/memtest64.efi']);
  // A different SOURCE_DATE_EPOCH changes the bytes (timestamps are really taken from it).
  const c = join(work, 'det-c.img');
  t.is((await runCli(['create', c, ...args], { env: { SOURCE_DATE_EPOCH: '1764374401' } })).code, 0);
  t.not(await sha256(a), await sha256(c));
  for (const f of [a, b, c]) rmSync(f);
});

test('the image is sparse: allocated size stays close to the payload', async (t) => {
  const img = join(work, 'sparse.img');
  const r = await runCli(['create', img, '--os-tar', osTar, '--no-verify', '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '256M'], { env: EPOCH });
  t.is(r.code, 0, r.stderr);
  const allocated = Number(execFileSync('stat', ['-c', '%b*%B', img], { encoding: 'utf8' }).trim().split('*').reduce((x, y) => String(Number(x) * Number(y))));
  const apparent = Number(execFileSync('stat', ['-c', '%s', img], { encoding: 'utf8' }).trim());
  t.log(`apparent ${apparent >> 20} MiB, allocated ${(allocated / 2 ** 20).toFixed(1)} MiB`);
  // Payload ~1.5 MiB per slot: zeroed journals and inode tables must stay holes.
  t.true(allocated < 16 * 2 ** 20, `allocated ${allocated} of ${apparent}`);
  rmSync(img);
});

test('signatures: minisign-signed inputs verify; a flipped byte, an edited trusted comment or another key are refused', async (t) => {
  if (!needTools(t, 'minisign')) return;
  const pub = join(work, 'k.pub');
  const key = join(work, 'k.key');
  const pub2 = join(work, 'k2.pub');
  execFileSync('minisign', ['-G', '-W', '-p', pub, '-s', join(work, 'k.key')], { stdio: 'ignore' });
  execFileSync('minisign', ['-G', '-W', '-p', pub2, '-s', join(work, 'k2.key')], { stdio: 'ignore' });
  const signed = join(work, 'signed.tar');
  execFileSync('cp', [osTar, signed]);
  execFileSync('minisign', ['-S', '-s', key, '-m', signed, '-t', 'type=psyopsOS filename=psyopsOS.x86_64.20251129-000000.tar version=20251129-000000 kernel=6.1 alpine=3.20 architecture=x86_64'], { stdio: 'ignore' });
  const img = join(work, 'sig.img');
  const ok = await runCli(['create', img, '--os-tar', signed, '--pubkey', pub, '--json', ...SMALL], { env: EPOCH });
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.json.slotsBuilt[0].signature.version, '20251129-000000');
  t.is(ok.json.verified.os.fields.type, 'psyopsOS');
  rmSync(img);

  // Another key.
  oneLine(t, await runCli(['create', img, '--os-tar', signed, '--pubkey', pub2, ...SMALL]), /signed by key .* expected/);
  noLeftovers(t, work, img);
  // No signature and no --no-verify: says how to fix it.
  oneLine(t, await runCli(['create', img, '--os-tar', osTar, '--pubkey', pub, ...SMALL]), /no signature.*--no-verify/);
  oneLine(t, await runCli(['create', img, '--os-tar', signed, ...SMALL]), /--pubkey/);
  // A flipped byte in the tarball.
  const tampered = join(work, 'tampered.tar');
  const bytes = readFileSync(signed);
  bytes[10_000] ^= 1;
  writeFileSync(tampered, bytes);
  oneLine(t, await runCli(['create', img, '--os-tar', tampered, '--os-sig', `${signed}.minisig`, '--pubkey', pub, ...SMALL]), /tampered\.tar: signature verification failed/);
  // The OS tarball is hashed while the slots are written: a flip that also breaks a tar header
  // is still reported as a failed signature, and no image is left.
  const broken = join(work, 'broken.tar');
  const brokenBytes = readFileSync(signed);
  brokenBytes[0] ^= 1;
  writeFileSync(broken, brokenBytes);
  oneLine(t, await runCli(['create', img, '--os-tar', broken, '--os-sig', `${signed}.minisig`, '--pubkey', pub, ...SMALL]), /broken\.tar: signature verification failed/);
  noLeftovers(t, work, img);
  // An edited trusted comment.
  const sig = readFileSync(`${signed}.minisig`, 'utf8').replace('version=20251129-000000', 'version=20991231-000000');
  writeFileSync(join(work, 'edited.minisig'), sig);
  oneLine(t, await runCli(['create', img, '--os-tar', signed, '--os-sig', join(work, 'edited.minisig'), '--pubkey', pub, ...SMALL]), /trusted comment/);
  noLeftovers(t, work, img);
});

test('bad inputs: one-line errors naming the input, nothing left behind, an existing image kept', async (t) => {
  const img = join(work, 'bad.img');
  // Missing kernel.
  const noKernel = tarOf(tree('os-nokernel', { initramfs: 'i', squashfs: 's' }), join(work, 'nokernel.tar'));
  oneLine(t, await runCli(['create', img, '--os-tar', noKernel, '--no-verify', ...SMALL]), /nokernel\.tar: missing kernel/);
  noLeftovers(t, work, img);
  // ESP payload larger than the ESP.
  const bigEsp = tarOf(tree('esp-big', { 'EFI/BOOT/BOOTX64.EFI': Buffer.alloc(45 * 2 ** 20, 5) }), join(work, 'bigesp.tar'));
  oneLine(t, await runCli(['create', img, '--os-tar', osTar, '--esp-tar', bigEsp, '--no-verify', ...SMALL]), /bigesp\.tar: payload needs .* MiB/);
  noLeftovers(t, work, img);
  // Slot too small for the OS payload.
  const bigOs = tarOf(tree('os-big', { kernel: 'k', initramfs: 'i', squashfs: Buffer.alloc(40 * 2 ** 20, 6) }), join(work, 'bigos.tar'));
  oneLine(t, await runCli(['create', img, '--os-tar', bigOs, '--no-verify', ...SMALL]), /needs .* MiB, partition has .* MiB/);
  noLeftovers(t, work, img);
  // ESP too small for FAT32 at 4096-byte sectors: named in the CLI's words, before any write.
  oneLine(t, await runCli(['create', img, '--os-tar', osTar, '--no-verify', '--no-bootloader', '--sector-size', '4096', '--secret-size', '8M', '--slot-size', '32M']), /--esp-size 128 MiB is too small for FAT32 with 4096-byte sectors; use at least --esp-size 257M/);
  noLeftovers(t, work, img);
  // Missing inputs.
  oneLine(t, await runCli(['create', img, '--os-tar', join(work, 'nope.tar'), '--no-verify']), /--os-tar .*nope\.tar: no such file/);
  oneLine(t, await runCli(['create', img, '--os-tar', osTar, '--esp-dir', join(work, 'nodir'), '--no-verify']), /--esp-dir .*nodir: no such directory/);
  // A failed build keeps the image that was there.
  writeFileSync(img, 'previous image');
  oneLine(t, await runCli(['create', img, '--os-tar', noKernel, '--no-verify', '--force', ...SMALL]), /missing kernel/);
  t.is(readFileSync(img, 'utf8'), 'previous image');
  rmSync(img);
  // Usage: no --os-tar.
  const u = await runCli(['create', img]);
  t.is(u.code, 2);
  t.regex(u.stderr, /--os-tar/);
});

test('a block device with a mounted partition is refused before anything is written', async (t) => {
  if (!needRoot(t, 'losetup and mount')) return;
  const backing = join(work, 'loop.img');
  execFileSync('truncate', ['-s', '120M', backing]);
  execFileSync('mkfs.ext4', ['-q', '-F', backing]);
  const lo = spawnSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' });
  if (lo.status !== 0) return skipOrFail(t, `losetup failed: ${lo.stderr.trim()}`, { tool: 'loop-device' });
  const dev = lo.stdout.trim();
  const mnt = mkdtempSync(join(tmpdir(), 'mnt-'));
  try {
    const m = spawnSync('mount', ['-o', 'ro', dev, mnt], { encoding: 'utf8' });
    if (m.status !== 0) return skipOrFail(t, `mount failed: ${m.stderr.trim()}`, { tool: 'loop-mount' });
    const before = await sha256(backing);
    const r = await runCli(['create', dev, '--os-tar', osTar, '--no-verify', '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M']);
    oneLine(t, r, /in use .*unmount it first/);
    spawnSync('umount', [mnt]);
    t.is(await sha256(backing), before);
  } finally {
    spawnSync('umount', [mnt]);
    spawnSync('losetup', ['-d', dev]);
    rmSync(mnt, { recursive: true, force: true });
  }
});

test('every input form lands byte-identical, read back by mtools and debugfs (--esp-dir, --secret-tar, gzip OS tar)', async (t) => {
  if (!needTools(t, 'mcopy', 'debugfs')) return;
  const espDir = tree('esp-dir', { 'EFI/BOOT/BOOTX64.EFI': Buffer.alloc(70_000, 9), 'EFI/Tools/Long File Name.efi': 'long', 'manifest.json': '{}' });
  const secretTar = tarOf(tree('secret', { 'psyops-secret.env': 'PSYOPSOS_NODENAME=node1\n', 'ssh/id_ed25519': 'key' }), join(work, 'secret.tar'));
  const osTgz = join(work, 'os.tar.gz');
  execFileSync('sh', ['-c', `gzip -c < ${osTar} > ${osTgz}`]);
  const img = join(work, 'forms.img');
  const r = await runCli(['create', img, '--os-tar', osTgz, '--esp-dir', espDir, '--secret-tar', secretTar, '--no-verify', '--default-slot', 'b', '--json', ...SMALL], { env: EPOCH });
  t.is(r.code, 0, r.stderr);
  const part = (name: string) => r.json.partitions.find((p: any) => p.name === name);
  const offset = (name: string) => part(name).firstLba * 512;
  const sizeOf = (name: string) => (part(name).lastLba - part(name).firstLba + 1) * 512;
  // ESP through mtools at the partition's offset.
  const mtools = (...args: string[]) => execFileSync(args[0], [...args.slice(1)], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  t.deepEqual(mtools('mtype', '-i', `${img}@@${offset('PSYOPSOSEFI')}`, '::/EFI/BOOT/BOOTX64.EFI'), Buffer.alloc(70_000, 9));
  t.is(mtools('mtype', '-i', `${img}@@${offset('PSYOPSOSEFI')}`, '::/EFI/Tools/Long File Name.efi').toString(), 'long');
  const cfg = mtools('mtype', '-i', `${img}@@${offset('PSYOPSOSEFI')}`, '::/grub/grub.cfg').toString();
  t.regex(cfg, /set default="psyopsOS-B"/);
  // ext4 partitions through debugfs on extracted copies.
  const extract = (name: string) => {
    const out = join(work, `${name}.ext4`);
    execFileSync('dd', [`if=${img}`, `of=${out}`, 'bs=1M', `skip=${offset(name) / 2 ** 20}`, `count=${sizeOf(name) / 2 ** 20}`, 'conv=sparse', 'status=none']);
    return out;
  };
  const dcat = (fs: string, path: string) => execFileSync('debugfs', ['-R', `cat ${path}`, fs], { stdio: ['ignore', 'pipe', 'ignore'] });
  const secret = extract('psyops-secret');
  t.is(dcat(secret, '/psyops-secret.env').toString(), 'PSYOPSOS_NODENAME=node1\n');
  t.is(dcat(secret, '/ssh/id_ed25519').toString(), 'key');
  for (const label of ['psyopsOS-A', 'psyopsOS-B']) {
    const fs = extract(label);
    t.deepEqual(dcat(fs, '/kernel'), readFileSync(join(osDir, 'kernel')));
    t.deepEqual(dcat(fs, '/squashfs'), readFileSync(join(osDir, 'squashfs')));
    t.is(dcat(fs, `/${label}`).toString(), label);
    t.is(spawnSync('e2fsck', ['-fn', fs]).status, 0);
    rmSync(fs);
  }
  rmSync(secret);
  rmSync(img);
});
