/**
 * The update repository's file names (DESIGN.md §2), in one place for the
 * publisher and the client:
 *
 *   psyopsOS.<arch>.<version>.tar        + .minisig     OS releases
 *   psyopsESP.<fwtype>.<version>.tar     + .minisig     ESP releases
 *   psyopsOS.<arch>.latest.tar.minisig                  pointer: a copy of the newest OS signature
 *   psyopsESP.<fwtype>.latest.tar.minisig               pointer: a copy of the newest ESP signature
 *   diskimg.<version>.mjs                + .minisig     the one-file CLI (dist/diskimg.mjs; any platform)
 *   diskimg.latest.mjs.minisig                          pointer: a copy of the newest bundle signature
 *
 * A pointer's trusted comment names the real file (`filename=`), so a client
 * never downloads a name that is still being uploaded.
 */
import { formatTimestamp } from '@diskimg/grubcfg/internal';
import { InputError } from '@diskimg/partitions/internal';

/** The kinds of release a repository holds: OS tarballs, ESP tarballs, and the one-file CLI bundle. */
export type ReleaseKind = 'os' | 'esp' | 'bundle';

/** The trusted comment's `type=` and the file name prefix of each kind. */
export const KIND_TYPE: Record<ReleaseKind, string> = { os: 'psyopsOS', esp: 'psyopsESP', bundle: 'diskimg' };
/** The bundle runs on any node with Node.js: one platform, not part of its file names. */
export const DEFAULT_PLATFORM: Record<ReleaseKind, string> = { os: 'x86_64', esp: 'x86_64-uefi', bundle: 'node' };
export const SIG_SUFFIX = '.minisig';
export const LATEST = 'latest';

const PLATFORM_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** Upstream's versions are `YYYYMMDD-HHMMSS`; others are allowed if they have no dots or slashes (they order as strings). */
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9_+-]{0,63}$/;
const ARTIFACT_RE = /^(psyopsOS|psyopsESP)\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9][A-Za-z0-9_+-]{0,63})\.tar$/;
const BUNDLE_RE = /^diskimg\.([A-Za-z0-9][A-Za-z0-9_+-]{0,63})\.mjs$/;

export function checkPlatform(kind: ReleaseKind, platform: string): string {
  if (kind === 'bundle') {
    if (platform !== DEFAULT_PLATFORM.bundle) throw new InputError(`the bundle has no platform (${JSON.stringify(platform)} given); it runs wherever node does`);
    return platform;
  }
  if (!PLATFORM_RE.test(platform)) {
    throw new InputError(`${kind === 'os' ? '--arch' : '--fwtype'} ${JSON.stringify(platform)}: letters, digits, "_" and "-" only (e.g. ${DEFAULT_PLATFORM[kind]})`);
  }
  return platform;
}

/** True for a version a release may carry (what checkVersion accepts). */
export function isReleaseVersion(version: string): boolean {
  return version !== LATEST && VERSION_RE.test(version);
}

export function checkVersion(version: string): string {
  if (version === LATEST || !VERSION_RE.test(version)) {
    throw new InputError(`--version ${JSON.stringify(version)}: a release version is YYYYMMDD-HHMMSS (letters, digits, "_", "+", "-"; not "latest")`);
  }
  return version;
}

/** The default version: the UTC build time (SOURCE_DATE_EPOCH when set) as YYYYMMDD-HHMMSS. */
export function versionOf(epochSeconds: number): string {
  return formatTimestamp(epochSeconds);
}

export function artifactName(kind: ReleaseKind, platform: string, version: string): string {
  if (kind === 'bundle') return `${KIND_TYPE.bundle}.${checkVersion(version)}.mjs`;
  return `${KIND_TYPE[kind]}.${checkPlatform(kind, platform)}.${checkVersion(version)}.tar`;
}

export function pointerName(kind: ReleaseKind, platform: string): string {
  if (kind === 'bundle') return `${KIND_TYPE.bundle}.${LATEST}.mjs${SIG_SUFFIX}`;
  return `${KIND_TYPE[kind]}.${checkPlatform(kind, platform)}.${LATEST}.tar${SIG_SUFFIX}`;
}

export interface ArtifactName {
  kind: ReleaseKind;
  platform: string;
  version: string;
  name: string;
}

/** Parse a release file name; undefined for anything else (pointers, temporary files, foreign files). */
export function parseArtifactName(name: string): ArtifactName | undefined {
  const b = BUNDLE_RE.exec(name);
  if (b) return b[1] === LATEST ? undefined : { kind: 'bundle', platform: DEFAULT_PLATFORM.bundle, version: b[1]!, name };
  const m = ARTIFACT_RE.exec(name);
  if (!m || m[3] === LATEST) return undefined;
  return { kind: m[1] === 'psyopsOS' ? 'os' : 'esp', platform: m[2]!, version: m[3]!, name };
}

/** Temporary names used while publishing: hidden, never parsed as a release. */
export function tempName(name: string, pid = process.pid): string {
  return `.${name}.partial-${pid}`;
}
export const TEMP_RE = /^\.(.+)\.partial-(\d+)$/;
