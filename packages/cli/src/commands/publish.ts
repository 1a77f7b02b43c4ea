import type { CommandModule } from 'yargs';
import type { PublishResult } from '@diskimg/ab/internal';
import { fmtBytes, UsageError } from '@diskimg/partitions/internal';
import { printJson, printWarning } from '../output.js';
import { readPasswordFile } from './sign.js';
import { parseWhole } from './numeric.js';

interface Args {
  repo: string;
  'os-tar'?: string;
  'esp-tar'?: string;
  bundle?: string;
  seckey?: string;
  'password-file'?: string;
  sig?: string;
  pubkey?: string;
  version?: string;
  arch?: string;
  fwtype?: string;
  trusted?: string[];
  keep?: string;
  'allow-downgrade'?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export const publishCommand: CommandModule<object, Args> = {
  command: 'publish',
  describe: 'add a signed release (OS, ESP or the one-file CLI) to an update repository directory; the latest pointer is replaced last and atomically',
  builder: (y) =>
    y
      .option('repo', { type: 'string', demandOption: true, describe: 'the repository directory (served as is over HTTP, or synced to S3)' })
      .option('os-tar', { type: 'string', describe: 'OS tarball: published as psyopsOS.<arch>.<version>.tar' })
      .option('esp-tar', { type: 'string', describe: 'ESP tarball: published as psyopsESP.<fwtype>.<version>.tar' })
      .option('bundle', { type: 'string', describe: 'the one-file CLI (dist/diskimg.mjs): published as diskimg.<version>.mjs, version = its built-in release line' })
      .option('seckey', { type: 'string', describe: 'minisign secret key: sign now, with type= filename= version= (architecture=) and --trusted' })
      .option('password-file', { type: 'string', describe: 'file whose first line is the password of an encrypted key' })
      .option('sig', { type: 'string', describe: 'publish this existing signature instead (its trusted comment must name the repository file; verified with --pubkey)' })
      .option('pubkey', { type: 'string', describe: 'public key to verify --sig with' })
      .option('version', { type: 'string', describe: 'release version (default: build time YYYYMMDD-HHMMSS UTC, SOURCE_DATE_EPOCH honoured; with --sig its version=; with --bundle its release line)' })
      .option('arch', { type: 'string', describe: 'OS architecture (default x86_64)' })
      .option('fwtype', { type: 'string', describe: 'ESP firmware type (default x86_64-uefi)' })
      .option('trusted', { type: 'string', array: true, describe: 'extra KEY=VALUE for the trusted comment (kernel=, alpine=, …)' })
      .option('keep', { type: 'string', describe: 'keep the newest N versions of this kind (never the one the pointer names); remove the rest' })
      .option('allow-downgrade', { type: 'boolean', describe: 'move the pointer to a version older than the one it names' })
      .check((a) => {
        if ([a['os-tar'], a['esp-tar'], a.bundle].filter(Boolean).length !== 1) throw new UsageError('give one of --os-tar FILE, --esp-tar FILE, --bundle FILE');
        if (a.bundle && (a.arch || a.fwtype)) throw new UsageError('--bundle runs on any node: no --arch or --fwtype');
        if (!!a.seckey === !!a.sig) throw new UsageError('give --seckey FILE or --sig FILE');
        if (a.arch && a['esp-tar']) throw new UsageError('--arch goes with --os-tar; an ESP release takes --fwtype');
        if (a.fwtype && a['os-tar']) throw new UsageError('--fwtype goes with --esp-tar; an OS release takes --arch');
        if (a.sig && a.trusted?.length) throw new UsageError('--trusted only with --seckey (a given --sig is published as signed)');
        return true;
      }),
  handler: async (argv) => {
    parseWhole('--keep', argv.keep, 1); // checked before the key, the file or the repository is read
    const { parseAssignments, publish } = await import('@diskimg/ab/internal');
    const r = await publish({
      repo: argv.repo,
      osTar: argv['os-tar'],
      espTar: argv['esp-tar'],
      bundle: argv.bundle,
      seckey: argv.seckey,
      password: await readPasswordFile(argv['password-file']),
      sig: argv.sig,
      pubkey: argv.pubkey,
      version: argv.version,
      platform: argv.arch ?? argv.fwtype,
      trusted: argv.trusted ? parseAssignments(argv.trusted) : undefined,
      keep: parseWhole('--keep', argv.keep, 1),
      allowDowngrade: argv['allow-downgrade'],
    });
    if (!argv.quiet) for (const w of r.warnings) printWarning(w);
    if (argv.json) printJson(r);
    else process.stdout.write(describe(r));
  },
};

function describe(r: PublishResult): string {
  const lines = [
    `published ${r.artifact} (${fmtBytes(r.bytes)}) and ${r.signature} in ${r.repo} (key ${r.keyId})`,
    `trusted comment: ${r.trustedComment}`,
    `${r.pointer}: ${r.previous ? `${r.previous} -> ` : ''}${r.version}`,
  ];
  if (r.pruned.length) lines.push(`pruned: ${r.pruned.join(' ')}`);
  if (r.cleaned.length) lines.push(`removed leftovers of an interrupted publish: ${r.cleaned.join(' ')}`);
  return lines.join('\n') + '\n';
}
