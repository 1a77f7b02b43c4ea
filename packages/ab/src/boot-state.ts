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
  ENV_BAD,
  ENV_STAGED,
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
  /**
   * A slot known not to be proven (psyopsos_bad): its trial ended without a confirm (rollback,
   * mark-bad) or mark-good acknowledged its fallback. rollback never makes it the default; a new
   * trial of it (set-next, update), mark-good of it or set-default to it clears the mark.
   */
  bad: string | null;
  /**
   * A slot `update` wrote (or began to write) and nobody has tried yet (psyopsos_staged):
   * `update --no-switch`, or an update killed or refused before its arm. Not proven, so rollback
   * never makes it the default; not failed, so check offers its version and update rewrites and
   * arms it. A trial of it, a confirm of it, set-default to it or mark-bad of it clears it.
   */
  staged: string | null;
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
    bad: vars?.get(ENV_BAD) || null,
    staged: vars?.get(ENV_STAGED) || null,
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

/** Where the booted slot's name came from: --booted-label, the kernel command line, or the disk's own boot state. */
export type BootedSource = 'option' | 'cmdline' | 'disk';

/**
 * The slot this system booted, as every command that needs it infers it (update, check,
 * mark-good, mark-bad, rollback; status and serve without --booted-label): `bootedLabel` when
 * given (it must be a slot label); else `psyopsos=` on the kernel command line when the disk is
 * the running system's (`isBlock`, or `cmdline` given: an image file is not what booted); else,
 * offline, the slot GRUB boots next from this state (source 'disk').
 */
export function inferBooted(state: BootState, o: { bootedLabel?: string; cmdline?: string; isBlock?: boolean } = {}): { label: string | null; source: BootedSource } {
  if (o.bootedLabel) {
    if (!slotOfLabel(o.bootedLabel)) throw new InputError(`--booted-label ${o.bootedLabel}: not a slot label (${PSYOPS_NAMES.a} or ${PSYOPS_NAMES.b})`);
    return { label: o.bootedLabel, source: 'option' };
  }
  const fromCmdline = o.isBlock || o.cmdline !== undefined ? bootedLabel({ cmdline: o.cmdline }) : undefined;
  if (fromCmdline && slotOfLabel(fromCmdline)) return { label: fromCmdline, source: 'cmdline' };
  return { label: state.nextBoot.label, source: 'disk' };
}

/** Is `disk` a block device (then /proc/cmdline speaks of it)? */
export function isBlockDisk(disk: Disk): boolean {
  return disk.device instanceof FileDevice && disk.device.isBlockDevice;
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

/**
 * No trial and no failure left in grubenv (other variables kept); `bad` the slot recorded as not
 * proven (psyopsos_bad), `staged` the slot written and never tried (psyopsos_staged), or none.
 * Nothing is written when grubenv already says exactly that.
 */
async function endTrial(esp: Esp, bad?: string | null, staged?: string | null): Promise<void> {
  const vars = envVars(esp.env);
  const want: Partial<Record<(typeof COUNTING_VARS)[number], string>> = { ...(bad ? { [ENV_BAD]: bad } : {}), ...(staged ? { [ENV_STAGED]: staged } : {}) };
  if (esp.env === undefined && !bad && !staged) return;
  if (vars && COUNTING_VARS.every((n) => vars.get(n) === want[n])) return;
  await writeEnv(esp, envWith(esp.env, want));
}

/** The bad mark that stays when `label` becomes the default or goes on trial: it clears its own. */
const badAfter = (s: BootState, label: string) => (s.bad && s.bad !== label ? s.bad : null);
/** Likewise the staged mark: a trial, confirm, set-default or mark-bad of the slot clears its own. */
const stagedAfter = (s: BootState, label: string) => (s.staged && s.staged !== label ? s.staged : null);

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
    const s = bootStateOf(esp.cfg, esp.env);
    await writeCfg(esp, setGrubCfgDefault(esp.cfgText, l, esp.cfgName));
    await endTrial(esp, badAfter(s, l), stagedAfter(s, l));
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
  // A new trial of the slot marked bad or staged clears the mark (it is being tried now).
  const s = bootStateOf(esp.cfg, esp.env);
  const bad = badAfter(s, l);
  const staged = stagedAfter(s, l);
  const env = envWith(esp.env, {
    [ENV_TRIAL]: l,
    [ENV_TRIES]: String(tries),
    [ENV_ARMED]: String(tries),
    ...(bad ? { [ENV_BAD]: bad } : {}),
    ...(staged ? { [ENV_STAGED]: staged } : {}),
  });
  assertTornSafe(parseGrubCfg(cfgText, esp.cfgName), env); // refuse before the first write
  return { l, cfgText, env };
}

const short = (label: string) => slotOfLabel(label)?.toUpperCase() ?? label;
const lower = (label: string) => short(label).toLowerCase();

/** What markGood, markBad and rollback did: whether grub.cfg or grubenv changed, one line for the operator, and the state after. */
export interface BootStateChange {
  changed: boolean;
  message: string;
  state: BootState;
}

