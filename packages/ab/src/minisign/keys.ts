import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scrypt, type KeyObject } from 'node:crypto';
import { FormatError, InputError } from '@diskimg/partitions/internal';

/**
 * minisign key files (jedisct1/minisign src/minisign.h, minisign.c).
 *
 * Public key: line 1 `untrusted comment: …`, line 2 base64 of
 *   sig_alg "Ed" (2) ‖ key id (8) ‖ Ed25519 public key (32).
 * Secret key: line 1 comment, line 2 base64 of
 *   sig_alg "Ed" (2) ‖ kdf_alg (2: "Sc" scrypt, or "\0\0" unencrypted, `minisign -G -W`) ‖
 *   chk_alg "B2" (2) ‖ kdf_salt (32) ‖ kdf_opslimit (8 LE) ‖ kdf_memlimit (8 LE) ‖
 *   keynum_sk (104) = key id (8) ‖ libsodium secret key (64 = seed 32 ‖ public key 32) ‖ chk (32),
 * where an encrypted keynum_sk is XORed with scrypt(password, salt, 104 bytes).
 */

export const SIG_ALG = 'Ed';
export const KEYID_BYTES = 8;
const PK_BYTES = 2 + KEYID_BYTES + 32;
const SK_BYTES = 2 + 2 + 2 + 32 + 8 + 8 + KEYID_BYTES + 64 + 32;
const KDF_SCRYPT = 'Sc';
const KDF_NONE = '\0\0';
const CHK_ALG = 'B2';

/** A minisign public key: its 8-byte key id and the 32-byte Ed25519 key. */
export interface PublicKey {
  keyId: Buffer; // 8 bytes, as stored
  key: Buffer; // 32-byte Ed25519 public key
}

/** A decoded (unlocked) minisign secret key: key id, Ed25519 secret and public halves. */
export interface SecretKey {
  keyId: Buffer;
  seed: Buffer; // 32-byte Ed25519 seed
  publicKey: Buffer;
}

/** A parsed secret key file, possibly still encrypted. */
export interface SecretKeyFile {
  name: string;
  encrypted: boolean;
  salt: Buffer;
  opslimit: bigint;
  memlimit: bigint;
  /** keynum_sk as stored (XORed with the scrypt stream when encrypted). */
  keynumSk: Buffer;
}

/** The key id as minisign prints it: the little-endian 64-bit number in 16 upper-case hex digits. */
export function keyIdHex(keyId: Uint8Array): string {
  return Buffer.from(keyId).reverse().toString('hex').toUpperCase();
}

/** Strict base64 (the standard alphabet, padded), so a damaged line is reported rather than half-decoded. */
export function decodeBase64(s: string, what: string, expectedLen: number): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) {
    throw new FormatError(what, 'is not valid base64');
  }
  const b = Buffer.from(s, 'base64');
  if (b.length !== expectedLen) throw new FormatError(what, `decodes to ${b.length} bytes, expected ${expectedLen}`);
  return b;
}

/** True when `b64` is valid base64 of exactly `len` bytes (to tell a .pub from a .key). */
function looksLike(b64: string, len: number): boolean {
  const t = b64.trim();
  return /^[A-Za-z0-9+/]*={0,2}$/.test(t) && t.length % 4 === 0 && Buffer.from(t, 'base64').length === len;
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, ''));
}

/**
 * Parse a public key: a minisign .pub file (comment line + key line) or the
 * bare base64 key (as given to `minisign -P`). `name` names it in errors.
 */
