/**
 * `diskimg update --os-tar -` killed with SIGKILL at random points of a large (~150 MiB,
 * incompressible) OS tarball fed through a rate-limited pipe, as `ssh node diskimg update - <
 * psyopsOS.tar` would be when the connection or the machine dies. After every kill: slot A, the
 * GPT (both copies) and the secret partition are byte-identical to before, grub.cfg is unchanged,
 * grubenv only marks B not proven (written once, before B's first byte), `show` says the next boot
 * is A, and B is `incomplete` and invisible to blkid. Then a full update over the same pipe
 * completes B.
 *
 * The kill points are drawn from a seeded generator (UPDATE_KILL_SEED, logged) and include one
 * early and one near the end; each is a count of bytes the writer got into the pipe, so diskimg
 * had read between that count less the pipe's buffer (64 KiB) and that count.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli, type CliResult } from './helpers/cli.js';
import { blkidPartition, checkSlot, digests, espFile, have, writeOsTar } from './helpers/update.js';
import { needTools } from './helpers/skip.js';
import { mulberry32 as rng } from './helpers/prng.js';

const MiB = 1 << 20;
const work = mkdtempSync(join(tmpdir(), 'update-kill-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const V1 = '20251129-000000';
const V2 = '20251201-000000';
const SEED = Number(process.env.UPDATE_KILL_SEED ?? 20251201);
/** The writer: TICK_BYTES every TICK_MS, in CHUNK pieces, each awaited until it is in the pipe. */
const TICK_BYTES = 4 * MiB;
const TICK_MS = 50;
const CHUNK = 256 * 1024;

const TOOLS = ['sfdisk', 'e2fsck', 'debugfs', 'blkid', 'tar', 'mcopy', 'dd'];
const skip = TOOLS.some((c) => !have(c));

async function ok(args: string[]): Promise<CliResult> {
  const r = await runCli(args, { env: ENV });
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r;
}

interface Feed {
  /** Bytes that reached the pipe. */
  sent: number;
  killed: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Run `diskimg update IMG … --os-tar -` with `tar` fed into its standard input at the writer's
 * rate; with `killAt`, SIGKILL the diskimg process as soon as that many bytes are in the pipe.
 */
function feed(img: string, tar: string, pub: string, killAt?: number): Promise<Feed> {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import=tsx', '--conditions=source', 'packages/cli/src/run.ts',
    'update', img, '--slot', 'inactive', '--os-tar', '-', '--os-sig', `${tar}.minisig`, '--pubkey', pub, '--json'], {
    cwd: repoRoot,
    env: { ...process.env, ...ENV },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => {}); // EPIPE after the kill
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  let gone = false;
  void exited.then(() => (gone = true));

  const writer = (async () => {
    const size = statSync(tar).size;
    const fd = openSync(tar, 'r');
    const buf = Buffer.alloc(CHUNK);
    let sent = 0;
    try {
      while (sent < size && !gone) {
        const tick = Date.now();
        for (let inTick = 0; inTick < TICK_BYTES && sent < size && !gone; ) {
          let n = Math.min(CHUNK, size - sent);
          if (killAt !== undefined) n = Math.min(n, killAt - sent);
          if (n > 0) {
            readSync(fd, buf, 0, n, sent);
            const piece = Buffer.from(buf.subarray(0, n));
            const err = await new Promise<Error | null | undefined>((r) => child.stdin.write(piece, r));
            if (err) return { sent, killed: false };
            sent += n;
            inTick += n;
          }
          if (killAt !== undefined && sent >= killAt) {
            child.kill('SIGKILL');
            return { sent, killed: true };
          }
        }
        await new Promise((r) => setTimeout(r, Math.max(0, TICK_MS - (Date.now() - tick))));
      }
      child.stdin.end();
      return { sent, killed: false };
    } finally {
      closeSync(fd);
    }
  })();
  return Promise.all([writer, exited]).then(([w, e]) => ({ ...w, ...e, stdout, stderr, ms: Date.now() - t0 }));
}

let key: { pub: string; sec: string };
let base: string;
let big: string;

