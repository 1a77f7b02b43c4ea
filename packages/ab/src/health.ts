/**
 * `diskimg serve`'s answer (GET /health): the node's health at a glance, read
 * afresh from the disk at every request (read-only: the ESP's grub.cfg and
 * grubenv, two slot signatures, the ESP's signature) plus the last update's
 * record, the repository's latest release (cached: a poll never hammers it)
 * and uptimes. Never a secret: the secret partition is not opened, no key is
 * read but the public one the repository check needs.
 */
import { readFileSync } from 'node:fs';
import { openDisk } from '@diskimg/diskimage/internal';
import { otherSlot, PSYOPS_NAMES, slotOfLabel } from '@diskimg/partitions/internal';
import { bootedLabel } from './boot-state.js';
import { readLastUpdate, type LastUpdate } from './last-update.js';
import { espVersion, fetchLatest } from './repo/node.js';
import { slotStatus } from './status.js';
import { bootPhase, decideUpdate, type CheckStatus, type EspVerdict, type OsVerdict } from './decision.js';
import type { BootState } from './boot-state.js';
import type { BootReason } from '@diskimg/grubcfg/internal';

/** confirmed → HTTP 200; anything else → 503. */
export type HealthState = 'confirmed' | 'trial' | 'fell-back' | 'not-default' | 'no-slot' | 'error';

export interface RepoHealth {
  /** The repository, without any user:password@ part. */
  repo: string;
  /** When the cached answer was fetched (ISO 8601); null before the first answer. */
  checkedAt: string | null;
  /** How old that answer is, in seconds, when this health was made (the page says it). */
  ageSeconds: number | null;
  /**
   * `diskimg check`'s answer for this disk now (decision.ts: the same function), from the boot
   * state read at this request and the cached repository answer; null when either is missing.
   */
  status: CheckStatus | null;
  /** The repository's latest OS version; `updateAvailable` only when `decision` is "available". */
  os: { latest: string | null; updateAvailable: boolean | null; decision: OsVerdict | null };
  /** The ESP's version against the repository's latest ESP: stale when the repository's is newer. */
  esp: { version: string | null; latest: string | null; stale: boolean | null; decision: EspVerdict | null };
  /** The repository's latest OS or ESP is older than this node's (rolled back or frozen). */
  repositoryOlder: boolean | null;
  /** Why the repository could not be checked (then the fields above are null). */
  error: string | null;
}

export interface Health {
  /** True when the booted slot is the confirmed default and no trial failed: HTTP 200. */
  ok: boolean;
  state: HealthState;
  /** `diskimg status`'s line. */
  line: string;
  disk: string;
  /** `unverified`: the slot was written with --no-verify (its version is then null). */
  booted: { label: string | null; source: 'option' | 'cmdline' | 'disk'; version: string | null; unverified: boolean };
  other: { label: string | null; version: string | null; unverified: boolean };
  /** grub.cfg's confirmed default. */
  defaultLabel: string | null;
  /** A trial in grubenv (of the booted slot, or armed for the next boot). */
  trial: { label: string; triesLeft: number; tries: number | null } | null;
  /** GRUB gave up on this slot's trial and fell back (psyopsos_failed). */
  fellBack: { from: string; version: string | null } | null;
  nextBoot: { label: string | null; reason: BootReason };
  /** The ESP payload's version (/psyopsESP.tar.minisig). */
  esp: { version: string | null };
  /** The last update's record; null: none recorded; { error }: unreadable. */
  lastUpdate: LastUpdate | null | { error: string };
  /** Only with a repository: its latest releases against this disk. */
  repo: RepoHealth | null;
  uptime: { nodeSeconds: number | null; serverSeconds: number };
  /** When this answer was made (ISO 8601). */
  time: string;
  /** Set when the disk could not be read (state "error"). */
  error?: string;
}

export interface HealthOptions {
  /** Image file or block device. */
  disk: string;
  /** The booted slot (default: psyopsos= on /proc/cmdline; without one, the slot the disk stands on). */
  bootedLabel?: string;
  /** /proc/cmdline's text (tests). */
  cmdline?: string;
  /** last-update.json (undefined: none). */
  lastUpdatePath?: string;
  /** The repository check, cached (RepoCache). */
  repo?: RepoCache;
  /** When the server started (ms since the epoch). */
  startedAt: number;
  /** /proc/uptime (tests). */
  procUptime?: string;
  now?: () => number;
}

/** Node uptime in whole seconds from /proc/uptime; null where there is none. */
export function nodeUptime(path = '/proc/uptime'): number | null {
  try {
    const s = Number(readFileSync(path, 'utf8').split(/\s+/)[0]);
    return Number.isFinite(s) ? Math.floor(s) : null;
  } catch {
    return null;
  }
}

