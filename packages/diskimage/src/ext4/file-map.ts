import { FormatError } from '@diskimg/partitions/internal';
import { decodeExtentNode } from './extent.js';
import { decodeBlockMapRoot, decodeIndirectBlock } from './blockmap.js';

/**
 * Logical → physical block mapping of one inode, for the reader: extent
 * trees of any depth and legacy block maps, as runs in increasing logical
 * order. Gaps between runs are holes. Every loop is bounded: tree depth is
 * checked level by level, a block is never visited twice, and the walk stops
 * at the end of the file.
 */
export interface Run {
  lblk: number;
  len: number;
  pblk: number;
  /** Uninitialized extent: reads as zeros. */
  uninit: boolean;
}

export interface MapContext {
  blockSize: number;
  /** s_blocks_count: every block number must be below it. */
  blocksCount: number;
  /** First block that may hold data (s_first_data_block). */
  firstDataBlock: number;
  readBlock(n: number, structure: string): Promise<Buffer>;
  /** metadata_csum seed; extent blocks are verified when set. */
  csumSeed?: number;
}

function checkRange(S: string, what: string, start: number, len: number, ctx: MapContext): void {
  if (start < ctx.firstDataBlock || start + len > ctx.blocksCount || len <= 0) {
    throw new FormatError(S, `${what} ${start}${len > 1 ? `+${len}` : ''} lies outside the filesystem (${ctx.blocksCount} blocks)`);
  }
}

/** Runs of an extent-mapped inode, up to logical block `nblocks`. */
export async function* extentRuns(ctx: MapContext, ino: number, gen: number, iBlock: Buffer, nblocks: number): AsyncGenerator<Run> {
  const S = `ext4 inode ${ino}`;
  const csum = ctx.csumSeed !== undefined ? { csumSeed: ctx.csumSeed, ino, gen } : undefined;
  const visited = new Set<number>();
  let next = 0; // first logical block not yet covered
  async function* walk(raw: Buffer, expectDepth: number | undefined, where: string): AsyncGenerator<Run> {
    const node = decodeExtentNode(raw, { csum: expectDepth === undefined ? undefined : csum, structure: `${S} ${where}` });
    if (expectDepth !== undefined && node.eh_depth !== expectDepth) {
      throw new FormatError(`${S} ${where}`, `eh_depth ${node.eh_depth}, expected ${expectDepth}`);
    }
    if (node.eh_depth > 0) {
      for (let i = 0; i < node.indexes.length; i++) {
        const x = node.indexes[i]!;
        if (x.ei_block >= nblocks) return;
        if (i > 0 && x.ei_block <= node.indexes[i - 1]!.ei_block) throw new FormatError(`${S} ${where}`, 'extent index entries out of order');
        checkRange(`${S} ${where}`, 'extent index block', x.ei_leaf, 1, ctx);
        if (visited.has(x.ei_leaf)) throw new FormatError(`${S} ${where}`, `extent block ${x.ei_leaf} referenced twice (a cycle)`);
        visited.add(x.ei_leaf);
        const child = await ctx.readBlock(x.ei_leaf, `${S} extent block ${x.ei_leaf}`);
        yield* walk(child, node.eh_depth - 1, `extent block ${x.ei_leaf}`);
      }
      return;
    }
    for (const e of node.leaves) {
      if (e.ee_block >= nblocks) return;
      if (e.ee_len === 0) continue;
      if (e.ee_block < next) throw new FormatError(`${S} ${where}`, `extent at logical block ${e.ee_block} overlaps the previous one`);
      checkRange(`${S} ${where}`, 'extent', e.ee_start, e.ee_len, ctx);
      const len = Math.min(e.ee_len, nblocks - e.ee_block);
      next = e.ee_block + e.ee_len;
      yield { lblk: e.ee_block, len, pblk: e.ee_start, uninit: e.uninit };
    }
  }
  yield* walk(iBlock, undefined, 'extent root');
}

/** Runs of a legacy block-mapped inode (direct, indirect, double, triple), up to logical block `nblocks`. */
export async function* blockMapRuns(ctx: MapContext, ino: number, iBlock: Buffer, nblocks: number): AsyncGenerator<Run> {
  const S = `ext4 inode ${ino} block map`;
  const per = ctx.blockSize / 4;
  const root = decodeBlockMapRoot(iBlock);
  let metaReads = 0;
  const run = (lblk: number, pblk: number): Run => {
    checkRange(S, 'block', pblk, 1, ctx);
    return { lblk, len: 1, pblk, uninit: false };
  };
  for (let i = 0; i < 12 && i < nblocks; i++) if (root.direct[i]) yield run(i, root.direct[i]!);
  // span = logical blocks covered by one pointer at this level.
  async function* indirect(blk: number, level: number, first: number): AsyncGenerator<Run> {
    checkRange(S, 'indirect block', blk, 1, ctx);
    if (++metaReads > ctx.blocksCount) throw new FormatError(S, 'more indirect blocks than the filesystem has blocks');
    const ptrs = decodeIndirectBlock(await ctx.readBlock(blk, `${S} indirect block ${blk}`));
    const span = per ** (level - 1);
    for (let i = 0; i < ptrs.length; i++) {
      const l = first + i * span;
      if (l >= nblocks) return;
      const p = ptrs[i]!;
      if (!p) continue;
      if (level === 1) yield run(l, p);
      else yield* indirect(p, level - 1, l);
    }
  }
  let first = 12;
  for (const [blk, level] of [[root.ind, 1], [root.dind, 2], [root.tind, 3]] as const) {
    if (first >= nblocks) return;
    if (blk) yield* indirect(blk, level, first);
    first += per ** level;
  }
}

/** Merge adjacent runs (contiguous logically and physically, same state), capping each at `maxLen` blocks. */
export async function* coalesce(runs: AsyncIterable<Run>, maxLen: number): AsyncGenerator<Run> {
  let cur: Run | undefined;
  for await (const r of runs) {
    if (cur && cur.lblk + cur.len === r.lblk && cur.pblk + cur.len === r.pblk && cur.uninit === r.uninit && cur.len + r.len <= maxLen) {
      cur.len += r.len;
      continue;
    }
    if (cur) yield cur;
    cur = { ...r };
  }
  if (cur) yield cur;
}
