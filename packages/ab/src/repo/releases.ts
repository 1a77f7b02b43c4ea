/**
 * What a repository holds (issue 27.10, `diskimg releases`): every release per kind and platform,
 * which one the pointer names (latest), and the state of each signature. The names come from the
 * directory (a local repository) or from the server's directory listing (an index page: nginx
 * autoindex, Apache, S3 website listings that link the names); without a listing only the pointers
 * of the default (or given) platforms are read. Each signature is read (small) and its trusted
 * comment checked against the key as `update --repo` does; tarballs are not downloaded.
 */
import { readdir } from 'node:fs/promises';
import { InputError } from '@diskimg/partitions/internal';
import { isUrl, readSmallInput } from '@diskimg/diskimage/internal';
import { readPublicKeyFile, type PublicKey } from '../minisign/index.js';
import { ReleaseNotFoundError, repoLocation, resolveRelease } from './client.js';
import { DEFAULT_PLATFORM, KIND_TYPE, LATEST, parseArtifactName, SIG_SUFFIX, type ReleaseKind } from './layout.js';

/** Which repository `listReleases` reads, and the key (or none, noVerify) its signatures are checked with. */
export interface ListReleasesOptions {
  repo: string;
  pubkey?: string;
  noVerify?: boolean;
  /** Platforms whose pointers are read even when no listing names them (default x86_64, x86_64-uefi). */
  arch?: string;
  fwtype?: string;
}

/** A signature's state: verified, not checked (--no-verify), absent, or refused (with why). */
export type SignatureState = 'ok' | 'unverified' | 'missing' | 'bad';

/** One release: its version and file, whether the tarball is there, its signature's state, and whether the pointer names it. */
export interface ListedRelease {
  version: string;
  filename: string;
  /** The tarball is listed (undefined: not known, no listing). */
  tarball?: boolean;
  signature: SignatureState;
  error?: string;
  latest: boolean;
}

/** The releases of one kind and platform, newest first, and the pointer's version (or why it could not be read). */
export interface ReleaseGroup {
  kind: ReleaseKind;
  type: string;
  platform: string;
  latest: string | null;
  latestError?: string;
  releases: ListedRelease[];
}

/** What `listReleases` found: the repository, where the names came from, and the groups. */
export interface ReleaseListing {
  repo: string;
  /** Where the names came from: the directory, the server's index page, or only the pointers. */
  listing: 'directory' | 'index' | 'pointers';
  groups: ReleaseGroup[];
  /** Any signature refused (a pointer included). */
  bad: boolean;
}

const POINTER_RE = /^(psyopsOS|psyopsESP)\.([A-Za-z0-9_-]{1,64})\.latest\.tar\.minisig$/;
const BUNDLE_POINTER = `${KIND_TYPE.bundle}.${LATEST}.mjs${SIG_SUFFIX}`;
/** An index page is a small HTML/JSON document; anything bigger is not read. */
const MAX_INDEX_BYTES = 4 << 20;

