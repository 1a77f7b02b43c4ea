import { createHash, verify as edVerify, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, open } from 'node:fs/promises';
import { InputError } from '@diskimg/partitions/internal';
import { decodePublicKey, ed25519PublicKey, keyIdHex, type PublicKey } from './keys.js';
import { decodeSignature, MAX_SIGNATURE_FILE_BYTES, type SigAlgorithm, type Signature } from './signature.js';
import { parseTrustedComment } from './trusted.js';

/** A file: a path (streamed from disk) or a stream of its bytes. */
export type FileInput = string | AsyncIterable<Uint8Array>;

/**
 * Legacy "Ed" signatures sign the whole file, which Ed25519 cannot take in
 * pieces, so such a file must be held in memory; above this we refuse
 * (psyopsOS artifacts are signed prehashed, minisign's default).
 */
export const LEGACY_MAX_BYTES = 64 * 1024 * 1024;

/** How errors name the signed file, its signature and the public key (paths or URLs, as the user gave them). */
export interface VerifyNames {
  /** The signed file, as the user knows it (path, URL, "LABEL:/path"). */
  file?: string;
  sig?: string;
  pubkey?: string;
}

/** A good signature: its trusted comment (raw and as key=value fields), key id, algorithm and the bytes verified. */
export interface VerifyResult {
  trustedComment: string;
  /** key=value fields of the trusted comment. */
  fields: Record<string, string>;
  keyId: string;
  algorithm: SigAlgorithm;
  /** Bytes of the file that were verified. */
  bytes: number;
}

/**
 * Verify a file incrementally: construct (checks key id and the trusted
 * comment signature at once), feed `update()` with the file's bytes in order,
 * then `finish()`. Lets callers verify while they copy a stream elsewhere;
 * nothing they wrote may be trusted until finish() returns.
 */
export class MinisignVerifier {
  private readonly hash?: Hash;
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private readonly names: Required<VerifyNames>;

  constructor(
    private readonly sig: Signature,
    private readonly pub: PublicKey,
    names: VerifyNames = {},
  ) {
    this.names = { file: names.file ?? 'file', sig: names.sig ?? 'signature', pubkey: names.pubkey ?? 'public key' };
    if (!sig.keyId.equals(pub.keyId)) {
      throw new InputError(
        `${this.names.file}: signed by key ${keyIdHex(sig.keyId)}, expected ${keyIdHex(pub.keyId)} (${this.names.pubkey}); ` +
          `verify with the signer's public key or get a signature made with yours`,
      );
    }
    const key = ed25519PublicKey(pub.key);
    if (!edVerify(null, Buffer.concat([sig.signature, sig.trustedCommentBytes]), key, sig.globalSignature)) {
      throw new InputError(
        `${this.names.sig}: the trusted comment does not match its signature (it was altered); get the original .minisig`,
      );
    }
    if (sig.algorithm === 'ED') this.hash = createHash('blake2b512');
  }

  update(chunk: Uint8Array): void {
    this.bytes += chunk.byteLength;
    if (this.hash) {
      this.hash.update(chunk);
      return;
    }
    if (this.bytes > LEGACY_MAX_BYTES) {
      throw new InputError(
        `${this.names.sig}: a legacy (non-prehashed) signature on a file over ${LEGACY_MAX_BYTES >> 20} MiB; re-sign ${this.names.file} with minisign's default (prehashed) mode`,
      );
    }
    this.chunks.push(Buffer.from(chunk));
  }

  finish(): VerifyResult {
    const message = this.hash ? this.hash.digest() : Buffer.concat(this.chunks);
    this.chunks.length = 0;
    if (!edVerify(null, message, ed25519PublicKey(this.pub.key), this.sig.signature)) {
      throw new InputError(
        `${this.names.file}: signature verification failed against ${this.names.sig}: the file was altered or is not the one signed; download it again`,
      );
    }
    return {
      trustedComment: this.sig.trustedComment,
      fields: parseTrustedComment(this.sig.trustedComment),
      keyId: keyIdHex(this.sig.keyId),
      algorithm: this.sig.algorithm,
      bytes: this.bytes,
    };
  }
}

export function openInput(input: FileInput): AsyncIterable<Uint8Array> {
  return typeof input === 'string' ? createReadStream(input, { highWaterMark: 1 << 20 }) : input;
}

function inputName(input: FileInput, given?: string): string {
  return given ?? (typeof input === 'string' ? input : 'input');
}

/**
 * Verify `input` (streamed; only a 64-byte hash state is kept) against a
 * signature (text, bytes or parsed) and a public key (file text or parsed).
 * Throws InputError naming the file and what to do; returns the trusted comment.
 */
export async function verifyFile(
  input: FileInput,
  sig: string | Uint8Array | Signature,
  pubkey: string | PublicKey,
  names: VerifyNames = {},
): Promise<VerifyResult> {
  const n = { ...names, file: inputName(input, names.file) };
  const s = typeof sig === 'string' || sig instanceof Uint8Array ? decodeSignature(sig, n.sig ?? 'signature') : sig;
  const pk = typeof pubkey === 'string' ? decodePublicKey(pubkey, n.pubkey ?? 'public key') : pubkey;
  const v = new MinisignVerifier(s, pk, n);
  for await (const chunk of openInput(input)) v.update(chunk);
  return v.finish();
}

/** Read a .minisig file (bounded: a signature file is small). */
export async function readSignatureFile(path: string): Promise<Signature> {
  const fh = await open(path, 'r').catch((e) => {
    throw missing(e, path, 'no such signature file; give it with --sig FILE or sign the file first');
  });
  try {
    const buf = Buffer.alloc(MAX_SIGNATURE_FILE_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return decodeSignature(buf.subarray(0, bytesRead), path);
  } finally {
    await fh.close();
  }
}

/** Read and decode a minisign public key file (`.pub`); an `InputError` naming the file when it is missing or malformed. */
export async function readPublicKeyFile(path: string): Promise<PublicKey> {
  const text = await readFile(path, 'utf8').catch((e) => {
    throw missing(e, path, 'no such public key file');
  });
  return decodePublicKey(text, path);
}

/** ENOENT as a one-line InputError naming the file; other errors unchanged. */
export function missing(e: unknown, path: string, what: string): unknown {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT' ? new InputError(`${path}: ${what}`) : e;
}

/** `FILE.minisig`, minisign's default signature path. */
export function defaultSignaturePath(file: string): string {
  return `${file}.minisig`;
}
