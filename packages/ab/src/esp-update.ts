/**
 * `diskimg update-esp`: replace the ESP payload (GRUB's EFI program, memtest,
 * other EFI programs, manifest.json) on a live FAT32 ESP from a signed
 * `psyopsESP` tarball, keeping the boot state.
 *
 * Before the first write: the tarball as it arrives (at most the partition's
 * size; compressed or not) is kept while its signature is checked; then a
 * first pass over it plans: `type=psyopsESP`, it must hold EFI/BOOT/BOOTX64.EFI,
 * each file's declared size is counted before its body is read (a payload
 * whose files add up to more than the partition stops there, so a small gzip
 * never inflates beyond it), files already on the ESP are compared as they
 * stream, and every new or changed file must fit in the free space (new data
 * never overwrites old data). The second pass streams each new or changed
 * file into reserved free clusters, as `create` does; no file is ever held
 * whole in memory, decompressed or not.
 *
 * Crash safety: the ESP is one FAT32 partition, so there is no single switch
 * for a whole payload. The data goes first into free clusters (nothing
 * references them yet); then every step is one crash-safe FAT operation
 * (commitFile: the chain into both FATs, then the directory entry, or one
 * directory-sector switch and the old clusters freed), in an order where
 * every prefix boots:
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
 * frees them) and FAT copies that differ; the volume's first edit of the next
 * run makes the copies equal again (Fat32Volume.repairFatCopies). Assumes a standalone GRUB (modules inside BOOTX64.EFI, as
 * psyopsOS and grub-mkstandalone build it): a GRUB that loads modules from the
 * ESP could, after a cut in step 1, see new modules with the old core.
 */
