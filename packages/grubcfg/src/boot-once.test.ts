/**
 * The opt-in boot-once block (renderGrubCfg({ bootOnce: true })) under real GRUB: an image made
 * with upstream's recipe (test/fixtures/upstream-image.sh) carrying our grub.cfg and our grubenv
 * with next_entry=psyopsOS-B boots B once, GRUB's save_env clears next_entry on the FAT ESP, and
 * the next boot falls back to the default A. Without any grubenv (an upstream-made ESP) the
 * default boots as before.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildUpstreamImage, getBootFixtures, skipReason, upstreamLayout } from '../../../test/helpers/fixtures.js';
import { bootImage, parseInitReport, type BootResult } from '../../../test/helpers/qemu.js';
import { decodeGrubenv, encodeGrubenv, parseGrubCfg, predictBoot, renderGrubCfg } from './index.js';

const skip = skipReason({ image: true });
const work = mkdtempSync(join(tmpdir(), 'boot-once-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[]): Buffer {
  const r = spawnSync(cmd, args, { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

const tail = (b: BootResult) => b.log.split('\n').slice(-25).join('\n');

test.serial('boot-once: without grubenv A boots; next_entry in grubenv boots B once, is cleared by GRUB, then A again', async (t) => {
  if (skip) {
    t.log(`skipped: ${skip}`);
    t.pass();
    return;
  }
  const f = getBootFixtures();
  const cfg = join(work, 'grub.cfg');
  writeFileSync(
    cfg,
    renderGrubCfg({ slots: ['psyopsOS-A', 'psyopsOS-B'], defaultLabel: 'psyopsOS-A', lastUpdated: 1741406642, timeout: 0, bootOnce: true }),
  );
  const img = join(work, 'once.img');
  buildUpstreamImage(img, { osTarA: f.osTarA, osTarB: f.osTarB, espTar: f.espTar, grubCfg: cfg });
  const esp = `${img}@@${upstreamLayout().esp.offset}`;

  // No grubenv at all (an upstream-made ESP): load_env fails inside the if, the default boots.
  const parsed = parseGrubCfg(readFileSync(cfg, 'utf8'));
  t.is(predictBoot(parsed).label, 'psyopsOS-A');
  const plain = await bootImage(img);
  t.false(plain.timedOut, tail(plain));
  t.is(parseInitReport(plain.log).psyopsos, 'psyopsOS-A', tail(plain));

  const env = join(work, 'grubenv');
  writeFileSync(env, encodeGrubenv({ next_entry: 'psyopsOS-B' }));
  run('mcopy', ['-o', '-i', esp, env, '::/grub/grubenv']);

  t.is(predictBoot(parsed, decodeGrubenv(readFileSync(env))).label, 'psyopsOS-B'); // the model agrees with GRUB below
  const first = await bootImage(img);
  t.false(first.timedOut, tail(first));
  const r1 = parseInitReport(first.log);
  t.is(r1.psyopsos, 'psyopsOS-B', tail(first));
  t.is(r1.version, f.versionB, tail(first));

  // GRUB rewrote the block in place: next_entry is now empty (read with mtools + grub-editenv too).
  const after = run('mcopy', ['-i', esp, '::/grub/grubenv', '-']);
  t.is(after.length, 1024);
  t.deepEqual(decodeGrubenv(after, { name: 'ESP:/grub/grubenv' }), new Map([['next_entry', '']]));
  writeFileSync(env, after);
  t.is(run('grub-editenv', [env, 'list']).toString(), 'next_entry=\n');

  t.is(predictBoot(parsed, decodeGrubenv(after)).label, 'psyopsOS-A');
  const second = await bootImage(img);
  t.false(second.timedOut, tail(second));
  const r2 = parseInitReport(second.log);
  t.is(r2.psyopsos, 'psyopsOS-A', tail(second));
  t.is(r2.version, f.versionA, tail(second));
});
