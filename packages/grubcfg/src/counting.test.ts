import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError, PSYOPS_NAMES } from '@diskimg/partitions/internal';
import {
  COUNTING_BEGIN,
  COUNTING_END,
  findCountingBlock,
  parseGrubCfg,
  renderCountingBlock,
  renderGrubCfg,
  setGrubCfgDefault,
  withCountingBlock,
  type RenderGrubCfgOptions,
} from './index.js';
import { needTools } from '../../../test/helpers/skip.js';

const upstream = readFileSync(new URL('./testdata/upstream-neuralupgrade.grub.cfg', import.meta.url), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'counting-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function scriptCheck(text: string): { ok: boolean; out: string } {
  const f = join(dir, `c${n++}.cfg`);
  writeFileSync(f, text);
  const r = spawnSync('grub-script-check', [f], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

const A = PSYOPS_NAMES.a;
const B = PSYOPS_NAMES.b;
const base: RenderGrubCfgOptions = { slots: [A, B], defaultLabel: A, lastUpdated: 1741406642 };
const inputs: Array<[string, string]> = [
  ['upstream neuralupgrade file', upstream],
  ['ours, default A', renderGrubCfg(base)],
  ['ours, default B, timeout 0, programs', renderGrubCfg({ ...base, defaultLabel: B, timeout: 0, extraPrograms: { '/memtest64.efi': 'MemTest86' } })],
  ['ours, other ESP label, three slots', renderGrubCfg({ ...base, slots: ['sys-A', 'sys-B', 'sys-C'], defaultLabel: 'sys-B', espLabel: 'MYESP' })],
];

for (const [name, text] of inputs) {
  test(`counting block inserted into ${name}: grub-script-check accepts it, every other byte stays, idempotent`, (t) => {
    const out = withCountingBlock(text);
    const at = findCountingBlock(out)!;
    t.truthy(at);
    t.is(out.slice(0, at.start) + out.slice(at.end + 1), text, 'only the block (and one blank line after it) is added');
    t.is(withCountingBlock(out), out);
    const p = parseGrubCfg(out);
    const before = parseGrubCfg(text);
    t.true(p.countingBlock);
    t.false(before.countingBlock);
    t.is(p.default, before.default);
    t.is(p.defaultLabel, before.defaultLabel);
    t.deepEqual(p.entries, before.entries);
    t.deepEqual(p.info, before.info);
    // it runs after `set default=` and before the first menu entry
    t.true(out.indexOf('set default=') < at.start);
    t.true(out.indexOf('menuentry') > at.start);
    if (!needTools(t, 'grub-script-check')) return;
    const r = scriptCheck(out);
    t.true(r.ok, r.out);
  });
}

test('the block tries every slot by its label and sets default to its menu title', (t) => {
  const block = renderCountingBlock({ slots: [{ label: A, title: 'Boot A', index: 2 }, { label: B, title: B, index: 3 }], espLabel: 'PSYOPSOSEFI' });
  t.true(block.startsWith(`${COUNTING_BEGIN}\n`));
  t.true(block.endsWith(`${COUNTING_END}\n`));
  t.regex(block, /if \[ "\$\{psyopsos_trial\}" = "psyopsOS-A" \]; then set psyopsos_entry="Boot A"; fi/);
  t.regex(block, /search --no-floppy --label PSYOPSOSEFI --set psyopsos_esp/);
  t.regex(block, /load_env --file "\(\$\{psyopsos_esp\}\)\/grub\/grubenv" --skip-sig psyopsos_trial psyopsos_tries/);
  for (let k = 9; k >= 1; k--) t.regex(block, new RegExp(`\\[ "\\$\\{psyopsos_tries\\}" = ${k} \\]; then set psyopsos_next=${k - 1}`));
  t.notRegex(block, /regexp/); // not in the test GRUB image's module list
  // GRUB 2.06 reads `fallback` as menu indexes only: the default's title is mapped to its index
  t.regex(block, /if \[ "\$\{default\}" = "Boot A" \]; then set fallback=2; fi/);
});

test('an old block is replaced, not duplicated (e.g. after the slots changed)', (t) => {
  const withBlock = withCountingBlock(upstream);
  const stale = withBlock.replace('set psyopsos_entry="psyopsOS-B"', 'set psyopsos_entry="old"');
  t.is(withCountingBlock(stale), withBlock);
});

test('set-default edits the confirmed default, never the counting block\'s own `set default`', (t) => {
  const withBlock = withCountingBlock(upstream);
  const b = setGrubCfgDefault(withBlock, B);
  t.is(parseGrubCfg(b).defaultLabel, B);
  t.is(parseGrubCfg(b).info?.default_boot_label, B);
  t.is(b, withCountingBlock(setGrubCfgDefault(upstream, B)));
  const block = (s: string) => s.slice(findCountingBlock(s)!.start, findCountingBlock(s)!.end);
  t.is(block(b), block(withBlock));
});

test('a grub.cfg whose `set default` comes after the menu entries cannot take the block', (t) => {
  const late = upstream.replace('set default="psyopsOS-A"\n', '') + '\nset default="psyopsOS-A"\n';
  t.throws(() => withCountingBlock(late, { name: 'ESP:/grub/grub.cfg' }), { instanceOf: FormatError, message: /ESP:\/grub\/grub\.cfg: needs its "set default=" line before/ });
});
