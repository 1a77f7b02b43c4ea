/**
 * The boot-state API (arm, mark-good, rollback, set-default, status) on real images: ours from
 * buildImage and one made with upstream's recipe (no grubenv, no counting block). GRUB's side is
 * played by the model (predictBoot's write-back); boot-counting.test.ts proves the model against
 * the real GRUB. Every grub.cfg we leave passes grub-script-check, every grubenv `grub-editenv
 * list`, every ESP `fsck.fat -n`.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fat32Volume, findFilesystemPartition, openDisk, type Disk } from '@diskimg/diskimage/internal';
import { encodeGrubenv, parseGrubCfg, predictBoot, ENV_TRIAL } from '@diskimg/grubcfg/internal';
import { ESP_PATHS, InputError, PSYOPS_NAMES, SafetyError } from '@diskimg/partitions/internal';
import { buildAbImage, VERSION_A, VERSION_B } from '../../../test/helpers/ab-image.js';
import { buildUpstreamImage, getBootFixtures, needBoot, skipReason } from '../../../test/helpers/fixtures.js';
import { armTrial, assertEspNotMounted, bootedLabel, markBad, markGood, markStaged, readBootState, rollback, setDefault } from './boot-state.js';
import { slotStatus } from './status.js';

const A = PSYOPS_NAMES.a;
const B = PSYOPS_NAMES.b;
const skip = skipReason({ qemu: false, image: true });
const work = mkdtempSync(join(tmpdir(), 'boot-state-'));
let base: string | undefined;
test.before(async () => {
  if (!skip) base = await buildAbImage(work, 'base.img', getBootFixtures());
});
test.after.always(() => rmSync(work, { recursive: true, force: true }));

function sh(cmd: string, args: string[], opts: { ok?: boolean } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (opts.ok !== false && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status} ${r.stdout}${r.stderr}`);
  return r;
}

let n = 0;
/** A fresh sparse copy of the base image, opened writable. */
async function fresh(): Promise<{ img: string; disk: Disk }> {
  const img = join(work, `t${n++}.img`);
  sh('cp', ['--sparse=always', base!, img]);
  return { img, disk: await openDisk(img, { writable: true }) };
}

/** Play GRUB for one boot: the model's decision, its grubenv write-back applied to the ESP. */
async function grubBoots(disk: Disk): Promise<string | undefined> {
  const vol = await Fat32Volume.open((await findFilesystemPartition(disk, PSYOPS_NAMES.esp)).region());
  const cfg = parseGrubCfg((await vol.readFileBuffer(ESP_PATHS.grubCfg)).toString('utf8'));
  const env = (await vol.lookup(ESP_PATHS.grubenv)) ? await vol.readFileBuffer(ESP_PATHS.grubenv) : undefined;
  const d = predictBoot(cfg, env);
  if (d.writeBack) await vol.replaceFile(ESP_PATHS.grubenv, d.writeBack);
  return d.label;
}

/** The real tools accept what we left on the ESP. */
async function toolsAccept(t: import('ava').ExecutionContext, img: string, disk: Disk): Promise<void> {
  const esp = await findFilesystemPartition(disk, PSYOPS_NAMES.esp);
  const part = `${img}@@${esp.offset}`;
  const d = join(work, `tools${n++}`);
  mkdirSync(d);
  sh('mcopy', ['-i', part, '::/grub/grub.cfg', join(d, 'grub.cfg')]);
  const check = sh('grub-script-check', [join(d, 'grub.cfg')], { ok: false });
  t.is(check.status, 0, check.stdout + check.stderr);
  if (sh('mcopy', ['-i', part, '::/grub/grubenv', join(d, 'grubenv')], { ok: false }).status === 0) {
    const list = sh('grub-editenv', [join(d, 'grubenv'), 'list'], { ok: false });
    t.is(list.status, 0, list.stderr);
  }
  const slice = join(d, 'esp.img');
  sh('dd', [`if=${img}`, `of=${slice}`, `bs=512`, `skip=${esp.offset / 512}`, `count=${esp.size / 512}`, 'status=none']);
  const fsck = sh('fsck.fat', ['-n', slice], { ok: false });
  t.is(fsck.status, 0, fsck.stdout + fsck.stderr);
  rmSync(d, { recursive: true, force: true });
}

const ready = (t: import('ava').ExecutionContext) => {
  return needBoot(t, skip, 'boot-fixtures');
};

