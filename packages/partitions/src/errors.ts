/**
 * Typed errors shared by every layer. The CLI maps them to exit codes:
 * UsageError → 2, everything else → 1. Messages are one line and name the
 * input (or on-disk structure) and, where there is one, the fix.
 */
export class DiskimgError extends Error {
  override name = 'DiskimgError';
}

/** A structure on disk (or in a byte buffer) is not what its spec says. */
export class FormatError extends DiskimgError {
  override name = 'FormatError';
  constructor(
    /** Spec name of the structure, e.g. "GPT header", "ext4 superblock". */
    readonly structure: string,
    message: string,
  ) {
    super(`${structure}: ${message}`);
  }
}

/** The user gave something we cannot use (bad size, missing file, …). */
export class InputError extends DiskimgError {
  override name = 'InputError';
}

/** Bad command-line usage (exit code 2). */
export class UsageError extends DiskimgError {
  override name = 'UsageError';
}

/** A request that would violate a safety rule (booted slot, mounted partition, outside region). */
export class SafetyError extends DiskimgError {
  override name = 'SafetyError';
}

/** Why a path inside a filesystem could not be used (POSIX names, so callers test a code, not message text). */
export type PathErrorCode = 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'ENOTREG' | 'ELOOP';

/**
 * A path inside a filesystem (FAT32 or ext4) that does not exist or has the
 * wrong type. Told apart from damage (FormatError) by class and `code`.
 */
export class PathError extends InputError {
  override name = 'PathError';
  constructor(
    readonly code: PathErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A partition (by label or GPT name) that the disk does not have. */
export class NotFoundError extends InputError {
  override name = 'NotFoundError';
}

/** A structure that is valid but of a kind we do not read (FAT12/16, an unsupported ext4 feature). */
export class UnsupportedFormatError extends FormatError {
  override name = 'UnsupportedFormatError';
}

/**
 * A directory reached a second time while walking a tree (an ext4 directory
 * hard-linked into its own subtree, a FAT directory entry pointing at an
 * ancestor's cluster): damage, reported instead of walking for ever.
 */
export class CycleError extends FormatError {
  override name = 'CycleError';
}

/** True when `e` says a path or partition does not exist (as opposed to damage or an I/O error). */
export function isNotFound(e: unknown): boolean {
  return e instanceof NotFoundError || (e instanceof PathError && e.code === 'ENOENT');
}
