/**
 * `diskimg status`: one short line for a shell prompt, from the boot state
 * and each slot's version (its /psyopsOS.tar.minisig trusted comment).
 */
import type { Disk } from '@diskimg/diskimage/internal';
import { slotOfLabel } from '@diskimg/partitions/internal';
import { inferBooted, readBootState, type BootState } from './boot-state.js';
import { inspectSlot } from './inspect.js';
import { bootPhase } from './decision.js';

/** `slotStatus`'s answer: one line for a prompt, and whether the booted slot is confirmed. */
export interface BootStatus {
  /** e.g. `psyopsOS-B 20261201-000000 TRIAL 2/3`. */
  line: string;
  /** The slot described: the booted one, else the one the disk stands on (see slotStatus). */
  slot: string | null;
  /** True when that slot is the confirmed default and no trial failed: exit 0. */
  confirmed: boolean;
  /** Slot label → version (null: unsigned, unreadable or unverified). */
  versions: Record<string, string | null>;
  /** Labels of slots written without a signature check (--no-verify): their versions are null. */
  unverified: string[];
  state: BootState;
}

const short = (label: string) => slotOfLabel(label)?.toUpperCase() ?? label;

/**
 * The status of `booted` (undefined on an offline image: then the slot GRUB
 * boots next, as inferBooted says for every command).
 *   `L V ok` | `L V ok, next: B V TRIAL 3/3` | `L V TRIAL 2/3` | `L V FELL BACK from B V` | `L V NOT DEFAULT (default A)`
 */
export async function slotStatus(disk: Disk, booted?: string): Promise<BootStatus> {
  const state = await readBootState(disk);
  const versions: Record<string, string | null> = {};
  const unverified: string[] = [];
  for (const s of ['a', 'b'] as const) {
    const info = await inspectSlot(disk, s);
    versions[info.label] = info.version;
    if (info.unverified) unverified.push(info.label);
  }
  // An unverified slot shows no version (its signature is only a claim), but says so.
  const ver = (l: string) => versions[l] ?? (unverified.includes(l) ? 'UNVERIFIED' : '-');
  const slot = booted ?? inferBooted(state).label;
  if (!slot) return { line: 'no default slot', slot: null, confirmed: false, versions, unverified, state };
  const trialText = (t: NonNullable<BootState['trial']>) => `TRIAL ${t.triesLeft}/${t.tries ?? '?'}`;
  // The phase is decision.ts's, shared with check and serve.
  const phase = bootPhase(state, slot).phase;
  let line: string;
  if (phase === 'trial') line = `${slot} ${ver(slot)} ${trialText(state.trial!)}`;
  else if (phase === 'fell-back') line = `${slot} ${ver(slot)} FELL BACK from ${short(state.failed!)} ${ver(state.failed!)}`;
  else if (phase === 'confirmed') {
    line = `${slot} ${ver(slot)} ok`;
    if (state.trial) line += `, next: ${short(state.trial.label)} ${ver(state.trial.label)} ${trialText(state.trial)}`;
  } else line = `${slot} ${ver(slot)} NOT DEFAULT (default ${state.defaultLabel ? short(state.defaultLabel) : 'none'})`;
  return { line, slot, confirmed: phase === 'confirmed', versions, unverified, state };
}
