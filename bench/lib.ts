/**
 * Shared benchmark plumbing: run a command under GNU time, collect wall, CPU
 * (user+sys) and peak RSS, and print a table with ratios against a baseline.
 * Benchmarks run our CLI and the anchors as child processes in the same run,
 * so they are measured the same way.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Measurement {
  name: string;
  wallS: number;
  cpuS: number;
  maxRssMiB: number;
  /** Bytes allocated on disk by the output file (sparse-aware), when one is given. */
  allocatedBytes?: number;
}

const TIME = '/usr/bin/time';

/** Run `sh -c script` under /usr/bin/time and measure it (children included). */
export function measure(name: string, script: string, opts: { output?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Measurement {
  if (!existsSync(TIME)) throw new Error('bench: /usr/bin/time missing (apt-get install time)');
  const dir = mkdtempSync(join(tmpdir(), 'bench-'));
  const out = join(dir, 'time');
  const r = spawnSync(TIME, ['-f', '%e %U %S %M', '-o', out, 'sh', '-c', script], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`bench ${name}: exit ${r.status}: ${r.stderr.slice(-2000)}`);
  const [e, u, s, m] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(/\s+/).map(Number);
  rmSync(dir, { recursive: true, force: true });
  const res: Measurement = { name, wallS: e, cpuS: u + s, maxRssMiB: m / 1024 };
  if (opts.output && existsSync(opts.output)) res.allocatedBytes = statSync(opts.output).blocks * 512;
  return res;
}

/** Best of `n` runs by wall time (benchmarks are noisy on a shared 2-core machine). */
export function bestOf(n: number, run: () => Measurement): Measurement {
  let best: Measurement | undefined;
  for (let i = 0; i < n; i++) {
    const m = run();
    if (!best || m.wallS < best.wallS) best = m;
  }
  return best!;
}

/** Print a table; ratios are each row's wall time over `baseline`'s (lower is better for us). */
export function report(title: string, rows: Measurement[], baseline: string): void {
  const base = rows.find((r) => r.name === baseline);
  console.log(`\n## ${title}`);
  console.log('| run | wall s | cpu s | peak RSS MiB | allocated MiB | wall / ' + baseline + ' |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const ratio = base ? (r.wallS / base.wallS).toFixed(2) : '-';
    const alloc = r.allocatedBytes !== undefined ? (r.allocatedBytes / 2 ** 20).toFixed(1) : '-';
    console.log(`| ${r.name} | ${r.wallS.toFixed(2)} | ${r.cpuS.toFixed(2)} | ${r.maxRssMiB.toFixed(1)} | ${alloc} | ${ratio} |`);
  }
}
