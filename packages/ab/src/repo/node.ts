/**
 * The node's commands against a repository: `update --repo` (resolve the
 * release, then the one update path, updateSlot) and `check` (compare the
 * repository's latest with the slots and the ESP; exit codes below).
 */
import {
  FileDevice,
  findFilesystemPartition,
  openDisk,
  openFilesystem,
  PSYOPS_NAMES,
  type Device,
  type Disk,
} from '@diskimg/diskimage/internal';
import { ESP_PATHS, InputError, otherSlot, slotOfLabel } from '@diskimg/partitions/internal';
import { readBootState, type BootState } from '../boot-state.js';
import { readSignatureInfo } from '../inspect.js';
import { installedSlotVersion, slotVersion, updateSlot, whichBooted, type UpdateOptions, type UpdateResult } from '../update.js';
import { nodeArch, resolveRelease, type Release } from './client.js';
import { DEFAULT_PLATFORM } from './layout.js';
import { decideUpdate, type CheckStatus, type EspVerdict, type OsVerdict } from '../decision.js';
import { hintDiskOf, markGoodCommand, updateEspCommand } from '../hints.js';

/** Options of `updateFromRepo`: those of `updateSlot`, with a repository and version instead of file names. */
export interface RepoUpdateOptions extends Omit<UpdateOptions, 'osTar' | 'osSig' | 'expectTrusted' | 'sameVersion'> {
  repo: string;
  /** "latest" (default) or a version. */
  version?: string;
  fwtype?: string;
}

/** What `updateFromRepo` did: `updateSlot`'s result and the release it resolved. */
export interface RepoUpdateResult extends UpdateResult {
  release: ReleaseSummary;
  /** The ESP against the repository's latest ESP (its warning, if any, is also in `warnings`). */
  esp: EspComparison;
}

export interface ReleaseSummary {
  version: string;
  filename: string;
  artifact: string;
  signature: string;
  source: string;
  verified: boolean;
}

const summary = (r: Release): ReleaseSummary => ({
  version: r.version,
  filename: r.filename,
  artifact: r.artifact,
  signature: r.signature,
  source: r.source,
  verified: r.verified,
});

/**
 * `diskimg update --repo`: read the pointer (or the version's signature),
 * verify it, take the tarball's name from its trusted comment, then update
 * from that URL exactly as `update --os-tar URL --os-sig URL` does, with the
 * signature bytes already read (the pointer is a copy of them). The booted
 * slot already running that version is not an error here: nothing to do.
 *
 * A publish during the download: the client finishes the version it started
 * whenever the server can still deliver it (an open connection keeps reading
 * a pruned file; a resume needs the file, which `--keep 2` or more keeps).
 * When the file is gone (pruned by `--keep 1`, and the connection dropped or
 * had not started), the update stops with one line saying so: the target is
 * left incomplete, the booted slot and the boot configuration unchanged, and
 * the next run gets the newer release. It never switches versions mid-stream
 * (the bytes already hashed belong to the old signature).
 */
export async function updateFromRepo(o: RepoUpdateOptions): Promise<RepoUpdateResult> {
  if (!o.noVerify && !o.pubkey) throw new InputError('no --pubkey: give the minisign public key that signs your OS updates, or --no-verify');
  const pubkey = o.noVerify ? undefined : o.pubkey;
  const release = await resolveRelease({ repo: o.repo, kind: 'os', platform: o.arch ?? nodeArch(), version: o.version, pubkey });
  const { repo: _repo, version: _version, fwtype, ...rest } = o;
  const r = await updateSlot({
    ...rest,
    osTar: release.artifact,
    osSig: release.signature,
    osSigBytes: release.sigBytes,
    expectTrusted: { type: release.fields.type!, filename: release.filename, version: release.version },
    sameVersion: 'up-to-date',
  }).catch(async (e) => {
    throw await vanished(e, release, o.repo, o.arch, pubkey);
  });
  const esp = await compareEsp(o.disk, o.repo, fwtype, pubkey, updateEspCommand(hintDiskOf(o), { repo: o.repo, pubkey: o.pubkey, noVerify: o.noVerify, fwtype }));
  if (esp.warning) r.warnings.push(esp.warning);
  return { ...r, release: summary(release), esp };
}

