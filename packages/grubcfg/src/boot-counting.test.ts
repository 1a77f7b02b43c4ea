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
import { buildUpstreamImage, getBootFixtures, skipReason, upstreamLayout } from '../../../test/helpers/fixtures.js';
import { bootImage, parseInitReport, type BootResult } from '../../../test/helpers/qemu.js';
import { decodeGrubenv, envblkIterate, envblkOpen, parseGrubCfg, predictBoot, renderGrubCfg, setGrubCfgDefault, withCountingBlock } from './index.js';
import { PSYOPS_NAMES } from '@diskimg/partitions';

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

test.serial('boot counting under real GRUB: every state boots the model\'s slot and leaves the model\'s grubenv', async (t) => {
  if (skip) {
    t.log(`skipped: ${skip}`);
    t.pass();
    return;
  }
  const f = getBootFixtures();
  const { a: A, b: B } = PSYOPS_NAMES;
  const cfgA = withCountingBlock(renderGrubCfg({ slots: [A, B], defaultLabel: A, lastUpdated: 1764374400, timeout: 0 }));
  const cfgs: Record<string, string> = { [A]: cfgA, [B]: setGrubCfgDefault(cfgA, B) };
  const cfgFile = join(work, 'grub.cfg');
  writeFileSync(cfgFile, cfgA);
  const img = join(work, 'counting.img');
  buildUpstreamImage(img, { osTarA: f.osTarA, osTarB: f.osTarB, espTar: f.espTar, grubCfg: cfgFile });
  const esp = `${img}@@${upstreamLayout().esp.offset}`;
  const envFile = join(work, 'grubenv');
  let current = A;
  let compared = 0;
  const seconds: number[] = [];

  for (const c of bootCases()) {
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
    t.is(model.label, c.expect.label, `${c.name}: model vs table`);
    t.is(model.reason, c.expect.reason, `${c.name}: model vs table`);

    const r = await bootImage(img, { until: INIT_DONE });
    seconds.push(r.durationMs / 1000);
    t.false(r.timedOut || r.panicked, `${c.name}\n${tail(r)}`);
    const got = parseInitReport(r.log);
    t.is(got.psyopsos, model.label, `${c.name}: GRUB booted ${got.psyopsos}, the model says ${model.label}\n${tail(r)}`);
    t.is(got.version, got.psyopsos === B ? f.versionB : f.versionA, c.name);
    t.notRegex(r.log, /Press any key/, `${c.name}: GRUB must not wait for a key\n${tail(r)}`);

    // What GRUB left on the ESP: the model's write-back, or the file untouched.
    const after = run('mcopy', ['-i', esp, '::/grub/grubenv', '-'], false);
    const expected = model.writeBack ?? c.env;
    if (expected === undefined) t.not(after.status, 0, `${c.name}: GRUB created a grubenv`);
    else {
      t.is(after.status, 0, `${c.name}: ${after.err}`);
      t.true(after.out.equals(expected), `${c.name}: grubenv after boot:\n${after.out.toString('latin1').replace(/#+$/, '')}\nmodel:\n${expected.toString('latin1').replace(/#+$/, '')}`);
      if (envblkOpen(after.out) && after.out.length === 1024) {
        writeFileSync(envFile, after.out);
        const listed = run('grub-editenv', [envFile, 'list']).out.toString();
        t.is(listed, envblkIterate(envblkOpen(expected)!).map(([k, v]) => `${k}=${v}\n`).join(''), c.name);
        if (model.writeBack) t.notThrows(() => decodeGrubenv(after.out), c.name);
      }
    }
    compared++;
    t.log(`${c.name}: ${got.psyopsos} (${model.reason})${model.writeBack ? ', grubenv rewritten as modelled' : ''} in ${(r.durationMs / 1000).toFixed(1)} s`);
  }
  t.log(`${compared} states compared model vs real GRUB; boots ${Math.min(...seconds).toFixed(1)}–${Math.max(...seconds).toFixed(1)} s`);
});
