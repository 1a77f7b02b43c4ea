// Our GPT checked by real tools (sgdisk -v, sfdisk --json), and real tools' GPTs read by us.
import test from 'ava';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { assertAgreesWithSfdisk, needTools, run, scratch, sh, sha256 } from './gpt-helpers.js';

const s = scratch();
test.after.always(() => s.cleanup());

const layouts: [string, string[]][] = [
  ['default', []],
  ['custom', ['--esp-size', '64M', '--secret-size', '1.5M', '--slot-size', '1.5G']],
  ['tiny', ['--esp-size', '33M', '--secret-size', '1M', '--slot-size', '100MiB']],
];

for (const [label, args] of layouts) {
  test(`${label} layout, 512-byte sectors: sgdisk -v finds no problems; sfdisk --json agrees with show --json`, async (t) => {
    if (!needTools(t, 'sgdisk', 'sfdisk')) return;
    const img = join(s.dir, `${label}.img`);
    const c = await runCli(['create', '--layout-only', img, '--seed', label, '--json', ...args]);
    t.is(c.code, 0, c.stderr);
    t.is(c.stderr, '');
    const v = run('sgdisk', ['-v', img]);
    t.regex(v.out, /No problems found/, v.out);
    const shown = await runCli(['show', img, '--json']);
    t.is(shown.code, 0, shown.stderr);
    t.is(shown.json.header, 'primary');
    t.deepEqual(shown.json.partitions.map((p: any) => [p.name, p.typeAlias]), [
      ['PSYOPSOSEFI', 'esp'], ['psyops-secret', 'linux'], ['psyopsOS-A', 'linux'], ['psyopsOS-B', 'linux'],
    ]);
    for (const p of shown.json.partitions) t.is((p.firstLba * 512) % (1 << 20), 0, `${p.name} is 1 MiB aligned`);
    // create --json reports the same table show reads back
    const { output, target, ...fromCreate } = c.json;
    // (show also inspects filesystems, slots and ESP: compare the table part only)
    const { slots, esp, ...table } = shown.json;
    table.partitions = table.partitions.map(({ filesystem, ...p }: any) => p);
    t.deepEqual({ ...fromCreate, device: img }, table);
    assertAgreesWithSfdisk(t, JSON.parse(sh('sfdisk', ['--json', img])), shown.json);
  });
}

test('default sizes: 128M, 128M, 1536M, 1536M; image ends with the backup GPT', async (t) => {
  const img = join(s.dir, 'sizes.img');
  const c = await runCli(['create', '--layout-only', img, '--json']);
  t.is(c.code, 0, c.stderr);
  t.deepEqual(c.json.partitions.map((p: any) => p.sizeBytes / 2 ** 20), [128, 128, 1536, 1536]);
  t.is(c.json.backupHeader.lba, c.json.totalSectors - 1);
  t.is(statSync(img).size, c.json.sizeBytes);
});

test('same --seed twice: byte-identical images that occupy only a few KiB', async (t) => {
  const a = join(s.dir, 'seed-a.img');
  const b = join(s.dir, 'seed-b.img');
  // Small slots so hashing stays quick; the default-size image is checked for sparseness below.
  const small = ['--esp-size', '8M', '--secret-size', '1M', '--slot-size', '16M'];
  t.is((await runCli(['create', '--layout-only', a, '--seed', 'same', ...small])).code, 0);
  t.is((await runCli(['create', '--layout-only', b, '--seed', 'same', ...small])).code, 0);
  t.is(await sha256(a), await sha256(b));
  const c = join(s.dir, 'seed-c.img');
  t.is((await runCli(['create', '--layout-only', c, '--seed', 'other', ...small])).code, 0);
  t.not(await sha256(a), await sha256(c));
  const d = join(s.dir, 'seed-d.img');
  t.is((await runCli(['create', '--layout-only', d, '--seed', 'same'])).code, 0);
  const st = statSync(d);
  t.true(st.size > 3 * 2 ** 30);
  t.log(`apparent ${st.size} bytes, allocated ${st.blocks * 512} bytes`);
  t.true(st.blocks * 512 <= 64 * 1024, `allocated ${st.blocks * 512} bytes`);
  if (needTools(t, 'du')) {
    const kib = Number(sh('du', ['-k', d]).split(/\s/)[0]);
    t.true(kib <= 64, `du says ${kib} KiB`);
  }
});

test('images made by sgdisk: show --json agrees with sfdisk --json (types, names, attributes, gaps)', async (t) => {
  if (!needTools(t, 'sgdisk', 'sfdisk')) return;
  const img = join(s.dir, 'sgdisk.img');
  sh('truncate', ['-s', '64M', img]);
  sh('sgdisk', [
    '-n1:1M:+8M', '-t1:ef00', '-c1:EFI system', '-A1:set:0', '-A1:set:2',
    '-n3:20M:+4M', '-t3:8200', '-c3:swap', '-A3:set:60', '-A3:set:48',
    '-n2:12M:+5M', '-t2:8300', '-c2:ünïcødé ✓ name',
    '-n5:0:0', '-t5:fd00', '-A5:set:1',
    img,
  ]);
  const shown = await runCli(['show', img, '--json']);
  t.is(shown.code, 0, shown.stderr);
  t.deepEqual(shown.json.partitions.map((p: any) => p.number), [1, 2, 3, 5]);
  t.is(shown.json.partitions[1].name, 'ünïcødé ✓ name');
  t.is(shown.json.partitions[0].typeName, 'EFI System');
  t.deepEqual(shown.json.partitions[2].attributes.guidSpecificBits, [48, 60]);
  assertAgreesWithSfdisk(t, JSON.parse(sh('sfdisk', ['--json', img])), shown.json);
  const human = await runCli(['show', img]);
  t.is(human.code, 0);
  t.regex(human.stdout, /header: primary/);
  t.regex(human.stdout, /RequiredPartition LegacyBIOSBootable/);
});

test('images made by parted: show --json agrees with sfdisk --json', async (t) => {
  if (!needTools(t, 'parted', 'sfdisk')) return;
  const img = join(s.dir, 'parted.img');
  sh('truncate', ['-s', '100M', img]);
  sh('parted', ['-s', img, 'mklabel', 'gpt', 'mkpart', 'boot', 'fat32', '1MiB', '33MiB', 'set', '1', 'esp', 'on',
    'mkpart', 'root', 'ext4', '33MiB', '80MiB', 'mkpart', 'data', '80MiB', '100%']);
  const shown = await runCli(['show', img, '--json']);
  t.is(shown.code, 0, shown.stderr);
  t.deepEqual(shown.json.partitions.map((p: any) => [p.name, p.typeAlias]), [['boot', 'esp'], ['root', 'linux'], ['data', 'linux']]);
  assertAgreesWithSfdisk(t, JSON.parse(sh('sfdisk', ['--json', img])), shown.json);
});
