declare module 'lz4js' {
  /** Decodes one raw LZ4 block from src[sIndex, sIndex+sLength) into dst at dIndex; returns the end index in dst. */
  export function decompressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, dIndex: number): number;
  const lz4: { decompressBlock: typeof decompressBlock };
  export default lz4;
}
