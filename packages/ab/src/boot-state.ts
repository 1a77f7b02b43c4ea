// INTERIM: replaced by the boot-counting branch (same exported names).
import { CMDLINE_SLOT_PARAM, ESP_PATHS, InputError, PSYOPS_NAMES, buildTime } from '@diskimg/partitions';
import type { Disk } from '@diskimg/diskimage';
import { decodeGrubenv, parseGrubCfg, predictBoot, setGrubCfgDefault } from '@diskimg/grubcfg';
import { openEspForEdit } from './slots.js';
import { readFileSync } from 'node:fs';

export interface BootState {
  defaultLabel: string | null;
  trial: { label: string; triesLeft: number } | null;
  failed: string | null;
  nextBoot: { label: string | null; reason: string };
  countingBlock: boolean;
  envError?: string;
}

export function bootedLabel(o: { bootedLabel?: string; cmdline?: string } = {}): string | undefined {
  if (o.bootedLabel) return o.bootedLabel;
  let cmdline = o.cmdline;
  if (cmdline === undefined) {
    try {
      cmdline = readFileSync('/proc/cmdline', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = new RegExp(`(?:^|\\s)${CMDLINE_SLOT_PARAM}=(\\S+)`).exec(cmdline);
  return m?.[1];
}

export async function readBootState(disk: Disk): Promise<BootState> {
  const vol = await openEspForEdit(disk);
  const cfg = parseGrubCfg((await vol.readFileBuffer(ESP_PATHS.grubCfg)).toString('utf8'));
  let env: Map<string, string> | undefined;
  try {
    if (await vol.lookup(ESP_PATHS.grubenv)) env = decodeGrubenv(await vol.readFileBuffer(ESP_PATHS.grubenv));
  } catch {}
  const d = predictBoot(cfg, env);
  const trial = env?.get('psyopsos_trial');
  return {
    defaultLabel: cfg.defaultLabel ?? null,
    trial: trial ? { label: trial, triesLeft: Number(env?.get('psyopsos_tries') ?? 0) } : null,
    failed: env?.get('psyopsos_failed') || null,
    nextBoot: { label: d.label ?? null, reason: d.reason },
    countingBlock: false,
  };
}

export async function armTrial(disk: Disk, label: string, _opts: { tries?: number } = {}): Promise<BootState> {
  if (label !== PSYOPS_NAMES.a && label !== PSYOPS_NAMES.b) throw new InputError(`${label}: not a slot`);
  const vol = await openEspForEdit(disk);
  const old = (await vol.readFileBuffer(ESP_PATHS.grubCfg)).toString('utf8');
  const next = setGrubCfgDefault(old, label);
  if (next !== old) await vol.replaceFile(ESP_PATHS.grubCfg, Buffer.from(next), { mtime: buildTime() });
  return readBootState(disk);
}