test('a fresh image: A confirmed, no trial, no counting block; status "ok"', async (t) => {
  if (!ready(t)) return;
  const { disk } = await fresh();
  t.deepEqual(await readBootState(disk), {
    defaultLabel: A, trial: null, failed: null, bad: null, staged: null, nextBoot: { label: A, reason: 'default' }, countingBlock: false,
  });
  t.like(await slotStatus(disk), { line: `${A} ${VERSION_A} ok`, confirmed: true });
  await disk.close();
});

test('arm B (3 tries) → B, B, B, then A fell back and stays; status says so; mark-good from A acknowledges it: status ok, B marked bad', async (t) => {
  if (!ready(t)) return;
  const { img, disk } = await fresh();
  const s = await armTrial(disk, B);
  t.like(s, { defaultLabel: A, trial: { label: B, triesLeft: 3, tries: 3 }, failed: null, nextBoot: { label: B, reason: 'trial' }, countingBlock: true });
  await toolsAccept(t, img, disk);
  t.is((await slotStatus(disk)).line, `${B} ${VERSION_B} TRIAL 3/3`);
  t.is((await slotStatus(disk, A)).line, `${A} ${VERSION_A} ok, next: B ${VERSION_B} TRIAL 3/3`);
  const boots: (string | undefined)[] = [];
  for (let i = 0; i < 5; i++) boots.push(await grubBoots(disk));
  t.deepEqual(boots, [B, B, B, A, A]);
  t.like(await readBootState(disk), { defaultLabel: A, trial: null, failed: B, nextBoot: { label: A, reason: 'default' } });
  const st = await slotStatus(disk, A);
  t.is(st.line, `${A} ${VERSION_A} FELL BACK from B ${VERSION_B}`);
  t.false(st.confirmed);
  // Issue 27.5: confirming the slot that runs clears the fallback (the node is healthy again) and
  // keeps B unproven, so rollback still will not make it the default.
  const ack = await markGood(disk, A);
  t.like(ack, { changed: true, booted: A, state: { defaultLabel: A, trial: null, failed: null, bad: B, nextBoot: { label: A, reason: 'default' } } });
  t.regex(ack.message, /^psyopsOS-A confirmed; psyopsOS-B failed its trial and is marked bad/);
  t.like(await slotStatus(disk, A), { line: `${A} ${VERSION_A} ok`, confirmed: true });
  t.like(await rollback(disk, A), { changed: false, state: { defaultLabel: A, bad: B } });
  t.like(await markGood(disk, A), { changed: false, message: 'psyopsOS-A is already the confirmed default; nothing to do' });
  t.is(await grubBoots(disk), A);
  await toolsAccept(t, img, disk);
  // A new trial of B clears its mark; confirming B makes it the default with nothing recorded.
  t.like(await armTrial(disk, B), { trial: { label: B, triesLeft: 3 }, bad: null });
  t.is(await grubBoots(disk), B);
  t.like(await markGood(disk, B), { changed: true, state: { defaultLabel: B, trial: null, failed: null, bad: null } });
  await toolsAccept(t, img, disk);
  await disk.close();
});

test('arm B, boot it once, mark-good B: B is the default, trial ended; again: a no-op; rollback returns to A', async (t) => {
  if (!ready(t)) return;
  const { img, disk } = await fresh();
  await armTrial(disk, 'b', { tries: 2 });
  t.is(await grubBoots(disk), B);
  t.is((await slotStatus(disk, B)).line, `${B} ${VERSION_B} TRIAL 1/2`);
  // A booted while B is on trial (GRUB fell back in this boot): A is confirmed, B's trial goes on.
  t.like(await markGood(disk, A), { changed: false, message: 'psyopsOS-A is the confirmed default; psyopsOS-B stays on trial (1 tries left, mark-bad ends it)' });
  const r = await markGood(disk, B);
  t.like(r, { changed: true, state: { defaultLabel: B, trial: null, failed: null, nextBoot: { label: B, reason: 'default' } } });
  t.like(await markGood(disk, B), { changed: false, message: 'psyopsOS-B is already the confirmed default; nothing to do' });
  for (let i = 0; i < 3; i++) t.is(await grubBoots(disk), B);
  t.is((await slotStatus(disk, B)).line, `${B} ${VERSION_B} ok`);
  await toolsAccept(t, img, disk);
  // the info line follows the default, so upstream's tool reads the truth
  t.like(await rollback(disk, B), { changed: true, state: { defaultLabel: A, trial: null, nextBoot: { label: A, reason: 'default' } } });
  t.is((await slotStatus(disk, A)).line, `${A} ${VERSION_A} ok`);
  await t.throwsAsync(markGood(disk, B), { message: /^booted psyopsOS-B is neither the default \(psyopsOS-A\) nor on trial/ });
  await disk.close();
});

