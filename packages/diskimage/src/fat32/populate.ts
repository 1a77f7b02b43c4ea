import { InputError, clampTime, sourceDateEpoch } from '@diskimg/partitions/internal';
import type { Device } from '../device/device.js';
import type { TreeEntry } from '../source/tree.js';
import { validateTree } from '../source/validate.js';
import { ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_VOLUME_ID, DIRENT_SIZE, makeDirent } from './dirent.js';
import { encodeEntryRun } from './dir.js';
import { checkLongName, makeShortName } from './shortname.js';
import { Fat32Volume, MAX_DIR_SLOTS, dirCluster, runs } from './volume.js';
import { writeFat32Format, type FormatOptions } from './format.js';

export interface PopulateOptions {
  /** Names the input in error messages (e.g. the tar file). */
  inputName?: string;
  /** Clamp timestamps to this (seconds); default SOURCE_DATE_EPOCH from the environment. */
  sourceDateEpoch?: number;
  /**
   * FAT cannot hold symlinks, device nodes or FIFOs. With this callback they
   * are skipped and reported through it; without it they are an InputError
   * (so nothing is silently dropped from a boot partition).
   */
  onSkip?: (path: string, reason: string) => void;
  /**
   * Called once, after populating, with what FAT could not keep (xattrs,
   * owners, modes, hard links stored as copies, and — when given, instead of
   * onSkip — the skipped symlinks, devices and FIFOs). Not called when
   * nothing was lost. `describeFatLoss` makes it one line.
   */
  onLoss?: (loss: FatLoss) => void;
}

/** Metadata of a tree that FAT32 cannot represent, counted (never listed per file). */
export interface FatLoss {
  /** Extended attributes (including POSIX ACLs and file capabilities). */
  xattrs: number;
  /** Entries owned by another uid or gid than 0. */
  owners: number;
  /** Entries whose permission bits are not FAT's fixed 0755 (directories) / 0644 (files). */
  modes: number;
  /** Hard links, stored as separate copies of the data. */
  hardlinks: number;
  /** Skipped because FAT has no such type (only counted when onLoss replaces onSkip). */
  symlinks: number;
  devices: number;
  fifos: number;
}

/** "12 xattrs, 3 owners and 2 modes not representable on FAT32; 1 symlink skipped". */
export function describeFatLoss(l: FatLoss): string {
  const n = (k: number, one: string, many = `${one}s`) => `${k} ${k === 1 ? one : many}`;
  const list = (xs: string[]) => (xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);
  const kept = [l.xattrs && n(l.xattrs, 'xattr'), l.owners && n(l.owners, 'owner'), l.modes && n(l.modes, 'mode')].filter(Boolean) as string[];
  const skipped = [l.symlinks && n(l.symlinks, 'symlink'), l.devices && n(l.devices, 'device node'), l.fifos && n(l.fifos, 'FIFO')].filter(Boolean) as string[];
  const parts: string[] = [];
  if (kept.length) parts.push(`${list(kept)} not representable on FAT32`);
  if (skipped.length) parts.push(`${list(skipped)} skipped (FAT has no such file type)`);
  if (l.hardlinks) parts.push(`${n(l.hardlinks, 'hard link')} stored as ${l.hardlinks === 1 ? 'a copy' : 'copies'}`);
  return parts.join('; ');
}

interface Node {
  name: string;
  dir: boolean;
  mtime: number;
  firstCluster: number;
  size: number;
  children?: Map<string, Node>; // key: upper-cased name (FAT names are case-insensitive)
}

const MiB = 2 ** 20;
const mib = (b: number) => (b / MiB).toFixed(1).replace(/\.0$/, '');

/**
 * Fill an empty FAT32 volume from a tree (tar stream or directory walk).
 * File data is streamed straight into contiguous free clusters as it
 * arrives; only directory metadata is kept in memory. Directories are
 * written at the end, entries sorted by name, followed by the FATs and
 * FSInfo — so a failure part-way leaves the volume's metadata untouched.
 */
