/**
 * Boot counting from userspace (docs/boot-counting.md): read the boot state
 * of a disk, arm a trial, confirm it (mark-good), roll back, set the default.
 *
 * grub.cfg's `set default` is the last confirmed slot; the ESP's grubenv
 * holds the trial (psyopsos_trial, psyopsos_tries, psyopsos_armed) and
 * GRUB's record of a fallback (psyopsos_failed). Every write is one FAT32
 * crash-safe replace, in an order where a power cut between two of them
 * still boots a complete slot: the confirmed default moves first, then the
 * trial is armed or ended.
 */
import { readFileSync } from 'node:fs';
import {
  Fat32Volume,
  FileDevice,
  findFilesystemPartition,
  mountsOf,
  openFilesystem,
  partitionDevicePath,
  type Disk,
  type MountSources,
} from '@diskimg/diskimage/internal';
import {
  COUNTING_VARS,
  DEFAULT_TRIES,
  ENV_ARMED,
  ENV_FAILED,
  ENV_TRIAL,
  ENV_TRIES,
  MAX_TRIES,
  encodeGrubenv,
  envblkIterate,
  envblkOpen,
  envContentLength,
  parseGrubCfg,
  predictBoot,
  setGrubCfgDefault,
  slotEntryLabel,
  withCountingBlock,
  GRUBENV_SIZE,
  type BootReason,
  type ParsedGrubCfg,
} from '@diskimg/grubcfg/internal';
import {
  CMDLINE_SLOT_PARAM,
  ESP_PATHS,
  InputError,
  NotFoundError,
  PSYOPS_NAMES,
  SafetyError,
  SLOT_PATHS,
  buildTime,
  isNotFound,
  slotOfLabel,
} from '@diskimg/partitions/internal';

/** The A/B boot state read from grub.cfg and grubenv: the confirmed default, a trial and its tries left, a failed trial, and what boots next. */
export interface BootState {
  /** The confirmed slot: the one grub.cfg's `set default` boots. */
  defaultLabel: string | null;
  /** A trial in grubenv: its slot, the tries GRUB has left, and how many it was armed with (when recorded). */
  trial: { label: string; triesLeft: number; tries?: number } | null;
  /** The trial slot GRUB last gave up on (psyopsos_failed). */
  failed: string | null;
  /** What GRUB boots next, and why (predictBoot: default, trial, fell-back). */
  nextBoot: { label: string | null; reason: BootReason };
  /** grub.cfg has the counting block (without it a trial in grubenv does nothing). */
  countingBlock: boolean;
  /** The grubenv could not be read as a GRUB environment block (GRUB then boots the default). */
  envError?: string;
}

/** Where the ESP keeps the files (the on-disk contract). */
const GRUB_CFG = ESP_PATHS.grubCfg;
const GRUBENV = ESP_PATHS.grubenv;
/** Torn-write bound: see envContentLength. */
const SECTOR = 512;

/** The boot state of a grub.cfg and a grubenv file (undefined: none). Pure. */
export function bootStateOf(cfg: ParsedGrubCfg, env: Uint8Array | undefined): BootState {
  const vars = envVars(env);
  const trialLabel = vars?.get(ENV_TRIAL);
  const num = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);
  const d = predictBoot(cfg, env);
  const state: BootState = {
    defaultLabel: cfg.defaultLabel ?? null,
    trial: trialLabel ? { label: trialLabel, triesLeft: num(vars!.get(ENV_TRIES)) ?? 0 } : null,
    failed: vars?.get(ENV_FAILED) || null,
    nextBoot: { label: d.label ?? null, reason: d.reason },
    countingBlock: cfg.countingBlock,
  };
  const armed = num(vars?.get(ENV_ARMED));
  if (state.trial && armed !== undefined) state.trial.tries = armed;
  if (env !== undefined && !vars) state.envError = `${GRUBENV}: not a GRUB environment block (${env.length} bytes); GRUB boots the default`;
  else if (env !== undefined && env.length !== GRUBENV_SIZE) state.envError = `${GRUBENV}: ${env.length} bytes, GRUB's save_env wants ${GRUBENV_SIZE}`;
  return state;
}

/** Variables as GRUB reads them (lenient, like load_env); undefined when GRUB would reject the block. */
function envVars(env: Uint8Array | undefined): Map<string, string> | undefined {
  const b = envblkOpen(env);
  return b ? new Map(envblkIterate(b)) : undefined;
}

