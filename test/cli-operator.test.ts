/**
 * Issue 10, operator-grade CLI: what a new user and a careless operator run into. Every case is
 * the CLI run as a child (test/helpers/cli.ts), with the exit code, one line on stderr, and what
 * is (not) left on disk.
 */
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { repoRoot, runCli, type CliResult } from './helpers/cli.js';
import { needRoot, needTools, skipOrFail } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'cli-op-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const SMALL = ['--esp-size', '40M', '--secret-size', '8M', '--slot-size', '32M'];
const CLI = [process.execPath, '--import=tsx', '--conditions=source', 'packages/cli/src/run.ts'];
const have = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;

function tree(name: string, files: Record<string, string | Buffer>): string {
  const d = join(work, name);
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), data);
  }
  return d;
}
function tarOf(dir: string, out: string): string {
  execFileSync('tar', ['-C', dir, '--sort=name', '--mtime=@1700000000', '--owner=0', '--group=0', '-cf', out, '.']);
  return out;
}
const osTar = tarOf(tree('os', { kernel: Buffer.alloc(30_000, 1), initramfs: Buffer.alloc(20_000, 2), squashfs: Buffer.alloc(100_000, 3) }), join(work, 'os.tar'));
const espDir = tree('esp', { 'EFI/BOOT/BOOTX64.EFI': Buffer.alloc(5_000, 4), 'manifest.json': '{"extra_programs": {}}' });
const espTar = tarOf(espDir, join(work, 'esp.tar'));
const noBootEsp = tarOf(tree('esp-noboot', { 'memtest.efi': 'm' }), join(work, 'esp-noboot.tar'));

