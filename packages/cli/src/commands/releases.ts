import type { CommandModule } from 'yargs';
import { printJson } from '../output.js';

interface Args {
  repo: string;
  pubkey?: string;
  verify?: boolean;
  arch?: string;
  fwtype?: string;
  json?: boolean;
}

/** `diskimg releases --repo URL|DIR`: the repository's releases per kind, the latest, and each signature's state (issue 27.10). */
export const releasesCommand: CommandModule<object, Args> = {
  command: 'releases',
  describe:
    'list a repository\'s releases: versions per kind and platform, the latest, each signature checked (exit 1 if one is refused); ' +
    'over http(s) from the server\'s directory listing, else only the pointers',
  builder: (y) =>
    y
      .option('repo', { type: 'string', demandOption: true, describe: 'repository: http(s) URL or directory' })
      .option('pubkey', { type: 'string', describe: 'minisign public key that signs the releases' })
      .option('verify', { type: 'boolean', default: true, describe: 'check the signatures (--no-verify: names and versions only)' })
      .option('arch', { type: 'string', describe: 'OS architecture whose pointer is read when the server lists nothing (default x86_64)' })
      .option('fwtype', { type: 'string', describe: 'ESP firmware type whose pointer is read when the server lists nothing (default x86_64-uefi)' })
      .example('$0 releases --repo /srv/deaddrop --pubkey psyops.pub', 'versions, latest, signatures')
      .example('$0 create node.img --repo /srv/deaddrop --version 20261101-000000 --pubkey psyops.pub', 'then build an image from one of them'),
  handler: async (argv) => {
    const { listReleases } = await import('@diskimg/ab/internal');
    const r = await listReleases({ repo: argv.repo, pubkey: argv.pubkey, noVerify: argv.verify === false, arch: argv.arch, fwtype: argv.fwtype });
    if (r.bad) process.exitCode = 1;
    if (argv.json) return printJson(r);
    const lines: string[] = [];
    if (r.listing === 'pointers') lines.push(`${r.repo}: the server gives no directory listing; only the releases the pointers name are shown`);
    if (!r.groups.length) lines.push(`${r.repo}: no releases (diskimg publish --repo … adds them)`);
    for (const g of r.groups) {
      lines.push(`${g.type} ${g.platform}: latest ${g.latest ?? (g.latestError ? `unknown (${g.latestError})` : 'none')}`);
      for (const x of g.releases) {
        const sig = x.signature === 'ok' ? 'signature ok' : x.signature === 'unverified' ? 'signature NOT verified (--no-verify)' : x.signature === 'missing' ? 'no signature' : `signature REFUSED: ${x.error}`;
        lines.push(`  ${x.version}${x.latest ? '  latest' : '        '}  ${sig}${x.tarball === false ? '; tarball MISSING' : ''}  ${x.filename}`);
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
  },
};
