/**
 * `diskimg self-update`: replace the running one-file CLI (dist/diskimg.mjs) by a newer signed
 * bundle from the update repository (`publish --bundle`).
 *
 * Order, and why:
 *   1. the target must be a bundle (its release line) in a directory we may write: refuse early;
 *   2. the pointer (or the version's signature) is read and verified before its file name is used;
 *   3. only a newer version is fetched (no downgrade without allowDowngrade);
 *   4. the file is streamed into a hidden temporary file beside the target (same filesystem, so the
 *      final rename is atomic); the signature hash is fed with exactly the chunks written; a size cap
 *      stops a hostile or runaway server; such files of earlier self-updates whose process is gone
 *      (killed) are removed first;
 *   5. the new file must carry the signed version on its release line and answer `--version` under
 *      node; then it gets the target's mode, is fsynced and renamed over the target.
 * Any failure removes the temporary file: the running file is never touched before the rename.
 */
import { shellWord } from '../hints.js';
import { execFile } from 'node:child_process';
import { access, chmod, constants, open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InputError } from '@diskimg/partitions/internal';
import { openUpdateInput, pidFilePattern, removeDeadPidFiles } from '@diskimg/diskimage/internal';
import { MinisignVerifier, readPublicKeyFile } from '../minisign/verify.js';
import { parseBundleRelease, readBundleRelease } from './bundle-release.js';
import { resolveRelease } from './client.js';
import { checkRelease } from '../policy.js';
import { syncDir } from './publish.js';

/** A bundle is about a megabyte; anything far larger is not one. */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/** Options of `selfUpdate` (the flags of `diskimg self-update`, and the file to replace). */
export interface SelfUpdateOptions {
  /** http(s) URL or directory of the update repository. */
  repo: string;
  /** "latest" (default: the pointer) or a version. */
  version?: string;
  /** The minisign public key file that signs the releases (required: this replaces a program). */
  pubkey?: string;
  /** The running bundle (process.argv[1]); symbolic links are followed to the real file. */
  target: string;
  /** Install a version older than the running one. */
  allowDowngrade?: boolean;
  /** Check everything up to the download; write nothing. */
  dryRun?: boolean;
  /** Refuse a bundle larger than this; default MAX_BUNDLE_BYTES. */
  maxBytes?: number;
  /** The node that runs the new file's `--version`; default process.execPath. */
  node?: string;
  onProgress?: (bytes: number, total?: number) => void;
}

/** What `selfUpdate` did: versions before and after, and whether the file was replaced. */
export interface SelfUpdateResult {
  /** The file replaced (or that would be). */
  target: string;
  /** The running bundle's release version. */
  previous: string;
  /** The repository's version (the one installed unless upToDate or dryRun). */
  version: string;
  filename: string;
  source: string;
  keyId: string;
  /** Nothing to do: the repository has the running version. */
  upToDate: boolean;
  dryRun: boolean;
  replaced: boolean;
  /** Bytes downloaded (and verified). */
  bytes: number;
  /** What the new file's `--version` printed. */
  versionLine: string | null;
}

/** Replace the running one-file CLI (`diskimg.mjs`) by the newer signed bundle of a repository: verified, checked with `--version`, renamed atomically over it (`diskimg self-update`). */
export async function selfUpdate(o: SelfUpdateOptions): Promise<SelfUpdateResult> {
  if (!o.pubkey) throw new InputError('no --pubkey: give the minisign public key that signs your releases (self-update never installs an unverified program)');
  const target = await realpath(o.target).catch(() => {
    const args = ['--repo', o.repo, '--pubkey', o.pubkey!, ...(o.version ? ['--version', o.version] : [])].map(shellWord).join(' ');
    throw new InputError(`${o.target}: the running diskimg is not a file here; run self-update as "node /path/to/diskimg.mjs self-update ${args}"`);
  });
  const st = await stat(target);
  const previous = st.isFile() ? await readBundleRelease(target) : undefined;
  if (!previous) {
    throw new InputError(`${target}: not the one-file diskimg bundle (no release line); self-update replaces dist/diskimg.mjs only, update this installation with git and pnpm`);
  }
  const dir = dirname(target);
  await access(dir, constants.W_OK).catch(() => {
    throw new InputError(`${dir}: not writable, so ${basename(target)} cannot be replaced; run self-update as a user who may write there`);
  });
  const pub = await readPublicKeyFile(o.pubkey);
  const rel = await resolveRelease({ repo: o.repo, kind: 'bundle', version: o.version, pubkey: pub });
  const result: SelfUpdateResult = {
    target,
    previous,
    version: rel.version,
    filename: rel.filename,
    source: rel.source,
    keyId: rel.keyId,
    upToDate: checkRelease({
      kind: 'bundle',
      source: rel.source,
      fields: rel.fields,
      installed: { version: previous },
      installedName: `the running diskimg (${basename(target)})`,
      allowDowngrade: o.allowDowngrade,
    }).relation === 'same',
    dryRun: !!o.dryRun,
    replaced: false,
    bytes: 0,
    versionLine: null,
  };
  if (result.upToDate || o.dryRun) return result;

  const max = o.maxBytes ?? MAX_BUNDLE_BYTES;
  // Ends in .mjs: node decides a file is an ES module by its extension.
  const tmp = join(dir, `.${basename(target)}.self-update-${process.pid}.mjs`);
  // What a killed self-update left (its process gone); never a running one's.
  removeDeadPidFiles(dir, pidFilePattern(`.${basename(target)}.self-update-`, '.mjs'));
  const fh = await open(tmp, 'wx', 0o600);
  let closed = false;
  try {
    const input = await openUpdateInput(rel.artifact, { onProgress: o.onProgress });
    const tooBig = () => new InputError(`${input.name}: larger than ${max} bytes; not a diskimg bundle, refused`);
    if (input.size !== undefined && input.size > max) throw tooBig();
    const verifier = new MinisignVerifier(rel.sig, pub, { file: input.name, sig: rel.source, pubkey: o.pubkey });
    let head = Buffer.alloc(0);
    for await (const chunk of input.stream) {
      result.bytes += chunk.length;
      if (result.bytes > max) throw tooBig();
      verifier.update(chunk);
      if (head.length < 256) head = Buffer.concat([head, chunk.subarray(0, 256 - head.length)]);
      await fh.writeFile(chunk);
    }
    verifier.finish();
    await fh.sync();
    await fh.close();
    closed = true;
    const built = parseBundleRelease(head);
    if (built !== rel.version) {
      throw new InputError(`${input.name}: signed as version ${rel.version} but its release line says ${built ?? '(none: not a diskimg bundle)'}; refused`);
    }
    await chmod(tmp, st.mode & 0o7777);
    result.versionLine = await runVersion(o.node ?? process.execPath, tmp, input.name);
    await rename(tmp, target);
    result.replaced = true;
  } catch (e) {
    if (!closed) await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dir);
  return result;
}

/** `node FILE --version` must succeed and print a version line, or the file is not installed. */
function runVersion(node: string, file: string, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(node, [file, '--version'], { timeout: 60_000, maxBuffer: 64 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const line = stdout.trim();
      if (err || !/^\d+\.\d+\.\d+\b/.test(line)) {
        const why = err ? (stderr.trim().split('\n').pop() ?? err.message) : `it printed ${JSON.stringify(line.slice(0, 80))}`;
        return reject(new InputError(`${name}: verified, but "node ${basename(file)} --version" failed (${why}); not installed`));
      }
      resolve(line);
    });
  });
}
