export * from './minisign/index.js';
export * from './build.js';
export * from './inspect.js';
export * from './slots.js';
export * from './slot-write.js';
export * from './boot-state.js';
export * from './update.js';
export * from './boot-disk.js';
