/**
 * Issue 9's end-to-end story through the CLI and real GRUB under QEMU, one disk persisting:
 * create (A good) → set-next b (3 tries) → boots B, B, B → A (fell back) → A again; status and
 * show say B failed; mark-good from A clears the fallback (status ok, B marked bad) → rollback
 * changes nothing → set-next b again → boot B → mark-good
 * --booted-label psyopsOS-B → boots B, B. Before every boot the model (readBootState) names the
 * slot; GRUB must agree.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBootState } from '../packages/ab/src/index.js';
import { openDisk } from '../packages/diskimage/src/index.js';
import { buildAbImage, VERSION_A, VERSION_B } from './helpers/ab-image.js';
import { runCli } from './helpers/cli.js';
import { getBootFixtures, needBoot, skipReason } from './helpers/fixtures.js';
import { bootImage, parseInitReport } from './helpers/qemu.js';

const skip = skipReason();
const work = mkdtempSync(join(tmpdir(), 'story-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const A = 'psyopsOS-A';
const B = 'psyopsOS-B';

test.serial('story: trial B fails three times and A takes over; B tried again and confirmed stays', async (t) => {
  if (!needBoot(t, skip)) return;
  t.timeout(40 * 60_000); // nine boots, 10-40 s each on a loaded machine
  const f = getBootFixtures();
  const img = await buildAbImage(work, 'story.img', f);
  let boots = 0;
  const boot = async (expect: string, note: string) => {
    const disk = await openDisk(img);
    const model = (await readBootState(disk)).nextBoot;
    await disk.close();
    t.is(model.label, expect, `model before boot ${boots + 1} (${note})`);
    const r = await bootImage(img, { until: /PSYOPS-TEST-INIT version: VERSION=\S+/ });
    const got = parseInitReport(r.log);
    boots++;
    t.is(got.psyopsos, expect, `boot ${boots} (${note})\n${r.log.split('\n').slice(-20).join('\n')}`);
    t.is(got.version, expect === B ? f.versionB : f.versionA);
    t.log(`boot ${boots}: ${got.psyopsos} (${note}; model: ${model.label} ${model.reason}) in ${(r.durationMs / 1000).toFixed(1)} s`);
  };
  const status = async (booted?: string) => {
    const r = await runCli(['status', img, ...(booted ? ['--booted-label', booted] : [])]);
    return { code: r.code, line: r.stdout.trim(), err: r.stderr };
  };

  t.deepEqual(await status(), { code: 0, line: `${A} ${VERSION_A} ok`, err: '' });
  await boot(A, 'fresh image');

  const arm = await runCli(['set-next', img, 'b']);
  t.is(arm.code, 0, arm.stderr);
  t.regex(arm.stdout, /trial: psyopsOS-B, 3 of 3 tries left/);
  t.deepEqual(await status(), { code: 1, line: `${B} ${VERSION_B} TRIAL 3/3`, err: '' });
  for (const left of [2, 1, 0]) {
    await boot(B, `trial, ${left + 1} tries before`);
    t.deepEqual(await status(B), { code: 1, line: `${B} ${VERSION_B} TRIAL ${left}/3`, err: '' });
  }
  await boot(A, 'no tries left: GRUB falls back and records it');
  t.deepEqual(await status(A), { code: 1, line: `${A} ${VERSION_A} FELL BACK from B ${VERSION_B}`, err: '' });
  const show = await runCli(['show', img]);
  t.regex(show.stdout, /last failed trial: psyopsOS-B/);
  const showJson = await runCli(['show', img, '--json']);
  t.like(showJson.json.esp.boot, { defaultLabel: A, trial: null, failed: B, nextBoot: { label: A, reason: 'default' } });
  // Confirming the slot that runs clears the fallback (issue 27.5); B stays unproven (27.2).
  const ack = await runCli(['mark-good', img, '--booted-label', A]);
  t.is(ack.code, 0, ack.stderr);
  t.regex(ack.stdout, /^psyopsOS-A confirmed; psyopsOS-B failed its trial and is marked bad/);
  t.deepEqual(await status(A), { code: 0, line: `${A} ${VERSION_A} ok`, err: '' });
  const noRollForward = await runCli(['rollback', img, '--booted-label', A]);
  t.is(noRollForward.code, 0, noRollForward.stderr);
  t.regex(noRollForward.stdout, /^nothing to roll back to: psyopsOS-B was never confirmed \(it is marked bad/);
  await boot(A, 'fallen back, stays');

  t.is((await runCli(['set-next', img, 'b', '--tries', '3'])).code, 0);
  await boot(B, 'second trial');
  const good = await runCli(['mark-good', img, '--booted-label', B, '--json']);
  t.is(good.code, 0, good.stderr);
  t.like(good.json, { booted: B, changed: true, state: { defaultLabel: B, trial: null, failed: null } });
  const again = await runCli(['mark-good', img, '--booted-label', B]);
  t.is(again.code, 0);
  t.is(again.stdout, 'psyopsOS-B is already the confirmed default; nothing to do\n');
  t.deepEqual(await status(B), { code: 0, line: `${B} ${VERSION_B} ok`, err: '' });
  const sj = await runCli(['status', img, '--booted-label', B, '--json']);
  t.like(sj.json, { booted: B, confirmed: true, line: `${B} ${VERSION_B} ok`, versions: { [A]: VERSION_A, [B]: VERSION_B } });
  await boot(B, 'confirmed');
  await boot(B, 'confirmed, again');

  // Offline, the booted slot is inferred as status and update do: the slot GRUB boots next.
  const inferred = await runCli(['mark-good', img]);
  t.is(inferred.code, 0, inferred.stderr);
  t.is(inferred.stdout, 'psyopsOS-B is already the confirmed default; nothing to do\n');
  const rb = await runCli(['rollback', img, '--booted-label', B, '--json']);
  t.is(rb.code, 0, rb.stderr);
  t.like(rb.json.state, { defaultLabel: A, nextBoot: { label: A } });
  t.log(`${boots} boots of one persisting disk`);
});
