/**
 * `diskimg update`: write a signed OS tarball into the slot that is not
 * booted, as the bytes arrive (file, stdin or HTTP), and hand it to GRUB only
 * once every byte is verified. The rules (issue "diskimg update"), in order:
 *  1. never the booted slot, never a mounted partition;
 *  2. never the only fallback (the booted slot on trial) unless --force;
 *  3. verify before anything can boot it: signature over exactly the bytes
 *     written, type=psyopsOS, architecture, version policy;
 *  4. an incomplete slot cannot be found (ext4/pending.ts);
 *  5. only the target partition is written (all writes through its Region),
 *     then the ESP's boot state, last; before its first byte one grubenv write
 *     marks the target staged (markStaged), which the arm clears;
 *  7. the same slot content as `create` (writeSlot);
 *  8. write less: read-compare-skip on block devices, and the slot keeps its
 *     UUID, hash seed and timestamps so the same tarball gives the same bytes.
 * Everything that can be checked is checked before the first write.
 */
import { hintDiskOf, markGoodCommand } from './hints.js';
import { stat } from 'node:fs/promises';
import {
  InputError,
  makeEntropy,
  otherSlot,
  PSYOPS_NAMES,
  SafetyError,
  slotOfLabel,
  SLOT_PATHS,
  sourceDateEpoch,
  type SlotName,
} from '@diskimg/partitions/internal';
import {
  assertPartitionNotMounted,
  CountingDevice,
  FileDevice,
  findFilesystemPartition,
  isUrl,
  openDisk,
  openFilesystem,
  openUpdateInput,
  PendingSuperblockDevice,
  readAt,
  readSmallInput,
  readTarTree,
  SkipUnchangedDevice,
  slotIdentity,
  SUPERBLOCK_OFFSET,
  type Device,
  type Disk,
  type DiskPartition,
  type MountSources,
} from '@diskimg/diskimage/internal';
import { decodeSignature, MAX_SIGNATURE_FILE_BYTES, type Signature } from './minisign/signature.js';
import { MinisignVerifier, readPublicKeyFile } from './minisign/verify.js';
import { parseTrustedComment } from './minisign/trusted.js';
import { readSignatureInfo, readSlotTrust } from './inspect.js';
import { armTrial, checkTrialTries, inferBooted, markStaged, planTrial, readBootState, type BootState } from './boot-state.js';
import { checkRelease, type Installed } from './policy.js';
import { requireOsFiles, writeSlot } from './slot-write.js';

/** Options of `updateSlot` (the flags of `diskimg update`). */
export interface UpdateOptions {
  /** Image file or block device path, or an opened Device (tests). */
  disk: string | Device;
  slot: 'inactive' | SlotName;
  /** OS tarball: a path, an http(s) URL, or "-" for standard input. */
  osTar: string;
  /** Its .minisig (path or URL); default `<osTar>.minisig`; required with "-". */
  osSig?: string;
  /**
   * The signature's bytes when the caller already holds them (`update --repo`: the pointer it
   * verified, a copy of `osSig`), so a release pruned after the pointer was read cannot swap or
   * lose its signature under us. `osSig` then only names it in messages.
   */
  osSigBytes?: Buffer;
  pubkey?: string;
  /** Write without checking the signature (it is still stored in the slot when given). */
  noVerify?: boolean;
  /** The running slot's label; default: /proc/cmdline psyopsos= when DISK is a block device. */
  bootedLabel?: string;
  /** /proc/cmdline's text (tests). */
  cmdline?: string;
  allowDowngrade?: boolean;
  /** Allow the same version again, and overwriting the last good slot while the booted one is on trial. */
  force?: boolean;
  /** Write the slot and arm nothing: it stays staged (psyopsos_staged: rollback refuses it; set-next tries it). */
  noSwitch?: boolean;
  /** Boot tries for the new slot before GRUB falls back (default 3; 0 = plain switch of the default). */
  tries?: number;
  dryRun?: boolean;
  /** Read each block first and skip writes of unchanged bytes (default: on for block devices). */
  skipUnchanged?: boolean;
  /** The node's architecture as trusted comments name it (default from process.arch). */
  arch?: string;
  stdin?: NodeJS.ReadableStream;
  /** Trusted comment fields the signature must carry (`update --repo`: the filename and version the pointer named). */
  expectTrusted?: Record<string, string>;
  /**
   * The booted slot already runs this version: 'error' (default; --force writes it again) or
   * 'up-to-date' (`update --repo`: nothing to do, result.upToDate set, nothing written). Also then:
   * the target already holds it and is armed to boot next → nothing to do; it failed its trial → refused.
   */
  sameVersion?: 'error' | 'up-to-date';
  mountSources?: MountSources;
  onProgress?: (p: { bytes: number; total?: number }) => void;
  /** The disk the suggested commands name: default `disk` when a path; null when it was found by label (they omit it). */
  hintDisk?: string | null;
}

