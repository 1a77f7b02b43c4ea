import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { FormatError, InputError } from '@diskimg/partitions/internal';
import { decodeGrubenv, encodeGrubenv, GRUBENV_SIGNATURE, GRUBENV_SIZE } from './grubenv.js';
import { needTools, type SkipContext } from '../../../test/helpers/skip.js';

const dir = mkdtempSync(join(tmpdir(), 'grubenv-test-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = () => join(dir, `env${n++}`);

/** The awkward values the brief names: spaces, '=', backslashes, newlines (and UTF-8). */
const tricky: Array<[string, string]> = [
  ['next_entry', 'psyopsOS-B'],
  ['spaces', 'a b  c '],
  ['equals', 'x=1=2'],
  ['backslash', 'C:\\dir\\\\n'],
  ['newline', 'line1\nline2\n'],
  ['empty', ''],
  ['utf8', 'grüße ✓'],
];

function editenv(...args: string[]): string {
  return execFileSync('grub-editenv', args, { encoding: 'utf8' });
}

function skipWithoutTool(t: SkipContext): boolean {
  return !needTools(t, 'grub-editenv');
}

test('an empty block is exactly what `grub-editenv create` writes', (t) => {
  const ours = encodeGrubenv({});
  t.is(ours.length, GRUBENV_SIZE);
  t.true(ours.subarray(0, GRUBENV_SIGNATURE.length).toString() === GRUBENV_SIGNATURE);
  if (skipWithoutTool(t)) return;
  const f = tmp();
  editenv(f, 'create');
  t.deepEqual(ours, readFileSync(f));
});

test('grub-editenv set writes the same bytes as encodeGrubenv (escaping, order, padding)', (t) => {
  if (skipWithoutTool(t)) return;
  const f = tmp();
  editenv(f, 'create');
  editenv(f, 'set', ...tricky.map(([k, v]) => `${k}=${v}`));
  t.deepEqual(readFileSync(f), encodeGrubenv(tricky));
});

test('we write → grub-editenv list shows the same variables', (t) => {
  if (skipWithoutTool(t)) return;
  const f = tmp();
  writeFileSync(f, encodeGrubenv(tricky));
  t.is(editenv(f, 'list'), tricky.map(([k, v]) => `${k}=${v}\n`).join(''));
});

test('grub-editenv writes (set, overwrite, unset) → we decode the same', (t) => {
  if (skipWithoutTool(t)) return;
  const f = tmp();
  editenv(f, 'create');
  editenv(f, 'set', ...tricky.map(([k, v]) => `${k}=${v}`));
  // Overwrite with a shorter and a longer value, and unset one: grub shifts the lines and re-pads.
  editenv(f, 'set', 'spaces=s', 'equals=a much longer value than before = yes');
  editenv(f, 'unset', 'newline');
  const expected = new Map(tricky);
  expected.set('spaces', 's');
  expected.set('equals', 'a much longer value than before = yes');
  expected.delete('newline');
  t.deepEqual(decodeGrubenv(readFileSync(f), { name: f }), expected);
  // And re-encoding gives back grub's bytes.
  t.deepEqual(encodeGrubenv(expected), readFileSync(f));
});

test('a block filled to the last byte is accepted by both; one byte more is an InputError', (t) => {
  const header = encodeGrubenv({}).indexOf('#', GRUBENV_SIGNATURE.length + 1); // end of warning line
  const room = GRUBENV_SIZE - header - 'v=\n'.length;
  const full = encodeGrubenv({ v: 'x'.repeat(room) });
  t.is(full.length, GRUBENV_SIZE);
  t.is(full[GRUBENV_SIZE - 1], 0x0a);
  t.is(decodeGrubenv(full).get('v'), 'x'.repeat(room));
  const e = t.throws(() => encodeGrubenv({ v: 'x'.repeat(room + 1) }), { instanceOf: InputError });
  t.regex(e!.message, /need 1025 bytes but the block holds 1024/);
  // A newline costs two bytes (escaped), so it overflows too.
  t.throws(() => encodeGrubenv({ v: 'x'.repeat(room - 1) + '\n' }), { instanceOf: InputError });
  if (!needTools(t, 'grub-editenv')) return;
  const f = tmp();
  editenv(f, 'create');
  editenv(f, 'set', `v=${'x'.repeat(room)}`);
  t.deepEqual(readFileSync(f), full);
  // grub-editenv refuses the overflowing value as well.
  t.not(spawnSync('grub-editenv', [f, 'set', `w=1`]).status, 0);
});

test('decode validates size and signature with FormatError naming the input', (t) => {
  const good = encodeGrubenv({ a: 'b' });
  t.throws(() => decodeGrubenv(good.subarray(0, 512), { name: 'ESP:/grub/grubenv' }), {
    instanceOf: FormatError,
    message: /^ESP:\/grub\/grubenv: is 512 bytes/,
  });
  const bad = Buffer.from(good);
  bad.write('# GRUB Environment Blok');
  t.throws(() => decodeGrubenv(bad), { instanceOf: FormatError, message: /not a GRUB environment block/ });
  const garbage = Buffer.from(good);
  garbage.fill(0x41, good.indexOf('a=b\n') + 4); // where padding starts: no '=' and no newline up to the end
  t.throws(() => decodeGrubenv(garbage), { instanceOf: FormatError });
  t.deepEqual(decodeGrubenv(good.subarray(0, 512), { size: null }), new Map([['a', 'b']]));
});

test('encode rejects names GRUB cannot read back', (t) => {
  for (const name of ['', 'a=b', '#x', 'a\nb', 'a\\b']) {
    t.throws(() => encodeGrubenv({ [name]: 'v' }), { instanceOf: InputError });
  }
});

test('encode → decode round-trips arbitrary variables (property)', (t) => {
  const name = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/[=\n\\\0]/.test(s) && !s.startsWith('#'));
  const value = fc.string({ maxLength: 40, unit: fc.constantFrom(...'ab =\\\n#\t'.split('')) }).filter((s) => !s.includes('\0'));
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(name, value), { maxLength: 8, selector: ([k]) => k }), (vars) => {
      const m = decodeGrubenv(encodeGrubenv(vars));
      return JSON.stringify([...m]) === JSON.stringify(vars);
    }),
  );
  t.pass();
});
