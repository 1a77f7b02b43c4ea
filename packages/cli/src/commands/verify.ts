import type { CommandModule } from 'yargs';
import { printJson, displayText } from '../output.js';

interface VerifyArgs {
  file: string;
  pubkey: string;
  sig?: string;
  json?: boolean;
}

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify <file>',
  describe: 'verify FILE against its minisign signature and print the trusted comment fields',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'signed file (streamed)' })
      .option('pubkey', { type: 'string', demandOption: true, describe: 'minisign public key file' })
      .option('sig', { type: 'string', describe: 'signature file (default FILE.minisig)' }),
  handler: async (argv) => {
    const { defaultSignaturePath, readPublicKeyFile, readSignatureFile, verifyFile } = await import('@diskimg/ab/internal');
    const sigPath = argv.sig ?? defaultSignaturePath(argv.file);
    const [sig, pub] = await Promise.all([readSignatureFile(sigPath), readPublicKeyFile(argv.pubkey)]);
    const r = await verifyFile(argv.file, sig, pub, { file: argv.file, sig: sigPath, pubkey: argv.pubkey });
    if (argv.json) {
      printJson({ file: argv.file, signature: sigPath, verified: true, ...r });
      return;
    }
    const lines = [
      `${argv.file}: signature and trusted comment verified (key ${r.keyId}${r.algorithm === 'Ed' ? ', legacy' : ''})`,
      `trusted comment: ${r.trustedComment}`,
      ...Object.entries(r.fields).map(([k, v]) => `  ${k}: ${v}`),
    ];
    process.stdout.write(`${lines.map(displayText).join('\n')}\n`);
  },
};