import {
  drain,
  Fat32Volume,
  FileDevice,
  findFilesystemPartition,
  openDisk,
  openUpdateInput,
  readSmallInput,
  readTarTree,
  validateTree,
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
import { ESP_FILES_LIST, isManagedEspPath, MAX_ESP_FILES_LIST_BYTES, parseEspFilesList, renderEspFilesList, writeEspFilesList } from './esp-files.js';
import { checkRelease, type Installed } from './policy.js';

export { ESP_FILES_LIST } from './esp-files.js';
export const ESP_BOOT_PROGRAM = '/EFI/BOOT/BOOTX64.EFI';
/** manifest.json is read whole (its extra programs); a bigger one is not a manifest. */
const MAX_MANIFEST_BYTES = 1 << 20;
const MAX_GRUB_CFG_BYTES = 1 << 20;

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
  size: number;
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

    // ---- the ESP as it is, and the version policy (before a byte of the payload is read) ----
    const cfgEntry = await vol.lookup(ESP_PATHS.grubCfg);
    if (!cfgEntry || cfgEntry.isDirectory) throw new InputError(`${disk.path ?? 'disk'}: ${PSYOPS_NAMES.esp}:${ESP_PATHS.grubCfg} not found; this ESP was not made by diskimg create or neuralupgrade`);
    const cfgText = (await vol.readFileBuffer(ESP_PATHS.grubCfg, MAX_GRUB_CFG_BYTES)).toString('utf8');
    const cfg = parseGrubCfg(cfgText, `${PSYOPS_NAMES.esp}:${ESP_PATHS.grubCfg}`);
    const oldSigEntry = await vol.lookup(ESP_PATHS.signature);
    const oldSig = oldSigEntry && !oldSigEntry.isDirectory ? (await vol.readFileBuffer(ESP_PATHS.signature, MAX_SIGNATURE_FILE_BYTES)).toString('utf8') : undefined;
    // An ESP with no boot program and no signature (create --no-bootloader) holds no release to roll back.
    const bootEntry = oldSig === undefined ? await vol.lookup(ESP_BOOT_PROGRAM) : undefined;
    const installed: Installed = oldSig === undefined && !bootEntry ? 'nothing' : installedEspVersion(oldSig);
    const previousVersion = installed === 'nothing' ? null : installed.version;
    checkRelease({ kind: 'esp', source: sigName, fields, installed, installedName: `the ESP (${PSYOPS_NAMES.esp}:${ESP_PATHS.signature})`, allowDowngrade: o.allowDowngrade });

    // ---- the tarball as it arrived, verified (bounded by the partition) ----
    const input = await readVerified(espTar!, part.size, verifier, o.stdin);

    // ---- the plan: a first pass that writes nothing ----
    const listEntry = await vol.lookup(ESP_FILES_LIST);
    const oldList = listEntry && !listEntry.isDirectory ? parseEspFilesList((await vol.readFileBuffer(ESP_FILES_LIST, MAX_ESP_FILES_LIST_BYTES)).toString('utf8')) : undefined;

    const plan = await planPayload(vol, input, part.size, warnings);
    const { payload, added, changed } = plan;
    if (!payload.some((f) => f.path.toLowerCase() === ESP_BOOT_PROGRAM.toLowerCase())) {
      throw new InputError(`${espTar}: no ${ESP_BOOT_PROGRAM.slice(1)} in the ESP payload; the firmware would find nothing to boot`);
    }
    const extra = plan.manifest ? extraProgramsFromManifest(plan.manifest.toString('utf8'), `${espTar}:${ESP_PATHS.manifest}`) : [];
    for (const [p] of extra) {
      if (!payload.some((f) => f.path.toLowerCase() === (p.startsWith('/') ? p : `/${p}`).toLowerCase())) {
        warnings.push(`manifest.json names ${p}, which the payload does not hold; its menu entry will fail`);
      }
    }
    const newPaths = new Set(payload.map((f) => f.path.toLowerCase()));
    const removed = (oldList ?? []).filter((p) => !newPaths.has(p.toLowerCase()) && !isManagedEspPath(p));
    if (!oldList) warnings.push(`no ${ESP_FILES_LIST} on the ESP (made by an older tool): files the new payload drops are left in place`);

    const newCfg = renderCfg(cfg, extra, cfgText);
    const newList = renderEspFilesList(payload.map((f) => f.path));
    const upToDate =
      added.length === 0 && changed.length === 0 && removed.length === 0 && storeSig === oldSig && oldList !== undefined && renderEspFilesList(oldList) === newList;
    const cs = vol.geometry.clusterSize;
    const clusters = (n: number) => Math.ceil(n / cs);
    const needClusters =
      [...added, ...changed].reduce((s, f) => s + clusters(f.size), 0) + clusters(newCfg.length) + clusters(storeSig?.length ?? 0) + clusters(newList.length) + plan.newDirs + 16;
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
      unchanged: plan.unchanged,
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
    if (o.dryRun) return result;
    // An earlier run cut between the two FAT copies: make them equal (also when nothing else is written).
    const fixed = await vol.repairFatCopies();
    if (fixed) warnings.push(`the FAT copies of ${PSYOPS_NAMES.esp} differed in ${fixed} sector${fixed === 1 ? '' : 's'} (an interrupted earlier write); copied the first FAT over the others`);
    if (upToDate) return result;

    // ---- the data: a second pass streams each new or changed file into reserved free clusters ----
    const reserved = await streamData(vol, input, [...added, ...changed]);

    // ---- then each file made visible, in the order the header explains ----
    const now = buildTime();
    const step = (s: string) => o.onStep?.(s);
    const put = async (f: PayloadFile) => {
      const dir = f.path.slice(0, f.path.lastIndexOf('/'));
      if (dir) await vol.mkdir(dir, { recursive: true, mtime: now });
      await vol.commitFile(f.path, reserved.get(f)!, f.size, { mtime: f.mtime });
      step(f.path);
    };
    const isBoot = (f: PayloadFile) => f.path.toLowerCase() === ESP_BOOT_PROGRAM.toLowerCase();
    for (const f of added) if (!isBoot(f)) await put(f);
    for (const f of changed) if (!isBoot(f)) await put(f);
    for (const f of [...added, ...changed]) if (isBoot(f)) await put(f);
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
    await writeEspFilesList(vol, payload.map((f) => f.path), now);
    step(ESP_FILES_LIST);
    for (const p of removed) {
      const e = await vol.lookup(p);
      if (e && !e.isDirectory) await vol.unlink(p);
      step(`-${p}`);
    }
    // Directories the removed files leave empty, deepest first; never /grub, /EFI, /EFI/BOOT.
    const keep = (parts: string[]) => parts.length <= 2 && ['grub', 'efi', 'efi/boot'].includes(parts.join('/').toLowerCase());
    for (const p of removed) await vol.removeEmptyParents(p, keep);
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

/** The tarball's bytes as they arrived (compressed or not), at most `limit`, hashed into the verifier and checked before anything uses them. */
interface VerifiedInput {
  name: string;
  chunks: Buffer[];
}

async function readVerified(spec: string, limit: number, verifier: MinisignVerifier | undefined, stdin: NodeJS.ReadableStream | undefined): Promise<VerifiedInput> {
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
  return { name: input.name, chunks };
}

async function* replay(input: VerifiedInput): AsyncGenerator<Buffer> {
  yield* input.chunks;
}

interface Plan {
  /** Every payload file in tar order (what the list records). */
  payload: PayloadFile[];
  added: PayloadFile[];
  changed: PayloadFile[];
  unchanged: number;
  /** Directories the new files need that the ESP lacks. */
  newDirs: number;
  manifest?: Buffer;
}

/**
 * First pass: the payload's files, which are new, changed or unchanged, and
 * manifest.json. Each declared size is counted before the body is read, so
 * the work is bounded by `limit` (the partition) whatever the compression.
 */
async function planPayload(vol: Fat32Volume, input: VerifiedInput, limit: number, warnings: string[]): Promise<Plan> {
  const plan: Plan = { payload: [], added: [], changed: [], unchanged: 0, newDirs: 0 };
  const seen = new Map<string, string>();
  type Trie = Map<string, Trie>;
  const dirTrie: Trie = new Map();
  let declared = 0;
  let skipped = 0;
  // The validation every writer shares (case-insensitive duplicates, names, sizes bounded by the ESP before a body is read).
  const tree = readTarTree(replay(input), input.name);
  for await (const e of validateTree(tree, { fs: 'fat32', inputName: input.name, maxFileBytes: limit, maxTotalBytes: limit })) {
    if (e.type === 'directory') continue;
    if (e.type !== 'file') {
      skipped++;
      await drain(e.body);
      continue;
    }
    const path = `/${e.path}`;
    if (isManagedEspPath(path)) {
      if (path.toLowerCase() === ESP_PATHS.grubCfg) warnings.push(`ESP payload had ${ESP_PATHS.grubCfg}; replaced by the generated one`);
      else if (path.toLowerCase() !== ESP_PATHS.grubenv) warnings.push(`ESP payload had ${path}; ignored (diskimg writes it)`);
      await drain(e.body);
      continue;
    }
    const twin = seen.get(path.toLowerCase());
    if (twin !== undefined) throw new InputError(`${input.name}: ${path} and ${twin} are one file on FAT (names ignore case); remove one from the payload`);
    seen.set(path.toLowerCase(), path);
    declared += e.size;
    if (declared > limit) throw new InputError(`${input.name}: its files add up to more than ${PSYOPS_NAMES.esp} holds (${fmtBytes(limit)}, at ${path}); use a larger --esp-size or a smaller payload`);
    const f: PayloadFile = { path, size: e.size, mtime: Math.floor(e.mtime) };
    plan.payload.push(f);
    const existing = await vol.lookup(path);
    if (existing?.isDirectory) throw new InputError(`${input.name}: ${path} is a file in the payload and a directory on the ESP`);
    if (!existing) {
      // the directories mkdir will make (each once: a trie of components), for the space check
      const have = await vol.existingParents(path);
      if (have === undefined) throw new InputError(`${input.name}: ${path} is below a file on the ESP`);
      let node = dirTrie;
      e.path.split('/').slice(0, -1).forEach((c, i) => {
        const k = c.toUpperCase();
        let next = node.get(k);
        if (!next) {
          node.set(k, (next = new Map()));
          if (i >= have) plan.newDirs++;
        }
        node = next;
      });
    }
    const isManifest = path.toLowerCase() === ESP_PATHS.manifest.toLowerCase();
    if (isManifest && e.size > MAX_MANIFEST_BYTES) throw new InputError(`${input.name}: ${ESP_PATHS.manifest} of ${e.size} bytes; a manifest is at most ${MAX_MANIFEST_BYTES}`);
    let body: AsyncIterable<Buffer> | Buffer[] | undefined = e.body;
    if (isManifest) body = [(plan.manifest = await collect(e.body))];
    if (!existing) plan.added.push(f);
    else if (existing.size === e.size && (await sameBytes(body, vol.readFile(path)))) plan.unchanged++;
    else plan.changed.push(f);
    await drain(e.body); // unread (new, or past the first difference): the tar reader inflates it once, bounded by `declared`
  }
  if (skipped) warnings.push(`${input.name}: ${skipped} links, devices or FIFOs skipped (FAT32 cannot hold them)`);
  return plan;
}

async function collect(body: AsyncIterable<Buffer> | undefined): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of body ?? []) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

