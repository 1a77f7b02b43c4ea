/**
 * "@diskimg/ab/internal/status": what `diskimg status` needs (a shell prompt runs it at every
 * prompt), the same names as "./internal" (index.ts) without update, build, repo, diff, serve and
 * the minisign signer. Start-up (issue 14): ~20 fewer modules (~140 KB) per status.
 */
export { bootedLabel, isBlockDisk } from './boot-state.js';
export { slotStatus, type BootStatus } from './status.js';
export { lastUpdatePath, readLastUpdate } from './last-update.js';
export { findBootDisk } from './boot-disk.js';
export { shellWord } from './hints.js';
