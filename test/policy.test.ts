/**
 * The one trust and version policy (packages/ab/src/policy.ts), end to end through the CLI
 * (issue 26 items 6, 7, 8, 9, 12): every refusal is one line on stderr, a non-zero exit, and the
 * image byte-identical (whole-file sha256 before and after).
 *  6. update-esp refuses an older signed ESP (file, a repository whose pointer was replaced by an
 *     older signature, --repo --version OLD) unless --allow-downgrade;
 *  7. create refuses an ESP signed type=psyopsOS or type=diskimg and an OS tarball signed
 *     type=psyopsESP (signatures made by the real minisign);
 *  8. a trusted comment without version=, a booted slot whose signature is unreadable, a slot
 *     written with --no-verify, an ESP without a signature: refused unless --allow-downgrade;
 *  9. update --no-verify never lets the payload vouch for itself: show, show --json, status and
 *     serve's health say UNVERIFIED instead of the version its signature file claims;
 * 12. --tries (and the trial it plans) is checked before the first byte is written: update,
 *     update --dry-run, set-next, push.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readHealth, renderHealthPage } from '../packages/ab/src/index.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { fileSha, partition, tarDir } from './helpers/update.js';
import { needTools } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'policy-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M', '--seed', 'policy'];
const V1 = '20251101-000000';
const V2 = '20251201-000000';
const OLD = '20251115-000000';

const cli = (args: string[]): Promise<CliResult> => runCli(args, { env: ENV });
async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r;
}

/** A refusal: exit `code`, one line on stderr matching `re`, no stack, and `img` byte-identical. */
async function refused(t: ExecutionContext, img: string | undefined, args: string[], re: RegExp, code = 1): Promise<void> {
  const before = img && existsSync(img) ? fileSha(img) : undefined;
  const r = await cli(args);
  t.is(r.code, code, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.notRegex(r.stderr, /internal error|\n\s+at /);
  t.regex(r.stderr, re);
  if (before) t.is(fileSha(img!), before, `${args.join(' ')} changed the image`);
}

function payload(name: string, files: Record<string, string | Buffer>): string {
  const dir = join(work, name);
  for (const [p, d] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), d);
  }
  return tarDir(dir, join(work, `${name}.tar`));
}
const osTar = (name: string, tag: string, extra: Record<string, string | Buffer> = {}) =>
  payload(name, { kernel: `kernel ${tag}\n`, initramfs: `initramfs ${tag}\n`, modloop: `modloop ${tag}\n`, ...extra });
const espTar = (name: string, tag: string) => payload(name, { 'EFI/BOOT/BOOTX64.EFI': `efi ${tag}\n`, 'manifest.json': '{}\n' });

let key: { pub: string; sec: string };
async function sign(file: string, fields: Record<string, string>, sig = `${file}.minisig`): Promise<string> {
  await ok(['sign', file, '--force', '--seckey', key.sec, '--sig', sig, '--trusted', ...Object.entries(fields).map(([k, v]) => `${k}=${v}`)]);
  return sig;
}
const osFields = (v: string) => ({ type: 'psyopsOS', filename: `psyopsOS.x86_64.${v}.tar`, version: v, architecture: 'x86_64' });
const espFields = (v: string) => ({ type: 'psyopsESP', filename: `psyopsESP.x86_64-uefi.${v}.tar`, version: v });

let base: string; // create, verified: A and B = V1, ESP = V1, default A
let osV1: string;
let osV2: string;
let espV1: string;
let espV2: string;

test.before(async () => {
  await ok(['keygen', '--out', join(work, 'k')]);
  key = { pub: join(work, 'k.pub'), sec: join(work, 'k.key') };
  osV1 = osTar('os1', 'one');
  osV2 = osTar('os2', 'two');
  espV1 = espTar('esp1', 'one');
  espV2 = espTar('esp2', 'two');
  await sign(osV1, osFields(V1));
  await sign(osV2, osFields(V2));
  await sign(espV1, espFields(V1));
  await sign(espV2, espFields(V2));
  base = join(work, 'base.img');
  await ok(['create', base, '--os-tar', osV1, '--esp-tar', espV1, '--pubkey', key.pub, ...SMALL]);
});

