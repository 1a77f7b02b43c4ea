/**
 * Property test: random trees written by createExt4 read back identically
 * through the ext4 reader (the path `diskimg ls/cat` uses). The real-tool
 * checks of the same writer are in create.test.ts; this one explores many
 * shapes quickly in memory.
 */
import test from 'ava';
import fc from 'fast-check';
import { makeEntropy } from '@diskimg/partitions/internal';
import { MemoryDevice } from '../device/memory.js';
import type { TreeEntry } from '../source/tree.js';
import { createExt4 } from './create.js';
import { openExt4 } from './reader.js';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsck, stat, tmp } from './testutil.js';
import { needTools } from '../../../../test/helpers/skip.js';

const EPOCH = 1_700_000_000;

type Spec =
  | { kind: 'file'; size: number; seed: number; mode: number; uid: number; gid: number; mtime: number }
  | { kind: 'symlink'; target: string }
  | { kind: 'char'; major: number; minor: number }
  | { kind: 'fifo' }
  | { kind: 'hardlink'; to: number };

const name = fc.stringMatching(/^[a-zA-Z0-9._-]{1,20}$/).filter((n) => n !== '.' && n !== '..' && n !== 'lost+found');
const spec: fc.Arbitrary<Spec> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('file' as const), size: fc.oneof(fc.integer({ min: 0, max: 9000 }), fc.integer({ min: 0, max: 300_000 })), seed: fc.integer({ min: 1, max: 255 }), mode: fc.integer({ min: 0, max: 0o7777 }), uid: fc.integer({ min: 0, max: 2 ** 32 - 1 }), gid: fc.integer({ min: 0, max: 2 ** 32 - 1 }), mtime: fc.integer({ min: 0, max: EPOCH + 1000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('symlink' as const), target: fc.stringMatching(/^[a-z/._]{1,300}$/) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('char' as const), major: fc.integer({ min: 0, max: 4095 }), minor: fc.integer({ min: 0, max: 2 ** 20 - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fifo' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hardlink' as const), to: fc.nat() }) },
);
const tree = fc.uniqueArray(fc.tuple(fc.array(name, { minLength: 1, maxLength: 3 }), spec), { minLength: 1, maxLength: 40, selector: ([p]) => p.join('/') });

function data(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * seed + (i >> 8)) & 0xff;
  return b;
}

test('random trees read back identically through the reader; the first two also judged by e2fsck -fn and debugfs', async (t) => {
  // An independent judge next to our own reader: e2fsck clean, and debugfs's type, size and link count.
  const judge = needTools(t, 'e2fsck', 'debugfs');
  let judged = 0;
  const dir = tmp('rt');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await fc.assert(
    fc.asyncProperty(tree, async (items) => {
      // Keep only paths that are not also a prefix (directory) of another path.
      const paths = items.map(([p]) => p.join('/'));
      const leaves = items.filter(([p]) => !paths.some((q) => q.startsWith(p.join('/') + '/')));
      const entries: TreeEntry[] = [];
      const files: string[] = [];
      for (const [parts, s] of leaves) {
        const path = parts.join('/');
        const base = { path, mode: 0o644, uid: 0, gid: 0, mtime: EPOCH - 10, size: 0 };
        if (s.kind === 'file') {
          const d = data(s.size, s.seed);
          entries.push({ ...base, type: 'file', mode: s.mode, uid: s.uid, gid: s.gid, mtime: s.mtime, size: s.size, body: (async function* () { yield d; })() });
          files.push(path);
        } else if (s.kind === 'symlink') entries.push({ ...base, type: 'symlink', linkname: s.target });
        else if (s.kind === 'char') entries.push({ ...base, type: 'char', devmajor: s.major, devminor: s.minor });
        else if (s.kind === 'fifo') entries.push({ ...base, type: 'fifo' });
        else if (files.length) entries.push({ ...base, type: 'hardlink', linkname: files[s.to % files.length]! });
      }
      const dev = new MemoryDevice(16 * 2 ** 20);
      await createExt4(dev, (async function* () { yield* entries; })(), { label: 'rt', entropy: makeEntropy('rt'), now: EPOCH, sourceDateEpoch: EPOCH });
      const fs = await openExt4(dev);
      const links = new Map<string, number>();
      for (const e of entries) if (e.type === 'hardlink') links.set(e.linkname!, (links.get(e.linkname!) ?? 1) + 1);
      if (judge && judged < 2) {
        judged++;
        const img = join(dir, `rt${judged}.img`);
        writeFileSync(img, dev.data);
        const f = fsck(img);
        if (f.status !== 0 || f.extra.length) throw new Error(`e2fsck -fn: ${f.out}`);
        for (const e of entries) {
          const target = e.type === 'hardlink' ? entries.find((x) => x.path === e.linkname)! : e;
          const st = stat(img, `/${e.path}`);
          const want = { file: 'regular', symlink: 'symlink', char: 'character', fifo: 'FIFO' }[target.type as 'file'];
          if (!st.type.startsWith(want)) throw new Error(`debugfs: ${e.path}: type ${st.type}, want ${want}`);
          if (target.type === 'file' && (st.size !== target.size || st.links !== (links.get(target.path) ?? 1))) throw new Error(`debugfs: ${e.path}: size ${st.size} links ${st.links}`);
          if (target.type === 'symlink' && st.size !== Buffer.byteLength(target.linkname!)) throw new Error(`debugfs: ${e.path}: symlink size ${st.size}`);
        }
      }
      links.clear();
      for (const e of entries) if (e.type === 'hardlink') links.set(e.linkname!, (links.get(e.linkname!) ?? 1) + 1);
      for (const e of entries) {
        const st = await fs.lstat(e.path);
        const target = e.type === 'hardlink' ? entries.find((x) => x.path === e.linkname)! : e;
        const want = { file: 'file', symlink: 'symlink', char: 'char', fifo: 'fifo' }[target.type as 'file'];
        if (st.type !== want) throw new Error(`${e.path}: type ${st.type}, want ${want}`);
        if (target.type === 'file') {
          const chunks: Buffer[] = [];
          for await (const c of fs.readFile(e.path)) chunks.push(c);
          const got = Buffer.concat(chunks);
          if (!got.equals(data(target.size, (leaves.find(([p]) => p.join('/') === target.path)![1] as { seed: number }).seed))) throw new Error(`${e.path}: content differs`);
          if ((st.mode & 0o7777) !== target.mode || st.uid !== target.uid || st.gid !== target.gid) throw new Error(`${e.path}: mode/uid/gid differ`);
          if (st.mtime !== Math.min(target.mtime, EPOCH)) throw new Error(`${e.path}: mtime ${st.mtime}`);
          if (st.links !== (links.get(target.path) ?? 1)) throw new Error(`${e.path}: links ${st.links}`);
        }
        if (target.type === 'symlink' && (await fs.readlink(e.path)) !== target.linkname) throw new Error(`${e.path}: symlink target differs`);
        if (target.type === 'char' && (st.rdev?.major !== target.devmajor || st.rdev?.minor !== target.devminor)) throw new Error(`${e.path}: rdev ${JSON.stringify(st.rdev)}`);
      }
    }),
    { numRuns: 30 },
  );
  t.pass();
});
