import { FormatError } from '@diskimg/partitions/internal';
import { asBuffer } from './struct.js';

/**
 * Legacy (ext2/ext3) block maps, read-only: i_block holds 12 direct block
 * numbers, then one indirect, one double- and one triple-indirect block.
 * Block number 0 is a hole.
 */
export const EXT4_NDIR_BLOCKS = 12;
export const EXT4_IND_BLOCK = 12;
export const EXT4_DIND_BLOCK = 13;
export const EXT4_TIND_BLOCK = 14;

export interface BlockMapRoot {
  direct: number[];
  ind: number;
  dind: number;
  tind: number;
}

/** Split the 60-byte i_block into direct and indirect pointers. */
export function decodeBlockMapRoot(iBlock: Uint8Array): BlockMapRoot {
  if (iBlock.length < 60) throw new FormatError('ext4 block map', `i_block is ${iBlock.length} bytes, need 60`);
  const b = asBuffer(iBlock);
  const direct: number[] = [];
  for (let i = 0; i < EXT4_NDIR_BLOCKS; i++) direct.push(b.readUInt32LE(4 * i));
  return { direct, ind: b.readUInt32LE(48), dind: b.readUInt32LE(52), tind: b.readUInt32LE(56) };
}

/** The block numbers in an indirect block (blockSize / 4 of them). */
export function decodeIndirectBlock(block: Uint8Array): Uint32Array {
  const b = asBuffer(block);
  const out = new Uint32Array(b.length >>> 2);
  for (let i = 0; i < out.length; i++) out[i] = b.readUInt32LE(4 * i);
  return out;
}

/**
 * Where logical block `lblk` lives: the chain of indexes to follow, as
 * [level, index…] — level 0 direct (index into direct[]), 1 ind, 2 dind, 3 tind;
 * `undefined` past what a block map can address.
 */
export function blockMapPath(lblk: number, blockSize: number): number[] | undefined {
  const per = blockSize / 4;
  if (lblk < EXT4_NDIR_BLOCKS) return [0, lblk];
  let n = lblk - EXT4_NDIR_BLOCKS;
  if (n < per) return [1, n];
  n -= per;
  if (n < per * per) return [2, Math.floor(n / per), n % per];
  n -= per * per;
  if (n < per * per * per) return [3, Math.floor(n / (per * per)), Math.floor(n / per) % per, n % per];
  return undefined;
}
