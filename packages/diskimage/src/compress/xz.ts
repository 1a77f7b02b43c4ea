import { UnsupportedFormatError } from '@diskimg/partitions/internal';

/** Decodes one complete .xz stream (as in a SquashFS xz block); throws UnsupportedFormatError/CorruptError-like typed errors; never returns more than maxOutput bytes (throws instead). */
export function xzDecompress(input: Uint8Array, maxOutput: number): Uint8Array {
  void input;
  void maxOutput;
  throw new UnsupportedFormatError('xz', 'xz decoder not built yet');
}
