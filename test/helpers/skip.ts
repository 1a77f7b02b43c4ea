/**
 * The one way a test says "this real-tool check cannot run here".
 *
 * - `skipOrFail(t, reason, { tool })`: outside strict mode, logs `SKIPPED (tool): reason` and
 *   passes (the log says the check did not run; the test title must not be the only record);
 *   with `DISKIMG_TEST_STRICT=1` (set by .ci/run) it FAILS the test, unless `tool` names a
 *   condition on the allow-list (test/strict-allow.json: what the CI machine truly cannot
 *   provide), whose reason is then logged with the skip.
 * - `needTools(t, ...cmds)`: true when every command is installed (each recorded as a check that
 *   ran), else skipOrFail for the missing ones and false.
 * - `ranTool(t, tool)`: record that a real-tool check ran (for checks not gated by needTools).
 *
 * Every call appends one JSON line to .cache/test-checks.jsonl (or $DISKIMG_TEST_CHECKS);
 * `node scripts/test-checks.mjs` summarises ran/skipped by tool at the end of a run.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The DISKIMG_TEST_STRICT switch. */
export const STRICT = process.env.DISKIMG_TEST_STRICT === '1';

/** Condition → why this CI machine cannot provide it (test/strict-allow.json). */
export const ALLOW: Readonly<Record<string, string>> = JSON.parse(readFileSync(join(ROOT, 'test', 'strict-allow.json'), 'utf8'));

export const CHECKS_FILE = process.env.DISKIMG_TEST_CHECKS ?? join(ROOT, '.cache', 'test-checks.jsonl');

/** What the helper needs of an ava ExecutionContext (kept structural so local helpers can pass theirs). */
export interface SkipContext {
  readonly title: string;
  log(...values: unknown[]): void;
  pass(message?: string): void;
  fail(message?: string): void;
}

/** The test file calling us, relative to the repository (from the stack; best effort). */
function callerFile(): string {
  const stack = new Error().stack?.split('\n') ?? [];
  for (const line of stack) {
    const m = /(?:file:\/\/)?(\/[^\s:()]+\.test\.ts)/.exec(line);
    if (m) return relative(ROOT, m[1]!);
  }
  return '?';
}

function record(t: SkipContext, tool: string, outcome: 'ran' | 'skipped' | 'failed', reason?: string): void {
  const line = { file: callerFile(), title: t.title, tool, outcome, ...(reason === undefined ? {} : { reason }), ...(ALLOW[tool] ? { allowed: true } : {}) };
  try {
    mkdirSync(dirname(CHECKS_FILE), { recursive: true });
    appendFileSync(CHECKS_FILE, JSON.stringify(line) + '\n');
  } catch {
    // the record is a report, never a reason for a test to fail
  }
}

/**
 * The check needing `tool` (a command, or a condition: root, vfat, loop-partscan, network, qemu,
 * boot-fixtures, corpus, …) cannot run: log and pass, or fail in strict mode unless allow-listed.
 * The caller returns (or skips the part) after it.
 */
export function skipOrFail(t: SkipContext, reason: string, opts: { tool: string }): void {
  const { tool } = opts;
  const allowed = ALLOW[tool];
  if (STRICT && !allowed) {
    record(t, tool, 'failed', reason);
    t.fail(`strict mode (DISKIMG_TEST_STRICT=1): this check needs ${tool} and cannot run: ${reason}. Not on the allow-list (test/strict-allow.json): install or enable it.`);
    return;
  }
  record(t, tool, 'skipped', reason);
  t.log(`SKIPPED (${tool}): ${reason}${allowed ? ` [allow-listed: ${allowed}]` : ''} — this check did not run`);
  t.pass();
}

const haveCache = new Map<string, boolean>();
/** Is `cmd` an executable on PATH (or an existing path)? */
export function haveTool(cmd: string): boolean {
  let v = haveCache.get(cmd);
  if (v === undefined) {
    v = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;
    haveCache.set(cmd, v);
  }
  return v;
}

/** Record that a real-tool check with `tools` ran in this test. */
export function ranTool(t: SkipContext, ...tools: string[]): void {
  for (const tool of tools) record(t, tool, 'ran');
}

/** True when every command is installed (recorded as ran); else skipOrFail naming the missing ones, false. */
export function needTools(t: SkipContext, ...cmds: string[]): boolean {
  const missing = cmds.filter((c) => !haveTool(c));
  if (missing.length) {
    skipOrFail(t, `${missing.join(', ')} not installed (scripts/test-deps.sh installs it)`, { tool: missing.join('+') });
    return false;
  }
  ranTool(t, ...cmds);
  return true;
}

export const isRoot = process.getuid?.() === 0;

/** True as root; else skipOrFail('root'). */
export function needRoot(t: SkipContext, what = 'loop devices and mount'): boolean {
  if (isRoot) return true;
  skipOrFail(t, `needs root for ${what}`, { tool: 'root' });
  return false;
}

/**
 * `reason` undefined: the condition holds (recorded as ran for `tool`), true. Else skipOrFail, false.
 * For helpers that return a skip reason (skipReason(), startNginx(), startSshd()).
 */
export function needCondition(t: SkipContext, reason: string | undefined, tool: string): boolean {
  if (reason === undefined) {
    ranTool(t, tool);
    return true;
  }
  skipOrFail(t, reason, { tool });
  return false;
}
