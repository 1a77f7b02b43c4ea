/**
 * diffDisks: what differs between two disks (image files, block devices or
 * Devices), structure by structure, read with our own readers (never mounted):
 *
 *   1. the disk (size, sector size, protective MBR) and the GPT header, field by field;
 *   2. per partition (paired by partition number): the GPT entry field by field,
 *      the filesystem type, then the superblock (ext4) or boot sector (FAT32) fields;
 *   3. file by file inside the filesystems: added, removed, type, content (sizes, and
 *      sha256 when the sizes are equal; contents are streamed, never whole partitions
 *      in memory), mode, owner, times, links, symlink target, xattrs, FAT attributes
 *      and 8.3 aliases;
 *   4. /grub/grub.cfg as a line diff and /grub/grubenv as variables;
 *   5. a partition (or the GPT areas) whose structures compared equal but whose bytes
 *      differ: the first differing offset and the number of differing 4 KiB blocks
 *      (unless `bytes: false`).
 *
 * Not compared (layout, not content): inode numbers and generations, ext4 inode
 * flags, group descriptors and bitmaps, directory sizes and entry order, FAT
 * cluster numbers (a change there still shows in step 5 when nothing else differs).
 *
 * Every difference carries a category, so a caller (or `summarizeDifferences`)
 * can tell "only identifiers differ" (another --seed) from "only timestamps
 * differ" (another SOURCE_DATE_EPOCH) from real content changes.
 */
import { createHash } from 'node:crypto';
import {
  Fat32Volume,
  SUPERBLOCK_FIELDS,
  cString,
  fatUuid,
  featureNames,
  openDisk,
  openExt4,
  probePartition,
  readAt,
  type Device,
  type Disk,
  type DiskPartition,
  type Ext4Reader,
  type Fat32Entry,
  type FsProbe,
} from '@diskimg/diskimage/internal';
import { decodeGrubenv } from '@diskimg/grubcfg/internal';
import { CycleError, ESP_PATHS, FormatError } from '@diskimg/partitions/internal';

/** What kind of change a difference is. */
export type DiffCategory =
  /** GUIDs, UUIDs, FAT serials, hash seeds: what --seed decides. */
  | 'identity'
  /** Superblock and file times: what SOURCE_DATE_EPOCH decides. */
  | 'time'
  /** CRCs over other fields (GPT entry array CRC). */
  | 'checksum'
  /** Sizes, LBAs, block and inode counts, cluster sizes. */
  | 'layout'
  /** Labels, features, modes, owners, xattrs, names. */
  | 'metadata'
  /** Files added, removed or changed; grub.cfg lines; grubenv variables; raw bytes. */
  | 'content';

export type DiffValue = string | number | boolean | null;

interface DiffBase {
  category: DiffCategory;
  /** The group the difference belongs to: "disk", "gpt", or "N LABEL" for partition N. */
  group: string;
  /** Partition number (absent for disk and gpt differences). */
  partition?: number;
}

/** A field of the disk, the GPT header, a GPT entry or a filesystem's superblock / boot sector. */
export interface FieldDifference extends DiffBase {
  kind: 'disk' | 'gpt' | 'partition' | 'filesystem';
  field: string;
  a: DiffValue;
  b: DiffValue;
}

export type FileChange =
  | 'added'
  | 'removed'
  | 'type'
  | 'content'
  | 'mode'
  | 'uid'
  | 'gid'
  | 'mtime'
  | 'atime'
  | 'ctime'
  | 'crtime'
  | 'links'
  | 'target'
  | 'rdev'
  | 'xattr'
  | 'attr'
  | 'shortName';

/** A file (directory, symlink, …) inside a filesystem. */
export interface FileDifference extends DiffBase {
  kind: 'file';
  partition: number;
  path: string;
  change: FileChange;
  /** The entry's type on the side that has it (added / removed), else on side a. */
  type: string;
  /** For xattr: the attribute's name. */
  name?: string;
  /** Old and new value of the changed field (content: sizes in bytes; added / removed: the size). */
  a: DiffValue;
  b: DiffValue;
  /** For content with equal sizes: sha256 of each side. */
  sha256?: { a: string; b: string };
}

