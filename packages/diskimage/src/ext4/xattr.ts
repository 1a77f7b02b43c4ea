import { FormatError, InputError } from '@diskimg/partitions/internal';
import { asBuffer } from './struct.js';
import { crc32cRaw } from './crc32c.js';

/**
 * Extended attributes on disk, as the kernel (fs/ext4/xattr.c, acl.c) and
 * e2fsprogs (lib/ext2fs/ext_attr.c) store them:
 *
 * - in the inode, after 128 + i_extra_isize: le32 magic 0xEA020000
 *   (struct ext4_xattr_ibody_header), then entries; e_value_offs counts from
 *   the first entry; values are packed at the end of the inode;
 * - in one external block (i_file_acl): a 32-byte struct ext4_xattr_header
 *   (magic, h_refcount, h_blocks = 1, h_hash, h_checksum), entries from byte
 *   32, sorted by (name index, name length, name), values packed at the end
 *   of the block, e_value_offs from the block start. A block may be shared
 *   by inodes with identical sets (h_refcount of them, at most 1024).
 *
 * Entries: e_name_len, e_name_index, le16 e_value_offs, le32 e_value_inum,
 * le32 e_value_size, le32 e_hash, the name (padded to 4). A zero u32 ends
 * the list. POSIX ACLs use their own compact format (ext4_acl_header).
 */
export const EXT4_XATTR_MAGIC = 0xea020000;
export const EXT4_XATTR_INDEX_USER = 1;
export const EXT4_XATTR_INDEX_POSIX_ACL_ACCESS = 2;
export const EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT = 3;
export const EXT4_XATTR_INDEX_TRUSTED = 4;
export const EXT4_XATTR_INDEX_LUSTRE = 5;
export const EXT4_XATTR_INDEX_SECURITY = 6;
export const EXT4_XATTR_INDEX_SYSTEM = 7;
export const EXT4_XATTR_INDEX_RICHACL = 8;
export const EXT4_XATTR_INDEX_ENCRYPTION = 9;
export const EXT4_XATTR_INDEX_HURD = 10;
/** Kernel's EXT4_XATTR_REFCOUNT_MAX: a block shared by more inodes is duplicated. */
export const EXT4_XATTR_REFCOUNT_MAX = 1024;
export const XATTR_HEADER_SIZE = 32;
export const XATTR_ENTRY_SIZE = 16;

export interface XattrEntry {
  e_name_index: number;
  name: Buffer;
  e_value_inum: number;
  value: Buffer;
  /** As stored (decode only). */
  e_hash?: number;
}

const pad4 = (n: number) => (n + 3) & ~3;

/* ---- names ---------------------------------------------------------------- */

const PREFIXES: [string, number][] = [
  ['user.', EXT4_XATTR_INDEX_USER],
  ['trusted.', EXT4_XATTR_INDEX_TRUSTED],
  ['security.', EXT4_XATTR_INDEX_SECURITY],
];

/** Full name as Linux's getxattr names it. Unknown indexes keep a "index.N." prefix so nothing is hidden. */
export function xattrFullName(index: number, name: Buffer): string {
  const n = name.toString('utf8');
  switch (index) {
    case EXT4_XATTR_INDEX_USER: return `user.${n}`;
    case EXT4_XATTR_INDEX_POSIX_ACL_ACCESS: return 'system.posix_acl_access';
    case EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT: return 'system.posix_acl_default';
    case EXT4_XATTR_INDEX_TRUSTED: return `trusted.${n}`;
    case EXT4_XATTR_INDEX_LUSTRE: return `lustre.${n}`;
    case EXT4_XATTR_INDEX_SECURITY: return `security.${n}`;
    case EXT4_XATTR_INDEX_SYSTEM: return `system.${n}`;
    case EXT4_XATTR_INDEX_RICHACL: return `system.richacl${n}`;
    case EXT4_XATTR_INDEX_ENCRYPTION: return `encryption.${n}`;
    case EXT4_XATTR_INDEX_HURD: return `gnu.${n}`;
    default: return `index${index}.${n}`;
  }
}

