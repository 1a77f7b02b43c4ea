import { createHash, sign as edSign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { InputError } from '@diskimg/partitions/internal';
import { ed25519PrivateKey, parseSecretKeyFile, unlockSecretKey, type SecretKey } from './keys.js';
import { checkComment, DEFAULT_UNTRUSTED_COMMENT, encodeSignature, type Signature } from './signature.js';
import { LEGACY_MAX_BYTES, missing, openInput, type FileInput } from './verify.js';

/** Options of `signFile`: the untrusted comment and the name errors use for the input. */
export interface SignOptions {
  /** Sign the file itself (minisign -l) instead of its BLAKE2b-512 hash. */
  legacy?: boolean;
  untrustedComment?: string;
  /** Names the input in errors. */
  name?: string;
  /** Bytes of the input read so far (for a progress line). */
  onProgress?: (bytes: number) => void;
}

/**
 * Sign `input` (streamed and hashed; legacy mode holds it, up to
 * LEGACY_MAX_BYTES) and return the .minisig text, as `minisign -S -t` writes it.
 */
export async function signFile(input: FileInput, sk: SecretKey, trustedComment: string, opts: SignOptions = {}): Promise<string> {
  return encodeSignature(await signToSignature(input, sk, trustedComment, opts));
}

export async function signToSignature(
  input: FileInput,
  sk: SecretKey,
  trustedComment: string,
  opts: SignOptions = {},
): Promise<Signature> {
  const untrusted = opts.untrustedComment ?? DEFAULT_UNTRUSTED_COMMENT;
  checkComment('trusted', trustedComment);
  checkComment('untrusted', untrusted);
  const name = opts.name ?? (typeof input === 'string' ? input : 'input');
  let message: Buffer;
  if (opts.legacy) {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of openInput(input)) {
      n += c.byteLength;
      opts.onProgress?.(n);
      if (n > LEGACY_MAX_BYTES) throw new InputError(`${name}: over ${LEGACY_MAX_BYTES >> 20} MiB; sign it prehashed (without legacy mode)`);
      chunks.push(Buffer.from(c));
    }
    message = Buffer.concat(chunks);
  } else {
    const h = createHash('blake2b512');
    let n = 0;
    for await (const c of openInput(input)) {
      h.update(c);
      opts.onProgress?.((n += c.byteLength));
    }
    message = h.digest();
  }
  const key = ed25519PrivateKey(sk.seed);
  const signature = edSign(null, message, key);
  const trustedCommentBytes = Buffer.from(trustedComment, 'utf8');
  const globalSignature = edSign(null, Buffer.concat([signature, trustedCommentBytes]), key);
  return {
    untrustedComment: untrusted,
    algorithm: opts.legacy ? 'Ed' : 'ED',
    keyId: sk.keyId,
    signature,
    trustedCommentBytes,
    trustedComment,
    globalSignature,
  };
}

/** Read and unlock a secret key file (password only for encrypted keys). */
export async function readSecretKeyFile(path: string, password?: string): Promise<SecretKey> {
  const text = await readFile(path, 'utf8').catch((e) => {
    throw missing(e, path, 'no such secret key file');
  });
  return unlockSecretKey(parseSecretKeyFile(text, path), password);
}