/**
 * The slot this system booted: `bootedLabel` when given, else `psyopsos=` on
 * the kernel command line (`cmdline`, default /proc/cmdline); undefined when
 * neither names one (an offline image).
 */
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

/**
 * Refuse to edit the ESP while the kernel has it mounted: our raw sector
 * writes and the mounted vfat's cache would undo each other.
 */
export function assertEspNotMounted(diskPath: string, partition: number, where?: MountSources): void {
  const dev = partitionDevicePath(diskPath, partition, where?.sysBlock);
  if (!dev) return;
  const uses = mountsOf(dev, where);
  if (uses.length === 0) return;
  const targets = uses.map((u) => / on (.*)$/.exec(u)?.[1]).filter((x): x is string => !!x);
  const fix = targets.length ? `umount ${targets.join(' ')}` : `swapoff ${dev}`;
  throw new SafetyError(
    `${dev} (${PSYOPS_NAMES.esp}) is ${targets.length ? `mounted on ${targets.join(', ')}` : 'in use'}; diskimg writes its sectors directly, which the mounted vfat would undo: run "${fix}" first`,
  );
}

interface Esp {
  vol: Fat32Volume;
  cfgText: string;
  cfgName: string;
  cfg: ParsedGrubCfg;
  env: Buffer | undefined;
}

async function openEsp(disk: Disk, writable: boolean): Promise<Esp> {
  const p = await findFilesystemPartition(disk, PSYOPS_NAMES.esp);
  if (writable && disk.path && disk.device instanceof FileDevice && disk.device.isBlockDevice) assertEspNotMounted(disk.path, p.number);
  const vol = await Fat32Volume.open(p.region(), { readOnly: !writable });
  const cfgName = `${PSYOPS_NAMES.esp}:${GRUB_CFG}`;
  if (!(await vol.lookup(GRUB_CFG))) {
    throw new NotFoundError(`${disk.path ?? 'disk'}: ${cfgName} not found; rebuild the ESP with "diskimg create" or "diskimg update-esp"`);
  }
  const cfgText = (await vol.readFileBuffer(GRUB_CFG)).toString('utf8');
  const envEntry = await vol.lookup(GRUBENV);
  const env = envEntry && !envEntry.isDirectory ? await vol.readFileBuffer(GRUBENV) : undefined;
  return { vol, cfgText, cfgName, cfg: parseGrubCfg(cfgText, cfgName), env };
}

/** Read the boot state of a disk (read-only). */
export async function readBootState(disk: Disk): Promise<BootState> {
  const esp = await openEsp(disk, false);
  return bootStateOf(esp.cfg, esp.env);
}

/**
 * The grubenv with our variables changed (undefined: removed) and every
 * other variable kept, re-encoded as grub-editenv lays a block out. A block
 * GRUB would reject is replaced by a fresh one.
 */
function envWith(old: Buffer | undefined, ours: Partial<Record<(typeof COUNTING_VARS)[number], string>>): Buffer {
  const kept = [...(envVars(old) ?? new Map<string, string>())].filter(([n]) => !(COUNTING_VARS as readonly string[]).includes(n));
  const set = COUNTING_VARS.filter((n) => ours[n] !== undefined).map((n) => [n, ours[n]!] as const);
  return encodeGrubenv([...kept, ...set]);
}

/**
 * Check that `env`, and every block GRUB's save_env can make from it under
 * `cfg`, keeps its content under one sector (see envContentLength): then a
 * torn write by GRUB leaves the old or the new block.
 */
export function assertTornSafe(cfg: ParsedGrubCfg, env: Buffer): void {
  let b: Buffer = env;
  for (let step = 0; step <= MAX_TRIES + 1; step++) {
    const next = predictBoot(cfg, b).writeBack;
    if (!next) return; // GRUB writes nothing from here on
    const len = Math.max(envContentLength(b), envContentLength(next));
    if (len >= SECTOR) {
      throw new InputError(
        `${GRUBENV}: its variables would fill ${len} bytes; boot counting needs them under ${SECTOR} so a torn save_env stays whole: remove other variables (grub-editenv FILE unset NAME)`,
      );
    }
    b = next;
  }
}

async function writeCfg(esp: Esp, text: string): Promise<void> {
  if (text === esp.cfgText) return;
  await esp.vol.replaceFile(GRUB_CFG, Buffer.from(text, 'utf8'), { mtime: buildTime() });
  esp.cfgText = text;
  esp.cfg = parseGrubCfg(text, esp.cfgName);
}

