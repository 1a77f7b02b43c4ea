import { InputError, FormatError } from './errors.js';

/**
 * GUIDs as GPT stores them: the first three fields little-endian, the last
 * two big-endian ("mixed-endian", UEFI spec appendix A). Text is upper case,
 * as sgdisk and sfdisk print it.
 */
const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const ZERO_GUID = '00000000-0000-0000-0000-000000000000';

export function isGuid(text: string): boolean {
  return GUID_RE.test(text);
}

/** GUID text → 16 bytes in GPT (mixed-endian) order. */
export function guidToBytes(text: string): Buffer {
  if (!GUID_RE.test(text)) throw new InputError(`GUID "${text}": expected form XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX (hex)`);
  const hex = text.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  // Swap the first three fields to little-endian.
  return Buffer.concat([b.subarray(0, 4).reverse(), b.subarray(4, 6).reverse(), b.subarray(6, 8).reverse(), b.subarray(8, 16)]);
}

/** 16 bytes in GPT order at `offset` → upper-case GUID text. */
export function guidFromBytes(bytes: Uint8Array, offset = 0): string {
  if (offset < 0 || offset + 16 > bytes.length) throw new FormatError('GUID', `needs 16 bytes at offset ${offset}, have ${bytes.length}`);
  const b = Buffer.from(bytes.subarray(offset, offset + 16));
  const h = (x: Buffer) => x.toString('hex').toUpperCase();
  return [
    h(Buffer.from(b.subarray(0, 4)).reverse()),
    h(Buffer.from(b.subarray(4, 6)).reverse()),
    h(Buffer.from(b.subarray(6, 8)).reverse()),
    h(b.subarray(8, 10)),
    h(b.subarray(10, 16)),
  ].join('-');
}

/**
 * A version-4 (random) GUID from 16 bytes of entropy: the version and
 * variant bits are set as RFC 4122 asks, so seeded GUIDs look like random ones.
 */
export function guidFromEntropy(random: Uint8Array): string {
  if (random.length < 16) throw new InputError(`guidFromEntropy: need 16 bytes, got ${random.length}`);
  const b = Buffer.from(random.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex').toUpperCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Partition type GUIDs we name. Aliases are what the CLI and layouts accept. */
export const PARTITION_TYPES: Record<string, { guid: string; name: string }> = {
  esp: { guid: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', name: 'EFI System' },
  linux: { guid: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', name: 'Linux filesystem' },
  'bios-boot': { guid: '21686148-6449-6E6F-744E-656564454649', name: 'BIOS boot' },
  swap: { guid: '0657FD6D-A4AB-4C9C-84E5-2F7F0F5C3D4F', name: 'Linux swap' },
  'linux-root-x86-64': { guid: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709', name: 'Linux root (x86-64)' },
  'linux-home': { guid: '933AC7E1-2EB4-4F13-B844-0E14E2AEF915', name: 'Linux home' },
  lvm: { guid: 'E6D6D379-F507-44C2-A23C-238F2A3DF928', name: 'Linux LVM' },
  raid: { guid: 'A19D880F-05FC-4D3B-A006-743F0F84911E', name: 'Linux RAID' },
  'microsoft-basic-data': { guid: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7', name: 'Microsoft basic data' },
  'microsoft-reserved': { guid: 'E3C9E316-0B5C-4DB8-817D-F92DF00215AE', name: 'Microsoft reserved' },
  'chromeos-kernel': { guid: 'FE3A2A5D-4F32-41A7-B725-ACCC3285A309', name: 'ChromeOS kernel' },
};

/** An alias (`esp`, `linux`, …) or GUID text → upper-case GUID text. */
export function resolveType(aliasOrGuid: string): string {
  const t = PARTITION_TYPES[aliasOrGuid.toLowerCase()];
  if (t) return t.guid;
  if (isGuid(aliasOrGuid)) return aliasOrGuid.toUpperCase();
  throw new InputError(
    `partition type "${aliasOrGuid}": not a GUID nor a known alias (${Object.keys(PARTITION_TYPES).join(', ')})`,
  );
}

/** The alias of a type GUID, if we have one. */
export function typeAlias(guid: string): string | undefined {
  const g = guid.toUpperCase();
  return Object.entries(PARTITION_TYPES).find(([, t]) => t.guid === g)?.[0];
}

/** A human name for a type GUID ("EFI System"), or undefined when unknown. */
export function typeName(guid: string): string | undefined {
  const g = guid.toUpperCase();
  return Object.values(PARTITION_TYPES).find((t) => t.guid === g)?.name;
}
