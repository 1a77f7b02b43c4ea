/**
 * The psyopsOS on-disk contract (DESIGN.md §2) in one place: partition and
 * filesystem labels, the files every layer looks for, default sizes. Lives in
 * the lowest package so diskimage, grubcfg and ab all name things the same.
 */

/** GPT names of the psyopsOS partitions; also their filesystem labels. */
export const PSYOPS_NAMES = {
  esp: 'PSYOPSOSEFI',
  secret: 'psyops-secret',
  a: 'psyopsOS-A',
  b: 'psyopsOS-B',
} as const;

/** A slot: "a" or "b" (labels psyopsOS-A and psyopsOS-B). */
export type SlotName = 'a' | 'b';
/** The two slots, in order. */
export const SLOT_NAMES: readonly SlotName[] = ['a', 'b'];

/** The psyopsOS layout's default sizes and sector size (as `diskimg create` uses them). */
export const PSYOPS_DEFAULTS = { espSize: '128M', secretSize: '128M', slotSize: '1536M', sectorSize: 512 } as const;

/** Files on the ESP. */
export const ESP_PATHS = {
  grubCfg: '/grub/grub.cfg',
  grubenv: '/grub/grubenv',
  signature: '/psyopsESP.tar.minisig',
  manifest: '/manifest.json',
} as const;

/** Files in each slot: the OS tarball's signature, and the side file named after the slot's label. */
export const SLOT_PATHS = {
  signature: '/psyopsOS.tar.minisig',
  /**
   * Present when the slot was written without a signature check (update/create --no-verify):
   * its signature, if any, is a claim, and readers report the slot's version as unknown.
   */
  unverified: '/psyopsOS.unverified',
  /** The side file `/psyopsOS-A` (resp. -B), holding the label, no newline. */
  sideFile: (label: string) => `/${label}`,
  /** What the OS tarball must hold at its top: GRUB boots these. */
  required: ['kernel', 'initramfs'] as readonly string[],
} as const;

/** The kernel command-line parameter naming the booted slot's label (`psyopsos=psyopsOS-B`). */
export const CMDLINE_SLOT_PARAM = 'psyopsos';

/** The other slot. */
export function otherSlot(slot: SlotName): SlotName {
  return slot === 'a' ? 'b' : 'a';
}

/** Slot name of a slot label (`psyopsOS-B` → b), or undefined. */
export function slotOfLabel(label: string | undefined | null): SlotName | undefined {
  if (label === PSYOPS_NAMES.a) return 'a';
  if (label === PSYOPS_NAMES.b) return 'b';
  return undefined;
}
