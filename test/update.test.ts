/**
 * `diskimg update` against real readers: the new slot passes e2fsck -fn and debugfs rdump equals
 * the tarball; every other partition and the GPT are byte-identical afterwards (success and
 * failure); each refusal is one line, exit 1, and changes no byte; a failed write leaves the target
 * invisible to blkid (pending marker) and `show` calls it incomplete; re-applying the same tarball
 * with --skip-unchanged writes almost nothing; stdin, a loop device (and a mounted target refused),
 * an image made by upstream's recipe (mkfs.ext4 1.47 defaults), and a slot a kernel rw mount left
 * with a dirty journal.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from './helpers/cli.js';
import { checkSlot as checkSlotWith, digests, espFile, extract as extractPart, have, partitions, run } from './helpers/update.js';
import { needRoot, needTools, skipOrFail } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'update-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'update-test'];
const V1 = '20251129-000000';
const V2 = '20251201-000000';

async function cli(args: string[], input?: Buffer): Promise<CliResult> {
  return runCli(args, { env: ENV, input });
}

async function ok(args: string[], input?: Buffer): Promise<CliResult> {
  const r = await cli(args, input);
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r;
}

/** An OS tree as a tarball; `tag` changes the content. */
function osTar(name: string, tag: string, extra: Record<string, string | Buffer> = {}): string {
  const dir = join(work, `${name}.d`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'boot/dtbs'), { recursive: true });
  const files: Record<string, string | Buffer> = {
    kernel: `kernel ${tag}\n`,
    initramfs: `initramfs ${tag}\n`,
    modloop: Buffer.alloc(300_000, tag.length),
    squashfs: createHash('sha512').update(tag).digest(),
    'System.map': `map ${tag}\n`,
    'boot/dtbs/x.dtb': 'dtb',
    ...extra,
  };
  for (const [p, d] of Object.entries(files)) writeFileSync(join(dir, p), d);
  const out = join(work, `${name}.tar`);
  run('tar', ['--sort=name', '--mtime=@1764374400', '--owner=0', '--group=0', '-C', dir, '-cf', out, '.']);
  return out;
}

let key: { pub: string; sec: string };
async function sign(file: string, version: string, fields: Record<string, string> = {}, sig = `${file}.minisig`): Promise<string> {
  const tc = { type: 'psyopsOS', filename: `psyopsOS.x86_64.${version}.tar`, version, architecture: 'x86_64', ...fields };
  await ok(['sign', file, '--seckey', key.sec, '--sig', sig, '--trusted', ...Object.entries(tc).map(([k, v]) => `${k}=${v}`)]);
  return sig;
}

let base: string; // image made by create: A and B = V1, default A
let tarV1: string;
let tarV2: string;

test.before(async () => {
  await ok(['keygen', '--out', join(work, 'k')]);
  key = { pub: join(work, 'k.pub'), sec: join(work, 'k.key') };
  tarV1 = osTar('v1', 'one');
  tarV2 = osTar('v2', 'two', { 'etc-version': V2 });
  await sign(tarV1, V1);
  await sign(tarV2, V2);
  base = join(work, 'base.img');
  await ok(['create', base, '--os-tar', tarV1, '--pubkey', key.pub, '--no-bootloader', ...SMALL]);
});

function fresh(name: string): string {
  const img = join(work, `${name}.img`);
  copyFileSync(base, img);
  return img;
}

const extract = (img: string, name: string): string => extractPart(img, name, work);
/** e2fsck -fn clean, and debugfs rdump equal to the tarball plus the slot's own files. */
const checkSlot = (t: import('ava').ExecutionContext, img: string, label: string, tar: string): void => checkSlotWith(t, img, label, tar, work);

const TOOLS = ['sfdisk', 'e2fsck', 'debugfs', 'blkid', 'tar', 'mcopy'];