/** What `updateSlot` did: the slot written, versions before and after, bytes read/written/skipped, and the armed boot state. */
export interface UpdateResult {
  disk: string;
  dryRun: boolean;
  target: { slot: SlotName; label: string; partition: number };
  booted: { label: string | null; source: 'option' | 'cmdline' | 'next-boot' };
  previousVersion: string | null;
  bootedVersion: string | null;
  newVersion: string | null;
  verified: boolean;
  /** Bytes of the OS tarball read (and hashed). */
  inputBytes: number;
  bytesWritten: number;
  bytesSkipped: number;
  durationMs: number;
  /** The boot state after arming (null with --no-switch or --dry-run). */
  armed: BootState | null;
  /** The slot left staged (psyopsos_staged: rollback will not make it the default): the target with --no-switch, else null. */
  staged: string | null;
  /** With sameVersion 'up-to-date': why nothing was written ('booted': running it; 'armed': written, boots next). */
  upToDate?: 'booted' | 'armed';
  warnings: string[];
}

const ARCH_NAMES: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7', ia32: 'x86', riscv64: 'riscv64' };

/** Write a signed OS tarball (file, URL or `-`) into a slot of a disk image or block device, verifying the signature over the bytes as they stream, then arm the slot for a trial boot (`diskimg update`). Refusals before the write (downgrade, slot on trial, bad options) leave the disk unchanged; one during it (bad signature, broken stream) leaves the target incomplete and staged. */
export async function updateSlot(o: UpdateOptions): Promise<UpdateResult> {
  const t0 = Date.now();
  const warnings: string[] = [];
  const diskName = typeof o.disk === 'string' ? o.disk : 'disk';

  // ---- inputs that need no disk: options, signature, key, trusted comment ----
  const tries = checkTrialTries(o.tries);
  const sigSpec = o.osSig ?? (o.osTar === '-' ? undefined : `${o.osTar}.minisig`);
  if (!sigSpec && !o.noVerify) throw new InputError('--os-tar -: give --os-sig FILE|URL (the signature cannot follow the tarball on standard input)');
  if (!o.noVerify && !o.pubkey) throw new InputError('no --pubkey: give the minisign public key that signs your OS updates, or --no-verify');
  let sigText: string | undefined;
  let sig: Signature | undefined;
  if (sigSpec) {
    // With --no-verify a default OS_TAR.minisig is optional (stored in the slot when present).
    const raw = o.osSigBytes ?? await readSmallInput(sigSpec, { maxBytes: MAX_SIGNATURE_FILE_BYTES }).catch((e) => {
      if (o.noVerify && !o.osSig && e instanceof InputError) return undefined;
      if (!o.osSig && e instanceof InputError) throw new InputError(`${o.osTar}: no signature at ${sigSpec}; give --os-sig FILE|URL, or --no-verify`);
      throw e;
    });
    if (raw) {
      sigText = raw.toString('utf8');
      sig = decodeSignature(raw, sigSpec);
    }
  }
  // The constructor checks the key id and the trusted comment's own signature now, before any write.
  const verifier = o.noVerify ? undefined : new MinisignVerifier(sig!, await readPublicKeyFile(o.pubkey!), { file: o.osTar, sig: sigSpec, pubkey: o.pubkey });
  const fields = sig ? parseTrustedComment(sig.trustedComment) : undefined;
  const arch = o.arch ?? ARCH_NAMES[process.arch] ?? process.arch;
  const sigName = sig && sigSpec ? sigSpec : `${o.osTar} (no signature)`;
  // type= and architecture= now; the version once the booted slot's is known (policy.ts).
  checkRelease({ kind: 'os', source: sigName, fields, installed: 'nothing', installedName: 'the booted slot', allowDowngrade: true, arch });
  for (const [k, v] of Object.entries(o.expectTrusted ?? {})) {
    if (fields?.[k] !== v) throw new InputError(`${sigSpec ?? 'signature'}: the trusted comment says ${k}=${fields?.[k] ?? '(none)'}, expected ${k}=${v}; refused`);
  }
  const newVersion = fields?.version ?? null;

  // ---- the disk: booted slot, target, safety rules ----
  const disk = await openDisk(o.disk, { writable: !o.dryRun });
  try {
    const isBlock = disk.device instanceof FileDevice && disk.device.isBlockDevice;
    const state = await readBootState(disk);
    const booted = whichBooted(o, isBlock, state);
    const target = chooseTarget(o.slot, booted.label, state);
    const targetLabel = PSYOPS_NAMES[target];
    if (booted.label === targetLabel) {
      throw new SafetyError(`${diskName}: ${targetLabel} is the booted slot; update the other one (--slot inactive)`);
    }
    const part = await findFilesystemPartition(disk, targetLabel);
    if (disk.path && isBlock) assertPartitionNotMounted(disk.path, part.number, o.mountSources);

    const bootedInstalled: Installed = booted.label ? await installedSlotVersion(disk, booted.label) : { version: null, why: 'no booted slot' };
    const bootedVersion = bootedInstalled.version;
    const previousVersion = await slotVersion(disk, targetLabel, warnings);
    let upToDate: UpdateResult['upToDate'];
    if (o.sameVersion === 'up-to-date' && newVersion && !o.force) {
      if (newVersion === bootedVersion) upToDate = 'booted';
      else if (newVersion === previousVersion && state.trial?.label === targetLabel && state.nextBoot.label === targetLabel) upToDate = 'armed';
      else if (newVersion === previousVersion && state.failed === targetLabel && !state.trial) {
        throw new InputError(`${targetLabel} holds ${newVersion}, which failed its trial (GRUB fell back to ${state.defaultLabel ?? 'the default'}); not trying it again: pass --force to, or publish a fixed version`);
      } else if (newVersion === previousVersion && state.bad === targetLabel && !state.trial) {
        throw new InputError(`${targetLabel} holds ${newVersion}, which is marked bad (its trial failed or was given up); not trying it again: pass --force to, or publish a fixed version`);
      }
    }
    const result: UpdateResult = {
      disk: disk.path ?? diskName,
      dryRun: !!o.dryRun,
      target: { slot: target, label: targetLabel, partition: part.number },
      booted,
      previousVersion,
      bootedVersion,
      newVersion,
      verified: !!verifier,
      inputBytes: 0,
      bytesWritten: 0,
      bytesSkipped: 0,
      durationMs: 0,
      armed: null,
      staged: null,
      warnings,
    };
    if (upToDate) {
      result.upToDate = upToDate;
      result.durationMs = Date.now() - t0;
      return result;
    }
    // Rule 2: the booted slot on trial means the target is the last known-good slot.
    if (state.trial && state.trial.label === booted.label && !o.force) {
      throw new SafetyError(
        `${diskName}: the booted slot ${booted.label} is on trial and ${targetLabel} is the last known-good slot; confirm the running slot with "${markGoodCommand(hintDiskOf(o), booted)}" first (or --force)`,
      );
    }
    const decision = checkRelease({
      kind: 'os',
      source: sigName,
      fields,
      installed: bootedInstalled,
      installedName: `the booted ${booted.label ?? 'slot'}`,
      allowDowngrade: o.allowDowngrade,
      arch,
    });
    if (decision.relation === 'same' && !o.force) {
      throw new InputError(`${sigName}: version ${newVersion} is already running in ${booted.label}; pass --force to write it again`);
    }
    // The trial is part of the plan: whatever armTrial would refuse is refused before the slot is written.
    const arming = !o.noSwitch && !(state.defaultLabel === targetLabel && state.trial);
    if (arming) await planTrial(disk, targetLabel, { tries });

    if (o.dryRun) {
      if (!isUrl(o.osTar) && o.osTar !== '-' && !(await isFile(o.osTar))) throw new InputError(`--os-tar ${o.osTar}: no such file`);
      result.durationMs = Date.now() - t0;
      return result;
    }

    // ---- write: pending marker, filesystem, verify, superblock last ----
    // Reused read buffers: HashTap hashes each chunk at once and the ext4 writer holds few (file-chunks.ts).
    const input = await openUpdateInput(o.osTar, { stdin: o.stdin, reuseBuffers: true });
    // From the first byte on the target is not proven: mark it staged (arming clears the mark),
    // so --no-switch, a kill or a cut before the arm leave nothing rollback could make the
    // default, yet nothing that check or update --repo take for a failed version.
    // Not the confirmed default (--force while the booted slot is on trial): it is GRUB's
    // fallback, and markStaged leaves it unmarked.
    if (state.defaultLabel !== targetLabel) {
      await markStaged(disk, targetLabel).catch(async (e) => {
        await input.stream[Symbol.asyncIterator]().return?.(undefined).catch(() => {});
        throw e;
      });
    }
    const written = await writeVerifiedSlot(part, targetLabel, input, verifier, sigText, warnings, {
      skipUnchanged: o.skipUnchanged ?? isBlock,
      now: sourceDateEpoch() ?? versionTime(newVersion) ?? Math.floor(Date.now() / 1000),
      onProgress: o.onProgress,
    });
    Object.assign(result, written);

    // ---- hand it to GRUB, last ----
    if (o.noSwitch) {
      if (state.defaultLabel !== targetLabel) result.staged = targetLabel; // marked above; set-next tries it
    } else if (state.defaultLabel === targetLabel && state.trial) {
      // Only with --force over rule 2: the slot rewritten is the confirmed default, and the
      // booted slot's trial goes on; GRUB falls back to the new bytes here if that trial fails.
      warnings.push(`${targetLabel} is the confirmed default; the trial of ${state.trial.label} continues (confirm it with "${markGoodCommand(hintDiskOf(o), { label: state.trial.label, source: booted.source })}" once it runs)`);
    } else result.armed = await armTrial(disk, targetLabel, { tries });
    result.durationMs = Date.now() - t0;
    return result;
  } finally {
    await disk.close();
  }
}

