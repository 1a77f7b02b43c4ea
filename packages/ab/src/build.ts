import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { buildTime, ESP_PATHS, fmtBytes, InputError, makeEntropy, sourceDateEpoch, type LayoutPlan } from '@diskimg/partitions/internal';
import {
  CountingDevice,
  createExt4,
  createFat32,
  createImage,
  describeFatLoss,
  fat32,
  openDisk,
  openTarFile,
  planGeometry,
  readFileChunks,
  readTarTree,
  planRegions,
  PSYOPS_NAMES,
  readDirTree,
  teeEach,
  type CreateSummary,
  type Device,
  type Region,
  type TreeEntry,
} from '@diskimg/diskimage/internal/create';
import { encodeGrubenv, extraProgramsFromManifest, renderGrubCfg, DEFAULT_KERNEL_PARAMS } from '@diskimg/grubcfg/internal';
import { requireOsFiles, writeSlot } from './slot-write.js';
import { writeEspFilesList } from './esp-files.js';
import { checkRelease } from './policy.js';
import { decodeSignature, MinisignVerifier, parseTrustedComment, readPublicKeyFile, verifyFile, type VerifyResult } from './minisign/index.js';

/** What `diskimg create` builds: DESIGN.md §2's four partitions, filled. */
export interface BuildImageOptions {
  output: string;
  /** OS tarball (plain or gzip); must hold `kernel` and `initramfs`. */
  osTar: string;
  /** Default: OS_TAR.minisig when it exists. */
  osSig?: string;
  espTar?: string;
  espDir?: string;
  /** Default: ESP_TAR.minisig when it exists; verified when present. */
  espSig?: string;
  secretTar?: string;
  secretDir?: string;
  pubkey?: string;
  /** Skip signature checks (the signatures, when given, are still copied in). */
  noVerify?: boolean;
  /**
   * Skip only the ESP payload's check (an unsigned ESP tarball, or --esp-dir).
   * Without it, verification (a pubkey) requires a signed ESP tarball too:
   * the ESP holds the bootloader, which runs at boot.
   */
  noVerifyEsp?: boolean;
  /** Refuse an image whose ESP has no /EFI/BOOT/BOOTX64.EFI (the CLI sets it unless --no-bootloader). */
  requireBootloader?: boolean;
  /** Replace an existing OUTPUT that is not a disk image. */
  force?: boolean;
  espSize?: string | number;
  secretSize?: string | number;
  slotSize?: string | number;
  sectorSize?: number;
  defaultSlot?: 'a' | 'b';
  kernelParams?: string;
  seed?: string;
  /** sha256 of every partition in the summary (reads the whole image back). */
  digests?: boolean;
  onProgress?: (p: { partition: string; written: number; size: number; done?: boolean }) => void;
  /** Warnings (e.g. a payload grub.cfg replaced by ours). */
  onWarning?: (msg: string) => void;
}

/** One slot as `buildImage` filled it: label, trusted comment fields of its OS signature, file count and bytes used. */
export interface SlotSummary {
  label: string;
  /** Trusted-comment fields of the slot's psyopsOS.tar.minisig, if any. */
  signature?: Record<string, string>;
  files: number;
  usedBytes: number;
}

/** What `buildImage` wrote: the GPT and partitions, the verified signatures, and the contents of each filesystem. */
export interface BuildSummary extends CreateSummary {
  defaultSlot: string;
  verified: { os?: VerifyResult; esp?: VerifyResult };
  /** Payloads that run at boot but were not verified ("OS tarball …", "ESP payload …"), with why. */
  unverified: string[];
  esp: { label: string; files: number; extraPrograms: string[] };
  secret: { label: string; files: number; usedBytes: number };
  /** What was written into slots A and B (named apart from `show --json`'s `slots`, which reads a disk back). */
  slotsBuilt: SlotSummary[];
  /** Partition GPT name → sha256 of its bytes (with `digests`). */
  digests?: Record<string, string>;
}


/**
 * Build a complete psyopsOS image. Checks every input, key and trusted
 * comment before the first byte is written; the ESP's signature is verified
 * before too, the OS tarball's while the slots are written from it (before
 * any write for a block device); the image appears under its name only when
 * complete and verified (see createImage).
 */
