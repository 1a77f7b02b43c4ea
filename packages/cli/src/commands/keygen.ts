import type { CommandModule } from 'yargs';
import { printJson } from '../output.js';
import { writeKeyPair } from '@diskimg/ab';

interface KeygenArgs {
  out: string;
  json?: boolean;
}

export const keygenCommand: CommandModule<object, KeygenArgs> = {
  command: 'keygen',
  describe: 'create a minisign key pair PREFIX.pub and PREFIX.key (unencrypted, as minisign -G -W); never overwrites',
  builder: (y) => y.option('out', { type: 'string', demandOption: true, describe: 'path prefix of the two key files' }),
  handler: async (argv) => {
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
