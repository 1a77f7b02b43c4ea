/**
 * Our ext4 reader against the e2fsprogs test-suite images
 * (shared/corpus/e2fsprogs beside the repository, see its INDEX.tsv):
 * - clean images (e2fsck -fn passes): every directory listed and every file
 *   read byte-identical to `debugfs -R 'rdump / OUT'`, or the whole
 *   filesystem refused up front with "unsupported feature X";
 * - corrupt images: a typed error (FormatError/InputError) or a best-effort
 *   read, never a crash, a hang or an out-of-memory.
 * Each image is read in a child process with a time and memory budget, so a
 * hang or OOM fails the test instead of stalling it.
 */
import test from 'ava';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import type { CorpusJob, CorpusResult } from './helpers/ext4-corpus-worker.js';
import { ranTool, skipOrFail } from './helpers/skip.js';

// shared/ lies beside the repository (in CI too: a copy beside the clone); EXT4_CORPUS overrides.
const CORPUS = process.env.EXT4_CORPUS ?? fileURLToPath(new URL('../../shared/corpus/e2fsprogs', import.meta.url));
const WORKER = fileURLToPath(new URL('./helpers/ext4-corpus-worker.ts', import.meta.url));
// Generous: the machine running CI may be busy; a real hang never answers.
const IMAGE_TIMEOUT_MS = 120_000;
const BYTE_BUDGET = 512 * 2 ** 20;
/** A damaged image is read best-effort: the first 20,000 entries are enough to prove no crash or hang. */
const CORRUPT_ENTRY_BUDGET = 20_000;
const POOL = 2;

interface Row {
  name: string;
  clean: boolean;
  features: string;
}

function readIndex(): Row[] {
  const lines = readFileSync(join(CORPUS, 'INDEX.tsv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => {
    const [name, fn, , , features] = l.split('\t');
    return { name: name!, clean: fn === 'clean', features: features ?? '' };
  });
}

