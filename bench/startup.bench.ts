/**
 * Start-up of the CLI (issues 13/14): `--version`, `--help`, `status IMG --booted-label …` and
 * `create OUT --layout-only` (the heavy commands' imports, next to no work) of
 * the one-file bundle (`node dist/diskimg.mjs`) and of the workspace CLI (`node
 * packages/cli/bin/diskimg.js`, over the tsc build in packages/cli/dist), against plain `node -e 0`
 * in the same run: node's own start-up, the floor no JavaScript CLI goes below. Each row is one
 * child process, timed from spawn to exit with process.hrtime; rows run interleaved, `BENCH_RUNS`
 * rounds (default 15). Printed per row: min and median wall ms, median ÷ the floor's median,
 * median − the floor's median (what our code costs on top of node), and the mean CPU ms (user +
 * sys of the children, from /proc/self/stat; CPU moves less than wall with the load). `BENCH_BEFORE=FILE`
 * adds rows for another bundle (e.g. one built before a change); `pnpm exec diskimg --version` runs
 * `BENCH_PNPM_RUNS` rounds (default 3). Nothing is asserted; the targets (on the median: ≤ 80 ms
 * --version, ≤ 150 ms status and --help) are printed as PASS/MISS, with what each leaves above
 * the floor measured in this run.
 *
 *   pnpm run build && pnpm run bundle && node --import=tsx bench/startup.bench.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist/diskimg.mjs');
const workspace = join(root, 'packages/cli/bin/diskimg.js');
if (!existsSync(bundle)) throw new Error('bench: dist/diskimg.mjs missing (pnpm run bundle)');
if (!existsSync(join(root, 'packages/cli/dist/main.js'))) throw new Error('bench: packages/cli/dist missing (pnpm run build)');
const runs = Number(process.env.BENCH_RUNS ?? 15);
const node = process.execPath;

const work = mkdtempSync(join(tmpdir(), 'bench-startup-'));
const img = join(work, 'status.img');
{
  // A small image with an OS in both slots and a boot configuration: what `status` reads on a node.
  const os = join(work, 'os');
  mkdirSync(os);
  for (const f of ['kernel', 'initramfs']) writeFileSync(join(os, f), `${f}\n`);
  spawnSync('tar', ['-C', os, '-cf', join(work, 'os.tar'), '.']);
  const c = spawnSync(node, [bundle, 'create', img, '--os-tar', join(work, 'os.tar'), '--no-verify', '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M', '--quiet'], { encoding: 'utf8' });
  if (c.status !== 0) throw new Error(`bench: create: ${c.stderr}`);
}
const status = ['status', img, '--booted-label', 'psyopsOS-A'];
// The heavy commands' start-up: create with no payload (a partition table) loads the writers.
const layoutOnly = ['create', join(work, 'layout.img'), '--layout-only', '--force', '--quiet'];

type Row = { name: string; cmd: string[]; target?: number; ms: number[]; cpuTicks: number };
const row = (name: string, cmd: string[], target?: number): Row => ({ name, cmd, target, ms: [], cpuTicks: 0 });
const floor = row('node -e 0 (floor)', [node, '-e', '0']);
const rows: Row[] = [
  floor,
  row('bundle --version', [node, bundle, '--version'], 80),
  row('bundle --help', [node, bundle, '--help'], 150),
  row('bundle status IMG --booted-label A', [node, bundle, ...status], 150),
  row('workspace --version', [node, workspace, '--version']),
  row('workspace --help', [node, workspace, '--help']),
  row('workspace status IMG --booted-label A', [node, workspace, ...status]),
  row('bundle create OUT --layout-only', [node, bundle, ...layoutOnly]),
  row('workspace create OUT --layout-only', [node, workspace, ...layoutOnly]),
];
if (process.env.BENCH_BEFORE) {
  rows.push(row('before: bundle --version', [node, process.env.BENCH_BEFORE, '--version']));
  rows.push(row('before: bundle --help', [node, process.env.BENCH_BEFORE, '--help']));
  rows.push(row('before: bundle status', [node, process.env.BENCH_BEFORE, ...status]));
  rows.push(row('before: bundle create --layout-only', [node, process.env.BENCH_BEFORE, ...layoutOnly]));
}
const pnpmRounds = Math.min(runs, Number(process.env.BENCH_PNPM_RUNS ?? 3));
const pnpm = row('pnpm exec diskimg --version', ['pnpm', 'exec', 'diskimg', '--version']);

/** user + sys clock ticks of our waited-for children (/proc/self/stat cutime, cstime). */
function childTicks(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[13]) + Number(rest[14]);
}

function time(r: Row): void {
  const c0 = childTicks();
  const t0 = process.hrtime.bigint();
  const p = spawnSync(r.cmd[0]!, r.cmd.slice(1), { cwd: root, stdio: ['ignore', 'ignore', 'ignore'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (p.error) throw p.error;
  r.cpuTicks += childTicks() - c0;
  r.ms.push(ms);
}

const load0 = loadavg();
for (let i = 0; i < runs; i++) {
  for (const r of rows) time(r);
  if (i < pnpmRounds) time(pnpm);
}
const load1 = loadavg();
rmSync(work, { recursive: true, force: true });

const TICK_MS = 10; // USER_HZ is 100 on Linux
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const f0 = (n: number, w = 6) => n.toFixed(0).padStart(w);
const floorMed = med(floor.ms);
console.log(`load average ${load0.map((l) => l.toFixed(2)).join(' ')} -> ${load1.map((l) => l.toFixed(2)).join(' ')}; ${runs} rounds; node ${process.version}; bundle ${readFileSync(bundle).length} bytes`);
console.log(`${'row'.padEnd(40)} min ms  median ms  ÷ floor  − floor ms  cpu ms  target`);
for (const r of [...rows, ...(pnpm.ms.length ? [pnpm] : [])]) {
  const m = med(r.ms);
  const verdict = r.target === undefined ? '' : `${r.target} ${m <= r.target ? 'PASS' : 'MISS'}`;
  const cpu = (r.cpuTicks * TICK_MS) / r.ms.length;
  console.log(`${r.name.padEnd(40)} ${f0(Math.min(...r.ms))}  ${f0(m, 9)}  ${(m / floorMed).toFixed(2).padStart(7)}  ${f0(m - floorMed, 10)}  ${f0(cpu)}  ${verdict}`);
}
for (const r of rows.filter((x) => x.target !== undefined))
  console.log(
    `${r.name}: target ${r.target} ms leaves ${(r.target! - floorMed).toFixed(0)} ms above node's own start-up in this run` +
      (r.target! <= floorMed ? ' (the floor alone misses it: unreachable at this load)' : ''),
  );
