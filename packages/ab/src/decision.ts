/**
 * The one decision `status`, `check` and `serve` share (issue 27.3): where the
 * booted slot stands in the A/B cycle (`bootPhase`), and what the repository's
 * latest release means for this node (`decideUpdate`). Pure: the facts read
 * from the disk and the repository in, a verdict out. Versions order as
 * strings (YYYYMMDD-HHMMSS).
 */
import type { BootState } from './boot-state.js';

/** The booted slot: confirmed default, on trial, the fallback after a failed trial, neither, or unknown. */
export type BootPhase = 'confirmed' | 'trial' | 'fell-back' | 'not-default' | 'no-slot';

export interface BootPhaseInfo {
  phase: BootPhase;
  /** Another slot armed for a trial that GRUB boots next: a reboot is pending. */
  armed: string | null;
}

/** Where `booted` stands in `state` (status's line, serve's state, check's boot-pending). */
export function bootPhase(state: BootState, booted: string | null): BootPhaseInfo {
  const t = state.trial;
  const armed = t && t.label !== booted && state.nextBoot.label === t.label ? t.label : null;
  if (!booted) return { phase: 'no-slot', armed };
  if (t?.label === booted) return { phase: 'trial', armed: null };
  if (state.failed && state.failed !== booted) return { phase: 'fell-back', armed };
  if (booted === state.defaultLabel) return { phase: 'confirmed', armed };
  return { phase: 'not-default', armed };
}

/**
 * The repository's latest OS release against this node:
 *  available         newer than the booted slot's version (or that version is unknown)
 *  armed             already written to the other slot and armed for the next boot
 *  failed-before     newer, but not newer than the version that just failed its trial here
 *  up-to-date        the booted slot runs it
 *  marked-bad        newer, but not newer than what the other slot holds and that slot is marked
 *                    bad (a trial given up by rollback/mark-bad, or a fallback acknowledged by
 *                    mark-good): offering it again would loop; publish a fixed version
 *  up-to-date        the booted slot runs it
 *  repository-older  older than what runs: the repository was rolled back or is frozen
 */
export type OsVerdict = 'available' | 'armed' | 'failed-before' | 'marked-bad' | 'up-to-date' | 'repository-older';
/** The repository's latest ESP against the disk's: `none` when the repository has no ESP release. */
export type EspVerdict = 'available' | 'up-to-date' | 'repository-older' | 'none';

/**
 * `diskimg check`'s answer, the first that applies (exit codes in CHECK_EXIT):
 *  boot-pending          11: booted slot on trial, another slot armed, or fell back and the
 *                            repository has nothing newer than what failed
 *  update-available      10: the repository's OS is newer than the booted slot's
 *  repository-older      13: the repository's latest OS or ESP is older than what this node has
 *  esp-update-available  12: only the ESP is behind
 *  up-to-date             0
 */
export type CheckStatus = 'boot-pending' | 'update-available' | 'repository-older' | 'esp-update-available' | 'up-to-date';
/** The exit code of `diskimg check` for each `CheckStatus`. */
export const CHECK_EXIT: Record<CheckStatus, number> = {
  'boot-pending': 11,
  'update-available': 10,
  'repository-older': 13,
  'esp-update-available': 12,
  'up-to-date': 0,
};

/** What `decideUpdate` needs: the boot state, the slots' and ESP's versions, the repository's latest. */
export interface UpdateFacts {
  state: BootState;
  booted: { label: string | null; version: string | null };
  other: { label: string | null; version: string | null };
  /** The ESP's version (/psyopsESP.tar.minisig), null when it has none. */
  espVersion: string | null;
  latest: { os: string; esp: string | null };
}

export interface UpdateDecision extends BootPhaseInfo {
  os: OsVerdict;
  esp: EspVerdict;
  status: CheckStatus;
  exitCode: number;
  /** The repository's latest OS or ESP is older than this node's: rolled back or frozen. */
  repositoryOlder: boolean;
  /** The version in the slot that failed its trial (null when none failed). */
  failedVersion: string | null;
}

/** The decision `check`, `serve` (and the page) report for a node and a repository's latest releases. */
export function decideUpdate(f: UpdateFacts): UpdateDecision {
  const p = bootPhase(f.state, f.booted.label);
  const failedVersion = f.state.failed && f.state.failed === f.other.label ? f.other.version : null;
  const latest = f.latest.os;
  const have = f.booted.version;
  let os: OsVerdict;
  if (have === null || latest > have) {
    if (p.phase === 'fell-back' && failedVersion !== null && latest <= failedVersion) os = 'failed-before';
    else if (p.armed !== null && p.armed === f.other.label && f.other.version === latest) os = 'armed';
    else if (!f.state.trial && f.state.bad !== null && f.state.bad === f.other.label && f.other.version !== null && latest <= f.other.version)
      os = 'marked-bad';
    else os = 'available';
  } else os = latest === have ? 'up-to-date' : 'repository-older';
  const e = f.latest.esp;
  const esp: EspVerdict =
    e === null ? 'none' : f.espVersion === null || e > f.espVersion ? 'available' : e === f.espVersion ? 'up-to-date' : 'repository-older';
  const repositoryOlder = os === 'repository-older' || esp === 'repository-older';
  const status: CheckStatus =
    p.phase === 'trial' || p.armed !== null || os === 'failed-before'
      ? 'boot-pending'
      : os === 'available'
        ? 'update-available'
        : repositoryOlder
          ? 'repository-older'
          : esp === 'available'
            ? 'esp-update-available'
            : 'up-to-date';
  return { ...p, os, esp, status, exitCode: CHECK_EXIT[status], repositoryOlder, failedVersion };
}