test.serial('update writes the inactive slot: e2fsck clean, rdump equals the tarball, other partitions and the GPT unchanged, B armed', async (t) => {
  if (!needTools(t, ...TOOLS)) return;
  const img = fresh('ok');
  const before = digests(img);
  const r = await ok(['update', img, '--slot', 'inactive', '--os-tar', tarV2, '--pubkey', key.pub, '--json']);
  t.is(r.json.target.label, 'psyopsOS-B');
  t.is(r.json.booted.label, 'psyopsOS-A');
  t.is(r.json.previousVersion, V1);
  t.is(r.json.newVersion, V2);
  t.true(r.json.verified);
  t.is(r.json.inputBytes, readFileSync(tarV2).length);
  checkSlot(t, img, 'psyopsOS-B', tarV2);
  const after = digests(img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], k);
  t.not(after.p4, before.p4);
  // The ESP got the boot switch: GRUB boots B next (our show, and grub.cfg read back with mtools).
  const show = await ok(['show', img, '--json']);
  t.is(show.json.esp.nextBoot.label, 'psyopsOS-B');
  const esp = partitions(img).find((p) => p.name === 'PSYOPSOSEFI')!;
  const cfg = run('mcopy', ['-i', `${img}@@${esp.start}`, '::/grub/grub.cfg', '-']);
  const grubScriptCheck = spawnSync('grub-script-check', [], { input: cfg, encoding: 'utf8' });
  if (needTools(t, 'grub-script-check')) t.is(grubScriptCheck.status, 0, grubScriptCheck.stderr);
  // Same version again is refused; --force writes it, and with --skip-unchanged almost nothing changes.
  const again = await cli(['update', img, '--slot', 'b', '--booted-label', 'psyopsOS-A', '--os-tar', tarV2, '--pubkey', key.pub, '--no-switch']);
  t.is(again.code, 0, again.stderr); // booted A is V1: V2 into B is not "the same as booted"
  const re = await ok(['update', img, '--slot', 'b', '--booted-label', 'psyopsOS-A', '--os-tar', tarV2, '--pubkey', key.pub, '--skip-unchanged', '--no-switch', '--json']);
  const slotBytes = partitions(img).find((p) => p.name === 'psyopsOS-B')!.size;
  t.log(`re-apply: wrote ${re.json.bytesWritten} bytes, skipped ${re.json.bytesSkipped} (slot ${slotBytes})`);
  t.true(re.json.bytesWritten < slotBytes / 100, `wrote ${re.json.bytesWritten}`);
  t.true(re.json.bytesSkipped > 0);
  t.is(digests(img).p4, after.p4, 'the same tarball gives the same slot bytes');
  checkSlot(t, img, 'psyopsOS-B', tarV2);
});

/** A refusal: one line on stderr matching `msg`, exit 1, and not one byte of the image changed. */
async function refused(t: import('ava').ExecutionContext, img: string, args: string[], msg: RegExp, input?: Buffer): Promise<void> {
  const before = createHash('sha256').update(readFileSync(img)).digest('hex');
  const r = await cli(['update', img, ...args], input);
  t.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, msg);
  t.is(createHash('sha256').update(readFileSync(img)).digest('hex'), before, `${args.join(' ')} changed the disk`);
}

test.serial('refusals before any write: one line, exit 1, disk unchanged', async (t) => {
  if (!needTools(t, ...TOOLS)) return;
  const img = fresh('refuse');
  const common = ['--os-tar', tarV2, '--pubkey', key.pub];
  await refused(t, img, ['--slot', 'a', '--booted-label', 'psyopsOS-A', ...common], /psyopsOS-A is the booted slot/);
  // Another key.
  await ok(['keygen', '--out', join(work, 'other')]);
  await refused(t, img, ['--slot', 'inactive', '--os-tar', tarV2, '--pubkey', join(work, 'other.pub')], /signed by key .* expected/);
  // An edited trusted comment.
  const edited = join(work, 'edited.minisig');
  writeFileSync(edited, readFileSync(`${tarV2}.minisig`, 'utf8').replace(`version=${V2}`, 'version=20991231-000000'));
  await refused(t, img, ['--slot', 'inactive', ...common, '--os-sig', edited], /trusted comment does not match/);
  // Not an OS update; wrong architecture.
  await refused(t, img, ['--slot', 'inactive', ...common, '--os-sig', await sign(tarV2, V2, { type: 'psyopsESP' }, join(work, 'esp.minisig'))], /not type=psyopsOS/);
  await refused(t, img, ['--slot', 'inactive', ...common, '--os-sig', await sign(tarV2, V2, { architecture: 'aarch64' }, join(work, 'arm.minisig'))], /architecture=aarch64, this node is x86_64/);
  // Version policy against the booted slot (A holds V1).
  const old = await sign(tarV2, '20200101-000000', {}, join(work, 'old.minisig'));
  await refused(t, img, ['--slot', 'inactive', ...common, '--os-sig', old], /older than the booted psyopsOS-A .*--allow-downgrade/);
  const same = await sign(tarV2, V1, {}, join(work, 'same.minisig'));
  await refused(t, img, ['--slot', 'inactive', ...common, '--os-sig', same], /already running in psyopsOS-A; pass --force/);
  // Missing signature, stdin without --os-sig, no key.
  await refused(t, img, ['--slot', 'inactive', '--os-tar', tarV2, '--pubkey', key.pub, '--os-sig', join(work, 'nope.minisig')], /nope\.minisig/);
  await refused(t, img, ['--slot', 'inactive', '--os-tar', '-', '--pubkey', key.pub], /give --os-sig/, readFileSync(tarV2));
  await refused(t, img, ['--slot', 'inactive', '--os-tar', tarV2], /no --pubkey/);
  // The booted slot is on trial: the other one is the last known-good; --force overrides.
  const esp = partitions(img).find((p) => p.name === 'PSYOPSOSEFI')!;
  const env = join(work, 'trial.env');
  run('grub-editenv', [env, 'create']);
  run('grub-editenv', [env, 'set', 'psyopsos_trial=psyopsOS-A', 'psyopsos_tries=2']);
  run('mcopy', ['-o', '-i', `${img}@@${esp.start}`, env, '::/grub/grubenv']);
  await refused(t, img, ['--slot', 'inactive', '--booted-label', 'psyopsOS-A', ...common], /on trial .*diskimg mark-good/);
  // --dry-run checks and writes nothing.
  const before = digests(img);
  const dry = await ok(['update', img, '--slot', 'inactive', '--booted-label', 'psyopsOS-A', ...common, '--force', '--dry-run', '--json']);
  t.true(dry.json.dryRun);
  t.is(dry.json.target.label, 'psyopsOS-B');
  t.deepEqual(digests(img), before);
});