/** One line of /grub/grub.cfg removed ('-', line number in a) or added ('+', line number in b). */
export interface GrubCfgDifference extends DiffBase {
  kind: 'grub.cfg';
  partition: number;
  path: string;
  op: '-' | '+';
  line: number;
  text: string;
}

/** A variable of /grub/grubenv set, unset or changed (null: not set). */
export interface GrubenvDifference extends DiffBase {
  kind: 'grubenv';
  partition: number;
  path: string;
  variable: string;
  a: string | null;
  b: string | null;
}

/** Bytes that differ where every structure compared equal. */
export interface BytesDifference extends DiffBase {
  kind: 'bytes';
  /** "partition" (its whole extent) or "gpt" (the sectors before the first and after the last usable LBA). */
  area: 'partition' | 'gpt';
  /** First differing byte, relative to the area's start. */
  offset: number;
  /** Number of differing 4 KiB blocks in the area. */
  blocks: number;
}

/** One difference `diffDisks` found (a field, a file, grub.cfg, grubenv or raw bytes), with a category. */
export type DiskDifference = FieldDifference | FileDifference | GrubCfgDifference | GrubenvDifference | BytesDifference;

/** What `diffDisks` compares and ignores. */
export interface DiffOptions {
  /** Compare raw bytes of areas whose structures compared equal (default true). */
  bytes?: boolean;
  /** Read extended attributes of ext4 files (default true). */
  xattrs?: boolean;
}

/* ---- values ----------------------------------------------------------------- */

const hex = (n: number, w = 8) => `0x${(n >>> 0).toString(16).padStart(w, '0')}`;