export async function buildImage(o: BuildImageOptions): Promise<BuildSummary> {
  const inputs = await checkInputs(o);
  const entropy = makeEntropy(o.seed);
  const now = buildTime();
  const epoch = sourceDateEpoch();
  const defaultLabel = o.defaultSlot === 'b' ? PSYOPS_NAMES.b : PSYOPS_NAMES.a;
  const verified: BuildSummary['verified'] = {};
  const unverified: string[] = [];
  const espName = o.espTar ? `ESP tarball ${o.espTar}` : o.espDir ? `ESP directory ${o.espDir}` : undefined;
  // The OS tarball is hashed while the slots are written from it (one read instead of two) when
  // OUTPUT is an image file: it appears under its name only after the check (createImage renames
  // it last; a failure removes it). A block device is checked first, as before: a failure inside
  // fill would leave it wiped.
  // The policy (policy.ts) on what the signatures say, verified or not: the right type= and a
  // release version; a fresh image has nothing installed to compare with.
  const policy = (kind: 'os' | 'esp', s: SigInput | undefined) =>
    s && checkRelease({ kind, source: s.path, fields: parseTrustedComment(s.sig.trustedComment), installed: 'nothing', installedName: 'a new image' });
  policy('os', inputs.osSig);
  policy('esp', inputs.espSig);
  let osVerifier: MinisignVerifier | undefined;
  if (!o.noVerify) {
    const pub = await readPublicKeyFile(o.pubkey!);
    const sigNames = { file: o.osTar, sig: inputs.osSig!.path, pubkey: o.pubkey };
    if ((await stat(o.output).catch(() => undefined))?.isBlockDevice()) verified.os = await verifyFile(o.osTar, inputs.osSig!.sig, pub, sigNames);
    else osVerifier = new MinisignVerifier(inputs.osSig!.sig, pub, sigNames); // key id and trusted comment checked here, before any write
    if (inputs.espSig && !o.noVerifyEsp) verified.esp = await verifyFile(o.espTar!, inputs.espSig.sig, pub, { sig: inputs.espSig.path, pubkey: o.pubkey });
    else if (espName) unverified.push(`${espName} (--no-verify-esp)`);
  } else {
    unverified.push(`OS tarball ${o.osTar} (--no-verify)`);
    if (espName) unverified.push(`${espName} (--no-verify)`);
  }

  const partial: Omit<BuildSummary, keyof CreateSummary | 'digests'> = {
    defaultSlot: defaultLabel,
    verified,
    unverified,
    esp: { label: PSYOPS_NAMES.esp, files: 0, extraPrograms: [] },
    secret: { label: PSYOPS_NAMES.secret, files: 0, usedBytes: 0 },
    slotsBuilt: [],
  };

  const fill = async (dev: Device, plan: LayoutPlan, { fresh }: { fresh: boolean }) => {
    const regions = planRegions(dev, plan);
    const planned = (name: string) => plan.partitions.find((p) => p.name === name)!;
    // Say it in the CLI's words before anything is written (the FAT layer would name only bytes).
    const espBytes = planned(PSYOPS_NAMES.esp).sizeBytes;
    const minEsp = fat32.minimumFat32Bytes(plan.sectorSize);
    if (espBytes < minEsp) {
      throw new InputError(
        `--esp-size ${fmtBytes(espBytes)} is too small for FAT32 with ${plan.sectorSize}-byte sectors; use at least --esp-size ${Math.ceil(minEsp / 2 ** 20)}M`,
      );
    }
    for (const [name, option] of [[PSYOPS_NAMES.secret, '--secret-size'], [PSYOPS_NAMES.a, '--slot-size']] as const) {
      const bytes = planned(name).sizeBytes;
      try {
        planGeometry(bytes);
      } catch (e) {
        if (e instanceof InputError) throw new InputError(`${option} ${fmtBytes(bytes)} is too small: ${e.message.replace(/^ext4: region of [^;]*; /, '')}`);
        throw e;
      }
    }
    const part = (name: string) => progressRegion(regions.get(name)!, name, o.onProgress);

    // ESP: payload, then our grub.cfg, grubenv and the ESP signature.
    const esp = part(PSYOPS_NAMES.esp);
    const espTree = o.espTar ? openTarFile(o.espTar) : o.espDir ? readDirTree(o.espDir, { onWarning: o.onWarning }) : emptyTree();
    const installed: string[] = []; // what /psyopsESP.files records, as update-esp would
    const vol = await createFat32(esp, countEntries(espTree, (n) => (partial.esp.files = n), installed), {
      label: PSYOPS_NAMES.esp,
      entropy,
      hiddenSectors: planned(PSYOPS_NAMES.esp).firstLba,
      now,
      sourceDateEpoch: epoch,
      inputName: o.espTar ?? o.espDir ?? 'ESP',
      onLoss: (loss) => o.onWarning?.(`ESP (${o.espTar ?? o.espDir}): ${describeFatLoss(loss)}`),
    });
    if (o.requireBootloader && !(await vol.lookup(BOOTLOADER))) {
      throw new InputError(
        `${o.espTar ? `--esp-tar ${o.espTar}` : o.espDir ? `--esp-dir ${o.espDir}` : 'the ESP payload'}: no ${BOOTLOADER}, so the image would not boot; give a payload with the bootloader, or --no-bootloader`,
      );
    }
    const manifest = (await vol.lookup(ESP_PATHS.manifest)) ? (await vol.readFileBuffer(ESP_PATHS.manifest)).toString('utf8') : undefined;
    const extra = manifest ? extraProgramsFromManifest(manifest, `${o.espTar ?? o.espDir}:${ESP_PATHS.manifest}`) : [];
    partial.esp.extraPrograms = extra.map(([p]) => p);
    const grubCfg = renderGrubCfg({
      slots: [PSYOPS_NAMES.a, PSYOPS_NAMES.b],
      defaultLabel,
      lastUpdated: now,
      kernelParams: o.kernelParams ?? DEFAULT_KERNEL_PARAMS,
      extraPrograms: extra,
    });
    if (await vol.lookup(ESP_PATHS.grubCfg)) o.onWarning?.(`ESP payload had ${ESP_PATHS.grubCfg}; replaced by the generated one`);
    await vol.mkdir('/grub', { recursive: true, mtime: now });
    await vol.writeFile(ESP_PATHS.grubCfg, Buffer.from(grubCfg), { mtime: now });
    await vol.writeFile(ESP_PATHS.grubenv, encodeGrubenv({}), { mtime: now });
    // Only a verified signature: an ESP without one reads as unverified (show: MISSING), never as signed.
    if (inputs.espSig && verified.esp) await vol.writeFile(ESP_PATHS.signature, Buffer.from(inputs.espSig.text), { mtime: now });
    await writeEspFilesList(vol, installed, now);
    done(o, PSYOPS_NAMES.esp, esp);

    // Secret: a tarball, a directory, or an empty filesystem.
    const secret = part(PSYOPS_NAMES.secret);
    const secretTree = o.secretTar ? openTarFile(o.secretTar) : o.secretDir ? readDirTree(o.secretDir, { onWarning: o.onWarning }) : undefined;
    const s = await createExt4(secret, secretTree, { label: PSYOPS_NAMES.secret, entropy, now, sourceDateEpoch: epoch, regionIsZeroed: fresh });
    partial.secret.files = s.files;
    partial.secret.usedBytes = s.usedBlocks * s.blockSize;
    done(o, PSYOPS_NAMES.secret, secret);

    // Slots A and B: the same OS tarball, each with its side file and signature.
    // One pass over the tar feeds both writers (teeEach: bounded, and one failing ends the other).
    const labels = [PSYOPS_NAMES.a, PSYOPS_NAMES.b];
    const slots = labels.map((label) => part(label));
    const tap = osVerifier ? new HashTap(readFileChunks(o.osTar), osVerifier) : undefined;
    const results = await teeEach(
      requireOsFiles(tap ? readTarTree(tap.chunks(), o.osTar) : openTarFile(o.osTar), o.osTar),
      labels.map((label, i) => (tree: AsyncIterable<TreeEntry>) =>
        writeSlot(slots[i], tree, {
          label,
          signatureText: inputs.osSig?.text,
          verified: !o.noVerify,
          onWarning: i === 0 ? o.onWarning : undefined,
          entropy,
          now,
          sourceDateEpoch: epoch,
          regionIsZeroed: fresh,
        }),
      ),
    ).catch(async (e: unknown) => {
      // An altered tarball is reported as such, not as whatever its damage broke first.
      if (tap) {
        try {
          await tap.drain();
        } finally {
          await tap.close();
        }
        osVerifier!.finish();
      }
      throw e;
    });
    if (tap) {
      await tap.drain(); // the bytes after the tar's end marker are signed too
      verified.os = osVerifier!.finish(); // throws on any difference: no image appears
    }
    for (const [i, label] of labels.entries()) {
      const r = results[i];
      partial.slotsBuilt.push({
        label,
        signature: inputs.osSig ? parseTrustedComment(inputs.osSig.sig.trustedComment) : undefined,
        files: r.files,
        usedBytes: r.usedBlocks * r.blockSize,
      });
      done(o, label, slots[i]);
    }
  };

  const created = await createImage({
    output: o.output,
    espSize: o.espSize,
    secretSize: o.secretSize,
    slotSize: o.slotSize,
    sectorSize: o.sectorSize,
    entropy,
    fill,
    force: o.force,
  });
  const summary: BuildSummary = { ...created, ...partial };
  if (o.digests) summary.digests = await partitionDigests(o.output);
  return summary;
}

