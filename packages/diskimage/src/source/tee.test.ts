import test from 'ava';
import fc from 'fast-check';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { InputError, makeEntropy } from '@diskimg/partitions/internal';
import { FileDevice } from '../device/file.js';
import { Region } from '../device/region.js';
import { createExt4 } from '../ext4/create.js';
import { makeOsTree, fsck } from '../ext4/testutil.js';
import { openTarFile, readTarTree } from './tar.js';
import { teeEach, teeTree, TeeAbortedError } from './tee.js';
import type { TreeEntry, EntryType } from './tree.js';
import { needTools } from '../../../../test/helpers/skip.js';

interface Spec {
  path: string;
  type: EntryType;
  chunks: Buffer[];
}

/** Yield to the event loop `n` times (setImmediate, so other views really run in between). */
const ticks = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};

/**
 * A source that keeps the tar source's contract (a body must be finished before
 * the next entry) and records violations, chunks produced, and whether it was closed.
 */
function source(specs: Spec[], delays: number[] = [], failAt?: { entry: number; chunk?: number; err: Error }) {
  const log = { produced: 0, violations: 0, closed: false };
  let d = 0;
  const delay = () => ticks(delays.length ? delays[d++ % delays.length] : 0);
  async function* gen(): AsyncGenerator<TreeEntry> {
    try {
      for (let i = 0; i < specs.length; i++) {
        await delay();
        if (failAt && failAt.entry === i && failAt.chunk === undefined) throw failAt.err;
        const s = specs[i];
        let finished = s.type !== 'file';
        const body = s.type === 'file'
          ? (async function* () {
              for (let c = 0; c < s.chunks.length; c++) {
                await delay();
                if (failAt && failAt.entry === i && failAt.chunk === c) throw failAt.err;
                log.produced++;
                yield s.chunks[c];
              }
              finished = true;
            })()
          : undefined;
        yield { path: s.path, type: s.type, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0, body };
        if (!finished) log.violations++;
      }
    } finally {
      log.closed = true;
    }
  }
  return { tree: gen(), log };
}

interface Seen {
  path: string;
  type: string;
  chunks: Buffer[];
}

/** Consume a view with random pauses; `partial[k]` (when set) stops reading entry k's body after that many chunks. */
async function consume(view: AsyncIterable<TreeEntry>, delays: number[], partial: (number | undefined)[] = [], onChunk?: () => void): Promise<Seen[]> {
  const out: Seen[] = [];
  let d = 0;
  const delay = () => ticks(delays.length ? delays[d++ % delays.length] : 0);
  for await (const e of view) {
    await delay();
    const chunks: Buffer[] = [];
    if (e.body) {
      const stop = partial[out.length];
      for await (const c of e.body) {
        if (stop !== undefined && chunks.length >= stop) break;
        chunks.push(c);
        onChunk?.();
        await delay();
      }
    }
    out.push({ path: e.path, type: e.type, chunks });
  }
  return out;
}

const specArb = fc.array(
  fc.record({
    type: fc.constantFrom<EntryType>('file', 'file', 'directory', 'symlink'),
    chunks: fc.array(fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)), { maxLength: 6 }),
  }),
  { maxLength: 12 },
).map((xs) => xs.map((x, i): Spec => ({ path: `e${i}`, type: x.type, chunks: x.type === 'file' ? x.chunks : [] })));

