/**
 * The xz decoder (packages/diskimage/src/compress/xz.ts, liblzma in wasm) against `xz -dc` (native
 * liblzma) on the same ~20 MB stream in the same run: the executables and libraries of this machine
 * (/usr/bin, then /usr/lib) concatenated to 20 MiB, `xz -6`, and the same with `--x86 --lzma2`.
 * Ours runs in-process (the module compiled once before timing, as in a long read); `xz -dc` under
 * GNU time (CPU = user+sys). `BENCH_RUNS` rounds (default 3), interleaved, best of each printed
 * in MiB/s of output. Nothing is asserted; the target (≥ 40 MiB/s) is printed as PASS/MISS.
 *
 *   node --import=tsx --conditions=source bench/xz.bench.ts
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { xzDecompress } from '../packages/diskimage/src/compress/xz.js';
import { XZ_WASM_BASE64 } from '../packages/diskimage/src/compress/xz-wasm.generated.js';

const SIZE = 20 << 20;
const runs = Number(process.env.BENCH_RUNS ?? 3);
const work = mkdtempSync(join(tmpdir(), 'bench-xz-'));
try {
  const raw = join(work, 'exes');
  const fd = openSync(raw, 'w');
  let n = 0;
  for (const dir of ['/usr/bin', '/usr/lib/x86_64-linux-gnu']) {
    for (const name of readdirSync(dir).sort()) {
      if (n >= SIZE) break;
      const p = join(dir, name);
      try {
        if (!statSync(p).isFile()) continue;
        const b = readFileSync(p).subarray(0, SIZE - n);
        writeSync(fd, b);
        n += b.length;
      } catch {
        // unreadable: skip
      }
    }
  }
  closeSync(fd);
  const streams = [
    { name: 'xz -6', args: ['-6'] },
    { name: 'xz --x86 --lzma2', args: ['--x86', '--lzma2'] },
  ];
  const wasmBytes = Buffer.from(XZ_WASM_BASE64, 'base64').length;
  console.log(`xz decode, ${(n / 1048576).toFixed(1)} MiB of executables; wasm ${wasmBytes} bytes; load ${loadavg()[0]!.toFixed(1)}; best of ${runs}`);
  xzDecompress(spawnSync('xz', ['-c', '-0'], { input: Buffer.alloc(1) }).stdout, 1); // compile the module
  for (const s of streams) {
    const file = join(work, `exes-${s.args.join('')}.xz`);
    const c = spawnSync('sh', ['-c', `xz -c -T1 ${s.args.join(' ')} "$1" > "$2"`, 'sh', raw, file]);
    if (c.status !== 0) throw new Error(`xz: ${c.stderr}`);
    const input = readFileSync(file);
    const best = { ours: { wall: Infinity, cpu: Infinity }, xz: { wall: Infinity, cpu: Infinity } };
    for (let r = 0; r < runs; r++) {
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      const out = xzDecompress(input, n);
      const cu = process.cpuUsage(c0);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      if (out.length !== n) throw new Error('bench: wrong output length');
      best.ours.wall = Math.min(best.ours.wall, wall);
      best.ours.cpu = Math.min(best.ours.cpu, (cu.user + cu.system) / 1e6);
      const x = spawnSync('/usr/bin/time', ['-f', '%e %U %S', 'sh', '-c', 'xz -dc "$1" > /dev/null', 'sh', file], { encoding: 'utf8' });
      const [e, u, sy] = x.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
      best.xz.wall = Math.min(best.xz.wall, e!);
      best.xz.cpu = Math.min(best.xz.cpu, u! + sy!);
    }
    const mib = n / 1048576;
    const rate = (sec: number) => (mib / sec).toFixed(1).padStart(6);
    console.log(`${s.name} (${(input.length / 1048576).toFixed(1)} MiB stream)`);
    console.log(`  ours (wasm)  ${rate(best.ours.wall)} MiB/s wall  ${rate(best.ours.cpu)} MiB/s CPU  ${mib / best.ours.wall >= 40 ? 'PASS' : 'MISS'} (≥ 40 MiB/s)`);
    console.log(`  xz -dc       ${rate(best.xz.wall)} MiB/s wall  ${rate(best.xz.cpu)} MiB/s CPU`);
    console.log(`  ratio ours/xz (wall) ${(best.xz.wall / best.ours.wall).toFixed(2)}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
