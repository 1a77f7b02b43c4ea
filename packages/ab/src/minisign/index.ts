export * from './keys.js';
export * from './signature.js';
export * from './trusted.js';
export * from './verify.js';
export * from './sign.js';
export * from './keygen.js';