function uuidText(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** "2025-11-29T00:00:00Z", with nanoseconds when there are any. */
export function timeText(sec: number, nsec = 0): string {
  const iso = new Date(sec * 1000).toISOString().replace('.000Z', '');
  return nsec ? `${iso}.${String(nsec).padStart(9, '0')}Z` : `${iso}Z`;
}

const EXT4_IDENTITY = new Set(['s_uuid', 's_hash_seed', 's_journal_uuid', 's_checksum_seed']);
const EXT4_TIMES = new Set(['s_mtime', 's_wtime', 's_lastcheck', 's_mkfs_time', 's_first_error_time', 's_last_error_time']);
const EXT4_LAYOUT = new Set([
  's_inodes_count', 's_blocks_count', 's_r_blocks_count', 's_free_blocks_count', 's_free_inodes_count', 's_first_data_block',
  's_log_block_size', 's_log_cluster_size', 's_blocks_per_group', 's_clusters_per_group', 's_inodes_per_group', 's_inode_size',
  's_reserved_gdt_blocks', 's_desc_size', 's_first_meta_bg', 's_log_groups_per_flex', 's_jnl_blocks', 's_overhead_clusters',
  's_backup_bgs', 's_kbytes_written', 's_first_ino', 's_journal_inum', 's_lpf_ino',
]);
const EXT4_SKIP = new Set(['s_checksum', 's_reserved']);
const EXT4_STRINGS = new Set(['s_volume_name', 's_last_mounted', 's_mount_opts', 's_first_error_func', 's_last_error_func']);

function ext4Value(field: string, v: unknown): DiffValue {
  if (EXT4_TIMES.has(field)) return (v as number) ? timeText(v as number) : 0;
  if (field === 's_uuid' || field === 's_journal_uuid') return uuidText(v as Uint8Array);
  if (EXT4_STRINGS.has(field)) return cString(v as Buffer);
  if (field === 's_feature_compat') return featureNames({ s_feature_compat: v as number, s_feature_incompat: 0, s_feature_ro_compat: 0 }).join(' ');
  if (field === 's_feature_incompat') return featureNames({ s_feature_compat: 0, s_feature_incompat: v as number, s_feature_ro_compat: 0 }).join(' ');
  if (field === 's_feature_ro_compat') return featureNames({ s_feature_compat: 0, s_feature_incompat: 0, s_feature_ro_compat: v as number }).join(' ');
  if (field === 's_hash_seed' || field === 's_checksum_seed') return Array.isArray(v) ? v.map((x) => hex(x)).join(' ') : hex(v as number);
  if (Array.isArray(v)) return v.join(' ');
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return v as number;
}

function ext4Category(field: string): DiffCategory {
  if (EXT4_IDENTITY.has(field)) return 'identity';
  if (EXT4_TIMES.has(field)) return 'time';
  if (EXT4_LAYOUT.has(field)) return 'layout';
  return 'metadata';
}

const FAT_LAYOUT = new Set([
  'BPB_BytsPerSec', 'BPB_SecPerClus', 'BPB_RsvdSecCnt', 'BPB_NumFATs', 'BPB_HiddSec', 'BPB_TotSec32', 'BPB_FATSz32', 'BPB_RootClus',
  'BPB_FSInfo', 'BPB_BkBootSec', 'BPB_SecPerTrk', 'BPB_NumHeads', 'freeBytes',
]);

/* ---- the walk's view of a file ------------------------------------------------ */

interface Node {
  type: string;
  size: number;
  /** Field → value compared between the sides (mode, uid, times, …). */
  fields: Partial<Record<FileChange, DiffValue>>;
  xattrs?: Map<string, Buffer>;
  content(): AsyncIterable<Buffer>;
  children(): Promise<Map<string, Node>>;
}

const FIELD_CATEGORY: Partial<Record<FileChange, DiffCategory>> = {
  mtime: 'time',
  atime: 'time',
  ctime: 'time',
  crtime: 'time',
  target: 'content',
  links: 'layout',
};

interface Fs {
  type: 'ext4' | 'fat32';
  root(): Promise<Node>;
  /** Fields of the superblock / boot sector, rendered, with their category. */
  fields(): Promise<Map<string, { v: DiffValue; c: DiffCategory }>>;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Every directory is listed once per side: one seen a second time (by inode
 * number, by first cluster) is a cycle in a damaged filesystem, which would
 * otherwise be walked for ever.
 */
function onceOnly(name: string, what: string): (id: number, path: string) => void {
  const listed = new Map<number, string>();
  return (id, path) => {
    const first = listed.get(id);
    if (first !== undefined) {
      throw new CycleError(`${name}:${path}`, `directory cycle: it is ${what} ${id} again, already listed as ${first} (a damaged filesystem: run fsck)`);
    }
    listed.set(id, path);
  };
}

function ext4Fs(r: Ext4Reader, xattrs: boolean, name: string): Fs {
  const visit = onceOnly(name, 'directory inode');
  const node = async (ino: number, path: string): Promise<Node> => {
    const i = await r.inode(ino);
    const st = r.statInode(ino, i);
    const fields: Node['fields'] = {
      mode: `0${st.mode.toString(8)}`,
      uid: st.uid,
      gid: st.gid,
      mtime: timeText(st.mtime, st.mtimeNs),
      atime: timeText(st.atime, st.atimeNs),
      ctime: timeText(st.ctime, st.ctimeNs),
      links: st.links,
    };
    if (st.crtime !== undefined) fields.crtime = timeText(st.crtime);
    if (st.type === 'symlink') fields.target = (await r.readlinkInode(ino, i)).toString('utf8');
    if (st.rdev) fields.rdev = `${st.rdev.major}:${st.rdev.minor}`;
    return {
      type: st.type,
      size: st.type === 'directory' ? 0 : st.size,
      fields,
      xattrs: xattrs ? await r.xattrsInode(ino, i) : undefined,
      content: () => r.readInodeData(ino, i),
      children: async () => {
        visit(ino, path);
        const out = new Map<string, Node>();
        for (const d of await r.readdirInode(ino)) {
          if (d.name === '.' || d.name === '..') continue;
          out.set(d.name, await node(d.ino, `${path === '/' ? '' : path}/${d.name}`));
        }
        return out;
      },
    };
  };
  return {
    type: 'ext4',
    root: () => node(2, '/'),
    fields: async () => {
      const m = new Map<string, { v: DiffValue; c: DiffCategory }>();
      const sb = r.sb as unknown as Record<string, unknown>;
      for (const [name] of SUPERBLOCK_FIELDS) {
        if (EXT4_SKIP.has(name)) continue;
        m.set(name, { v: ext4Value(name, sb[name]), c: ext4Category(name) });
      }
      return m;
    },
  };
}

function fatFs(vol: Fat32Volume, name: string): Fs {
  const visit = onceOnly(name, 'the directory at cluster');
  const node = (path: string, e: Fat32Entry | undefined): Node => {
    const isDir = !e || e.isDirectory;
    const fields: Node['fields'] = {};
    if (e) {
      fields.mtime = timeText(e.mtime);
      fields.attr = hex(e.attr, 2);
      fields.shortName = e.shortName;
    }
    return {
      type: isDir ? 'directory' : 'file',
      size: isDir ? 0 : e!.size,
      fields,
      content: () => vol.readFile(path),
      children: async () => {
        visit(e?.firstCluster || vol.bootSector.BPB_RootClus, path);
        const out = new Map<string, Node>();
        for (const c of await vol.readdir(path)) out.set(c.name, node(`${path === '/' ? '' : path}/${c.name}`, c));
        return out;
      },
    };
  };
  return {
    type: 'fat32',
    root: async () => node('/', undefined),
    fields: async () => {
      const m = new Map<string, { v: DiffValue; c: DiffCategory }>();
      const bs = vol.bootSector as unknown as Record<string, string | number>;
      for (const [k, v] of Object.entries(bs)) {
        if (k === 'BS_VolID') m.set(k, { v: fatUuid(v as number), c: 'identity' });
        else m.set(k, { v: typeof v === 'string' ? v.trimEnd() : v, c: FAT_LAYOUT.has(k) ? 'layout' : 'metadata' });
      }
      m.set('label', { v: await vol.readLabel(), c: 'metadata' });
      m.set('freeBytes', { v: vol.freeBytes, c: 'layout' });
      return m;
    },
  };
}

async function openFs(p: DiskPartition, probe: FsProbe, name: string, xattrs: boolean): Promise<Fs | undefined> {
  if (probe.type === 'ext4') {
    if (probe.error) throw new FormatError(name, probe.error);
    return ext4Fs(await openExt4(p.region(), { name }), xattrs, name);
  }
  if (probe.type === 'fat32') {
    if (probe.error) throw new FormatError(name, probe.error);
    return fatFs(await Fat32Volume.open(p.region()), name);
  }
  return undefined;
}

/* ---- helpers ------------------------------------------------------------------- */

async function sha256(it: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const b of it) h.update(b);
  return h.digest('hex');
}

async function bufferOf(it: AsyncIterable<Buffer>, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const b of it) {
    n += b.length;
    if (n > max) throw new FormatError(what, `larger than ${max} bytes`);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

/** Line diff (longest common subsequence); one entry per removed or added line. */
export function diffLines(a: string[], b: string[]): { op: '-' | '+'; line: number; text: string }[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const A = a.slice(pre, a.length - suf);
  const B = b.slice(pre, b.length - suf);
  const out: { op: '-' | '+'; line: number; text: string }[] = [];
  if (A.length * B.length > 4_000_000) {
    A.forEach((t, i) => out.push({ op: '-', line: pre + i + 1, text: t }));
    B.forEach((t, j) => out.push({ op: '+', line: pre + j + 1, text: t }));
    return out;
  }
  const n = A.length;
  const m = B.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i]![j] = A[i] === B[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && A[i] === B[j]) {
      i++;
      j++;
    } else if (i < n && (j === m || L[i + 1]![j]! >= L[i]![j + 1]!)) {
      out.push({ op: '-', line: pre + i + 1, text: A[i]! });
      i++;
    } else {
      out.push({ op: '+', line: pre + j + 1, text: B[j]! });
      j++;
    }
  }
  return out;
}

