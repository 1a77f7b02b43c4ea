import type { CommandModule } from 'yargs';
import { UsageError } from '@diskimg/partitions/internal';
import { bootDisk } from './boot-common.js';
import { displayText, printJson, takeSignals } from '../output.js';
import { parseWhole } from './numeric.js';

interface Args {
  disk?: string;
  listen: string;
  'booted-label'?: string;
  repo?: string;
  pubkey?: string;
  verify?: boolean;
  'repo-cache'?: string;
  json?: boolean;
}

export const serveCommand: CommandModule<object, Args> = {
  command: 'serve [disk]',
  describe:
    'serve the node\'s health over HTTP, read-only: GET /health (JSON) and GET / (a page); 200 when the booted slot is confirmed, ' +
    '503 on trial or fallen back. Loopback unless --listen names another address. SIGINT/SIGTERM stop it (exit 0)',
  builder: (y) =>
    y
      .positional('disk', { type: 'string', describe: 'image file or block device (default: the psyopsOS boot disk, found by labels)' })
      .option('listen', { type: 'string', default: '127.0.0.1:8321', describe: 'HOST:PORT to listen on (0.0.0.0:8321 or [::]:8321 open it to the network; port 0: any free port)' })
      .option('booted-label', { type: 'string', describe: 'the slot this system booted (default: psyopsos= on /proc/cmdline)' })
      .option('repo', { type: 'string', describe: 'update repository (http(s) URL or directory): report the latest release and whether the ESP is stale' })
      .option('pubkey', { type: 'string', describe: 'with --repo: minisign public key that signs the releases' })
      .option('verify', { type: 'boolean', default: true, describe: 'with --repo: verify the pointers\' signatures (--no-verify: names only)' })
      // A string, parsed here: yargs' number type would make `abc` NaN and name it so.
      .option('repo-cache', { type: 'string', describe: 'with --repo: whole seconds an answer from the repository is reused (default 300)' })
      .check((a) => {
        if (a.repo === undefined && (a.pubkey !== undefined || a.verify === false)) throw new UsageError('--pubkey and --no-verify go with --repo');
        if (a.repo !== undefined && a.pubkey === undefined && a.verify !== false) throw new UsageError('--repo: give --pubkey FILE (the key that signs the releases), or --no-verify');
        parseWhole('--repo-cache', a['repo-cache'], 0); // before the server starts or the disk is read
        return true;
      }),
  handler: async (argv) => {
    // Imported here, not at the top: other commands do not load the HTTP server.
    const { lastUpdatePath, parseListen, repoCache, startHealthServer } = await import('@diskimg/ab/internal');
    const listen = parseListen(argv.listen);
    const disk = argv.disk ?? (await bootDisk());
    const server = await startHealthServer({
      disk,
      listen,
      bootedLabel: argv['booted-label'],
      lastUpdatePath: lastUpdatePath(argv.disk === undefined ? undefined : disk),
      repo: argv.repo === undefined ? undefined : repoCache({ repo: argv.repo, pubkey: argv.pubkey, noVerify: argv.verify === false, ttlSeconds: parseWhole('--repo-cache', argv['repo-cache'], 0) }),
    });
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const release = takeSignals(() => stop());
    if (argv.json) printJson({ url: server.url, disk });
    process.stderr.write(`diskimg: serving ${displayText(disk)} on ${server.url} (GET /health, GET /)\n`);
    await stopped;
    release();
    await server.close();
  },
};
