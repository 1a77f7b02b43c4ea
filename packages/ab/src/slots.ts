import { ESP_PATHS, InputError, buildTime } from '@diskimg/partitions';
import {
  assertPartitionNotMounted,
  FileDevice,
  Fat32Volume,
  findFilesystemPartition,
  openDisk,
  PSYOPS_NAMES,
  type Disk,
} from '@diskimg/diskimage';
import { parseGrubCfg, setGrubCfgDefault } from '@diskimg/grubcfg';

export type { SlotName } from '@diskimg/partitions';
const GRUB_CFG = ESP_PATHS.grubCfg;

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
  if (disk.path && disk.device instanceof FileDevice && disk.device.isBlockDevice) assertPartitionNotMounted(disk.path, esp.number);
  return Fat32Volume.open(esp.region());
}

/**
 * Make `slot` the default boot entry: edit /grub/grub.cfg on the ESP with
 * the FAT32 crash-safe replace (a power cut leaves the old or the new file).
 */
export async function setDefaultSlot(diskPath: string, slot: string): Promise<{ defaultLabel: string; previous?: string }> {
  const label = slotLabel(slot);
  const disk = await openDisk(diskPath, { writable: true });
  try {
    const vol = await openEspForEdit(disk);
    const name = `${PSYOPS_NAMES.esp}:${GRUB_CFG}`;
    if (!(await vol.lookup(GRUB_CFG))) throw new InputError(`${diskPath}: ${name} not found; rebuild the ESP with "diskimg create" or "diskimg update-esp"`);
    const old = (await vol.readFileBuffer(GRUB_CFG)).toString('utf8');
    const previous = parseGrubCfg(old, name).defaultLabel;
    const next = setGrubCfgDefault(old, label, name);
    if (next !== old) await vol.replaceFile(GRUB_CFG, Buffer.from(next), { mtime: buildTime() });
    return { defaultLabel: label, previous };
  } finally {
    await disk.close();
  }
}
