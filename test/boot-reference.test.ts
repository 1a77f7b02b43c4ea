/**
 * Proves the boot harness end to end with real tools only: an image made with upstream
 * psyopsOS's recipe (sgdisk/fdisk, mkfs.fat + mcopy, mkfs.ext4 -d, dd) boots under QEMU + OVMF
 * through our standalone GRUB into slot A's kernel + initramfs, and into slot B's after grub.cfg's
 * default changes. When `diskimg create` can build full images, the same checks apply to it.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildUpstreamImage, getBootFixtures, needBoot, skipReason, upstreamLayout } from './helpers/fixtures.js';
import { bootImage, parseInitReport, type BootResult } from './helpers/qemu.js';

const skip = skipReason({ image: true });
const work = mkdtempSync(join(tmpdir(), 'boot-reference-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Copy one partition out of an image (sparse) so fsck.fat / e2fsck can read it. */
function extract(img: string, part: { offset: number; size: number }, out: string): string {
  run('dd', [`if=${img}`, `of=${out}`, 'bs=1M', `skip=${part.offset / 2 ** 20}`, `count=${part.size / 2 ** 20}`, 'conv=sparse', 'status=none']);
  return out;
}

/** The serial log's tail, for a failure message. */
const tail = (b: BootResult) => b.log.split('\n').slice(-25).join('\n');

test.serial('upstream-recipe image boots slot A, then slot B after the grub.cfg default changes', async (t) => {
  if (!needBoot(t, skip)) return;
  const f = getBootFixtures();
  t.log(`kernel ${f.kernelPackage}, GRUB ${f.grubVersion}`);
  const img = join(work, 'ref.img');
  // e2fsprogs 1.47's upstream defaults add metadata_csum_seed and orphan_file (Debian's config
  // leaves them out; upstream psyopsOS builds in Alpine, which keeps them): GRUB must read them.
  buildUpstreamImage(img, { osTarA: f.osTarA, osTarB: f.osTarB, espTar: f.espTar, grubCfg: f.grubCfgA,
    ext4Features: 'metadata_csum_seed,orphan_file' });
  run('sgdisk', ['-v', img]);
  const L = upstreamLayout();
  run('fsck.fat', ['-n', extract(img, L.esp, join(work, 'esp.fat'))]);
  for (const p of [L.secret, L.a, L.b]) run('e2fsck', ['-fn', extract(img, p, join(work, 'part.ext4'))]);
  rmSync(join(work, 'esp.fat')); rmSync(join(work, 'part.ext4'));

  const a = await bootImage(img, { snapshot: true });
  t.log(`boot A: ${(a.durationMs / 1000).toFixed(1)} s`);
  t.false(a.timedOut || a.panicked, tail(a));
  const ra = parseInitReport(a.log);
  t.is(ra.psyopsos, 'psyopsOS-A', tail(a));
  t.is(ra.version, f.versionA, tail(a));

  // Flip the default as neuralupgrade does: rewrite /grub/grub.cfg on the ESP.
  run('mcopy', ['-o', '-i', `${img}@@${L.esp.offset}`, f.grubCfgB, '::/grub/grub.cfg']);
  const b = await bootImage(img, { snapshot: true });
  t.log(`boot B: ${(b.durationMs / 1000).toFixed(1)} s`);
  t.false(b.timedOut || b.panicked, tail(b));
  const rb = parseInitReport(b.log);
  t.is(rb.psyopsos, 'psyopsOS-B', tail(b));
  t.is(rb.version, f.versionB, tail(b));
});

test.serial('4096-byte logical sectors: OVMF and GRUB boot an upstream-recipe image', async (t) => {
  if (!needBoot(t, skip)) return;
  const f = getBootFixtures();
  const img = join(work, 'ref4k.img');
  // FAT32 needs ≥ 65525 clusters of ≥ 4 KiB here, so the ESP is 260 MiB (sparse).
  buildUpstreamImage(img, { osTarA: f.osTarA, osTarB: f.osTarB, espTar: f.espTar, grubCfg: f.grubCfgB, sectorSize: 4096 });
  const esp = upstreamLayout({ sectorSize: 4096 }).esp;
  t.regex(run('fdisk', ['-b', '4096', '-l', img]), /Sector size \(logical\/physical\): 4096 bytes/);
  t.regex(run('mdir', ['-i', `${img}@@${esp.offset}`, '::/grub']), /grub\s+cfg/i);

  const r = await bootImage(img, { sectorSize: 4096, snapshot: true });
  t.log(`boot 4K B: ${(r.durationMs / 1000).toFixed(1)} s`);
  t.false(r.timedOut || r.panicked, tail(r));
  const rep = parseInitReport(r.log);
  t.is(rep.psyopsos, 'psyopsOS-B', tail(r));
  t.is(rep.version, f.versionB, tail(r));
});

test('parseInitReport reads the init lines even with a kernel message interleaved into one copy', (t) => {
  const log = [
    '[    0.000000] Command line: BOOT_IMAGE=/kernel ro psyopsos=psyopsOS-B console=ttyS0,115200',
    'PSYOPS-TEST-INIT cmdline: BOOT_IMAGE=/kernel ro psyopsos=psyopsOS-B console=ttyS0,115200[    2.608041] tsc: Refined TSC',
    'PSYOPS-TEST-INIT cmdline: BOOT_IMAGE=/kernel ro psyopsos=psyopsOS-B console=ttyS0,115200\r',
    'PSYOPS-TEST-INIT version: VERSION=B-20261129-000000\r',
  ].join('\n');
  t.deepEqual(parseInitReport(log), {
    cmdline: 'BOOT_IMAGE=/kernel ro psyopsos=psyopsOS-B console=ttyS0,115200',
    psyopsos: 'psyopsOS-B',
    version: 'VERSION=B-20261129-000000',
  });
  t.deepEqual(parseInitReport('GRUB error: no such device: psyopsOS-A.\n'), {});
});
