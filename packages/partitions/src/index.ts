export * from './errors.js';
export * from './entropy.js';
export * from './guid.js';
export * from './mbr.js';
export * from './gpt-header.js';
export * from './gpt-entry.js';
export * from './table.js';
export * from './layout.js';