function fails(t: import('ava').ExecutionContext, r: CliResult, code: number, re: RegExp): void {
  t.is(r.code, code, r.stdout + r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.notRegex(r.stderr, /internal error|\n\s+at /);
  t.regex(r.stderr, re);
}
const partials = (dir: string, out: string) => readdirSync(dir).filter((n) => n.startsWith(`.${basename(out)}.partial-`));

type Keys = { pub: string; key: string; signedOs: string; signedEsp: string };
let keys: Promise<Keys> | undefined;
/** One key pair and signed copies of the OS and ESP tarballs, made once for every test. */
function signed(t: import('ava').ExecutionContext): Promise<Keys> {
  keys ??= makeKeys(t);
  return keys;
}
async function makeKeys(t: import('ava').ExecutionContext): Promise<Keys> {
  const prefix = join(work, 'k');
  t.is((await runCli(['keygen', '--out', prefix])).code, 0);
  const signedOs = join(work, 'signed-os.tar');
  const signedEsp = join(work, 'signed-esp.tar');
  execFileSync('cp', [osTar, signedOs]);
  execFileSync('cp', [espTar, signedEsp]);
  for (const [f, type] of [[signedOs, 'psyopsOS'], [signedEsp, 'psyopsESP']] as const) {
    const s = await runCli(['sign', f, '--seckey', `${prefix}.key`, '--trusted', `type=${type}`, '--trusted', 'version=20251129-000000']);
    t.is(s.code, 0, s.stderr);
  }
  return { pub: `${prefix}.pub`, key: `${prefix}.key`, signedOs, signedEsp };
}

// ---- global options ---------------------------------------------------------------------------

test('--version prints the version of packages/cli; no command is one usage line without "see --help" twice', async (t) => {
  const v = await runCli(['--version']);
  t.is(v.code, 0);
  t.is(v.stdout.trim(), JSON.parse(readFileSync(join(repoRoot, 'packages/cli/package.json'), 'utf8')).version);
  const n = await runCli([]);
  fails(t, n, 2, /name a command/);
  t.is(n.stderr.match(/--help/g)?.length, 1);
});

test('shell completion: a script, and completions for a command prefix', async (t) => {
  const c = await runCli(['completion']);
  t.is(c.code, 0, c.stderr);
  t.regex(c.stdout, /diskimg --get-yargs-completions/);
  const g = await runCli(['--get-yargs-completions', 'diskimg', 'cre']);
  t.regex(g.stdout, /^create/m);
});

test('--help of create has examples and states the units', async (t) => {
  const h = await runCli(['create', '--help']);
  t.is(h.code, 0);
  t.regex(h.stdout, /Examples:/);
  t.regex(h.stdout, /M = MiB/);
  t.regex(h.stdout, /MB are powers of 1000|KB, MB, GB, TB are powers of 1000/);
});

test('a single-valued option given twice is a usage error naming it (exit 2)', async (t) => {
  const img = join(work, 'twice.img');
  fails(t, await runCli(['create', img, '--layout-only', '--slot-size', '64M', '--slot-size', '64M']), 2, /--slot-size: option given more than once/);
  fails(t, await runCli(['create', img, '--os-tar', osTar, '--os-tar', osTar, '--no-verify']), 2, /--os-tar: option given more than once/);
  fails(t, await runCli(['create', img, '--os-tar', osTar, '--pubkey', 'K', '--pubkey', 'K']), 2, /--pubkey: option given more than once/);
  fails(t, await runCli(['create', img, '--os-tar', osTar, '--verify', '--no-verify']), 2, /--verify and --no-verify: option given more than once/);
  fails(t, await runCli(['show', img, '--json', '--json']), 2, /--json: option given more than once/);
  t.false(existsSync(img));
  // An array option may repeat.
  const f = join(work, 'twice.txt');
  writeFileSync(f, 'x');
  const { key } = await signed(t);
  const s = await runCli(['sign', f, '--seckey', key, '--trusted', 'a=1', '--trusted', 'b=2']);
  t.is(s.code, 0, s.stderr);
});

test('a size option with a negative value names the option; sizes name the option, not "partition 3"', async (t) => {
  const img = join(work, 'neg.img');
  fails(t, await runCli(['create', img, '--layout-only', '--slot-size', '-5M']), 1, /^diskimg: --slot-size "-5M": expected a number/);
  fails(t, await runCli(['create', img, '--layout-only', '--slot-size', '12Q']), 1, /^diskimg: --slot-size "12Q"/);
  fails(t, await runCli(['create', img, '--layout-only', '--esp-size', '0']), 1, /^diskimg: --esp-size 0: size is 0/);
  fails(t, await runCli(['create', img, '--layout-only', '--secret-size', '1000']), 1, /^diskimg: --secret-size 1000: .*multiple of the 512-byte sector size/);
  fails(t, await runCli(['create', img, '--os-tar', osTar, '--no-verify', '--no-bootloader', '--esp-size', '40M', '--slot-size', '1M']), 1, /^diskimg: --slot-size 1 MiB is too small/);
  t.false(existsSync(img));
  t.deepEqual(partials(work, img), []);
});

test('SOURCE_DATE_EPOCH: garbage, negative and out-of-range values are usage errors naming the range', async (t) => {
  const img = join(work, 'sde.img');
  for (const v of ['garbage', '-1', '99999999999', '0', '1.5']) {
    fails(t, await runCli(['create', img, '--os-tar', osTar, '--no-verify', '--no-bootloader', ...SMALL], { env: { SOURCE_DATE_EPOCH: v } }), 2, /SOURCE_DATE_EPOCH=.*315532800\.\.4354819198/);
  }
  t.false(existsSync(img));
  // The edges are accepted and written as given (grub.cfg's last_updated has a four-digit year).
  const r = await runCli(['create', img, '--os-tar', osTar, '--esp-tar', espTar, '--no-verify', ...SMALL], { env: { SOURCE_DATE_EPOCH: '4354819198' } });
  t.is(r.code, 0, r.stderr);
  const cfg = await runCli(['cat', img, 'PSYOPSOSEFI:/grub/grub.cfg']);
  t.regex(cfg.stdout, /last_updated=21071231-235958/);
  rmSync(img);
});

// ---- create: failures and signals leave nothing behind -----------------------------------------

test('create into a missing directory, an image too large for the filesystem: one line naming OUTPUT, no partial', async (t) => {
  fails(t, await runCli(['create', join(work, 'nodir', 'x.img'), '--layout-only']), 1, /nodir\/x\.img: directory .*nodir does not exist/);
  const img = join(work, 'huge.img');
  const r = await runCli(['create', img, '--layout-only', '--slot-size', '100T']);
  fails(t, r, 1, /huge\.img: an image of .* TiB is larger than the filesystem .* allows/);
  t.notRegex(r.stderr, /partial|EFBIG|ftruncate/);
  t.false(existsSync(img));
  t.deepEqual(partials(work, img), []);
});

test('disk full (ENOSPC) names OUTPUT and leaves no partial', async (t) => {
  if (!needRoot(t, 'a small tmpfs mount')) return;
  const mnt = join(work, 'full');
  mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) return void skipOrFail(t, `mount tmpfs failed: ${m.stderr.trim()}`, { tool: 'tmpfs' });
  try {
    const img = join(mnt, 'out.img');
    const r = await runCli(['create', img, '--os-tar', osTar, '--esp-tar', espTar, '--no-verify', ...SMALL]);
    fails(t, r, 1, /out\.img: no space left on the filesystem holding/);
    t.notRegex(r.stderr, /partial/);
    t.deepEqual(readdirSync(mnt), []);
  } finally {
    spawnSync('umount', [mnt]);
  }
});

