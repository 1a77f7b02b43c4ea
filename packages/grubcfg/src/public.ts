/**
 * `@diskimg/grubcfg`, the public API: render and parse psyopsOS's grub.cfg, encode and decode the
 * GRUB environment block, the boot-counting block, and what GRUB will boot next. Tokenizer and
 * in-place editing helpers are internal (`@diskimg/grubcfg/internal`).
 */
export { renderGrubCfg, formatTimestamp, DEFAULT_KERNEL_PARAMS, GRUBENV_PATH, type RenderGrubCfgOptions } from './render.js';
export { parseGrubCfg, type ParsedGrubCfg, type GrubMenuEntry } from './parse.js';
export { encodeGrubenv, decodeGrubenv, GRUBENV_SIZE, type GrubenvVars } from './grubenv.js';
export { renderCountingBlock, MAX_TRIES, DEFAULT_TRIES, type CountingBlockOptions } from './counting.js';
export { predictBoot, type BootDecision, type BootReason } from './decision.js';