/** Whether two byte streams of the same length are equal, read side by side (stops at the first difference). */
async function sameBytes(a: AsyncIterable<Buffer> | Buffer[] | undefined, b: AsyncIterable<Buffer>): Promise<boolean> {
  const ib = b[Symbol.asyncIterator]();
  let cur: Buffer = Buffer.alloc(0);
  try {
    for await (let x of (a ?? []) as AsyncIterable<Buffer>) {
      while (x.length) {
        if (!cur.length) {
          const r = await ib.next();
          if (r.done) return false;
          cur = r.value;
        }
        const n = Math.min(x.length, cur.length);
        if (!x.subarray(0, n).equals(cur.subarray(0, n))) return false;
        x = x.subarray(n);
        cur = cur.subarray(n);
      }
    }
    return !cur.length && (await ib.next()).done === true;
  } finally {
    await ib.return?.();
  }
}

/** Second pass: the data of `files` streamed into clusters reserved for each (nothing references them until commitFile). */
async function streamData(vol: Fat32Volume, input: VerifiedInput, files: PayloadFile[]): Promise<Map<PayloadFile, number[]>> {
  const want = new Map(files.map((f) => [f.path, f]));
  const out = new Map<PayloadFile, number[]>();
  for await (const e of readTarTree(replay(input), input.name)) {
    const f = e.type === 'file' ? want.get(`/${e.path}`) : undefined;
    if (!f || out.has(f)) {
      await drain(e.body);
      continue;
    }
    const clusters = vol.reserve(f.size, f.path);
    await vol.writeData(clusters, e.body ?? Buffer.alloc(0), f.size, `${input.name}: ${f.path}`);
    out.set(f, clusters);
  }
  for (const f of files) if (!out.has(f)) throw new InputError(`${input.name}: ${f.path} was not found on the second read of the payload`);
  return out;
}

async function exists(spec: string): Promise<boolean> {
  if (isUrl(spec)) return true;
  const { stat } = await import('node:fs/promises');
  return (await stat(spec).catch(() => undefined))?.isFile() ?? false;
}
