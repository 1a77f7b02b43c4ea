import { InputError } from '@diskimg/partitions/internal';
import {
  ATTR_DIRECTORY,
  ATTR_LONG_NAME,
  ATTR_VOLUME_ID,
  DIRENT_SIZE,
  DIR_END,
  DIR_FREE,
  decodeDirent,
  decodeFatTime,
  encodeDirent,
  shortDisplayName,
  type Dirent,
} from './dirent.js';
import { LfnAssembler, encodeLfnEntries } from './lfn.js';
import { checkLongName, makeShortName } from './shortname.js';

/** One named entry of a directory as the reader sees it. */
export interface Fat32Entry {
  /** The long name, or the 8.3 name (with NT lower-case flags applied) when there is none. */
  name: string;
  /** The 8.3 alias as displayed ("GRUB.CFG", "grub.cfg"). */
  shortName: string;
  isDirectory: boolean;
  size: number;
  firstCluster: number;
  /** Last write time, seconds since the epoch (UTC). */
  mtime: number;
  attr: number;
}

/** An entry plus where it lives in its directory. */
export interface SlotEntry extends Fat32Entry {
  /** Slot (32-byte index) of the short entry. */
  slot: number;
  /** First slot of the entry's run (first long-name entry, or the short entry). */
  firstSlot: number;
  dirent: Dirent;
}

/**
 * A directory's whole content in memory (directories are small: 32 bytes per
 * entry), with the sectors changed since the last commit. The directory
 * codec parses and places entries; the volume maps slots to device offsets.
 */
export class DirBuffer {
  entries: SlotEntry[] = [];
  /** 11-byte short names present (latin1), including "." and "..". */
  taken = new Set<string>();
  readonly dirtySectors = new Set<number>();

  constructor(
    /** First cluster of the directory. */
    readonly cluster: number,
    public clusters: number[],
    public buf: Buffer,
    private readonly sectorSize: number,
  ) {
    this.parse();
  }

  get slots(): number {
    return this.buf.length / DIRENT_SIZE;
  }

  parse(): void {
    this.entries = [];
    this.taken = new Set();
    const asm = new LfnAssembler();
    for (let i = 0; i < this.slots; i++) {
      const off = i * DIRENT_SIZE;
      const b0 = this.buf[off];
      if (b0 === DIR_END) break;
      if (b0 === DIR_FREE) {
        asm.reset();
        continue;
      }
      const attr = this.buf[off + 11];
      if ((attr & 0x3f) === ATTR_LONG_NAME) {
        asm.feed(this.buf, off, i);
        continue;
      }
      const d = decodeDirent(this.buf, off);
      this.taken.add(d.DIR_Name.toString('latin1'));
      if (attr & ATTR_VOLUME_ID || b0 === 0x2e /* "." and ".." */) {
        asm.reset();
        continue;
      }
      const lfn = asm.take(d.DIR_Name);
      const short = shortDisplayName(d);
      this.entries.push({
        name: lfn?.name ?? short,
        shortName: short,
        isDirectory: (attr & ATTR_DIRECTORY) !== 0,
        size: d.DIR_FileSize,
        firstCluster: d.firstCluster,
        mtime: decodeFatTime(d.DIR_WrtDate, d.DIR_WrtTime),
        attr,
        slot: i,
        firstSlot: lfn?.start ?? i,
        dirent: d,
      });
    }
  }

  /** Case-insensitive lookup by long or short name, as FAT resolves names. */
  find(name: string): SlotEntry | undefined {
    const u = name.toUpperCase();
    return this.entries.find((e) => e.name.toUpperCase() === u || e.shortName.toUpperCase() === u);
  }

  private markDirty(fromSlot: number, toSlot: number): void {
    const first = Math.floor((fromSlot * DIRENT_SIZE) / this.sectorSize);
    const last = Math.floor((toSlot * DIRENT_SIZE - 1) / this.sectorSize);
    for (let s = first; s <= last; s++) this.dirtySectors.add(s);
  }

  /** Mark an entry's slots free (0xE5). */
  remove(e: SlotEntry): void {
    for (let s = e.firstSlot; s <= e.slot; s++) this.buf[s * DIRENT_SIZE] = DIR_FREE;
    this.markDirty(e.firstSlot, e.slot + 1);
    this.parse();
  }

  /** Rewrite the short entry of `e` in place (the one-sector switch of a replace). */
  update(e: SlotEntry, d: Dirent): void {
    encodeDirent(d, this.buf, e.slot * DIRENT_SIZE);
    this.markDirty(e.slot, e.slot + 1);
    this.parse();
  }

  /** First slot of a run of `n` free slots, or -1 when the directory must grow. */
  findFree(n: number): number {
    let run = 0;
    for (let i = 0; i < this.slots; i++) {
      const b0 = this.buf[i * DIRENT_SIZE];
      if (b0 === DIR_END) return this.slots - i >= n - run ? i - run : -1;
      if (b0 === DIR_FREE) {
        if (++run === n) return i - n + 1;
      } else run = 0;
    }
    return -1;
  }

  /** Slots a new entry named `name` needs (long-name entries + short entry). */
  static slotsFor(name: string, needsLfn: boolean): number {
    return (needsLfn ? Math.ceil(name.length / 13) : 0) + 1;
  }

  /** Append zeroed clusters (already allocated by the caller). */
  grow(newClusters: number[], clusterSize: number): void {
    this.clusters = [...this.clusters, ...newClusters];
    this.buf = Buffer.concat([this.buf, Buffer.alloc(newClusters.length * clusterSize)]);
  }

  /**
   * Encode the long-name + short entries for `name` at `slot`. `d.DIR_Name`
   * and `DIR_NTRes` are taken from the generated short name.
   */
  place(slot: number, name: string, d: Dirent, sn: { name11: Buffer; ntRes: number; needsLfn: boolean }): void {
    const run = encodeEntryRun(name, d, sn);
    run.copy(this.buf, slot * DIRENT_SIZE);
    this.markDirty(slot, slot + run.length / DIRENT_SIZE);
    this.parse();
  }
}

/** Long-name entries (when needed) followed by the short entry, as one buffer. */
export function encodeEntryRun(name: string, d: Dirent, sn: { name11: Buffer; ntRes: number; needsLfn: boolean }): Buffer {
  const short = encodeDirent({ ...d, DIR_Name: sn.name11, DIR_NTRes: sn.ntRes });
  return sn.needsLfn ? Buffer.concat([encodeLfnEntries(name, sn.name11), short]) : short;
}

/** Validate a new name and pick its 8.3 alias against the names already in `taken`. */
export function nameFor(name: string, taken: Set<string>, where: string) {
  checkLongName(name, where);
  return makeShortName(name, taken);
}

/** Split a volume path into components; InputError for an over-long component. */
export function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  for (const p of parts) {
    if (p === '..') throw new InputError(`${path}: ".." is not allowed in a FAT path`);
    if (p.length > 255) throw new InputError(`${path}: path component of ${p.length} characters; FAT allows at most 255, shorten it`);
  }
  return parts;
}
