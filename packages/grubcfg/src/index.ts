export * from './script.js';
export * from './render.js';
export * from './parse.js';
export * from './grubenv.js';
export * from './envblk.js';
export * from './counting.js';
export * from './decision.js';
export * from './edit.js';