/** Start create on a payload big enough to take a while; resolve once its temporary file exists. */
function slowCreate(out: string, payload: string) {
  const child = spawn(CLI[0]!, [...CLI.slice(1), 'create', out, '--os-tar', payload, '--esp-tar', espTar, '--no-verify', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '400M'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  const started = (async () => {
    for (let i = 0; i < 600; i++) {
      if (partials(work, out).length > 0) return true;
      if (child.exitCode !== null) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  })();
  return { child, exited, started, stderr: () => stderr };
}

const bigOs = () => {
  const p = join(work, 'big-os.tar');
  if (!existsSync(p)) tarOf(tree('big-os', { kernel: 'k', initramfs: 'i', squashfs: Buffer.alloc(300 * 2 ** 20, 7) }), p);
  return p;
};

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  test.serial(`${sig} during create removes the temporary file and exits ${code}`, async (t) => {
    const out = join(work, `sig-${sig}.img`);
    const c = slowCreate(out, bigOs());
    t.true(await c.started, `create never started writing: ${c.stderr()}`);
    c.child.kill(sig);
    const { code: got } = await c.exited;
    t.is(got, code, c.stderr());
    t.false(existsSync(out));
    t.deepEqual(partials(work, out), []);
  });
}

test.serial('a later create removes stale partials of dead processes for the same OUTPUT, not live ones', async (t) => {
  const out = join(work, 'stale.img');
  const dead = spawnSync('true').pid!; // has exited
  writeFileSync(join(work, `.stale.img.partial-${dead}`), 'old');
  writeFileSync(join(work, `.stale.img.partial-${process.pid}`), 'live'); // this test process is alive
  writeFileSync(join(work, `.other.img.partial-${dead}`), 'another output');
  const r = await runCli(['create', out, '--layout-only']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(partials(work, out), [`.stale.img.partial-${process.pid}`]);
  t.true(existsSync(join(work, `.other.img.partial-${dead}`)));
  rmSync(join(work, `.stale.img.partial-${process.pid}`));
  rmSync(join(work, `.other.img.partial-${dead}`));
  rmSync(out);
});

test('a closed stdout (| head -1) ends show and create quietly: no EPIPE, no stack trace', async (t) => {
  const img = join(work, 'pipe.img');
  const sh = (cmd: string) => spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { cwd: repoRoot, encoding: 'utf8' });
  const cli = CLI.map((a) => `'${a}'`).join(' ');
  const c = sh(`${cli} create ${img} --layout-only | head -1; echo "rc=\${PIPESTATUS[0]}"`);
  t.regex(c.stdout, /^created .*\nrc=0\n$/);
  t.is(c.stderr, '');
  // A long listing (many lines) into head -1.
  const s = sh(`for i in 1 2 3; do ${cli} show ${img}; done | head -1; echo "rc=\${PIPESTATUS[0]}"`);
  t.is(s.stderr, '');
  t.regex(s.stdout, /GPT/);
  const j = sh(`${cli} show ${img} --json | head -c 10 >/dev/null; echo "rc=\${PIPESTATUS[0]}"`);
  t.is(j.stderr, '');
  t.regex(j.stdout, /rc=0/);
  rmSync(img);
});

// ---- security defaults --------------------------------------------------------------------------

test('with --pubkey, an unsigned ESP tarball and an --esp-dir are refused unless --no-verify-esp; --no-verify says what it skipped', async (t) => {
  const { pub, signedOs, signedEsp } = await signed(t);
  const img = join(work, 'espsig.img');
  fails(t, await runCli(['create', img, '--os-tar', signedOs, '--esp-tar', espTar, '--pubkey', pub, ...SMALL]), 1, /esp\.tar: the ESP tarball has no signature.*--no-verify-esp/);
  fails(t, await runCli(['create', img, '--os-tar', signedOs, '--esp-dir', espDir, '--pubkey', pub, ...SMALL]), 1, /--esp-dir .*: a directory has no signature to verify.*--no-verify-esp/);
  t.false(existsSync(img));
  // Signed: verified (and reported so in --json).
  const ok = await runCli(['create', img, '--os-tar', signedOs, '--esp-tar', signedEsp, '--pubkey', pub, '--json', ...SMALL]);
  t.is(ok.code, 0, ok.stderr);
  t.truthy(ok.json.verified.esp);
  t.deepEqual(ok.json.unverified, []);
  // Waived: built, with a warning naming the payload.
  const w = await runCli(['create', img, '--os-tar', signedOs, '--esp-dir', espDir, '--pubkey', pub, '--no-verify-esp', ...SMALL]);
  t.is(w.code, 0, w.stderr);
  t.regex(w.stderr, /warning: NOT verified: ESP directory .*esp \(--no-verify-esp\)/);
  // show marks the ESP signature missing.
  const s = await runCli(['show', img]);
  t.regex(s.stdout, /signature: MISSING/);
  const n = await runCli(['create', img, '--os-tar', osTar, '--esp-tar', espTar, '--no-verify', ...SMALL]);
  t.is(n.code, 0, n.stderr);
  t.regex(n.stderr, /NOT verified: OS tarball .*os\.tar \(--no-verify\)/);
  t.regex(n.stderr, /NOT verified: ESP tarball .*esp\.tar \(--no-verify\)/);
  rmSync(img);
});

test('no bootloader: create without an ESP payload, or with one lacking EFI/BOOT/BOOTX64.EFI, is refused unless --no-bootloader', async (t) => {
  const img = join(work, 'noboot.img');
  fails(t, await runCli(['create', img, '--os-tar', osTar, '--no-verify', ...SMALL]), 1, /no ESP payload: .*BOOTX64\.EFI.*--no-bootloader/);
  fails(t, await runCli(['create', img, '--os-tar', osTar, '--esp-tar', noBootEsp, '--no-verify', ...SMALL]), 1, /esp-noboot\.tar: no \/EFI\/BOOT\/BOOTX64\.EFI.*--no-bootloader/);
  t.false(existsSync(img));
  t.deepEqual(partials(work, img), []);
  t.is((await runCli(['create', img, '--os-tar', osTar, '--no-verify', '--no-bootloader', ...SMALL])).code, 0);
  rmSync(img);
});

// ---- careless input -----------------------------------------------------------------------------

test('OUTPUT equal to an input is refused; an existing non-image needs --force; a symlink OUTPUT stays a link', async (t) => {
  const { pub, signedOs, signedEsp } = await signed(t);
  const before = readFileSync(signedOs);
  fails(t, await runCli(['create', signedOs, '--os-tar', signedOs, '--esp-tar', signedEsp, '--pubkey', pub, ...SMALL]), 1, /is the --os-tar input/);
  fails(t, await runCli(['create', pub, '--os-tar', signedOs, '--esp-tar', signedEsp, '--pubkey', pub, ...SMALL]), 1, /is the --pubkey input/);
  fails(t, await runCli(['create', `${signedOs}.minisig`, '--os-tar', signedOs, '--esp-tar', signedEsp, '--pubkey', pub, '--force', ...SMALL]), 1, /is the --os-sig input/);
  t.deepEqual(readFileSync(signedOs), before);
  t.regex(readFileSync(pub, 'utf8'), /minisign public key/);
  // Inside an input directory.
  fails(t, await runCli(['create', join(espDir, 'x.img'), '--os-tar', osTar, '--esp-dir', espDir, '--no-verify', ...SMALL]), 1, /lies inside the --esp-dir input/);
  // A file that is not an image.
  const notes = join(work, 'notes.txt');
  writeFileSync(notes, 'precious');
  fails(t, await runCli(['create', notes, '--layout-only']), 1, /notes\.txt: exists and is not a disk image \(no GPT\); give --force/);
  t.is(readFileSync(notes, 'utf8'), 'precious');
  t.is((await runCli(['create', notes, '--layout-only', '--force'])).code, 0);
  // An image is replaced without --force.
  t.is((await runCli(['create', notes, '--layout-only', '--slot-size', '8M'])).code, 0);
  // A symlink: the image goes to its target, the link stays.
  const target = join(work, 'target.img');
  const link = join(work, 'link.img');
  symlinkSync(target, link);
  writeFileSync(target, '');
  const r = await runCli(['create', link, '--layout-only']);
  t.is(r.code, 0, r.stderr);
  t.true(lstatSync(link).isSymbolicLink());
  t.true(lstatSync(target).size > 0);
  for (const f of [notes, target, link]) rmSync(f);
});

test('--layout-only with content options, --secret-dir FILE, a slot in upper case', async (t) => {
  const img = join(work, 'careless.img');
  fails(t, await runCli(['create', img, '--layout-only', '--os-tar', osTar, '--pubkey', 'k.pub']), 2, /--layout-only writes only the partition table; drop --os-tar, --pubkey/);
  fails(t, await runCli(['create', img, '--os-tar', osTar, '--secret-dir', osTar, '--no-verify', '--no-bootloader']), 1, /--secret-dir .*os\.tar: not a directory/);
  t.false(existsSync(img));
  const r = await runCli(['create', img, '--os-tar', osTar, '--no-verify', '--no-bootloader', '--default-slot', 'B', '--json', ...SMALL]);
  t.is(r.code, 0, r.stderr);
  t.is(r.json.defaultSlot, 'psyopsOS-B');
  const s = await runCli(['set-default', img, 'A', '--json']);
  t.is(s.code, 0, s.stderr);
  t.is(s.json.defaultLabel, 'psyopsOS-A');
  // --json is printed one way by every command: indented.
  t.regex(s.stdout, /^\{\n {2}"/);
  rmSync(img);
});

test('sign and keygen: missing file, directory, existing signature (--force), --out dir/ and a missing directory', async (t) => {
  const { key } = await signed(t);
  fails(t, await runCli(['sign', join(work, 'nothing.tar'), '--seckey', key]), 1, /nothing\.tar: no such file to sign/);
  fails(t, await runCli(['sign', work, '--seckey', key]), 1, /: is a directory; sign a file/);
  const f = join(work, 'to-sign.tar');
  writeFileSync(f, 'payload');
  t.is((await runCli(['sign', f, '--seckey', key])).code, 0);
  const first = readFileSync(`${f}.minisig`, 'utf8');
  fails(t, await runCli(['sign', f, '--seckey', key, '--trusted', 'type=other']), 1, /to-sign\.tar\.minisig: already exists; give --force/);
  t.is(readFileSync(`${f}.minisig`, 'utf8'), first);
  t.is((await runCli(['sign', f, '--seckey', key, '--trusted', 'type=other', '--force'])).code, 0);
  t.regex(readFileSync(`${f}.minisig`, 'utf8'), /trusted comment: type=other/);
  fails(t, await runCli(['sign', f, '--seckey', key, '--sig', f, '--force']), 1, /is the file being signed/);
  fails(t, await runCli(['sign', f, '--seckey', key, '--sig', join(work, 'nodir', 'x.minisig')]), 1, /directory .*nodir does not exist/);
  fails(t, await runCli(['sign', f, '--seckey', work, '--force']), 1, /is a directory/);
  const kd = join(work, 'keys');
  mkdirSync(kd);
  fails(t, await runCli(['keygen', '--out', `${kd}/`]), 1, /--out .*keys\/: is a directory; give a path prefix/);
  fails(t, await runCli(['keygen', '--out', kd]), 1, /is a directory/);
  t.deepEqual(readdirSync(kd), []);
  fails(t, await runCli(['keygen', '--out', join(work, 'nodir', 'k')]), 1, /--out .*nodir\/k: directory .*nodir does not exist/);
});

test('an image cut short: the error says it looks truncated', async (t) => {
  const img = join(work, 'cut.img');
  t.is((await runCli(['create', img, '--layout-only', '--slot-size', '8M'])).code, 0);
  execFileSync('truncate', ['-s', '10M', img]);
  fails(t, await runCli(['show', img]), 1, /both headers are damaged.*the disk looks truncated: its primary GPT header expects at least \d+ sectors/);
  rmSync(img);
});

test('the one-file bundle runs outside the repository', async (t) => {
  const out = join(work, 'bundle', 'diskimg.mjs');
  // The same script as `pnpm run bundle` (package.json), to a file of our own.
  const b = spawnSync(process.execPath, ['scripts/bundle.mjs', '--outfile', out, '--quiet'], { cwd: repoRoot, encoding: 'utf8' });
  t.is(b.status, 0, b.stderr);
  const elsewhere = mkdtempSync(join(tmpdir(), 'cli-op-elsewhere-'));
  try {
    const run = (...args: string[]) => spawnSync(process.execPath, [out, ...args], { cwd: elsewhere, encoding: 'utf8' });
    t.regex(run('--version').stdout, /^\d+\.\d+\.\d+ \(git [0-9a-f]{40}(-dirty)?\)\n$/);
    const c = run('create', 'x.img', '--layout-only', '--slot-size', '8M');
    t.is(c.status, 0, c.stderr);
    t.regex(run('show', 'x.img').stdout, /psyopsOS-B/);
  } finally {
    rmSync(elsewhere, { recursive: true, force: true });
  }
});

test('scripts/test.sh closing line: ava\'s real counts, a failure when ava fails without totals', (t) => {
  const summary = (log: string, rc: number) => {
    const f = join(work, `tap-${rc}-${log.length}.log`);
    writeFileSync(f, log);
    return spawnSync('bash', [join(repoRoot, 'scripts/ava-summary.sh'), f, String(rc)], { encoding: 'utf8' });
  };
  t.is(summary('ok 1 - a\n\n1..1\n# tests 1\n# pass 1\n# fail 0\n', 0).stdout, '1 passed, 0 failed\n');
  t.is(summary('ok 1 - a\nnot ok 2 - b\nok 3 - c # SKIP\n\n1..3\n# tests 3\n# pass 1\n# skip 1\n# fail 1\n', 1).stdout, '1 passed, 1 failed, 1 skipped\n');
  const crashed = summary('ok 1 - a\nok 2 - b\n', 1);
  t.is(crashed.stdout, '2 passed, 1 failed\n');
  t.regex(crashed.stderr, /exited with status 1/);
});

test('no test depends on one machine\'s absolute paths (the e2fsprogs corpus is found beside the repository)', (t) => {
  const src = readFileSync(join(repoRoot, 'test/ext4-corpus.test.ts'), 'utf8');
  t.notRegex(src, /['"`]\/work\//);
});
