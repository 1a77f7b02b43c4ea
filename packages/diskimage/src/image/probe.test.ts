// probeFilesystem on filesystems made by the real mkfs tools, compared with blkid -p.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileDevice } from '../device/file.js';
import { MemoryDevice } from '../device/memory.js';
import { fatUuid, probeFilesystem, type FsType } from './probe.js';
import { needTools } from '../../../../test/helpers/skip.js';

const dir = mkdtempSync(join(tmpdir(), 'diskimg-probe-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const have = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status === 0;

function make(name: string, mib: number, cmd: string[]): string {
  const f = join(dir, name);
  writeFileSync(f, '');
  spawnSync('truncate', ['-s', `${mib}M`, f]);
  const r = spawnSync(cmd[0]!, [...cmd.slice(1), f], { encoding: 'utf8', env: { ...process.env, E2FSPROGS_FAKE_TIME: '1764374400' } });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
  return f;
}

function blkid(f: string): Record<string, string> {
  const r = spawnSync('blkid', ['-p', '-o', 'export', f], { encoding: 'utf8' });
  return Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

async function probe(f: string) {
  const dev = await FileDevice.open(f);
  try {
    return await probeFilesystem(dev);
  } finally {
    await dev.close();
  }
}

const cases: [string, string, number, string[], FsType][] = [
  ['FAT32 with a label and volume ID', 'mkfs.fat', 40, ['mkfs.fat', '-F32', '-n', 'PSYOPSOSEFI', '-i', '1234ABCD'], 'fat32'],
  ['FAT32 without a label', 'mkfs.fat', 40, ['mkfs.fat', '-F32', '-i', '0000BEEF'], 'fat32'],
  ['FAT32, 4096-byte sectors', 'mkfs.fat', 300, ['mkfs.fat', '-F32', '-S', '4096', '-n', 'BIG'], 'fat32'],
  ['ext4 with a label', 'mkfs.ext4', 16, ['mkfs.ext4', '-q', '-L', 'psyopsOS-A', '-U', '5053594f-5053-4f53-8001-000000000003'], 'ext4'],
  ['ext4, 16-byte label, e2fsprogs defaults', 'mkfs.ext4', 16, ['mkfs.ext4', '-q', '-L', 'sixteen-bytes-ok'], 'ext4'],
  ['ext4 without a label', 'mkfs.ext4', 16, ['mkfs.ext4', '-q'], 'ext4'],
  ['ext2 (read by the ext4 reader)', 'mkfs.ext2', 8, ['mkfs.ext2', '-q', '-L', 'old'], 'ext4'],
];

for (const [title, tool, mib, cmd, type] of cases) {
  test(`${title}: type, label and UUID as blkid -p reports them`, async (t) => {
    if (!needTools(t, tool, 'blkid')) return;
    const f = make(title.replace(/\W+/g, '-'), mib, cmd);
    const b = blkid(f);
    const p = await probe(f);
    t.is(p.type, type);
    t.is(p.label, b.LABEL);
    t.is(p.uuid, b.UUID);
    t.is(p.error, undefined);
    rmSync(f);
  });
}

test('FAT16 is recognised but reported as unreadable; zeros, a tiny device and garbage are "unknown"', async (t) => {
  if (needTools(t, 'mkfs.fat')) {
    const f = make('fat16', 16, ['mkfs.fat', '-F16']);
    const p = await probe(f);
    t.is(p.type, 'unknown');
    t.regex(p.error ?? '', /not FAT32 .*FAT12\/16/);
  }
  t.deepEqual(await probeFilesystem(new MemoryDevice(1 << 20)), { type: 'unknown' });
  t.deepEqual(await probeFilesystem(new MemoryDevice(100)), { type: 'unknown' });
  const junk = Buffer.alloc(1 << 16, 0xa5);
  t.deepEqual(await probeFilesystem(new MemoryDevice(junk.length, 512, junk)), { type: 'unknown' });
});

test('fatUuid formats the volume ID as blkid does', (t) => {
  t.is(fatUuid(0x50534f53), '5053-4F53');
  t.is(fatUuid(0xbeef), '0000-BEEF');
});

test('FAT32 whose boot-sector label is stale: the root directory label wins, as in blkid', async (t) => {
  if (!needTools(t, 'mkfs.fat', 'blkid')) return;
  const f = make('stale', 40, ['mkfs.fat', '-F32', '-n', 'ROOTLABEL']);
  // BS_VolLab (fatgen103: offset 71, 11 bytes) rewritten behind the root entry's back.
  spawnSync('sh', ['-c', `printf 'STALE      ' | dd of=${f} bs=1 seek=71 conv=notrunc status=none`]);
  const b = blkid(f);
  t.is(b.LABEL_FATBOOT, 'STALE');
  t.is((await probe(f)).label, b.LABEL);
  t.is(b.LABEL, 'ROOTLABEL');
});