const lines = (b: Buffer | undefined) => {
  if (!b || b.length === 0) return [];
  const t = b.toString('utf8');
  return (t.endsWith('\n') ? t.slice(0, -1) : t).split('\n');
};

const BLOCK = 4096;
const CHUNK = 1 << 20;

/** Compare two byte ranges block by block; undefined when equal. */
async function compareBytes(da: Device, oa: number, db: Device, ob: number, len: number): Promise<{ offset: number; blocks: number } | undefined> {
  let first = -1;
  let blocks = 0;
  for (let off = 0; off < len; off += CHUNK) {
    const n = Math.min(CHUNK, len - off);
    const [x, y] = await Promise.all([readAt(da, oa + off, n), readAt(db, ob + off, n)]);
    if (x.equals(y)) continue;
    for (let k = 0; k < n; k += BLOCK) {
      const e = Math.min(n, k + BLOCK);
      if (x.subarray(k, e).equals(y.subarray(k, e))) continue;
      blocks++;
      if (first < 0) {
        let z = k;
        while (x[z] === y[z]) z++;
        first = off + z;
      }
    }
  }
  return first < 0 ? undefined : { offset: first, blocks };
}

/* ---- the comparison -------------------------------------------------------------- */

class Differ {
  readonly out: DiskDifference[] = [];
  constructor(private readonly opts: Required<DiffOptions>) {}

