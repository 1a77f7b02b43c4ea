/**
 * Issue 27.4: completion for every command and every option value. The cases are generated from
 * the yargs command definitions (commands/index.ts, each builder run on a fresh yargs), so a new
 * command or option is covered without touching this file; each case runs the real entry
 * (`runCli(['--get-yargs-completions', 'diskimg', …])`, what the completion script calls) and what
 * it offers is checked against the command's own `--help`.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { runCli } from './cli.js';
import { commands } from './commands/index.js';

const execFileP = promisify(execFile);

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** runCli in this process with stdout/stderr captured (completion does no I/O but printing; tests are serial for it). */
async function capture(argv: string[]): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const wOut = process.stdout.write;
  const wErr = process.stderr.write;
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  const exitCode = process.exitCode;
  try {
    const code = await runCli(argv);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = wOut;
    process.stderr.write = wErr;
    process.exitCode = exitCode;
  }
}

/** `diskimg CMD --help` as the user sees it, for every command (child processes, 4 at a time: yargs exits after help). */
async function helpOf(names: string[]): Promise<Map<string, string>> {
  const run = join(dirname(fileURLToPath(import.meta.url)), 'run.ts');
  const out = new Map<string, string>();
  const queue = [...names];
  const worker = async () => {
    for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
      const r = await execFileP(process.execPath, ['--import=tsx', '--conditions=source', run, n, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '200' } });
      out.set(n, r.stdout);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

const complete = async (...words: string[]) => {
  const r = await capture(['--get-yargs-completions', 'diskimg', ...words]);
  return { ...r, list: r.stdout.split('\n').filter((l) => l !== '') };
};

/** Each command's name, positionals and options straight from its yargs builder (the test's own reading). */
function definitions() {
  return commands.map((c) => {
    const y: Argv = yargs([]).help().version(false);
    if (typeof c.builder === 'function') (c.builder as (y: Argv) => Argv)(y);
    const o = (y as unknown as { getOptions(): { key: Record<string, unknown>; boolean: string[]; choices: Record<string, unknown[]>; alias: Record<string, string[]> } }).getOptions();
    const positionals = new Set((y as unknown as { getGroups(): Record<string, string[]> }).getGroups()['Positionals:'] ?? []);
    const aliases = new Set(Object.values(o.alias).flat());
    const keys = Object.keys(o.key).filter((k) => k !== 'help' && !positionals.has(k) && !aliases.has(k));
    return { name: String(c.command).split(' ')[0]!, keys, boolean: new Set(o.boolean), choices: o.choices, positionals: [...positionals] };
  });
}

test.serial('completion: command names, and nothing but them, for the first word', async (t) => {
  const r = await complete('');
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.list.filter((n) => n !== 'completion').sort(), definitions().map((d) => d.name).sort());
  t.deepEqual((await complete('cre')).list, ['create']);
});

test.serial('completion: every command offers each of its options once, as --help spells it, and nothing else', async (t) => {
  const helps = await helpOf(definitions().map((d) => d.name));
  for (const d of definitions()) {
    const r = await complete(d.name, '--');
    t.is(r.code, 0, `${d.name}: ${r.stderr}`);
    t.is(r.stderr, '', d.name);
    const help = helps.get(d.name)!;
    const helpLine = (flag: string) => help.split('\n').find((l) => new RegExp(`(^|\\s|,)${flag}(\\s|,|$)`).test(l));
    t.deepEqual(new Set(r.list).size, r.list.length, `${d.name}: duplicates in ${r.list}`);
    for (const f of r.list) {
      t.regex(f, /^--[a-z][a-z0-9-]+$/, `${d.name}: offers ${f}`);
      const negated = /^--no-(.*)$/.exec(f);
      const line = negated ? helpLine(`--${negated[1]}`) : helpLine(f);
      t.truthy(line, `${d.name}: offers ${f}, which --help does not list`);
      // A boolean that is on by default is only ever typed as --no-X.
      if (line && /\[boolean\].*\[default: true\]/.test(line)) t.truthy(negated, `${d.name}: offers ${f}, which is on by default (type --no-${f.slice(2)})`);
    }
    for (const k of d.keys) t.true(r.list.includes(`--${k}`) || r.list.includes(`--no-${k}`), `${d.name}: --${k} is not offered`);
  }
  const create = (await complete('create', 'x', '--')).list;
  for (const wrong of ['--verify', '--verify-esp', '--bootloader', '--q']) t.false(create.includes(wrong), `create offers ${wrong}`);
  t.true(create.includes('--no-verify'));
  // given already (also by its alias) → not offered again; a repeatable option still is
  const after = (await complete('create', 'x', '-q', '--no-verify', '--os-tar', 'os.tar', '--')).list;
  for (const gone of ['--quiet', '--no-verify', '--os-tar']) t.false(after.includes(gone), `offered ${gone} again`);
  t.true((await complete('push', '--ssh-option', 'Port=2', '--ssh-')).list.includes('--ssh-opt'));
});