interface SigInput {
  path: string;
  text: string;
  sig: ReturnType<typeof decodeSignature>;
}

/** The UEFI fallback bootloader path on the ESP (FAT lookups ignore case). */
const BOOTLOADER = '/EFI/BOOT/BOOTX64.EFI';

/** Every input exists and has the right kind; signatures are found and parse. No writes. */
async function checkInputs(o: BuildImageOptions): Promise<{ osSig?: SigInput; espSig?: SigInput }> {
  await mustBeFile(o.osTar, '--os-tar', 'the OS tarball (kernel, initramfs, modloop, squashfs…)');
  if (o.espTar && o.espDir) throw new InputError('give --esp-tar or --esp-dir, not both');
  if (o.secretTar && o.secretDir) throw new InputError('give --secret-tar or --secret-dir, not both');
  if (o.espTar) await mustBeFile(o.espTar, '--esp-tar', 'the ESP tarball');
  if (o.secretTar) await mustBeFile(o.secretTar, '--secret-tar', 'the secrets tarball');
  if (o.espDir) await mustBeDir(o.espDir, '--esp-dir');
  if (o.secretDir) await mustBeDir(o.secretDir, '--secret-dir');
  const osSigPath = o.osSig ?? (existsSync(`${o.osTar}.minisig`) ? `${o.osTar}.minisig` : undefined);
  const espSigPath = o.espSig ?? (o.espTar && existsSync(`${o.espTar}.minisig`) ? `${o.espTar}.minisig` : undefined);
  if (o.espSig && !o.espTar) throw new InputError('--esp-sig needs --esp-tar (a directory payload has no signature)');
  if (!o.noVerify) {
    if (!o.pubkey) throw new InputError('no --pubkey: give the minisign public key that signed the OS tarball, or --no-verify to build from unsigned inputs');
    if (!osSigPath) {
      throw new InputError(`${o.osTar}: no signature (${o.osTar}.minisig not found); give --os-sig FILE, sign it with "diskimg sign", or pass --no-verify`);
    }
    if (!o.noVerifyEsp) {
      if (o.espTar && !espSigPath) {
        throw new InputError(
          `${o.espTar}: the ESP tarball has no signature (${o.espTar}.minisig not found) and its bootloader runs at boot; give --esp-sig FILE, sign it with "diskimg sign ${o.espTar} --seckey KEY --trusted type=psyopsESP", or pass --no-verify-esp`,
        );
      }
      if (o.espDir) {
        throw new InputError(`--esp-dir ${o.espDir}: a directory has no signature to verify and its bootloader runs at boot; give a signed --esp-tar, or pass --no-verify-esp`);
      }
    }
  }
  if (o.requireBootloader && !o.espTar && !o.espDir) {
    throw new InputError(`no ESP payload: the image would have no ${BOOTLOADER} and would not boot; give --esp-tar FILE or --esp-dir DIR, or --no-bootloader`);
  }
  await refuseOutputAsInput(o);
  return { osSig: osSigPath ? await readSig(osSigPath) : undefined, espSig: espSigPath ? await readSig(espSigPath) : undefined };
}