test.serial('a tampered byte or a truncated stream: refused after writing, B incomplete (blkid and show) and staged, A, GPT and grub.cfg unchanged; a good retry completes it', async (t) => {
  if (!needTools(t, ...TOOLS)) return;
  const img = fresh('tamper');
  const before = digests(img);
  const cfgBefore = espFile(img, '/grub/grub.cfg');
  const bad = join(work, 'tampered.tar');
  const buf = readFileSync(tarV2);
  buf[buf.indexOf(Buffer.alloc(4096, 3)) + 1000] ^= 1; // inside the modloop body (filled with 3s)
  writeFileSync(bad, buf);
  const r1 = await cli(['update', img, '--slot', 'inactive', '--os-tar', bad, '--os-sig', `${tarV2}.minisig`, '--pubkey', key.pub]);
  t.is(r1.code, 1);
  t.regex(r1.stderr, /signature verification failed/);
  // Right after the refused run (before the next run rewrites the marker): not findable.
  const incomplete = async (when: string) => {
    const part = extract(img, 'psyopsOS-B');
    const b = spawnSync('blkid', ['-p', part], { encoding: 'utf8' });
    t.notRegex(b.stdout, /psyopsOS-B|ext4/, `${when}: ${b.stdout}`);
    rmSync(part);
    const show = await ok(['show', img, '--json']);
    t.is(show.json.partitions.find((p: any) => p.number === 4).filesystem.type, 'incomplete', when);
  };
  await incomplete('after the tampered stream');
  const cut = join(work, 'truncated.tar');
  writeFileSync(cut, readFileSync(tarV2).subarray(0, 200_000));
  const r2 = await cli(['update', img, '--slot', 'inactive', '--os-tar', '-', '--os-sig', `${tarV2}.minisig`, '--pubkey', key.pub], readFileSync(cut));
  t.is(r2.code, 1);
  t.regex(r2.stderr, /truncated|signature verification failed/);
  t.is(r2.stderr.trim().split('\n').length, 1, r2.stderr);
  const after = digests(img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], k);
  // The ESP's one change: grubenv marks B not proven (written before B's first byte; rollback refuses B).
  t.deepEqual(espFile(img, '/grub/grub.cfg'), cfgBefore);
  t.is(espFile(img, '/grub/grubenv').toString('latin1').replace(/#+$/, ''), '# GRUB Environment Block\n# WARNING: Do not edit this file by tools other than grub-editenv!!!\npsyopsos_staged=psyopsOS-B\n');
  // Nothing finds a psyopsOS-B filesystem there: blkid sees no filesystem, show says incomplete.
  const part = extract(img, 'psyopsOS-B');
  const b = spawnSync('blkid', ['-p', part], { encoding: 'utf8' });
  t.notRegex(b.stdout, /psyopsOS-B|ext4/, b.stdout);
  rmSync(part);
  const show = await ok(['show', img, '--json']);
  const p4 = show.json.partitions.find((p: any) => p.number === 4);
  t.is(p4.filesystem.type, 'incomplete');
  t.is(show.json.esp.nextBoot.label, 'psyopsOS-A');
  t.regex(show.json.slots[1].error ?? '', /incomplete/);
  // The retry finds the incomplete slot by its pending label and completes it.
  await ok(['update', img, '--slot', 'inactive', '--os-tar', '-', '--os-sig', `${tarV2}.minisig`, '--pubkey', key.pub], readFileSync(tarV2));
  checkSlot(t, img, 'psyopsOS-B', tarV2);
});

test.serial('stdin through a pipe (cat | diskimg update --os-tar -), gzip accepted', async (t) => {
  if (!needTools(t, ...TOOLS)) return;
  const img = fresh('stdin');
  const gz = join(work, 'v2.tar.gz');
  writeFileSync(gz, execFileSync('gzip', ['-nc', tarV2]));
  await sign(gz, V2);
  const r = spawnSync('bash', ['-c', `cat "$1" | node --import=tsx --conditions=source packages/cli/src/run.ts update "$2" --slot inactive --os-tar - --os-sig "$1.minisig" --pubkey "$3" --json`, 'x', gz, img, key.pub], {
    cwd: join(import.meta.dirname ?? '.', '..'),
    encoding: 'utf8',
    env: { ...process.env, ...ENV },
  });
  t.is(r.status, 0, r.stderr);
  t.is(JSON.parse(r.stdout).inputBytes, readFileSync(gz).length);
  const part = extract(img, 'psyopsOS-B');
  t.is(spawnSync('e2fsck', ['-fn', part]).status, 0);
  t.is(run('debugfs', ['-R', 'cat /etc-version', part]), V2);
  rmSync(part);
});

test.serial('an image made by upstream\'s recipe (sgdisk + mkfs.fat + mkfs.ext4 1.47 defaults): update B, e2fsck clean, content equal', async (t) => {
  if (!needTools(t, ...TOOLS, 'mkfs.ext4', 'sgdisk', 'mkfs.fat')) return;
  const { buildUpstreamImage } = await import('./helpers/fixtures.js');
  const img = join(work, 'upstream.img');
  const espTar = join(work, 'esp.tar');
  mkdirSync(join(work, 'esp.d/EFI/BOOT'), { recursive: true });
  writeFileSync(join(work, 'esp.d/EFI/BOOT/BOOTX64.EFI'), 'efi');
  run('tar', ['-C', join(work, 'esp.d'), '-cf', espTar, '.']);
  const cfg = join(work, 'up.grub.cfg');
  copyFileSync(join(import.meta.dirname ?? '.', '../packages/grubcfg/src/testdata/upstream-neuralupgrade.grub.cfg'), cfg);
  buildUpstreamImage(img, { osTarA: tarV1, espTar, grubCfg: cfg });
  const before = digests(img);
  // The recipe's slots carry no /psyopsOS.tar.minisig: the booted version is unknown, so the
  // policy asks for the explicit flag (and refuses without writing).
  const unknown = await cli(['update', img, '--slot', 'b', '--booted-label', 'psyopsOS-A', '--os-tar', tarV2, '--pubkey', key.pub]);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /the version of the booted psyopsOS-A is unknown \(psyopsOS-A has no \/psyopsOS\.tar\.minisig\).*--allow-downgrade/);
  t.deepEqual(digests(img), before);
  const r = await ok(['update', img, '--slot', 'b', '--booted-label', 'psyopsOS-A', '--os-tar', tarV2, '--pubkey', key.pub, '--allow-downgrade', '--json']);
  t.is(r.json.target.label, 'psyopsOS-B');
  checkSlot(t, img, 'psyopsOS-B', tarV2);
  const after = digests(img);
  for (const k of ['gpt-primary', 'gpt-backup', 'p2', 'p3']) t.is(after[k], before[k], k);
});

