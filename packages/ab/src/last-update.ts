/**
 * The node's record of its last `update`: one small JSON file (docs/DESIGN.md §3,
 * "last-update.json") that `update` writes after it wrote a slot or failed to, and
 * `serve` and `status --json` read. Neither the GRUB env nor the slots say when an
 * update ran or why one failed, so this file does.
 *
 * Where: $DISKIMG_LAST_UPDATE when set (empty: no record), else
 * /var/lib/diskimg/last-update.json when DISK is a block device (the running
 * node's disk). An image file on a builder gets no record: nothing is written
 * outside the target unless asked for.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { UpdateResult } from './update.js';
import { pidFilePattern, removeDeadPidFiles } from '@diskimg/diskimage/internal';

export const LAST_UPDATE_ENV = 'DISKIMG_LAST_UPDATE';
export const DEFAULT_LAST_UPDATE_PATH = '/var/lib/diskimg/last-update.json';

/** What last-update.json holds (format 1). */
export interface LastUpdate {
  format: 1;
  /** ok: the slot was written and verified (and armed unless --no-switch); failed: refused or failed. */
  outcome: 'ok' | 'failed';
  /** ISO 8601 UTC, when the update ended. */
  time: string;
  /** The disk written (image file or block device). */
  disk: string;
  /** The version written (ok), null when a failure came before it was known or the write was not verified (--no-verify). */
  version: string | null;
  /** The slot label written (ok), null on failure. */
  slot: string | null;
  /** The version that slot held before (ok). */
  previousVersion: string | null;
  /** The slot armed for a trial by this update, null with --no-switch. */
  armed: string | null;
  /** The one-line error (failed). */
  error: string | null;
}

/** The record file for `disk` (see the module comment); undefined: no record. */
export function lastUpdatePath(disk: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[LAST_UPDATE_ENV];
  if (v !== undefined) return v === '' ? undefined : v;
  if (disk === undefined) return DEFAULT_LAST_UPDATE_PATH; // the boot disk, found by label: a block device
  try {
    return statSync(disk).isBlockDevice() ? DEFAULT_LAST_UPDATE_PATH : undefined;
  } catch {
    return undefined;
  }
}

/** Write `rec` to `path` atomically: a temporary file beside it, fsynced, renamed over it. */
export function writeLastUpdate(path: string, rec: LastUpdate): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.partial-${process.pid}`);
  removeDeadPidFiles(dirname(path), pidFilePattern(`.${basename(path)}.partial-`)); // a killed update's
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, `${JSON.stringify(rec, null, 2)}\n`);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/**
 * The record at `path`: null when there is none yet; `{ error }` when the file
 * cannot be read or is not a record (a health check reports it, never crashes).
 */
export function readLastUpdate(path: string): LastUpdate | null | { error: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { error: `${path}: ${(e as Error).message}` };
  }
  try {
    const r = JSON.parse(text) as LastUpdate;
    if (r?.format !== 1 || (r.outcome !== 'ok' && r.outcome !== 'failed') || typeof r.time !== 'string') throw new Error('not a format 1 record');
    return r;
  } catch (e) {
    return { error: `${path}: ${(e as Error).message}; the next update rewrites it` };
  }
}

/**
 * Run an update and record its outcome at `path` (undefined: no record). A dry
 * run and "up to date" (nothing written) leave the record alone. Failing to
 * write the record never changes the update's outcome: it becomes a warning
 * (success) or is dropped (the update's own error is the one reported).
 */
export async function withLastUpdate<R extends UpdateResult>(
  path: string | undefined,
  o: { disk: string; dryRun?: boolean; now?: () => Date },
  run: () => Promise<R>,
): Promise<R> {
  if (!path || o.dryRun) return run();
  const time = () => (o.now?.() ?? new Date()).toISOString();
  let r: R;
  try {
    r = await run();
  } catch (e) {
    try {
      writeLastUpdate(path, { format: 1, outcome: 'failed', time: time(), disk: o.disk, version: null, slot: null, previousVersion: null, armed: null, error: (e as Error).message });
    } catch {
      // the update's error is what the operator needs to see
    }
    throw e;
  }
  if (r.dryRun || r.upToDate) return r;
  try {
    writeLastUpdate(path, {
      format: 1,
      outcome: 'ok',
      time: time(),
      disk: r.disk,
      version: r.verified ? r.newVersion : null, // --no-verify: the signature's version is only a claim (26.9)
      slot: r.target.label,
      previousVersion: r.previousVersion,
      armed: r.armed?.trial?.label ?? (r.armed ? r.armed.defaultLabel : null),
      error: null,
    });
  } catch (e) {
    r.warnings.push(`${path}: the update's record could not be written (${(e as Error).message}); serve and status --json will not show it`);
  }
  return r;
}