async function readSig(path: string): Promise<SigInput> {
  const text = await readFile(path, 'utf8').catch(() => {
    throw new InputError(`${path}: cannot read the signature file`);
  });
  return { path, text, sig: decodeSignature(text, path) };
}

async function mustBeFile(path: string, option: string, what: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new InputError(`${option} ${path}: no such file (${what})`);
  if (!st.isFile()) throw new InputError(`${option} ${path}: not a regular file (${what})`);
}

async function mustBeDir(path: string, option: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new InputError(`${option} ${path}: no such directory`);
  if (!st.isDirectory()) throw new InputError(`${option} ${path}: not a directory (give a directory, or use the tarball option)`);
}

/**
 * OUTPUT must not be one of the inputs (it would be replaced by the image)
 * nor lie inside an input directory (it would be read while being written).
 */
async function refuseOutputAsInput(o: BuildImageOptions): Promise<void> {
  const out = await stat(o.output).catch(() => undefined);
  const files: [string, string | undefined][] = [
    ['--os-tar', o.osTar],
    ['--os-sig', o.osSig ?? `${o.osTar}.minisig`],
    ['--esp-tar', o.espTar],
    ['--esp-sig', o.espSig ?? (o.espTar ? `${o.espTar}.minisig` : undefined)],
    ['--secret-tar', o.secretTar],
    ['--pubkey', o.pubkey],
  ];
  if (out?.isFile() || out?.isBlockDevice()) {
    for (const [option, path] of files) {
      if (path === undefined) continue;
      const st = await stat(path).catch(() => undefined);
      if (st && st.dev === out.dev && st.ino === out.ino) {
        throw new InputError(`${o.output}: is the ${option} input ${path}; the image would replace it. Give another OUTPUT`);
      }
    }
  }
  const outDir = await realpath(dirname(resolve(o.output))).catch(() => undefined);
  if (outDir === undefined) return;
  for (const [option, dir] of [['--esp-dir', o.espDir], ['--secret-dir', o.secretDir]] as const) {
    if (dir === undefined) continue;
    const d = await realpath(dir).catch(() => undefined);
    if (d !== undefined && (outDir === d || outDir.startsWith(d + sep))) {
      throw new InputError(`${o.output}: lies inside the ${option} input ${dir}; the image would be read while written. Give an OUTPUT outside it`);
    }
  }
}