/** Write grubenv (1024 bytes, allocated: what save_env needs) with the crash-safe replace, or create it. */
async function writeEnv(esp: Esp, env: Buffer): Promise<void> {
  if (esp.env?.equals(env)) return;
  assertTornSafe(esp.cfg, env);
  if (esp.env !== undefined) await esp.vol.replaceFile(GRUBENV, env, { mtime: buildTime() });
  else await esp.vol.writeFile(GRUBENV, env, { mtime: buildTime() });
  esp.env = env;
}

/** No trial and no failure left in grubenv (other variables kept). */
async function endTrial(esp: Esp): Promise<void> {
  const vars = envVars(esp.env);
  if (esp.env === undefined || (vars && !COUNTING_VARS.some((n) => vars.has(n)))) return;
  await writeEnv(esp, envWith(esp.env, {}));
}

/** A slot label from "a", "b" or a label the grub.cfg boots. */
function resolveLabel(cfg: ParsedGrubCfg, slot: string): string {
  const labels = cfg.slots.map(slotEntryLabel);
  if (labels.includes(slot)) return slot;
  const s = slot.toLowerCase();
  const named = s === 'a' ? PSYOPS_NAMES.a : s === 'b' ? PSYOPS_NAMES.b : undefined;
  if (named && labels.includes(named)) return named;
  throw new InputError(`slot "${slot}": grub.cfg boots ${labels.join(', ') || 'no slot'}; use a, b or one of those labels`);
}

async function withEsp<T>(disk: Disk, fn: (esp: Esp) => Promise<T>): Promise<T> {
  const esp = await openEsp(disk, true);
  const r = await fn(esp);
  await esp.vol.flush();
  return r;
}

/**
 * Make `label` the confirmed default and end any trial: grub.cfg first, then
 * grubenv (a cut between them boots `label`, or a trial that was already armed).
 */
export async function setDefault(disk: Disk, label: string): Promise<BootState> {
  return withEsp(disk, async (esp) => {
    const l = resolveLabel(esp.cfg, label);
    await writeCfg(esp, setGrubCfgDefault(esp.cfgText, l, esp.cfgName));
    await endTrial(esp);
    return bootStateOf(esp.cfg, esp.env);
  });
}

/**
 * Arm a trial of `label`: the next `tries` boots (default 3, at most 9) boot
 * it until markGood confirms it; then GRUB falls back to the confirmed
 * default. grub.cfg gets the counting block first (if it lacks it), then
 * grubenv the trial. `tries: 0` is a plain setDefault (upstream's switch).
 */
export async function armTrial(disk: Disk, label: string, opts: { tries?: number } = {}): Promise<BootState> {
  const tries = checkTrialTries(opts.tries);
  if (tries === 0) return setDefault(disk, label);
  return withEsp(disk, async (esp) => {
    const { l, cfgText, env } = trialPlan(esp, label, tries);
    await findFilesystemPartition(disk, l); // a slot GRUB cannot find would only fall back
    await writeCfg(esp, cfgText);
    await writeEnv(esp, env);
    return bootStateOf(esp.cfg, esp.env);
  });
}

/**
 * Everything armTrial would refuse, checked read-only (`update` runs it before it writes the
 * slot, so a bad --tries or a boot configuration that cannot take the trial costs no write).
 * `label` need not be findable yet: update's target is hidden behind its pending marker.
 */
export async function planTrial(disk: Disk, label: string, opts: { tries?: number } = {}): Promise<void> {
  const tries = checkTrialTries(opts.tries);
  const esp = await openEsp(disk, false);
  if (tries === 0) resolveLabel(esp.cfg, label);
  else trialPlan(esp, label, tries);
}

/** --tries: a whole number 0..MAX_TRIES (default DEFAULT_TRIES); an InputError naming the value otherwise. */
export function checkTrialTries(t: number | undefined): number {
  const tries = t ?? DEFAULT_TRIES;
  if (!Number.isInteger(tries) || tries < 0 || tries > MAX_TRIES) {
    throw new InputError(`--tries ${tries}: a whole number from 0 (switch the default, no trial) to ${MAX_TRIES} (GRUB counts with an if/elif ladder)`);
  }
  return tries;
}