/** The download failed because the release is no longer in the repository: say so, and what the pointer names now. */
async function vanished(e: unknown, release: Release, repo: string, arch: string | undefined, pubkey: string | undefined): Promise<unknown> {
  if (!(e instanceof InputError)) return e;
  const m = e.message;
  if (!m.includes(release.filename) || !/HTTP (404|410)|no such file/.test(m)) return e;
  const now = await resolveRelease({ repo, kind: 'os', platform: arch ?? nodeArch(), pubkey }).catch(() => undefined);
  const at = /resuming after (\d+) bytes/.exec(m)?.[1];
  const why = /HTTP \d+[^;)]*|no such file/.exec(m)![0].trim();
  const moved = now && now.version !== release.version ? `; the pointer now names ${now.version}` : '';
  return new InputError(
    at
      ? `${release.artifact}: ${why} when resuming after ${at} bytes: the release was removed from the repository during the download (a newer publish's --keep${moved}); nothing was armed: the booted slot and the confirmed default are unchanged, the target slot is left incomplete (staged: rollback will not go to it, the next update rewrites it); run the update again`
      : `${release.artifact}: ${why}: the repository does not have the release its pointer names (removed since the pointer was read, or never uploaded${moved}); nothing was written; run the update again`,
  );
}

export interface EspComparison {
  /** The ESP's version (its /psyopsESP.tar.minisig); null when it has none. */
  version: string | null;
  /** The repository's latest ESP version; null when it has no ESP release (or it could not be read). */
  latest: string | null;
  /** The repository's ESP is newer than the disk's. */
  behind: boolean;
  /** The warning printed for it: behind, or the ESP pointer could not be verified or read. */
  warning?: string;
}

/** The line `update` and `check` print when the ESP is older than the repository's latest ESP; `command` is the update-esp to run (updateEspCommand). */
export function espBehindWarning(have: string | null, latest: string, command: string): string {
  return `the ESP is ${have ?? 'unversioned (no /psyopsESP.tar.minisig)'}, the repository has psyopsESP ${latest}: run ${command}`;
}

/**
 * The disk's ESP against the repository's ESP pointer, for `update --repo`:
 * no pointer → nothing to say; a pointer that does not verify (or cannot be
 * read) → a warning, never a silent pass; an older ESP → the warning above.
 */
async function compareEsp(diskSpec: string | Device, repo: string, fwtype: string | undefined, pubkey: string | undefined, command: string): Promise<EspComparison> {
  let have: string | null = null;
  try {
    const disk = await openDisk(diskSpec);
    try {
      have = await espVersion(disk);
    } finally {
      await disk.close();
    }
  } catch (e) {
    return { version: null, latest: null, behind: false, warning: `cannot read the ESP's version: ${(e as Error).message}` };
  }
  let esp: Release | null;
  try {
    esp = await resolveEsp(repo, fwtype, pubkey);
  } catch (e) {
    return { version: have, latest: null, behind: false, warning: `cannot compare the ESP with the repository's: ${(e as Error).message}` };
  }
  if (!esp) return { version: have, latest: null, behind: false };
  const behind = have === null || esp.version > have;
  return { version: have, latest: esp.version, behind, warning: behind ? espBehindWarning(have, esp.version, command) : undefined };
}

/** The repository's latest ESP release, verified; null when it has none (no pointer). */
async function resolveEsp(repo: string, fwtype: string | undefined, pubkey: string | undefined): Promise<Release | null> {
  return resolveRelease({ repo, kind: 'esp', platform: fwtype ?? DEFAULT_PLATFORM.esp, pubkey }).catch((e) => {
    if (e instanceof InputError && /: not found; the repository has no/.test(e.message)) return null;
    throw e;
  });
}

