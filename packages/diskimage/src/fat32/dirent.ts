/** 32-byte short directory entries (fatgen103 §6) and the FAT date/time codec. */

export const DIRENT_SIZE = 32;
export const ATTR_READ_ONLY = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYSTEM = 0x04;
export const ATTR_VOLUME_ID = 0x08;
export const ATTR_DIRECTORY = 0x10;
export const ATTR_ARCHIVE = 0x20;
export const ATTR_LONG_NAME = 0x0f;
/** DIR_NTRes bits (Windows NT and Linux vfat): display the 8.3 base / extension in lower case. */
export const NTRES_LOWER_BASE = 0x08;
export const NTRES_LOWER_EXT = 0x10;
/** DIR_Name[0] values. */
export const DIR_FREE = 0xe5;
export const DIR_END = 0x00;

export interface Dirent {
  /** 11 raw bytes of DIR_Name (8 base + 3 extension, space padded). */
  DIR_Name: Buffer;
  DIR_Attr: number;
  DIR_NTRes: number;
  DIR_CrtTimeTenth: number;
  DIR_CrtTime: number;
  DIR_CrtDate: number;
  DIR_LstAccDate: number;
  /** DIR_FstClusHI << 16 | DIR_FstClusLO */
  firstCluster: number;
  DIR_WrtTime: number;
  DIR_WrtDate: number;
  DIR_FileSize: number;
}

export function decodeDirent(buf: Buffer, off = 0): Dirent {
  return {
    DIR_Name: Buffer.from(buf.subarray(off, off + 11)),
    DIR_Attr: buf[off + 11],
    DIR_NTRes: buf[off + 12],
    DIR_CrtTimeTenth: buf[off + 13],
    DIR_CrtTime: buf.readUInt16LE(off + 14),
    DIR_CrtDate: buf.readUInt16LE(off + 16),
    DIR_LstAccDate: buf.readUInt16LE(off + 18),
    firstCluster: ((buf.readUInt16LE(off + 20) << 16) | buf.readUInt16LE(off + 26)) >>> 0,
    DIR_WrtTime: buf.readUInt16LE(off + 22),
    DIR_WrtDate: buf.readUInt16LE(off + 24),
    DIR_FileSize: buf.readUInt32LE(off + 28),
  };
}

export function encodeDirent(d: Dirent, buf: Buffer = Buffer.alloc(DIRENT_SIZE), off = 0): Buffer {
  d.DIR_Name.copy(buf, off, 0, 11);
  buf[off + 11] = d.DIR_Attr;
  buf[off + 12] = d.DIR_NTRes;
  buf[off + 13] = d.DIR_CrtTimeTenth;
  buf.writeUInt16LE(d.DIR_CrtTime, off + 14);
  buf.writeUInt16LE(d.DIR_CrtDate, off + 16);
  buf.writeUInt16LE(d.DIR_LstAccDate, off + 18);
  buf.writeUInt16LE(d.firstCluster >>> 16, off + 20);
  buf.writeUInt16LE(d.DIR_WrtTime, off + 22);
  buf.writeUInt16LE(d.DIR_WrtDate, off + 24);
  buf.writeUInt16LE(d.firstCluster & 0xffff, off + 26);
  buf.writeUInt32LE(d.DIR_FileSize >>> 0, off + 28);
  return buf;
}

/** A FAT timestamp: date, 2-second time, and the 10 ms tenths byte used for creation times. */
export interface FatTime {
  date: number;
  time: number;
  tenth: number;
}

// FAT dates cover 1980-01-01 .. 2107-12-31; we store UTC (no time zone is knowable for an image).
const MIN_T = Date.UTC(1980, 0, 1) / 1000;
const MAX_T = Date.UTC(2107, 11, 31, 23, 59, 59) / 1000;

/** Encode seconds since the epoch (clamped to the FAT range). */
export function encodeFatTime(seconds: number): FatTime {
  const t = Math.min(Math.max(seconds, MIN_T), MAX_T);
  const whole = Math.floor(t);
  const d = new Date(whole * 1000);
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1);
  const tenth = (d.getUTCSeconds() & 1) * 100 + Math.floor((t - whole) * 100);
  return { date, time, tenth };
}

/** Decode to seconds since the epoch (UTC); 0 date means "not set". */
export function decodeFatTime(date: number, time = 0, tenth = 0): number {
  if (date === 0) return 0;
  const y = 1980 + (date >> 9);
  const mo = ((date >> 5) & 15) - 1;
  const da = date & 31;
  const ms = Date.UTC(y, mo, da, time >> 11, (time >> 5) & 63, (time & 31) * 2);
  return ms / 1000 + tenth / 100;
}

/** Build a short entry for a file or directory. */
export function makeDirent(name11: Buffer, attr: number, ntRes: number, firstCluster: number, size: number, mtime: number): Dirent {
  const t = encodeFatTime(mtime);
  return {
    DIR_Name: name11,
    DIR_Attr: attr,
    DIR_NTRes: ntRes,
    DIR_CrtTimeTenth: t.tenth,
    DIR_CrtTime: t.time,
    DIR_CrtDate: t.date,
    DIR_LstAccDate: t.date,
    firstCluster,
    DIR_WrtTime: t.time,
    DIR_WrtDate: t.date,
    DIR_FileSize: size,
  };
}

/** The 8.3 name as shown to users: "BASE.EXT" with the NT lower-case flags applied. */
export function shortDisplayName(d: Dirent): string {
  const n = Buffer.from(d.DIR_Name);
  if (n[0] === 0x05) n[0] = 0xe5; // 0x05 stands for a real leading 0xE5
  let base = n.toString('latin1', 0, 8).trimEnd();
  let ext = n.toString('latin1', 8, 11).trimEnd();
  if (d.DIR_NTRes & NTRES_LOWER_BASE) base = base.toLowerCase();
  if (d.DIR_NTRes & NTRES_LOWER_EXT) ext = ext.toLowerCase();
  return ext ? `${base}.${ext}` : base;
}
