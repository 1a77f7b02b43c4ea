/**
 * The node's side of the update repository: find a release (the pointer, or
 * one version's signature), verify the signature's trusted comment before
 * believing the file name in it, and hand `diskimg update` / `update-esp` the
 * URLs (or paths) of the tarball and its signature.
 */
import { join } from 'node:path';
import { InputError } from '@diskimg/partitions/internal';
import { isUrl, readSmallInput } from '@diskimg/diskimage/internal';
import { decodeSignature, MAX_SIGNATURE_FILE_BYTES, type Signature } from '../minisign/signature.js';
import { parseTrustedComment } from '../minisign/trusted.js';
import { MinisignVerifier, readPublicKeyFile } from '../minisign/verify.js';
import { keyIdHex, type PublicKey } from '../minisign/keys.js';
import { checkRelease } from '../policy.js';
import { artifactName, DEFAULT_PLATFORM, KIND_TYPE, LATEST, parseArtifactName, pointerName, SIG_SUFFIX, type ReleaseKind } from './layout.js';

/** Which release `resolveRelease` reads: repository, kind, platform, version, and the key to verify with. */
export interface ResolveOptions {
  /** http(s) URL of the repository (its directory) or a local directory. */
  repo: string;
  kind: ReleaseKind;
  /** Architecture (os) or firmware type (esp); default x86_64 / x86_64-uefi. */
  platform?: string;
  /** "latest" (default: the pointer) or a version. */
  version?: string;
  /** The public key (file path or parsed); without it (--no-verify) the file name is still checked. */
  pubkey?: string | PublicKey;
}

/** A release found in a repository, its signature verified: version, file name, and where the file and signature are. */
export interface Release {
  kind: ReleaseKind;
  platform: string;
  version: string;
  /** The tarball's file name in the repository (from the verified trusted comment). */
  filename: string;
  /** Where the tarball and its signature are: URLs or paths. */
  artifact: string;
  signature: string;
  /** What was read: the pointer or the versioned signature. */
  source: string;
  sigText: string;
  /** The signature file's bytes as read (and verified). */
  sigBytes: Buffer;
  sig: Signature;
  fields: Record<string, string>;
  verified: boolean;
  keyId: string;
}

/** The repository has no such release (no pointer, or no signature for that version). */
export class ReleaseNotFoundError extends InputError {}

/** `name` inside the repository: a URL relative to the repository's directory, or a path. */
export function repoLocation(repo: string, name: string): string {
  if (isUrl(repo)) {
    const base = new URL(repo);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    return new URL(encodeURIComponent(name), base).toString();
  }
  return join(repo, name);
}

/**
 * Read and verify the release the repository points at. Nothing is
 * downloaded but the signature; every check on it runs before the caller
 * touches the tarball.
 */
export async function resolveRelease(o: ResolveOptions): Promise<Release> {
  const platform = o.platform ?? DEFAULT_PLATFORM[o.kind];
  const type = KIND_TYPE[o.kind];
  const wanted = o.version && o.version !== LATEST ? o.version : undefined;
  const sigName = wanted ? artifactName(o.kind, platform, wanted) + SIG_SUFFIX : pointerName(o.kind, platform);
  const source = repoLocation(o.repo, sigName);
  const raw = await readSmallInput(source, { maxBytes: MAX_SIGNATURE_FILE_BYTES }).catch((e) => {
    if (e instanceof InputError && /HTTP 404|no such file/.test(e.message)) {
      throw new ReleaseNotFoundError(`${source}: not found; ${wanted ? `the repository has no ${type} ${platform} version ${wanted}` : `the repository has no ${type} release for ${platform} yet (diskimg publish)`}`);
    }
    throw e;
  });
  const sig = decodeSignature(raw, source);
  let verified = false;
  if (o.pubkey !== undefined) {
    const pub = typeof o.pubkey === 'string' ? await readPublicKeyFile(o.pubkey) : o.pubkey;
    // Checks the key id and the trusted comment's own signature: the file name below is trustworthy after this.
    new MinisignVerifier(sig, pub, { file: source, sig: source, pubkey: typeof o.pubkey === 'string' ? o.pubkey : undefined });
    verified = true;
  }
  const fields = parseTrustedComment(sig.trustedComment);
  // type= by the one policy; the version is the caller's to compare.
  checkRelease({ kind: o.kind, source, fields, installed: 'nothing', installedName: '', allowDowngrade: true });
  const filename = fields.filename;
  if (!filename) throw new InputError(`${source}: the trusted comment has no filename=; cannot tell which tarball it signs`);
  if (/[/\\]/.test(filename) || filename === '.' || filename === '..' || filename.includes('\0')) {
    throw new InputError(`${source}: the trusted comment names ${JSON.stringify(filename)}, which is not a file name in the repository; refused`);
  }
  const a = parseArtifactName(filename);
  if (!a || a.kind !== o.kind || a.platform !== platform) {
    throw new InputError(
      `${source}: the trusted comment names ${JSON.stringify(filename)}, not a ${type} release for ${platform} (${artifactName(o.kind, platform, 'YYYYMMDD-HHMMSS')}); refused`,
    );
  }
  if (fields.version !== a.version) {
    throw new InputError(`${source}: filename=${filename} but version=${fields.version ?? '(none)'}; refused`);
  }
  if (wanted && a.version !== wanted) throw new InputError(`${source}: signs version ${a.version}, asked for ${wanted}; refused`);
  if (o.kind === 'os' && fields.architecture && fields.architecture !== platform) {
    throw new InputError(`${source}: built for architecture=${fields.architecture}, this node is ${platform}`);
  }
  return {
    kind: o.kind,
    platform,
    version: a.version,
    filename,
    artifact: repoLocation(o.repo, filename),
    signature: repoLocation(o.repo, filename + SIG_SUFFIX),
    source,
    sigText: raw.toString('utf8'),
    sigBytes: raw,
    sig,
    fields,
    verified,
    keyId: keyIdHex(sig.keyId),
  };
}

/** process.arch → the architecture name trusted comments use. */
export function nodeArch(): string {
  const names: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7', ia32: 'x86', riscv64: 'riscv64' };
  return names[process.arch] ?? process.arch;
}
