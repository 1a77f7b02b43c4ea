import { FormatError, UnsupportedFormatError } from '@diskimg/partitions/internal';

/**
 * FAT32 boot sector with its BIOS parameter block (fatgen103 §3.1–3.3).
 * Field names follow the spec; the codec is pure (bytes in, bytes out).
 */
export interface BootSector {
  BS_OEMName: string;
  BPB_BytsPerSec: number;
  BPB_SecPerClus: number;
  BPB_RsvdSecCnt: number;
  BPB_NumFATs: number;
  BPB_Media: number;
  BPB_SecPerTrk: number;
  BPB_NumHeads: number;
  BPB_HiddSec: number;
  BPB_TotSec32: number;
  BPB_FATSz32: number;
  BPB_ExtFlags: number;
  BPB_FSVer: number;
  BPB_RootClus: number;
  BPB_FSInfo: number;
  BPB_BkBootSec: number;
  BS_DrvNum: number;
  BS_VolID: number;
  /** 11 bytes, space padded; "NO NAME    " when unlabeled. */
  BS_VolLab: string;
}

const STRUCT = 'FAT32 boot sector';

/** Derived layout of a FAT32 volume, in bytes and clusters. */
export interface Geometry {
  bytesPerSector: number;
  clusterSize: number;
  /** Byte offset of FAT copy 0. */
  fatOffset: number;
  /** Bytes per FAT copy. */
  fatBytes: number;
  numFats: number;
  /** Byte offset of cluster 2. */
  dataOffset: number;
  /** Number of data clusters; valid cluster numbers are 2..clusterCount+1. */
  clusterCount: number;
  rootCluster: number;
}

export function geometry(bs: BootSector): Geometry {
  const bps = bs.BPB_BytsPerSec;
  const firstData = bs.BPB_RsvdSecCnt + bs.BPB_NumFATs * bs.BPB_FATSz32;
  return {
    bytesPerSector: bps,
    clusterSize: bps * bs.BPB_SecPerClus,
    fatOffset: bs.BPB_RsvdSecCnt * bps,
    fatBytes: bs.BPB_FATSz32 * bps,
    numFats: bs.BPB_NumFATs,
    dataOffset: firstData * bps,
    clusterCount: Math.floor((bs.BPB_TotSec32 - firstData) / bs.BPB_SecPerClus),
    rootCluster: bs.BPB_RootClus,
  };
}

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

function ascii(buf: Buffer, off: number, len: number): string {
  return buf.toString('latin1', off, off + len);
}

