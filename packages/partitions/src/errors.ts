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
