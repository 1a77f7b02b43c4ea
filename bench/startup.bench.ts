/**
 * Start-up of the CLI (issue 13): `node dist/diskimg.mjs --version` and `… status IMG` against
 * `pnpm exec diskimg --version` (the workspace launcher over dist/) and plain `node -e 0` (the
 * floor: node's own start-up). Each row is one child process, timed from spawn to exit with
 * process.hrtime; rows run interleaved, `BENCH_RUNS` rounds (default 15), min and median printed.
 * `BENCH_BEFORE=FILE` adds rows for another bundle (e.g. one built before a change). Nothing is
 * asserted; the targets (≤ 80 ms --version, ≤ 150 ms status) are printed as PASS/MISS on the median.
 *
 *   pnpm run bundle && node --import=tsx bench/startup.bench.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist/diskimg.mjs');
if (!existsSync(bundle)) throw new Error('bench: dist/diskimg.mjs missing (pnpm run bundle)');
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

type Row = { name: string; cmd: string[]; target?: number; ms: number[] };
const rows: Row[] = [
  { name: 'node -e 0 (floor)', cmd: [node, '-e', '0'], ms: [] },
  { name: 'node dist/diskimg.mjs --version', cmd: [node, bundle, '--version'], target: 80, ms: [] },
  { name: 'node dist/diskimg.mjs status IMG', cmd: [node, bundle, 'status', img], target: 150, ms: [] },
];
if (process.env.BENCH_BEFORE) {
  rows.push({ name: 'before: --version', cmd: [node, process.env.BENCH_BEFORE, '--version'], ms: [] });
  rows.push({ name: 'before: status IMG', cmd: [node, process.env.BENCH_BEFORE, 'status', img], ms: [] });
}
const pnpmRounds = Math.min(runs, Number(process.env.BENCH_PNPM_RUNS ?? 3));
const pnpm: Row = { name: 'pnpm exec diskimg --version', cmd: ['pnpm', 'exec', 'diskimg', '--version'], ms: [] };

function time(r: Row): void {
  const t0 = process.hrtime.bigint();
  const p = spawnSync(r.cmd[0]!, r.cmd.slice(1), { cwd: root, stdio: ['ignore', 'ignore', 'ignore'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (p.error) throw p.error;
  r.ms.push(ms);
}

const load0 = loadavg();
for (let i = 0; i < runs; i++) {
  for (const r of rows) time(r);
  if (i < pnpmRounds && existsSync(join(root, 'packages/cli/dist/main.js'))) time(pnpm);
}
const load1 = loadavg();
rmSync(work, { recursive: true, force: true });

const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const fmt = (n: number) => n.toFixed(0).padStart(6);
console.log(`load average ${load0.map((l) => l.toFixed(2)).join(' ')} -> ${load1.map((l) => l.toFixed(2)).join(' ')}; ${runs} rounds; node ${process.version}`);
console.log(`${'row'.padEnd(36)}   min ms  median ms  target`);
for (const r of [...rows, ...(pnpm.ms.length ? [pnpm] : [])]) {
  const m = med(r.ms);
  const verdict = r.target === undefined ? '' : `${r.target} ${m <= r.target ? 'PASS' : 'MISS'}`;
  console.log(`${r.name.padEnd(36)} ${fmt(Math.min(...r.ms))}  ${fmt(m).padStart(9)}  ${verdict}`);
}
