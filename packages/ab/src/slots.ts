import { InputError } from '@diskimg/partitions/internal';
import { Fat32Volume, findFilesystemPartition, FileDevice, openDisk, PSYOPS_NAMES, type Disk } from '@diskimg/diskimage/internal';
import { assertEspNotMounted, readBootState, setDefault } from './boot-state.js';

export type { SlotName } from '@diskimg/partitions/internal';

export function slotLabel(slot: string): string {
  const s = slot.toLowerCase();
  if (s === 'a' || s === PSYOPS_NAMES.a.toLowerCase()) return PSYOPS_NAMES.a;
  if (s === 'b' || s === PSYOPS_NAMES.b.toLowerCase()) return PSYOPS_NAMES.b;
  throw new InputError(`slot "${slot}": use a or b`);
}

/**
 * Open the disk's ESP for an in-place edit: found by label, refused while the
 * kernel has it mounted.
 */
export async function openEspForEdit(disk: Disk): Promise<Fat32Volume> {
  const esp = await findFilesystemPartition(disk, PSYOPS_NAMES.esp);
  if (disk.path && disk.device instanceof FileDevice && disk.device.isBlockDevice) assertEspNotMounted(disk.path, esp.number);
  return Fat32Volume.open(esp.region());
}

/**
 * Make `slot` the default boot entry and end any trial (boot-state.ts
 * setDefault: crash-safe FAT replaces of grub.cfg, then grubenv).
 */
export async function setDefaultSlot(diskPath: string, slot: string): Promise<{ defaultLabel: string; previous?: string }> {
  const label = slotLabel(slot);
  const disk = await openDisk(diskPath, { writable: true });
  try {
    const previous = (await readBootState(disk)).defaultLabel ?? undefined;
    const state = await setDefault(disk, label);
    return { defaultLabel: state.defaultLabel ?? label, previous };
  } finally {
    await disk.close();
  }
}
