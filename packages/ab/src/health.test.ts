// The health module's pure parts: --listen parsing (no implicit address), the repository cache
// (a clock given, no waiting), the last-update record (atomic write, where it goes), and the
// page's escaping and colours.
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '@diskimg/partitions/internal';
import { parseListen } from './health-server.js';
import { RepoCache, redactRepo, type Health } from './health.js';
import { escapeHtml, fmtDuration, healthColour, HEALTH_COLOURS, renderHealthPage } from './health-page.js';
import { lastUpdatePath, readLastUpdate, withLastUpdate, writeLastUpdate, DEFAULT_LAST_UPDATE_PATH, type LastUpdate } from './last-update.js';
import type { UpdateResult } from './update.js';

const dir = mkdtempSync(join(tmpdir(), 'diskimg-health-unit-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('parseListen: HOST:PORT with the host written out; anything else is a usage error', (t) => {
  t.deepEqual(parseListen('127.0.0.1:8321'), { host: '127.0.0.1', port: 8321 });
  t.deepEqual(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
  t.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  t.deepEqual(parseListen('[::]:8321'), { host: '::', port: 8321 });
  t.deepEqual(parseListen('localhost:8321'), { host: 'localhost', port: 8321 });
  for (const bad of ['8321', ':8321', '0.0.0.0', '', '127.0.0.1:', '127.0.0.1:65536', 'example.com:80', '::1:80', '[127.0.0.1]:80', '1.2.3:80', '127.0.0.1:80 ']) {
    const e = t.throws(() => parseListen(bad), { instanceOf: UsageError }, bad);
    t.regex(e!.message, /^--listen ".*": .*; give HOST:PORT/);
  }
});

test('RepoCache: one fetch per period, shared while in flight; errors cached too; no credentials shown', async (t) => {
  let now = 1_000_000;
  let latest = '20251201-000000';
  let fail = false;
  const c = new RepoCache({
    repo: 'https://user:pw@updates.example/psyopsOS',
    ttlSeconds: 300,
    now: () => now,
    fetch: async () => {
      if (fail) throw new Error('https://updates.example/psyopsOS/x: connection refused');
      return { os: { version: latest }, esp: { version: '20251201-000000' } };
    },
  });
  const [a, b] = await Promise.all([c.get(), c.get()]);
  t.is(c.checks, 1);
  t.is(a, b);
  t.deepEqual(a, { repo: 'https://updates.example/psyopsOS', at: 1_000_000, latest: { os: latest, esp: '20251201-000000' }, error: null });
  latest = '20260101-000000';
  now += 299_000;
  t.is((await c.get()).latest?.os, '20251201-000000');
  t.is(c.checks, 1);
  now += 1_000;
  t.is((await c.get()).latest?.os, '20260101-000000');
  t.is(c.checks, 2);
  fail = true;
  now += 300_000;
  const e = await c.get();
  t.like(e, { latest: null, error: 'https://updates.example/psyopsOS/x: connection refused' });
  await c.get();
  t.is(c.checks, 3, 'a failing repository is not asked again at every poll');
  t.is(redactRepo('http://a:b@h:1/x'), 'http://h:1/x');
  t.is(redactRepo('/srv/repo'), '/srv/repo');
});

const rec = (o: Partial<LastUpdate> = {}): LastUpdate => ({
  format: 1,
  outcome: 'ok',
  time: '2026-11-30T12:00:00.000Z',
  disk: '/dev/sda',
  version: '20251201-000000',
  slot: 'psyopsOS-B',
  previousVersion: '20251101-000000',
  armed: 'psyopsOS-B',
  error: null,
  ...o,
});

test('last-update.json: written by rename (no partial left), read back; missing → null; junk → an error field', async (t) => {
  const p = join(dir, 'var', 'lib', 'diskimg', 'last-update.json');
  t.is(readLastUpdate(p), null);
  writeLastUpdate(p, rec());
  t.deepEqual(readLastUpdate(p), rec());
  t.deepEqual(readdirSync(join(dir, 'var', 'lib', 'diskimg')), ['last-update.json']);
  // a killed update's partial (its process gone) is removed by the next write
  const dead = spawnSync('true').pid;
  writeFileSync(join(dir, 'var', 'lib', 'diskimg', `.last-update.json.partial-${dead}`), '{');
  writeLastUpdate(p, rec());
  t.deepEqual(readdirSync(join(dir, 'var', 'lib', 'diskimg')), ['last-update.json']);
  writeFileSync(p, '{"format": 2}');
  t.regex((readLastUpdate(p) as { error: string }).error, /not a format 1 record/);
  writeFileSync(p, 'not json');
  t.truthy((readLastUpdate(p) as { error: string }).error);

  t.is(lastUpdatePath('/x.img', { DISKIMG_LAST_UPDATE: '/tmp/r.json' }), '/tmp/r.json');
  t.is(lastUpdatePath('/x.img', { DISKIMG_LAST_UPDATE: '' }), undefined);
  t.is(lastUpdatePath(p, {}), undefined, 'an image file: no record unless asked for');
  t.is(lastUpdatePath(undefined, {}), DEFAULT_LAST_UPDATE_PATH, 'the boot disk: the default record');

  const q = join(dir, 'w', 'r.json');
  const result = { disk: '/x.img', dryRun: false, newVersion: 'V', verified: true, previousVersion: 'P', target: { label: 'psyopsOS-A' }, armed: { trial: { label: 'psyopsOS-A' } }, warnings: [] } as unknown as UpdateResult;
  const now = () => new Date('2026-11-30T13:00:00Z');
  await withLastUpdate(q, { disk: '/x.img', now }, async () => result);
  t.like(JSON.parse(readFileSync(q, 'utf8')), { outcome: 'ok', version: 'V', slot: 'psyopsOS-A', armed: 'psyopsOS-A', time: '2026-11-30T13:00:00.000Z' });
  await t.throwsAsync(withLastUpdate(q, { disk: '/x.img', now }, async () => Promise.reject(new Error('no space'))), { message: 'no space' });
  t.like(JSON.parse(readFileSync(q, 'utf8')), { outcome: 'failed', error: 'no space', version: null });
  await withLastUpdate(q, { disk: '/x.img', now }, async () => ({ ...result, upToDate: 'booted' as const }));
  await withLastUpdate(q, { disk: '/x.img', now, dryRun: true }, async () => result);
  t.like(JSON.parse(readFileSync(q, 'utf8')), { outcome: 'failed' }, 'up to date and dry runs leave the record');
  // A record that cannot be written is a warning, not a failed update.
  const blocked = join(dir, 'file');
  writeFileSync(blocked, '');
  const r = await withLastUpdate(join(blocked, 'r.json'), { disk: '/x.img' }, async () => ({ ...result, warnings: [] }));
  t.regex(r.warnings[0]!, /could not be written/);
});

const health = (o: Partial<Health> = {}): Health => ({
  ok: true,
  state: 'confirmed',
  line: 'psyopsOS-A 20251101-000000 ok',
  disk: '/dev/sda',
  booted: { label: 'psyopsOS-A', source: 'cmdline', version: '20251101-000000', unverified: false },
  other: { label: 'psyopsOS-B', version: null, unverified: false },
  defaultLabel: 'psyopsOS-A',
  trial: null,
  fellBack: null,
  nextBoot: { label: 'psyopsOS-A', reason: 'default' },
  esp: { version: null },
  lastUpdate: null,
  repo: null,
  uptime: { nodeSeconds: 93784, serverSeconds: 5 },
  time: '2026-11-30T12:00:00.000Z',
  ...o,
});

test('the page: every value escaped, no script or external asset; colour by state', (t) => {
  t.is(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  const evil = '<script>alert(1)</script>';
  const html = renderHealthPage(
    health({
      line: evil,
      booted: { label: evil, source: 'option', version: `"><img src=x>`, unverified: false },
      lastUpdate: rec({ outcome: 'failed', error: evil }),
      repo: { repo: evil, checkedAt: null, ageSeconds: null, status: null, os: { latest: null, updateAvailable: null, decision: null }, esp: { version: null, latest: null, stale: null, decision: null }, repositoryOlder: null, error: evil },
    }),
  );
  t.notRegex(html, /<script|<img|<link|<iframe|\bsrc="|href=|url\(|@import/i);
  t.regex(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  t.regex(html, /<td>1d 2h 3m<\/td>/);
  t.is(healthColour('confirmed'), 'good');
  t.is(healthColour('trial'), 'warn');
  t.is(healthColour('fell-back'), 'bad');
  t.is(healthColour('error'), 'bad');
  t.regex(renderHealthPage(health()), new RegExp(`background:${HEALTH_COLOURS.good}`));
  t.regex(renderHealthPage(health({ ok: false, state: 'fell-back' })), new RegExp(`background:${HEALTH_COLOURS.bad}`));
  t.is(fmtDuration(59), '59s');
  t.is(fmtDuration(3600), '1h 0m');
  t.is(fmtDuration(null), 'unknown');
});