  field(kind: FieldDifference['kind'], group: string, field: string, a: DiffValue, b: DiffValue, category: DiffCategory, partition?: number): void {
    if (a === b) return;
    const d: FieldDifference = { kind, category, group, field, a, b };
    if (partition !== undefined) d.partition = partition;
    this.out.push(d);
  }

  async disks(A: Disk, B: Disk): Promise<void> {
    const ta = A.table;
    const tb = B.table;
    this.field('disk', 'disk', 'sizeBytes', A.device.size, B.device.size, 'layout');
    this.field('disk', 'disk', 'sectorSize', ta.sectorSize, tb.sectorSize, 'layout');
    this.field('disk', 'disk', 'protectiveMbr', ta.mbr, tb.mbr, 'metadata');
    this.field('gpt', 'gpt', 'used', ta.used, tb.used, 'metadata');
    this.field('gpt', 'gpt', 'warnings', ta.warnings.join('; '), tb.warnings.join('; '), 'metadata');
    const ha = ta.header;
    const hb = tb.header;
    const cat: Record<keyof typeof ha, DiffCategory> = {
      revision: 'metadata',
      headerSize: 'layout',
      myLba: 'layout',
      alternateLba: 'layout',
      firstUsableLba: 'layout',
      lastUsableLba: 'layout',
      diskGuid: 'identity',
      partitionEntryLba: 'layout',
      numberOfPartitionEntries: 'layout',
      sizeOfPartitionEntry: 'layout',
      partitionEntryArrayCrc32: 'checksum',
    };
    for (const k of Object.keys(cat) as (keyof typeof ha)[]) {
      const v = (h: typeof ha) => (k === 'partitionEntryArrayCrc32' || k === 'revision' ? hex(h[k] as number) : h[k]);
      this.field('gpt', 'gpt', k, v(ha), v(hb), cat[k]);
    }
    const gptBefore = this.out.length;
    const numbers = [...new Set([...A.partitions, ...B.partitions].map((p) => p.number))].sort((x, y) => x - y);
    const partitionDiffs: number[] = [];
    for (const n of numbers) {
      const before = this.out.length;
      await this.partition(A, B, n);
      if (this.out.length > before) partitionDiffs.push(n);
    }
    if (this.opts.bytes) {
      if (gptBefore === 0) await this.gptBytes(A, B);
      for (const n of numbers) {
        if (partitionDiffs.includes(n)) continue;
        const pa = A.partitions.find((p) => p.number === n)!;
        const pb = B.partitions.find((p) => p.number === n)!;
        const r = await compareBytes(A.device, pa.offset, B.device, pb.offset, Math.min(pa.size, pb.size));
        if (r) this.out.push({ kind: 'bytes', category: 'content', group: await groupName(pa), partition: n, area: 'partition', ...r });
      }
    }
  }

