import { fmtBytes } from '@diskimg/partitions/internal';
import { displayText } from './output.js';

/**
 * The one progress line every command uses: on a terminal only (stderr),
 * never with --json or --quiet, never on a pipe. Shows done and total,
 * percentage, rate and time left; `status()` shows a phase without numbers.
 */
export interface Progress {
  /** Bytes done so far (monotonic), optionally what is being worked on. */
  update(done: number, what?: string): void;
  /** A phase without numbers ("unlocking the key…"). */
  status(text: string): void;
  /** Final line (kept on screen) and newline. */
  finish(text?: string): void;
  /** Remove the line (before an error is printed). */
  clear(): void;
  readonly enabled: boolean;
}

export interface ProgressOptions {
  label: string;
  /** Expected total bytes, when known (an estimate is clamped below 100% until finish). */
  total?: number;
  /** Where to draw; default process.stderr. */
  stream?: Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean; columns?: number };
  /** --quiet or --json given. */
  quiet?: boolean;
  now?: () => number;
  /** Minimum milliseconds between redraws (default 100). */
  interval?: number;
}

/** Whether progress is drawn for these flags: a terminal on stderr and neither --json nor --quiet. */
export function progressWanted(argv: { json?: boolean; quiet?: boolean }, stream: { isTTY?: boolean } = process.stderr): boolean {
  return Boolean(stream.isTTY) && !argv.json && !argv.quiet;
}

export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** The text of one progress line (exported for tests). */
export function progressLine(label: string, done: number, total: number | undefined, elapsedMs: number, what?: string): string {
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  const parts = [`${label}${what ? ` ${what}` : ''}: ${fmtBytes(done)}`];
  if (total !== undefined && total > 0) {
    const pct = Math.min(99, Math.floor((done * 100) / total));
    parts[0] += ` of ${fmtBytes(total)} (${pct}%)`;
  }
  if (elapsedMs >= 500 && rate > 0) {
    parts.push(`${fmtBytes(Math.round(rate))}/s`);
    if (total !== undefined && total > done) parts.push(`ETA ${fmtDuration((total - done) / rate)}`);
  }
  return parts.join(', ');
}

export function createProgress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  const enabled = Boolean(stream.isTTY) && !o.quiet;
  const now = o.now ?? Date.now;
  const interval = o.interval ?? 100;
  const start = now();
  let last = -Infinity;
  let shown = false;
  let lastDone = 0;
  const draw = (raw: string) => {
    const text = displayText(raw); // names from the input (tar entries) may hold escapes
    const width = (stream.columns ?? 100) - 1;
    stream.write(`\r\x1b[K${text.length > width ? text.slice(0, width) : text}`);
    shown = true;
  };
  return {
    enabled,
    update(done, what) {
      lastDone = done;
      if (!enabled) return;
      const t = now();
      if (t - last < interval) return;
      last = t;
      draw(progressLine(o.label, done, o.total, t - start, what));
    },
    status(text) {
      if (!enabled) return;
      draw(`${o.label}: ${text}`);
    },
    finish(text) {
      if (!enabled) return;
      const secs = (now() - start) / 1000;
      draw(text ?? `${o.label}: ${fmtBytes(lastDone)} in ${secs.toFixed(1)} s`);
      stream.write('\n');
      shown = false;
    },
    clear() {
      if (enabled && shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}
