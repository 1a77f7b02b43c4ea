import { constants } from 'node:fs';
import { access, open, unlink } from 'node:fs/promises';
import { InputError } from '@diskimg/partitions/internal';
import { encodePublicKey, encodeSecretKey, generateKeyPair, keyIdHex } from './keys.js';

/** What `writeKeyPair` wrote: the two file paths and the new key's id. */
export interface KeygenResult {
  publicKeyPath: string;
  secretKeyPath: string;
  keyId: string;
  /** The public key line, for `minisign -P`. */
  publicKey: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Write a new key pair as PREFIX.pub and PREFIX.key (unencrypted, mode 0600),
 * minisign-compatible. Refuses to overwrite either file.
 */
export async function writeKeyPair(prefix: string): Promise<KeygenResult> {
  const publicKeyPath = `${prefix}.pub`;
  const secretKeyPath = `${prefix}.key`;
  for (const p of [publicKeyPath, secretKeyPath]) {
    if (await exists(p)) throw new InputError(`${p}: already exists; refusing to overwrite a key (choose another --out prefix)`);
  }
  const { publicKey, secretKey } = generateKeyPair();
  const written: string[] = [];
  try {
    for (const [path, text, mode] of [
      [secretKeyPath, encodeSecretKey(secretKey), 0o600],
      [publicKeyPath, encodePublicKey(publicKey), 0o644],
    ] as const) {
      // 'wx': fail rather than replace a file that appeared meanwhile.
      const fh = await open(path, 'wx', mode);
      written.push(path);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  } catch (e) {
    for (const p of written) await unlink(p).catch(() => {});
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new InputError(`${(e as NodeJS.ErrnoException).path ?? prefix}: already exists; refusing to overwrite a key`);
    }
    throw e;
  }
  return {
    publicKeyPath,
    secretKeyPath,
    keyId: keyIdHex(publicKey.keyId),
    publicKey: encodePublicKey(publicKey).split('\n')[1]!,
  };
}