let n = 0;
function fresh(from = base): string {
  const img = join(work, `d${n++}.img`);
  copyFileSync(from, img);
  return img;
}

test('26.6: update-esp refuses an older signed ESP (file, replaced pointer, --repo --version OLD) unless --allow-downgrade', async (t) => {
  t.timeout(120_000);
  const img = fresh();
  await ok(['update-esp', img, '--esp-tar', espV2, '--pubkey', key.pub]);
  const espOld = espTar('espold', 'old');
  await sign(espOld, espFields(OLD));
  await refused(t, img, ['update-esp', img, '--esp-tar', espOld, '--pubkey', key.pub], new RegExp(`version ${OLD} is older than the ESP .*\\(${V2}\\); pass --allow-downgrade`));
  await refused(t, img, ['update-esp', img, '--esp-tar', espOld, '--pubkey', key.pub, '--dry-run'], /older than the ESP.*--allow-downgrade/);

  // A repository whose ESP pointer was replaced by the older release's signature (a replay).
  const repo = join(work, 'repo');
  mkdirSync(repo);
  await ok(['publish', '--repo', repo, '--esp-tar', espOld, '--seckey', key.sec, '--version', OLD]);
  await ok(['publish', '--repo', repo, '--esp-tar', espV2, '--seckey', key.sec, '--version', '20251220-000000']);
  copyFileSync(join(repo, `psyopsESP.x86_64-uefi.${OLD}.tar.minisig`), join(repo, 'psyopsESP.x86_64-uefi.latest.tar.minisig'));
  await refused(t, img, ['update-esp', img, '--repo', repo, '--pubkey', key.pub], new RegExp(`version ${OLD} is older than the ESP.*--allow-downgrade`));
  await refused(t, img, ['update-esp', img, '--repo', repo, '--version', OLD, '--pubkey', key.pub], new RegExp(`version ${OLD} is older than the ESP.*--allow-downgrade`));

  // The explicit way out.
  const r = await ok(['update-esp', img, '--repo', repo, '--version', OLD, '--pubkey', key.pub, '--allow-downgrade', '--json']);
  t.is(r.json.previousVersion, V2);
  t.is(r.json.newVersion, OLD);
});

test('26.7: create refuses an ESP signed type=psyopsOS or type=diskimg and an OS tarball signed type=psyopsESP (minisign signatures)', async (t) => {
  if (!needTools(t, 'minisign')) return;
  t.timeout(120_000);
  const pub = join(work, 'mk.pub');
  const sec = join(work, 'mk.key');
  execFileSync('minisign', ['-G', '-W', '-p', pub, '-s', sec], { stdio: 'ignore' });
  const msign = (file: string, tc: string, sig: string) => execFileSync('minisign', ['-S', '-s', sec, '-m', file, '-x', sig, '-t', tc], { stdio: 'ignore' });
  const os = join(work, 'm-os.tar');
  copyFileSync(osV1, os);
  msign(os, `type=psyopsOS filename=psyopsOS.x86_64.${V1}.tar version=${V1}`, `${os}.minisig`);
  const esp = join(work, 'm-esp.tar');
  copyFileSync(espV1, esp);
  msign(esp, `type=psyopsESP filename=psyopsESP.x86_64-uefi.${V1}.tar version=${V1}`, `${esp}.minisig`);
  msign(esp, `type=psyopsOS filename=psyopsOS.x86_64.${V1}.tar version=${V1}`, join(work, 'esp-as-os.minisig'));
  msign(esp, `type=diskimg filename=diskimg.${V1}.mjs version=${V1}`, join(work, 'esp-as-bundle.minisig'));
  msign(os, `type=psyopsESP filename=psyopsESP.x86_64-uefi.${V1}.tar version=${V1}`, join(work, 'os-as-esp.minisig'));
  const img = join(work, 'typed.img');
  const common = ['--pubkey', pub, ...SMALL];
  await refused(t, undefined, ['create', img, '--os-tar', os, '--esp-tar', esp, '--esp-sig', join(work, 'esp-as-os.minisig'), ...common], /esp-as-os\.minisig: the trusted comment says type=psyopsOS, not type=psyopsESP/);
  await refused(t, undefined, ['create', img, '--os-tar', os, '--esp-tar', esp, '--esp-sig', join(work, 'esp-as-bundle.minisig'), ...common], /type=diskimg, not type=psyopsESP/);
  await refused(t, undefined, ['create', img, '--os-tar', os, '--os-sig', join(work, 'os-as-esp.minisig'), '--esp-tar', esp, ...common], /os-as-esp\.minisig: the trusted comment says type=psyopsESP, not type=psyopsOS/);
  t.false(existsSync(img));
  // The same inputs, rightly typed, make an image.
  await ok(['create', img, '--os-tar', os, '--esp-tar', esp, ...common]);
});