/**
 * (index, short name) for a full attribute name, as the kernel's handlers
 * accept them; anything else is an InputError (the kernel could not set it
 * either, so it would not mean the same on the target).
 */
export function xattrShortName(full: string, what: string): { index: number; name: Buffer } {
  if (full === 'system.posix_acl_access') return { index: EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, name: Buffer.alloc(0) };
  if (full === 'system.posix_acl_default') return { index: EXT4_XATTR_INDEX_POSIX_ACL_DEFAULT, name: Buffer.alloc(0) };
  for (const [p, index] of PREFIXES) {
    if (full.startsWith(p)) {
      const name = Buffer.from(full.slice(p.length), 'utf8');
      if (name.length === 0) throw new InputError(`${what}: extended attribute "${full}" has an empty name`);
      if (name.length > 255) throw new InputError(`${what}: extended attribute name "${full}" is longer than 255 bytes`);
      return { index, name };
    }
  }
  throw new InputError(`${what}: extended attribute "${full}" is not in the user., trusted., security. or system.posix_acl_* namespaces ext4 stores; remove it from the payload`);
}

/* ---- POSIX ACLs: Linux xattr format <-> ext4's compact format -------------- */

const ACL_USER = 0x02;
const ACL_GROUP = 0x08;
const EXT4_ACL_VERSION = 1;

/** posix_acl_xattr (version 2, 8-byte entries) → ext4_acl_header + short/full entries. */
export function aclToDisk(x: Buffer, what: string): Buffer {
  if (x.length < 4 || (x.length - 4) % 8 !== 0 || x.readUInt32LE(0) !== 2) throw new InputError(`${what}: not a POSIX ACL in the Linux xattr format (version 2)`);
  const parts: Buffer[] = [Buffer.from([EXT4_ACL_VERSION, 0, 0, 0])];
  for (let o = 4; o < x.length; o += 8) {
    const tag = x.readUInt16LE(o);
    const full = tag === ACL_USER || tag === ACL_GROUP;
    const e = Buffer.alloc(full ? 8 : 4);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(x.readUInt16LE(o + 2), 2);
    if (full) e.writeUInt32LE(x.readUInt32LE(o + 4), 4);
    parts.push(e);
  }
  return Buffer.concat(parts);
}

/** ext4's compact ACL → posix_acl_xattr (what getfattr shows). */
export function aclFromDisk(d: Buffer, structure: string): Buffer {
  if (d.length < 4 || d.readUInt32LE(0) !== EXT4_ACL_VERSION) throw new FormatError(structure, 'ACL attribute without ext4_acl_header version 1');
  const out: Buffer[] = [Buffer.from([2, 0, 0, 0])];
  let o = 4;
  while (o < d.length) {
    if (o + 4 > d.length) throw new FormatError(structure, 'truncated ACL entry');
    const tag = d.readUInt16LE(o);
    const e = Buffer.alloc(8);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(d.readUInt16LE(o + 2), 2);
    if (tag === ACL_USER || tag === ACL_GROUP) {
      if (o + 8 > d.length) throw new FormatError(structure, 'truncated ACL entry');
      e.writeUInt32LE(d.readUInt32LE(o + 4), 4);
      o += 8;
    } else {
      e.writeUInt32LE(0xffffffff, 4);
      o += 4;
    }
    out.push(e);
  }
  return Buffer.concat(out);
}

/* ---- hashes and checksum -------------------------------------------------- */

/** ext4_xattr_hash_entry (unsigned name bytes, as Linux ≥ 6.2 and e2fsprogs ≥ 1.47 write it). */
export function xattrEntryHash(name: Uint8Array, value: Uint8Array, valueInum = 0, signed = false): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) {
    const c = signed && name[i]! > 127 ? name[i]! - 256 : name[i]!;
    h = ((h << 5) ^ (h >>> 27) ^ c) >>> 0;
  }
  if (valueInum === 0 && value.length) {
    const p = Buffer.alloc(pad4(value.length));
    p.set(value);
    for (let o = 0; o < p.length; o += 4) h = ((h << 16) ^ (h >>> 16) ^ p.readUInt32LE(o)) >>> 0;
  }
  return h >>> 0;
}

