/**
 * The boot-counting states both the model test (grubcfg decision.test.ts) and the QEMU test
 * (grubcfg boot-counting.test.ts) run: grub.cfg default + grubenv bytes → what GRUB must boot.
 * The expectations are written out by hand; the QEMU test also compares the real GRUB with the
 * model's prediction and write-back.
 */
import { PSYOPS_NAMES } from '../../packages/partitions/src/index.js';
import { encodeGrubenv, GRUBENV_SIGNATURE, type BootReason } from '../../packages/grubcfg/src/index.js';

export const A = PSYOPS_NAMES.a;
export const B = PSYOPS_NAMES.b;

export interface BootCase {
  name: string;
  /** grub.cfg's confirmed default. */
  defaultLabel: string;
  /** /grub/grubenv bytes; undefined: no such file. */
  env?: Buffer;
  expect: { label: string; reason: BootReason; failed?: string; triesAfter?: string };
}

/** A deterministic 1024 bytes of noise (no GRUB signature). */
export function garbage(seed = 7, size = 1024): Buffer {
  let x = seed;
  return Buffer.from(Array.from({ length: size }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff));
}

export const trialEnv = (label: string, tries: string | undefined, armed = '3') =>
  encodeGrubenv([['psyopsos_trial', label], ...(tries === undefined ? [] : [['psyopsos_tries', tries] as const]), ['psyopsos_armed', armed]]);

/** Sector `i` (512 bytes) from `first`, the rest from `second`: a write torn at a sector boundary. */
export function tear(first: Buffer, second: Buffer): Buffer {
  return Buffer.concat([first.subarray(0, 512), second.subarray(512)]);
}

/**
 * The table. `torn` cases are GRUB's fall-back write (old: tries 0; new: failed recorded)
 * cut between its two sectors, both ways round.
 */
export function bootCases(opts: { allTries?: boolean } = {}): BootCase[] {
  const fellBackNew = encodeGrubenv([['psyopsos_armed', '3'], ['psyopsos_failed', B]]);
  // GRUB's save_env keeps the block's order: trial and tries deleted, failed appended after armed.
  const fellBackOld = trialEnv(B, '0');
  const damaged = Buffer.alloc(1024, '#');
  Buffer.from(`${GRUBENV_SIGNATURE}psyopsos_trial=${B}\npsyopsos_tries=3\nno-newline-before-the-padding`).copy(damaged);
  const cases: BootCase[] = [
    { name: 'no grubenv file (upstream ESP)', defaultLabel: A, expect: { label: A, reason: 'default' } },
    { name: 'empty grubenv file (0 bytes)', defaultLabel: A, env: Buffer.alloc(0), expect: { label: A, reason: 'default' } },
    { name: 'garbage grubenv', defaultLabel: A, env: garbage(), expect: { label: A, reason: 'default' } },
    { name: 'blank block, confirmed A', defaultLabel: A, env: encodeGrubenv({}), expect: { label: A, reason: 'default' } },
    { name: 'blank block, confirmed B', defaultLabel: B, env: encodeGrubenv({}), expect: { label: B, reason: 'default' } },
  ];
  for (const n of opts.allTries ? [9, 8, 7, 6, 5, 4, 3, 2, 1] : [9, 3, 1]) {
    cases.push({ name: `trial B, ${n} tries`, defaultLabel: A, env: trialEnv(B, String(n)), expect: { label: B, reason: 'trial', triesAfter: String(n - 1) } });
  }
  cases.push(
    { name: 'trial A from default B, 2 tries', defaultLabel: B, env: trialEnv(A, '2'), expect: { label: A, reason: 'trial', triesAfter: '1' } },
    { name: 'trial B, 0 tries', defaultLabel: A, env: fellBackOld, expect: { label: A, reason: 'fell-back', failed: B } },
    { name: 'trial B, tries not a number', defaultLabel: A, env: trialEnv(B, 'x'), expect: { label: A, reason: 'fell-back', failed: B } },
    { name: 'trial B, no tries variable', defaultLabel: A, env: trialEnv(B, undefined), expect: { label: A, reason: 'fell-back', failed: B } },
    { name: 'B already failed, no trial', defaultLabel: A, env: fellBackNew, expect: { label: A, reason: 'default' } },
    { name: 'trial of an unknown slot label', defaultLabel: A, env: trialEnv('psyopsOS-C', '3'), expect: { label: A, reason: 'fell-back', failed: 'psyopsOS-C' } },
    { name: 'torn fall-back write: new first sector, old second', defaultLabel: A, env: tear(fellBackNew, fellBackOld), expect: { label: A, reason: 'default' } },
    { name: 'torn fall-back write: old first sector, new second', defaultLabel: A, env: tear(fellBackOld, fellBackNew), expect: { label: A, reason: 'fell-back', failed: B } },
    { name: 'damaged block with a trial: save_env fails, so the trial does not boot', defaultLabel: A, env: damaged, expect: { label: A, reason: 'default' } },
  );
  return cases;
}
