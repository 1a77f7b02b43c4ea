/**
 * What `diskimg show` reports beyond the partition table: each partition's
 * filesystem, each slot's signed metadata (the trusted comment of
 * /psyopsOS.tar.minisig), and the ESP's signed metadata, grub.cfg default and
 * grubenv. Read-only; a part that cannot be read is reported as an error
 * string, never thrown, so a damaged partition does not hide the others.
 */
import {
  findFilesystemPartition,
  openDisk,
  openFilesystem,
  PSYOPS_NAMES,
  probePartition,
  summarizeDisk,
  type Device,
  type Disk,
  type DiskPartition,
  type DiskSummary,
  type FsProbe,
  type FsReader,
  type PartitionSummary,
} from '@diskimg/diskimage/internal';
import { decodeGrubenv, GRUBENV_SIZE, parseGrubCfg, type BootReason } from '@diskimg/grubcfg/internal';
import { bootStateOf, type BootState } from './boot-state.js';
import { ESP_PATHS, isNotFound, SLOT_PATHS } from '@diskimg/partitions/internal';
import { decodeSignature, MAX_SIGNATURE_FILE_BYTES } from './minisign/signature.js';
import { parseTrustedComment } from './minisign/trusted.js';
import { keyIdHex } from './minisign/keys.js';
import { readSlotOs, type SlotOs } from './os-info.js';

const OS_SIGNATURE_PATH = SLOT_PATHS.signature;
const ESP_SIGNATURE_PATH = ESP_PATHS.signature;
const GRUB_CFG_PATH = ESP_PATHS.grubCfg;
const GRUBENV_PATH = ESP_PATHS.grubenv;
const MAX_GRUB_CFG_BYTES = 1 << 20;

/** The trusted comment of a signature file, and its key=value fields. */
export interface SignatureInfo {
  path: string;
  trustedComment: string;
  /** Parsed key=value pairs: type, filename, version, kernel, alpine, architecture, … */
  metadata: Record<string, string>;
  /** Key id (hex, as minisign -V prints it, most significant byte first). */
  keyId: string;
}

/** One A/B slot read back: filesystem state (complete or `incomplete`), OS version and signature, files present. */
export interface SlotInfo {
  slot: 'a' | 'b';
  label: string;
  /** Partition number, null when the disk has no such slot. */
  partition: number | null;
  /** null: no signature file in the slot ("no signature"). */
  signature: SignatureInfo | null;
  /** signature.metadata.version, when the slot was verified when written; null otherwise. */
  version: string | null;
  /**
   * The slot was written without a signature check (its SLOT_PATHS.unverified marker): its
   * signature, if any, is only a claim, so `version` is null and readers say UNVERIFIED.
   */
  unverified: boolean;
  /** What the slot's root filesystem (/squashfs) says it is; only when asked for ({ os: true }: show). */
  os?: SlotOs;
  /** Set when the slot's filesystem or its signature could not be read. */
  error?: string;
}

export interface InspectOptions {
  /** Also read each slot's /squashfs: os-release and the apk package count. */
  os?: boolean;
}

/** grub.cfg as read from the ESP: its default slot, menu entries and the upstream info line. */
export interface GrubCfgInfo {
  /** The slot label GRUB boots by default. */
  defaultLabel: string | null;
  /** `set default=` value. */
  default: string | null;
  /** The `# neuralupgrade-info:` line's fields. */
  info: Record<string, string> | null;
  /** Menu entries that boot a slot: title and psyopsos= label. */
  slots: { title: string; label: string | null }[];
  warnings: string[];
}

/** The ESP read back: label, bootloader, grub.cfg, grubenv and payload version. */
export interface EspInfo {
  label: string;
  partition: number | null;
  signature: SignatureInfo | null;
  grubCfg: GrubCfgInfo | null;
  /** grubenv variables, null when there is no /grub/grubenv. */
  grubenv: Record<string, string> | null;
  /** The slot GRUB boots next (a trial counted in grubenv, else the default; see predictBoot). */
  nextBoot: { label: string | null; reason: BootReason } | null;
  /** Boot counting: default, trial and tries left, last failed (boot-state.ts). */
  boot: BootState | null;
  /** Errors reading parts of the ESP (each "what: message"). */
  errors: string[];
  error?: string;
}

/** A partition of an inspected disk with the filesystem found in it. */
export interface InspectedPartition extends PartitionSummary {
  filesystem: FsProbe;
}

/** `inspectDisk`'s report (what `diskimg show --json` prints): partitions, slots, ESP, grub.cfg and boot state. */
export interface DiskInspection extends DiskSummary {
  partitions: InspectedPartition[];
  slots: SlotInfo[];
  esp: EspInfo;
}

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