export function decodePublicKey(text: string, name = 'public key'): PublicKey {
  const ls = lines(text.trim());
  let b64: string | undefined;
  if (ls.length === 1) b64 = ls[0];
  else if (ls[0]!.startsWith('untrusted comment:')) b64 = ls[1];
  if (b64 === undefined) {
    throw new FormatError(name, 'not a minisign public key (expected "untrusted comment: …" then the base64 key)');
  }
  if (looksLike(b64, SK_BYTES)) throw new InputError(`${name}: is a minisign secret key; give the public key file (.pub) here`);
  const b = decodeBase64(b64.trim(), `${name}: public key line`, PK_BYTES);
  if (b.subarray(0, 2).toString('latin1') !== SIG_ALG) {
    throw new FormatError(name, `unsupported signature algorithm ${JSON.stringify(b.subarray(0, 2).toString('latin1'))} (minisign keys use "Ed")`);
  }
  return { keyId: Buffer.from(b.subarray(2, 10)), key: Buffer.from(b.subarray(10)) };
}

export function encodePublicKey(pk: PublicKey): string {
  const b = Buffer.concat([Buffer.from(SIG_ALG, 'latin1'), pk.keyId, pk.key]);
  // minisign prints the id as %PRIX64 (no leading zeros); match it so our .pub files equal minisign's.
  return `untrusted comment: minisign public key ${keyIdHex(pk.keyId).replace(/^0+(?=.)/, '')}\n${b.toString('base64')}\n`;
}

/** Parse a minisign secret key file without decrypting it. */
export function parseSecretKeyFile(text: string, name = 'secret key'): SecretKeyFile {
  const ls = lines(text);
  if (ls.length < 2 || !ls[0]!.startsWith('untrusted comment:')) {
    throw new FormatError(name, 'not a minisign secret key (expected "untrusted comment: …" then the base64 key)');
  }
  if (looksLike(ls[1]!, PK_BYTES)) throw new InputError(`${name}: is a minisign public key; give the secret key file (.key) here`);
  const b = decodeBase64(ls[1]!.trim(), `${name}: secret key line`, SK_BYTES);
  const alg = b.subarray(0, 2).toString('latin1');
  const kdf = b.subarray(2, 4).toString('latin1');
  const chk = b.subarray(4, 6).toString('latin1');
  if (alg !== SIG_ALG) throw new FormatError(name, `unsupported signature algorithm ${JSON.stringify(alg)}`);
  if (chk !== CHK_ALG) throw new FormatError(name, `unsupported checksum algorithm ${JSON.stringify(chk)}`);
  if (kdf !== KDF_SCRYPT && kdf !== KDF_NONE) throw new FormatError(name, `unsupported key derivation ${JSON.stringify(kdf)}`);
  return {
    name,
    encrypted: kdf === KDF_SCRYPT,
    salt: Buffer.from(b.subarray(6, 38)),
    opslimit: b.readBigUInt64LE(38),
    memlimit: b.readBigUInt64LE(46),
    keynumSk: Buffer.from(b.subarray(54)),
  };
}

/**
 * libsodium's crypto_pwhash_scryptsalsa208sha256 turns (opslimit, memlimit)
 * into scrypt's N, r, p this way (crypto_scrypt-common.c, pickparams).
 */
export function scryptParams(opslimit: bigint, memlimit: bigint): { N: number; r: number; p: number } {
  const ops = opslimit < 32768n ? 32768n : opslimit;
  const r = 8n;
  let logN = 1n;
  let p: bigint;
  if (ops < memlimit / 32n) {
    p = 1n;
    const maxN = ops / (r * 4n);
    for (logN = 1n; logN < 63n; logN++) if (1n << logN > maxN / 2n) break;
  } else {
    const maxN = memlimit / (r * 128n);
    for (logN = 1n; logN < 63n; logN++) if (1n << logN > maxN / 2n) break;
    let maxrp = ops / 4n / (1n << logN);
    if (maxrp > 0x3fffffffn) maxrp = 0x3fffffffn;
    p = maxrp / r;
  }
  return { N: Number(1n << logN), r: Number(r), p: Number(p) };
}

/** Memory scrypt may take for a key (minisign's default is 1 GiB); beyond this we refuse rather than exhaust the machine. */
const SCRYPT_MAX_BYTES = 2 * 1024 * 1024 * 1024;