export async function listReleases(o: ListReleasesOptions): Promise<ReleaseListing> {
  if (!o.noVerify && !o.pubkey) throw new InputError('releases: give --pubkey FILE (the key that signs the releases) to check the signatures, or --no-verify');
  const pub: PublicKey | undefined = o.noVerify ? undefined : await readPublicKeyFile(o.pubkey!);
  const { names, listing } = await listNames(o.repo);

  // Groups: every platform a name or pointer mentions, plus the defaults.
  const groups = new Map<string, ReleaseGroup>();
  const group = (kind: ReleaseKind, platform: string) => {
    const key = `${kind}\0${platform}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { kind, type: KIND_TYPE[kind], platform, latest: null, releases: [] }));
    return g;
  };
  const files = new Set(names ?? []);
  const sigVersions = new Map<ReleaseGroup, Set<string>>();
  for (const n of files) {
    const p = POINTER_RE.exec(n);
    if (p) group(p[1] === KIND_TYPE.os ? 'os' : 'esp', p[2]!);
    if (n === BUNDLE_POINTER) group('bundle', DEFAULT_PLATFORM.bundle);
    const base = n.endsWith(SIG_SUFFIX) ? n.slice(0, -SIG_SUFFIX.length) : n;
    const a = parseArtifactName(base);
    if (!a) continue;
    const g = group(a.kind, a.platform);
    if (!sigVersions.has(g)) sigVersions.set(g, new Set());
    sigVersions.get(g)!.add(a.version);
  }
  if (!names) {
    group('os', o.arch ?? DEFAULT_PLATFORM.os);
    group('esp', o.fwtype ?? DEFAULT_PLATFORM.esp);
    group('bundle', DEFAULT_PLATFORM.bundle);
  }

  let bad = false;
  const absent = new Set<ReleaseGroup>(); // no pointer
  for (const g of groups.values()) {
    try {
      g.latest = (await resolveRelease({ repo: o.repo, kind: g.kind, platform: g.platform, pubkey: pub })).version;
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      if (e instanceof ReleaseNotFoundError) absent.add(g);
      else bad = true;
      g.latestError = e.message;
    }
    const versions = [...(sigVersions.get(g) ?? [])];
    if (g.latest && !versions.includes(g.latest)) versions.push(g.latest);
    versions.sort().reverse(); // versions order as strings (YYYYMMDD-HHMMSS)
    for (const version of versions) {
      const r = await resolveRelease({ repo: o.repo, kind: g.kind, platform: g.platform, version, pubkey: pub }).then(
        (rel): ListedRelease => ({ version, filename: rel.filename, signature: rel.verified ? 'ok' : 'unverified', latest: false }),
        (e: unknown): ListedRelease => {
          if (!(e instanceof InputError)) throw e;
          const missing = e instanceof ReleaseNotFoundError;
          if (!missing) bad = true;
          return { version, filename: '', signature: missing ? 'missing' : 'bad', error: missing ? undefined : e.message, latest: false };
        },
      );
      const filename = r.filename || parseName(g, version);
      r.filename = filename;
      r.latest = version === g.latest;
      if (names) r.tarball = files.has(filename);
      g.releases.push(r);
    }
  }
  // Groups that only the defaults added and the repository does not have are left out.
  const shown = [...groups.values()].filter((g) => g.releases.length || !absent.has(g));
  return { repo: o.repo, listing, groups: shown, bad };
}

function parseName(g: ReleaseGroup, version: string): string {
  return g.kind === 'bundle' ? `${KIND_TYPE.bundle}.${version}.mjs` : `${g.type}.${g.platform}.${version}.tar`;
}

/** The repository's file names: its directory, or its index page's links; undefined when the server lists nothing. */
async function listNames(repo: string): Promise<{ names?: string[]; listing: ReleaseListing['listing'] }> {
  if (!isUrl(repo)) {
    const names = await readdir(repo).catch((e: NodeJS.ErrnoException) => {
      throw new InputError(`${repo}: ${e.code === 'ENOENT' ? 'no such directory' : e.code === 'ENOTDIR' ? 'not a directory' : `cannot list (${e.code ?? e.message})`}; give the repository's directory or URL`);
    });
    return { names, listing: 'directory' };
  }
  const index = repoLocation(repo, '');
  const page = await readSmallInput(index, { maxBytes: MAX_INDEX_BYTES }).catch((e: unknown) => {
    if (e instanceof InputError) return undefined; // 403/404: the server keeps its listing to itself
    throw e;
  });
  if (!page) return { listing: 'pointers' };
  const names = new Set<string>();
  // Links (href="NAME") and JSON listings ("name":"NAME"), relative to the directory.
  for (const m of page.toString('utf8').matchAll(/(?:href=|"name"\s*:\s*)"([^"?#]+)"/g)) {
    let n = m[1]!;
    try {
      n = decodeURIComponent(n);
    } catch {
      continue;
    }
    n = n.replace(/^\.\//, '');
    if (!n.includes('/')) names.add(n);
  }
  return { names: [...names], listing: 'index' };
}
