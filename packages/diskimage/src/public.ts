/**
 * `@diskimg/diskimage`, the public API: devices (image files, block devices, memory), file trees
 * from tar streams and directories, writing ext4 and FAT32 filesystems and whole psyopsOS images,
 * opening disks and reading their filesystems (and the SquashFS images inside slots), and the inputs `update` streams from (files, URLs,
 * standard input). The on-disk codecs (superblocks, inodes, extents, FAT) are internal
 * (`@diskimg/diskimage/internal`).
 */
// Devices.
export type { Device, WriteHint } from './device/device.js';
export { FileDevice } from './device/file.js';
export { MemoryDevice } from './device/memory.js';
export { Region } from './device/region.js';
// File trees.
export type { TreeEntry, EntryType } from './source/tree.js';
export { readTarTree, openTarFile } from './source/tar.js';
export { readDirTree, type ReadDirOptions } from './source/dir.js';
// Writing filesystems and images.
export { createExt4, type CreateExt4Options, type CreateExt4Summary, type ExtraFile } from './ext4/create.js';
export { createFat32 } from './fat32/index.js';
export { psyopsLayout, type PsyopsLayoutOptions } from './image/layout.js';
export { createImage, type CreateImageOptions, type CreateSummary } from './image/create.js';
// Reading disks and filesystems.
export { openDisk, findPartition, summarizeDisk, type Disk, type DiskPartition, type DiskSummary, type PartitionSummary } from './image/disk.js';
export { openFilesystem, findFilesystemPartition, withFilesystem, parseFsSpec, type FsReader, type FsEntry, type FsEntryType, type FsReadOptions } from './image/fs.js';
export { probeFilesystem, probePartition, type FsProbe, type FsType } from './image/probe.js';
// SquashFS images (a slot's root, the modloop) and the xz codec they use.
export { openSquashfs, SquashfsReader, type SquashfsStat, type SquashfsEntry, type OpenSquashfsOptions } from './squashfs/reader.js';
export type { SquashfsInode } from './squashfs/inode.js';
export { resolveNested } from './image/fs.js';
export { xzDecompress } from './compress/xz.js';
// Update inputs.
export { isUrl, openUpdateInput, readSmallInput, type UpdateInput, type OpenInputOptions } from './source/input.js';
