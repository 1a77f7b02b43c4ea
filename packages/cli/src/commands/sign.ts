import type { CommandModule } from 'yargs';
import { printJson } from '../output.js';
import { readFile, rename, writeFile, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  defaultSignaturePath,
  formatTrustedComment,
  keyIdHex,
  parseAssignments,
  parseTrustedComment,
  readSecretKeyFile,
  signToSignature,
  encodeSignature,
} from '@diskimg/ab';
import { buildTime } from '@diskimg/partitions';

interface SignArgs {
  file: string;
  seckey: string;
  trusted?: string[];
  sig?: string;
  'password-file'?: string;
  legacy?: boolean;
  json?: boolean;
}

/** A password file holds the password on its first line. */
export async function readPasswordFile(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  return (await readFile(path, 'utf8')).split(/\r?\n/)[0];
}

export const signCommand: CommandModule<object, SignArgs> = {
  command: 'sign <file>',
  describe: 'sign FILE with a minisign secret key, writing FILE.minisig (prehashed, as minisign does by default)',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'file to sign (streamed)' })
      .option('seckey', { type: 'string', demandOption: true, describe: 'minisign secret key file' })
      .option('trusted', {
        type: 'string',
        array: true,
        describe: 'KEY=VALUE for the trusted comment (repeat); default: minisign\'s "timestamp:… file:… hashed"',
      })
      .option('sig', { type: 'string', describe: 'where to write the signature (default FILE.minisig)' })
      .option('password-file', { type: 'string', describe: 'file whose first line is the password of an encrypted key' })
      .option('legacy', { type: 'boolean', describe: 'legacy (non-prehashed) signature, as minisign -l (files up to 64 MiB)' }),
  handler: async (argv) => {
    const sk = await readSecretKeyFile(argv.seckey, await readPasswordFile(argv['password-file']));
    const trusted =
      argv.trusted && argv.trusted.length > 0
        ? formatTrustedComment(parseAssignments(argv.trusted))
        : `timestamp:${buildTime()}\tfile:${basename(argv.file)}${argv.legacy ? '' : '\thashed'}`;
    const sig = await signToSignature(argv.file, sk, trusted, { legacy: argv.legacy });
    const out = argv.sig ?? defaultSignaturePath(argv.file);
    // Write beside and rename, so a failure never leaves a half-written signature.
    const tmp = `${out}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, encodeSignature(sig));
      await rename(tmp, out);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    const result = {
      file: argv.file,
      signature: out,
      keyId: keyIdHex(sig.keyId),
      algorithm: sig.algorithm,
      trustedComment: trusted,
      fields: parseTrustedComment(trusted),
    };
    if (argv.json) {
      printJson(result);
      return;
    }
    process.stdout.write(`wrote ${out} (key ${result.keyId}${sig.algorithm === 'Ed' ? ', legacy' : ''})\ntrusted comment: ${trusted}\n`);
  },
};
