/**
 * The CLI under a time limit and a memory measure, for hostile inputs:
 * `/usr/bin/time -f %M` gives the peak RSS (KiB) of the node process, and a
 * timer kills the whole process group (SIGKILL) when the limit passes, so a
 * hang is a failed assertion, never a stuck test run.
 */
import { spawn } from 'node:child_process';
import { repoRoot } from './cli.js';

export interface BoundedResult {
  code: number;
  stdout: Buffer;
  /** stderr without /usr/bin/time's line. */
  stderr: string;
  /** Peak RSS in KiB (undefined when the process was killed before time could report it). */
  rssKiB?: number;
  timedOut: boolean;
  /** Wall time, ms. */
  ms: number;
}

export function runCliBounded(args: string[], opts: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<BoundedResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(
      '/usr/bin/time',
      ['-f', 'diskimg-test-rss-kib %M', process.execPath, '--import=tsx', '--conditions=source', 'packages/cli/src/run.ts', ...args],
      { cwd: repoRoot, env: { DISKIMG_LAST_UPDATE: '', ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const all = Buffer.concat(err).toString('utf8');
      const m = /^diskimg-test-rss-kib (\d+)\n?/m.exec(all);
      const stderr = all.replace(/^diskimg-test-rss-kib \d+\n?/m, '').replace(/^Command (exited with non-zero status \d+|terminated by signal \d+)\n/m, '');
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out), stderr, rssKiB: m ? Number(m[1]) : undefined, timedOut, ms: Date.now() - t0 });
    });
  });
}
