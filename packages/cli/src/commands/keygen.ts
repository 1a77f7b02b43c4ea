import type { CommandModule } from 'yargs';
import { printJson } from '../output.js';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InputError } from '@diskimg/partitions/internal';

interface KeygenArgs {
  out: string;
  json?: boolean;
}

export const keygenCommand: CommandModule<object, KeygenArgs> = {
  command: 'keygen',
  describe: 'create a minisign key pair PREFIX.pub and PREFIX.key (unencrypted, as minisign -G -W); never overwrites',
  builder: (y) => y.option('out', { type: 'string', demandOption: true, describe: 'path prefix of the two key files' }),
  handler: async (argv) => {
    const { writeKeyPair } = await import('@diskimg/ab/internal');
    const st = await stat(argv.out).catch(() => undefined);
    if (argv.out.endsWith('/') || st?.isDirectory()) {
      throw new InputError(`--out ${argv.out}: is a directory; give a path prefix such as ${argv.out.replace(/\/*$/, '')}/release (writes release.pub and release.key)`);
    }
    const dir = dirname(argv.out);
    const d = await stat(dir).catch(() => undefined);
    if (!d) throw new InputError(`--out ${argv.out}: directory ${dir} does not exist; create it first`);
    if (!d.isDirectory()) throw new InputError(`--out ${argv.out}: ${dir} is not a directory`);
    const k = await writeKeyPair(argv.out);
    if (argv.json) {
      printJson(k);
      return;
    }
    process.stdout.write(
      `wrote ${k.secretKeyPath} (secret, unencrypted: keep it safe) and ${k.publicKeyPath}\n` +
        `key ${k.keyId}; verify with: diskimg verify FILE --pubkey ${k.publicKeyPath}  (or minisign -Vm FILE -P ${k.publicKey})\n`,
    );
  },
};
