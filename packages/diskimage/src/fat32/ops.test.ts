import test from 'ava';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, makeEntropy } from '@diskimg/partitions/internal';
import { FileDevice } from '../device/file.js';
import { formatFat32 } from './format.js';
import { Fat32Volume } from './volume.js';
import { fsckProblems, run, tmp } from './test-util.js';
import { needTools } from '../../../../test/helpers/skip.js';

const MiB = 2 ** 20;

/**
 * Random edit sequences against a model (path → bytes), then the real tools
 * judge the result: fsck.fat -n clean and mcopy -s gives exactly the model.
 * Includes a nearly-full volume so allocations fragment.
 */
for (const [seed, ss] of [[1, 512], [2, 512], [3, 4096]] as const) {
  test(`random edit sequence ${seed} (${ss}-byte sectors) matches its model under fsck.fat and mcopy`, async (t) => {
    if (!needTools(t, 'fsck.fat', 'mcopy')) return;
    let x = seed * 7919;
    // mulberry32
    const rnd = (n: number) => {
      x = (x + 0x6d2b79f5) | 0;
      let r = Math.imul(x ^ (x >>> 15), 1 | x);
      r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
      return ((r ^ (r >>> 14)) >>> 0) % n;
    };
    const d = tmp();
    const img = join(d, 'v.img');
    const dev = await FileDevice.create(img, (ss === 512 ? 34 : 258) * MiB, ss);
    await formatFat32(dev, { label: 'OPS', entropy: makeEntropy('ops'), now: 1700000000 });
    dev.flush = async () => {}; // durability is not under test here; fdatasync per edit only costs time
    const vol = await Fat32Volume.open(dev);
    const files = new Map<string, Buffer>();
    const dirs = new Set<string>(['']);
    const names = ['a', 'B.TXT', 'grub.cfg', 'Long Name Number', 'x.tar.gz', 'MiXed.Case', 'z'.repeat(40), '.dot'];
    const pick = <T>(xs: T[]) => xs[rnd(xs.length)];
    const cs = vol.geometry.clusterSize;
    let refused = 0;
    // fsck.fat -n after every single edit (FSInfo, both FATs, `..`, chains): nothing accepted.
    const afterEach: string[] = [];
    let what = '';
    const check = (i: number) => {
      const p = fsckProblems(img);
      if (p.length) afterEach.push(`edit ${i} (${what}): ${p.join(' | ')}`);
    };
    for (let i = 0; i < 250; i++) {
      const parent = pick([...dirs]);
      const path = `${parent}/${pick(names)}${rnd(4)}`;
      const lower = (p: string) => p.toLowerCase();
      const existing = [...files.keys(), ...dirs].find((p) => lower(p) === lower(path));
      const op = rnd(10);
      try {
        if (op < 5) {
          // write (create or replace); sometimes big, to fill and fragment the volume
          const size = rnd(4) === 0 ? rnd(ss === 512 ? 6 * MiB : 40 * MiB) : rnd(5 * cs);
          const data = Buffer.alloc(size, i & 0xff);
          if (existing && dirs.has(existing)) continue;
          what = existing ? `replace ${existing} (${files.get(existing)!.length} → ${size} bytes)` : `create ${path} (${size} bytes)`;
          await vol.writeFile(path, data, { mtime: 1700000000 });
          files.set(existing ?? path, data);
        } else if (op < 6 && files.size) {
          const f = pick([...files.keys()]);
          what = `delete ${f}`;
          await vol.unlink(f);
          files.delete(f);
        } else if (op < 7) {
          if (existing) continue;
          what = `mkdir ${path}`;
          await vol.mkdir(path, { mtime: 1700000000 });
          dirs.add(path);
        } else if (op < 9 && files.size) {
          const f = pick([...files.keys()]);
          if (existing && (dirs.has(existing) || existing === f)) continue;
          what = `rename ${f} → ${path}${existing ? ' (over a file)' : ''}`;
          await vol.rename(f, path);
          const data = files.get(f)!;
          files.delete(f);
          if (existing) files.delete(existing);
          files.set(path, data);
        }
      } catch (e) {
        if (!(e instanceof InputError) || !/needs .* MiB free/.test(e.message)) throw e;
        refused++;
        what += ' (refused for space)';
      }
      if (what) check(i);
      what = '';
    }
    t.deepEqual(afterEach.slice(0, 5), [], `${afterEach.length} edits left fsck.fat -n problems`);
    await dev.close();
    t.log(`${files.size} files, ${dirs.size} dirs, ${refused} writes refused for space`);
    t.deepEqual(fsckProblems(img), []);
    const model = join(d, 'model');
    const out = join(d, 'out');
    mkdirSync(out);
    for (const dd of dirs) mkdirSync(join(model, dd), { recursive: true });
    for (const [p, b] of files) writeFileSync(join(model, p), b);
    t.is(run('mcopy', ['-s', '-n', '-i', img, '::/', out]).status, 0);
    const diff = run('diff', ['-r', model, out]);
    t.is(diff.status, 0, diff.out.slice(0, 2000));
    rmSync(d, { recursive: true, force: true });
  });
}
