/**
 * `diskimg update-esp`: replace the ESP payload (GRUB's EFI program, memtest,
 * other EFI programs, manifest.json) on a live FAT32 ESP from a signed
 * `psyopsESP` tarball, keeping the boot state.
 *
 * Before the first write: the whole tarball is read (an ESP payload is a few
 * MiB; it is bounded by the partition's size) while its signature is checked,
 * `type=psyopsESP` is checked, it must hold EFI/BOOT/BOOTX64.EFI, and every
 * new or changed file must fit in the free space (new data never overwrites
 * old data).
 *
 * Crash safety: the ESP is one FAT32 partition, so there is no single switch
 * for a whole payload. Instead every step is one crash-safe FAT operation
 * (writeFile: data, FAT, then the directory entry; replaceFile: new clusters,
 * then one directory-sector switch, then the old clusters freed), in an order
 * where every prefix boots:
 *   1. new and changed payload files other than BOOTX64.EFI (each whole, old
 *      or new; the old grub.cfg still names only files that exist),
 *   2. /EFI/BOOT/BOOTX64.EFI (old or new GRUB, never half of one),
 *   3. /grub/grub.cfg re-rendered (new extra_programs; default, timeout,
 *      kernel parameters and the boot counting block kept) — it names only
 *      files written in 1,
 *   4. /psyopsESP.tar.minisig and /psyopsESP.files (what we installed),
 *   5. files the old payload had and the new one does not (they are no longer
 *      referenced), then their emptied directories.
 * /grub/grubenv is never written. A cut leaves at worst lost clusters (fsck.fat
 * frees them). Assumes a standalone GRUB (modules inside BOOTX64.EFI, as
 * psyopsOS and grub-mkstandalone build it): a GRUB that loads modules from the
 * ESP could, after a cut in step 1, see new modules with the old core.
 */
import {
  Fat32Volume,
  FileDevice,
  findFilesystemPartition,
  openDisk,
  openUpdateInput,
  readSmallInput,
  readTarTree,
  type Device,
  type MountSources,
} from '@diskimg/diskimage/internal';
import {
  extraProgramsFromManifest,
  parseGrubCfg,
  renderGrubCfg,
  slotEntryLabel,
  withCountingBlock,
  DEFAULT_KERNEL_PARAMS,
  type ParsedGrubCfg,
} from '@diskimg/grubcfg/internal';
import { buildTime, ESP_PATHS, fmtBytes, InputError, PSYOPS_NAMES } from '@diskimg/partitions/internal';
import { assertEspNotMounted } from './boot-state.js';
import { decodeSignature, MAX_SIGNATURE_FILE_BYTES, type Signature } from './minisign/signature.js';
import { parseTrustedComment } from './minisign/trusted.js';
import { MinisignVerifier, readPublicKeyFile } from './minisign/verify.js';
import { resolveRelease } from './repo/client.js';
import { checkRelease, type Installed } from './policy.js';

/** What update-esp installed, one path per line: the next update-esp removes what the new payload drops. */
export const ESP_FILES_LIST = '/psyopsESP.files';
export const ESP_BOOT_PROGRAM = '/EFI/BOOT/BOOTX64.EFI';
/** Files on the ESP that are ours, never the payload's. */
const MANAGED = new Set([ESP_PATHS.grubCfg, ESP_PATHS.grubenv, ESP_PATHS.signature, ESP_FILES_LIST].map((p) => p.toLowerCase()));

/** Options of `updateEsp` (the flags of `diskimg update-esp`). */
export interface EspUpdateOptions {
  disk: string | Device;
  /** The ESP tarball: file, http(s) URL or "-" (standard input) … */
  espTar?: string;
  /** … its signature (default ESP_TAR.minisig; required with "-") … */
  espSig?: string;
  /** … or a repository and version (default the latest pointer). */
  repo?: string;
  version?: string;
  fwtype?: string;
  pubkey?: string;
  noVerify?: boolean;
  /** Install a version older than the ESP's (or over an ESP whose version is unknown). */
  allowDowngrade?: boolean;
  dryRun?: boolean;
  stdin?: NodeJS.ReadableStream;
  mountSources?: MountSources;
  /** Called after each write step (tests). */
  onStep?: (step: string) => void;
}

