/**
 * Issue 26.16 under QEMU + OVMF + the real GRUB 2.06: a trial slot that GRUB cannot load falls
 * back to the confirmed default in the SAME boot, through the counting block's `fallback`. One
 * disk, two boots: `diskimg set-next b` arms B (3 tries), then
 *   1. B's /kernel is removed (debugfs): GRUB finds the partition, `linux /kernel` fails, and it
 *      boots A in the same boot;
 *   2. B's superblock is then zeroed (the slot unreadable after it was armed): `search --label`
 *      finds no B, and again A boots in the same boot.
 * Each boot counts one try (saved before the trial entry runs), so grubenv reads trial B with
 * 2, then 1 tries left, as grub-editenv lists it and as the model (predictBoot) says. A wrong
 * `fallback` value (a title, which GRUB 2.06 does not read, or another index) makes GRUB print
 * "Failed to boot both default and fallback entries" and boot nothing: this test fails.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAbImage } from './helpers/ab-image.js';
import { runCli } from './helpers/cli.js';
import { getBootFixtures, needBoot, skipReason } from './helpers/fixtures.js';
import { bootImage, parseInitReport, type BootResult } from './helpers/qemu.js';
import { needTools } from './helpers/skip.js';
import { openDisk } from '../packages/diskimage/src/index.js';
import { parseGrubCfg, predictBoot } from '../packages/grubcfg/src/index.js';

const skip = skipReason();
const work = mkdtempSync(join(tmpdir(), 'fallback-boot-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const A = 'psyopsOS-A';
const B = 'psyopsOS-B';
const tail = (b: BootResult) => b.log.split('\n').slice(-30).join('\n');

function sh(cmd: string, args: string[]): Buffer {
  const r = spawnSync(cmd, args, { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function partitions(img: string) {
  const disk = await openDisk(img);
  try {
    const p = (name: string) => disk.partitions.find((x) => x.name === name)!;
    return { esp: p('PSYOPSOSEFI'), b: p(B) };
  } finally {
    await disk.close();
  }
}

/** grub.cfg and grubenv as they are on the ESP now (mtools), and grubenv as grub-editenv lists it. */
function espFiles(img: string, espOffset: number) {
  const esp = `${img}@@${espOffset}`;
  const cfg = sh('mcopy', ['-i', esp, '::/grub/grub.cfg', '-']).toString('utf8');
  const env = sh('mcopy', ['-i', esp, '::/grub/grubenv', '-']);
  const file = join(work, 'grubenv');
  writeFileSync(file, env);
  return { cfg, env, listed: sh('grub-editenv', [file, 'list']).toString() };
}

/** Boot once; A must come up after GRUB failed to load B and fell back in the same boot. */
async function bootFallsBack(t: ExecutionContext, img: string, espOffset: number, note: string, cannotLoad: RegExp): Promise<boolean> {
  const f = getBootFixtures();
  const before = espFiles(img, espOffset);
  const model = predictBoot(parseGrubCfg(before.cfg), before.env);
  t.like(model, { label: B, reason: 'trial', fallbackLabel: A }, 'the model: B on trial, A its fallback');
  // A broken fallback leaves GRUB at its menu for ever: stop well before the default 180 s.
  const r = await bootImage(img, { until: /PSYOPS-TEST-INIT version: VERSION=\S+/, timeoutMs: 150_000 });
  t.log(`${note}: ${(r.durationMs / 1000).toFixed(1)} s`);
  if (r.timedOut || r.panicked) {
    t.fail(`${note}: no slot came up in ${(r.durationMs / 1000).toFixed(0)} s\n${tail(r)}`);
    return false;
  }
  t.regex(r.log, /Booting .psyopsOS-B'/, `${note}: GRUB must try B first\n${tail(r)}`);
  t.regex(r.log, cannotLoad, `${note}: GRUB must fail to load B\n${tail(r)}`);
  t.regex(r.log, /Falling back to .psyopsOS-A'/, `${note}: GRUB must fall back to A in this boot\n${tail(r)}`);
  t.notRegex(r.log, /Failed to boot both default and fallback entries/, tail(r));
  const got = parseInitReport(r.log);
  t.is(got.psyopsos, A, `${note}: booted ${got.psyopsos}\n${tail(r)}`);
  t.is(got.version, f.versionA);
  // GRUB counted the try before it ran B's entry: grubenv is the model's write-back, byte for byte.
  const after = espFiles(img, espOffset);
  t.true(after.env.equals(model.writeBack!), `${note}: grubenv after the boot\n${after.listed}`);
  t.is(after.cfg, before.cfg, 'GRUB never writes grub.cfg');
  return true;
}

test.serial('a trial slot GRUB cannot load (no /kernel, then no superblock) falls back to the confirmed default in the same boot', async (t) => {
  if (!needBoot(t, skip)) return;
  if (!needTools(t, 'debugfs', 'mcopy', 'grub-editenv', 'fsck.fat')) return;
  t.timeout(8 * 60_000);
  const f = getBootFixtures();
  const img = await buildAbImage(work, 'fallback.img', f);
  const arm = await runCli(['set-next', img, 'b', '--tries', '3']);
  t.is(arm.code, 0, arm.stderr);
  const { esp, b } = await partitions(img);
  t.is(espFiles(img, esp.offset).listed, `psyopsos_trial=${B}\npsyopsos_tries=3\npsyopsos_armed=3\n`);

  sh('debugfs', ['-w', '-R', 'rm /kernel', `${img}?offset=${b.offset}`]);
  if (!(await bootFallsBack(t, img, esp.offset, 'B without /kernel', /file .\/kernel' not found/))) return;
  t.is(espFiles(img, esp.offset).listed, `psyopsos_trial=${B}\npsyopsos_tries=2\npsyopsos_armed=3\n`);

  // The primary superblock (1024 bytes at 1024) zeroed: GRUB's ext2 driver no longer knows B.
  const fd = openSync(img, 'r+');
  writeSync(fd, Buffer.alloc(1024), 0, 1024, b.offset + 1024);
  closeSync(fd);
  await bootFallsBack(t, img, esp.offset, 'B without a superblock', /no such device: psyopsOS-B/);
  t.is(espFiles(img, esp.offset).listed, `psyopsos_trial=${B}\npsyopsos_tries=1\npsyopsos_armed=3\n`);

  // The ESP GRUB wrote in place is still a clean FAT; status tells the trial goes on.
  const slice = join(work, 'esp.img');
  sh('dd', [`if=${img}`, `of=${slice}`, 'bs=512', `skip=${esp.offset / 512}`, `count=${esp.size / 512}`, 'status=none']);
  const fsck = spawnSync('fsck.fat', ['-n', slice], { encoding: 'utf8' });
  t.is(fsck.status, 0, fsck.stdout + fsck.stderr);
  const show = await runCli(['show', img, '--json']);
  t.like(show.json.esp.boot, { defaultLabel: A, trial: { label: B, triesLeft: 1, tries: 3 }, failed: null, nextBoot: { label: B, reason: 'trial' } });
});
