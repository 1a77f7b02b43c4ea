export { SquashfsReader, SquashfsFileDevice, openSquashfs, type SquashfsStat, type SquashfsEntry, type OpenSquashfsOptions } from './reader.js';
export { isSquashfs, SQUASHFS_MAGIC, type SquashfsSuperblock } from './superblock.js';
export type { SquashfsInode, SquashfsFileType } from './inode.js';