export async function populateFat32(dev: Device, tree: AsyncIterable<TreeEntry>, opts: PopulateOptions = {}): Promise<Fat32Volume> {
  const vol = await Fat32Volume.open(dev);
  const input = opts.inputName ?? 'input';
  const epoch = opts.sourceDateEpoch ?? sourceDateEpoch();
  const g = vol.geometry;
  const cs = g.clusterSize;
  const fat = vol.fat;
  const rootDir = await vol.loadDir(g.rootCluster);
  if (rootDir.entries.length) throw new InputError(`FAT volume: populate needs an empty volume, the root already holds "${rootDir.entries[0].name}"`);
  const freeAtStart = fat.freeCount;
  let usedClusters = 0;
  const root: Node = { name: '', dir: true, mtime: epoch ?? 0, firstCluster: g.rootCluster, size: 0, children: new Map() };

  const full = (path: string, more: number) =>
    new InputError(`${input}: payload needs at least ${mib((usedClusters + more) * cs)} MiB (at ${path}), volume has ${mib(freeAtStart * cs)} MiB free; use a larger ESP or a smaller payload`);

  const dirOf = (parts: string[], mtime: number): Node => {
    let n = root;
    for (const p of parts) {
      let c = n.children!.get(p.toUpperCase());
      if (!c) {
        // archives may omit parent directory entries; make them implicitly
        c = { name: p, dir: true, mtime, firstCluster: 0, size: 0, children: new Map() };
        n.children!.set(p.toUpperCase(), c);
      }
      if (!c.dir) throw new InputError(`${input}: "${parts.join('/')}" is below a file`);
      n = c;
    }
    return n;
  };

  const loss: FatLoss = { xattrs: 0, owners: 0, modes: 0, hardlinks: 0, symlinks: 0, devices: 0, fifos: 0 };
  try {
    // One validation layer for every writer (source/validate.ts): names, case-insensitive duplicates, sizes.
    for await (const e of validateTree(tree, { fs: 'fat32', inputName: input })) {
      loss.xattrs += e.xattrs?.size ?? 0;
      if (e.type !== 'hardlink') {
        if (e.uid !== 0 || e.gid !== 0) loss.owners++;
        if ((e.mode & 0o7777) !== (e.type === 'directory' ? 0o755 : 0o644) && (e.type === 'directory' || e.type === 'file')) loss.modes++;
      } else loss.hardlinks++;
      if (e.path === '') {
        root.mtime = clampTime(e.mtime, epoch);
        continue;
      }
      const parts = e.path.split('/');
      for (const p of parts) checkLongName(p, `${input}: ${e.path}`);
      const name = parts[parts.length - 1];
      const parent = dirOf(parts.slice(0, -1), clampTime(e.mtime, epoch));
      const existing = parent.children!.get(name.toUpperCase());
      const mtime = clampTime(e.mtime, epoch);
      if (e.type === 'directory') {
        if (existing && !existing.dir) throw new InputError(`${input}: "${e.path}" is both a file and a directory`);
        if (existing) existing.mtime = mtime;
        else parent.children!.set(name.toUpperCase(), { name, dir: true, mtime, firstCluster: 0, size: 0, children: new Map() });
        continue;
      }
      // No body is drained on a refusal (a sparse one would expand): the source skips what is unread.
      if (existing) {
        throw new InputError(`${input}: "${e.path}" clashes with "${existing.name}"; FAT names are case-insensitive, rename one`);
      }
      if (e.type === 'file' || e.type === 'hardlink') {
        let size = e.size;
        let data: AsyncIterable<Buffer> | undefined = e.body;
        if (e.type === 'hardlink') {
          // FAT has no hard links: store a copy of the target's data
          const tparts = (e.linkname ?? '').split('/');
          const t = dirOf(tparts.slice(0, -1), mtime).children!.get(tparts[tparts.length - 1].toUpperCase());
          if (!t || t.dir) throw new InputError(`${input}: hard link "${e.path}" points to "${e.linkname}", which is not an earlier file`);
          size = t.size;
          await vol.settleWrites(); // the target's data may still be in flight
          data = copyClusters(vol, fat.chain(t.firstCluster), size);
        }
        if (size > 0xffffffff) throw new InputError(`${input}: "${e.path}" is ${size} bytes; FAT32 files are at most 4 GiB - 1`);
        const n = Math.ceil(size / cs);
        const clusters = fat.pick(n);
        if (!clusters) {
          throw full(e.path, n);
        }
        if (e.type === 'file' && e.open && size > 0) {
          // a host file: read straight into the volume's stage buffers
          const f = await e.open();
          try {
            await vol.writeData(clusters, f, size, `${input}: ${e.path}`, { behind: true });
          } finally {
            await f.close();
          }
        } else await vol.writeData(clusters, data ?? Buffer.alloc(0), size, `${input}: ${e.path}`, { behind: true });
        fat.link(clusters);
        usedClusters += n;
        parent.children!.set(name.toUpperCase(), { name, dir: false, mtime, firstCluster: clusters[0] ?? 0, size });
        continue;
      }
      if (opts.onLoss) {
        if (e.type === 'symlink') loss.symlinks++;
        else if (e.type === 'fifo') loss.fifos++;
        else loss.devices++;
        continue;
      }
      const reason = `FAT cannot hold a ${e.type === 'char' || e.type === 'block' ? `${e.type} device` : e.type}`;
      if (!opts.onSkip) throw new InputError(`${input}: "${e.path}": ${reason}; remove it from the payload`);
      opts.onSkip(e.path, reason);
    }
  } catch (e) {
    await vol.settleWrites().catch(() => {}); // no data write outlives the failure
    throw e;
  }

  await vol.settleWrites();
  // Directory sizes, then clusters for them (after all file data, so file runs stay contiguous).
  const labelSlots: Buffer[] = [];
  for (let i = 0; i < rootDir.slots && rootDir.buf[i * DIRENT_SIZE] !== 0; i++) {
    const s = rootDir.buf.subarray(i * DIRENT_SIZE, (i + 1) * DIRENT_SIZE);
    if (s[0] !== 0xe5 && s[11] === ATTR_VOLUME_ID) labelSlots.push(Buffer.from(s));
  }
  // Each directory is encoded once, its entries sorted by name; subdirectory
  // entries get their first cluster patched in once directories have clusters.
  const order: Node[] = []; // preorder, children in input order: the cluster allocation order
  const enc = new Map<Node, { buf: Buffer; kids: Node[]; patch: [Node, number][] }>();
  const encodeDir = (n: Node) => {
    order.push(n);
    const kids = [...n.children!.values()].map((k) => ({ k, key: Buffer.from(k.name) }));
    kids.sort((a, b) => Buffer.compare(a.key, b.key));
    const taken = new Set<string>(['.          ', '..         ']);
    const tails = new Map<string, number>();
    const runsOut: Buffer[] = n === root ? [...labelSlots] : [Buffer.alloc(2 * DIRENT_SIZE)];
    let slots = runsOut.reduce((a, b) => a + b.length, 0) / DIRENT_SIZE;
    const patch: [Node, number][] = [];
    for (const { k } of kids) {
      const sn = makeShortName(k.name, taken, tails);
      taken.add(sn.name11.toString('latin1'));
      const d = makeDirent(sn.name11, k.dir ? ATTR_DIRECTORY : ATTR_ARCHIVE, sn.ntRes, k.firstCluster, k.dir ? 0 : k.size, k.mtime);
      const run = encodeEntryRun(k.name, d, sn);
      runsOut.push(run);
      slots += run.length / DIRENT_SIZE;
      if (k.dir) patch.push([k, (slots - 1) * DIRENT_SIZE]);
    }
    if (slots > MAX_DIR_SLOTS) {
      throw new InputError(`${input}: directory "${n.name || '/'}" needs ${slots} entries; FAT allows ${MAX_DIR_SLOTS}, split it`);
    }
    const buf = Buffer.alloc(Math.max(1, Math.ceil((slots * DIRENT_SIZE) / cs)) * cs);
    let off = 0;
    for (const r of runsOut) off += r.copy(buf, off);
    enc.set(n, { buf, kids: kids.map((x) => x.k), patch });
  };
  // Preorder without recursion (depth is the input's): a stack, children pushed last-first.
  for (const stack = [root]; stack.length; ) {
    const n = stack.pop()!;
    encodeDir(n);
    const sub = [...n.children!.values()].filter((k) => k.dir);
    for (let i = sub.length - 1; i >= 0; i--) stack.push(sub[i]!);
  }
  let dirClusters = 0;
  for (const [n, { buf }] of enc) dirClusters += buf.length / cs - (n === root ? 1 : 0);
  if (dirClusters > fat.freeCount) throw full('directories', dirClusters);
  const chains = new Map<Node, number[]>();
  for (const n of order) {
    const size = enc.get(n)!.buf.length / cs;
    if (n === root) {
      const extra = fat.pick(size - 1)!;
      if (extra.length) {
        fat.link(extra);
        fat.set(g.rootCluster, extra[0]);
      }
      chains.set(n, [g.rootCluster, ...extra]);
    } else {
      const c = fat.pick(size)!;
      fat.link(c);
      chains.set(n, c);
      n.firstCluster = c[0];
    }
  }
  // Patch cluster numbers ("." / ".." and subdirectory entries) and write, parents first.
  const writeDir = async (n: Node, parentCluster: number) => {
    const { buf, kids, patch } = enc.get(n)!;
    if (n !== root) dirCluster(n.firstCluster, parentCluster, n.mtime, 2 * DIRENT_SIZE).copy(buf, 0);
    for (const [k, at] of patch) {
      buf.writeUInt16LE(k.firstCluster >>> 16, at + 20); // DIR_FstClusHI
      buf.writeUInt16LE(k.firstCluster & 0xffff, at + 26); // DIR_FstClusLO
    }
    let i = 0;
    for (const [, first, len] of runs(chains.get(n)!)) {
      await dev.write(vol.clusterOffset(first), buf.subarray(i * cs, (i + len) * cs));
      i += len;
    }
    enc.delete(n);
  };
  for (const stack: [Node, number][] = [[root, 0]]; stack.length; ) {
    const [n, parentCluster] = stack.pop()!;
    const kids = enc.get(n)!.kids.filter((k) => k.dir);
    await writeDir(n, parentCluster);
    for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i]!, n === root ? 0 : n.firstCluster]);
  }
  await fat.flush(dev, true);
  await vol.writeFsInfo();
  await dev.flush();
  if (opts.onLoss && Object.values(loss).some((v) => v > 0)) opts.onLoss(loss);
  return vol;
}