/**
 * The write itself: the pending marker first (the slot stops being findable),
 * the filesystem from the tar stream while the signature hash follows every
 * byte, then — only when the whole stream verified — the real superblock.
 */
async function writeVerifiedSlot(
  part: DiskPartition,
  label: string,
  input: Awaited<ReturnType<typeof openUpdateInput>>,
  verifier: MinisignVerifier | undefined,
  sigText: string | undefined,
  warnings: string[],
  o: { skipUnchanged: boolean; now: number; onProgress?: UpdateOptions['onProgress'] },
): Promise<Pick<UpdateResult, 'inputBytes' | 'bytesWritten' | 'bytesSkipped'>> {
  const region = part.region();
  const identity = slotIdentity(await readAt(region, SUPERBLOCK_OFFSET, 1024));
  const skip = o.skipUnchanged ? new SkipUnchangedDevice(region) : undefined;
  const counting = new CountingDevice(skip ?? region);
  const dev = new PendingSuperblockDevice(counting);
  await dev.start({ label, ...identity });

  const hashed = new HashTap(input.stream, verifier, (bytes) => o.onProgress?.({ bytes, total: input.size }));
  try {
    await writeSlot(dev, requireOsFiles(readTarTree(hashed.chunks(), input.name), input.name), {
      label,
      signatureText: sigText,
      verified: !!verifier,
      onWarning: (w) => warnings.push(w),
      entropy: makeEntropy(),
      now: o.now,
      sourceDateEpoch: sourceDateEpoch(),
      uuid: identity.uuid,
      hashSeed: identity.hashSeed,
    });
    await hashed.drain();
  } finally {
    await hashed.close(); // a failed write leaves the input open otherwise (its file handle)
  }
  verifier?.finish(); // throws on any difference: the slot stays incomplete, the boot configuration untouched
  await dev.commit();
  return {
    inputBytes: hashed.bytes,
    bytesWritten: skip ? skip.written : counting.written,
    bytesSkipped: skip ? skip.skipped : 0,
  };
}

