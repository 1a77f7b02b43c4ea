/**
 * The boot-counting model (predictBoot) state by state, the GRUB envblk port against grub-editenv
 * (the same envblk.c), and the torn-write argument: every block we write and every block GRUB
 * writes from it keeps its content under 512 bytes, so a write torn between the two sectors is
 * the old or the new block.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { A, B, bootCases, tear, trialEnv } from '../../../test/helpers/boot-states.js';
import {
  decodeGrubenv,
  encodeGrubenv,
  envContentLength,
  parseGrubCfg,
  predictBoot,
  renderGrubCfg,
  saveEnv,
  setGrubCfgDefault,
  withCountingBlock,
  ENV_FAILED,
  ENV_TRIAL,
  ENV_TRIES,
  MAX_TRIES,
} from './index.js';
import { needTools } from '../../../test/helpers/skip.js';

const cfgText = withCountingBlock(renderGrubCfg({ slots: [A, B], defaultLabel: A, lastUpdated: 1764374400, timeout: 0 }));
const cfgFor = (def: string) => parseGrubCfg(def === A ? cfgText : setGrubCfgDefault(cfgText, def));
const dir = mkdtempSync(join(tmpdir(), 'decision-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

for (const c of bootCases({ allTries: true })) {
  test(`model: ${c.name} → ${c.expect.label} (${c.expect.reason})`, (t) => {
    const d = predictBoot(cfgFor(c.defaultLabel), c.env);
    t.is(d.label, c.expect.label);
    t.is(d.reason, c.expect.reason);
    if (c.expect.reason === 'trial') {
      t.is(d.fallbackLabel, c.defaultLabel);
      const after = decodeGrubenv(d.writeBack!);
      t.is(after.get(ENV_TRIES), c.expect.triesAfter);
      t.is(after.get(ENV_TRIAL), decodeGrubenv(c.env!).get(ENV_TRIAL));
    } else if (c.expect.reason === 'fell-back') {
      const after = decodeGrubenv(d.writeBack!);
      t.is(after.get(ENV_FAILED), c.expect.failed);
      t.false(after.has(ENV_TRIAL));
      t.false(after.has(ENV_TRIES));
      // after the fall-back GRUB writes nothing more: the state is stable
      t.like(predictBoot(cfgFor(c.defaultLabel), d.writeBack), { label: c.defaultLabel, reason: 'default', writeBack: undefined });
    } else t.is(d.writeBack, undefined);
  });
}

test('the table\'s "failed" block is exactly what GRUB writes when tries run out', (t) => {
  const cases = bootCases();
  const old = cases.find((c) => c.name === 'trial B, 0 tries')!.env;
  const failed = cases.find((c) => c.name === 'B already failed, no trial')!.env!;
  t.true(predictBoot(cfgFor(A), old).writeBack!.equals(failed));
});

test('model: without the counting block a trial in grubenv is ignored', (t) => {
  const plain = parseGrubCfg(renderGrubCfg({ slots: [A, B], defaultLabel: A, lastUpdated: 1764374400 }));
  t.like(predictBoot(plain, trialEnv(B, '3')), { label: A, reason: 'default', writeBack: undefined });
});

test('model: a trial counts down to its fall-back in exactly N trial boots, then stays on the default', (t) => {
  for (let n = 1; n <= MAX_TRIES; n++) {
    let env: Buffer | undefined = trialEnv(B, String(n), String(n));
    const boots: string[] = [];
    for (let k = 0; k < n + 3; k++) {
      const d = predictBoot(cfgFor(A), env);
      boots.push(`${d.label}:${d.reason}`);
      env = d.writeBack ?? env;
    }
    t.deepEqual(boots, [...Array(n).fill(`${B}:trial`), `${A}:fell-back`, `${A}:default`, `${A}:default`]);
  }
});

test('torn writes: every block we write and every block GRUB makes from it stays under 512 bytes; a tear either way gives old or new', (t) => {
  const labels = [A, B, 'x', 'sixteen-chars-AB']; // ext4 labels are at most 16 bytes
  const cfg = parseGrubCfg(withCountingBlock(renderGrubCfg({ slots: labels, defaultLabel: A, lastUpdated: 1764374400 })));
  let states = 0;
  let tears = 0;
  const written: Buffer[] = [encodeGrubenv({})];
  for (const l of labels) for (let n = 0; n <= MAX_TRIES; n++) for (const failed of [undefined, ...labels]) {
    written.push(encodeGrubenv([[ENV_TRIAL, l], [ENV_TRIES, String(n)], ['psyopsos_armed', String(n)], ...(failed ? [[ENV_FAILED, failed] as const] : [])]));
  }
  for (const w of written) {
    let env: Buffer = w;
    for (let step = 0; step <= MAX_TRIES + 1; step++) {
      states++;
      t.true(envContentLength(env) < 512, env.toString('latin1').replace(/#+$/, ''));
      const next = predictBoot(cfg, env).writeBack;
      if (!next) break;
      t.true(envContentLength(next) < 512);
      for (const torn of [tear(next, env), tear(env, next)]) {
        tears++;
        t.true(torn.equals(env) || torn.equals(next));
      }
      env = next;
    }
  }
  // Our own writes between any two of these blocks (arm, mark-good, rollback) tear the same way.
  for (const x of written.slice(0, 40)) for (const y of written.slice(0, 40)) {
    for (const torn of [tear(x, y), tear(y, x)]) {
      tears++;
      t.true(torn.equals(x) || torn.equals(y));
    }
  }
  t.log(`${states} grubenv states checked under 512 bytes, ${tears} torn writes give old or new`);
});

test('saveEnv (our envblk.c port) writes the same bytes as grub-editenv set/unset (the same envblk.c)', async (t) => {
  if (!needTools(t, 'grub-editenv')) return;
  const name = fc.constantFrom('a', 'psyopsos_trial', 'psyopsos_tries', 'psyopsos_failed', 'x_y');
  const value = fc.oneof(fc.constantFrom('', '0', '3', A, B), fc.string({ maxLength: 12 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')), fc.constantFrom('back\\slash', 'new\nline'));
  const op = fc.tuple(name, fc.option(value, { nil: undefined }));
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), async (ops) => {
      const f = join(dir, `env${runs++}`);
      let ours: Buffer | undefined = encodeGrubenv({});
      writeFileSync(f, ours);
      for (const [n, v] of ops) {
        const r = v === undefined ? spawnSync('grub-editenv', [f, 'unset', n]) : spawnSync('grub-editenv', [f, 'set', `${n}=${v}`]);
        if (r.status !== 0) return false;
        ours = saveEnv(ours, [[n, v]]);
        if (!ours) return false;
      }
      return readFileSync(f).equals(ours!);
    }),
    { numRuns: 60 },
  );
  t.pass();
});
