/**
 * Power cuts in our own writes. Each operation (arm, mark-good, mark-bad, rollback, set-default) runs once
 * cleanly to count its device writes, then again with the power cut after write k (k = 0..n-1),
 * once cleanly at the cut and once tearing the cut write after its first sector. After every cut
 * the disk is read back (grub.cfg + grubenv parsed from the ESP, as GRUB would find them) and
 * the model must boot the slot it booted before the operation or the one it boots after, and
 * that slot must be complete (/psyopsOS.tar.minisig). A few cut points are booted under QEMU.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultDevice, FileDevice, findFilesystemPartition, openDisk, openFilesystem, PowerCut, type Device, type Disk } from '@diskimg/diskimage/internal';
import { PSYOPS_NAMES, SLOT_PATHS } from '@diskimg/partitions/internal';
import { CowDevice } from '../../diskimage/src/fat32/test-util.js';
import { buildAbImage } from '../../../test/helpers/ab-image.js';
import { getBootFixtures, needBoot, skipReason } from '../../../test/helpers/fixtures.js';
import { bootImage, parseInitReport } from '../../../test/helpers/qemu.js';
import { armTrial, markBad, markGood, readBootState, rollback, setDefault, type BootState } from './boot-state.js';

const A = PSYOPS_NAMES.a;
const B = PSYOPS_NAMES.b;
const skip = skipReason({ qemu: false });
const qemuSkip = skipReason();
const work = mkdtempSync(join(tmpdir(), 'boot-crash-'));
let base: string | undefined;
test.before(async () => {
  if (!skip) base = await buildAbImage(work, 'base.img', getBootFixtures());
});
const toClose: Array<() => unknown> = [];
test.after.always(async () => {
  for (const c of toClose) await c();
  rmSync(work, { recursive: true, force: true });
});

let n = 0;
function copyBase(): string {
  const img = join(work, `s${n++}.img`);
  const r = spawnSync('cp', ['--sparse=always', base!, img]);
  if (r.status !== 0) throw new Error(`cp: ${r.stderr}`);
  return img;
}

/** Play GRUB for one boot (model + write-back), so a setup can reach "booted the trial once". */
async function grubBoots(disk: Disk): Promise<void> {
  const { Fat32Volume } = await import('@diskimg/diskimage/internal');
  const { parseGrubCfg, predictBoot } = await import('@diskimg/grubcfg/internal');
  const { ESP_PATHS } = await import('@diskimg/partitions/internal');
  const vol = await Fat32Volume.open((await findFilesystemPartition(disk, PSYOPS_NAMES.esp)).region());
  const d = predictBoot(parseGrubCfg((await vol.readFileBuffer(ESP_PATHS.grubCfg)).toString('utf8')), await vol.readFileBuffer(ESP_PATHS.grubenv));
  if (d.writeBack) await vol.replaceFile(ESP_PATHS.grubenv, d.writeBack);
}

async function complete(disk: Disk, label: string): Promise<boolean> {
  try {
    await (await openFilesystem(await findFilesystemPartition(disk, label))).stat(SLOT_PATHS.signature);
    return true;
  } catch {
    return false;
  }
}

interface Scenario {
  name: string;
  setup: (disk: Disk) => Promise<void>;
  op: (disk: Disk) => Promise<unknown>;
  /** The device writes the operation makes, when that is the point (a no-op writes none). */
  writes?: number;
  /** A slot that must stay unproven at every cut (on trial, failed or marked bad), so rollback never makes it the default. */
  unproven?: string;
}

const scenarios: Scenario[] = [
  { name: 'arm B on a disk without counting block or trial', setup: async () => {}, op: (d) => armTrial(d, B) },
  {
    name: 'mark-good B after its first trial boot',
    setup: async (d) => {
      await armTrial(d, B);
      await grubBoots(d);
    },
    op: (d) => markGood(d, B),
  },
  { name: 'rollback from confirmed B to A', setup: async (d) => void (await setDefault(d, B)), op: (d) => rollback(d, B) },
  { name: 'rollback during a trial of B', setup: async (d) => void (await armTrial(d, B)), op: (d) => rollback(d), unproven: B },
  {
    name: 'set-default B after B failed its trial',
    setup: async (d) => {
      await armTrial(d, B, { tries: 1 });
      await grubBoots(d);
      await grubBoots(d);
    },
    op: (d) => setDefault(d, B),
  },
  {
    name: 'mark-bad B after its first trial boot',
    setup: async (d) => {
      await armTrial(d, B);
      await grubBoots(d);
    },
    op: (d) => markBad(d, B),
    unproven: B,
  },
  {
    name: 'mark-good A acknowledging the fallback from B',
    setup: async (d) => {
      await armTrial(d, B, { tries: 1 });
      await grubBoots(d);
      await grubBoots(d);
    },
    op: (d) => markGood(d, A),
    unproven: B,
  },
  {
    name: 'rollback again after a rollback ended the trial of B (writes nothing)',
    setup: async (d) => {
      await armTrial(d, B);
      await rollback(d);
    },
    op: (d) => rollback(d, A),
    writes: 0,
    unproven: B,
  },
];