test('rollback during a trial ends it; set-default ends a trial; --tries 0 is a plain switch; bad tries and a trial of the default are refused', async (t) => {
  if (!ready(t)) return;
  const { disk } = await fresh();
  await armTrial(disk, B);
  t.like(await rollback(disk), { changed: true, state: { defaultLabel: A, trial: null, bad: B, nextBoot: { label: A } } });
  await armTrial(disk, B);
  t.like(await setDefault(disk, B), { defaultLabel: B, trial: null, failed: null, bad: null, nextBoot: { label: B, reason: 'default' } });
  t.like(await armTrial(disk, A, { tries: 0 }), { defaultLabel: A, trial: null, nextBoot: { label: A } });
  await t.throwsAsync(armTrial(disk, B, { tries: 10 }), { instanceOf: InputError, message: /--tries 10: a whole number from 0/ });
  await t.throwsAsync(armTrial(disk, A), { instanceOf: InputError, message: /psyopsOS-A is already the confirmed default/ });
  await t.throwsAsync(armTrial(disk, 'c'), { instanceOf: InputError, message: /slot "c"/ });
  // after a fallback, rollback to the failed slot changes nothing (set-default forces it)
  await armTrial(disk, B, { tries: 1 });
  for (let i = 0; i < 2; i++) await grubBoots(disk);
  const noop = await rollback(disk, A);
  t.like(noop, { changed: false, state: { defaultLabel: A, failed: B } });
  t.regex(noop.message, /^nothing to roll back to: psyopsOS-B failed its trial/);
  await disk.close();
});

test('rollback refuses a slot without /psyopsOS.tar.minisig', async (t) => {
  if (!ready(t)) return;
  const f = getBootFixtures();
  const d = join(work, 'unsigned');
  mkdirSync(d);
  const { buildImage } = await import('./build.js');
  const img = join(d, 'u.img');
  await buildImage({ output: img, osTar: f.osTarA, espTar: f.espTar, noVerify: true, espSize: '40M', secretSize: '8M', slotSize: '48M', seed: 'u' });
  const disk = await openDisk(img, { writable: true });
  await t.throwsAsync(rollback(disk), { instanceOf: InputError, message: 'rollback: psyopsOS-B holds no complete slot (no /psyopsOS.tar.minisig); nothing to roll back to' });
  t.like(await readBootState(disk), { defaultLabel: A });
  await disk.close();
});

