import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive, pidFilePattern, removeDeadPidFiles } from './stale.js';

test('removeDeadPidFiles removes the files of dead processes only: never a live one\'s, our own only when not keepOwn, never other names', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stale-'));
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const dead = spawnSync('true').pid; // exited (and reaped) before we look
    t.false(isProcessAlive(dead));
    t.true(isProcessAlive(sleeper.pid!));
    const names = [`.x.partial-${dead}`, `.x.partial-${sleeper.pid}`, `.x.partial-${process.pid}`, `.y.partial-${dead}`, `.x.partial-${dead}.keep`, '.x.partial-', 'x'];
    for (const n of names) writeFileSync(join(dir, n), n);
    const re = pidFilePattern('.x.partial-');
    t.deepEqual(removeDeadPidFiles(dir, re, { keepOwn: true }), [`.x.partial-${dead}`]);
    t.deepEqual(removeDeadPidFiles(dir, re), [`.x.partial-${process.pid}`]);
    t.deepEqual(readdirSync(dir).sort(), names.filter((n) => n !== `.x.partial-${dead}` && n !== `.x.partial-${process.pid}`).sort());
    t.deepEqual(removeDeadPidFiles(join(dir, 'missing'), re), []);
    t.true(existsSync(join(dir, `.x.partial-${sleeper.pid}`)));
  } finally {
    sleeper.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
