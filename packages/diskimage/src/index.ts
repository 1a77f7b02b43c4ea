// "./internal": everything. The writers (what `create` needs) are listed once, in internal-create.ts.
export * from './internal-create.js';
export * from './device/memory.js';
export * from './device/fault.js';
export * from './device/skip-unchanged.js';
export * from './image/mounts.js';
export * from './ext4/index.js';
export * from './image/probe.js';
export * from './image/fs.js';
export * from './source/input.js';
export { proxyFor, redactUrl, MAX_REDIRECTS, DEFAULT_HTTP_LIMITS, httpLimits, setHttpLimits, type HttpLimits } from './source/http.js';
export * from './squashfs/index.js';
