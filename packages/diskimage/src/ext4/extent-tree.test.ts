import test from 'ava';
import fc from 'fast-check';
import type { Run } from './alloc.js';
import { buildExtentTree, runsToExtents, treeBlocksNeeded } from './extent-tree.js';
import { decodeExtentNode, type ExtentLeaf } from './extent.js';

const csum = { csumSeed: 0x12345678, ino: 12, gen: 0 };

/** Walk a built tree (with the codec's checksum verification) back to its leaves. */
function leavesOf(iblock: Buffer, blocks: Map<number, Buffer>): ExtentLeaf[] {
  const walk = (node: ReturnType<typeof decodeExtentNode>): ExtentLeaf[] =>
    node.eh_depth === 0 ? node.leaves : node.indexes.flatMap((x) => walk(decodeExtentNode(blocks.get(x.ei_leaf)!, { csum })));
  return walk(decodeExtentNode(iblock));
}

function fragmented(n: number, len: number): Run[] {
  return Array.from({ length: n }, (_, i) => ({ start: 10_000 + i * (len + 1), len }));
}

for (const [n, depth] of [[1, 0], [4, 0], [5, 1], [1360, 1], [1361, 2], [3000, 2]] as const) {
  test(`${n} extents give a depth-${depth} tree that walks back to the same extents`, (t) => {
    const runs = fragmented(n, 3);
    let next = 1000;
    const tree = buildExtentTree(runs, 4096, csum, (k) => Array.from({ length: k }, () => next++));
    t.is(tree.blocks.length, treeBlocksNeeded(n, 4096));
    t.is(decodeExtentNode(tree.iblock).eh_depth, depth);
    const map = new Map(tree.blocks.map((b) => [b.block, b.data]));
    t.deepEqual(leavesOf(tree.iblock, map), runsToExtents(runs));
  });
}

test('runs longer than 32768 blocks split into initialized extents of at most 32768', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 8 }), (lens) => {
      let s = 0;
      const runs = lens.map((len) => ({ start: (s += len + 2) - len, len }));
      const ex = runsToExtents(runs);
      let l = 0;
      for (const e of ex) {
        if (e.ee_len < 1 || e.ee_len > 32768 || e.ee_block !== l) return false;
        l += e.ee_len;
      }
      return l === lens.reduce((a, b) => a + b, 0);
    }),
  );
  t.pass();
});