async function exists(fs: FsReader, path: string): Promise<boolean> {
  try {
    await fs.stat(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** Read a signature file's trusted comment; null when the file does not exist. */
export async function readSignatureInfo(fs: FsReader, path: string): Promise<SignatureInfo | null> {
  if (!(await exists(fs, path))) return null;
  const sig = decodeSignature(await fs.readFileBuffer(path, MAX_SIGNATURE_FILE_BYTES), `${fs.name}:${path}`);
  return {
    path,
    trustedComment: sig.trustedComment,
    metadata: parseTrustedComment(sig.trustedComment),
    keyId: keyIdHex(sig.keyId),
  };
}

/** A slot's signature and whether it was verified when written (no SLOT_PATHS.unverified marker). */
export async function readSlotTrust(fs: FsReader): Promise<{ signature: SignatureInfo | null; unverified: boolean }> {
  const unverified = await exists(fs, SLOT_PATHS.unverified);
  return { signature: await readSignatureInfo(fs, OS_SIGNATURE_PATH), unverified };
}

async function locate(disk: Disk, label: string): Promise<DiskPartition | undefined> {
  try {
    return await findFilesystemPartition(disk, label);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Open the filesystem labelled `label`, noting its partition number in `out`; undefined (and `out.error`) when absent. */
async function openLabelled(disk: Disk, label: string, out: { partition: number | null; error?: string }): Promise<FsReader | undefined> {
  const p = await locate(disk, label);
  if (!p) {
    out.error = `no partition labelled ${label}`;
    return undefined;
  }
  out.partition = p.number;
  return openFilesystem(p);
}

/** A slot's partition and signed metadata (version); errors are reported in the result. */
export async function inspectSlot(disk: Disk, slot: 'a' | 'b', opts: InspectOptions = {}): Promise<SlotInfo> {
  const label = PSYOPS_NAMES[slot];
  const out: SlotInfo = { slot, label, partition: null, signature: null, version: null, unverified: false };
  try {
    const fs = await openLabelled(disk, label, out);
    if (!fs) return out;
    // readSlotOs reports its own errors: a damaged root image does not hide the signature.
    if (opts.os) out.os = await readSlotOs(fs);
    const trust = await readSlotTrust(fs);
    out.signature = trust.signature;
    out.unverified = trust.unverified;
    out.version = trust.unverified ? null : (out.signature?.metadata.version ?? null);
  } catch (e) {
    out.error = errMsg(e);
  }
  return out;
}

async function inspectEsp(disk: Disk): Promise<EspInfo> {
  const label = PSYOPS_NAMES.esp;
  const out: EspInfo = { label, partition: null, signature: null, grubCfg: null, grubenv: null, nextBoot: null, boot: null, errors: [] };
  let fs: FsReader;
  try {
    const f = await openLabelled(disk, label, out);
    if (!f) return out;
    fs = f;
  } catch (e) {
    out.error = errMsg(e);
    return out;
  }
  // Each part separately: a bad grubenv must not hide the grub.cfg default.
  const part = async (what: string, f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      out.errors.push(`${what}: ${errMsg(e)}`);
    }
  };
  await part(ESP_SIGNATURE_PATH, async () => {
    out.signature = await readSignatureInfo(fs, ESP_SIGNATURE_PATH);
  });
  let cfg: ReturnType<typeof parseGrubCfg> | undefined;
  await part(GRUB_CFG_PATH, async () => {
    if (!(await exists(fs, GRUB_CFG_PATH))) return;
    const text = (await fs.readFileBuffer(GRUB_CFG_PATH, MAX_GRUB_CFG_BYTES)).toString('utf8');
    cfg = parseGrubCfg(text, `${fs.name}:${GRUB_CFG_PATH}`);
    out.grubCfg = {
      defaultLabel: cfg.defaultLabel ?? null,
      default: cfg.default ?? null,
      info: cfg.info?.fields ?? null,
      slots: cfg.slots.map((s) => ({ title: s.title, label: s.psyopsos ?? null })),
      warnings: cfg.warnings,
    };
  });
  let envBytes: Buffer | undefined;
  await part(GRUBENV_PATH, async () => {
    if (!(await exists(fs, GRUBENV_PATH))) return;
    envBytes = await fs.readFileBuffer(GRUBENV_PATH, GRUBENV_SIZE * 4);
    out.grubenv = Object.fromEntries(decodeGrubenv(envBytes, { name: `${fs.name}:${GRUBENV_PATH}`, size: null }));
  });
  if (cfg) {
    // From the raw bytes, as GRUB reads them: a damaged grubenv still has a next boot.
    out.boot = bootStateOf(cfg, envBytes);
    out.nextBoot = out.boot.nextBoot;
  }
  return out;
}

/** Inspect an opened disk (see DiskInspection). */
export async function inspectOpenDisk(disk: Disk, opts: InspectOptions = {}): Promise<DiskInspection> {
  const summary = summarizeDisk(disk);
  const partitions: InspectedPartition[] = [];
  for (const [i, p] of summary.partitions.entries()) {
    partitions.push({ ...p, filesystem: await probePartition(disk.partitions[i]!) });
  }
  const slots = [await inspectSlot(disk, 'a', opts), await inspectSlot(disk, 'b', opts)];
  const esp = await inspectEsp(disk);
  return { ...summary, partitions, slots, esp };
}

/** Open DISK (image file, block device or Device) read-only and inspect it. */
export async function inspectDisk(target: string | Device, opts: InspectOptions = {}): Promise<DiskInspection> {
  const disk = await openDisk(target);
  try {
    return await inspectOpenDisk(disk, opts);
  } finally {
    await disk.close();
  }
}