/**
 * Feeds every byte of a file to a verifier exactly once, in order, as the tar reader pulls it
 * (synchronously: the reused read buffers are hashed before the next read); `drain` hashes what
 * the reader left (padding after the end marker).
 */
class HashTap {
  private readonly it: AsyncIterator<Buffer>;
  constructor(src: AsyncIterable<Buffer>, private readonly verifier: MinisignVerifier) {
    this.it = src[Symbol.asyncIterator]();
  }
  async *chunks(): AsyncGenerator<Buffer> {
    for (let r = await this.it.next(); !r.done; r = await this.it.next()) {
      this.verifier.update(r.value);
      yield r.value;
    }
  }
  async drain(): Promise<void> {
    for (let r = await this.it.next(); !r.done; r = await this.it.next()) this.verifier.update(r.value);
  }
  async close(): Promise<void> {
    await this.it.return?.(undefined).catch(() => {});
  }
}

/** Counts the files (for the summary) and records the paths FAT stores as files (hard links are copies). */
async function* countEntries(tree: AsyncIterable<TreeEntry>, set: (n: number) => void, paths: string[]): AsyncGenerator<TreeEntry> {
  let n = 0;
  for await (const e of tree) {
    if (e.type === 'file') set(++n);
    if (e.type === 'file' || e.type === 'hardlink') paths.push(`/${e.path}`);
    yield e;
  }
}

async function* emptyTree(): AsyncGenerator<TreeEntry> {}

function progressRegion(r: Region, name: string, onProgress: BuildImageOptions['onProgress']): Device {
  if (!onProgress) return r;
  return new CountingDevice(r, (written) => onProgress({ partition: name, written, size: r.size }));
}

function done(o: BuildImageOptions, partition: string, dev: Device): void {
  if (o.onProgress && dev instanceof CountingDevice) o.onProgress({ partition, written: dev.written, size: dev.size, done: true });
}

/** sha256 of each partition's bytes, read back in 1 MiB pieces. */
async function partitionDigests(path: string): Promise<Record<string, string>> {
  const disk = await openDisk(path);
  try {
    const out: Record<string, string> = {};
    const buf = Buffer.alloc(1 << 20);
    for (const p of disk.partitions) {
      const h = createHash('sha256');
      const r = p.region();
      for (let off = 0; off < r.size; off += buf.length) {
        const n = Math.min(buf.length, r.size - off);
        await r.read(off, buf.subarray(0, n));
        h.update(buf.subarray(0, n));
      }
      out[p.name] = h.digest('hex');
    }
    return out;
  } finally {
    await disk.close();
  }
}
