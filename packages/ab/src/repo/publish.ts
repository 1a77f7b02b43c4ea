/**
 * `diskimg publish`: add a signed release to an update repository (a plain
 * directory, served by any static web server or synced to an object store).
 *
 * Order of writes, each file under a hidden temporary name, fsynced, then
 * renamed into place:
 *   1. the tarball `psyopsOS.<arch>.<version>.tar`,
 *   2. its signature `….tar.minisig`,
 *   3. last, the pointer `psyopsOS.<arch>.latest.tar.minisig` (a copy of 2),
 *   4. the directory is fsynced; then `--keep N` prunes old versions.
 * A reader following the pointer therefore only ever sees a complete release:
 * before step 3 the pointer names the previous one (still there), after it the
 * new one (already whole). A publish killed at any point leaves the old pointer
 * and at worst a hidden temporary file (removed by the next publish).
 */
import { mkdir, open, readdir, rename, stat, unlink, copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTime, InputError } from '@diskimg/partitions/internal';
import { isProcessAlive } from '@diskimg/diskimage/internal/create';
import { decodeSignature, encodeSignature, MAX_SIGNATURE_FILE_BYTES, type Signature } from '../minisign/signature.js';
import { formatTrustedComment, parseTrustedComment } from '../minisign/trusted.js';
import { readSecretKeyFile, signToSignature } from '../minisign/sign.js';
import { keyIdHex } from '../minisign/keys.js';
import { readPublicKeyFile, verifyFile } from '../minisign/verify.js';
import { BUNDLE_RELEASE_MARK, readBundleRelease } from './bundle-release.js';
import { checkRelease } from '../policy.js';
import {
  artifactName,
  checkPlatform,
  checkVersion,
  DEFAULT_PLATFORM,
  KIND_TYPE,
  parseArtifactName,
  pointerName,
  SIG_SUFFIX,
  TEMP_RE,
  tempName,
  versionOf,
  type ReleaseKind,
} from './layout.js';

/** Options of `publish` (the flags of `diskimg publish`). */
export interface PublishOptions {
  repo: string;
  osTar?: string;
  espTar?: string;
  /** The one-file CLI (dist/diskimg.mjs): published as diskimg.<version>.mjs; its version defaults to the release built into it. */
  bundle?: string;
  /** Sign with this minisign secret key … */
  seckey?: string;
  password?: string;
  /** … or publish this existing signature (verified against `pubkey` first). */
  sig?: string;
  pubkey?: string;
  /** Default: the build time (SOURCE_DATE_EPOCH honoured) as YYYYMMDD-HHMMSS; with --sig, its version=. */
  version?: string;
  /** OS: architecture (default x86_64). ESP: firmware type (default x86_64-uefi). */
  platform?: string;
  /** Extra trusted comment fields (kernel=, alpine=, …). */
  trusted?: Array<[string, string]>;
  /** Keep the newest N versions of this kind and platform (and always the one the pointer names). */
  keep?: number;
  /** Move the pointer to a version older than the one it names. */
  allowDowngrade?: boolean;
  /** Called between steps (tests inject kills here). */
  onStep?: (step: 'artifact' | 'signature' | 'pointer' | 'pruned') => void | Promise<void>;
}

/** What `publish` wrote: file names, version, the pointer's previous version, and what `keep` pruned. */
export interface PublishResult {
  repo: string;
  kind: ReleaseKind;
  type: string;
  platform: string;
  version: string;
  artifact: string;
  signature: string;
  pointer: string;
  /** The version the pointer named before (null: none). */
  previous: string | null;
  trustedComment: string;
  keyId: string;
  bytes: number;
  /** Release files removed by --keep. */
  pruned: string[];
  /** Stale temporary files of killed publishes that were removed. */
  cleaned: string[];
  warnings: string[];
}

