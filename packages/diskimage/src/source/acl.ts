import { InputError } from '@diskimg/partitions/internal';

/**
 * POSIX ACLs in the form Linux's getxattr("system.posix_acl_access") returns
 * (include/uapi/linux/posix_acl_xattr.h): le32 version 2, then 8-byte
 * entries {le16 tag, le16 perm, le32 id}, sorted by tag then id, id
 * 0xffffffff for the entries without a qualifier.
 */
export const ACL_USER_OBJ = 0x01;
export const ACL_USER = 0x02;
export const ACL_GROUP_OBJ = 0x04;
export const ACL_GROUP = 0x08;
export const ACL_MASK = 0x10;
export const ACL_OTHER = 0x20;
export const ACL_UNDEFINED_ID = 0xffffffff;
export const POSIX_ACL_XATTR_VERSION = 2;
export const XATTR_ACL_ACCESS = 'system.posix_acl_access';
export const XATTR_ACL_DEFAULT = 'system.posix_acl_default';

export interface AclEntry {
  tag: number;
  perm: number;
  id: number;
}

const TAG_ORDER = [ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER];

/** Sort as the kernel wants (posix_acl_valid) and check the required entries; throws a message. */
export function checkAcl(entries: AclEntry[], what: string): AclEntry[] {
  const sorted = [...entries].sort((a, b) => TAG_ORDER.indexOf(a.tag) - TAG_ORDER.indexOf(b.tag) || a.id - b.id);
  const count = (t: number) => sorted.filter((e) => e.tag === t).length;
  for (const t of [ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_OTHER]) if (count(t) !== 1) throw new InputError(`${what}: an ACL needs exactly one user::, group:: and other:: entry`);
  if (count(ACL_MASK) > 1) throw new InputError(`${what}: ACL has more than one mask:: entry`);
  if ((count(ACL_USER) || count(ACL_GROUP)) && !count(ACL_MASK)) throw new InputError(`${what}: ACL with named entries lacks a mask:: entry`);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (a.tag === b.tag && (a.tag === ACL_USER || a.tag === ACL_GROUP) && a.id === b.id) throw new InputError(`${what}: ACL names id ${a.id} twice`);
  }
  for (const e of sorted) if (e.perm & ~7) throw new InputError(`${what}: ACL permission bits 0x${e.perm.toString(16)} out of range`);
  return sorted;
}

export function encodeAclXattr(entries: AclEntry[]): Buffer {
  const b = Buffer.alloc(4 + 8 * entries.length);
  b.writeUInt32LE(POSIX_ACL_XATTR_VERSION, 0);
  entries.forEach((e, i) => {
    b.writeUInt16LE(e.tag, 4 + 8 * i);
    b.writeUInt16LE(e.perm, 6 + 8 * i);
    b.writeUInt32LE(e.tag === ACL_USER || e.tag === ACL_GROUP ? e.id : ACL_UNDEFINED_ID, 8 + 8 * i);
  });
  return b;
}

export function decodeAclXattr(b: Buffer, what: string): AclEntry[] {
  if (b.length < 4 || (b.length - 4) % 8 !== 0 || b.readUInt32LE(0) !== POSIX_ACL_XATTR_VERSION) {
    throw new InputError(`${what}: not a POSIX ACL in the Linux xattr format (version 2, 8-byte entries)`);
  }
  const out: AclEntry[] = [];
  for (let o = 4; o < b.length; o += 8) out.push({ tag: b.readUInt16LE(o), perm: b.readUInt16LE(o + 2), id: b.readUInt32LE(o + 4) });
  for (const e of out) if (!TAG_ORDER.includes(e.tag)) throw new InputError(`${what}: unknown ACL tag 0x${e.tag.toString(16)}`);
  return out;
}

/** An access ACL of only user::, group:: and other:: says nothing the mode does not (the kernel stores none). */
export function aclIsMinimal(entries: AclEntry[]): boolean {
  return entries.length === 3;
}

/**
 * Parse the text form tar archives carry (SCHILY.acl.access / .default):
 * GNU tar writes acl_to_text output (newline separated, names), bsdtar
 * comma-separated with the numeric id as a 4th field
 * ("user:alice:rwx:1000"). A qualifier must be numeric or carry its id:
 * resolving a name would use the build host's passwd, not the image's.
 */
export function parseAclText(text: string, what: string): AclEntry[] {
  const out: AclEntry[] = [];
  for (let raw of text.split(/[,\n]/)) {
    const hash = raw.indexOf('#');
    if (hash >= 0) raw = raw.slice(0, hash);
    raw = raw.trim();
    if (!raw) continue;
    const f = raw.split(':');
    const kind = f[0]!;
    const tagOf: Record<string, [number, number]> = { user: [ACL_USER_OBJ, ACL_USER], u: [ACL_USER_OBJ, ACL_USER], group: [ACL_GROUP_OBJ, ACL_GROUP], g: [ACL_GROUP_OBJ, ACL_GROUP], mask: [ACL_MASK, ACL_MASK], m: [ACL_MASK, ACL_MASK], other: [ACL_OTHER, ACL_OTHER], o: [ACL_OTHER, ACL_OTHER] };
    const tags = tagOf[kind];
    if (!tags || f.length < 3 || f.length > 4) throw new InputError(`${what}: cannot parse ACL entry "${raw}"`);
    const qual = f[1]!;
    const perms = f[2]!;
    let perm = 0;
    for (const c of perms) {
      if (c === 'r') perm |= 4;
      else if (c === 'w') perm |= 2;
      else if (c === 'x') perm |= 1;
      else if (c !== '-') throw new InputError(`${what}: bad permissions "${perms}" in ACL entry "${raw}"`);
    }
    if (qual === '' || kind.startsWith('m') || kind.startsWith('o')) {
      out.push({ tag: tags[0], perm, id: ACL_UNDEFINED_ID });
      continue;
    }
    const idText = f.length === 4 ? f[3]! : qual;
    if (!/^\d+$/.test(idText) || Number(idText) > 0xfffffffe) {
      throw new InputError(
        `${what}: ACL entry "${raw}" names ${kind} "${qual}" without a numeric id; re-create the archive with GNU tar --xattrs --xattrs-include='*' (which also stores the numeric form) or with bsdtar`,
      );
    }
    out.push({ tag: tags[1], perm, id: Number(idText) });
  }
  return checkAcl(out, what);
}
