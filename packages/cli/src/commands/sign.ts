import type { CommandModule } from 'yargs';
import { printJson } from '../output.js';
import { readFile, rename, stat, writeFile, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { buildTime, InputError } from '@diskimg/partitions/internal';
import { createProgress, progressWanted } from '../progress.js';

interface SignArgs {
  file: string;
  seckey: string;
  trusted?: string[];
  sig?: string;
  'password-file'?: string;
  legacy?: boolean;
  force?: boolean;
  json?: boolean;
  quiet?: boolean;
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
      .option('legacy', { type: 'boolean', describe: 'legacy (non-prehashed) signature, as minisign -l (files up to 64 MiB)' })
      .option('force', { type: 'boolean', describe: 'replace an existing signature file' }),
  handler: async (argv) => {
    const { defaultSignaturePath, formatTrustedComment, keyIdHex, parseAssignments, parseTrustedComment, readSecretKeyFile, signToSignature, encodeSignature } = await import('@diskimg/ab/internal');
    const trusted =
      argv.trusted && argv.trusted.length > 0
        ? formatTrustedComment(parseAssignments(argv.trusted))
        : `timestamp:${buildTime()}\tfile:${basename(argv.file)}${argv.legacy ? '' : '\thashed'}`;
    const out = argv.sig ?? defaultSignaturePath(argv.file);
    const st = await stat(argv.file).catch(() => undefined);
    if (!st) throw new InputError(`${argv.file}: no such file to sign`);
    if (st.isDirectory()) throw new InputError(`${argv.file}: is a directory; sign a file (e.g. a tarball of it)`);
    const existing = await stat(out).catch(() => undefined);
    if (existing && existing.dev === st.dev && existing.ino === st.ino) throw new InputError(`--sig ${out}: is the file being signed; give another --sig`);
    if (existing && !argv.force) throw new InputError(`${out}: already exists; give --force to replace the signature (or --sig FILE to write another)`);
    if (existing?.isDirectory()) throw new InputError(`${out}: is a directory; give --sig FILE`);
    if (!existing && !(await stat(dirname(out)).catch(() => undefined))?.isDirectory()) {
      throw new InputError(`${out}: directory ${dirname(out)} does not exist; create it or give --sig FILE elsewhere`);
    }
    const progress = createProgress({ label: 'sign', total: st.size, quiet: !progressWanted(argv) });
    progress.status(`reading ${argv.seckey}${argv['password-file'] ? ' and unlocking it (scrypt, a few seconds)' : ''}…`);
    const sk = await readSecretKeyFile(argv.seckey, await readPasswordFile(argv['password-file'])).catch((e) => {
      progress.clear();
      throw e;
    });
    const sig = await signToSignature(argv.file, sk, trusted, { legacy: argv.legacy, onProgress: (n) => progress.update(n) }).catch((e) => {
      progress.clear();
      throw e;
    });
    progress.clear();
    // Write beside and rename, so a failure never leaves a half-written signature.
    const tmp = `${out}.tmp-${process.pid}`;
    const { pidFilePattern, removeDeadPidFiles } = await import('@diskimg/diskimage/internal/create');
    removeDeadPidFiles(dirname(out), pidFilePattern(`${basename(out)}.tmp-`)); // a killed sign's
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