  /** The sectors outside the usable area (MBR, headers, entry arrays), when the disks have the same size. */
  private async gptBytes(A: Disk, B: Disk): Promise<void> {
    if (A.device.size !== B.device.size || A.table.sectorSize !== B.table.sectorSize) return;
    const ss = A.table.sectorSize;
    const head = A.table.header.firstUsableLba * ss;
    const tail = (A.table.header.lastUsableLba + 1) * ss;
    const r1 = await compareBytes(A.device, 0, B.device, 0, head);
    const r2 = await compareBytes(A.device, tail, B.device, tail, A.device.size - tail);
    if (r1 || r2) {
      this.out.push({ kind: 'bytes', category: 'content', group: 'gpt', area: 'gpt', offset: r1 ? r1.offset : tail + r2!.offset, blocks: (r1?.blocks ?? 0) + (r2?.blocks ?? 0) });
    }
  }

  private async partition(A: Disk, B: Disk, n: number): Promise<void> {
    const pa = A.partitions.find((p) => p.number === n);
    const pb = B.partitions.find((p) => p.number === n);
    const group = await groupName((pa ?? pb)!);
    const f = (field: string, a: DiffValue, b: DiffValue, c: DiffCategory) => this.field('partition', group, field, a, b, c, n);
    f('present', !!pa, !!pb, 'layout');
    const entry = (p: DiskPartition | undefined) => ({
      name: p?.name ?? null,
      typeGuid: p?.typeGuid ?? null,
      uniqueGuid: p?.uniqueGuid ?? null,
      startingLba: p?.startingLba ?? null,
      endingLba: p?.endingLba ?? null,
      attributes: p ? `0x${p.attributes.toString(16).padStart(16, '0')}` : null,
    });
    const ea = entry(pa);
    const eb = entry(pb);
    if (pa && pb) {
      f('name', ea.name, eb.name, 'metadata');
      f('typeGuid', ea.typeGuid, eb.typeGuid, 'metadata');
      f('uniqueGuid', ea.uniqueGuid, eb.uniqueGuid, 'identity');
      f('startingLba', ea.startingLba, eb.startingLba, 'layout');
      f('endingLba', ea.endingLba, eb.endingLba, 'layout');
      f('attributes', ea.attributes, eb.attributes, 'metadata');
    }
    const probe = async (p: DiskPartition | undefined): Promise<FsProbe> => (p ? await probePartition(p) : { type: 'unknown' });
    const [qa, qb] = [await probe(pa), await probe(pb)];
    const g = (field: string, a: DiffValue, b: DiffValue, c: DiffCategory) => this.field('filesystem', group, field, a, b, c, n);
    g('type', qa.type, qb.type, 'content');
    const fa = pa ? await openFs(pa, qa, group, this.opts.xattrs) : undefined;
    const fb = pb ? await openFs(pb, qb, group, this.opts.xattrs) : undefined;
    if (fa && fb && fa.type === fb.type) {
      const ma = await fa.fields();
      const mb = await fb.fields();
      for (const [k, { v, c }] of ma) g(k, v, mb.get(k)?.v ?? null, c);
    }
    if (!fa && !fb) return;
    // A side without a (readable) filesystem, or with another type, is an empty tree here:
    // the other side's files are all added / removed.
    if (fa && fb && fa.type !== fb.type) {
      await this.tree(group, n, '/', await fa.root(), undefined);
      await this.tree(group, n, '/', undefined, await fb.root());
    } else await this.tree(group, n, '/', await fa?.root(), await fb?.root());
  }

  private file(group: string, partition: number, path: string, change: FileChange, type: string, a: DiffValue, b: DiffValue, extra: Partial<FileDifference> = {}): void {
    const category: DiffCategory = FIELD_CATEGORY[change] ?? (change === 'added' || change === 'removed' || change === 'content' || change === 'type' ? 'content' : 'metadata');
    this.out.push({ kind: 'file', category, group, partition, path, change, type, a, b, ...extra });
  }

