/**
 * Crash safety of `update`, by fault injection rather than argument: a FaultDevice cuts power after
 * every write k of a whole update (grubenv marks B not proven, slot B written, verified, superblock
 * committed, then GRUB armed),
 * once cleanly and once tearing the crashing write after its first sector. After each cut, on what
 * the disk holds: slot A, the secret partition and both GPTs are byte-identical; grub.cfg and the
 * grubenv parse and the decision model boots A unless B is complete; B is never findable as a
 * psyopsOS-B filesystem before its superblock landed (probe says `incomplete`); and a retried
 * update on the cut disk succeeds.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { FaultDevice, MemoryDevice, openDisk, PowerCut, probeFilesystem, type Disk } from '../packages/diskimage/src/index.js';
import { inspectOpenDisk, readBootState, updateSlot, type UpdateOptions } from '../packages/ab/src/index.js';
import { runCli } from './helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'update-crash-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };

async function ok(args: string[]): Promise<void> {
  const r = await runCli(args, { env: ENV });
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: ${r.stderr}`);
}

let image: Buffer;
let opts: Omit<UpdateOptions, 'disk'>;

test.before(async () => {
  const dir = join(work, 'os');
  spawnSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'kernel'), 'kernel two\n');
  writeFileSync(join(dir, 'initramfs'), 'initramfs two\n');
  writeFileSync(join(dir, 'modloop'), Buffer.alloc(200_000, 7));
  const tar = join(work, 'os.tar');
  spawnSync('tar', ['--mtime=@1764374400', '-C', dir, '-cf', tar, '.']);
  const old = join(work, 'old.tar');
  writeFileSync(join(dir, 'kernel'), 'kernel one\n');
  spawnSync('tar', ['--mtime=@1764374400', '-C', dir, '-cf', old, '.']);
  await ok(['keygen', '--out', join(work, 'k')]);
  const sign = (f: string, v: string) =>
    ok(['sign', f, '--seckey', join(work, 'k.key'), '--trusted', 'type=psyopsOS', `filename=psyopsOS.x86_64.${v}.tar`, `version=${v}`, 'architecture=x86_64']);
  await sign(old, '20251129-000000');
  await sign(tar, '20251201-000000');
  const img = join(work, 'base.img');
  await ok(['create', img, '--os-tar', old, '--pubkey', join(work, 'k.pub'), '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'crash', '--no-bootloader']);
  image = readFileSync(img);
  opts = { slot: 'inactive', osTar: tar, pubkey: join(work, 'k.pub') };
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Snapshot {
  gpt: string;
  secret: string;
  a: string;
}

async function regions(disk: Disk): Promise<{ esp: [number, number]; secret: [number, number]; a: [number, number]; b: [number, number] }> {
  const r = (i: number): [number, number] => {
    const p = disk.partitions[i]!.region();
    return [p.start, p.size];
  };
  return { esp: r(0), secret: r(1), a: r(2), b: r(3) };
}

function snapshot(data: Buffer, rg: Awaited<ReturnType<typeof regions>>): Snapshot {
  const cut = ([s, n]: [number, number]) => data.subarray(s, s + n);
  return { gpt: sha(Buffer.concat([data.subarray(0, 1 << 20), data.subarray(data.length - 33 * 512)])), secret: sha(cut(rg.secret)), a: sha(cut(rg.a)) };
}

test.serial('power cut after every write of an update (clean and torn): A intact, boots A unless B is complete, B never findable half-written, retry succeeds', async (t) => {
  // A clean run first: how many writes, and which one lands B's superblock.
  const mem0 = new MemoryDevice(image.length, 512, Buffer.from(image));
  const rg = await regions(await openDisk(mem0));
  const before = snapshot(image, rg);
  const counter = new FaultDevice(mem0);
  const clean = await updateSlot({ ...opts, disk: counter });
  t.is(clean.target.label, 'psyopsOS-B');
  const total = counter.writes;
  const sbOffset = rg.b[0] + 1024;
  // The superblock's first sector (s_magic, label) is the commit point; it is written last, on its own.
  const commitWrite = counter.log.findLastIndex((w) => w.offset === sbOffset && w.length === 512);
  t.true(commitWrite > 0, 'the superblock\'s first sector is written in a write of its own');
  t.is(counter.log[commitWrite - 1]!.offset, sbOffset + 512, 'after its second half');
  t.true(counter.log.every((w) => (w.offset >= rg.b[0] && w.offset + w.length <= rg.b[0] + rg.b[1]) || (w.offset >= rg.esp[0] && w.offset + w.length <= rg.esp[0] + rg.esp[1])), 'writes touch only slot B and, at the end, the ESP');
  // The ESP: the mark (grubenv: B not proven) before B's first byte, then nothing until B is complete.
  const firstB = counter.log.findIndex((w) => w.offset >= rg.b[0]);
  t.true(firstB > 0, 'the mark is written before B');
  const firstEsp = counter.log.findIndex((w, i) => i > firstB && w.offset < rg.b[0]);
  t.true(firstEsp > commitWrite, 'the ESP is armed only after B is complete');
  t.log(`a clean update makes ${total} writes; the mark writes 0..${firstB - 1}, B's superblock is write ${commitWrite}, the first arming ESP write ${firstEsp}`);

  let cuts = 0;
  let bootsB = 0;
  for (const torn of [0, 1]) {
    for (let k = 0; k < total; k++) {
      const mem = new MemoryDevice(image.length, 512, Buffer.from(image));
      const fault = new FaultDevice(mem, { failAtWrite: k, tornSectors: torn });
      const err = await updateSlot({ ...opts, disk: fault }).then(
        () => undefined,
        (e) => e,
      );
      t.true(err instanceof PowerCut, `cut at ${k}: ${err}`);
      cuts++;
      // What the disk holds now, read as a fresh boot would.
      t.deepEqual(snapshot(mem.data, rg), before, `cut at ${k}${torn ? ' (torn)' : ''}: A, secret or GPT changed`);
      const disk = await openDisk(mem);
      const ins = await inspectOpenDisk(disk);
      const bProbe = await probeFilesystem(disk.partitions[3]!.region());
      const bLanded = k > commitWrite || (k === commitWrite && torn > 0); // a one-sector write torn after one sector has landed
      if (!bLanded) {
        const untouchedB = k < firstB || (k === firstB && !torn);
        t.is(bProbe.type, untouchedB ? 'ext4' : 'incomplete', `cut at ${k}: B should be ${untouchedB ? 'untouched' : 'incomplete'}`);
        if (!untouchedB) t.not(ins.slots[1]!.version, '20251201-000000');
      }
      t.truthy(ins.esp.grubCfg, `cut at ${k}: grub.cfg must parse (${ins.esp.errors.join('; ')})`);
      // Cut after the mark, before the arm: B is staged, so rollback cannot make it the default.
      if (k >= firstB && k < firstEsp) t.is((await readBootState(disk)).staged, 'psyopsOS-B', `cut at ${k}: B not staged`);
      const next = ins.esp.nextBoot?.label;
      if (next === 'psyopsOS-B') {
        bootsB++;
        t.is(bProbe.type, 'ext4', `cut at ${k}: GRUB would boot an incomplete B`);
        t.is(ins.slots[1]!.version, '20251201-000000');
      } else t.is(next, 'psyopsOS-A', `cut at ${k}`);
      // The node comes back and tries again: it completes.
      if (k % 7 === 0) {
        const retry = await updateSlot({ ...opts, disk: mem });
        t.is(retry.target.label, 'psyopsOS-B');
        const after = await inspectOpenDisk(await openDisk(mem));
        t.is(after.esp.nextBoot?.label, 'psyopsOS-B');
        t.is(after.slots[1]!.version, '20251201-000000');
      }
    }
  }
  t.log(`${cuts} power cuts checked (${total} clean + ${total} torn); ${bootsB} of them already boot the new B`);
});
