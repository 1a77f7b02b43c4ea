/** The README's "Use as a library" examples (test/readme-library.test.ts compiles and runs them; test/public-api.test.ts checks their imports). */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, runCli } from './cli.js';
import { run, tarDir, writeOsTar } from './update.js';

export const HEADING = '## Use as a library';

/** The ```ts blocks between HEADING and the next "## " heading. */
export function readmeLibraryBlocks(readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')): string[] {
  const start = readme.indexOf(`\n${HEADING}\n`);
  if (start < 0) throw new Error(`README.md has no "${HEADING}" section`);
  const rest = readme.slice(start + HEADING.length + 2);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}


/**
 * The files the examples read, made in `work`: release.key/.pub (keygen), os.tar and os-v2.tar
 * with their .minisig (slot A's /squashfs a real xz SquashFS holding /etc/os-release, read by
 * example 4), rootfs.tar, and root.sqfs. Needs tar and mksquashfs.
 */
export async function makeReadmeInputs(work: string, env: Record<string, string>): Promise<void> {
  const ok = async (args: string[]) => {
    const r = await runCli(args, { env });
    if (r.code !== 0) throw new Error(`diskimg ${args.join(' ')}: ${r.stderr}`);
  };
  await ok(['keygen', '--out', join(work, 'release')]);
  mkdirSync(join(work, 'osroot', 'etc'), { recursive: true });
  writeFileSync(join(work, 'osroot', 'etc', 'os-release'), 'NAME="Alpine Linux"\nPRETTY_NAME="Alpine Linux v3.21"\n');
  run('mksquashfs', [join(work, 'osroot'), join(work, 'root.sqfs'), '-comp', 'xz', '-noappend', '-quiet', '-no-progress', '-processors', '1']);
  const sqfs = readFileSync(join(work, 'root.sqfs'));
  for (const [name, v, kernel] of [['os.tar', '20251129-000000', 'kernel one\n'], ['os-v2.tar', '20251201-000000', 'kernel two\n']] as const) {
    const tar = writeOsTar(join(work, name), { kernel, squashfs: sqfs });
    await ok(['sign', tar, '--seckey', join(work, 'release.key'), '--trusted', 'type=psyopsOS', '--trusted', `version=${v}`, '--trusted', `filename=psyopsOS.x86_64.${v}.tar`, '--trusted', 'architecture=x86_64']);
  }
  const tree = join(work, 'rootfs');
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc', 'hostname'), 'node1\n');
  writeFileSync(join(tree, 'README'), 'from a tar stream\n'.repeat(1000));
  tarDir(tree, join(work, 'rootfs.tar'));
}