  /** Compare the nodes at `path` (either may be absent) and everything below them. */
  private async tree(group: string, n: number, path: string, a: Node | undefined, b: Node | undefined): Promise<void> {
    const child = (name: string) => (path === '/' ? `/${name}` : `${path}/${name}`);
    const isRoot = path === '/';
    if (a && !b) {
      if (!isRoot) this.file(group, n, path, 'removed', a.type, a.size, null);
      if (a.type === 'directory') for (const [k, c] of [...(await a.children())].sort(([x], [y]) => byName(x, y))) await this.tree(group, n, child(k), c, undefined);
      return;
    }
    if (b && !a) {
      if (!isRoot) this.file(group, n, path, 'added', b.type, null, b.size);
      if (b.type === 'directory') for (const [k, c] of [...(await b.children())].sort(([x], [y]) => byName(x, y))) await this.tree(group, n, child(k), undefined, c);
      return;
    }
    if (!a || !b) return;
    if (a.type !== b.type) {
      this.file(group, n, path, 'type', a.type, a.type, b.type);
      if (a.type === 'directory') for (const [k, c] of await a.children()) await this.tree(group, n, child(k), c, undefined);
      if (b.type === 'directory') for (const [k, c] of await b.children()) await this.tree(group, n, child(k), undefined, c);
      return;
    }
    if (a.type === 'file') await this.content(group, n, path, a, b);
    for (const k of Object.keys({ ...a.fields, ...b.fields }) as FileChange[]) {
      const va = a.fields[k] ?? null;
      const vb = b.fields[k] ?? null;
      if (va !== vb) this.file(group, n, path, k, a.type, va, vb);
    }
    if (a.xattrs || b.xattrs) {
      const xa = a.xattrs ?? new Map<string, Buffer>();
      const xb = b.xattrs ?? new Map<string, Buffer>();
      for (const k of [...new Set([...xa.keys(), ...xb.keys()])].sort(byName)) {
        const va = xa.get(k);
        const vb = xb.get(k);
        if (va && vb && va.equals(vb)) continue;
        this.file(group, n, path, 'xattr', a.type, va?.toString('base64') ?? null, vb?.toString('base64') ?? null, { name: k });
      }
    }
    if (a.type === 'directory') {
      const ca = await a.children();
      const cb = await b.children();
      for (const k of [...new Set([...ca.keys(), ...cb.keys()])].sort(byName)) await this.tree(group, n, child(k), ca.get(k), cb.get(k));
    }
  }

  private async content(group: string, n: number, path: string, a: Node, b: Node): Promise<void> {
    let changed = false;
    if (a.size !== b.size) {
      this.file(group, n, path, 'content', 'file', a.size, b.size);
      changed = true;
    } else {
      const [ha, hb] = await Promise.all([sha256(a.content()), sha256(b.content())]);
      if (ha !== hb) {
        this.file(group, n, path, 'content', 'file', a.size, b.size, { sha256: { a: ha, b: hb } });
        changed = true;
      }
    }
    if (!changed) return;
    const lower = path.toLowerCase();
    if (lower === ESP_PATHS.grubCfg) {
      const max = 1 << 20;
      const [ta, tb] = await Promise.all([bufferOf(a.content(), max, `${group}:${path}`), bufferOf(b.content(), max, `${group}:${path}`)]);
      for (const d of diffLines(lines(ta), lines(tb))) this.out.push({ kind: 'grub.cfg', category: 'content', group, partition: n, path, ...d });
    } else if (lower === ESP_PATHS.grubenv) {
      const env = async (x: Node) => {
        try {
          return decodeGrubenv(await bufferOf(x.content(), 1 << 16, `${group}:${path}`), { size: null });
        } catch {
          return new Map<string, string>(); // a damaged block: the content line above says it changed
        }
      };
      const [ea, eb] = [await env(a), await env(b)];
      for (const k of [...new Set([...ea.keys(), ...eb.keys()])].sort(byName)) {
        const va = ea.get(k) ?? null;
        const vb = eb.get(k) ?? null;
        if (va !== vb) this.out.push({ kind: 'grubenv', category: 'content', group, partition: n, path, variable: k, a: va, b: vb });
      }
    }
  }
}

/** "N LABEL": the partition number and its filesystem label, else its GPT name. */
async function groupName(p: DiskPartition): Promise<string> {
  const q = await probePartition(p);
  return `${p.number} ${q.label || p.name || '-'}`;
}

