export * from './layout.js';
export * from './publish.js';
export * from './client.js';
export * from './node.js';