test.serial('completion: every option value completes without an error; choices (numbers too) are offered exactly', async (t) => {
  let cases = 0;
  for (const d of definitions()) {
    for (const k of d.keys) {
      if (d.boolean.has(k)) continue;
      const r = await complete(d.name, ...d.positionals.map(() => 'x'), `--${k}`, '');
      cases++;
      t.is(r.code, 0, `${d.name} --${k} <TAB>: ${r.stderr}`);
      t.is(r.stderr, '', `${d.name} --${k} <TAB>`);
      const choices = d.choices[k];
      if (Array.isArray(choices) && choices.length > 0) t.deepEqual(r.list, choices.map(String), `${d.name} --${k} <TAB>`);
      else t.deepEqual(r.list, [], `${d.name} --${k} <TAB> (a free value: the shell completes file names)`);
    }
    // positionals with choices (set-default <disk> <slot>)
    for (const [i, p] of d.positionals.entries()) {
      const choices = d.choices[p];
      if (!Array.isArray(choices) || choices.length === 0) continue;
      cases++;
      t.deepEqual((await complete(d.name, ...d.positionals.slice(0, i).map(() => 'x'), '')).list, choices.map(String), `${d.name} <${p}>`);
    }
  }
  t.true(cases > 30, `only ${cases} cases`);
  const ss = await complete('create', 'x', '--sector-size', '');
  t.is(ss.stderr, '');
  t.deepEqual(ss.list, ['512', '4096']);
  t.deepEqual((await complete('create', 'x', '--sector-size', '4')).list, ['4096']);
  t.deepEqual((await complete('create', 'x', '--default-slot=')).list, ['--default-slot=a', '--default-slot=b']);
});

test.serial('completion: the bash script from `diskimg completion` completes through the real bash (COMPREPLY)', async (t) => {
  const { mkdtempSync, writeFileSync, chmodSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'diskimg-completion-'));
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    const tsx = fileURLToPath(import.meta.resolve('tsx'));
    writeFileSync(join(dir, 'diskimg'), `#!/bin/sh\nexec "${process.execPath}" --import="${tsx}" --conditions=source "${join(here, 'run.ts')}" "$@"\n`);
    chmodSync(join(dir, 'diskimg'), 0o755);
    const script = (await execFileP(join(dir, 'diskimg'), ['completion'], { encoding: 'utf8' })).stdout; // yargs exits after it: a child
    t.regex(script, /_diskimg_yargs_completions/);
    writeFileSync(join(dir, 'completion.bash'), script);
    const compreply = async (...words: string[]) => {
      const line = `source ${join(dir, 'completion.bash')}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _diskimg_yargs_completions; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = await execFileP('bash', ['-c', line], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
      t.is(r.stderr, '', words.join(' '));
      return r.stdout.split('\n').filter(Boolean);
    };
    t.deepEqual(await compreply('diskimg', 'create', 'x.img', '--sector-size', ''), ['512', '4096']);
    t.deepEqual(await compreply('diskimg', 'create', 'x.img', '--no-ver'), ['--no-verify', '--no-verify-esp']);
    t.deepEqual(await compreply('diskimg', 'set-default', 'x.img', ''), ['a', 'b']);
    t.deepEqual((await compreply('diskimg', 'mark-')).sort(), ['mark-bad', 'mark-good']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