/**
 * Compare two disks (paths of image files or block devices, or Devices) and
 * return every difference, grouped: disk, gpt, then partition by partition.
 * Throws (a DiskimgError) when either cannot be read: no GPT, a damaged
 * filesystem.
 */
export async function diffDisks(a: string | Device, b: string | Device, opts: DiffOptions = {}): Promise<DiskDifference[]> {
  const o: Required<DiffOptions> = { bytes: opts.bytes ?? true, xattrs: opts.xattrs ?? true };
  const A = await openDisk(a);
  try {
    const B = await openDisk(b);
    try {
      const d = new Differ(o);
      await d.disks(A, B);
      return d.out;
    } finally {
      await B.close();
    }
  } finally {
    await A.close();
  }
}

/** One human line for a difference (without its group). */
export function describeDifference(d: DiskDifference): string {
  const v = (x: DiffValue) => (x === null ? '(none)' : typeof x === 'string' && (x === '' || /\s/.test(x)) ? JSON.stringify(x) : String(x));
  const bytes = (x: DiffValue) => `${x} bytes`;
  switch (d.kind) {
    case 'disk':
    case 'gpt':
    case 'partition':
      return `${d.kind === 'partition' ? 'gpt entry' : d.kind} ${d.field}: ${v(d.a)} -> ${v(d.b)}`;
    case 'filesystem':
      return `${d.field === 'type' ? 'filesystem' : 'fs'} ${d.field}: ${v(d.a)} -> ${v(d.b)}`;
    case 'file': {
      const t = d.type === 'file' ? '' : ` (${d.type})`;
      switch (d.change) {
        case 'added':
          return `+ ${d.path}${t}${d.type === 'file' ? `: ${bytes(d.b)}` : ''}`;
        case 'removed':
          return `- ${d.path}${t}${d.type === 'file' ? `: ${bytes(d.a)}` : ''}`;
        case 'content':
          return `M ${d.path}: content ${d.a === d.b ? `${bytes(d.a)}, sha256 ${d.sha256?.a.slice(0, 12)} -> ${d.sha256?.b.slice(0, 12)}` : `${bytes(d.a)} -> ${bytes(d.b)}`}`;
        case 'xattr':
          return `M ${d.path}${t}: xattr ${d.name}: ${v(d.a)} -> ${v(d.b)}`;
        default:
          return `M ${d.path}${t}: ${d.change} ${v(d.a)} -> ${v(d.b)}`;
      }
    }
    case 'grub.cfg':
      return `grub.cfg ${d.op}${d.line}: ${d.text}`;
    case 'grubenv':
      return `grubenv ${d.variable}: ${v(d.a)} -> ${v(d.b)}`;
    case 'bytes':
      return `bytes: ${d.blocks} ${d.blocks === 1 ? 'block' : 'blocks'} of 4 KiB differ in the ${d.area === 'gpt' ? 'GPT areas' : 'partition'} (first at byte ${d.offset}), every structure compared equal`;
  }
}

/** Counts per category and what they amount to ("only identifiers differ", …). */
export function summarizeDifferences(diffs: DiskDifference[]): { count: number; categories: Partial<Record<DiffCategory, number>>; verdict: string } {
  const categories: Partial<Record<DiffCategory, number>> = {};
  for (const d of diffs) categories[d.category] = (categories[d.category] ?? 0) + 1;
  const has = (c: DiffCategory) => (categories[c] ?? 0) > 0;
  let verdict: string;
  if (diffs.length === 0) verdict = 'identical';
  else if (has('content') || has('layout') || has('metadata')) verdict = 'contents differ';
  else {
    const what = [has('identity') ? 'identifiers (GUIDs, UUIDs, serials, hash seeds)' : '', has('time') ? 'timestamps' : ''].filter(Boolean).join(' and ');
    verdict = `only ${what || 'checksums'} differ${has('checksum') && what ? ' (and the checksums over them)' : ''}`;
  }
  return { count: diffs.length, categories, verdict };
}

