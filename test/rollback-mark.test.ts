/**
 * Issue 27.2 and 27.5 through the CLI on an image file (offline, no psyopsos= on this machine's
 * command line): rollback never rolls forward to an unproven slot; mark-good infers the booted
 * slot as status, check and update do; after a fallback, mark-good of the running slot clears it;
 * mark-bad gives up on a trial. GRUB's side of a boot is played by the model (predictBoot's
 * write-back, copied onto the ESP with mtools; boot-counting.test.ts proves it against the real
 * GRUB). Every grubenv left is listed by grub-editenv, every ESP passes fsck.fat -n, and a
 * command that changes nothing leaves the ESP byte-identical.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAbImage, VERSION_A } from './helpers/ab-image.js';
import { runCli } from './helpers/cli.js';
import { getBootFixtures, needBoot, skipReason } from './helpers/fixtures.js';
import { needTools } from './helpers/skip.js';
import { openDisk } from '../packages/diskimage/src/index.js';
import { parseGrubCfg, predictBoot } from '../packages/grubcfg/src/index.js';
import { readHealth } from '../packages/ab/src/health.js';

const skip = skipReason({ qemu: false, image: true });
const work = mkdtempSync(join(tmpdir(), 'rollback-mark-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const A = 'psyopsOS-A';
const B = 'psyopsOS-B';
let base: Promise<string> | undefined;
let n = 0;

function sh(cmd: string, args: string[], input?: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input, env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function fresh(t: ExecutionContext): Promise<{ img: string; esp: { offset: number; size: number } } | undefined> {
  if (!needBoot(t, skip, 'boot-fixtures') || !needTools(t, 'mcopy', 'grub-editenv', 'fsck.fat')) return undefined;
  base ??= buildAbImage(work, 'base.img', getBootFixtures()); // one build shared by the concurrent tests
  const img = join(work, `t${n++}.img`);
  sh('cp', ['--sparse=always', await base, img]);
  const disk = await openDisk(img);
  const esp = disk.partitions.find((p) => p.name === 'PSYOPSOSEFI')!;
  await disk.close();
  return { img, esp: { offset: esp.offset, size: esp.size } };
}

const espOf = (img: string, esp: { offset: number }) => `${img}@@${esp.offset}`;

/** The ESP's bytes' sha256. */
function espHash(img: string, esp: { offset: number; size: number }): string {
  const b = readFileSync(img).subarray(esp.offset, esp.offset + esp.size);
  return createHash('sha256').update(b).digest('hex');
}

/** grubenv as grub-editenv lists it, and the ESP checked by fsck.fat -n. */
function toolsSay(t: ExecutionContext, img: string, esp: { offset: number; size: number }): string {
  const file = join(work, `grubenv${n++}`);
  writeFileSync(file, sh('mcopy', ['-i', espOf(img, esp), '::/grub/grubenv', '-']));
  const slice = join(work, `esp${n++}.img`);
  sh('dd', [`if=${img}`, `of=${slice}`, 'bs=512', `skip=${esp.offset / 512}`, `count=${esp.size / 512}`, 'status=none']);
  const fsck = spawnSync('fsck.fat', ['-n', slice], { encoding: 'utf8' });
  t.is(fsck.status, 0, fsck.stdout + fsck.stderr);
  rmSync(slice);
  return sh('grub-editenv', [file, 'list']).toString();
}

/** Play GRUB for one boot: the model's choice, its save_env applied to the ESP's grubenv. */
function grubBoots(img: string, esp: { offset: number }): string | undefined {
  const cfg = parseGrubCfg(sh('mcopy', ['-i', espOf(img, esp), '::/grub/grub.cfg', '-']).toString('utf8'));
  const d = predictBoot(cfg, sh('mcopy', ['-i', espOf(img, esp), '::/grub/grubenv', '-']));
  if (d.writeBack) {
    const f = join(work, `wb${n++}`);
    writeFileSync(f, d.writeBack);
    sh('mcopy', ['-o', '-i', espOf(img, esp), f, '::/grub/grubenv']);
  }
  return d.label;
}

async function ok(t: ExecutionContext, args: string[]) {
  const r = await runCli(args);
  t.is(r.code, 0, `diskimg ${args.join(' ')}: ${r.stderr}`);
  t.is(r.stderr, '');
  return r;
}

test('rollback pressed twice: the first ends the trial, the second changes nothing and says so; B never becomes the default (27.2)', async (t) => {
  const f = await fresh(t);
  if (!f) return;
  await ok(t, ['set-next', f.img, 'b']);
  const first = await ok(t, ['rollback', f.img]);
  t.regex(first.stdout, /^rolled back: psyopsOS-B's trial ended and it is marked bad; psyopsOS-A stays the confirmed default\n/);
  t.is(toolsSay(t, f.img, f.esp), `psyopsos_bad=${B}\n`);
  const before = espHash(f.img, f.esp);
  const second = await ok(t, ['rollback', f.img, '--json']);
  t.like(second.json, { changed: false, state: { defaultLabel: A, trial: null, bad: B, nextBoot: { label: A } } });
  t.regex(second.json.message, /^nothing to roll back to: psyopsOS-B was never confirmed/);
  const third = await ok(t, ['rollback', f.img]);
  t.regex(third.stdout, /^nothing to roll back to: .*set-next b tries psyopsOS-B, set-default b forces it\)\n/);
  t.is(espHash(f.img, f.esp), before, 'a rollback that changes nothing writes nothing');
  const status = await runCli(['status', f.img]);
  t.is(status.code, 0);
  t.is(status.stdout, `${A} ${VERSION_A} ok\n`);
  t.is(grubBoots(f.img, f.esp), A);
});

