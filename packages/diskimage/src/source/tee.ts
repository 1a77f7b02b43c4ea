import { expandHoles, type TreeEntry } from './tree.js';

/**
 * A view's pull rejects with this when another view of the same tee stopped
 * early (its consumer failed). The other consumer's own error is the real one.
 */
export class TeeAbortedError extends Error {
  constructor() {
    super('tee: another consumer of the same input failed and stopped reading; see its error');
    this.name = 'TeeAbortedError';
  }
}

export interface TeeOptions {
  /** Most items (entries, body chunks, end-of-body marks) buffered for the slowest live view. Default 4. */
  maxAhead?: number;
  /** Instrumentation for tests: called with the buffered item count after each upstream pull. */
  onBuffer?: (items: number) => void;
}

/** The upstream sequence flattened: an entry, then its body's chunks and an end mark. */
type Item = { kind: 'entry'; entry: TreeEntry } | { kind: 'chunk'; chunk: Buffer | number } | { kind: 'end' } | { kind: 'eof' };

/**
 * Split one TreeEntry stream into `n` views that each see the same entries and
 * the same body chunks (the same Buffer objects: shared, read-only, never copied).
 *
 * Bounded: upstream is pulled only while fewer than `maxAhead` items are
 * buffered past the slowest live view, so a fast view waits and memory stays
 * flat whatever the file sizes. Upstream bodies are read to their end before
 * the next entry is pulled (the tar source needs that). A view that skips part
 * of a body just advances past it.
 *
 * Errors: an upstream error rejects every view's next pull with that error.
 * A view whose iteration ends early (return(), e.g. its for-await threw) aborts
 * the tee: the other views' next pulls reject with TeeAbortedError and upstream
 * is closed. Every view must be iterated to its end or returned, else the
 * others stall once they are `maxAhead` items ahead.
 */
export function teeTree(src: AsyncIterable<TreeEntry>, n: number, opts: TeeOptions = {}): AsyncIterableIterator<TreeEntry>[] {
  const maxAhead = opts.maxAhead ?? 4;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`teeTree: n must be a positive integer, not ${n}`);
  if (!Number.isInteger(maxAhead) || maxAhead < 1) throw new RangeError(`teeTree: maxAhead must be a positive integer, not ${maxAhead}`);

  const upstream = src[Symbol.asyncIterator]();
  let body: AsyncIterator<Buffer | number> | undefined; // upstream body being read (a sparse file's runs: holes stay numbers)
  const buf: Item[] = [];
  let base = 0; // global index of buf[0]
  const cursor = new Array<number>(n).fill(0);
  const live = new Array<boolean>(n).fill(true);
  let failure: { err: unknown } | undefined;
  let pulling: Promise<void> | undefined;
  let wakers: (() => void)[] = [];

  const head = () => base + buf.length;
  const notify = () => {
    const w = wakers;
    wakers = [];
    for (const f of w) f();
  };
  const changed = () => new Promise<void>((r) => wakers.push(r));
  const slowest = () => {
    let m = head();
    for (let v = 0; v < n; v++) if (live[v] && cursor[v] < m) m = cursor[v];
    return m;
  };
  const trim = () => {
    const m = slowest();
    while (base < m) {
      buf.shift();
      base++;
    }
  };
  const advance = (v: number) => {
    cursor[v]++;
    trim();
    notify();
  };

  const fail = (err: unknown) => {
    if (failure) return;
    failure = { err };
    buf.length = 0;
    notify();
    // Close upstream (after any pull in flight); its own errors are not news.
    void (async () => {
      await pulling;
      await body?.return?.().catch(() => {});
      await upstream.return?.().catch(() => {});
    })().catch(() => {});
  };

  const pullOne = async () => {
    try {
      let item: Item;
      if (body) {
        const r = await body.next();
        if (r.done) {
          body = undefined;
          item = { kind: 'end' };
        } else item = { kind: 'chunk', chunk: r.value };
      } else {
        const r = await upstream.next();
        if (r.done) item = { kind: 'eof' };
        else {
          if (r.value.sparse) body = r.value.sparse.runs()[Symbol.asyncIterator]();
          else if (r.value.body) body = r.value.body[Symbol.asyncIterator]();
          item = { kind: 'entry', entry: r.value };
        }
      }
      if (failure) return;
      buf.push(item);
      opts.onBuffer?.(head() - slowest());
    } catch (err) {
      fail(err);
    } finally {
      pulling = undefined;
      notify();
    }
  };

  /** The item at global index i (a view's cursor), pulling upstream when every view allows it. */
  const itemAt = async (i: number): Promise<Item> => {
    for (;;) {
      if (failure) throw failure.err;
      if (i < head()) return buf[i - base];
      if (pulling) await pulling;
      else if (head() - slowest() >= maxAhead) await changed();
      else await (pulling = pullOne());
    }
  };

  const makeView = (v: number): AsyncIterableIterator<TreeEntry> => {
    let finished = false;
    let bodyToken = 0; // which entry's body this view may read

    async function* bodyView(token: number): AsyncGenerator<Buffer | number> {
      for (;;) {
        if (token !== bodyToken || finished) return; // the consumer moved on
        const item = await itemAt(cursor[v]);
        if (item.kind !== 'chunk') {
          if (item.kind === 'end') advance(v);
          return;
        }
        yield item.chunk;
        // Advance only when the next chunk is asked for: the consumer is done with this one.
        if (token === bodyToken) advance(v);
      }
    }

    const next = async (): Promise<IteratorResult<TreeEntry>> => {
      if (finished) return { done: true, value: undefined };
      bodyToken++;
      let item = await itemAt(cursor[v]);
      while (item.kind === 'chunk' || item.kind === 'end') {
        advance(v); // skip what the consumer left of the previous body
        item = await itemAt(cursor[v]);
      }
      if (item.kind === 'eof') {
        finished = true;
        live[v] = false;
        trim();
        notify();
        return { done: true, value: undefined };
      }
      advance(v);
      const e = item.entry;
      if (e.sparse) {
        // Holes travel as numbers; `body` expands them only for a consumer that reads it.
        const token = bodyToken;
        return { done: false, value: { ...e, body: expandHoles(bodyView(token)), sparse: { storedSize: e.sparse.storedSize, runs: () => bodyView(token) } } };
      }
      return { done: false, value: e.body ? { ...e, body: bodyView(bodyToken) as AsyncGenerator<Buffer> } : { ...e } };
    };

    const it: AsyncIterableIterator<TreeEntry> = {
      next,
      return: async () => {
        if (!finished) {
          finished = true;
          live[v] = false;
          fail(new TeeAbortedError());
        }
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  };

  return Array.from({ length: n }, (_, v) => makeView(v));
}

/**
 * Run one consumer per view of `src` concurrently and wait for all of them
 * (allSettled: no writer is left running). A consumer that settles ends its
 * view, so one that fails before or while reading aborts the others instead
 * of stalling them. Rethrows the first real error (one that is not
 * TeeAbortedError), else the first error; otherwise the results in order.
 */
export async function teeEach<T>(src: AsyncIterable<TreeEntry>, consumers: ((view: AsyncIterable<TreeEntry>) => Promise<T>)[], opts?: TeeOptions): Promise<T[]> {
  const views = teeTree(src, consumers.length, opts);
  const settled = await Promise.allSettled(
    consumers.map(async (consume, i) => {
      try {
        return await consume(views[i]);
      } finally {
        await views[i].return!();
      }
    }),
  );
  const errors = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  if (errors.length) throw errors.find((e) => !(e instanceof TeeAbortedError)) ?? errors[0];
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}