/** Add a signed release (OS, ESP or the one-file CLI) to an update repository directory: file, signature, then the `latest` pointer, each written atomically (`diskimg publish`). */
export async function publish(o: PublishOptions): Promise<PublishResult> {
  const warnings: string[] = [];
  if ([o.osTar, o.espTar, o.bundle].filter(Boolean).length !== 1) throw new InputError('give --os-tar FILE, --esp-tar FILE or --bundle FILE (one release per publish)');
  if (!!o.seckey === !!o.sig) throw new InputError('give --seckey FILE (sign now) or --sig FILE (an existing signature), one of them');
  if (o.sig && !o.pubkey) throw new InputError('--sig: give --pubkey FILE so the signature is verified before it is published');
  if (o.keep !== undefined && (!Number.isInteger(o.keep) || o.keep < 1)) throw new InputError(`--keep ${o.keep}: a whole number of versions, at least 1`);
  const kind: ReleaseKind = o.osTar ? 'os' : o.espTar ? 'esp' : 'bundle';
  const file = (o.osTar ?? o.espTar ?? o.bundle)!;
  const fileOpt = { os: '--os-tar', esp: '--esp-tar', bundle: '--bundle' }[kind];
  const type = KIND_TYPE[kind];
  const platform = checkPlatform(kind, o.platform ?? DEFAULT_PLATFORM[kind]);

  const repoSt = await stat(o.repo).catch(() => undefined);
  // A missing repository is made by the first publish (below, after every check); a file is not one.
  if (repoSt && !repoSt.isDirectory()) throw new InputError(`--repo ${o.repo}: not a directory`);
  const fileSt = await stat(file).catch(() => undefined);
  if (!fileSt?.isFile()) throw new InputError(`${fileOpt} ${file}: no such file`);
  // A bundle says its own release version (scripts/bundle.mjs); anything else is not a bundle.
  const builtIn = kind === 'bundle' ? await readBundleRelease(file) : undefined;
  if (kind === 'bundle' && builtIn === undefined) {
    throw new InputError(`--bundle ${file}: not a diskimg bundle (no "${BUNDLE_RELEASE_MARK}" line after the shebang); build it with "pnpm run bundle"`);
  }
  // self-update orders bundles by that line, so the published name must agree with it.
  if (builtIn !== undefined && o.version !== undefined && o.version !== builtIn) {
    throw new InputError(`--version ${o.version}: ${file} says release ${builtIn}; rebuild it with DISKIMG_RELEASE=${o.version} pnpm run bundle, or leave out --version`);
  }

  // ---- the signature: made now, or given and verified ----
  let sig: Signature;
  let version: string;
  if (o.sig) {
    const raw = await readFile(o.sig).catch(() => {
      throw new InputError(`--sig ${o.sig}: no such signature file`);
    });
    if (raw.length > MAX_SIGNATURE_FILE_BYTES) throw new InputError(`--sig ${o.sig}: too large for a signature file`);
    sig = decodeSignature(raw, o.sig);
    const fields = parseTrustedComment(sig.trustedComment);
    version = checkVersion(o.version ?? fields.version ?? '');
    const want = artifactName(kind, platform, version);
    checkField(fields, 'type', type, o.sig);
    checkField(fields, 'version', version, o.sig);
    checkField(fields, 'filename', want, o.sig);
    if (kind === 'os' && fields.architecture && fields.architecture !== platform) {
      throw new InputError(`--sig ${o.sig}: architecture=${fields.architecture}, publishing as --arch ${platform}`);
    }
    await verifyFile(file, sig, await readPublicKeyFile(o.pubkey!), { sig: o.sig, pubkey: o.pubkey });
  } else {
    version = checkVersion(o.version ?? builtIn ?? versionOf(buildTime()));
    const fields: Array<[string, string]> = [
      ['type', type],
      ['filename', artifactName(kind, platform, version)],
      ['version', version],
    ];
    if (kind === 'os') fields.push(['architecture', platform]);
    for (const [k, v] of o.trusted ?? []) {
      const own = fields.find(([fk]) => fk === k);
      if (own && own[1] !== v) throw new InputError(`--trusted ${k}=${v}: publish sets ${k}=${own[1]}`);
      if (!own) fields.push([k, v]);
    }
    const sk = await readSecretKeyFile(o.seckey!, o.password);
    sig = await signToSignature(file, sk, formatTrustedComment(fields), { name: file });
    // What a node will do: verify with the public half.
    await verifyFile(file, sig, { keyId: sk.keyId, key: sk.publicKey }, { file });
  }
  const name = artifactName(kind, platform, version);
  const sigName = name + SIG_SUFFIX;
  const ptrName = pointerName(kind, platform);
  const at = (n: string) => join(o.repo, n);

  // ---- policy, before any write ----
  for (const n of [name, sigName]) {
    if (await stat(at(n)).catch(() => undefined)) {
      throw new InputError(`${at(n)}: version ${version} is already published; a release never changes (publish a new version)`);
    }
  }
  const current = await readPointer(at(ptrName));
  const previous = current?.version ?? null;
  if (previous && version < previous && !o.allowDowngrade) {
    throw new InputError(`${at(ptrName)} names ${previous}, newer than ${version}; pass --allow-downgrade to move it back`);
  }
  // The rest by the one policy: a pointer whose version is missing or unparsable is not moved blindly.
  checkRelease({
    kind,
    source: `${at(ptrName)} -> ${version}`,
    fields: parseTrustedComment(sig.trustedComment),
    installed: !current ? 'nothing' : previous === null ? { version: null, why: 'its trusted comment has no version=' } : { version: previous },
    installedName: `the release ${ptrName} names`,
    allowDowngrade: o.allowDowngrade,
  });
  const movePointer = !previous || version > previous || !!o.allowDowngrade;
  if (current && !current.sig.keyId.equals(sig.keyId)) {
    warnings.push(`key ${keyIdHex(sig.keyId)} differs from the one that signed ${previous} (${keyIdHex(current.sig.keyId)}): nodes need the new public key`);
  }

  if (!repoSt) await mkdir(o.repo, { recursive: true });
  const cleaned = await cleanTemps(o.repo);
  const sigText = encodeSignature(sig);
  await placeFile(o.repo, name, (tmp) => copyFile(file, tmp));
  await o.onStep?.('artifact');
  await placeFile(o.repo, sigName, (tmp) => writeAll(tmp, sigText));
  await o.onStep?.('signature');
  if (movePointer) {
    await placeFile(o.repo, ptrName, (tmp) => writeAll(tmp, sigText));
    await o.onStep?.('pointer');
  }
  const pruned = o.keep ? await prune(o.repo, kind, platform, o.keep, movePointer ? version : previous) : [];
  await o.onStep?.('pruned');
  return {
    repo: o.repo,
    kind,
    type,
    platform,
    version,
    artifact: name,
    signature: sigName,
    pointer: ptrName,
    previous,
    trustedComment: sig.trustedComment,
    keyId: keyIdHex(sig.keyId),
    bytes: fileSt.size,
    pruned,
    cleaned,
    warnings,
  };
}