function trialPlan(esp: Esp, label: string, tries: number): { l: string; cfgText: string; env: Buffer } {
  const l = resolveLabel(esp.cfg, label);
  if (esp.cfg.defaultLabel === l) {
    throw new InputError(`${l} is already the confirmed default: there is nothing to try (set-default switches without a trial)`);
  }
  const cfgText = withCountingBlock(esp.cfgText, { name: esp.cfgName });
  const env = envWith(esp.env, { [ENV_TRIAL]: l, [ENV_TRIES]: String(tries), [ENV_ARMED]: String(tries) });
  assertTornSafe(parseGrubCfg(cfgText, esp.cfgName), env); // refuse before the first write
  return { l, cfgText, env };
}

const short = (label: string) => slotOfLabel(label)?.toUpperCase() ?? label;

/**
 * Confirm the booted slot. On trial: it becomes the default (grub.cfg), then
 * the trial ends (grubenv). Already the confirmed default with nothing
 * recorded: no change. Anything else is refused: the booted slot is not the
 * one on trial, or a trial failed and this is the fallback.
 */
export async function markGood(disk: Disk, booted: string): Promise<{ changed: boolean; message: string; state: BootState }> {
  return withEsp(disk, async (esp) => {
    const s = bootStateOf(esp.cfg, esp.env);
    const confirm = async () => {
      await writeCfg(esp, setGrubCfgDefault(esp.cfgText, booted, esp.cfgName));
      await endTrial(esp);
      return { changed: true, message: `${booted} confirmed: it is the default now`, state: bootStateOf(esp.cfg, esp.env) };
    };
    if (s.trial?.label === booted) return confirm();
    // A confirm cut between its two writes: the default moved, GRUB may since have counted the trial out.
    if (s.defaultLabel === booted && !s.trial && s.failed === booted) return confirm();
    if (s.defaultLabel === booted && !s.trial && !s.failed) {
      return { changed: false, message: `${booted} is already the confirmed default; nothing to do`, state: s };
    }
    if (s.failed && !s.trial) {
      throw new InputError(
        `booted ${booted}, but ${s.failed} failed its trial and GRUB fell back: nothing to confirm (set-next ${short(s.failed).toLowerCase()} tries it again, set-default clears this)`,
      );
    }
    if (s.trial) {
      throw new InputError(`booted ${booted}, but ${s.trial.label} is on trial (${s.trial.triesLeft} tries left): boot it to confirm it, or set-default to cancel the trial`);
    }
    throw new InputError(`booted ${booted} is neither the default (${s.defaultLabel ?? 'none'}) nor on trial: set-default makes it the default`);
  });
}

/** Does the slot hold a complete OS (its /psyopsOS.tar.minisig, written last)? */
async function slotComplete(disk: Disk, label: string): Promise<boolean> {
  try {
    const fs = await openFilesystem(await findFilesystemPartition(disk, label));
    await fs.stat(SLOT_PATHS.signature);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/**
 * Go back to the other slot. With a trial recorded: end it, the confirmed
 * default stays. Otherwise the slot other than the booted one (or than the
 * default, without `bootedLabel`) becomes the default, when it holds a
 * complete slot; then any failure record is cleared.
 */
export async function rollback(disk: Disk, bootedLabel?: string): Promise<BootState> {
  return withEsp(disk, async (esp) => {
    const s = bootStateOf(esp.cfg, esp.env);
    let target: string | undefined;
    if (s.trial) target = s.defaultLabel ?? undefined;
    else {
      const from = bootedLabel ?? s.defaultLabel;
      const others = esp.cfg.slots.map(slotEntryLabel).filter((l) => l !== from);
      if (others.length !== 1) throw new InputError(`rollback: grub.cfg boots ${esp.cfg.slots.map(slotEntryLabel).join(', ')}; cannot tell the other slot from ${from ?? 'none'}`);
      target = others[0]!;
      if (target === s.failed) {
        throw new InputError(`rollback: the other slot ${target} failed its trial; set-default ${short(target).toLowerCase()} forces it`);
      }
    }
    if (!target) throw new InputError('rollback: grub.cfg names no default slot to go back to');
    if (target !== s.defaultLabel && !(await slotComplete(disk, target))) {
      throw new InputError(`rollback: ${target} holds no complete slot (no ${SLOT_PATHS.signature}); nothing to roll back to`);
    }
    await writeCfg(esp, setGrubCfgDefault(esp.cfgText, target, esp.cfgName));
    await endTrial(esp);
    return bootStateOf(esp.cfg, esp.env);
  });
}