/** One child process reused across images; replaced after a hang or a crash. */
class Worker {
  private child: ChildProcess | undefined;
  private spawn(): ChildProcess {
    const c = fork(WORKER, [], {
      execArgv: ['--import=tsx', '--conditions=source', '--max-old-space-size=768'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    c.stderr?.resume();
    return c;
  }
  run(job: CorpusJob): Promise<CorpusResult | { outcome: 'hang' | 'died'; message: string }> {
    const c = (this.child ??= this.spawn());
    return new Promise((resolve) => {
      const done = (r: CorpusResult | { outcome: 'hang' | 'died'; message: string }) => {
        clearTimeout(timer);
        c.off('message', onMsg);
        c.off('exit', onExit);
        resolve(r);
      };
      const onMsg = (m: CorpusResult) => done(m);
      const onExit = (code: number | null, sig: string | null) => {
        this.child = undefined;
        done({ outcome: 'died', message: `worker exited (code ${code}, signal ${sig}); out of memory?` });
      };
      const timer = setTimeout(() => {
        c.off('exit', onExit);
        c.kill('SIGKILL');
        this.child = undefined;
        done({ outcome: 'hang', message: `no answer within ${IMAGE_TIMEOUT_MS / 1000} s` });
      }, IMAGE_TIMEOUT_MS);
      c.on('message', onMsg);
      c.on('exit', onExit);
      c.send(job);
    });
  }
  stop(): void {
    this.child?.kill();
  }
}

test('e2fsprogs corpus: clean images read like debugfs or refused; corrupt images never crash or hang', async (t) => {
  if (!existsSync(join(CORPUS, 'INDEX.tsv'))) {
    return skipOrFail(t, `corpus not found at ${CORPUS} (EXT4_CORPUS overrides)`, { tool: 'ext4-corpus' });
  }
  if (spawnSync('debugfs', ['-V']).error) {
    return skipOrFail(t, 'debugfs not installed', { tool: 'debugfs' });
  }
  ranTool(t, 'ext4-corpus', 'debugfs');
  const rows = readIndex().filter((r) => existsSync(join(CORPUS, r.name, 'image.gz')));
  const scratch = mkdtempSync(join(tmpdir(), 'ext4-corpus-'));
  const tally = new Map<string, number>();
  const count = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
  const failures: string[] = [];
  const workers = Array.from({ length: POOL }, () => new Worker());
  let next = 0;
  try {
    await Promise.all(
      workers.map(async (w) => {
        while (next < rows.length) {
          const row = rows[next++]!;
          const dir = join(scratch, row.name);
          mkdirSync(dir);
          const img = join(dir, 'image');
          await pipeline(createReadStream(join(CORPUS, row.name, 'image.gz')), createGunzip(), createWriteStream(img));
          let ref: string | undefined;
          let debugfsOpens = true;
          // INDEX.tsv's "clean" is e2fsck -fn's exit status; under -n that is 0 even when it
          // reports (and declines to fix) damage such as a bad descriptor checksum. Truly clean
          // means e2fsck -fn prints nothing but its pass lines and summary.
          let reallyClean = false;
          if (row.clean) {
            const f = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
            const problems = `${f.stdout}`.split('\n').filter((l) => l.trim() && !/^Pass \d|: \d+\/\d+ files|^e2fsck \d/.test(l));
            reallyClean = f.status === 0 && problems.length === 0;
          }
          if (row.clean) {
            ref = join(dir, 'ref');
            mkdirSync(ref);
            const d = spawnSync('debugfs', ['-R', `rdump / ${ref}`, img], { encoding: 'utf8' });
            debugfsOpens = d.status === 0 && !/while trying to open|while opening filesystem|Filesystem not open/.test(d.stderr);
            if (!debugfsOpens) ref = undefined;
          }
          const r = await w.run({ img, ref, byteBudget: BYTE_BUDGET, entryBudget: row.clean ? undefined : CORRUPT_ENTRY_BUDGET });
          rmSync(dir, { recursive: true, force: true });
          const msg = 'message' in r && r.message ? r.message.split('\n')[0] : '';
          if (row.clean) {
            if (r.outcome === 'read' && (r as CorpusResult).mismatches!.length === 0 && !(r as CorpusResult).truncated) count('clean: read identical to debugfs');
            else if (r.outcome === 'refused') count(`clean: refused (${msg.replace(/.*unsupported feature ([^:]*).*/, '$1')})`);
            else if (r.outcome === 'typed-error' && !debugfsOpens) count('clean*: debugfs cannot open it either → typed error');
            else if (r.outcome === 'typed-error' && !reallyClean) count('clean*: e2fsck -fn reports damage → typed error');
            else {
              count('clean: FAILED');
              failures.push(`${row.name} (clean): ${r.outcome} ${msg} ${JSON.stringify((r as CorpusResult).mismatches ?? [])}`);
            }
          } else {
            if (r.outcome === 'read') count((r as CorpusResult).truncated ? 'corrupt: best-effort read (stopped at the byte/entry budget)' : 'corrupt: best-effort read');
            else if (r.outcome === 'refused') count(`corrupt: refused (${msg.replace(/.*unsupported feature ([^:]*).*/, '$1')})`);
            else if (r.outcome === 'typed-error') count('corrupt: typed error');
            else {
              count('corrupt: FAILED');
              failures.push(`${row.name} (corrupt): ${r.outcome} ${msg}`);
            }
          }
          if (process.env.EXT4_CORPUS_VERBOSE) t.log(`${row.name}: ${r.outcome} ${msg}`);
        }
      }),
    );
  } finally {
    for (const w of workers) w.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  for (const [k, v] of [...tally].sort()) t.log(`${v.toString().padStart(4)}  ${k}`);
  for (const f of failures) t.log(f);
  t.deepEqual(failures, []);
});
