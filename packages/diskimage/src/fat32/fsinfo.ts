import { FormatError } from '@diskimg/partitions/internal';

/** FSInfo sector (fatgen103 §5): a hint of the free cluster count and where to look for free clusters. */
export interface FsInfo {
  /** 0xFFFFFFFF = unknown. */
  FSI_Free_Count: number;
  /** 0xFFFFFFFF = unknown. */
  FSI_Nxt_Free: number;
}

const FSI_LeadSig = 0x41615252;
const FSI_StrucSig = 0x61417272;
const FSI_TrailSig = 0xaa550000;

export function decodeFsInfo(buf: Buffer): FsInfo {
  if (buf.readUInt32LE(0) !== FSI_LeadSig || buf.readUInt32LE(484) !== FSI_StrucSig) {
    throw new FormatError('FAT32 FSInfo sector', 'FSI_LeadSig/FSI_StrucSig missing');
  }
  return { FSI_Free_Count: buf.readUInt32LE(488), FSI_Nxt_Free: buf.readUInt32LE(492) };
}

/** Encode one sector of `sectorSize` bytes. */
export function encodeFsInfo(fi: FsInfo, sectorSize: number): Buffer {
  const buf = Buffer.alloc(sectorSize);
  buf.writeUInt32LE(FSI_LeadSig, 0);
  buf.writeUInt32LE(FSI_StrucSig, 484);
  buf.writeUInt32LE(fi.FSI_Free_Count >>> 0, 488);
  buf.writeUInt32LE(fi.FSI_Nxt_Free >>> 0, 492);
  buf.writeUInt32LE(FSI_TrailSig, 508);
  return buf;
}
