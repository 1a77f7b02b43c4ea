// ext4: codecs (one module per on-disk structure) and the reader.
export * from './crc32c.js';
export { cString, toCString } from './struct.js';
export * from './features.js';
export * from './checksum.js';
export * from './superblock.js';
export * from './group-desc.js';
export * from './bitmap.js';
export * from './inode.js';
export * from './extent.js';
export * from './dirent.js';
export * from './journal-superblock.js';
export * from './blockmap.js';
export * from './reader.js';
export * from './xattr.js';
// ext4 writer (create side).
export { createExt4, EXT4_FEATURES, type CreateExt4Options, type CreateExt4Summary, type ExtraFile } from './create.js';
export { planGeometry, type Geometry, type GroupPlan } from './geometry.js';
export * from './pending.js';