function checkField(fields: Record<string, string>, key: string, want: string, where: string): void {
  if (fields[key] !== want) {
    throw new InputError(`--sig ${where}: its trusted comment says ${key}=${fields[key] ?? '(none)'}, the repository needs ${key}=${want}; sign with "diskimg publish --seckey" or with these fields`);
  }
}

/** The pointer's signature and version, or undefined when there is none yet. */
export async function readPointer(path: string): Promise<{ sig: Signature; version: string | null } | undefined> {
  const raw = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (!raw) return undefined;
  const sig = decodeSignature(raw, path);
  return { sig, version: parseTrustedComment(sig.trustedComment).version ?? null };
}

async function writeAll(path: string, text: string): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
}

/** Write `name` under a temporary name, fsync it, rename it into place, fsync the directory. */
async function placeFile(dir: string, name: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = join(dir, tempName(name));
  try {
    await fill(tmp);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, name));
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dir);
}

/** fsync a directory after a rename in it, so the new entry survives a power cut. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic
  } finally {
    await fh.close();
  }
}

/** Temporary files left by publishes that were killed (their process is gone). */
async function cleanTemps(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of await readdir(dir)) {
    const m = TEMP_RE.exec(n);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid !== process.pid && isProcessAlive(pid)) continue;
    await unlink(join(dir, n)).catch(() => {});
    out.push(n);
  }
  return out;
}


/**
 * Remove all but the newest `keep` versions of one kind and platform, never
 * `protect` (the version the pointer names). Signature first, then tarball:
 * a signature always has its tarball.
 */
async function prune(dir: string, kind: ReleaseKind, platform: string, keep: number, protect: string | null): Promise<string[]> {
  const versions = new Set<string>();
  for (const n of await readdir(dir)) {
    const a = parseArtifactName(n.endsWith(SIG_SUFFIX) ? n.slice(0, -SIG_SUFFIX.length) : n);
    if (a && a.kind === kind && a.platform === platform) versions.add(a.version);
  }
  const sorted = [...versions].sort().reverse();
  const removed: string[] = [];
  for (const v of sorted.slice(keep)) {
    if (v === protect) continue;
    const name = artifactName(kind, platform, v);
    for (const n of [name + SIG_SUFFIX, name]) {
      try {
        await unlink(join(dir, n));
        removed.push(n);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }
  if (removed.length) await syncDir(dir);
  return removed;
}
