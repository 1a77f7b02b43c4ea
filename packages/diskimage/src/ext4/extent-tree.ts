import type { Run } from './alloc.js';
import { encodeExtentNode, EXT_INIT_MAX_LEN, EXT4_IBLOCK_MAX_ENTRIES, type ExtentChecksumOptions, type ExtentIndex, type ExtentLeaf } from './extent.js';

/**
 * Build the extent tree of a file whose data lies in `runs` (logical blocks
 * 0.. in order). Up to 4 extents fit in i_block; beyond that, leaf blocks
 * and, if needed, index blocks are added level by level (each tree block
 * holds (4096 - 12 - 4) / 12 = 340 entries). Tree blocks come from
 * `allocTree` and are returned encoded for the caller to write.
 */
export interface ExtentTree {
  /** The 60-byte i_block root. */
  iblock: Buffer;
  /** Tree blocks (block number + encoded bytes with tail checksum). */
  blocks: { block: number; data: Buffer }[];
}

/** A run of a file's data; `lblk` (default: right after the previous run) leaves a hole before it when it skips ahead. */
export type FileRun = Run & { lblk?: number };

/** Split runs into extents of at most 32768 blocks (the initialized-extent limit). */
export function runsToExtents(runs: readonly FileRun[]): ExtentLeaf[] {
  const out: ExtentLeaf[] = [];
  let lblk = 0;
  for (const r of runs) {
    if (r.lblk !== undefined) lblk = r.lblk;
    for (let off = 0; off < r.len; off += EXT_INIT_MAX_LEN) {
      const len = Math.min(EXT_INIT_MAX_LEN, r.len - off);
      out.push({ ee_block: lblk, ee_len: len, ee_start: r.start + off, uninit: false });
      lblk += len;
    }
  }
  return out;
}

/** Number of tree blocks a file with `extents` extents needs (0 when they fit in i_block). */
export function treeBlocksNeeded(extents: number, blockSize: number): number {
  const per = Math.floor((blockSize - 12 - 4) / 12);
  let n = extents;
  let total = 0;
  while (n > EXT4_IBLOCK_MAX_ENTRIES) {
    n = Math.ceil(n / per);
    total += n;
  }
  return total;
}

export function buildExtentTree(
  runs: readonly FileRun[],
  blockSize: number,
  csum: ExtentChecksumOptions,
  allocTree: (n: number) => number[],
): ExtentTree {
  const leaves = runsToExtents(runs);
  const per = Math.floor((blockSize - 12 - 4) / 12);
  const blocks: { block: number; data: Buffer }[] = [];
  if (leaves.length <= EXT4_IBLOCK_MAX_ENTRIES) {
    return { iblock: encodeExtentNode({ eh_depth: 0, eh_generation: 0, leaves, indexes: [] }, 60), blocks };
  }
  // Bottom-up: pack the current level into blocks, index them one level up.
  let depth = 0;
  let level: { first: number; leaves?: ExtentLeaf[]; indexes?: ExtentIndex[] }[] = [];
  for (let i = 0; i < leaves.length; i += per) level.push({ first: leaves[i]!.ee_block, leaves: leaves.slice(i, i + per) });
  for (;;) {
    const nums = allocTree(level.length);
    const up: ExtentIndex[] = [];
    level.forEach((node, i) => {
      const data = encodeExtentNode({ eh_depth: depth, eh_generation: 0, leaves: node.leaves ?? [], indexes: node.indexes ?? [] }, blockSize, csum);
      blocks.push({ block: nums[i]!, data });
      up.push({ ei_block: node.first, ei_leaf: nums[i]!, ei_unused: 0 });
    });
    depth++;
    if (up.length <= EXT4_IBLOCK_MAX_ENTRIES) {
      return { iblock: encodeExtentNode({ eh_depth: depth, eh_generation: 0, leaves: [], indexes: up }, 60), blocks };
    }
    level = [];
    for (let i = 0; i < up.length; i += per) level.push({ first: up[i]!.ei_block, indexes: up.slice(i, i + per) });
  }
}
