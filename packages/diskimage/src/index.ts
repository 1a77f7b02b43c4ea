export * from './device/device.js';
export * from './device/file.js';
export * from './device/region.js';
export * from './device/memory.js';
export * from './device/fault.js';
export * from './source/tree.js';
export * from './source/tar.js';
export * from './source/dir.js';