test('property: every view sees the source sequence, the same Buffer objects, within maxAhead', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      specArb,
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.array(fc.nat(3), { maxLength: 8 }), { minLength: 3, maxLength: 3 }),
      fc.array(fc.nat(2), { maxLength: 5 }),
      fc.array(fc.option(fc.nat(3), { nil: undefined }), { maxLength: 12 }),
      async (specs, n, maxAhead, viewDelays, srcDelays, partial) => {
        const { tree, log } = source(specs, srcDelays);
        let maxBuffered = 0;
        const views = teeTree(tree, n, { maxAhead, onBuffer: (k) => (maxBuffered = Math.max(maxBuffered, k)) });
        // view 0 may skip the rest of some bodies; the others read everything
        const seen = await Promise.all(views.map((v, i) => consume(v, viewDelays[i], i === 0 ? partial : [])));
        for (let i = 0; i < n; i++) {
          if (seen[i].length !== specs.length) return false;
          for (let k = 0; k < specs.length; k++) {
            const want = i === 0 && partial[k] !== undefined ? specs[k].chunks.slice(0, partial[k]) : specs[k].chunks;
            if (seen[i][k].path !== specs[k].path || seen[i][k].type !== specs[k].type) return false;
            // identity, not just equal bytes: chunks are shared, never copied
            if (seen[i][k].chunks.length !== want.length || seen[i][k].chunks.some((c, j) => c !== want[j])) return false;
          }
        }
        return log.violations === 0 && maxBuffered <= maxAhead && log.closed;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('a slow view holds the fast one back: chunks produced never exceed the slowest reader by more than maxAhead', async (t) => {
  const chunk = Buffer.alloc(16);
  const specs: Spec[] = [{ path: 'big', type: 'file', chunks: Array.from({ length: 2000 }, () => chunk) }];
  const { tree, log } = source(specs);
  const read = [0, 0];
  let worst = 0;
  const views = teeTree(tree, 2, { maxAhead: 3 });
  const check = () => (worst = Math.max(worst, log.produced - Math.min(...read)));
  await Promise.all([
    consume(views[0], [0], [], () => (read[0]++, check())),
    consume(views[1], [0, 5, 1], [], () => (read[1]++, check())),
  ]);
  t.is(read[0], 2000);
  t.is(read[1], 2000);
  // +1: the chunk a reader holds (handed out, not yet counted) when the next is produced
  t.true(worst <= 3 + 1, `worst lead ${worst}`);
});

const specsForErrors: Spec[] = [
  { path: 'a', type: 'file', chunks: [Buffer.from('1'), Buffer.from('2')] },
  { path: 'b', type: 'directory', chunks: [] },
  { path: 'c', type: 'file', chunks: Array.from({ length: 50 }, (_, i) => Buffer.from(String(i))) },
  { path: 'd', type: 'file', chunks: [Buffer.from('x')] },
];

for (const where of [{ entry: 1 }, { entry: 2, chunk: 20 }]) {
  test(`an upstream error (${where.chunk === undefined ? 'pulling an entry' : 'inside a body'}) rejects every view with it`, async (t) => {
    const boom = new Error('boom');
    const { tree, log } = source(specsForErrors, [1, 0], { ...where, err: boom });
    const views = teeTree(tree, 3, { maxAhead: 2 });
    const r = await Promise.allSettled(views.map((v, i) => consume(v, [i, 0, 2])));
    for (const x of r) t.deepEqual(x, { status: 'rejected', reason: boom });
    t.true(log.closed);
  });
}

test('a consumer that throws mid-body aborts the tee: the other view rejects with TeeAbortedError, upstream is closed', async (t) => {
  const { tree, log } = source(specsForErrors, [0, 1]);
  const views = teeTree(tree, 2);
  const mine = new Error('disk full');
  const failing = (async () => {
    for await (const e of views[0]) {
      if (e.path === 'c') {
        let k = 0;
        for await (const _ of e.body!) if (++k === 10) throw mine;
      }
    }
  })();
  const r = await Promise.allSettled([failing, consume(views[1], [0])]);
  t.deepEqual(r[0], { status: 'rejected', reason: mine });
  t.is(r[1].status, 'rejected');
  t.true((r[1] as PromiseRejectedResult).reason instanceof TeeAbortedError);
  await ticks(5);
  t.true(log.closed);
});

test('a view returned before it is read aborts the others', async (t) => {
  const { tree } = source(specsForErrors);
  const views = teeTree(tree, 2, { maxAhead: 1 });
  const other = consume(views[1], []);
  await views[0].return!();
  await t.throwsAsync(other, { instanceOf: TeeAbortedError });
});

function tmpd(): string {
  return mkdtempSync(join(tmpdir(), 'tee-'));
}

test('a truncated tar rejects both views with the InputError', async (t) => {
  const d = tmpd();
  try {
    makeOsTree(join(d, 'tree'), 0.25);
    const bytes = execFileSync('tar', ['-C', join(d, 'tree'), '--sort=name', '-cf', '-', '.'], { maxBuffer: 1 << 28 });
    const cut = bytes.subarray(0, Math.floor(bytes.length / 2));
    const views = teeTree(readTarTree(Readable.from([cut]), 'cut.tar'), 2);
    const r = await Promise.allSettled(views.map((v, i) => consume(v, [i])));
    for (const x of r) {
      t.is(x.status, 'rejected');
      const err = (x as PromiseRejectedResult).reason;
      t.true(err instanceof InputError, String(err));
      t.regex(err.message, /^cut\.tar: /);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('teeEach over a real tar file: a consumer throwing mid-body wins over the TeeAbortedError it causes', async (t) => {
  const d = tmpd();
  try {
    makeOsTree(join(d, 'tree'));
    const tarPath = join(d, 'os.tar');
    execFileSync('tar', ['-C', join(d, 'tree'), '--sort=name', '-cf', tarPath, '.']);
    const mine = new Error('writer failed');
    let otherErr: unknown;
    const err = await t.throwsAsync(
      teeEach(openTarFile(tarPath), [
        async (v) => {
          for await (const e of v) {
            let k = 0;
            if (e.body && e.size > 2 * MiB) for await (const _ of e.body) if (++k === 2) throw mine;
          }
        },
        (v) => consume(v, [0, 1]).then(() => {}, (e) => { otherErr = e; throw e; }),
      ]),
    );
    t.is(err, mine);
    t.true(otherErr instanceof TeeAbortedError, String(otherErr));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

const MiB = 2 ** 20;
const SLOT = 48 * MiB;

function copyOut(img: string, start: number, size: number, to: string): string {
  const fd = openSync(img, 'r');
  const b = Buffer.alloc(size);
  readSync(fd, b, 0, size, start);
  closeSync(fd);
  writeFileSync(to, b);
  return createHash('sha256').update(b).digest('hex');
}

test('createExt4 of two regions from one tee equals two separate passes; e2fsck -fn is clean on both', async (t) => {
  const d = tmpd();
  try {
    makeOsTree(join(d, 'tree'));
    rmSync(join(d, 'tree', 'psyopsOS-A')); // the slots add their own side file
    const tarPath = join(d, 'os.tar');
    execFileSync('tar', ['-C', join(d, 'tree'), '--sort=name', '-cf', tarPath, '.']);
    const tarFile = () => openTarFile(tarPath);
    const opts = (label: string) => ({ label, entropy: makeEntropy(`tee-${label}`), now: 1_700_000_000, sourceDateEpoch: 1_700_000_000, extraFiles: [{ path: label, data: label }], regionIsZeroed: true });
    const build = async (img: string, tee: boolean) => {
      const dev = await FileDevice.create(img, 2 * SLOT);
      try {
        const A = new Region(dev, 0, SLOT, 'A');
        const B = new Region(dev, SLOT, SLOT, 'B');
        if (tee) {
          await teeEach(tarFile(), [(a) => createExt4(A, a, opts('psyopsOS-A')), (b) => createExt4(B, b, opts('psyopsOS-B'))]);
        } else {
          await createExt4(A, tarFile(), opts('psyopsOS-A'));
          await createExt4(B, tarFile(), opts('psyopsOS-B'));
        }
      } finally {
        await dev.close();
      }
    };
    // one writer failing before it reads (its slot is too small) ends the other one too
    {
      const dev = await FileDevice.create(join(d, 'bad.img'), 2 * SLOT);
      try {
        let bErr: unknown;
        const err = await t.throwsAsync(
          teeEach(tarFile(), [
            (a) => createExt4(new Region(dev, 0, 2 * MiB, 'A'), a, opts('psyopsOS-A')),
            (b) => createExt4(new Region(dev, SLOT, SLOT, 'B'), b, opts('psyopsOS-B')).catch((e) => { bErr = e; throw e; }),
          ]),
        );
        t.false(err instanceof TeeAbortedError, String(err));
        t.true(bErr instanceof TeeAbortedError, String(bErr));
      } finally {
        await dev.close();
        rmSync(join(d, 'bad.img'));
      }
    }

    await build(join(d, 'tee.img'), true);
    await build(join(d, 'two.img'), false);
    for (const [i, name] of ['A', 'B'].entries()) {
      const a = copyOut(join(d, 'tee.img'), i * SLOT, SLOT, join(d, `tee-${name}.img`));
      const b = copyOut(join(d, 'two.img'), i * SLOT, SLOT, join(d, `two-${name}.img`));
      t.is(a, b, `slot ${name}: tee and two passes differ`);
      if (!needTools(t, 'e2fsck', 'debugfs')) continue;
      const f = fsck(join(d, `tee-${name}.img`));
      t.is(f.status, 0, f.out);
      t.deepEqual(f.extra, []);
    }
    // each slot got its own side file (the views are independent past the shared entries)
    if (needTools(t, 'debugfs')) {
      const r = spawnSync('debugfs', ['-R', 'cat /psyopsOS-B', join(d, 'tee-B.img')], { encoding: 'utf8' });
      t.is(r.stdout, 'psyopsOS-B');
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
