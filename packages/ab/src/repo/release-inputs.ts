/**
 * A repository's release as `create`'s inputs (issue 27.10): the OS release (latest or a version)
 * and the latest ESP release, each found through its signature, whose trusted comment is verified
 * against the key before its filename= is believed (resolveRelease, as `update --repo` does).
 * A local repository is used in place. From a URL each tarball is streamed into a private
 * temporary directory while its signature is checked over exactly the bytes written (at most
 * `maxBytes`); a download that does not verify is removed and nothing is built from it.
 */
import { mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '@diskimg/partitions/internal';
import { isUrl, openUpdateInput } from '@diskimg/diskimage/internal';
import { MinisignVerifier, readPublicKeyFile, type PublicKey } from '../minisign/index.js';
import { ReleaseNotFoundError, resolveRelease, type Release } from './client.js';
import { DEFAULT_PLATFORM, SIG_SUFFIX } from './layout.js';

/** Which releases `releaseInputs` takes from which repository, and where downloads go. */
export interface ReleaseInputsOptions {
  /** http(s) URL of the repository (its directory) or a local directory. */
  repo: string;
  /** The OS release: "latest" (default, the pointer) or a version. */
  version?: string;
  /** OS architecture (default x86_64: the image's, not this machine's) and ESP firmware type (default x86_64-uefi). */
  arch?: string;
  fwtype?: string;
  /** The key the releases are verified with; required unless noVerify. */
  pubkey?: string;
  noVerify?: boolean;
  /** The repository's latest ESP: 'required', 'optional' (none is fine) or 'no' (not taken). */
  esp: 'required' | 'optional' | 'no';
  /** The directory a private temporary directory is made in, for downloads. */
  tmpDir: string;
  /** Most bytes a downloaded OS / ESP tarball may have. */
  maxOsBytes?: number;
  maxEspBytes?: number;
  onProgress?: (what: string, bytes: number, total?: number) => void;
  /** Told the temporary directory as soon as it exists (so a signal handler can remove it). */
  onTempDir?: (path: string) => void;
}

/** The releases found, and local paths of their tarballs and signatures. */
export interface ReleaseInputs {
  os: Release;
  esp: Release | null;
  osTar: string;
  osSig: string;
  espTar?: string;
  espSig?: string;
  /** The temporary directory holding downloads (removed by cleanup), or undefined for a local repository. */
  tmp?: string;
  cleanup(): Promise<void>;
}

export async function releaseInputs(o: ReleaseInputsOptions): Promise<ReleaseInputs> {
  if (!o.noVerify && !o.pubkey) throw new InputError('--repo: give --pubkey FILE (the key that signs the releases), or --no-verify');
  const pub = o.noVerify ? undefined : await readPublicKeyFile(o.pubkey!);
  const os = await resolveRelease({ repo: o.repo, kind: 'os', platform: o.arch ?? DEFAULT_PLATFORM.os, version: o.version, pubkey: pub });
  let esp: Release | null = null;
  if (o.esp !== 'no') {
    esp = await resolveRelease({ repo: o.repo, kind: 'esp', platform: o.fwtype ?? DEFAULT_PLATFORM.esp, pubkey: pub }).catch((e) => {
      if (e instanceof ReleaseNotFoundError && o.esp === 'optional') return null;
      throw e;
    });
  }
  if (!isUrl(o.repo)) {
    // In place: the versioned signature beside each tarball is what create verifies again.
    return { os, esp, osTar: os.artifact, osSig: os.signature, espTar: esp?.artifact, espSig: esp?.signature, cleanup: async () => {} };
  }
  await removeDeadDownloads(o.tmpDir);
  const tmp = await mkdtemp(join(o.tmpDir, `${TEMP_PREFIX}${process.pid}-`));
  o.onTempDir?.(tmp);
  const cleanup = () => rm(tmp, { recursive: true, force: true });
  try {
    const osTar = await download(os, tmp, pub, o.maxOsBytes, o.onProgress);
    const espTar = esp ? await download(esp, tmp, pub, o.maxEspBytes, o.onProgress) : undefined;
    return { os, esp, osTar, osSig: osTar + SIG_SUFFIX, espTar, espSig: espTar && espTar + SIG_SUFFIX, tmp, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

const TEMP_PREFIX = '.diskimg-release-';
const TEMP_DIR_RE = /^\.diskimg-release-(\d+)-[A-Za-z0-9]{6}$/;

/** Remove the download directories of processes that are gone (SIGKILL, power cut); a live one's are kept. */
async function removeDeadDownloads(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(TEMP_DIR_RE.exec(name)?.[1] ?? NaN);
    if (!Number.isSafeInteger(pid) || pid === process.pid || alive(pid)) continue;
    await rm(join(dir, name), { recursive: true, force: true }).catch(() => {});
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, another user's
  }
}

/** Stream `rel`'s tarball into `dir` under its name, verifying the signature over every byte written; its signature beside it. */
async function download(rel: Release, dir: string, pub: PublicKey | undefined, maxBytes: number | undefined, onProgress: ReleaseInputsOptions['onProgress']): Promise<string> {
  const path = join(dir, rel.filename); // a plain file name: resolveRelease refuses any other
  const verifier = pub ? new MinisignVerifier(rel.sig, pub, { file: rel.artifact, sig: rel.source }) : undefined;
  const input = await openUpdateInput(rel.artifact, { onProgress: onProgress && ((b, t) => onProgress(rel.filename, b, t)) });
  const tooBig = () => new InputError(`${input.name}: larger than ${maxBytes} bytes, more than the partition it is for can hold; refused`);
  if (maxBytes !== undefined && input.size !== undefined && input.size > maxBytes) throw tooBig();
  const fh = await open(path, 'wx', 0o600);
  try {
    let n = 0;
    for await (const chunk of input.stream) {
      n += chunk.length;
      if (maxBytes !== undefined && n > maxBytes) throw tooBig();
      verifier?.update(chunk);
      await fh.write(chunk);
    }
    verifier?.finish(); // throws when a byte differs: the caller removes the directory
  } finally {
    await fh.close();
  }
  await writeFile(path + SIG_SUFFIX, rel.sigBytes, { mode: 0o600 });
  return path;
}
