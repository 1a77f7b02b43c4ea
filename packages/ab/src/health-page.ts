/**
 * `diskimg serve`'s page (GET /): the same facts as /health on one small,
 * self-contained HTML page: inline CSS, no script, no external asset. A band
 * across the top says good (green: confirmed) or not (amber: on trial or not
 * the default; red: fell back or the disk cannot be read). Every value is
 * escaped: versions and labels come from the disk and the repository.
 */
import type { Health, HealthState } from './health.js';
import type { EspVerdict, OsVerdict } from './decision.js';

/** The band's colour per state (the test looks for these on a screenshot). */
export const HEALTH_COLOURS = { good: '#1a7f37', warn: '#d97706', bad: '#c62828' } as const;

export function healthColour(state: HealthState): keyof typeof HEALTH_COLOURS {
  if (state === 'confirmed') return 'good';
  if (state === 'trial' || state === 'not-default') return 'warn';
  return 'bad';
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in HTML content and quoted attributes. */
export function escapeHtml(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** 93784 → "1d 2h 3m". */
export function fmtDuration(seconds: number | null): string {
  if (seconds === null) return 'unknown';
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m`;
  return m ? `${m}m ${seconds % 60}s` : `${seconds}s`;
}

const HEADLINE: Record<HealthState, string> = {
  confirmed: 'confirmed',
  trial: 'on trial',
  'fell-back': 'fell back',
  'not-default': 'not the default slot',
  'no-slot': 'no slot',
  error: 'disk unreadable',
};

/** The shared decision (decision.ts) in words, as `check` would say it. */
const OS_VERDICT: Record<OsVerdict, string> = {
  available: 'update available',
  armed: 'written to the other slot, boots next',
  'failed-before': 'not newer than the version that failed its trial here',
  'marked-bad': 'what the other slot holds, marked bad: waiting for a fixed version',
  'up-to-date': 'up to date',
  'repository-older': 'OLDER than the booted version: the repository was rolled back or is frozen',
};
const ESP_VERDICT: Record<Exclude<EspVerdict, 'none'>, string> = {
  available: 'ESP is stale',
  'up-to-date': 'ESP up to date',
  'repository-older': 'OLDER than the ESP: the repository was rolled back or is frozen',
};

export function renderHealthPage(h: Health): string {
  const colour = healthColour(h.state);
  const v = (x: string | null | undefined) => x ?? 'unknown';
  // A slot written with --no-verify has no version we believe: say so instead of "unknown".
  const sv = (s: { version: string | null; unverified: boolean }) => (s.unverified ? 'UNVERIFIED (written with --no-verify)' : v(s.version));
  const rows: [string, string][] = [
    ['Booted slot', `${v(h.booted.label)} (${h.booted.source === 'disk' ? 'the disk\u2019s current slot' : h.booted.source === 'option' ? '--booted-label' : '/proc/cmdline'})`],
    ['Version', sv(h.booted)],
    ['Other slot', `${v(h.other.label)} ${sv(h.other)}`],
    ['Confirmed default', v(h.defaultLabel)],
    ['Trial', h.trial ? `${h.trial.label}: ${h.trial.triesLeft}${h.trial.tries !== null ? ` of ${h.trial.tries}` : ''} tries left` : 'none'],
    ['Fell back', h.fellBack ? `yes: ${h.fellBack.from} ${v(h.fellBack.version)} failed its trial` : 'no'],
    ['Next boot', `${v(h.nextBoot.label)} (${h.nextBoot.reason})`],
    ['Last update', lastUpdateText(h.lastUpdate)],
    ['ESP', v(h.esp.version)],
  ];
  if (h.repo) {
    const r = h.repo;
    const age = r.checkedAt === null ? 'not checked yet' : `checked ${fmtDuration(r.ageSeconds)} ago (${r.checkedAt})`;
    rows.push([
      'Repository',
      r.error
        ? `error: ${r.error}; ${age}`
        : `latest ${v(r.os.latest)}${r.os.decision ? ` (${OS_VERDICT[r.os.decision]})` : ''}; ESP ${v(r.esp.latest)}${r.esp.decision && r.esp.decision !== 'none' ? ` (${ESP_VERDICT[r.esp.decision]})` : ''}; ${age}`,
    ]);
  }
  rows.push(['Node uptime', fmtDuration(h.uptime.nodeSeconds)], ['Server uptime', fmtDuration(h.uptime.serverSeconds)], ['Disk', h.disk], ['As of', h.time]);
  if (h.error) rows.push(['Error', h.error]);
  const title = `${v(h.booted.label)} ${h.booted.unverified ? 'UNVERIFIED' : v(h.booted.version)} ${HEADLINE[h.state]}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>${escapeHtml(title)}</title>
<style>
body{margin:0;font:16px/1.4 system-ui,sans-serif;color:#111;background:#fff}
.band{padding:24px 20px;color:#fff;background:${HEALTH_COLOURS[colour]}}
.band h1{margin:0;font-size:28px}
.band p{margin:4px 0 0;font-family:monospace;font-size:16px}
table{border-collapse:collapse;margin:16px 20px}
th,td{text-align:left;padding:4px 16px 4px 0;vertical-align:top}
th{font-weight:600;white-space:nowrap}
td{font-family:monospace;word-break:break-all}
</style>
</head>
<body>
<div class="band ${colour}" id="state" data-state="${escapeHtml(h.state)}">
<h1>${escapeHtml(title)}</h1>
<p id="line">${escapeHtml(h.line)}</p>
</div>
<table>
${rows.map(([k, val]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(val)}</td></tr>`).join('\n')}
</table>
</body>
</html>
`;
}

function lastUpdateText(u: Health['lastUpdate']): string {
  if (u === null) return 'none recorded';
  if ('error' in u && !('outcome' in u)) return `unreadable: ${u.error}`;
  const r = u as Exclude<Health['lastUpdate'], null | { error: string }>;
  if (r.outcome === 'ok') return `ok at ${r.time}: ${r.slot ?? '?'} ${r.previousVersion ?? 'unknown'} -> ${r.version ?? 'unknown'}`;
  return `FAILED at ${r.time}: ${r.error ?? 'unknown error'}`;
}
