#!/usr/bin/env node
// Summarise the real-tool checks of the last test run (test/helpers/skip.ts appends one JSON line
// per check to .cache/test-checks.jsonl): how many ran and how many were skipped, by tool/reason,
// and the strict-mode allow-list. `--reset` empties the record before a run.
// Exit status 0 always: the tests themselves fail in strict mode; this only reports.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const file = process.env.DISKIMG_TEST_CHECKS ?? join(root, '.cache', 'test-checks.jsonl');
if (process.argv.includes('--reset')) {
  mkdirSync(dirname(file), { recursive: true });
  rmSync(file, { force: true });
  process.exit(0);
}
const allow = JSON.parse(readFileSync(join(root, 'test', 'strict-allow.json'), 'utf8'));
const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
const recs = [];
for (const l of lines) {
  try { recs.push(JSON.parse(l)); } catch { /* a torn line from a killed worker */ }
}
// One check = one (file, test, tool); a test that ran a tool twice counts once.
const seen = new Map();
for (const r of recs) {
  const k = `${r.file}\0${r.title}\0${r.tool}\0${r.outcome}`;
  if (!seen.has(k)) seen.set(k, r);
}
const by = (outcome) => [...seen.values()].filter((r) => r.outcome === outcome);
const ran = by('ran'), skipped = by('skipped'), failed = by('failed');
const count = (rs, key) => {
  const m = new Map();
  for (const r of rs) m.set(key(r), (m.get(key(r)) ?? 0) + 1);
  return [...m.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])));
};
const strict = process.env.DISKIMG_TEST_STRICT === '1';
console.log(`real-tool checks (${file.replace(root + '/', '')}): ${ran.length} ran, ${skipped.length} skipped, ${failed.length} failed for a missing tool (strict mode ${strict ? 'on' : 'off'})`);
if (ran.length) console.log(`  ran:     ${count(ran, (r) => r.tool).map(([k, n]) => `${k} ${n}`).join(', ')}`);
for (const [k, n] of count(skipped, (r) => `${r.tool}${r.allowed ? ' [allow-listed]' : ''}: ${r.reason}`)) console.log(`  skipped ${n}× ${k}`);
for (const r of failed) console.log(`  FAILED  ${r.file} › ${r.title}: needs ${r.tool}: ${r.reason}`);
console.log('strict-mode allow-list (test/strict-allow.json):');
for (const [k, v] of Object.entries(allow)) console.log(`  ${k}: ${v}`);