/** Who booted: a label (the caller knows) or the options inferBooted takes (option, cmdline, else the disk's state). */
export type BootedArg = string | { bootedLabel?: string; cmdline?: string };

function whoBooted(disk: Disk, s: BootState, booted: BootedArg | undefined): { label: string | null; source: BootedSource } {
  if (typeof booted === 'string') return { label: booted, source: 'option' };
  return inferBooted(s, { ...booted, isBlock: isBlockDisk(disk) });
}

/**
 * Confirm the booted slot (a label, or inferred as inferBooted does). On trial: it becomes the
 * default (grub.cfg), then the trial ends (grubenv). The confirmed default after a fallback:
 * the fallback is acknowledged (psyopsos_failed becomes psyopsos_bad, one grubenv write), so the
 * node is healthy again and rollback still never goes to the failed slot. The confirmed default
 * while the other slot is on trial (GRUB fell back in this boot, or the trial boots next): no
 * change. Refused: a slot that is neither the default nor on trial, and, inferred offline, a
 * trial GRUB has not booted yet (it is not proven).
 */
export async function markGood(disk: Disk, booted?: BootedArg): Promise<BootStateChange & { booted: string }> {
  return withEsp(disk, async (esp) => {
    const s = bootStateOf(esp.cfg, esp.env);
    const who = whoBooted(disk, s, booted);
    const b = who.label;
    if (!b) throw new InputError('mark-good: cannot tell the booted slot (grub.cfg names no default); give --booted-label LABEL');
    const done = (changed: boolean, message: string) => ({ changed, message, state: bootStateOf(esp.cfg, esp.env), booted: b });
    const confirm = async () => {
      await writeCfg(esp, setGrubCfgDefault(esp.cfgText, b, esp.cfgName));
      await endTrial(esp, badAfter(s, b), stagedAfter(s, b));
      return done(true, `${b} confirmed: it is the default now`);
    };
    if (s.trial?.label === b) {
      if (who.source === 'disk' && s.trial.tries !== undefined && s.trial.triesLeft >= s.trial.tries) {
        throw new InputError(
          `mark-good: ${b} is armed but GRUB has not booted it yet (${s.trial.triesLeft} of ${s.trial.tries} tries left): boot it first, or name the booted slot with --booted-label`,
        );
      }
      return confirm();
    }
    // A confirm cut between its two writes: the default moved, GRUB may since have counted the trial out.
    if (s.defaultLabel === b && !s.trial && s.failed === b) return confirm();
    if (s.defaultLabel === b && !s.trial && s.failed) {
      await endTrial(esp, s.failed, stagedAfter(s, s.failed));
      return done(true, `${b} confirmed; ${s.failed} failed its trial and is marked bad: rollback will not go to it (set-next ${lower(s.failed)} tries it again)`);
    }
    if (s.defaultLabel === b && s.trial) {
      return done(false, `${b} is the confirmed default; ${s.trial.label} stays on trial (${s.trial.triesLeft} tries left, mark-bad ends it)`);
    }
    if (s.defaultLabel === b) return done(false, `${b} is already the confirmed default; nothing to do`);
    if (s.trial) {
      throw new InputError(`booted ${b}, but ${s.trial.label} is on trial (${s.trial.triesLeft} tries left): boot it to confirm it, or set-default to cancel the trial`);
    }
    throw new InputError(`booted ${b} is neither the default (${s.defaultLabel ?? 'none'}) nor on trial: set-default makes it the default`);
  });
}

/**
 * Mark a slot bad (RAUC's mark-bad): `slot` is 'booted' (default: the booted slot, as markGood
 * infers it), 'other' (the slot that is not booted), or a / b / a label. The slot must not be the
 * confirmed default (GRUB would have nothing else to boot: rollback or set-default first). Its
 * trial ends, a fallback from it is acknowledged, and psyopsos_bad names it: the next boot is the
 * confirmed default and rollback never makes it the default, until set-next (or update) tries it
 * again, or set-default forces it. One grubenv write (crash-safe replace): a cut leaves the old
 * state or the new one.
 */