/** A cut point worth booting: the scenario, the write, torn or not, and the label the model predicts. */
interface Sample {
  scenario: string;
  img: string;
  cut: CowDevice;
  baseBytesAt: (o: number, len: number) => Buffer;
  k: number;
  torn: number;
  label: string;
}
const samples: Sample[] = [];
let cutPoints = 0;

for (const sc of scenarios) {
  test.serial(`power cut after every write of: ${sc.name} → the model boots the old or the new slot, and it is complete`, async (t) => {
    if (!needBoot(t, skip, 'boot-fixtures')) return;
    const img = copyBase();
    const setupDisk = await openDisk(img, { writable: true });
    await sc.setup(setupDisk);
    await setupDisk.close();
    const baseDev = await FileDevice.open(img);
    const fd0 = openSync(img, 'r');
    toClose.push(() => baseDev.close(), () => closeSync(fd0));
    const baseBytesAt = (o: number, len: number) => {
      const b = Buffer.alloc(len);
      readSync(fd0, b, 0, len, o);
      return b;
    };
    const stateOn = async (dev: Device): Promise<{ s: BootState; disk: Disk }> => {
      const disk = await openDisk(dev);
      return { s: await readBootState(disk), disk };
    };
    const before = (await stateOn(baseDev)).s;
    const clean = new FaultDevice(new CowDevice(baseDev));
    await sc.op(await openDisk(clean));
    const writes = clean.writes;
    const after = (await stateOn(clean)).s;
    const allowed = new Set([before.nextBoot.label, after.nextBoot.label]);
    if (sc.writes !== undefined) t.is(writes, sc.writes, 'device writes');
    const unproven = (x: BootState) => !sc.unproven || x.trial?.label === sc.unproven || x.failed === sc.unproven || x.bad === sc.unproven;
    t.true(unproven(after), `after: ${sc.unproven} must stay unproven`);
    t.log(`${writes} writes; before: ${before.nextBoot.label} (${before.nextBoot.reason}), after: ${after.nextBoot.label} (${after.nextBoot.reason})`);
    const seen: Record<string, number> = {};
    for (let k = 0; k < writes; k++) {
      for (const torn of [0, 1]) {
        const cow = new CowDevice(baseDev);
        const fault = new FaultDevice(cow, { failAtWrite: k, tornSectors: torn });
        await t.throwsAsync(async () => sc.op(await openDisk(fault)), { instanceOf: PowerCut });
        const { s, disk } = await stateOn(cow);
        const label = s.nextBoot.label;
        cutPoints++;
        t.true(label !== null && allowed.has(label), `k=${k} torn=${torn}: boots ${label}, allowed ${[...allowed]}`);
        t.true(label !== null && (await complete(disk, label)), `k=${k} torn=${torn}: ${label} incomplete`);
        t.true(unproven(s), `k=${k} torn=${torn}: ${sc.unproven} lost its record (trial, failed or bad): rollback could make it the default`);
        // Never a trial in grubenv that grub.cfg cannot run (status would say TRIAL while GRUB boots the default).
        t.false(!!s.trial && !s.countingBlock, `k=${k} torn=${torn}: grubenv holds a trial of ${s.trial?.label} but grub.cfg has no counting block`);
        const key = `${label} (${s.nextBoot.reason})`;
        seen[key] = (seen[key] ?? 0) + 1;
        // Boot samples, one per kind: grub.cfg written but grubenv not yet (arm: block, no trial;
        // mark-good: default moved, trial still there), and a write torn in a trial's end.
        const kind = sc.name.startsWith('arm') && s.countingBlock && !s.trial ? 'arm: block written, no trial yet'
          : sc.name.startsWith('mark-good') && s.defaultLabel === B && s.trial ? 'mark-good: default moved, trial not yet ended'
          : sc.name.startsWith('rollback during') && torn === 1 && !s.trial ? 'rollback of a trial: torn write, trial ended'
          : undefined;
        if (kind && label && !samples.some((x) => x.scenario === kind)) samples.push({ scenario: kind, img, cut: cow, baseBytesAt, k, torn, label });
      }
    }
    t.log(`after ${writes * 2} cuts: ${Object.entries(seen).map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  });
}

test.serial('sampled cut points boot under QEMU as the model says', async (t) => {
  t.log(`${cutPoints} cut points checked against the model`);
  if (!needBoot(t, skip ?? qemuSkip)) return;
  t.true(samples.length >= 2, `samples: ${samples.length}`);
  for (const s of samples) {
    const restore = s.cut.applyTo(s.img, s.baseBytesAt);
    try {
      const r = await bootImage(s.img, { until: /PSYOPS-TEST-INIT version: VERSION=\S+/ });
      const got = parseInitReport(r.log).psyopsos;
      t.is(got, s.label, `${s.scenario} cut at write ${s.k}${s.torn ? ' (torn)' : ''}\n${r.log.split('\n').slice(-20).join('\n')}`);
      t.log(`${s.scenario}: cut at write ${s.k}${s.torn ? ' torn after one sector' : ''} → GRUB booted ${got} (model: ${s.label}) in ${(r.durationMs / 1000).toFixed(1)} s`);
    } finally {
      restore();
    }
  }
  t.log(`${samples.length} cut points booted under QEMU`);
});