/** Feeds every byte of the input to the verifier exactly once, in order, as the tar reader pulls it. */
class HashTap {
  bytes = 0;
  private readonly it: AsyncIterator<Buffer>;
  constructor(
    src: AsyncIterable<Buffer>,
    private readonly verifier: MinisignVerifier | undefined,
    private readonly onBytes: (n: number) => void,
  ) {
    this.it = src[Symbol.asyncIterator]();
  }
  private take(c: Buffer): Buffer {
    this.verifier?.update(c);
    this.bytes += c.length;
    this.onBytes(this.bytes);
    return c;
  }
  async *chunks(): AsyncGenerator<Buffer> {
    for (let r = await this.it.next(); !r.done; r = await this.it.next()) yield this.take(r.value);
  }
  /** Whatever the tar reader left unread (trailing blocks) is part of the signed file too. */
  async drain(): Promise<void> {
    for (let r = await this.it.next(); !r.done; r = await this.it.next()) this.take(r.value);
  }
  async close(): Promise<void> {
    await this.it.return?.(undefined).catch(() => {});
  }
}

/** The booted slot as every command infers it (boot-state.ts inferBooted); offline: the slot GRUB boots next. */
export function whichBooted(o: Pick<UpdateOptions, 'bootedLabel' | 'cmdline'>, isBlock: boolean, state: BootState): UpdateResult['booted'] {
  const b = inferBooted(state, { bootedLabel: o.bootedLabel, cmdline: o.cmdline, isBlock });
  return { label: b.label, source: b.source === 'disk' ? 'next-boot' : b.source };
}