test('26.8: no version=, an unreadable booted signature, a slot written --no-verify, an ESP without signature: refused unless --allow-downgrade', async (t) => {
  t.timeout(180_000);
  // A signed trusted comment without version=.
  const noVer = await sign(osV2, { type: 'psyopsOS', filename: `psyopsOS.x86_64.${V2}.tar`, architecture: 'x86_64' }, join(work, 'nover.minisig'));
  const img = fresh();
  const args = ['update', img, '--slot', 'inactive', '--os-tar', osV2, '--pubkey', key.pub];
  await refused(t, img, [...args, '--os-sig', noVer], /nover\.minisig: has no version= in its trusted comment.*pass --allow-downgrade/);
  await refused(t, img, [...args, '--os-sig', noVer, '--dry-run'], /has no version=.*--allow-downgrade/);
  const bad = await sign(osV2, { ...osFields(V2), version: '../x' }, join(work, 'badver.minisig'));
  await refused(t, img, [...args, '--os-sig', bad], /not a release version.*--allow-downgrade/);
  t.is((await cli([...args, '--os-sig', noVer, '--allow-downgrade'])).code, 0);

  // The booted slot's /psyopsOS.tar.minisig unreadable (its first line overwritten in place).
  const broken = fresh();
  const a = partition(broken, 'psyopsOS-A');
  const fd = openSync(broken, 'r+');
  try {
    const buf = Buffer.alloc(a.size);
    readSync(fd, buf, 0, a.size, a.start);
    const at = buf.indexOf('untrusted comment:');
    t.true(at >= 0);
    writeSync(fd, Buffer.from('garbage!!'), 0, 9, a.start + at);
  } finally {
    closeSync(fd);
  }
  await refused(t, broken, ['update', broken, '--slot', 'inactive', '--os-tar', osV2, '--pubkey', key.pub], /the version of the booted psyopsOS-A is unknown \(.*\), so 20251201-000000 may be older; pass --allow-downgrade/);
  t.is((await cli(['update', broken, '--slot', 'inactive', '--os-tar', osV2, '--pubkey', key.pub, '--allow-downgrade'])).code, 0);

  // create --no-verify: the slots' versions are unknown (unverified), so is the ESP's (no signature kept).
  const unv = join(work, 'unverified.img');
  await ok(['create', unv, '--os-tar', osV1, '--esp-tar', espV1, '--no-verify', ...SMALL]);
  await refused(t, unv, ['update', unv, '--slot', 'inactive', '--os-tar', osV2, '--pubkey', key.pub], /booted psyopsOS-A is unknown \(psyopsOS-A was written without a signature check.*--allow-downgrade/);
  await refused(t, unv, ['update-esp', unv, '--esp-tar', espV2, '--pubkey', key.pub], /the version of the ESP .* is unknown \(no \/psyopsESP\.tar\.minisig.*--allow-downgrade/);
  t.is((await cli(['update-esp', unv, '--esp-tar', espV2, '--pubkey', key.pub, '--allow-downgrade'])).code, 0);
  // Now verified: an ordinary update needs no flag.
  t.is((await cli(['update-esp', unv, '--esp-tar', espV2, '--pubkey', key.pub])).code, 0);

  // publish: a pointer without version= is not moved blindly.
  const repo = join(work, 'repo8');
  mkdirSync(repo);
  await sign(osV1, { type: 'psyopsOS', filename: `psyopsOS.x86_64.${V1}.tar` }, join(repo, 'psyopsOS.x86_64.latest.tar.minisig'));
  const listing = readdirSync(repo).sort();
  await refused(t, undefined, ['publish', '--repo', repo, '--os-tar', osV2, '--seckey', key.sec, '--version', V2], /the release psyopsOS\.x86_64\.latest\.tar\.minisig names is unknown \(its trusted comment has no version=\).*--allow-downgrade/);
  t.deepEqual(readdirSync(repo).sort(), listing);
  t.is((await cli(['publish', '--repo', repo, '--os-tar', osV2, '--seckey', key.sec, '--version', V2, '--allow-downgrade'])).code, 0);
});

test('26.9: update --no-verify: the payload\'s own signature is dropped, and show, status and serve say UNVERIFIED', async (t) => {
  t.timeout(120_000);
  const img = fresh();
  // The payload carries a signature claiming a far-future version, and the sidecar claims V2.
  const fake = await sign(osV1, osFields('29991231-000000'), join(work, 'fake.minisig'));
  const evil = osTar('evil', 'evil', { 'psyopsOS.tar.minisig': readFileSync(fake) });
  const u = await ok(['update', img, '--slot', 'b', '--booted-label', 'psyopsOS-A', '--os-tar', evil, '--no-verify', '--allow-downgrade', '--json']);
  t.false(u.json.verified);
  t.true(u.json.warnings.some((w: string) => /holds \/psyopsOS\.tar\.minisig; dropped/.test(w)), u.json.warnings.join('\n'));
  const show = await ok(['show', img, '--json']);
  const b = show.json.slots.find((s: any) => s.label === 'psyopsOS-B');
  t.is(b.version, null);
  t.true(b.unverified);
  t.is(b.signature, null); // the payload's own copy was not kept
  const a = show.json.slots.find((s: any) => s.label === 'psyopsOS-A');
  t.is(a.version, V1);
  t.false(a.unverified);
  const text = await ok(['show', img]);
  t.regex(text.stdout, /B psyopsOS-B \(partition 4\): UNVERIFIED \(written with --no-verify/);
  t.notRegex(text.stdout, /29991231/);
  // With a sidecar signature (not checked): kept as a claim, shown as one.
  const img2 = fresh();
  const record = join(work, 'last-update.json');
  const u2 = await runCli(['update', img2, '--slot', 'b', '--booted-label', 'psyopsOS-A', '--os-tar', osV2, '--no-verify', '--no-switch'], { env: { ...ENV, DISKIMG_LAST_UPDATE: record } });
  t.is(u2.code, 0, u2.stderr);
  // The last-update record (serve shows it) does not present the claim as the version written.
  t.like(JSON.parse(readFileSync(record, 'utf8')), { outcome: 'ok', version: null, slot: 'psyopsOS-B' });
  const s2 = await ok(['show', img2]);
  t.regex(s2.stdout, new RegExp(`B psyopsOS-B \\(partition 4\\): UNVERIFIED \\(written with --no-verify; its signature file claims: version=${V2}`));
  // status (prompt line) and serve's health: UNVERIFIED, never the claimed version.
  await ok(['set-next', img, 'b']);
  const st = await cli(['status', img, '--booted-label', 'psyopsOS-B']);
  t.regex(st.stdout, /^psyopsOS-B UNVERIFIED TRIAL/);
  const h = await readHealth({ disk: img, bootedLabel: 'psyopsOS-B', startedAt: Date.now() });
  t.is(h.booted.version, null);
  t.true(h.booted.unverified);
  t.false(h.other.unverified);
  t.regex(renderHealthPage(h), /UNVERIFIED \(written with --no-verify\)/);
  // check: the same word, and --json says so.
  const repo = join(work, 'repo9');
  mkdirSync(repo);
  await ok(['publish', '--repo', repo, '--os-tar', osV2, '--seckey', key.sec, '--version', V2]);
  const c = await cli(['check', img, '--repo', repo, '--pubkey', key.pub, '--booted-label', 'psyopsOS-B', '--json']);
  t.is(c.json?.booted.unverified, true, c.stderr);
  t.is(c.json.booted.version, null);
  t.true(c.json.lines.some((l: string) => l.startsWith('booted: psyopsOS-B UNVERIFIED')), c.json.lines.join('\n'));
});

test('26.12: --tries and the trial are checked before the first byte is written (update, --dry-run, set-next, push)', async (t) => {
  t.timeout(120_000);
  const img = fresh();
  const args = ['update', img, '--slot', 'inactive', '--os-tar', osV2, '--pubkey', key.pub];
  await refused(t, img, [...args, '--tries', '12'], /--tries "12": a whole number from 0 .* to 9/, 2);
  await refused(t, img, [...args, '--tries', 'abc'], /--tries "abc": a whole number/, 2);
  await refused(t, img, [...args, '--tries', '1.5'], /--tries "1\.5"/, 2);
  await refused(t, img, [...args, '--tries', '12', '--dry-run'], /--tries "12"/, 2);
  await refused(t, img, ['set-next', img, 'b', '--tries', 'abc'], /--tries "abc"/, 2);
  // push checks it before ssh is ever started (no such host is contacted).
  await refused(t, img, ['push', img, '--ssh', 'nobody@host.invalid', '--os-tar', osV2, '--pubkey', key.pub, '--tries', '10'], /--tries "10"/, 2);
  // The trial itself: B is the confirmed default and A runs (--booted-label A): arming A's
  // neighbour would be refused by armTrial; now before the slot is written.
  const def = fresh();
  await ok(['set-default', def, 'b']);
  await refused(t, def, ['update', def, '--slot', 'b', '--booted-label', 'psyopsOS-A', '--os-tar', osV2, '--pubkey', key.pub], /psyopsOS-B is already the confirmed default/);
  // Library callers get the same check before any write.
  const { updateSlot } = await import('../packages/ab/src/index.js');
  const before = fileSha(img);
  await t.throwsAsync(updateSlot({ disk: img, slot: 'inactive', osTar: osV2, pubkey: key.pub, tries: Number.NaN }), { message: /--tries NaN: a whole number/ });
  t.is(fileSha(img), before);
  // The same class: numbers parsed late or named as NaN (publish --keep, create --sector-size).
  const repo = join(work, 'repo12');
  mkdirSync(repo);
  await refused(t, undefined, ['publish', '--repo', repo, '--os-tar', osV2, '--seckey', key.sec, '--keep', 'abc'], /--keep "abc": a whole number from 1/, 2);
  await refused(t, undefined, ['publish', '--repo', repo, '--os-tar', osV2, '--seckey', key.sec, '--keep', '0'], /--keep "0"/, 2);
  t.deepEqual(readdirSync(repo), []);
  await refused(t, undefined, ['create', join(work, 'ss.img'), '--os-tar', osV1, '--no-verify', '--no-bootloader', '--sector-size', 'abc', ...SMALL], /sector-size.*"abc"/, 2);
  t.false(existsSync(join(work, 'ss.img')));
  // A good value still works.
  const r = await ok([...args, '--tries', '5', '--json']);
  t.is(r.json.armed.trial.triesLeft, 5);
});
