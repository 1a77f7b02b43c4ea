/**
 * `@diskimg/partitions`, the public API: errors every package throws, sizes, deterministic
 * entropy and build time, reading and planning GPT tables, and the psyopsOS names. Everything
 * else (MBR/GPT codecs, CRCs) is internal: `@diskimg/partitions/internal`, for sibling packages.
 */
// Errors: one line, naming the input and the fix.
export { DiskimgError, InputError, UsageError, FormatError, SafetyError, UnsupportedFormatError, NotFoundError } from './errors.js';
// Reproducible builds.
export { makeEntropy, sourceDateEpoch, buildTime, type Entropy } from './entropy.js';
// Sizes and layouts.
export { parseSize, fmtBytes, planLayout, type PartitionSpec, type LayoutOptions, type PlannedPartition, type LayoutPlan } from './layout.js';
export { readDiskTable, readDiskTableFromBytes, type SectorReader, type DiskTable, type GptPartition } from './table.js';
export { PARTITION_TYPES, typeName } from './guid.js';
// psyopsOS: partition names, slots, files on the ESP.
export { PSYOPS_NAMES, PSYOPS_DEFAULTS, ESP_PATHS, SLOT_PATHS, SLOT_NAMES, CMDLINE_SLOT_PARAM, otherSlot, slotOfLabel, type SlotName } from './psyops.js';
