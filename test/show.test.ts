// diskimg show: filesystems, slot and ESP metadata, checked against real tools: blkid -p for types,
// labels and UUIDs; the minisign CLI made the signatures; grub-editenv reads the grubenv. Images
// come from upstream's recipe (sgdisk or parted + mkfs.fat + mkfs.ext4 -d) and from diskimg create.
import test from 'ava';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { buildInspectImage, ESP_META, GRUBENV, missingTools, OS_META, sh, useInspectImage, type InspectImage } from './helpers/inspect-image.js';
import { needTools } from './helpers/skip.js';

const ready = useInspectImage(test, { defaultLabel: 'psyopsOS-B' });

/** blkid -p (low-level probe, no cache) of the filesystem at a byte offset. */
function blkid(img: string, offset: number): Record<string, string> {
  const r = sh('blkid', ['-p', '-O', String(offset), '-o', 'export', img]).toString('utf8');
  return Object.fromEntries(r.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function assertBlkid(t: any, img: string, partitions: any[]): void {
  for (const p of partitions) {
    const b = blkid(img, p.offsetBytes);
    t.is(p.filesystem.type, { vfat: 'fat32', ext4: 'ext4' }[b.TYPE!], `${p.name}: blkid TYPE ${b.TYPE}`);
    t.is(p.filesystem.label, b.LABEL, `${p.name} label`);
    t.is(p.filesystem.uuid, b.UUID, `${p.name} uuid`);
    t.is(p.filesystem.error, undefined);
  }
}

// minisign prints the id without leading zeros; we print 16 hex digits.
const keyIdOf = (pub: string) => /minisign public key ([0-9A-F]+)/.exec(readFileSync(pub, 'utf8'))![1].padStart(16, '0');

function patch(r: InspectImage, name: string, edits: [number, Buffer][]): string {
  const img = join(r.dir, name);
  sh('cp', ['--sparse=always', r.img, img]);
  const fd = openSync(img, 'r+');
  try {
    for (const [off, b] of edits) writeSync(fd, b, 0, b.length, off);
  } finally {
    closeSync(fd);
  }
  return img;
}

test('show --json: labels and UUIDs as blkid -p reports them; slot versions from the minisign signatures; grub.cfg default; grubenv as grub-editenv lists it', async (t) => {
  const r = ready(t);
  if (!r) return;
  const s = await runCli(['show', r.img, '--json']);
  t.is(s.code, 0, s.stderr);
  t.is(s.stderr, '');
  const j = s.json;
  t.deepEqual(j.partitions.map((p: any) => [p.name, p.filesystem.type, p.filesystem.label]), [
    ['PSYOPSOSEFI', 'fat32', 'PSYOPSOSEFI'], ['psyops-secret', 'ext4', 'psyops-secret'], ['psyopsOS-A', 'ext4', 'psyopsOS-A'], ['psyopsOS-B', 'ext4', 'psyopsOS-B'],
  ]);
  assertBlkid(t, r.img, j.partitions);
  // Slot A: the trusted comment minisign wrote; slot B has no signature.
  const [a, b] = j.slots;
  t.like(a, { slot: 'a', label: 'psyopsOS-A', partition: 3, version: OS_META.version });
  t.deepEqual(a.signature.metadata, OS_META);
  t.is(a.signature.keyId, keyIdOf(r.pubkey));
  const dumped = join(r.dir, 'a.minisig');
  sh('debugfs', ['-R', `dump /psyopsOS.tar.minisig ${dumped}`, `${r.img}?offset=${r.layout.a.offset}`]);
  t.is(`trusted comment: ${a.signature.trustedComment}`, readFileSync(dumped, 'utf8').split('\n')[2]);
  // The slot holds no /squashfs (an upstream-recipe tree): show says so instead of failing.
  t.deepEqual(b, { slot: 'b', label: 'psyopsOS-B', partition: 4, signature: null, version: null, unverified: false, os: { rootfs: 'missing', prettyName: null, versionId: null, packages: null } });
  // ESP: its signature, grub.cfg, grubenv.
  const e = j.esp;
  t.is(e.partition, 1);
  t.deepEqual(e.signature.metadata, ESP_META);
  t.is(e.grubCfg.defaultLabel, 'psyopsOS-B');
  t.is(e.grubCfg.default, 'psyopsOS-B');
  t.like(e.grubCfg.info, { last_updated: '20251129-000000', default_boot_label: 'psyopsOS-B', extra_programs: '' });
  t.deepEqual(e.grubCfg.slots, [{ title: 'psyopsOS-A', label: 'psyopsOS-A' }, { title: 'psyopsOS-B', label: 'psyopsOS-B' }]);
  const env = join(r.dir, 'grubenv');
  writeFileSync(env, sh('mcopy', ['-n', '-i', `${r.img}@@${r.layout.esp.offset}`, '::/grub/grubenv', '-']));
  const listed = sh('grub-editenv', [env, 'list']).toString('utf8').trim().split('\n');
  t.deepEqual(e.grubenv, Object.fromEntries(listed.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
  t.deepEqual(e.grubenv, GRUBENV);
  t.deepEqual(e.nextBoot, { label: 'psyopsOS-B', reason: 'default' });
  t.deepEqual(e.errors, []);
});

test('show (human): filesystems, slot versions, "no signature", ESP metadata and grub.cfg default', async (t) => {
  const r = ready(t);
  if (!r) return;
  const s = await runCli(['show', r.img]);
  t.is(s.code, 0, s.stderr);
  const o = s.stdout;
  t.regex(o, /^ {2}1 PSYOPSOSEFI: fat32, label PSYOPSOSEFI, uuid 5053-4F53$/m);
  t.regex(o, /^ {2}3 psyopsOS-A: ext4, label psyopsOS-A, uuid 5053594f-5053-4f53-8001-000000000003$/m);
  t.regex(o, new RegExp(`^ {2}A psyopsOS-A \\(partition 3\\): version=${OS_META.version} kernel=${OS_META.kernel} alpine=${OS_META.alpine} architecture=x86_64 type=psyopsOS filename=${OS_META.filename.replace(/\./g, '\\.')}$`, 'm'));
  t.regex(o, /^ {2}B psyopsOS-B \(partition 4\): no signature$/m);
  t.regex(o, new RegExp(`^ {2}signature: version=${ESP_META.version} type=psyopsESP`, 'm'));
  t.regex(o, /^ {2}grub\.cfg: default psyopsOS-B/m);
  t.regex(o, /^ {2}grubenv: boot_count=2 custom_var=hello world$/m);
});

test("upstream's exact recipe (parted, GPT names \"primary\"): slots and ESP are found by filesystem label, as blkid finds them", async (t) => {
  const r = ready(t);
  if (!r) return;
  if (!needTools(t, 'parted')) return;
  const up = buildInspectImage({ defaultLabel: 'psyopsOS-A', partitioner: 'parted' });
  try {
    const s = await runCli(['show', up.img, '--json']);
    t.is(s.code, 0, s.stderr);
    t.deepEqual(s.json.partitions.map((p: any) => p.name), ['primary', 'primary', 'primary', 'primary']);
    assertBlkid(t, up.img, s.json.partitions);
    t.like(s.json.slots[0], { partition: 3, version: OS_META.version });
    t.like(s.json.slots[1], { partition: 4, signature: null });
    t.like(s.json.esp, { partition: 1, grubCfg: { defaultLabel: 'psyopsOS-A' } });
    const ls = await runCli(['ls', up.img, 'psyopsOS-B:/', '--json']);
    t.is(ls.code, 0, ls.stderr);
    t.true(ls.json.entries.some((e: any) => e.name === 'psyopsOS-B'));
  } finally {
    up.cleanup();
  }
});

test('show survives unreadable filesystems: each is reported with its error, the rest is still shown', async (t) => {
  const r = ready(t);
  if (!r) return;
  const L = r.layout;
  const img = patch(r, 'damaged.img', [
    [L.a.offset + 1024, Buffer.alloc(1024)], // slot A: superblock zeroed
    [L.b.offset + 1024 + 0x20, Buffer.from([0x55])], // slot B: superblock checksum no longer matches
    [L.esp.offset, Buffer.alloc(512)], // ESP: boot sector zeroed
  ]);
  t.not(sh('sh', ['-c', `e2fsck -fn '${img}?offset=${L.b.offset}' >/dev/null 2>&1; echo $?`]).toString().trim(), '0');
  const s = await runCli(['show', img, '--json']);
  t.is(s.code, 0, s.stderr);
  const [esp, secret, a, b] = s.json.partitions;
  t.deepEqual(esp.filesystem, { type: 'unknown' });
  t.deepEqual(a.filesystem, { type: 'unknown' });
  t.like(b.filesystem, { type: 'ext4', label: 'psyopsOS-B' });
  t.regex(b.filesystem.error, /ext4 superblock: s_checksum mismatch/);
  t.like(secret.filesystem, { type: 'ext4', label: 'psyops-secret' });
  // Found by GPT name when the label is gone; the error names the partition.
  t.like(s.json.slots[0], { partition: 3, signature: null });
  t.regex(s.json.slots[0].error, /psyopsOS-A \(partition 3\): no FAT32 or ext4 filesystem found/);
  t.regex(s.json.slots[1].error, /s_checksum mismatch/);
  t.regex(s.json.esp.error, /PSYOPSOSEFI \(partition 1\): no FAT32 or ext4 filesystem found/);
  const human = await runCli(['show', img]);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /^ {2}A psyopsOS-A \(partition 3\): ERROR psyopsOS-A \(partition 3\): no FAT32/m);
});

test('show reports a damaged signature file and grubenv without failing', async (t) => {
  const r = ready(t);
  if (!r) return;
  const img = join(r.dir, 'badsig.img');
  sh('cp', ['--sparse=always', r.img, img]);
  const junk = join(r.dir, 'junk');
  writeFileSync(junk, 'not a signature\n');
  const ext = `${img}?offset=${r.layout.a.offset}`;
  sh('debugfs', ['-w', '-R', 'rm /psyopsOS.tar.minisig', ext]);
  sh('debugfs', ['-w', '-R', `write ${junk} /psyopsOS.tar.minisig`, ext]);
  sh('mcopy', ['-o', '-i', `${img}@@${r.layout.esp.offset}`, junk, '::/grub/grubenv']);
  const s = await runCli(['show', img, '--json']);
  t.is(s.code, 0, s.stderr);
  t.regex(s.json.slots[0].error, /psyopsOS-A:\/psyopsOS\.tar\.minisig: has \d lines|line 1 must start/);
  t.is(s.json.esp.grubenv, null);
  t.is(s.json.esp.errors.length, 1);
  t.regex(s.json.esp.errors[0], /^\/grub\/grubenv: PSYOPSOSEFI:\/grub\/grubenv: .*not a GRUB environment block/);
  t.is(s.json.esp.grubCfg.defaultLabel, 'psyopsOS-B'); // the rest is still read
});

test('an image built by diskimg create: show agrees with blkid and reports the signed version', async (t) => {
  const r = ready(t);
  if (!r) return;
  const img = join(r.dir, 'created.img');
  const c = await runCli([
    'create', img, '--os-tar', r.osTar, '--pubkey', r.pubkey, '--esp-tar', r.espTarSigned,
    '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '48M', '--default-slot', 'b', '--seed', 'show-test',
  ]);
  t.is(c.code, 0, c.stderr);
  const s = await runCli(['show', img, '--json']);
  t.is(s.code, 0, s.stderr);
  assertBlkid(t, img, s.json.partitions);
  t.deepEqual(s.json.partitions.map((p: any) => p.filesystem.label), ['PSYOPSOSEFI', 'psyops-secret', 'psyopsOS-A', 'psyopsOS-B']);
  for (const sl of s.json.slots) t.deepEqual(sl.signature?.metadata, OS_META, sl.label);
  t.deepEqual(s.json.esp.signature?.metadata, ESP_META);
  t.is(s.json.esp.grubCfg?.defaultLabel, 'psyopsOS-B');
  t.deepEqual(s.json.esp.errors, []);
});

test('4096-byte sectors (fdisk + mkfs.fat -S 4096): show agrees with blkid; cat of grub.cfg matches mcopy', async (t) => {
  const r = ready(t);
  if (!r) return;
  if (!needTools(t, 'fdisk')) return;
  const big = buildInspectImage({ sectorSize: 4096 });
  try {
    const s = await runCli(['show', big.img, '--json']);
    t.is(s.code, 0, s.stderr);
    t.is(s.json.sectorSize, 4096);
    assertBlkid(t, big.img, s.json.partitions);
    t.is(s.json.slots[0].version, OS_META.version);
    t.is(s.json.esp.grubCfg.defaultLabel, 'psyopsOS-B');
    t.deepEqual(s.json.esp.grubenv, GRUBENV);
    const cfg = await runCli(['cat', big.img, 'PSYOPSOSEFI:/grub/grub.cfg']);
    t.is(cfg.code, 0, cfg.stderr);
    t.is(cfg.stdout, sh('mcopy', ['-n', '-i', `${big.img}@@${big.layout.esp.offset}`, '::/grub/grub.cfg', '-']).toString('utf8'));
  } finally {
    big.cleanup();
  }
});
