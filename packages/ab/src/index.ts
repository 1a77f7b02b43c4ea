export {};
export * from './minisign/index.js';
