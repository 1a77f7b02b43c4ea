/**
 * Issue 27.1: the packages install and work OUTSIDE the workspace, as a user gets them. Each
 * package is built and packed with `pnpm pack` (workspace: ranges rewritten, publishConfig.exports
 * without the `source` condition), the tarballs are installed with plain `npm install` into a
 * fresh project in the system temp directory by the README's install lines as written (third-party dependencies from the npm registry,
 * through the npm cache), and there the README's "Use as a library" examples are compiled by tsc
 * (module/moduleResolution nodenext, strict, no skipLibCheck: our shipped .d.ts must check) and run
 * as ESM by plain node (no tsx, no conditions). The installed `diskimg` binary answers --version.
 */
import test from 'ava';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/cli.js';
import { makeReadmeInputs, readmeLibraryBlocks } from './helpers/readme.js';
import { needTools, skipOrFail } from './helpers/skip.js';

const PACKAGES = ['partitions', 'grubcfg', 'diskimage', 'ab', 'cli'];
const ENV = { SOURCE_DATE_EPOCH: '1764374400' };
const work = mkdtempSync(join(tmpdir(), 'diskimg-pack-install-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

/** The README's ```sh block that installs the packs ("Use as a library"). */
function installBlock(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Use as a library\n'));
  const m = /^```sh\n([\s\S]*?)^```$/m.exec(section);
  if (!m || !m[1]!.includes('pnpm.sh pack')) throw new Error('README.md: no install block under "Use as a library"');
  return m[1]!;
}

function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return String(r.stdout);
}

test('pnpm pack tarballs install with npm outside the workspace; the README library examples compile (tsc nodenext) and run there', async (t) => {
  if (!needTools(t, 'npm', 'tar', 'mksquashfs')) return;
  // ---- build and pack ----
  sh(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', 'packages/cli/tsconfig.json'], { cwd: repoRoot });
  const packs = join(work, 'tarballs');
  for (const p of PACKAGES) sh('bash', [join(repoRoot, 'scripts', 'pnpm.sh'), 'pack', '--pack-destination', packs], { cwd: join(repoRoot, 'packages', p) });
  const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz')).map((f) => join(packs, f));
  t.is(tarballs.length, PACKAGES.length);
  for (const tgz of tarballs) {
    const files = sh('tar', ['tzf', tgz]).split('\n');
    const pkg = JSON.parse(sh('tar', ['xzf', tgz, '-O', 'package/package.json']));
    t.true(files.includes('package/dist/index.js') && files.includes('package/dist/index.d.ts'), `${pkg.name}: no dist/ in the tarball`);
    t.false(files.some((f) => f.startsWith('package/src/') || f.endsWith('.test.js') || f.endsWith('.tsbuildinfo')), `${pkg.name}: ships sources, tests or build state`);
    t.false(JSON.stringify(pkg).includes('workspace:'), `${pkg.name}: workspace: range left in ${JSON.stringify(pkg.dependencies)}`);
    t.false(JSON.stringify(pkg.exports).includes('"source"'), `${pkg.name}: exports a source condition whose files are not shipped`);
    t.is(pkg.private, undefined, `${pkg.name} is private`);
    t.is(pkg.type, 'module');
    t.truthy(pkg.engines?.node);
    // every file the exports map names is in the tarball
    for (const entry of Object.values(pkg.exports as Record<string, Record<string, string>>)) {
      for (const target of Object.values(entry)) t.true(files.includes(`package/${target.slice(2)}`), `${pkg.name}: exports ${target}, not in the tarball`);
    }
  }

  // ---- a fresh project outside the workspace: the README's install lines as written (the packs
  // in our temp directory instead of /tmp/diskimg-packs; setup.sh's build is done above) ----
  const home = join(work, 'home');
  sh('mkdir', ['-p', home]);
  const install = installBlock()
    .split('\n')
    .filter((l) => !l.startsWith('bash scripts/setup.sh'))
    .join('\n')
    .replaceAll('/tmp/diskimg-packs', join(work, 'readme-packs'));
  const env = { ...process.env, HOME: home, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', npm_config_loglevel: 'error' };
  const readme = spawnSync('bash', ['-euo', 'pipefail', '-c', install], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'], env });
  if (readme.status !== 0 && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENOTCACHED/.test(readme.stderr)) return skipOrFail(t, `npm registry unreachable: ${readme.stderr.trim().split('\n')[0]}`, { tool: 'network' });
  t.is(readme.status, 0, `README install lines: ${readme.stdout}${readme.stderr}`);
  if (readme.status !== 0) return;
  const proj = join(home, 'myproject');
  t.is(JSON.parse(readFileSync(join(proj, 'package.json'), 'utf8')).type, 'module');
  // then the CLI's tarball and node's types (for the examples' tsc)
  const typesNode = JSON.parse(readFileSync(join(repoRoot, 'node_modules', '@types', 'node', 'package.json'), 'utf8')).version;
  const cliTgz = tarballs.find((f) => /diskimg-cli-/.test(f))!;
  const npm = spawnSync('npm', ['install', cliTgz, `@types/node@${typesNode}`], { cwd: proj, encoding: 'utf8', timeout: 120_000, env });
  if (npm.status !== 0) {
    // the registry (or the cache) is what this machine lacks, not a fault of the packages
    if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENOTCACHED/.test(npm.stderr)) return skipOrFail(t, `npm registry unreachable: ${npm.stderr.trim().split('\n')[0]}`, { tool: 'network' });
    t.fail(`npm install: ${npm.stdout}${npm.stderr}`);
    return;
  }

  // ---- compile the README's examples (tsc nodenext, strict, library .d.ts checked) and run the JS ----
  await makeReadmeInputs(proj, ENV);
  const blocks = readmeLibraryBlocks();
  blocks.forEach((code, i) => writeFileSync(join(proj, `example-${i + 1}.ts`), code));
  writeFileSync(
    join(proj, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', lib: ['ES2023'], module: 'nodenext', moduleResolution: 'nodenext', strict: true, types: ['node'], outDir: 'out' }, include: ['example-*.ts'] }),
  );
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: proj, encoding: 'utf8' });
  t.is(tsc.status, 0, `tsc: ${tsc.stdout}${tsc.stderr}`);
  if (tsc.status !== 0) return;
  const out: string[] = [];
  for (let i = 0; i < blocks.length; i++) {
    const r = spawnSync(process.execPath, [join('out', `example-${i + 1}.js`)], { cwd: proj, encoding: 'utf8', env: { ...process.env, ...ENV } });
    t.is(r.status, 0, `example ${i + 1}: ${r.stderr}`);
    if (r.status !== 0) return;
    out.push(r.stdout);
  }
  t.regex(out[0]!, /^rootfs\.ext4: \d+ files/);
  t.regex(out[1]!, /^disk\.img: psyopsOS-A \d+ files, psyopsOS-B \d+ files; boots psyopsOS-A\n$/);
  t.is(out[3], 'psyopsOS-A (squashfs): Alpine Linux v3.21\n');
  t.is(out[out.length - 1], 'psyopsOS-B: 20251129-000000 -> 20251201-000000; next boot: psyopsOS-B on trial (3 tries)\n');

  // ---- the CLI package: its bin runs from the install ----
  const cli = spawnSync(join(proj, 'node_modules', '.bin', 'diskimg'), ['--version'], { cwd: proj, encoding: 'utf8' });
  t.is(cli.status, 0, cli.stderr);
  t.regex(cli.stdout, /\d+\.\d+/);
});
