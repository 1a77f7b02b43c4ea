/**
 * What a psyopsOS slot holds (DESIGN.md §2), written the same way by
 * `create` (both slots from one pass over the tar) and `update` (one slot on
 * a live disk): the OS tarball's tree, the side file `/psyopsOS-A` (resp. -B)
 * holding the label, and the tarball's signature at /psyopsOS.tar.minisig.
 */
import { InputError, SLOT_PATHS, type Entropy } from '@diskimg/partitions/internal';
import { createExt4, type CreateExt4Summary, type Device, type ExtraFile, type TreeEntry } from '@diskimg/diskimage/internal/create';

export interface WriteSlotOptions {
  label: string;
  /** The .minisig text to store in the slot (absent with --no-verify and no signature). */
  signatureText?: string;
  entropy: Entropy;
  now: number;
  sourceDateEpoch?: number;
  /** The device reads as zeros (a fresh sparse image): see CreateExt4Options. */
  regionIsZeroed?: boolean;
  /** Keep the slot's filesystem identity across updates. */
  uuid?: Uint8Array;
  hashSeed?: Uint8Array;
}

/** Write one slot's ext4 filesystem on `dev` from the OS tarball's entries. */
export function writeSlot(dev: Device, tree: AsyncIterable<TreeEntry>, o: WriteSlotOptions): Promise<CreateExt4Summary> {
  const extraFiles: ExtraFile[] = [{ path: SLOT_PATHS.sideFile(o.label).slice(1), data: o.label }];
  if (o.signatureText !== undefined) extraFiles.push({ path: SLOT_PATHS.signature.slice(1), data: o.signatureText });
  return createExt4(dev, tree, {
    label: o.label,
    entropy: o.entropy,
    now: o.now,
    sourceDateEpoch: o.sourceDateEpoch,
    extraFiles,
    regionIsZeroed: o.regionIsZeroed,
    uuid: o.uuid,
    hashSeed: o.hashSeed,
  });
}

/** The OS tarball must hold /kernel and /initramfs at its top: pass entries through, check at the end. */
export async function* requireOsFiles(tree: AsyncIterable<TreeEntry>, name: string): AsyncGenerator<TreeEntry> {
  const need = new Set(SLOT_PATHS.required);
  for await (const e of tree) {
    if (e.type === 'file' || e.type === 'hardlink' || e.type === 'symlink') need.delete(e.path);
    yield e;
  }
  if (need.size) {
    throw new InputError(`${name}: missing ${[...need].join(' and ')} at the top of the OS tarball; psyopsOS boots /kernel and /initramfs from the slot`);
  }
}
