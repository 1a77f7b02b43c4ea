#!/usr/bin/env node
// Mutation check (not in CI: slow). Copies the committed tree (git ls-files of HEAD's checkout) to a
// scratch directory with node_modules linked, then applies each realistic one-line bug below, one at
// a time, runs the fast tests of its area (`ava --fail-fast`), and reports caught (the tests failed)
// or MISSED (they passed). A mutant whose text is not found is reported STALE (update this list).
//   node scripts/mutants.mjs [--list] [--keep] [ID_OR_AREA ...]     (scripts/mutants.sh runs this)
// Run it before resolving an issue that touches a format.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const T = {
  gpt: ['packages/partitions/src/gpt-entry.test.ts', 'packages/partitions/src/gpt-header.test.ts', 'packages/partitions/src/table.test.ts', 'test/gpt-judges.test.ts', 'test/gpt-tools.test.ts'],
  fat: ['packages/diskimage/src/fat32/crash.test.ts', 'packages/diskimage/src/fat32/populate.test.ts', 'packages/diskimage/src/fat32/volume.test.ts', 'packages/diskimage/src/fat32/codecs.test.ts'],
  fatOps: ['packages/diskimage/src/fat32/ops.test.ts'],
  ext4: ['packages/diskimage/src/ext4/create-sizes.test.ts', 'packages/diskimage/src/source/tar-edges.test.ts', 'packages/diskimage/src/ext4/codecs.test.ts', 'packages/diskimage/src/ext4/create-roundtrip.test.ts', 'packages/diskimage/src/ext4/create.test.ts', 'packages/diskimage/src/ext4/xattr.test.ts'],
  minisign: ['packages/ab/src/minisign/minisign.test.ts', 'packages/cli/src/commands/sign.test.ts'],
  grub: ['packages/grubcfg/src/render.test.ts', 'packages/grubcfg/src/counting.test.ts', 'packages/grubcfg/src/decision.test.ts'],
  tar: ['packages/diskimage/src/source/tar.test.ts', 'packages/diskimage/src/source/tar-edges.test.ts'],
  update: ['test/update-crash.test.ts', 'test/update.test.ts'],
  bootState: ['packages/ab/src/boot-state-crash.test.ts', 'packages/ab/src/boot-state.test.ts'],
};