/** Read the node's health (never writes; the disk is opened read-only). */
export async function readHealth(o: HealthOptions): Promise<Health> {
  const now = o.now?.() ?? Date.now();
  const uptime = { nodeSeconds: nodeUptime(o.procUptime), serverSeconds: Math.max(0, Math.floor((now - o.startedAt) / 1000)) };
  const lastUpdate = o.lastUpdatePath ? readLastUpdate(o.lastUpdatePath) : null;
  const time = new Date(now).toISOString();
  const booted = bootedLabel({ bootedLabel: o.bootedLabel, cmdline: o.cmdline });
  let base: Omit<Health, 'lastUpdate' | 'repo' | 'uptime' | 'time'>;
  let bootState: BootState | undefined;
  try {
    const disk = await openDisk(o.disk);
    try {
      const s = await slotStatus(disk, booted);
      const st = s.state;
      const slot = s.slot;
      const b = slotOfLabel(slot);
      const other = b ? PSYOPS_NAMES[otherSlot(b)] : null;
      bootState = st;
      const state: HealthState = bootPhase(st, slot).phase;
      base = {
        ok: s.confirmed,
        state,
        line: s.line,
        disk: o.disk,
        booted: { label: slot, source: o.bootedLabel ? 'option' : booted ? 'cmdline' : 'disk', version: slot ? (s.versions[slot] ?? null) : null, unverified: !!slot && s.unverified.includes(slot) },
        other: { label: other, version: other ? (s.versions[other] ?? null) : null, unverified: !!other && s.unverified.includes(other) },
        defaultLabel: st.defaultLabel,
        trial: st.trial ? { label: st.trial.label, triesLeft: st.trial.triesLeft, tries: st.trial.tries ?? null } : null,
        fellBack: st.failed && st.failed !== slot ? { from: st.failed, version: s.versions[st.failed] ?? null } : null,
        nextBoot: st.nextBoot,
        esp: { version: await espVersion(disk).catch(() => null) },
      };
    } finally {
      await disk.close();
    }
  } catch (e) {
    const error = (e as Error).message;
    base = {
      ok: false,
      state: 'error',
      line: `cannot read ${o.disk}: ${error}`,
      disk: o.disk,
      booted: { label: booted ?? null, source: o.bootedLabel ? 'option' : booted ? 'cmdline' : 'disk', version: null, unverified: false },
      other: { label: null, version: null, unverified: false },
      defaultLabel: null,
      trial: null,
      fellBack: null,
      nextBoot: { label: null, reason: 'default' },
      esp: { version: null },
      error,
    };
  }
  const repo = o.repo ? repoHealth(await o.repo.get(), base, bootState, now) : null;
  return { ...base, lastUpdate, repo, uptime, time };
}

/** The cached repository answer against this request's disk: the one decision `check` makes (decideUpdate). */
function repoHealth(a: RepoAnswer, h: Omit<Health, 'lastUpdate' | 'repo' | 'uptime' | 'time'>, state: BootState | undefined, now: number): RepoHealth {
  const ageSeconds = a.at === null ? null : Math.max(0, Math.floor((now - a.at) / 1000));
  const base = { repo: a.repo, checkedAt: a.at === null ? null : new Date(a.at).toISOString(), ageSeconds, error: a.error };
  if (!a.latest) {
    return { ...base, status: null, os: { latest: null, updateAvailable: null, decision: null }, esp: { version: h.esp.version, latest: null, stale: null, decision: null }, repositoryOlder: null };
  }
  const latest = { os: a.latest.os, esp: a.latest.esp };
  if (!state) {
    return { ...base, status: null, os: { latest: latest.os, updateAvailable: null, decision: null }, esp: { version: h.esp.version, latest: latest.esp, stale: null, decision: null }, repositoryOlder: null };
  }
  const d = decideUpdate({ state, booted: h.booted, other: h.other, espVersion: h.esp.version, latest });
  return {
    ...base,
    status: d.status,
    os: { latest: latest.os, updateAvailable: d.os === 'available', decision: d.os },
    esp: { version: h.esp.version, latest: latest.esp, stale: latest.esp === null ? null : d.esp === 'available', decision: d.esp },
    repositoryOlder: d.repositoryOlder,
  };
}

/** The repository without credentials (user:password@) for display. */
export function redactRepo(repo: string): string {
  return repo.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

/** Default time a repository answer is reused (5 minutes). */
export const REPO_CACHE_SECONDS = 300;

/** The repository's latest versions as last fetched (or why not), and when (ms since the epoch). */
export interface RepoAnswer {
  repo: string;
  at: number | null;
  latest: { os: string; esp: string | null } | null;
  error: string | null;
}

/**
 * The repository's answer (`fetchLatest`: its pointers, verified) behind a cache: reused for
 * `ttlSeconds`, errors too, and concurrent requests share one fetch in flight. Only the
 * repository is cached: each request decides against the disk as it is then (readHealth).
 */
export class RepoCache {
  private cached: { at: number; value: RepoAnswer } | undefined;
  private inFlight: Promise<RepoAnswer> | undefined;
  /** How many times the repository was asked (tests). */
  checks = 0;
  constructor(
    private readonly o: { repo: string; fetch: () => Promise<{ os: { version: string }; esp: { version: string } | null }>; ttlSeconds?: number; now?: () => number },
  ) {}

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  async get(): Promise<RepoAnswer> {
    const ttl = (this.o.ttlSeconds ?? REPO_CACHE_SECONDS) * 1000;
    if (this.cached && this.now() - this.cached.at < ttl) return this.cached.value;
    this.inFlight ??= this.refresh().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async refresh(): Promise<RepoAnswer> {
    this.checks++;
    const at = this.now();
    const repo = redactRepo(this.o.repo);
    let value: RepoAnswer;
    try {
      const r = await this.o.fetch();
      value = { repo, at, latest: { os: r.os.version, esp: r.esp?.version ?? null }, error: null };
    } catch (e) {
      value = { repo, at, latest: null, error: (e as Error).message };
    }
    this.cached = { at, value };
    return value;
  }
}

/** A RepoCache over the repository's verified pointers (`fetchLatest`). */
export function repoCache(o: { repo: string; pubkey?: string; noVerify?: boolean; arch?: string; fwtype?: string; ttlSeconds?: number }): RepoCache {
  return new RepoCache({
    repo: o.repo,
    ttlSeconds: o.ttlSeconds,
    fetch: () => fetchLatest({ repo: o.repo, pubkey: o.pubkey, noVerify: o.noVerify, arch: o.arch, fwtype: o.fwtype }),
  });
}
