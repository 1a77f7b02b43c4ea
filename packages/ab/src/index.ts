export * from './minisign/index.js';
export * from './build.js';
export * from './inspect.js';
export * from './slots.js';
export * from './boot-state.js';
export * from './status.js';