test.serial('loop device: update /dev/loopN with --booted-label; a mounted target is refused; a slot a kernel rw mount left dirty is rewritten clean', async (t) => {
  if (!needTools(t, ...TOOLS, 'losetup', 'partx') || !needRoot(t)) return;
  const img = fresh('loop');
  let loop: string;
  try {
    loop = run('losetup', ['--find', '--show', img]).trim();
  } catch (e) {
    return skipOrFail(t, `losetup failed: ${(e as Error).message}`, { tool: 'loop-device' });
  }
  const made: string[] = [];
  const dirty = join(work, 'dirty.img');
  const mnt = mkdtempSync(join(tmpdir(), 'update-mnt-'));
  try {
    // Partitions through the kernel (partx: BLKPG); without udev here, make the nodes from sysfs.
    // The loop device's capacity appears a moment after losetup returns: wait for it.
    const name = loop.replace('/dev/', '');
    for (let i = 0; i < 50 && Number(readFileSync(`/sys/class/block/${name}/size`, 'utf8')) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    spawnSync('partx', ['-a', loop]);
    for (let k = 1; k <= 4; k++) {
      const node = `${loop}p${k}`;
      if (have('true') && !spawnSync('test', ['-b', node]).status) continue;
      let dev: string;
      try {
        dev = readFileSync(`/sys/class/block/${name}p${k}/dev`, 'utf8').trim();
      } catch {
        return skipOrFail(t, 'the kernel did not add the loop partitions (partx -a)', { tool: 'loop-partscan' });
      }
      const [maj, min] = dev.split(':');
      run('mknod', [node, 'b', maj!, min!]);
      made.push(node);
    }
    for (let i = 0; i < 50 && spawnSync('blkid', ['-p', `${loop}p4`]).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    // Dirty B through the kernel: rw mount, write files, and keep a copy with the journal not yet checkpointed.
    const mounted = spawnSync('mount', ['-t', 'ext4', `${loop}p4`, mnt]).status === 0;
    if (mounted) {
      for (let i = 0; i < 50; i++) writeFileSync(join(mnt, `junk${i}`), Buffer.alloc(20_000, i));
      spawnSync('sync');
      copyFileSync(img, dirty); // taken while mounted: B has needs_recovery and a non-empty journal
      // Mounted: refused, one line, disk unchanged.
      const before = createHash('sha256').update(readFileSync(img)).digest('hex');
      const r = await cli(['update', loop, '--slot', 'b', '--booted-label', 'psyopsOS-A', '--os-tar', tarV2, '--pubkey', key.pub]);
      t.is(r.code, 1, r.stderr);
      t.regex(r.stderr, /in use|mounted/);
      t.is(createHash('sha256').update(readFileSync(img)).digest('hex'), before);
      run('umount', [mnt]);
    } else skipOrFail(t, 'ext4 mount of the loop partition failed: mounted-target refusal not checked', { tool: 'loop-mount' });
    const r = await ok(['update', loop, '--slot', 'inactive', '--booted-label', 'psyopsOS-A', '--os-tar', tarV2, '--pubkey', key.pub, '--json']);
    t.is(r.json.target.label, 'psyopsOS-B');
    t.true(r.json.bytesSkipped > 0, 'block devices skip unchanged blocks by default');
    const fsck = spawnSync('e2fsck', ['-fn', `${loop}p4`], { encoding: 'utf8' });
    t.is(fsck.status, 0, fsck.stdout + fsck.stderr);
    t.is(run('blkid', ['-p', '-s', 'LABEL', '-o', 'value', `${loop}p4`]).trim(), 'psyopsOS-B');
    if (mounted) {
      run('mount', ['-o', 'ro', `${loop}p4`, mnt]);
      t.is(readFileSync(join(mnt, 'etc-version'), 'utf8'), V2);
      t.false(spawnSync('ls', [join(mnt, 'junk0')]).status === 0, 'nothing of the old filesystem shows');
      run('umount', [mnt]);
    }
  } finally {
    spawnSync('umount', [mnt]);
    spawnSync('partx', ['-d', loop]);
    for (const n of made) rmSync(n, { force: true });
    spawnSync('losetup', ['-d', loop]);
    rmSync(mnt, { recursive: true, force: true });
  }
  checkSlot(t, img, 'psyopsOS-B', tarV2);
  if (readFileSync(dirty, { flag: 'a+' }).length) {
    const part = extract(dirty, 'psyopsOS-B');
    t.regex(run('dumpe2fs', ['-h', part]), /needs_recovery/, 'the copy really has a journal to replay');
    rmSync(part);
    await ok(['update', dirty, '--slot', 'b', '--booted-label', 'psyopsOS-A', '--os-tar', tarV2, '--pubkey', key.pub]);
    checkSlot(t, dirty, 'psyopsOS-B', tarV2); // e2fsck -fn clean: no journal to replay, nothing of the old files
  }
});
