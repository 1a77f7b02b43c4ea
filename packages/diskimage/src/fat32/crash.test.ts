import test from 'ava';
import { closeSync, copyFileSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeEntropy } from '@diskimg/partitions/internal';
import { FileDevice } from '../device/file.js';
import { FaultDevice, PowerCut } from '../device/fault.js';
import { readDirTree } from '../source/dir.js';
import { createFat32 } from './populate.js';
import { Fat32Volume } from './volume.js';
import { CowDevice, fsckProblems, makeTree, tmp } from './test-util.js';
import { needTools } from '../../../../test/helpers/skip.js';

const MiB = 2 ** 20;
/** What fsck.fat -n may say after a crash: only lost/unused clusters, the free count, and FAT copies that differ. */
const ACCEPTED = [
  /unused clusters|lost cluster|Reclaimed|Free cluster summary|really|Auto-correcting|Leaving filesystem unchanged|FATs differ but appear to be intact|Using first FAT|Checking for unused clusters/i,
];

/**
 * A populated volume to crash against: the base image (opened read-only as the
 * copy-on-write base), a reader of its original bytes, a work copy for fsck,
 * and `done()` to clean up.
 */
async function crashBase(ss: number, volumeMiB: number) {
  const src = makeTree(20_000);
  const d = tmp();
  const img = join(d, 'base.img');
  const dev0 = await FileDevice.create(img, volumeMiB * MiB, ss);
  await createFat32(dev0, readDirTree(src), { label: 'PSYOPSOSEFI', entropy: makeEntropy('c'), sourceDateEpoch: 1700000000, now: 1700000000 });
  await dev0.close();
  const baseDev = await FileDevice.open(img, { sectorSize: ss });
  const baseFd = openSync(img, 'r');
  const baseBytesAt = (o: number, n: number) => {
    const b = Buffer.alloc(n);
    readSync(baseFd, b, 0, n, o);
    return b;
  };
  const crashed = join(d, 'crash.img');
  copyFileSync(img, crashed);
  const done = async () => {
    closeSync(baseFd);
    await baseDev.close();
    rmSync(d, { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
  };
  return { src, baseDev, baseBytesAt, crashed, done };
}

for (const ss of [512, 4096]) {
  test(`replace /grub/grub.cfg: a power cut after any write (and a torn last write) leaves old or new, fsck-clean but lost clusters (${ss})`, async (t) => {
    const { src, baseDev, baseBytesAt, crashed, done } = await crashBase(ss, ss === 512 ? 34 : 258);
    const oldCfg = readFileSync(join(src, 'grub/grub.cfg'));
    const newCfg = Buffer.from('# new grub.cfg\n'.repeat(400)); // several clusters, so data writes can tear

    const replace = async (fd: FaultDevice) => (await Fat32Volume.open(fd)).replaceFile('/grub/grub.cfg', newCfg, { mtime: 1700000001 });
    if (!needTools(t, 'fsck.fat')) return;
    const cleanCow = new CowDevice(baseDev);
    const clean = new FaultDevice(cleanCow);
    await replace(clean);
    // The uncut run: fsck.fat -n says nothing at all (FSInfo's free count, both FATs, no lost clusters).
    const restoreClean = cleanCow.applyTo(crashed, baseBytesAt);
    t.deepEqual(fsckProblems(crashed), [], 'uncut replace: fsck.fat -n must be silent');
    restoreClean();
    const n = clean.writes;
    t.log(`clean replace: ${n} writes: ${clean.log.map((w) => `${w.offset}+${w.length}`).join(' ')}`);
    t.true(n >= 5);
    const seen = new Set<string>();
    const outcomes = { old: 0, new: 0 };
    for (let k = 0; k < n; k++) {
      for (const torn of [0, 1]) {
        const cow = new CowDevice(baseDev);
        const fd = new FaultDevice(cow, { failAtWrite: k, tornSectors: torn });
        await t.throwsAsync(replace(fd), { instanceOf: PowerCut });
        const restore = cow.applyTo(crashed, baseBytesAt);
        const all = fsckProblems(crashed);
        restore();
        for (const l of all) seen.add(l.replace(/\d+/g, 'N'));
        t.deepEqual(all.filter((l) => !ACCEPTED.some((re) => re.test(l))), [], `k=${k} torn=${torn}`);
        const vol = await Fat32Volume.open(cow);
        const got = await vol.readFileBuffer('/grub/grub.cfg');
        const which = got.equals(oldCfg) ? 'old' : got.equals(newCfg) ? 'new' : 'neither';
        t.not(which, 'neither', `k=${k} torn=${torn}`);
        if (which !== 'neither') outcomes[which]++;
      }
    }
    // the work copy went back to the base after every run
    t.deepEqual(fsckProblems(crashed), []);
    t.log(`outcomes ${JSON.stringify(outcomes)}; fsck messages seen: ${[...seen].join(' | ') || 'none'}`);
    t.true(outcomes.old > 0 && outcomes.new > 0);
    await done();
  });
}

test('creating a long-named file in a full directory cluster: a power cut after any write leaves it absent or whole', async (t) => {
  const { baseDev, baseBytesAt, crashed, done } = await crashBase(512, 34);
  const name = '/grub/a rather long file name that spans several long-name entries and sectors.cfg';
  const body = Buffer.alloc(3000, 0x41);
  const create = async (fd: FaultDevice) => {
    const vol = await Fat32Volume.open(fd);
    // fill the directory's first cluster so the new entry straddles into a new one
    for (let i = 0; i < 3; i++) await vol.writeFile(`/grub/filler ${i}`, Buffer.from('f'), { mtime: 1700000000 });
    await vol.writeFile(name, body, { mtime: 1700000000 });
  };
  if (!needTools(t, 'fsck.fat')) return;
  const cleanCow = new CowDevice(baseDev);
  const clean = new FaultDevice(cleanCow);
  await create(clean);
  const restoreClean = cleanCow.applyTo(crashed, baseBytesAt);
  t.deepEqual(fsckProblems(crashed), [], 'uncut run: fsck.fat -n must be silent');
  restoreClean();
  const n = clean.writes;
  let present = 0;
  for (let k = 0; k < n; k++) {
    const cow = new CowDevice(baseDev);
    await t.throwsAsync(create(new FaultDevice(cow, { failAtWrite: k })), { instanceOf: PowerCut });
    const restore = cow.applyTo(crashed, baseBytesAt);
    const all = fsckProblems(crashed);
    restore();
    t.deepEqual(all.filter((l) => !ACCEPTED.some((re) => re.test(l))), [], `k=${k}`);
    const vol = await Fat32Volume.open(cow);
    const e = await vol.lookup(name);
    if (e) {
      t.deepEqual(await vol.readFileBuffer(name), body, `k=${k}`);
      present++;
    }
  }
  t.log(`${n} writes; file present after ${present} of the cuts`);
  await done();
});
