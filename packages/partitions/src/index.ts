export * from './errors.js';
export * from './entropy.js';