/** The ESP payload's version from /psyopsESP.tar.minisig; null when absent. */
export async function espVersion(disk: Disk): Promise<string | null> {
  const fs = await openFilesystem(await findFilesystemPartition(disk, PSYOPS_NAMES.esp));
  return (await readSignatureInfo(fs, ESP_PATHS.signature))?.metadata.version ?? null;
}

/** Options of `checkRepo` (the flags of `diskimg check`). */
export interface CheckOptions {
  disk: string | Device;
  repo: string;
  pubkey?: string;
  noVerify?: boolean;
  bootedLabel?: string;
  cmdline?: string;
  arch?: string;
  fwtype?: string;
  /** The disk the suggested commands name: default `disk` when a path; null when it was found by label (they omit it). */
  hintDisk?: string | null;
}

export { CHECK_EXIT, type CheckStatus } from '../decision.js';

/** `checkRepo`'s answer: status and exit code, booted and other slot, the repository's releases, and one line per item. */
export interface CheckResult {
  status: CheckStatus;
  exitCode: number;
  disk: string;
  /** `unverified`: the slot was written with --no-verify (its version is then null). */
  booted: { label: string | null; source: string; version: string | null; unverified: boolean; state: 'confirmed' | 'trial' | 'fell-back' | 'reboot-pending' | 'not-default' | 'no-slot' };
  other: { label: string | null; version: string | null; unverified: boolean };
  boot: BootState;
  repo: { os: ReleaseSummary; esp: ReleaseSummary | null };
  esp: { version: string | null; updateAvailable: boolean };
  /** The repository's latest OS or ESP is older than this node's (exit 13 unless a boot is pending or an OS update is available). */
  repositoryOlder: boolean;
  /** The shared decision (decision.ts) behind `status`: also what `serve` reports. */
  decision: { os: OsVerdict; esp: EspVerdict };
  /** Also the last lines (`warning: …`): e.g. the ESP older than the repository's. */
  warnings: string[];
  /** One line per item, for people and logs. */
  lines: string[];
}

/** The repository's latest releases, verified (what `serve` caches): the OS release, and the ESP's or null. */
export interface RepoLatest {
  os: Release;
  esp: Release | null;
}

/** Read the repository's latest OS and ESP pointers, verified with `pubkey` (unless noVerify). Network and signature problems throw. */
export async function fetchLatest(o: Pick<CheckOptions, 'repo' | 'pubkey' | 'noVerify' | 'arch' | 'fwtype'>): Promise<RepoLatest> {
  if (!o.noVerify && !o.pubkey) throw new InputError('no --pubkey: give the minisign public key that signs your updates, or --no-verify');
  const pubkey = o.noVerify ? undefined : o.pubkey;
  const os = await resolveRelease({ repo: o.repo, kind: 'os', platform: o.arch ?? nodeArch(), pubkey });
  // check is stricter than update: an ESP pointer that does not verify is an error here too.
  const esp = await resolveEsp(o.repo, o.fwtype, pubkey);
  return { os, esp };
}