/** What `updateEsp` did: versions before and after, files added, changed and removed, and the space it needed. */
export interface EspUpdateResult {
  disk: string;
  dryRun: boolean;
  /** Nothing to do: the ESP already holds exactly this payload and signature. */
  upToDate: boolean;
  previousVersion: string | null;
  newVersion: string | null;
  verified: boolean;
  added: string[];
  changed: string[];
  unchanged: number;
  removed: string[];
  extraPrograms: string[];
  /** Bytes the new and changed files need (before old ones are freed) and the ESP's free bytes. */
  needBytes: number;
  freeBytes: number;
  warnings: string[];
}

interface PayloadFile {
  path: string; // "/EFI/BOOT/BOOTX64.EFI"
  data: Buffer;
  mtime: number;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** Replace the ESP's payload (kernel programs, grub.cfg extras) from a signed ESP tarball or repository release, keeping the boot state (`diskimg update-esp`). */
export async function updateEsp(o: EspUpdateOptions): Promise<EspUpdateResult> {
  const warnings: string[] = [];
  if (!!o.espTar === !!o.repo) throw new InputError('give --esp-tar FILE|URL|- or --repo URL, one of them');
  if (!o.noVerify && !o.pubkey) throw new InputError('no --pubkey: give the minisign public key that signs your ESP releases, or --no-verify');
  let espTar = o.espTar;
  let sigSpec = o.espSig;
  let expect: Record<string, string> = {};
  if (o.repo) {
    const rel = await resolveRelease({ repo: o.repo, kind: 'esp', platform: o.fwtype, version: o.version, pubkey: o.noVerify ? undefined : o.pubkey });
    espTar = rel.artifact;
    sigSpec = rel.signature;
    expect = { filename: rel.filename, version: rel.version };
  }
  sigSpec ??= espTar === '-' ? undefined : `${espTar}.minisig`;
  if (!sigSpec && !o.noVerify) throw new InputError('--esp-tar -: give --esp-sig FILE|URL (the signature cannot follow the tarball on standard input)');

  // ---- the signature (before the disk is opened) ----
  let sig: Signature | undefined;
  let sigText: string | undefined;
  if (sigSpec && (!o.noVerify || o.espSig || o.repo || (await exists(sigSpec)))) {
    const raw = await readSmallInput(sigSpec, { maxBytes: MAX_SIGNATURE_FILE_BYTES }).catch((e) => {
      if (!o.espSig && !o.repo && e instanceof InputError) throw new InputError(`${espTar}: no signature at ${sigSpec}; give --esp-sig FILE|URL, or --no-verify`);
      throw e;
    });
    sigText = raw.toString('utf8');
    sig = decodeSignature(raw, sigSpec);
  }
  const verifier = o.noVerify ? undefined : new MinisignVerifier(sig!, await readPublicKeyFile(o.pubkey!), { file: espTar, sig: sigSpec, pubkey: o.pubkey });
  const fields = sig ? parseTrustedComment(sig.trustedComment) : undefined;
  const sigName = sig && sigSpec ? sigSpec : `${espTar} (no signature)`;
  // type= now; the version against the ESP's once the disk is open (policy.ts).
  checkRelease({ kind: 'esp', source: sigName, fields, installed: 'nothing', installedName: 'the ESP', allowDowngrade: true });
  for (const [k, v] of Object.entries(expect)) {
    if (fields?.[k] !== v) throw new InputError(`${sigSpec}: the trusted comment says ${k}=${fields?.[k] ?? '(none)'}, expected ${k}=${v}; refused`);
  }
  // Only a verified signature goes on the ESP: an ESP without one reads as unverified (show: MISSING).
  const storeSig = verifier ? sigText : undefined;

  const disk = await openDisk(o.disk, { writable: !o.dryRun });
  try {
    const part = await findFilesystemPartition(disk, PSYOPS_NAMES.esp);
    const isBlock = disk.device instanceof FileDevice && disk.device.isBlockDevice;
    if (disk.path && isBlock) assertEspNotMounted(disk.path, part.number, o.mountSources);
    // Opened for editing even for --dry-run (that loads the FAT to count free clusters; nothing is written then).
    const vol = await Fat32Volume.open(part.region());

    // ---- the whole payload, verified, in memory (bounded by the partition) ----
    const payload = await readPayload(espTar!, part.size, verifier, o.stdin, warnings);
    if (!payload.some((f) => f.path.toLowerCase() === ESP_BOOT_PROGRAM.toLowerCase())) {
      throw new InputError(`${espTar}: no ${ESP_BOOT_PROGRAM.slice(1)} in the ESP payload; the firmware would find nothing to boot`);
    }
    const manifest = payload.find((f) => f.path.toLowerCase() === ESP_PATHS.manifest.toLowerCase());
    const extra = manifest ? extraProgramsFromManifest(manifest.data.toString('utf8'), `${espTar}:${ESP_PATHS.manifest}`) : [];
    for (const [p] of extra) {
      if (!payload.some((f) => f.path.toLowerCase() === (p.startsWith('/') ? p : `/${p}`).toLowerCase())) {
        warnings.push(`manifest.json names ${p}, which the payload does not hold; its menu entry will fail`);
      }
    }

    // ---- the plan ----
    const cfgEntry = await vol.lookup(ESP_PATHS.grubCfg);
    if (!cfgEntry || cfgEntry.isDirectory) throw new InputError(`${disk.path ?? 'disk'}: ${PSYOPS_NAMES.esp}:${ESP_PATHS.grubCfg} not found; this ESP was not made by diskimg create or neuralupgrade`);
    const cfgText = (await vol.readFileBuffer(ESP_PATHS.grubCfg)).toString('utf8');
    const cfg = parseGrubCfg(cfgText, `${PSYOPS_NAMES.esp}:${ESP_PATHS.grubCfg}`);
    const oldSigEntry = await vol.lookup(ESP_PATHS.signature);
    const oldSig = oldSigEntry && !oldSigEntry.isDirectory ? (await vol.readFileBuffer(ESP_PATHS.signature)).toString('utf8') : undefined;
    const installed = installedEspVersion(oldSig);
    const previousVersion = installed.version;
    checkRelease({ kind: 'esp', source: sigName, fields, installed, installedName: `the ESP (${PSYOPS_NAMES.esp}:${ESP_PATHS.signature})`, allowDowngrade: o.allowDowngrade });
    const listEntry = await vol.lookup(ESP_FILES_LIST);
    const oldList = listEntry && !listEntry.isDirectory ? (await vol.readFileBuffer(ESP_FILES_LIST)).toString('utf8').split('\n').filter(Boolean) : undefined;

    const added: PayloadFile[] = [];
    const changed: PayloadFile[] = [];
    let unchanged = 0;
    for (const f of payload) {
      const e = await vol.lookup(f.path);
      if (e?.isDirectory) throw new InputError(`${espTar}: ${f.path} is a file in the payload and a directory on the ESP`);
      if (!e) added.push(f);
      else if (e.size === f.data.length && (await vol.readFileBuffer(f.path)).equals(f.data)) unchanged++;
      else changed.push(f);
    }
    const newPaths = new Set(payload.map((f) => f.path.toLowerCase()));
    const removed = (oldList ?? []).filter((p) => !newPaths.has(p.toLowerCase()) && !MANAGED.has(p.toLowerCase()));
    if (!oldList) warnings.push(`no ${ESP_FILES_LIST} on the ESP (made by create or an older tool): files the new payload drops are left in place`);

    const newCfg = renderCfg(cfg, extra, cfgText);
    const newList = payload.map((f) => f.path).join('\n') + '\n';
    const upToDate = added.length === 0 && changed.length === 0 && removed.length === 0 && storeSig === oldSig && oldList?.join('\n') + '\n' === newList;
    const cs = vol.geometry.clusterSize;
    const clusters = (n: number) => Math.ceil(n / cs);
    const needClusters =
      [...added, ...changed].reduce((s, f) => s + clusters(f.data.length), 0) + clusters(newCfg.length) + clusters(storeSig?.length ?? 0) + clusters(newList.length) + 16;
    const freeClusters = vol.fat.freeCount;
    const result: EspUpdateResult = {
      disk: disk.path ?? 'disk',
      dryRun: !!o.dryRun,
      upToDate,
      previousVersion,
      newVersion: fields?.version ?? null,
      verified: !!verifier,
      added: added.map((f) => f.path),
      changed: changed.map((f) => f.path),
      unchanged,
      removed,
      extraPrograms: extra.map(([p]) => p),
      needBytes: needClusters * cs,
      freeBytes: freeClusters * cs,
      warnings,
    };
    if (needClusters > freeClusters) {
      throw new InputError(
        `${espTar}: the new and changed files need ${fmtBytes(needClusters * cs)} free on ${PSYOPS_NAMES.esp} (old files are freed only after the switch), it has ${fmtBytes(freeClusters * cs)}; use a larger --esp-size or a smaller payload`,
      );
    }
    if (o.dryRun || upToDate) return result;

    // ---- writes, in the order the header explains ----
    const now = buildTime();
    const step = (s: string) => o.onStep?.(s);
    const put = async (f: PayloadFile, exists: boolean) => {
      const dir = f.path.slice(0, f.path.lastIndexOf('/'));
      if (dir) await vol.mkdir(dir, { recursive: true, mtime: now });
      if (exists) await vol.replaceFile(f.path, f.data, { mtime: f.mtime });
      else await vol.writeFile(f.path, f.data, { mtime: f.mtime });
      step(f.path);
    };
    const isBoot = (f: PayloadFile) => f.path.toLowerCase() === ESP_BOOT_PROGRAM.toLowerCase();
    for (const f of added) if (!isBoot(f)) await put(f, false);
    for (const f of changed) if (!isBoot(f)) await put(f, true);
    for (const f of [...added, ...changed]) if (isBoot(f)) await put(f, changed.includes(f));
    if (newCfg !== cfgText) await vol.replaceFile(ESP_PATHS.grubCfg, Buffer.from(newCfg, 'utf8'), { mtime: now });
    step(ESP_PATHS.grubCfg);
    if (storeSig !== undefined && storeSig !== oldSig) {
      if (oldSig !== undefined) await vol.replaceFile(ESP_PATHS.signature, Buffer.from(storeSig), { mtime: now });
      else await vol.writeFile(ESP_PATHS.signature, Buffer.from(storeSig), { mtime: now });
      step(ESP_PATHS.signature);
    } else if (storeSig === undefined && oldSig !== undefined) {
      await vol.unlink(ESP_PATHS.signature); // the old signature does not vouch for an unverified payload
      step(`-${ESP_PATHS.signature}`);
    }
    if (oldList) await vol.replaceFile(ESP_FILES_LIST, Buffer.from(newList), { mtime: now });
    else await vol.writeFile(ESP_FILES_LIST, Buffer.from(newList), { mtime: now });
    step(ESP_FILES_LIST);
    for (const p of removed) {
      const e = await vol.lookup(p);
      if (e && !e.isDirectory) await vol.unlink(p);
      step(`-${p}`);
    }
    await removeEmptyDirs(vol, removed, newPaths);
    await vol.flush();
    return result;
  } finally {
    await disk.close();
  }
}

/** The ESP's installed version for the policy: from its signature, or why it is unknown. */
function installedEspVersion(sigText: string | undefined): Installed & object {
  if (sigText === undefined) return { version: null, why: `no ${ESP_PATHS.signature}: written unverified or by another tool` };
  try {
    const v = parseTrustedComment(decodeSignature(sigText, ESP_PATHS.signature).trustedComment).version;
    return v === undefined ? { version: null, why: `${ESP_PATHS.signature} has no version=` } : { version: v };
  } catch (e) {
    return { version: null, why: (e as Error).message };
  }
}

/** grub.cfg for the new payload: the old one's slots, default, timeout, kernel parameters and counting block; the new extra programs. */
function renderCfg(cfg: ParsedGrubCfg, extra: Array<[string, string]>, oldText: string): string {
  const slots = cfg.slots.map(slotEntryLabel);
  const def = cfg.defaultLabel;
  if (slots.length === 0 || !def) {
    throw new InputError(`${PSYOPS_NAMES.esp}:${ESP_PATHS.grubCfg}: no slot entries or no default; fix the boot configuration first (diskimg set-default)`);
  }
  const words = (cfg.slots[0]!.cmdline ?? []).filter((w) => w !== 'ro' && !w.startsWith('psyopsos='));
  const kernelParams = cfg.slots[0]!.cmdline ? words.map((w) => (/\s/.test(w) ? w.replace(/^([^=]*=)?(.*)$/, '$1"$2"') : w)).join(' ') : DEFAULT_KERNEL_PARAMS;
  let text = renderGrubCfg({ slots, defaultLabel: def, lastUpdated: buildTime(), timeout: cfg.timeout, kernelParams, extraPrograms: extra });
  if (cfg.countingBlock) text = withCountingBlock(text, { name: ESP_PATHS.grubCfg });
  // Same payload and settings: keep the old bytes (only last_updated would differ).
  const strip = (s: string) => s.replace(/last_updated=\S+/g, '').replace(/last updated: \S+/g, '');
  return strip(text) === strip(oldText) ? oldText : text;
}

async function readPayload(
  spec: string,
  limit: number,
  verifier: MinisignVerifier | undefined,
  stdin: NodeJS.ReadableStream | undefined,
  warnings: string[],
): Promise<PayloadFile[]> {
  const input = await openUpdateInput(spec, { stdin });
  if (input.size !== undefined && input.size > limit) throw new InputError(`${input.name}: ${fmtBytes(input.size)}, larger than the ESP (${fmtBytes(limit)})`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of input.stream) {
    n += c.length;
    if (n > limit) throw new InputError(`${input.name}: larger than the ESP (${fmtBytes(limit)})`);
    verifier?.update(c);
    chunks.push(c);
  }
  verifier?.finish(); // throws when a byte differs: nothing was written yet
  const files: PayloadFile[] = [];
  let skipped = 0;
  for await (const e of readTarTree((async function* () { yield Buffer.concat(chunks, n); })(), input.name)) {
    if (e.type === 'directory') continue;
    if (e.type !== 'file') {
      skipped++;
      for await (const _ of e.body ?? []) void _;
      continue;
    }
    const parts: Buffer[] = [];
    for await (const b of e.body ?? []) parts.push(b);
    const path = `/${e.path}`;
    if (MANAGED.has(path.toLowerCase())) {
      if (path.toLowerCase() === ESP_PATHS.grubCfg) warnings.push(`ESP payload had ${ESP_PATHS.grubCfg}; replaced by the generated one`);
      else if (path.toLowerCase() !== ESP_PATHS.grubenv) warnings.push(`ESP payload had ${path}; ignored (diskimg writes it)`);
      continue;
    }
    files.push({ path, data: Buffer.concat(parts), mtime: Math.floor(e.mtime) });
  }
  if (skipped) warnings.push(`${input.name}: ${skipped} links, devices or FIFOs skipped (FAT32 cannot hold them)`);
  return files;
}

async function removeEmptyDirs(vol: Fat32Volume, removed: string[], keep: Set<string>): Promise<void> {
  const dirs = new Set<string>();
  for (const p of removed) for (let d = p.slice(0, p.lastIndexOf('/')); d; d = d.slice(0, d.lastIndexOf('/'))) dirs.add(d);
  const inUse = (d: string) => [...keep].some((k) => k.startsWith(`${d.toLowerCase()}/`));
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    if (inUse(d) || d.toLowerCase() === '/grub' || d.toLowerCase() === '/efi' || d.toLowerCase() === '/efi/boot') continue;
    const e = await vol.lookup(d);
    if (e?.isDirectory && (await vol.readdir(d)).length === 0) await vol.unlink(d);
  }
}

async function exists(spec: string): Promise<boolean> {
  if (isUrl(spec)) return true;
  const { stat } = await import('node:fs/promises');
  return (await stat(spec).catch(() => undefined))?.isFile() ?? false;
}
