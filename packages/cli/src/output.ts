/**
 * What every command prints goes through here: one JSON style, a stdout that
 * may be closed under us (`| head -1`), and cleanups to run on a signal.
 */

/**
 * Characters that must not reach a terminal as they are: C0 controls (ESC,
 * BEL, CR, LF, …), DEL, C1 controls, the bidi embeddings, overrides, isolates
 * and marks, the Unicode line and paragraph separators, and lone surrogates.
 */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Text from an image, a signature or the user (names, labels, trusted
 * comments, versions, paths), made safe for a terminal: every unsafe
 * character becomes its UTF-8 bytes as `\xHH` (lone surrogates: their WTF-8
 * bytes) — the syntax `ls`/`cat` paths accept back (image/names.ts). Every
 * human output goes through it; `--json` keeps exact values.
 */
export function displayText(s: string): string {
  return s.replace(UNSAFE, (ch) => {
    const c = ch.charCodeAt(0);
    const bytes = c >= 0xd800 && c <= 0xdfff ? [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63)] : [...Buffer.from(ch, 'utf8')];
    return bytes.map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  });
}

/** Whole lines of human output: as displayText, but newlines and tabs stay (they lay the text out). */
export function displayLines(s: string): string {
  return s.replace(UNSAFE, (ch) => (ch === '\n' || ch === '\t' ? ch : displayText(ch)));
}

let humanGuard = false;

/**
 * The safety net under every human stdout (installed by cli.ts for all commands but `cat`,
 * `completion` and `--json`): text written to stdout passes through displayLines, so a value a
 * command forgot to escape cannot reach the terminal as an escape sequence. Commands still
 * escape values themselves (displayText), which also keeps a newline inside a value on its line.
 */
export function guardHumanStdout(): void {
  if (humanGuard) return;
  humanGuard = true;
  const write = process.stdout.write.bind(process.stdout) as (...a: unknown[]) => boolean;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    write(typeof chunk === 'string' ? displayLines(chunk) : chunk, ...rest)) as typeof process.stdout.write;
}

let stderrGuard = false;

/** The progress line's redraw (progress.ts): the one control sequence stderr may carry. */
const REDRAW = '\r\x1b[K';

/**
 * The same net under stderr, for every command and with --json too (stderr is always for
 * people): warnings, errors and progress quote names, trusted comments and paths from the
 * input, so text written there passes through displayLines. Only a leading progress redraw
 * (`\r` + erase line) is kept as it is.
 */
export function guardHumanStderr(): void {
  if (stderrGuard) return;
  stderrGuard = true;
  const write = process.stderr.write.bind(process.stderr) as (...a: unknown[]) => boolean;
  const safe = (s: string) => (s.startsWith(REDRAW) ? REDRAW + displayLines(s.slice(REDRAW.length)) : displayLines(s));
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
    write(typeof chunk === 'string' ? safe(chunk) : chunk, ...rest)) as typeof process.stderr.write;
}

/** A warning on stderr: one line, the value escaped (a newline in it stays on the line). */
export function printWarning(text: string): void {
  process.stderr.write(`diskimg: warning: ${displayText(text)}\n`);
}

/** `--json`: one document, indented, on stdout (the same for every command). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

let stdoutClosed = false;

/**
 * Wait until `stream` wants more data ('drain'), or until it closed or failed
 * (then false). Every listener is removed again whichever comes first: a
 * write-with-backpressure loop waits here once per chunk, and listeners left
 * behind would pile up (MaxListenersExceededWarning after 10 waits).
 */
export function waitForDrain(stream: NodeJS.WritableStream): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const done = (v: boolean, e?: unknown) => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      stream.off('error', onError);
      if (e === undefined) resolve(v);
      else reject(e);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const onError = (e: unknown) => done(false, e);
    stream.on('drain', onDrain);
    stream.on('close', onClose);
    stream.on('error', onError);
  });
}

/** True once a reader closed our stdout (EPIPE): commands may stop producing output. */
export function isStdoutClosed(): boolean {
  return stdoutClosed;
}

let pipeGuard = false;

/**
 * A closed stdout or stderr (`diskimg show … | head -1`) ends output quietly:
 * no unhandled 'error' event and no stack trace. Stays installed (an EPIPE
 * is reported after the last write, even after the command has returned);
 * installing twice is a no-op.
 */
export function quietOnClosedPipe(): void {
  if (pipeGuard) return;
  pipeGuard = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') stdoutClosed = true;
  });
  // stderr the same: an error message that cannot be shown must not become a crash.
  process.stderr.on('error', () => {});
}

/** The conventional exit codes: 128 + signal number. */
export const SIGNAL_EXIT: Record<'SIGINT' | 'SIGTERM' | 'SIGHUP', number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

const cleanups = new Set<() => void>();

type SignalName = 'SIGINT' | 'SIGTERM';
let takeover: ((sig: SignalName) => void) | undefined;

/**
 * A long-running command (serve) ends on SIGINT/SIGTERM by itself:
 * `fn` is called instead of exiting 128+n (it closes and lets the command
 * return, exit 0). Returns the release function.
 */
export function takeSignals(fn: (sig: SignalName) => void): () => void {
  takeover = fn;
  return () => {
    if (takeover === fn) takeover = undefined;
  };
}

/**
 * Run `fn` (synchronous: the process exits right after) if a catchable signal
 * arrives while the returned function has not been called.
 */
export function onSignalCleanup(fn: () => void): () => void {
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}

/**
 * SIGINT, SIGTERM, SIGHUP: run the registered cleanups, then exit with
 * 130, 143, 129. Returns the detach function.
 */
export function exitOnSignals(): () => void {
  const handlers = (Object.keys(SIGNAL_EXIT) as (keyof typeof SIGNAL_EXIT)[]).map((sig) => {
    const h = () => {
      if (takeover && sig !== 'SIGHUP') {
        takeover(sig);
        return;
      }
      for (const fn of cleanups) {
        try {
          fn();
        } catch {
          // best effort: the exit code still tells what happened
        }
      }
      process.exit(SIGNAL_EXIT[sig]);
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}