test('mark-good infers the booted slot on an image like status and update; after a fallback it clears the fallback, and rollback still refuses B (27.5)', async (t) => {
  const f = await fresh(t);
  if (!f) return;
  const first = await ok(t, ['mark-good', f.img]);
  t.is(first.stdout, `${A} is already the confirmed default; nothing to do\n`);
  await ok(t, ['set-next', f.img, 'b', '--tries', '1']);
  const early = await runCli(['mark-good', f.img]);
  t.is(early.code, 1);
  t.is(early.stderr, 'diskimg: mark-good: psyopsOS-B is armed but GRUB has not booted it yet (1 of 1 tries left): boot it first, or name the booted slot with --booted-label\n');
  t.deepEqual([grubBoots(f.img, f.esp), grubBoots(f.img, f.esp)], [B, A]); // B's one try, then GRUB falls back
  t.is((await runCli(['status', f.img])).code, 1, 'fell back: not ok');
  const health = () => readHealth({ disk: f.img, bootedLabel: A, startedAt: Date.now(), procUptime: '/nonexistent' });
  t.like(await health(), { ok: false, state: 'fell-back' }, 'serve answers 503');
  const good = await ok(t, ['mark-good', f.img, '--json']);
  t.like(good.json, { booted: A, changed: true, state: { defaultLabel: A, failed: null, bad: B } });
  t.is(toolsSay(t, f.img, f.esp), `psyopsos_bad=${B}\n`);
  const status = await runCli(['status', f.img]);
  t.is(status.code, 0, status.stdout);
  t.like(await health(), { ok: true, state: 'confirmed', fellBack: null }, 'serve answers 200');
  t.regex((await ok(t, ['rollback', f.img])).stdout, /^nothing to roll back to: psyopsOS-B was never confirmed/);
  // The same with the label given, as on the node after the fallback.
  t.is((await ok(t, ['mark-good', f.img, '--booted-label', A])).stdout, `${A} is already the confirmed default; nothing to do\n`);
});

test('mark-bad: gives up on the booted trial (the next boot is the default); the confirmed default is refused with the ESP untouched', async (t) => {
  const f = await fresh(t);
  if (!f) return;
  await ok(t, ['set-next', f.img, 'b']);
  t.is(grubBoots(f.img, f.esp), B);
  const bad = await ok(t, ['mark-bad', f.img]);
  t.regex(bad.stdout, /^psyopsOS-B marked bad: its trial ended; the next boot is psyopsOS-A \(the confirmed default\)/);
  t.regex(bad.stdout, /marked bad: psyopsOS-B \(rollback will not make it the default\)\nnext boot: psyopsOS-A \(default\)\n$/);
  t.is(toolsSay(t, f.img, f.esp), `psyopsos_bad=${B}\n`);
  t.is(grubBoots(f.img, f.esp), A);
  const before = espHash(f.img, f.esp);
  const refused = await runCli(['mark-bad', f.img, '--booted-label', A]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^diskimg: mark-bad: psyopsOS-A is the confirmed default, GRUB would have nothing else to boot: make the other slot the default first \(rollback, or set-default\)\n$/);
  const usage = await runCli(['mark-bad', f.img, '--slot', 'c']);
  t.is(usage.code, 2);
  t.is(usage.stderr.split('\n').length, 2);
  t.is(espHash(f.img, f.esp), before);
  const again = await ok(t, ['mark-bad', f.img, '--slot', 'other', '--booted-label', A]);
  t.regex(again.stdout, /^psyopsOS-B is already marked bad; nothing to do\n/);
  t.is(espHash(f.img, f.esp), before);
  // set-next b tries it again: the mark goes
  await ok(t, ['set-next', f.img, 'b']);
  t.is(toolsSay(t, f.img, f.esp), `psyopsos_trial=${B}\npsyopsos_tries=3\npsyopsos_armed=3\n`);
});

test('update --no-switch stages the written slot (psyopsos_staged): rollback refuses it (B never becomes the default), set-next b clears the mark (27.2)', async (t) => {
  const f = await fresh(t);
  if (!f) return;
  // buildAbImage signed osB.tar as VERSION_B (newer than A's) with base.img.pub.
  const up = await ok(t, ['update', f.img, '--slot', 'inactive', '--os-tar', join(work, 'osB.tar'), '--pubkey', join(work, 'base.img.pub'), '--no-switch']);
  t.regex(up.stdout, /^wrote psyopsOS-B .*\npsyopsOS-B staged \(not armed\): rollback will not make it the default; set-next b tries it\n$/s);
  t.is(toolsSay(t, f.img, f.esp), `psyopsos_staged=${B}\n`);
  const before = espHash(f.img, f.esp);
  const rb = await ok(t, ['rollback', f.img, '--json']);
  t.like(rb.json, { changed: false, state: { defaultLabel: A, trial: null, bad: null, staged: B, nextBoot: { label: A } } });
  t.regex(rb.json.message, /^nothing to roll back to: psyopsOS-B was written but never booted \(staged\),.*set-next b tries psyopsOS-B/);
  t.is(espHash(f.img, f.esp), before, 'the refused rollback writes nothing');
  t.is(toolsSay(t, f.img, f.esp), `psyopsos_staged=${B}\n`);
  t.is(grubBoots(f.img, f.esp), A);
  // set-next b tries it: the mark goes
  await ok(t, ['set-next', f.img, 'b']);
  t.is(toolsSay(t, f.img, f.esp), `psyopsos_trial=${B}\npsyopsos_tries=3\npsyopsos_armed=3\n`);
});