function chooseTarget(slot: UpdateOptions['slot'], booted: string | null, state: BootState): SlotName {
  if (slot === 'a' || slot === 'b') return slot;
  const b = slotOfLabel(booted) ?? slotOfLabel(state.defaultLabel);
  if (!b) throw new InputError('--slot inactive: cannot tell which slot is booted; give --booted-label LABEL or --slot a|b');
  return otherSlot(b);
}

/** A slot's version from its /psyopsOS.tar.minisig; null when absent, unreadable or unverified (noted). */
export async function slotVersion(disk: Disk, label: string, warnings: string[]): Promise<string | null> {
  const v = await installedSlotVersion(disk, label);
  if (v.version === null && v.unreadable) warnings.push(`${label}: version unknown (${v.why})`);
  return v.version;
}

/** What the policy compares with: a slot's verified version, or why it is unknown. */
export async function installedSlotVersion(
  disk: Disk,
  label: string,
): Promise<{ version: string; why?: undefined; unreadable?: undefined; unverified?: undefined } | { version: null; why: string; unreadable?: boolean; unverified?: boolean }> {
  try {
    const fs = await openFilesystem(await findFilesystemPartition(disk, label));
    const trust = await readSlotTrust(fs);
    if (trust.unverified) return { version: null, why: `${label} was written without a signature check (${SLOT_PATHS.unverified})`, unverified: true };
    const sig = trust.signature;
    if (!sig) return { version: null, why: `${label} has no ${SLOT_PATHS.signature}` };
    if (sig.metadata.version === undefined) return { version: null, why: `${label}:${SLOT_PATHS.signature} has no version=` };
    return { version: sig.metadata.version };
  } catch (e) {
    return { version: null, why: `${label}: ${(e as Error).message}`, unreadable: true };
  }
}


/** `YYYYMMDD-HHMMSS` (UTC) → seconds, so a release's files get the same times wherever it is written. */
export function versionTime(v: string | null | undefined): number | undefined {
  const m = v ? /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$/.exec(v) : null;
  if (!m) return undefined;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isFinite(t) ? t / 1000 : undefined;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}
