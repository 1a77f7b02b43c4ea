/**
 * Issue 13/14: the PS1 snippet (contrib/prompt/diskimg-prompt.sh, quoted in the README) in a real
 * interactive bash and a real BusyBox ash (with BusyBox's own date, timeout, cat, mv on PATH, as
 * on an Alpine node). The prompt text is read from what the shell writes (bash: stderr, ash:
 * stdout). Checked: the real bundle's status line against an image file; the cache (a changed
 * answer is not seen within the TTL, and is with TTL 0); a hanging status gives "status timed
 * out"; a failing one "status error"; a not-confirmed one (exit 1) its line.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/cli.js';
import { needTools } from './helpers/skip.js';

const work = mkdtempSync(join(tmpdir(), 'prompt-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const SNIPPET = join(repoRoot, 'contrib/prompt/diskimg-prompt.sh');

test('the README quotes the snippet as it is in contrib/prompt/diskimg-prompt.sh', (t) => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  t.true(readme.includes(readFileSync(SNIPPET, 'utf8')), 'README.md: copy contrib/prompt/diskimg-prompt.sh into its "Status in the shell prompt" section');
});

type Shell = 'bash' | 'ash';

/** BusyBox applets the snippet uses, first on PATH for ash (an Alpine node has no coreutils). */
function busyboxPath(): string {
  const dir = join(work, 'bb-bin');
  if (!existsSync(dir)) {
    mkdirSync(dir);
    const bb = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
    for (const a of ['date', 'timeout', 'cat', 'mv', 'sleep', 'sh', 'rm']) symlinkSync(bb, join(dir, a));
  }
  return `${dir}:${process.env.PATH}`;
}

/**
 * Run an interactive SHELL that sources the snippet, sets PS1, then runs `commands` (one per
 * line); returns each prompt shown after PS1 was set.
 */
function prompts(shell: Shell, env: Record<string, string>, commands: string[] = []): string[] {
  const home = mkdtempSync(join(work, 'home-'));
  const input = [`. ${SNIPPET}`, `PS1='<<[$(diskimg_ps1)]>> '`, ...commands, 'exit', ''].join('\n');
  const argv = shell === 'bash' ? ['bash', ['--norc', '--noprofile', '-i']] : ['busybox', ['ash', '-i']];
  const r = spawnSync(argv[0] as string, argv[1] as string[], {
    input,
    encoding: 'utf8',
    env: { PATH: shell === 'ash' ? busyboxPath() : process.env.PATH!, HOME: home, TERM: 'dumb', ...env },
  });
  // bash writes prompts to stderr, BusyBox ash to stdout. bash echoes the input lines it reads
  // without a terminal: skip the PS1 assignment itself.
  return [...(r.stdout + r.stderr).matchAll(/<<\[(.*?)\]>> /g)].map((m) => m[1]!).filter((p) => p !== '$(diskimg_ps1)');
}

/** A stand-in for `diskimg status`: prints the file `out`, exits with the number in `rc`. */
function stub(name: string, out: string, rc: number, body = 'cat "$(dirname "$0")/out"; exit "$(cat "$(dirname "$0")/rc")"'): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'out'), out);
  writeFileSync(join(dir, 'rc'), `${rc}\n`);
  writeFileSync(join(dir, 'status.sh'), `${body}\n`);
  return dir;
}

let bundled: { bundle: string; img: string } | undefined;
function bundleAndImage(): { bundle: string; img: string } {
  if (bundled) return bundled;
  const bundle = join(work, 'diskimg.mjs');
  const b = spawnSync(process.execPath, [join(repoRoot, 'scripts/bundle.mjs'), '--outfile', bundle, '--quiet'], { cwd: repoRoot, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`bundle: ${b.stderr}`);
  const os = join(work, 'os');
  mkdirSync(os);
  for (const f of ['kernel', 'initramfs']) writeFileSync(join(os, f), `${f}\n`);
  spawnSync('tar', ['-C', os, '-cf', join(work, 'os.tar'), '.']);
  const img = join(work, 'st.img');
  const c = spawnSync(process.execPath, [bundle, 'create', img, '--os-tar', join(work, 'os.tar'), '--no-verify', '--no-bootloader', '--esp-size', '40M', '--secret-size', '8M', '--slot-size', '16M', '--quiet'], { encoding: 'utf8' });
  if (c.status !== 0) throw new Error(`create: ${c.stderr}`);
  return (bundled = { bundle, img });
}

for (const shell of ['bash', 'ash'] as const) {
  const tools = shell === 'bash' ? ['bash', 'tar'] : ['busybox', 'tar'];

  test(`${shell}: the prompt shows the bundle's status line for an image file`, (t) => {
    if (!needTools(t, ...tools)) return;
    const { bundle, img } = bundleAndImage();
    // A generous timeout: this machine is shared; on a node status takes a fraction of a second.
    const env = { DISKIMG_PS1_CMD: `${process.execPath} ${bundle} status ${img} --booted-label psyopsOS-A`, DISKIMG_PS1_TIMEOUT: '120' };
    // create --no-verify: the slots' versions are unverified, and the line says so.
    t.deepEqual(prompts(shell, env, ['true']), ['psyopsOS-A UNVERIFIED ok', 'psyopsOS-A UNVERIFIED ok']);
    t.deepEqual(prompts(shell, { ...env, DISKIMG_PS1_CMD: `${process.execPath} ${bundle} status ${img} --booted-label psyopsOS-B` }), [
      'psyopsOS-B UNVERIFIED NOT DEFAULT (default A)',
    ]);
  });

  test(`${shell}: cached for the TTL, refreshed after it`, (t) => {
    if (!needTools(t, ...tools)) return;
    const dir = stub(`ttl-${shell}`, 'psyopsOS-A 1 ok\n', 0);
    const cmd = { DISKIMG_PS1_CMD: `sh ${dir}/status.sh` };
    const change = [`echo 'psyopsOS-B 2 TRIAL 3/3' > ${dir}/out`, `echo 1 > ${dir}/rc`];
    t.deepEqual(prompts(shell, { ...cmd, DISKIMG_PS1_TTL: '3600' }, change), ['psyopsOS-A 1 ok', 'psyopsOS-A 1 ok', 'psyopsOS-A 1 ok']);
    writeFileSync(join(dir, 'out'), 'psyopsOS-A 1 ok\n');
    writeFileSync(join(dir, 'rc'), '0\n');
    t.deepEqual(prompts(shell, { ...cmd, DISKIMG_PS1_TTL: '0' }, change), ['psyopsOS-A 1 ok', 'psyopsOS-B 2 TRIAL 3/3', 'psyopsOS-B 2 TRIAL 3/3']);
  });

  test(`${shell}: a hanging status times out, a failing one says so`, (t) => {
    if (!needTools(t, ...tools)) return;
    const hang = stub(`hang-${shell}`, '', 0, 'exec sleep 600');
    t.deepEqual(prompts(shell, { DISKIMG_PS1_CMD: `sh ${hang}/status.sh`, DISKIMG_PS1_TIMEOUT: '1' }), ['status timed out']);
    const fail = stub(`fail-${shell}`, '', 2, 'echo "diskimg: no boot disk" >&2; exit 1');
    t.deepEqual(prompts(shell, { DISKIMG_PS1_CMD: `sh ${fail}/status.sh` }), ['status error']);
    const missing = { DISKIMG_PS1_CMD: join(work, 'no-such-diskimg') };
    t.deepEqual(prompts(shell, missing), ['status error']);
  });
}
