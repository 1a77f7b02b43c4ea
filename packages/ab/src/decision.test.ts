// The decision check, serve and status share (issue 26.10, 27.3): every boot phase against every
// relation of the repository's latest to the booted, failed and armed versions.
import test from 'ava';
import type { BootState } from './boot-state.js';
import { bootPhase, CHECK_EXIT, decideUpdate, type UpdateFacts } from './decision.js';
import { markGoodCommand, shellWord, updateEspCommand } from './hints.js';

const A = 'psyopsOS-A';
const B = 'psyopsOS-B';
const V1 = '20251101-000000';
const V2 = '20251201-000000';
const V3 = '20260101-000000';
const st = (o: Partial<BootState> = {}): BootState => ({ defaultLabel: A, trial: null, failed: null, bad: null, staged: null, nextBoot: { label: A, reason: 'default' }, countingBlock: true, ...o });
const facts = (o: Partial<UpdateFacts> = {}): UpdateFacts => ({
  state: st(),
  booted: { label: A, version: V2 },
  other: { label: B, version: V1 },
  espVersion: V2,
  latest: { os: V2, esp: V2 },
  ...o,
});

test('bootPhase: trial, reboot pending, fell back, confirmed, not default, no slot', (t) => {
  t.deepEqual(bootPhase(st(), A), { phase: 'confirmed', armed: null });
  t.deepEqual(bootPhase(st({ trial: { label: B, triesLeft: 3 }, nextBoot: { label: B, reason: 'trial' } }), A), { phase: 'confirmed', armed: B });
  t.deepEqual(bootPhase(st({ trial: { label: B, triesLeft: 2 }, nextBoot: { label: B, reason: 'trial' } }), B), { phase: 'trial', armed: null });
  t.deepEqual(bootPhase(st({ failed: B }), A), { phase: 'fell-back', armed: null });
  t.deepEqual(bootPhase(st(), B), { phase: 'not-default', armed: null });
  t.is(bootPhase(st(), null).phase, 'no-slot');
});

test('decideUpdate: available, up to date, repository older (exit 13), failed before, armed, ESP', (t) => {
  t.like(decideUpdate(facts({ latest: { os: V3, esp: V2 } })), { os: 'available', status: 'update-available', exitCode: 10, repositoryOlder: false });
  t.like(decideUpdate(facts()), { os: 'up-to-date', esp: 'up-to-date', status: 'up-to-date', exitCode: 0 });
  // A rolled-back or frozen repository: never "up to date".
  t.like(decideUpdate(facts({ latest: { os: V1, esp: V2 } })), { os: 'repository-older', status: 'repository-older', exitCode: 13, repositoryOlder: true });
  t.like(decideUpdate(facts({ latest: { os: V2, esp: V1 } })), { esp: 'repository-older', status: 'repository-older', exitCode: 13 });
  t.like(decideUpdate(facts({ latest: { os: V2, esp: V3 } })), { esp: 'available', status: 'esp-update-available', exitCode: 12 });
  t.like(decideUpdate(facts({ latest: { os: V2, esp: null } })), { esp: 'none', status: 'up-to-date' });
  // Fell back from B, which holds V3: the repository's V3 is what failed.
  const fell = facts({ state: st({ failed: B }), booted: { label: A, version: V2 }, other: { label: B, version: V3 }, latest: { os: V3, esp: V2 } });
  t.like(decideUpdate(fell), { phase: 'fell-back', os: 'failed-before', status: 'boot-pending', exitCode: 11, failedVersion: V3 });
  t.like(decideUpdate({ ...fell, latest: { os: '20260201-000000', esp: V2 } }), { os: 'available', status: 'update-available' });
  // Written and armed: a reboot is pending, nothing is "available".
  const armed = facts({ state: st({ trial: { label: B, triesLeft: 3 }, nextBoot: { label: B, reason: 'trial' } }), other: { label: B, version: V3 }, latest: { os: V3, esp: V2 } });
  t.like(decideUpdate(armed), { os: 'armed', status: 'boot-pending', armed: B });
  // On trial: boot pending first, the repository's relation still reported.
  const trial = facts({ state: st({ trial: { label: A, triesLeft: 2 }, defaultLabel: B }), latest: { os: V1, esp: V2 } });
  t.like(decideUpdate(trial), { phase: 'trial', status: 'boot-pending', os: 'repository-older', repositoryOlder: true });
  t.deepEqual(Object.values(CHECK_EXIT).sort(), [0, 10, 11, 12, 13]);
});

test('hints: complete commands, quoted for a shell', (t) => {
  t.is(shellWord('/srv/repo'), '/srv/repo');
  t.is(shellWord("it's a disk.img"), `'it'\\''s a disk.img'`);
  t.is(updateEspCommand(null, { repo: 'http://h/r/', pubkey: 'k.pub' }), 'diskimg update-esp --repo http://h/r/ --pubkey k.pub');
  t.is(updateEspCommand('/d i.img', { repo: '/r', noVerify: true, fwtype: 'x86_64-uefi' }), `diskimg update-esp '/d i.img' --repo /r --no-verify --fwtype x86_64-uefi`);
  t.is(markGoodCommand(null, { label: B, source: 'cmdline' }), 'diskimg mark-good');
  t.is(markGoodCommand('n.img', { label: B, source: 'next-boot' }), `diskimg mark-good n.img --booted-label ${B}`);
});

test('decideUpdate: the latest is what the other slot holds, marked bad: not offered again', (t) => {
  const d = decideUpdate(facts({ state: st({ bad: B }), other: { label: B, version: V3 }, latest: { os: V3, esp: V2 } }));
  t.is(d.os, 'marked-bad');
  t.is(d.status, 'up-to-date');
  const newer = decideUpdate(facts({ state: st({ bad: B }), other: { label: B, version: V2 }, booted: { label: A, version: V1 }, latest: { os: V3, esp: V2 } }));
  t.is(newer.os, 'available');
});

test('decideUpdate: the latest is what the other slot holds, staged (update --no-switch, never tried): available, so update --repo rewrites and arms it', (t) => {
  const d = decideUpdate(facts({ state: st({ staged: B }), other: { label: B, version: V3 }, latest: { os: V3, esp: V2 } }));
  t.is(d.os, 'available');
  t.is(d.status, 'update-available');
});
