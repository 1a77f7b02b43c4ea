/**
 * What a psyopsOS slot holds (DESIGN.md §2), written the same way by
 * `create` (both slots from one pass over the tar) and `update` (one slot on
 * a live disk): the OS tarball's tree, the side file `/psyopsOS-A` (resp. -B)
 * holding the label, and the tarball's signature at /psyopsOS.tar.minisig.
 */
import { InputError, SLOT_PATHS, type Entropy } from '@diskimg/partitions/internal';
import { createExt4, drain, type CreateExt4Summary, type Device, type ExtraFile, type TreeEntry } from '@diskimg/diskimage/internal/create';

export interface WriteSlotOptions {
  label: string;
  /** The .minisig text to store in the slot (absent with --no-verify and no signature). */
  signatureText?: string;
  /**
   * The tarball's bytes were checked against the signature. False (--no-verify): the slot gets
   * the marker SLOT_PATHS.unverified, so show/status/check never present its signature's
   * version as a verified one.
   */
  verified: boolean;
  /** Files of the payload that diskimg writes itself and drops (the signature, the marker). */
  onWarning?: (msg: string) => void;
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
  if (!o.verified) extraFiles.push({ path: SLOT_PATHS.unverified.slice(1), data: UNVERIFIED_TEXT });
  return createExt4(dev, withoutManaged(tree, o.onWarning), {
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

/** The marker's content (one line; its presence is what counts). */
export const UNVERIFIED_TEXT = 'written by diskimg without checking the signature (--no-verify): the version in psyopsOS.tar.minisig is unverified\n';

/** Slot files only diskimg writes: a payload's own copies are dropped, never trusted (a payload must not vouch for itself). */
const MANAGED = new Set([SLOT_PATHS.signature.slice(1), SLOT_PATHS.unverified.slice(1)]);

async function* withoutManaged(tree: AsyncIterable<TreeEntry>, onWarning?: (msg: string) => void): AsyncGenerator<TreeEntry> {
  for await (const e of tree) {
    if (MANAGED.has(e.path)) {
      await drain(e.body);
      onWarning?.(`the OS tarball holds /${e.path}; dropped (diskimg writes it)`);
      continue;
    }
    yield e;
  }
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