test.before(async () => {
  if (skip) return;
  await ok(['keygen', '--out', join(work, 'k')]);
  key = { pub: join(work, 'k.pub'), sec: join(work, 'k.key') };
  const sign = (file: string, version: string) =>
    ok(['sign', file, '--seckey', key.sec, '--trusted', 'type=psyopsOS', `version=${version}`, 'architecture=x86_64', `filename=psyopsOS.x86_64.${version}.tar`]);
  const v1 = writeOsTar(join(work, 'v1.tar'), { kernel: 'kernel one\n' });
  await sign(v1, V1);
  // A secret partition with content, so "unchanged" means something there too.
  const secret = writeOsTar(join(work, 'secret.tar'), { 'boot/dtbs/x.dtb': 'k', kernel: randomBytes(64 * 1024) });
  base = join(work, 'kill.img');
  await ok(['create', base, '--os-tar', v1, '--secret-tar', secret, '--pubkey', key.pub,
    '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '192M', '--seed', 'update-kill', '--no-bootloader']);
  big = writeOsTar(join(work, 'big.tar'), {
    kernel: randomBytes(6 * MiB),
    initramfs: randomBytes(4 * MiB + 4321),
    modloop: randomBytes(140 * MiB + 777),
    'etc-version': V2,
  });
  await sign(big, V2);
});

/** Everything that must not change while B is written. */
function untouched(img: string) {
  const d = digests(img, ['p4']);
  return {
    parts: { 'gpt-primary': d['gpt-primary'], 'gpt-backup': d['gpt-backup'], 'p1 ESP': d.p1, 'p2 secret': d.p2, 'p3 A': d.p3 },
    grubCfg: espFile(img, '/grub/grub.cfg').toString('utf8'),
    grubenv: espFile(img, '/grub/grubenv').toString('hex'),
  };
}

test.serial('SIGKILL at seeded random points of a 150 MiB stdin update: A, GPT and secret byte-identical, the ESP only marks B not proven, next boot A, B incomplete; then a full update completes B', async (t) => {
  if (!needTools(t, ...TOOLS)) return;
  const img = base;
  const size = statSync(big).size;
  const r = rng(SEED);
  const between = (lo: number, hi: number) => Math.floor(lo + r() * (hi - lo));
  const points = [
    between(MiB, 3 * MiB), // early: past the pipe's and the stream's buffers, so the write has begun
    between(0.1 * size, 0.5 * size),
    between(0.5 * size, 0.9 * size),
    size - between(128 * 1024, 2 * MiB), // near the end; never the last byte, which could let it commit
  ];
  t.log(`seed ${SEED}; tarball ${size} bytes; kill points ${points.join(', ')}`);
  const before = untouched(img);
  let firstKill: string | undefined;
  // The one ESP edit before B's first byte: grubenv stages B (psyopsos_staged: rollback refuses it).
  const marked = `# GRUB Environment Block\n# WARNING: Do not edit this file by tools other than grub-editenv!!!\npsyopsos_staged=psyopsOS-B\n`;

  for (const killAt of points) {
    const f = await feed(img, big, key.pub, killAt);
    const c0 = Date.now();
    t.true(f.killed, `the writer reached ${killAt}`);
    t.is(f.signal, 'SIGKILL', `diskimg ended by itself first: exit ${f.code}: ${f.stderr}`);
    const now = untouched(img);
    t.deepEqual({ ...now.parts, 'p1 ESP': '' }, { ...before.parts, 'p1 ESP': '' }, `kill at ${killAt}`);
    t.is(now.grubCfg, before.grubCfg, 'grub.cfg unchanged');
    const env = Buffer.from(now.grubenv, 'hex').toString('latin1');
    t.is(env.replace(/#+$/, ''), marked, 'grubenv: B marked, nothing else');
    t.is(env.length, 1024);
    if (killAt !== points[0]) t.is(now.parts['p1 ESP'], firstKill ?? '', 'already marked: the ESP is not written again');
    else firstKill = now.parts['p1 ESP'];
    const show = await ok(['show', img, '--json']);
    t.is(show.json.esp.nextBoot.label, 'psyopsOS-A', `kill at ${killAt}`);
    const b = show.json.partitions[3].filesystem;
    if (b.type === 'incomplete') {
      const seen = blkidPartition(img, 'psyopsOS-B', work);
      t.notRegex(seen.out, /psyopsOS-B|ext4/, `blkid -p after the kill at ${killAt}: ${seen.out}`);
    } else {
      // Only possible between the final superblock and the ESP edit: complete but not armed.
      t.log(`kill at ${killAt}: B complete but not armed`);
      t.is(b.type, 'ext4');
      t.is(b.label, 'psyopsOS-B');
    }
    t.log(`killed at ${f.sent} bytes (${((100 * f.sent) / size).toFixed(1)} %) after ${f.ms} ms; checks ${Date.now() - c0} ms`);
  }

  const done = await feed(img, big, key.pub);
  t.log(`full update of ${size} bytes through the pipe: ${done.ms} ms`);
  t.is(done.code, 0, done.stderr);
  const j = JSON.parse(done.stdout);
  t.is(j.inputBytes, size);
  t.true(j.verified);
  checkSlot(t, img, 'psyopsOS-B', big, work);
  const after = untouched(img);
  t.deepEqual({ ...after.parts, 'p1 ESP': '' }, { ...before.parts, 'p1 ESP': '' }, 'only B and the ESP changed');
  t.is((await ok(['show', img, '--json'])).json.esp.nextBoot.label, 'psyopsOS-B');
});