export async function markBad(disk: Disk, booted?: BootedArg, opts: { slot?: string } = {}): Promise<BootStateChange & { slot: string }> {
  return withEsp(disk, async (esp) => {
    const s = bootStateOf(esp.cfg, esp.env);
    const which = opts.slot ?? 'booted';
    let target: string;
    if (which === 'booted' || which === 'other') {
      const b = whoBooted(disk, s, booted).label;
      if (!b) throw new InputError('mark-bad: cannot tell the booted slot (grub.cfg names no default); give --booted-label LABEL');
      if (which === 'booted') target = b;
      else {
        const others = esp.cfg.slots.map(slotEntryLabel).filter((l) => l !== b);
        if (others.length !== 1) throw new InputError(`mark-bad: grub.cfg boots ${esp.cfg.slots.map(slotEntryLabel).join(', ')}; cannot tell the other slot from ${b}`);
        target = others[0]!;
      }
    } else target = resolveLabel(esp.cfg, which);
    if (target === s.defaultLabel) {
      throw new InputError(
        `mark-bad: ${target} is the confirmed default, GRUB would have nothing else to boot: make the other slot the default first (rollback, or set-default)`,
      );
    }
    const done = (changed: boolean, message: string) => ({ changed, message, state: bootStateOf(esp.cfg, esp.env), slot: target });
    if (s.bad === target && s.trial?.label !== target && s.failed !== target && s.staged !== target) return done(false, `${target} is already marked bad; nothing to do`);
    // Only ours change; a trial or failure of the default cannot exist (armTrial refuses it).
    // Bad replaces a staged mark of the slot: it is no longer waiting to be tried.
    await endTrial(esp, target, stagedAfter(s, target));
    const next = esp.cfg.defaultLabel ?? 'the default';
    return done(true, `${target} marked bad${s.trial?.label === target ? ': its trial ended' : ''}; the next boot is ${next} (the confirmed default); rollback will not go to it (set-next ${lower(target)} tries it again)`);
  });
}

/**
 * Record that `label` is about to be rewritten and, until a trial of it, never tried: psyopsos_staged
 * names it, its own trial or failure ends, one grubenv write. `update` calls it right before the
 * slot's first byte; arming a trial afterwards clears it, so `update --no-switch`, a killed update
 * or a cut before the arm leave it staged: rollback refuses the slot (not proven), but check and
 * update offer its version again (not failed). A bad mark of the slot is replaced: the bytes it
 * judged are being overwritten (an interrupted rewrite leaves the slot incomplete, which rollback
 * refuses and check offers again anyway). Nothing is written when it is already staged, or when
 * it is the confirmed default (marking that would leave GRUB's fallback marked; `update --force`
 * rewrites it only while the booted slot is on trial). Returns whether grubenv changed.
 */
export async function markStaged(disk: Disk, label: string): Promise<boolean> {
  return withEsp(disk, async (esp) => {
    const l = resolveLabel(esp.cfg, label);
    const s = bootStateOf(esp.cfg, esp.env);
    if (l === s.defaultLabel) return false;
    if (s.staged === l && s.bad !== l && s.trial?.label !== l && s.failed !== l) return false;
    await endTrial(esp, badAfter(s, l), l);
    return true;
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
 * Go back, never forward. With a trial recorded: end it and mark the trial slot bad (it was never
 * confirmed); the confirmed default stays. Otherwise the slot other than the booted one (a label,
 * or inferred as inferBooted does) becomes the default, when it is proven and complete: a slot
 * that failed its trial or is marked bad is not, so a second rollback after one that ended a
 * trial changes nothing (changed: false, and the message says why: set-next tries that slot,
 * set-default forces it). A slot without /psyopsOS.tar.minisig is refused.
 */
export async function rollback(disk: Disk, booted?: BootedArg): Promise<BootStateChange> {
  return withEsp(disk, async (esp) => {
    const s = bootStateOf(esp.cfg, esp.env);
    const done = (changed: boolean, message: string) => ({ changed, message, state: bootStateOf(esp.cfg, esp.env) });
    if (s.trial) {
      if (!s.defaultLabel) throw new InputError('rollback: grub.cfg names no default slot to go back to');
      await endTrial(esp, s.trial.label, stagedAfter(s, s.trial.label));
      return done(true, `rolled back: ${s.trial.label}'s trial ended and it is marked bad; ${s.defaultLabel} stays the confirmed default`);
    }
    const from = whoBooted(disk, s, booted).label ?? s.defaultLabel;
    const others = esp.cfg.slots.map(slotEntryLabel).filter((l) => l !== from);
    if (others.length !== 1) throw new InputError(`rollback: grub.cfg boots ${esp.cfg.slots.map(slotEntryLabel).join(', ')}; cannot tell the other slot from ${from ?? 'none'}`);
    const target = others[0]!;
    if (target !== s.defaultLabel && (target === s.failed || target === s.bad || target === s.staged)) {
      const why =
        target === s.failed
          ? 'failed its trial'
          : target === s.bad
            ? 'was never confirmed (it is marked bad: its trial failed or was ended)'
            : 'was written but never booted (staged)';
      return done(
        false,
        `nothing to roll back to: ${target} ${why}, and rollback never makes an unproven slot the default; ${s.defaultLabel ?? 'the default'} stays (set-next ${lower(target)} tries ${target}, set-default ${lower(target)} forces it)`,
      );
    }
    if (target !== s.defaultLabel && !(await slotComplete(disk, target))) {
      throw new InputError(`rollback: ${target} holds no complete slot (no ${SLOT_PATHS.signature}); nothing to roll back to`);
    }
    const changed = target !== s.defaultLabel || s.failed !== null;
    await writeCfg(esp, setGrubCfgDefault(esp.cfgText, target, esp.cfgName));
    await endTrial(esp, badAfter(s, target), stagedAfter(s, target));
    return done(changed, changed ? `rolled back: ${target} is the default now` : `${target} is already the default; nothing to do`);
  });
}