test('an upstream-made disk (no grubenv, no counting block) gets both on the first arm; the tools accept them', async (t) => {
  if (!ready(t)) return;
  const f = getBootFixtures();
  const img = join(work, 'upstream.img');
  buildUpstreamImage(img, { osTarA: f.osTarA, osTarB: f.osTarB, espTar: f.espTar, grubCfg: f.grubCfgA });
  const disk = await openDisk(img, { writable: true });
  t.like(await readBootState(disk), { defaultLabel: A, countingBlock: false, trial: null });
  const s = await armTrial(disk, B);
  t.like(s, { countingBlock: true, trial: { label: B, triesLeft: 3 }, nextBoot: { label: B, reason: 'trial' } });
  await toolsAccept(t, img, disk);
  const env = sh('mcopy', ['-i', `${img}@@${1 << 20}`, '::/grub/grubenv', '-']).stdout;
  t.is(env.length, 1024);
  const cfg = sh('mcopy', ['-i', `${img}@@${1 << 20}`, '::/grub/grub.cfg', '-']).stdout;
  t.regex(cfg, /# neuralupgrade-info: last_updated=20261129-000000 default_boot_label=psyopsOS-A extra_programs=/);
  await disk.close();
});

test('foreign grubenv variables are kept, but not when they would push the block past one sector (refused before any write)', async (t) => {
  if (!ready(t)) return;
  const { disk } = await fresh();
  // a volume opened per step: each holds its own copy of the FAT
  const esp = async () => Fat32Volume.open((await findFilesystemPartition(disk, PSYOPS_NAMES.esp)).region());
  await (await esp()).replaceFile(ESP_PATHS.grubenv, encodeGrubenv({ saved_entry: 'x', other: 'y' }));
  await armTrial(disk, B);
  const env = await (await esp()).readFileBuffer(ESP_PATHS.grubenv);
  t.regex(env.toString('latin1'), /saved_entry=x\nother=y\npsyopsos_trial=psyopsOS-B\npsyopsos_tries=3\npsyopsos_armed=3\n#/);
  await setDefault(disk, A);
  await (await esp()).replaceFile(ESP_PATHS.grubenv, encodeGrubenv({ big: 'z'.repeat(380) }));
  const cfgBefore = await (await esp()).readFileBuffer(ESP_PATHS.grubCfg);
  await t.throwsAsync(armTrial(disk, B), { instanceOf: InputError, message: /\/grub\/grubenv: its variables would fill \d+ bytes; boot counting needs them under 512/ });
  t.true((await (await esp()).readFileBuffer(ESP_PATHS.grubCfg)).equals(cfgBefore));
  t.false((await (await esp()).readFileBuffer(ESP_PATHS.grubenv)).toString('latin1').includes(ENV_TRIAL));
  await disk.close();
});

test('a mounted ESP is refused with the mount point and the fix', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mounts-'));
  try {
    mkdirSync(join(root, 'block/sdz/sdz1'), { recursive: true });
    writeFileSync(join(root, 'block/sdz/sdz1/partition'), '1\n');
    writeFileSync(join(root, 'mounts'), '/dev/sdz1 /boot/efi vfat rw 0 0\n');
    writeFileSync(join(root, 'swaps'), 'Filename Type\n');
    const where = { mounts: join(root, 'mounts'), swaps: join(root, 'swaps'), sysBlock: join(root, 'block') };
    t.throws(() => assertEspNotMounted('/dev/sdz', 1, where), {
      instanceOf: SafetyError,
      message: '/dev/sdz1 (PSYOPSOSEFI) is mounted on /boot/efi; diskimg writes its sectors directly, which the mounted vfat would undo: run "umount /boot/efi" first',
    });
    t.notThrows(() => assertEspNotMounted('/dev/sdz', 2, where));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('bootedLabel: --booted-label wins, else psyopsos= on the command line', (t) => {
  t.is(bootedLabel({ bootedLabel: B, cmdline: 'psyopsos=psyopsOS-A' }), B);
  t.is(bootedLabel({ cmdline: 'BOOT_IMAGE=/kernel ro psyopsos=psyopsOS-A console=ttyS0' }), A);
  t.is(bootedLabel({ cmdline: 'ro xpsyopsos=psyopsOS-A' }), undefined);
});

test('rollback twice never rolls forward: the first ends B\'s trial, the second changes nothing and says why (issue 27.2)', async (t) => {
  if (!ready(t)) return;
  const { img, disk } = await fresh();
  await armTrial(disk, B);
  const first = await rollback(disk, A);
  t.like(first, { changed: true, state: { defaultLabel: A, trial: null, bad: B, nextBoot: { label: A, reason: 'default' } } });
  await toolsAccept(t, img, disk);
  const second = await rollback(disk, A);
  t.like(second, { changed: false, state: { defaultLabel: A, trial: null, bad: B } });
  t.is(second.message, 'nothing to roll back to: psyopsOS-B was never confirmed (it is marked bad: its trial failed or was ended), and rollback never makes an unproven slot the default; psyopsOS-A stays (set-next b tries psyopsOS-B, set-default b forces it)');
  // offline (no booted label): the same
  t.like(await rollback(disk), { changed: false, state: { defaultLabel: A } });
  t.like(await readBootState(disk), { defaultLabel: A, bad: B, nextBoot: { label: A } });
  t.like(await slotStatus(disk, A), { line: `${A} ${VERSION_A} ok`, confirmed: true });
  // After B is tried and confirmed, rollback from B goes back to A, which was confirmed before.
  await armTrial(disk, B);
  t.is(await grubBoots(disk), B);
  await markGood(disk, B);
  t.like(await rollback(disk, B), { changed: true, state: { defaultLabel: A, bad: null } });
  await toolsAccept(t, img, disk);
  await disk.close();
});

test('markStaged (update, before the slot\'s first byte): stages the target (psyopsos_staged, not bad) and ends its own trial; never the confirmed default; nothing written when already staged; rollback refuses it; a new arm, set-default or mark-bad clears it', async (t) => {
  if (!ready(t)) return;
  const { img, disk } = await fresh();
  t.false(await markStaged(disk, A), 'the confirmed default is never marked');
  t.like(await readBootState(disk), { defaultLabel: A, bad: null, staged: null });
  await armTrial(disk, B);
  t.true(await markStaged(disk, B));
  t.like(await readBootState(disk), { defaultLabel: A, trial: null, bad: null, staged: B, nextBoot: { label: A } });
  t.false(await markStaged(disk, B), 'already staged');
  const rb = await rollback(disk, A);
  t.like(rb, { changed: false, state: { defaultLabel: A, bad: null, staged: B } });
  t.is(rb.message, 'nothing to roll back to: psyopsOS-B was written but never booted (staged), and rollback never makes an unproven slot the default; psyopsOS-A stays (set-next b tries psyopsOS-B, set-default b forces it)');
  t.like(await armTrial(disk, B), { trial: { label: B }, bad: null, staged: null });
  await toolsAccept(t, img, disk);
  // a bad slot rewritten: staged replaces bad (its bytes are being overwritten)
  await rollback(disk, A);
  t.like(await readBootState(disk), { bad: B, staged: null });
  t.true(await markStaged(disk, B));
  t.like(await readBootState(disk), { bad: null, staged: B });
  // mark-bad of a staged slot: bad, no longer staged
  t.like(await markBad(disk, A, { slot: 'b' }), { changed: true, state: { bad: B, staged: null } });
  await markStaged(disk, B);
  // set-default to it clears it
  t.like(await setDefault(disk, B), { defaultLabel: B, staged: null, bad: null });
  await toolsAccept(t, img, disk);
  await disk.close();
});

test('mark-good without a booted label infers the slot as update and status do; a trial GRUB never booted is refused (issue 27.5)', async (t) => {
  if (!ready(t)) return;
  const { img, disk } = await fresh();
  t.like(await markGood(disk), { changed: false, booted: A, message: 'psyopsOS-A is already the confirmed default; nothing to do' });
  await armTrial(disk, B);
  await t.throwsAsync(markGood(disk), {
    instanceOf: InputError,
    message: 'mark-good: psyopsOS-B is armed but GRUB has not booted it yet (3 of 3 tries left): boot it first, or name the booted slot with --booted-label',
  });
  t.like(await readBootState(disk), { defaultLabel: A, trial: { label: B, triesLeft: 3 } });
  t.is(await grubBoots(disk), B);
  t.like(await markGood(disk), { changed: true, booted: B, state: { defaultLabel: B, trial: null } });
  await toolsAccept(t, img, disk);
  await t.throwsAsync(markGood(disk, { bootedLabel: 'psyopsOS-C' }), { instanceOf: InputError, message: /^--booted-label psyopsOS-C: not a slot label/ });
  await disk.close();
});

test('mark-bad: the booted trial ends and is marked bad, the next boot is the default; the default itself is refused; one grubenv write', async (t) => {
  if (!ready(t)) return;
  const { img, disk } = await fresh();
  await armTrial(disk, B);
  t.is(await grubBoots(disk), B);
  const bad = await markBad(disk, B);
  t.like(bad, { changed: true, slot: B, state: { defaultLabel: A, trial: null, failed: null, bad: B, nextBoot: { label: A, reason: 'default' } } });
  t.is(bad.message, 'psyopsOS-B marked bad: its trial ended; the next boot is psyopsOS-A (the confirmed default); rollback will not go to it (set-next b tries it again)');
  await toolsAccept(t, img, disk);
  t.is(await grubBoots(disk), A);
  t.like(await markBad(disk, A, { slot: 'other' }), { changed: false, slot: B, message: 'psyopsOS-B is already marked bad; nothing to do' });
  await t.throwsAsync(markBad(disk, A), { instanceOf: InputError, message: /^mark-bad: psyopsOS-A is the confirmed default, GRUB would have nothing else to boot/ });
  t.like(await rollback(disk, A), { changed: false });
  // offline, inferred: the slot GRUB boots next (the trial), as mark-good infers it
  await armTrial(disk, 'b', { tries: 2 });
  t.like(await markBad(disk), { changed: true, slot: B, state: { trial: null, bad: B } });
  // a fallback from B, marked bad by slot name: acknowledged, so status is ok
  await armTrial(disk, B, { tries: 1 });
  for (let i = 0; i < 2; i++) await grubBoots(disk);
  t.like(await readBootState(disk), { failed: B, bad: null });
  t.like(await markBad(disk, undefined, { slot: 'b' }), { changed: true, state: { failed: null, bad: B } });
  t.like(await slotStatus(disk, A), { confirmed: true });
  // set-default b forces it (and clears the mark); set-default a keeps a mark of B
  t.like(await setDefault(disk, A), { bad: B });
  t.like(await setDefault(disk, B), { defaultLabel: B, bad: null });
  await toolsAccept(t, img, disk);
  await disk.close();
});