/** Decode and validate sector 0. `volumeBytes` (if known) bounds BPB_TotSec32. */
export function decodeBootSector(buf: Buffer, volumeBytes?: number): BootSector {
  if (buf.length < 512) throw new FormatError(STRUCT, `only ${buf.length} bytes, need 512`);
  if (buf[510] !== 0x55 || buf[511] !== 0xaa) {
    throw new FormatError(STRUCT, 'signature 0x55AA missing at offset 510; not a FAT volume (or it is corrupt)');
  }
  const bps = buf.readUInt16LE(11);
  if (!isPow2(bps) || bps < 512 || bps > 4096) throw new FormatError(STRUCT, `BPB_BytsPerSec ${bps} is not 512, 1024, 2048 or 4096`);
  const spc = buf[13];
  if (!isPow2(spc)) throw new FormatError(STRUCT, `BPB_SecPerClus ${spc} is not a power of two`);
  const rootEntCnt = buf.readUInt16LE(17);
  const fatSz16 = buf.readUInt16LE(22);
  if (fatSz16 !== 0 || rootEntCnt !== 0) {
    throw new UnsupportedFormatError(STRUCT, `not FAT32 (BPB_FATSz16=${fatSz16}, BPB_RootEntCnt=${rootEntCnt}: a FAT12/16 volume); reformat it as FAT32`);
  }
  const bs: BootSector = {
    BS_OEMName: ascii(buf, 3, 8),
    BPB_BytsPerSec: bps,
    BPB_SecPerClus: spc,
    BPB_RsvdSecCnt: buf.readUInt16LE(14),
    BPB_NumFATs: buf[16],
    BPB_Media: buf[21],
    BPB_SecPerTrk: buf.readUInt16LE(24),
    BPB_NumHeads: buf.readUInt16LE(26),
    BPB_HiddSec: buf.readUInt32LE(28),
    BPB_TotSec32: buf.readUInt32LE(32) || buf.readUInt16LE(19),
    BPB_FATSz32: buf.readUInt32LE(36),
    BPB_ExtFlags: buf.readUInt16LE(40),
    BPB_FSVer: buf.readUInt16LE(42),
    BPB_RootClus: buf.readUInt32LE(44),
    BPB_FSInfo: buf.readUInt16LE(48),
    BPB_BkBootSec: buf.readUInt16LE(50),
    BS_DrvNum: buf[64],
    BS_VolID: buf[66] === 0x29 ? buf.readUInt32LE(67) : 0,
    BS_VolLab: buf[66] === 0x29 ? ascii(buf, 71, 11) : 'NO NAME    ',
  };
  if (bs.BPB_RsvdSecCnt < 1) throw new FormatError(STRUCT, 'BPB_RsvdSecCnt is 0');
  if (bs.BPB_NumFATs < 1 || bs.BPB_NumFATs > 4) throw new FormatError(STRUCT, `BPB_NumFATs ${bs.BPB_NumFATs} out of range 1..4`);
  if (bs.BPB_FATSz32 === 0) throw new FormatError(STRUCT, 'BPB_FATSz32 is 0');
  if (bs.BPB_FSVer !== 0) throw new FormatError(STRUCT, `BPB_FSVer ${bs.BPB_FSVer} unsupported (only 0.0)`);
  const g = geometry(bs);
  if (g.clusterCount < 1) throw new FormatError(STRUCT, `BPB_TotSec32 ${bs.BPB_TotSec32} leaves no data clusters`);
  if (g.clusterCount + 2 > g.fatBytes / 4) {
    throw new FormatError(STRUCT, `BPB_FATSz32 ${bs.BPB_FATSz32} too small for ${g.clusterCount} clusters`);
  }
  if (volumeBytes !== undefined && bs.BPB_TotSec32 * bps > volumeBytes) {
    throw new FormatError(STRUCT, `BPB_TotSec32 ${bs.BPB_TotSec32} × ${bps} bytes is larger than the partition (${volumeBytes} bytes)`);
  }
  if (bs.BPB_RootClus < 2 || bs.BPB_RootClus > g.clusterCount + 1) throw new FormatError(STRUCT, `BPB_RootClus ${bs.BPB_RootClus} out of range`);
  return bs;
}

// Tiny real-mode stub (cli; hlt; jmp $-1) so a BIOS that boots the volume by mistake stops cleanly.
const BOOT_CODE = Buffer.from([0xfa, 0xf4, 0xeb, 0xfd]);

/** Encode one BPB_BytsPerSec-sized sector. */
export function encodeBootSector(bs: BootSector): Buffer {
  const buf = Buffer.alloc(bs.BPB_BytsPerSec);
  buf.set([0xeb, 0x58, 0x90], 0); // BS_jmpBoot: jmp to offset 0x5A, past the FAT32 BPB
  buf.write(bs.BS_OEMName.padEnd(8, ' ').slice(0, 8), 3, 'latin1');
  buf.writeUInt16LE(bs.BPB_BytsPerSec, 11);
  buf[13] = bs.BPB_SecPerClus;
  buf.writeUInt16LE(bs.BPB_RsvdSecCnt, 14);
  buf[16] = bs.BPB_NumFATs;
  // BPB_RootEntCnt (17), BPB_TotSec16 (19), BPB_FATSz16 (22) stay 0 on FAT32.
  buf[21] = bs.BPB_Media;
  buf.writeUInt16LE(bs.BPB_SecPerTrk, 24);
  buf.writeUInt16LE(bs.BPB_NumHeads, 26);
  buf.writeUInt32LE(bs.BPB_HiddSec, 28);
  buf.writeUInt32LE(bs.BPB_TotSec32, 32);
  buf.writeUInt32LE(bs.BPB_FATSz32, 36);
  buf.writeUInt16LE(bs.BPB_ExtFlags, 40);
  buf.writeUInt16LE(bs.BPB_FSVer, 42);
  buf.writeUInt32LE(bs.BPB_RootClus, 44);
  buf.writeUInt16LE(bs.BPB_FSInfo, 48);
  buf.writeUInt16LE(bs.BPB_BkBootSec, 50);
  buf[64] = bs.BS_DrvNum;
  buf[66] = 0x29; // BS_BootSig: the three fields below are present
  buf.writeUInt32LE(bs.BS_VolID >>> 0, 67);
  buf.write(bs.BS_VolLab.padEnd(11, ' ').slice(0, 11), 71, 'latin1');
  buf.write('FAT32   ', 82, 'latin1');
  BOOT_CODE.copy(buf, 90);
  buf[510] = 0x55;
  buf[511] = 0xaa;
  return buf;
}