/** ext4_xattr_rehash: the block's h_hash from its entries' hashes (0 when one is 0). */
export function xattrBlockHash(hashes: number[]): number {
  let h = 0;
  for (const e of hashes) {
    if (e === 0) return 0;
    h = ((h << 16) ^ (h >>> 16) ^ e) >>> 0;
  }
  return h >>> 0;
}

/** h_checksum: crc32c(fs seed, le64 block number ‖ block with h_checksum zeroed). */
export function xattrBlockChecksum(seed: number, blockNr: number, block: Uint8Array): number {
  const nr = Buffer.alloc(8);
  nr.writeUInt32LE(blockNr % 2 ** 32, 0);
  nr.writeUInt32LE(Math.floor(blockNr / 2 ** 32), 4);
  let c = crc32cRaw(seed, nr);
  c = crc32cRaw(c, block, 0, 16);
  c = crc32cRaw(c, new Uint8Array(4));
  c = crc32cRaw(c, block, 20, block.length);
  return c >>> 0;
}

/* ---- encoding --------------------------------------------------------------- */

/** Order the kernel searches block entries in: index, name length, name. */
export function compareXattrs(a: XattrEntry, b: XattrEntry): number {
  return a.e_name_index - b.e_name_index || a.name.length - b.name.length || Buffer.compare(a.name, b.name);
}

/** Bytes an entry takes in the entry table, and its value. */
export function xattrEntrySpace(e: XattrEntry): number {
  return XATTR_ENTRY_SIZE + pad4(e.name.length) + pad4(e.value.length);
}

/**
 * Write entries and values into `area`: entries from `entriesAt`, values
 * packed down from the end; value offsets relative to `offsBase`. Returns the
 * entry hashes. The caller checked that they fit.
 */
function place(area: Buffer, entriesAt: number, offsBase: number, entries: XattrEntry[]): number[] {
  let eo = entriesAt;
  let vo = area.length;
  const hashes: number[] = [];
  for (const e of entries) {
    let offs = 0;
    if (e.value.length) {
      vo -= pad4(e.value.length);
      area.set(e.value, vo);
      offs = vo - offsBase;
    }
    const h = xattrEntryHash(e.name, e.value);
    area[eo] = e.name.length;
    area[eo + 1] = e.e_name_index;
    area.writeUInt16LE(offs, eo + 2);
    area.writeUInt32LE(0, eo + 4);
    area.writeUInt32LE(e.value.length, eo + 8);
    area.writeUInt32LE(h, eo + 12);
    area.set(e.name, eo + XATTR_ENTRY_SIZE);
    eo += XATTR_ENTRY_SIZE + pad4(e.name.length);
    hashes.push(h);
  }
  return hashes;
}

/** Room for attributes in an in-inode area of `areaSize` bytes (after the magic and the end marker). */
export function ibodyCapacity(areaSize: number): number {
  return Math.max(0, areaSize - 4 - 4);
}

/** The in-inode area (magic, entries, values) of `areaSize` bytes; entries must fit ibodyCapacity. */
export function encodeIbodyXattrs(entries: XattrEntry[], areaSize: number): Buffer {
  const b = Buffer.alloc(areaSize);
  if (!entries.length) return b;
  b.writeUInt32LE(EXT4_XATTR_MAGIC, 0);
  place(b, 4, 4, entries);
  return b;
}

/** Room for attributes in an xattr block (after the header and the end marker). */
export function blockCapacity(blockSize: number): number {
  return blockSize - XATTR_HEADER_SIZE - 4;
}