async function* copyClusters(vol: Fat32Volume, chain: number[], size: number): AsyncGenerator<Buffer> {
  const cs = vol.geometry.clusterSize;
  let left = size;
  for (const [, first, len] of runs(chain, Math.max(1, (1 << 20) / cs))) {
    if (left <= 0) return;
    const buf = Buffer.alloc(Math.min(len * cs, left));
    await vol.dev.read(vol.clusterOffset(first), buf);
    left -= buf.length;
    yield buf;
  }
}

/** mkfs + populate in one step: the ESP writer. */
export async function createFat32(dev: Device, tree: AsyncIterable<TreeEntry>, opts: FormatOptions & PopulateOptions = {}): Promise<Fat32Volume> {
  // The first entry is asked for before mkfs, so the source's start-up (readDirTree's getfattr
  // run) overlaps the format writes. No flush between mkfs and populate: nothing is promised
  // until populate's final flush.
  const it = tree[Symbol.asyncIterator]();
  const first = it.next();
  first.catch(() => {}); // surfaced when populate takes it
  try {
    await writeFat32Format(dev, { ...opts, now: opts.now ?? opts.sourceDateEpoch });
  } catch (e) {
    await first.catch(() => {});
    await it.return?.().catch(() => {});
    throw e;
  }
  return populateFat32(dev, resumed(first, it), opts);
}

/** The sequence `it` whose first step was already taken as `first`. */
async function* resumed<T>(first: Promise<IteratorResult<T>>, it: AsyncIterator<T>): AsyncGenerator<T> {
  try {
    for (let r = await first; !r.done; r = await it.next()) yield r.value;
  } finally {
    await it.return?.();
  }
}