/**
 * Decrypt (when needed) and check a secret key. An unencrypted key
 * (`minisign -G -W`) needs no password. Wrong passwords are detected by
 * deriving the public key from the decrypted seed (minisign writes no
 * checksum for unencrypted keys, so that is the one check that covers both).
 */
export async function unlockSecretKey(file: SecretKeyFile, password?: string): Promise<SecretKey> {
  let ks = file.keynumSk;
  if (file.encrypted) {
    if (password === undefined) {
      throw new InputError(
        `${file.name}: the secret key is protected by a password; give it with --password-file FILE, or remove it with "minisign -C -W -s ${file.name}"`,
      );
    }
    const { N, r, p } = scryptParams(file.opslimit, file.memlimit);
    const need = 128 * r * (N + 2) + 128 * r * p;
    if (need > SCRYPT_MAX_BYTES || p < 1) {
      throw new InputError(`${file.name}: the key's scrypt parameters need ${need} bytes of memory; re-encrypt it with "minisign -C"`);
    }
    const stream = await new Promise<Buffer>((resolve, reject) =>
      scrypt(password, file.salt, ks.length, { N, r, p, maxmem: need + 1024 * 1024 }, (err, key) =>
        err ? reject(err) : resolve(key),
      ),
    );
    ks = Buffer.from(ks);
    for (let i = 0; i < ks.length; i++) ks[i]! ^= stream[i]!;
  }
  const keyId = Buffer.from(ks.subarray(0, 8));
  const seed = Buffer.from(ks.subarray(8, 40));
  const publicKey = Buffer.from(ks.subarray(40, 72));
  const derived = rawPublicKey(createPublicKey(ed25519PrivateKey(seed)));
  if (!derived.equals(publicKey)) {
    throw new InputError(
      file.encrypted ? `${file.name}: wrong password for this secret key` : `${file.name}: the secret key is damaged (its public half does not match)`,
    );
  }
  return { keyId, seed, publicKey };
}

/** Parse and unlock a secret key file's text. */
export async function decodeSecretKey(text: string, opts: { name?: string; password?: string } = {}): Promise<SecretKey> {
  return unlockSecretKey(parseSecretKeyFile(text, opts.name), opts.password);
}

/**
 * An unencrypted secret key file, as `minisign -G -W` writes it (kdf "\0\0",
 * zero salt and limits, zero checksum: minisign neither writes nor checks one
 * for unencrypted keys; `minisign -C` computes it when adding a password).
 */
export function encodeSecretKey(sk: SecretKey): string {
  const b = Buffer.alloc(SK_BYTES);
  b.write(SIG_ALG, 0, 'latin1');
  b.write(KDF_NONE, 2, 'latin1');
  b.write(CHK_ALG, 4, 'latin1');
  sk.keyId.copy(b, 54);
  sk.seed.copy(b, 62);
  sk.publicKey.copy(b, 94);
  return `untrusted comment: minisign secret key (unencrypted)\n${b.toString('base64')}\n`;
}

export function publicKeyOf(sk: SecretKey): PublicKey {
  return { keyId: sk.keyId, key: sk.publicKey };
}

/** A new key pair with a random key id. */
export function generateKeyPair(): { publicKey: PublicKey; secretKey: SecretKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32));
  const pk = rawPublicKey(publicKey);
  const keyId = randomBytes(KEYID_BYTES);
  return { publicKey: { keyId, key: pk }, secretKey: { keyId, seed, publicKey: pk } };
}

// DER prefixes that wrap a raw Ed25519 key for node:crypto (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function ed25519PrivateKey(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

export function ed25519PublicKey(key: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, key]), format: 'der', type: 'spki' });
}

function rawPublicKey(k: KeyObject): Buffer {
  return Buffer.from(k.export({ format: 'der', type: 'spki' }).subarray(-32));
}