/** An external xattr block with h_refcount and checksum filled (seed undefined: no metadata_csum). */
export function encodeXattrBlock(entries: XattrEntry[], blockSize: number, refcount: number, blockNr: number, seed?: number): Buffer {
  const b = Buffer.alloc(blockSize);
  b.writeUInt32LE(EXT4_XATTR_MAGIC, 0);
  b.writeUInt32LE(refcount, 4);
  b.writeUInt32LE(1, 8);
  const hashes = place(b, XATTR_HEADER_SIZE, 0, entries);
  b.writeUInt32LE(xattrBlockHash(hashes), 12);
  if (seed !== undefined) b.writeUInt32LE(xattrBlockChecksum(seed, blockNr, b), 16);
  return b;
}

/* ---- decoding --------------------------------------------------------------- */

function decodeEntries(b: Buffer, first: number, valueBase: number, structure: string): XattrEntry[] {
  const out: XattrEntry[] = [];
  let off = first;
  // Entries are ≥ 16 bytes each, so this ends within b.length / 16 steps.
  while (off + 4 <= b.length && b.readUInt32LE(off) !== 0) {
    if (off + XATTR_ENTRY_SIZE > b.length) throw new FormatError(structure, 'xattr entry runs past its area');
    const nameLen = b[off]!;
    const e_name_index = b[off + 1]!;
    const valueOffs = b.readUInt16LE(off + 2);
    const e_value_inum = b.readUInt32LE(off + 4);
    const valueSize = b.readUInt32LE(off + 8);
    const e_hash = b.readUInt32LE(off + 12);
    if (off + XATTR_ENTRY_SIZE + nameLen > b.length) throw new FormatError(structure, 'xattr name runs past its area');
    const name = Buffer.from(b.subarray(off + XATTR_ENTRY_SIZE, off + XATTR_ENTRY_SIZE + nameLen));
    let value = Buffer.alloc(0);
    if (e_value_inum === 0 && valueSize > 0) {
      if (valueBase + valueOffs + valueSize > b.length) throw new FormatError(structure, `xattr value of ${valueSize} bytes runs past its area`);
      value = Buffer.from(b.subarray(valueBase + valueOffs, valueBase + valueOffs + valueSize));
    }
    out.push({ e_name_index, name, e_value_inum, value, e_hash });
    off += XATTR_ENTRY_SIZE + pad4(nameLen);
  }
  return out;
}

/**
 * Parse the in-inode xattr area: `area` is the raw inode bytes from
 * 128 + i_extra_isize to the end of the inode. Returns [] when the magic is
 * absent. Values live at e_value_offs from the first entry.
 */
export function decodeIbodyXattrs(area: Uint8Array, structure: string): XattrEntry[] {
  const b = asBuffer(area);
  if (b.length < 4 || b.readUInt32LE(0) !== EXT4_XATTR_MAGIC) return [];
  return decodeEntries(b, 4, 4, structure);
}

export interface XattrBlock {
  refcount: number;
  blocks: number;
  hash: number;
  checksum: number;
  entries: XattrEntry[];
}

/** Parse an external xattr block; with `csum`, verify h_checksum. */
export function decodeXattrBlock(block: Uint8Array, structure: string, csum?: { seed: number; blockNr: number }): XattrBlock {
  const b = asBuffer(block);
  if (b.length < XATTR_HEADER_SIZE + 4 || b.readUInt32LE(0) !== EXT4_XATTR_MAGIC) throw new FormatError(structure, 'bad xattr block magic');
  const blocks = b.readUInt32LE(8);
  if (blocks !== 1) throw new FormatError(structure, `h_blocks ${blocks}, expected 1`);
  const checksum = b.readUInt32LE(16);
  if (csum && xattrBlockChecksum(csum.seed, csum.blockNr, b) !== checksum) throw new FormatError(structure, 'checksum mismatch');
  return { refcount: b.readUInt32LE(4), blocks, hash: b.readUInt32LE(12), checksum, entries: decodeEntries(b, XATTR_HEADER_SIZE, 0, structure) };
}
