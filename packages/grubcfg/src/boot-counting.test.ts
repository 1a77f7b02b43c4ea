/**
 * The boot-counting block under the real GRUB 2.06 (OVMF + the fixture BOOTX64.EFI), state by
 * state (test/helpers/boot-states.ts): for each grub.cfg default + grubenv, the slot that boots
 * must be the model's (predictBoot) and the hand-written expectation, and the grubenv GRUB leaves
 * on the FAT ESP (read back with mtools, listed with grub-editenv) must be the model's write-back
 * byte for byte. One image made with upstream's recipe; each case rewrites grub.cfg and grubenv
 * with mtools and boots it.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootCases } from '../../../test/helpers/boot-states.js';
import { buildUpstreamImage, getBootFixtures, needBoot, skipReason, upstreamLayout } from '../../../test/helpers/fixtures.js';
import { bootImage, parseInitReport, type BootResult } from '../../../test/helpers/qemu.js';
import { decodeGrubenv, envblkIterate, envblkOpen, parseGrubCfg, predictBoot, renderGrubCfg, setGrubCfgDefault, withCountingBlock } from './index.js';
import { PSYOPS_NAMES } from '@diskimg/partitions/internal';

const skip = skipReason({ image: true });
const work = mkdtempSync(join(tmpdir(), 'boot-counting-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[], ok = true): { status: number; out: Buffer; err: string } {
  const r = spawnSync(cmd, args, { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (ok && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stdout}${r.stderr}`);
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr.toString() };
}

const tail = (b: BootResult) => b.log.split('\n').slice(-25).join('\n');
const INIT_DONE = /PSYOPS-TEST-INIT version: VERSION=\S+/;

const { a: A, b: B } = PSYOPS_NAMES;
const cfgA = withCountingBlock(renderGrubCfg({ slots: [A, B], defaultLabel: A, lastUpdated: 1764374400, timeout: 0 }));
const cfgs: Record<string, string> = { [A]: cfgA, [B]: setGrubCfgDefault(cfgA, B) };
const cfgFile = join(work, 'grub.cfg');
const envFile = join(work, 'grubenv');
const img = join(work, 'counting.img');
const esp = `${img}@@${upstreamLayout().esp.offset}`;
let current: string = A;
let compared = 0;
const seconds: number[] = [];

test.before(() => {
  if (skip) return;
  const f = getBootFixtures();
  writeFileSync(cfgFile, cfgA);
  buildUpstreamImage(img, { osTarA: f.osTarA, osTarB: f.osTarB, espTar: f.espTar, grubCfg: cfgFile });
});

// One test per state (a boot takes 10-40 s depending on the machine's load).
for (const c of bootCases()) {
  test.serial(`real GRUB: ${c.name} → ${c.expect.label} (${c.expect.reason}), grubenv left as modelled`, async (t) => {
    if (!needBoot(t, skip)) return;
    const f = getBootFixtures();
    if (c.defaultLabel !== current) {
      writeFileSync(cfgFile, cfgs[c.defaultLabel]!);
      run('mcopy', ['-o', '-i', esp, cfgFile, '::/grub/grub.cfg']);
      current = c.defaultLabel;
    }
    run('mdel', ['-i', esp, '::/grub/grubenv'], false);
    if (c.env) {
      writeFileSync(envFile, c.env);
      run('mcopy', ['-o', '-i', esp, envFile, '::/grub/grubenv']);
    }
    const model = predictBoot(parseGrubCfg(cfgs[c.defaultLabel]!), c.env);
    t.is(model.label, c.expect.label, 'model vs table');
    t.is(model.reason, c.expect.reason, 'model vs table');

    const r = await bootImage(img, { until: INIT_DONE });
    seconds.push(r.durationMs / 1000);
    t.false(r.timedOut || r.panicked, tail(r));
    const got = parseInitReport(r.log);
    t.is(got.psyopsos, model.label, `GRUB booted ${got.psyopsos}, the model says ${model.label}\n${tail(r)}`);
    t.is(got.version, got.psyopsos === B ? f.versionB : f.versionA);
    t.notRegex(r.log, /Press any key/, `GRUB must not wait for a key\n${tail(r)}`);

    // What GRUB left on the ESP: the model's write-back, or the file untouched.
    const after = run('mcopy', ['-i', esp, '::/grub/grubenv', '-'], false);
    const expected = model.writeBack ?? c.env;
    if (expected === undefined) t.not(after.status, 0, 'GRUB created a grubenv');
    else {
      t.is(after.status, 0, after.err);
      t.true(after.out.equals(expected), `grubenv after boot:\n${after.out.toString('latin1').replace(/#+$/, '')}\nmodel:\n${expected.toString('latin1').replace(/#+$/, '')}`);
      if (envblkOpen(after.out) && after.out.length === 1024) {
        writeFileSync(envFile, after.out);
        const listed = run('grub-editenv', [envFile, 'list']).out.toString();
        t.is(listed, envblkIterate(envblkOpen(expected)!).map(([k, v]) => `${k}=${v}\n`).join(''));
        if (model.writeBack) t.notThrows(() => decodeGrubenv(after.out));
      }
    }
    compared++;
    t.log(`${got.psyopsos} (${model.reason})${model.writeBack ? ', grubenv rewritten as modelled' : ''} in ${(r.durationMs / 1000).toFixed(1)} s`);
  });
}

test.serial('real GRUB: a trial slot GRUB cannot find falls back to the default in the same boot; the try is counted', async (t) => {
  if (!needBoot(t, skip)) return;
  const C = 'psyopsOS-C';
  const cfgC = withCountingBlock(renderGrubCfg({ slots: [A, B, C], defaultLabel: A, lastUpdated: 1764374400, timeout: 0 }));
  writeFileSync(cfgFile, cfgC);
  run('mcopy', ['-o', '-i', esp, cfgFile, '::/grub/grub.cfg']);
  const envC = Buffer.from(bootCases().find((c) => c.name === 'trial B, 3 tries')!.env!.toString('latin1').replace(`psyopsos_trial=${B}`, `psyopsos_trial=${C}`), 'latin1');
  writeFileSync(envFile, envC);
  run('mcopy', ['-o', '-i', esp, envFile, '::/grub/grubenv']);
  const model = predictBoot(parseGrubCfg(cfgC), envC);
  t.like(model, { label: C, reason: 'trial', fallbackLabel: A });
  const r = await bootImage(img, { until: INIT_DONE });
  t.is(parseInitReport(r.log).psyopsos, model.fallbackLabel, tail(r));
  t.regex(r.log, /Falling back to .psyopsOS-A/, tail(r));
  t.true(run('mcopy', ['-i', esp, '::/grub/grubenv', '-']).out.equals(model.writeBack!));
  compared++;
  t.log(`${model.fallbackLabel} via fallback in ${(r.durationMs / 1000).toFixed(1)} s`);
});

test.after(() => {
  if (!skip) console.log(`boot-counting: ${compared} states compared model vs real GRUB; boots ${Math.min(...seconds).toFixed(1)}-${Math.max(...seconds).toFixed(1)} s`);
});
