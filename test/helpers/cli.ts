import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file's location (test/helpers/cli.ts). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is exactly one JSON document. */
  json?: any;
}

/**
 * Run the diskimg CLI from source (`node --import=tsx --conditions=source
 * packages/cli/src/run.ts …args`) in the repository root, with DISKIMG_LAST_UPDATE empty
 * (no record) unless `env` sets it. Relative paths in
 * `args` are therefore relative to the root: pass absolute paths.
 */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', '--conditions=source', 'packages/cli/src/run.ts', ...args], {
      cwd: repoRoot,
      // No last-update record unless a test asks for one: an update of a loop device would
      // otherwise write this machine's /var/lib/diskimg/last-update.json.
      env: { DISKIMG_LAST_UPDATE: '', ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.stdin.on('error', () => {}); // the CLI may exit before reading its input
    child.stdin.end(opts.input ?? '');
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      let json: any;
      if (stdout.trim() !== '') {
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
      }
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr, json });
    });
  });
}
