import { FormatError, InputError } from '@diskimg/partitions/internal';
import { decodeBase64, KEYID_BYTES } from './keys.js';

/**
 * A minisign signature file: four lines
 *   untrusted comment: <text>
 *   base64(sig_alg (2) ‖ key id (8) ‖ Ed25519 signature (64))
 *   trusted comment: <text>
 *   base64(Ed25519 signature over signature (64) ‖ trusted comment bytes)
 * sig_alg "ED" signs BLAKE2b-512 of the file (minisign ≥ 0.8 default);
 * legacy "Ed" signs the file bytes themselves.
 */

export type SigAlgorithm = 'ED' | 'Ed';
export const UNTRUSTED_PREFIX = 'untrusted comment: ';
export const TRUSTED_PREFIX = 'trusted comment: ';
export const DEFAULT_UNTRUSTED_COMMENT = 'signature from minisign secret key';
/** minisign's limits (minisign.h: COMMENTMAXBYTES, TRUSTEDCOMMENTMAXBYTES, less the prefix and newline). */
export const MAX_UNTRUSTED_BYTES = 1024 - UNTRUSTED_PREFIX.length - 1;
export const MAX_TRUSTED_BYTES = 8192 - TRUSTED_PREFIX.length - 1;
/** A signature file larger than this is not a signature file (we never read more). */
export const MAX_SIGNATURE_FILE_BYTES = 16 * 1024;

/** A decoded `.minisig`: algorithm (`ED` prehashed, legacy `Ed`), key id, signature, trusted comment and its global signature. */
export interface Signature {
  untrustedComment: string;
  algorithm: SigAlgorithm;
  keyId: Buffer;
  signature: Buffer;
  /** The trusted comment bytes exactly as signed (without prefix and newline). */
  trustedCommentBytes: Buffer;
  trustedComment: string;
  globalSignature: Buffer;
}

function splitLines(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= b.length; i++) {
    if (i === b.length || b[i] === 0x0a) {
      let end = i;
      // minisign's trim() drops trailing CR/LF.
      while (end > start && (b[end - 1] === 0x0d || b[end - 1] === 0x0a)) end--;
      out.push(b.subarray(start, end));
      start = i + 1;
    }
  }
  return out;
}

/** Parse a .minisig file. `name` names it in errors. */
export function decodeSignature(input: string | Uint8Array, name = 'signature'): Signature {
  const b = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (b.length > MAX_SIGNATURE_FILE_BYTES) throw new FormatError(name, `is ${b.length} bytes: not a minisign signature file`);
  const ls = splitLines(b);
  const hint = 'expected the 4 lines of a .minisig file';
  if (ls.length < 4) throw new FormatError(name, `has ${ls.filter((l) => l.length).length} lines; ${hint}`);
  const [l1, l2, l3, l4] = ls as [Buffer, Buffer, Buffer, Buffer];
  if (!l1.toString('latin1').startsWith(UNTRUSTED_PREFIX)) {
    throw new FormatError(name, `line 1 must start with "${UNTRUSTED_PREFIX}"; ${hint}`);
  }
  if (!l3.toString('latin1').startsWith(TRUSTED_PREFIX)) {
    throw new FormatError(name, `line 3 must start with "${TRUSTED_PREFIX}"; ${hint}`);
  }
  const sig = decodeBase64(l2.toString('latin1').trim(), `${name}: line 2 (signature)`, 2 + KEYID_BYTES + 64);
  const alg = sig.subarray(0, 2).toString('latin1');
  if (alg !== 'ED' && alg !== 'Ed') {
    throw new FormatError(name, `unsupported signature algorithm ${JSON.stringify(alg)} (minisign uses "ED" or legacy "Ed")`);
  }
  const globalSignature = decodeBase64(l4.toString('latin1').trim(), `${name}: line 4 (trusted comment signature)`, 64);
  const trustedCommentBytes = Buffer.from(l3.subarray(TRUSTED_PREFIX.length));
  return {
    untrustedComment: l1.subarray(UNTRUSTED_PREFIX.length).toString('utf8'),
    algorithm: alg,
    keyId: Buffer.from(sig.subarray(2, 10)),
    signature: Buffer.from(sig.subarray(10)),
    trustedCommentBytes,
    trustedComment: trustedCommentBytes.toString('utf8'),
    globalSignature,
  };
}

/** A signature as the 4-line `.minisig` text minisign writes and reads. */
export function encodeSignature(s: Signature): string {
  const sig = Buffer.concat([Buffer.from(s.algorithm, 'latin1'), s.keyId, s.signature]);
  return (
    `${UNTRUSTED_PREFIX}${s.untrustedComment}\n${sig.toString('base64')}\n` +
    `${TRUSTED_PREFIX}${s.trustedCommentBytes.toString('utf8')}\n${s.globalSignature.toString('base64')}\n`
  );
}

/** Check a comment we are about to sign or write: one line, within minisign's limits. */
export function checkComment(kind: 'trusted' | 'untrusted', text: string): void {
  if (/[\r\n]/.test(text)) throw new InputError(`${kind} comment: must be a single line`);
  const max = kind === 'trusted' ? MAX_TRUSTED_BYTES : MAX_UNTRUSTED_BYTES;
  if (Buffer.byteLength(text) > max) throw new InputError(`${kind} comment: ${Buffer.byteLength(text)} bytes, minisign allows ${max}`);
}