// [id, area, file, exact text, replacement, tests]
const MUTANTS = [
  ['gpt-crc-length', 'gpt', 'packages/partitions/src/table.ts', 'partitionEntryArrayCrc32: entryArrayCrc32(array),', 'partitionEntryArrayCrc32: entryArrayCrc32(array.subarray(0, spec.entries.length * entrySize)),', T.gpt],
  ['gpt-backup-array-lba', 'gpt', 'packages/partitions/src/table.ts', 'myLba: last, alternateLba: 1, partitionEntryLba: backupArrayLba }', 'myLba: last, alternateLba: 1, partitionEntryLba: 2 }', T.gpt],
  ['gpt-backup-alternate-lba', 'gpt', 'packages/partitions/src/table.ts', 'myLba: last, alternateLba: 1,', 'myLba: last, alternateLba: last,', T.gpt],
  ['gpt-name-code-points', 'gpt', 'packages/partitions/src/gpt-entry.ts', 'for (let i = 0; i < e.name.length; i++) b.writeUInt16LE(e.name.charCodeAt(i), GPT_ENTRY.PartitionName + 2 * i);', '{ let i = 0; for (const ch of e.name) b.writeUInt16LE(ch.codePointAt(0)! & 0xffff, GPT_ENTRY.PartitionName + 2 * i++); }', T.gpt],
  ['fat-copy-2-not-written', 'fat', 'packages/diskimage/src/fat32/fat.ts', 'for (let copy = 0; copy < this.g.numFats; copy++) {', 'for (let copy = 0; copy < 1; copy++) {', T.fat],
  ['fat-fsinfo-after-replace', 'fat', 'packages/diskimage/src/fat32/volume.ts', 'this.fat.release(oldChain);\n    await this.fat.flush(this.dev);\n    await this.writeFsInfo();', 'this.fat.release(oldChain);\n    await this.fat.flush(this.dev);', T.fat],
  ['fat-fsinfo-after-rename', 'fat', 'packages/diskimage/src/fat32/volume.ts', 'if (replaced.length || this.fat.freeCount !== freeBefore) {', 'if (replaced.length) {', T.fatOps],
  ['fat-dotdot-root-cluster', 'fat', 'packages/diskimage/src/fat32/volume.ts', 'const parentCluster = dir.cluster === this.geometry.rootCluster ? 0 : dir.cluster;', 'const parentCluster = dir.cluster;', T.fat],
  ['fat-clusters-at-exact-multiple', 'fat', 'packages/diskimage/src/fat32/volume.ts', 'return Math.ceil(size / this.geometry.clusterSize);', 'return size ? Math.floor(size / this.geometry.clusterSize) + 1 : 0;', T.fat],
  ['ext4-inode-csum-range', 'ext4', 'packages/diskimage/src/ext4/checksum.ts', 'c = crc32cRaw(c, raw, off, raw.length);', 'c = crc32cRaw(c, raw, off, Math.min(raw.length, 160));', T.ext4],
  ['ext4-group-free-count', 'ext4', 'packages/diskimage/src/ext4/group-build.ts', 'const freeBlocks = gp.blocks - popcount(bb, gp.blocks);', 'const freeBlocks = gp.blocks - popcount(bb, gp.blocks - 1);', T.ext4],
  ['ext4-block-at-exact-multiple', 'ext4', 'packages/diskimage/src/ext4/create.ts', 'if (carry) await blocks(carry); // zero-filled past the end', 'if (carry || size % BLOCK_SIZE === 0) await blocks(carry ?? Buffer.alloc(BLOCK_SIZE, 1));', T.ext4],
  ['ext4-fast-symlink-60', 'ext4', 'packages/diskimage/src/ext4/create.ts', 'if (target.length < 60) {', 'if (target.length <= 60) {', T.ext4],
  ['ext4-last-dirent-rec-len', 'ext4', 'packages/diskimage/src/ext4/dirent.ts', 'if (i === entries.length - 1) rec = end - off;', 'if (i === entries.length - 1 && i > 0) rec = end - off;', T.ext4],
  ['minisign-global-sig-signs-comment-only', 'minisign', 'packages/ab/src/minisign/sign.ts', 'edSign(null, Buffer.concat([signature, trustedCommentBytes]), key)', 'edSign(null, trustedCommentBytes, key)', T.minisign],
  ['minisign-global-sig-not-checked', 'minisign', 'packages/ab/src/minisign/verify.ts', 'if (!edVerify(null, Buffer.concat([sig.signature, sig.trustedCommentBytes]), key, sig.globalSignature)) {', 'if (false && !edVerify(null, Buffer.concat([sig.signature, sig.trustedCommentBytes]), key, sig.globalSignature)) {', T.minisign],
  ['grub-quote-dollar', 'grub', 'packages/grubcfg/src/script.ts', "if (!/[$\"\\\\`\\n]/.test(s)) return", "if (!/[\"\\\\`\\n]/.test(s)) return", T.grub],
  ['grub-quote-blanks', 'grub', 'packages/grubcfg/src/script.ts', "const BARE_WORD = /^[^{}|&$;<>\\s'\"\\\\#][^{}|&$;<>\\s'\"\\\\]*$/;", "const BARE_WORD = /^[^{}|&$;<>\\s'\"\\\\#][^{}|&$;<>'\"\\\\]*$/;", T.grub],
  ['grub-counting-ladder-off-by-one', 'grub', 'packages/grubcfg/src/counting.ts', 'then set psyopsos_next=${n - 1}`', 'then set psyopsos_next=${n}`', T.grub],
  ['tar-hardlink-long-target', 'tar', 'packages/diskimage/src/source/tar.ts', "const rawLink = str('linkpath') ?? (longLink ?? cstr(h.subarray(157, 257))).toString('utf8');", "const rawLink = cstr(h.subarray(157, 257)).toString('utf8');", T.tar],
  ['update-no-verifier-finish', 'update', 'packages/ab/src/update.ts', '  verifier?.finish(); // throws', '  // verifier?.finish(); // throws', T.update],
  ['update-commit-before-verify', 'update', 'packages/ab/src/update.ts', '  await hashed.drain();\n  verifier?.finish(); // throws on any difference: the slot stays incomplete, the boot configuration untouched\n  await dev.commit();', '  await dev.commit();\n  await hashed.drain();\n  verifier?.finish();', T.update],
  ['update-no-pending-marker-first', 'update', 'packages/ab/src/update.ts', '  await dev.start({ label, ...identity });\n', '', T.update],
  ['pending-commit-first-half-first', 'update', 'packages/diskimage/src/ext4/pending.ts', '    await this.inner.write(SUPERBLOCK_OFFSET + SB_SIZE / 2, this.held.subarray(SB_SIZE / 2));\n    await this.inner.flush();\n    await this.inner.write(SUPERBLOCK_OFFSET, this.held.subarray(0, SB_SIZE / 2));', '    await this.inner.write(SUPERBLOCK_OFFSET, this.held.subarray(0, SB_SIZE / 2));\n    await this.inner.flush();\n    await this.inner.write(SUPERBLOCK_OFFSET + SB_SIZE / 2, this.held.subarray(SB_SIZE / 2));', T.update],
  ['boot-state-arm-env-before-cfg', 'bootState', 'packages/ab/src/boot-state.ts', '    await writeCfg(esp, cfgText);\n    await writeEnv(esp, env);', '    await writeEnv(esp, env);\n    await writeCfg(esp, cfgText);', T.bootState],
];

