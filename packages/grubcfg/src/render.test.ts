import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { InputError, FormatError } from '@diskimg/partitions/internal';
import {
  renderGrubCfg,
  parseGrubCfg,
  extraProgramsFromManifest,
  quoteWord,
  tokenize,
  DEFAULT_KERNEL_PARAMS,
  splitKernelParams,
  predictBoot,
  type RenderGrubCfgOptions,
} from './index.js';
import { needTools } from '../../../test/helpers/skip.js';

const fixture = readFileSync(new URL('./testdata/upstream-neuralupgrade.grub.cfg', import.meta.url), 'utf8');
const UPSTREAM_TIME = 1741406642; // 2025-03-08 04:04:02 UTC

const dir = mkdtempSync(join(tmpdir(), 'grubcfg-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Run the real grub-script-check on `text`; returns its exit status and output. */
function scriptCheck(text: string): { ok: boolean; out: string } {
  const f = join(dir, `g${n++}.cfg`);
  writeFileSync(f, text);
  const r = spawnSync('grub-script-check', [f], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

const base: RenderGrubCfgOptions = {
  slots: ['psyopsOS-A', 'psyopsOS-B'],
  defaultLabel: 'psyopsOS-A',
  lastUpdated: UPSTREAM_TIME,
};

const variants: Array<[string, RenderGrubCfgOptions]> = [
  ['simple', base],
  ['default B, no programs', { ...base, defaultLabel: 'psyopsOS-B' }],
  [
    'upstream scenario',
    {
      ...base,
      extraPrograms: { '/memtest64.efi': 'MemTest86 EFI (64-bit)', '/tcshell.efi': 'TianoCore OVMF UEFI Shell (64-bit)' },
    },
  ],
  [
    'awkward titles and params',
    {
      ...base,
      timeout: 0,
      kernelParams: `quiet init=/sbin/init foo="a b" x=$y #hash {brace} "" semi;colon a|b <lt> \`tick\``,
      extraPrograms: [
        ['/EFI/tools/shell$1.efi', `Tom's "shell" $HOME \\ {x}; echo pwned`],
        ['/memtest64.efi', 'Memtest86+'],
      ],
    },
  ],
  ['other ESP label', { ...base, espLabel: 'MYESP' }],
  ['three slots', { ...base, slots: ['sys-A', 'sys-B', 'sys-C'], defaultLabel: 'sys-C', timeout: 30 }],
];

test('render with upstream scenario inputs equals upstream neuralupgrade output byte for byte', (t) => {
  const out = renderGrubCfg(variants[2]![1]);
  t.is(out, fixture);
});

for (const [name, opts] of variants) {
  test(`grub-script-check accepts the rendered file: ${name}`, (t) => {
    if (!needTools(t, 'grub-script-check')) return;
    const text = renderGrubCfg(opts);
    const r = scriptCheck(text);
    t.true(r.ok, r.out);
  });

  test(`render → parse round-trips: ${name}`, (t) => {
    const text = renderGrubCfg(opts);
    const p = parseGrubCfg(text);
    t.is(p.defaultLabel, opts.defaultLabel);
    t.is(p.default, opts.defaultLabel);
    t.is(p.timeout, opts.timeout ?? 5);
    t.false(p.countingBlock); // render is upstream's file; arming adds the block (counting.test.ts)
    t.deepEqual(
      p.slots.map((s) => [s.title, s.searchLabel, s.psyopsos, s.kernel, s.initrd]),
      opts.slots.map((l) => [l, l, l, '/kernel', '/initramfs']),
    );
    const params = splitKernelParams(opts.kernelParams ?? DEFAULT_KERNEL_PARAMS);
    for (const s of p.slots) t.deepEqual(s.cmdline, ['ro', `psyopsos=${s.psyopsos}`, ...params]);
    const programs = opts.extraPrograms
      ? Array.isArray(opts.extraPrograms)
        ? opts.extraPrograms
        : Object.entries(opts.extraPrograms)
      : [];
    const efi = p.entries.filter((e) => e.kind === 'efi-program');
    t.deepEqual(
      efi.map((e) => [e.chainloader, e.title, e.searchLabel]),
      programs.map(([path, title]) => [path, title, opts.espLabel ?? 'PSYOPSOSEFI']),
    );
    t.deepEqual(p.info?.extra_programs, programs.map(([path]) => path));
    t.is(p.info?.last_updated, '20250308-040402');
    t.deepEqual(
      p.entries.slice(-4).map((e) => e.title),
      ['UEFI fwsetup', 'Reboot', 'Poweroff', 'Exit GRUB'],
    );
  });
}

test('parse reads a file in upstream format', (t) => {
  const p = parseGrubCfg(fixture, 'upstream grub.cfg');
  t.deepEqual(p.info?.fields, {
    last_updated: '20250308-040402',
    default_boot_label: 'psyopsOS-A',
    extra_programs: '/memtest64.efi,/tcshell.efi',
  });
  t.is(p.defaultLabel, 'psyopsOS-A');
  t.deepEqual(
    p.entries.map((e) => [e.title, e.kind]),
    [
      ['Welcome to psyopsOS. GRUB configuration last updated: 20250308-040402', 'other'],
      ['----------------------------------------', 'other'],
      ['psyopsOS-A', 'slot'],
      ['psyopsOS-B', 'slot'],
      ['MemTest86 EFI (64-bit)', 'efi-program'],
      ['TianoCore OVMF UEFI Shell (64-bit)', 'efi-program'],
      ['UEFI fwsetup', 'other'],
      ['Reboot', 'other'],
      ['Poweroff', 'other'],
      ['Exit GRUB', 'other'],
    ],
  );
});

test('parse tolerates an upstream file without the info line (default from set default)', (t) => {
  const text = fixture.replace(/^# neuralupgrade-info:.*\n/m, '').replace('set default="psyopsOS-A"', 'set default=psyopsOS-B');
  const p = parseGrubCfg(text);
  t.is(p.info, undefined);
  t.is(p.defaultLabel, 'psyopsOS-B');
});

test('parse: set default decides (title or index); a disagreeing info line is a warning', (t) => {
  const p = parseGrubCfg(fixture.replace('set default="psyopsOS-A"', 'set default="psyopsOS-B"'), 'x.cfg');
  t.is(p.defaultLabel, 'psyopsOS-B');
  t.is(p.info?.default_boot_label, 'psyopsOS-A');
  t.deepEqual(p.warnings, ['x.cfg: set default selects psyopsOS-B but the neuralupgrade-info line says psyopsOS-A; GRUB boots psyopsOS-B']);
  t.is(parseGrubCfg(fixture.replace('set default="psyopsOS-A"', 'set default=3')).defaultLabel, 'psyopsOS-B');
  t.deepEqual(parseGrubCfg(fixture).warnings, []);
});

test('predictBoot without a counting block: the default; a default naming no entry falls to entry 0', (t) => {
  const plain = parseGrubCfg(renderGrubCfg(base));
  t.like(predictBoot(plain), { label: 'psyopsOS-A', reason: 'default' });
  const lost = predictBoot(parseGrubCfg(renderGrubCfg(base).replace('set default="psyopsOS-A"', 'set default="psyopsOS-C"')));
  t.is(lost.label, undefined);
  t.regex(lost.entry!.title, /^Welcome/);
  t.like(predictBoot(parseGrubCfg(fixture)), { label: 'psyopsOS-A' });
});

test('parse rejects unbalanced braces and files that are not psyopsOS grub.cfg', (t) => {
  t.throws(() => parseGrubCfg('menuentry "x" {\n echo\n', 'ESP:/grub/grub.cfg'), {
    instanceOf: FormatError,
    message: /ESP:\/grub\/grub\.cfg: .*not closed/,
  });
  t.throws(() => parseGrubCfg('set timeout=3\n'), { instanceOf: FormatError, message: /not a psyopsOS grub.cfg/ });
});

test('render is deterministic and the timestamp is UTC', (t) => {
  t.is(renderGrubCfg(base), renderGrubCfg({ ...base }));
  t.regex(renderGrubCfg({ ...base, lastUpdated: 0 }), /last_updated=19700101-000000 /);
});

test('render rejects bad options with one-line InputErrors', (t) => {
  const bad: Array<[Partial<RenderGrubCfgOptions>, RegExp]> = [
    [{ defaultLabel: 'psyopsOS-C' }, /not one of the slots/],
    [{ slots: [] }, /no OS slots/],
    [{ slots: ['a b'], defaultLabel: 'a b' }, /labels must be/],
    [{ slots: ['A', 'A'], defaultLabel: 'A' }, /repeat/],
    [{ timeout: -1 }, /timeout/],
    [{ kernelParams: 'a\nb' }, /single line/],
    // What GRUB 2.06 would pass on changed (checked under QEMU: test/create-boot.test.ts).
    [{ kernelParams: "quote=it's" }, /GRUB's linux command would pass/],
    [{ kernelParams: 'back=c\\d' }, /GRUB's linux command would pass/],
    [{ extraPrograms: { 'memtest.efi': 'x' } }, /absolute/],
    [{ extraPrograms: { '/a,b.efi': 'x' } }, /','/],
    [{ extraPrograms: { '/a.efi': 'two\nlines' } }, /single line/],
    [{ espLabel: 'bad label' }, /ESP label/],
  ];
  for (const [o, re] of bad) {
    const e = t.throws(() => renderGrubCfg({ ...base, ...o }), { instanceOf: InputError, message: re });
    t.false(e?.message.includes('\n'));
  }
});

test('splitKernelParams groups double-quoted values like the kernel', (t) => {
  t.deepEqual(splitKernelParams(DEFAULT_KERNEL_PARAMS), ['earlyprintk=dbgp', 'console=tty0', 'console=ttyS0,115200']);
  t.deepEqual(splitKernelParams('  a foo="x y"  b '), ['a', 'foo=x y', 'b']);
  t.throws(() => splitKernelParams('foo="x'), { instanceOf: InputError, message: /not closed/ });
});

test('extraProgramsFromManifest reads upstream manifest.json', (t) => {
  t.deepEqual(extraProgramsFromManifest('{"extra_programs": {"/memtest64.efi": "Memtest86+"}}'), [
    ['/memtest64.efi', 'Memtest86+'],
  ]);
  t.deepEqual(extraProgramsFromManifest('{}'), []);
  t.throws(() => extraProgramsFromManifest('{', 'ESP:/manifest.json'), { instanceOf: InputError, message: /ESP:\/manifest.json/ });
  t.throws(() => extraProgramsFromManifest('{"extra_programs": ["/x.efi"]}'), { instanceOf: InputError });
});

test('quoteWord: GRUB reads back exactly the string (property, via our tokenizer and grub-script-check)', (t) => {
  const strings: string[] = [];
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'ab $"\'\\{};#=|&<>\t`'.split('')), minLength: 1 }), (s) => {
      strings.push(s);
      const words = tokenize(`echo ${quoteWord(s)}\n`)[0]!.words;
      // Meaning, not only syntax: one word, the value itself, and nothing in it expands.
      return words.length === 2 && words[1]!.value === s && !words[1]!.expands;
    }),
  );
  if (!needTools(t, 'grub-script-check')) return;
  // The real parser must accept every quoting we produced.
  const r = scriptCheck(strings.map((s) => `echo ${quoteWord(s)}\n`).join(''));
  t.true(r.ok, r.out);
});

test('grub-script-check itself rejects a broken file (the check has teeth)', (t) => {
  if (!needTools(t, 'grub-script-check')) return;
  t.false(scriptCheck(renderGrubCfg(base).replace('menuentry "Reboot" {', 'menuentry "Reboot" {{ "')).ok);
  t.notThrows(() => execFileSync('grub-script-check', ['--version']));
});