/** Compare the repository's latest releases with the disk's slots, ESP and boot state (`diskimg check`); `exitCode` says what to do next. */
export async function checkRepo(o: CheckOptions): Promise<CheckResult> {
  if (!o.noVerify && !o.pubkey) throw new InputError('no --pubkey: give the minisign public key that signs your updates, or --no-verify');
  const disk = await openDisk(o.disk);
  let state: BootState;
  let booted: ReturnType<typeof whichBooted>;
  let bootedVersion: string | null = null;
  let otherLabel: string | null = null;
  let otherVersion: string | null = null;
  let espHave: string | null = null;
  const warnings: string[] = [];
  const unverified = new Set<string>();
  try {
    const isBlock = disk.device instanceof FileDevice && disk.device.isBlockDevice;
    state = await readBootState(disk);
    booted = whichBooted(o, isBlock, state);
    const b = slotOfLabel(booted.label);
    if (booted.label) bootedVersion = await slotVersion(disk, booted.label, warnings);
    if (b) {
      otherLabel = PSYOPS_NAMES[otherSlot(b)];
      otherVersion = await slotVersion(disk, otherLabel, warnings);
    }
    for (const l of [booted.label, otherLabel]) if (l && (await installedSlotVersion(disk, l)).unverified) unverified.add(l);
    espHave = await espVersion(disk).catch(() => null);
  } finally {
    await disk.close();
  }
  // Network and signature problems are errors, never "up to date".
  const { os, esp } = await fetchLatest(o);
  const d = decideUpdate({
    state,
    booted: { label: booted.label, version: bootedVersion },
    other: { label: otherLabel, version: otherVersion },
    espVersion: espHave,
    latest: { os: os.version, esp: esp?.version ?? null },
  });
  const bootedState: CheckResult['booted']['state'] = d.phase === 'trial' ? 'trial' : d.armed ? 'reboot-pending' : d.phase;
  const status = d.status;
  const espUpdate = d.esp === 'available';
  const hintDisk = hintDiskOf(o);
  const repoArgs = { repo: o.repo, pubkey: o.pubkey, noVerify: o.noVerify, fwtype: o.fwtype };

  const v = (x: string | null) => x ?? 'unknown';
  const sv = (label: string | null, x: string | null) => (label && unverified.has(label) ? 'UNVERIFIED' : v(x)); // --no-verify slots
  const lines = [
    `booted: ${booted.label ?? 'unknown'} ${sv(booted.label, bootedVersion)} (${bootedState}${state.trial ? `, ${state.trial.label} on trial, ${state.trial.triesLeft} tries left` : ''}${state.failed ? `, ${state.failed} failed its trial` : ''})`,
    `other: ${otherLabel ?? 'unknown'} ${sv(otherLabel, otherVersion)}`,
    `repository: ${os.filename}${os.verified ? '' : ' (signature NOT verified)'}`,
    esp
      ? `esp: ${v(espHave)}, repository ${esp.version}${espUpdate ? ': update-esp available' : d.esp === 'repository-older' ? ": the repository's is OLDER" : ': up to date'}`
      : `esp: ${v(espHave)}, no ESP release in the repository`,
    {
      'boot-pending':
        d.phase === 'trial'
          ? `boot pending: ${booted.label} is on trial; confirm it with "${markGoodCommand(hintDisk, booted)}" before updating`
          : d.armed
            ? `boot pending: ${d.armed} is armed for the next boot; reboot`
            : `boot pending: ${state.failed} failed its trial with ${v(d.failedVersion)} and the repository has nothing newer`,
      'update-available': `update available: ${os.version} (booted ${v(bootedVersion)})`,
      'repository-older':
        d.os === 'repository-older'
          ? `repository older: its latest is ${os.version}, older than the booted ${v(bootedVersion)} (rolled back or frozen?); nothing to apply`
          : `repository older: its latest ESP is ${esp?.version}, older than the ESP's ${v(espHave)} (rolled back or frozen?); nothing to apply`,
      'esp-update-available': `ESP update available: ${esp?.version}`,
      'up-to-date': `up to date: ${v(bootedVersion)}${d.os === 'marked-bad' ? ` (the repository's latest, ${os.version}, is what ${otherLabel} holds, marked bad: publish a fixed version)` : ''}`,
    }[status],
  ];
  if (espUpdate) warnings.push(espBehindWarning(espHave, esp!.version, updateEspCommand(hintDisk, repoArgs)));
  lines.push(...warnings.map((w) => `warning: ${w}`));
  return {
    status,
    exitCode: d.exitCode,
    disk: typeof o.disk === 'string' ? o.disk : 'disk',
    booted: { ...booted, version: bootedVersion, unverified: !!booted.label && unverified.has(booted.label), state: bootedState },
    other: { label: otherLabel, version: otherVersion, unverified: !!otherLabel && unverified.has(otherLabel) },
    boot: state,
    repo: { os: summary(os), esp: esp ? summary(esp) : null },
    esp: { version: espHave, updateAvailable: espUpdate },
    repositoryOlder: d.repositoryOlder,
    decision: { os: d.os, esp: d.esp },
    warnings,
    lines,
  };
}
