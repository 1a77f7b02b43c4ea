/**
 * What a slot's root filesystem says it is: the slot carries the Alpine root
 * as a SquashFS image (/squashfs); inside it /etc/os-release names the
 * release and /lib/apk/db/installed lists the installed packages. Read in
 * place through the SquashFS reader (nothing copied out). A missing or
 * unreadable image is reported in the result, never thrown, so `show` keeps
 * going.
 */
import { isSquashfsFile, openSquashfsIn, type FsReader } from '@diskimg/diskimage/internal';
import { InputError, isNotFound, UnsupportedFormatError } from '@diskimg/partitions/internal';

/** Where the psyopsOS OS tarball puts the root filesystem image in a slot. */
export const SLOT_ROOT_IMAGE = '/squashfs';
export const OS_RELEASE = '/etc/os-release';
export const APK_INSTALLED = '/lib/apk/db/installed';
const MAX_OS_RELEASE = 64 << 10;
/** A real Alpine root's database (with file lists) is a few MiB. */
const MAX_APK_DB = 64 << 20;

export interface ApkPackage {
  name: string;
  version: string;
  arch?: string;
}

export interface SlotOs {
  /** ok: read; missing: no /squashfs in the slot; unsupported: an image we cannot read (compression); error: damaged. */
  rootfs: 'ok' | 'missing' | 'unsupported' | 'error';
  prettyName: string | null;
  versionId: string | null;
  /** Number of installed packages, null when there is no apk database. */
  packages: number | null;
  error?: string;
}

/** os-release(5): KEY=value lines, values optionally quoted with shell escapes. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*?)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    const q = v[0];
    if ((q === '"' || q === "'") && v.endsWith(q) && v.length >= 2) {
      v = v.slice(1, -1);
      if (q === '"') v = v.replace(/\\([$"`\\])/g, '$1');
    }
    out[m[1]!] = v;
  }
  return out;
}

/** apk's installed database: records separated by blank lines; P: name, V: version, A: arch. */
export function parseApkInstalled(text: string): ApkPackage[] {
  const out: ApkPackage[] = [];
  let cur: Partial<ApkPackage> = {};
  const flush = () => {
    if (cur.name !== undefined) out.push({ name: cur.name, version: cur.version ?? '', ...(cur.arch ? { arch: cur.arch } : {}) });
    cur = {};
  };
  for (const line of text.split('\n')) {
    if (line === '') flush();
    else if (line.startsWith('P:')) cur.name = line.slice(2);
    else if (line.startsWith('V:')) cur.version = line.slice(2);
    else if (line.startsWith('A:')) cur.arch = line.slice(2);
  }
  flush();
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The slot's root image as a filesystem, or undefined when the slot has none. */
export async function openSlotRoot(slot: FsReader): Promise<FsReader | undefined> {
  if (!(await isSquashfsFile(slot, SLOT_ROOT_IMAGE))) {
    try {
      await slot.stat(SLOT_ROOT_IMAGE);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    throw new InputError(`${slot.name}:${SLOT_ROOT_IMAGE}: not a SquashFS image`);
  }
  return await openSquashfsIn(slot, SLOT_ROOT_IMAGE);
}

async function readOptional(fs: FsReader, path: string, max: number): Promise<string | null> {
  try {
    return (await fs.readFileBuffer(path, max)).toString('utf8');
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/** Installed packages of a root filesystem (null when it has no apk database). */
export async function installedPackages(root: FsReader): Promise<ApkPackage[] | null> {
  const db = await readOptional(root, APK_INSTALLED, MAX_APK_DB);
  return db === null ? null : parseApkInstalled(db);
}

/** Release and package count of the OS in a slot (see SlotOs). */
export async function readSlotOs(slot: FsReader): Promise<SlotOs> {
  const out: SlotOs = { rootfs: 'missing', prettyName: null, versionId: null, packages: null };
  try {
    const root = await openSlotRoot(slot);
    if (!root) return out;
    const rel = await readOptional(root, OS_RELEASE, MAX_OS_RELEASE);
    if (rel !== null) {
      const r = parseOsRelease(rel);
      out.prettyName = r.PRETTY_NAME ?? null;
      out.versionId = r.VERSION_ID ?? null;
    }
    out.packages = (await installedPackages(root))?.length ?? null;
    out.rootfs = 'ok';
  } catch (e) {
    out.rootfs = e instanceof UnsupportedFormatError ? 'unsupported' : 'error';
    out.error = e instanceof Error ? e.message : String(e);
  }
  return out;
}

export interface PackageDiff {
  added: ApkPackage[];
  removed: ApkPackage[];
  changed: { name: string; from: string; to: string }[];
}

/** What changes from `a` to `b` (by package name). */
export function diffPackages(a: ApkPackage[], b: ApkPackage[]): PackageDiff {
  const A = new Map(a.map((p) => [p.name, p]));
  const B = new Map(b.map((p) => [p.name, p]));
  const added = b.filter((p) => !A.has(p.name));
  const removed = a.filter((p) => !B.has(p.name));
  const changed = a.filter((p) => B.has(p.name) && B.get(p.name)!.version !== p.version).map((p) => ({ name: p.name, from: p.version, to: B.get(p.name)!.version }));
  return { added, removed, changed };
}
