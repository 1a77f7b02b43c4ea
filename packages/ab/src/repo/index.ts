export * from './layout.js';
export * from './publish.js';
export * from './client.js';
export * from './node.js';
export * from './bundle-release.js';
export * from './self-update.js';
export * from './release-inputs.js';
export * from './releases.js';