const args = process.argv.slice(2);
if (args.includes('--list')) {
  for (const [id, area, file] of MUTANTS) console.log(`${id}\t${area}\t${file}`);
  process.exit(0);
}
const keep = args.includes('--keep');
const want = args.filter((a) => !a.startsWith('--'));
const chosen = MUTANTS.filter(([id, area]) => want.length === 0 || want.includes(id) || want.includes(area));

// Scratch copy: the tracked files as checked out, node_modules linked so workspace links resolve inside.
const S = mkdtempSync(join(tmpdir(), 'diskimg-mutants-'));
const files = spawnSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\0').filter(Boolean);
for (const f of files) if (existsSync(join(ROOT, f))) cpSync(join(ROOT, f), join(S, f), { recursive: true });
mkdirSync(join(S, 'node_modules'));
for (const e of readdirSync(join(ROOT, 'node_modules'))) {
  if (e === '@diskimg') cpSync(join(ROOT, 'node_modules', e), join(S, 'node_modules', e), { recursive: true, verbatimSymlinks: true });
  else symlinkSync(join(ROOT, 'node_modules', e), join(S, 'node_modules', e));
}
for (const p of readdirSync(join(ROOT, 'packages'))) {
  const nm = join(ROOT, 'packages', p, 'node_modules');
  if (existsSync(nm)) cpSync(nm, join(S, 'packages', p, 'node_modules'), { recursive: true, verbatimSymlinks: true });
}
mkdirSync(join(S, '.cache'), { recursive: true });
if (existsSync(join(ROOT, '.cache', 'fixtures'))) symlinkSync(join(ROOT, '.cache', 'fixtures'), join(S, '.cache', 'fixtures'));
console.log(`mutants: scratch copy ${S}; ${chosen.length} mutants`);

const results = [];
for (const [id, area, file, from, to, tests] of chosen) {
  const path = join(S, file);
  const orig = readFileSync(path, 'utf8');
  if (!orig.includes(from)) {
    results.push([id, area, 'STALE', 0, 'text not found']);
    console.log(`  ${id}: STALE (text not found in ${file})`);
    continue;
  }
  writeFileSync(path, orig.replace(from, to));
  const t0 = Date.now();
  const r = spawnSync('pnpm', ['exec', 'ava', '--fail-fast', '--timeout=5m', ...tests], {
    cwd: S, encoding: 'utf8', timeout: 40 * 60_000, maxBuffer: 256 << 20,
    env: { ...process.env, DISKIMG_TEST_CHECKS: join(S, '.cache', 'test-checks.jsonl'), FORCE_COLOR: '0' },
  });
  writeFileSync(path, orig);
  const secs = Math.round((Date.now() - t0) / 1000);
  const out = `${r.stdout}${r.stderr}`;
  const firstFail = (/✘ (?:\[fail\]: )?(.*)/.exec(out)?.[1] ?? (r.error ? String(r.error) : '')).slice(0, 160);
  const verdict = r.status === 0 ? 'MISSED' : 'caught';
  results.push([id, area, verdict, secs, verdict === 'caught' ? firstFail : '']);
  console.log(`  ${id}: ${verdict} (${secs} s)${verdict === 'caught' ? ` by ${firstFail}` : ''}`);
}
if (!keep) rmSync(S, { recursive: true, force: true });
const caught = results.filter((r) => r[2] === 'caught').length;
console.log(`\nmutants: ${caught}/${results.length} caught`);
for (const [id, area, v, secs, why] of results) console.log(`${v.padEnd(7)} ${area.padEnd(9)} ${id} (${secs} s)${why ? ` — ${why}` : ''}`);
process.exit(results.some((r) => r[2] !== 'caught') ? 1 : 0);
