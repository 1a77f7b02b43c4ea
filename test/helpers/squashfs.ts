/**
 * SquashFS fixtures built at test time by the real tools (mksquashfs from
 * squashfs-tools, gensquashfs from squashfs-tools-ng) into a temp dir, cached
 * per test process, and the judges' views of an image: `unsquashfs -lln`,
 * an `unsquashfs -d` extraction and a kernel loop mount.
 *
 * Trees: "types" holds every inode type (dir, file, symlink, block and char
 * devices, fifo, socket), files around the block and fragment edges, hard
 * links, sparse files, xattrs (small, large, a large value shared by several
 * files so it is stored out of line, trusted.* on device nodes and a fifo to
 * force extended inodes), a 255-byte name (Linux's NAME_MAX; SquashFS allows
 * 256) and non-ASCII names, a 4000-byte symlink. "big" adds a 5,000-entry
 * directory (an indexed, extended directory) and 10,000 files in all.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, linkSync, writeFileSync, existsSync, openSync, writeSync, closeSync, utimesSync, lutimesSync, readdirSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SQFS_TOOLS = ['mksquashfs', 'unsquashfs', 'gensquashfs', 'setfattr', 'getfattr'];

let base: string | undefined;
process.on('exit', () => {
  if (base) rmSync(base, { recursive: true, force: true });
});
export function workDir(): string {
  base ??= mkdtempSync(join(tmpdir(), 'diskimg-sqfs-'));
  return base;
}

export function run(cmd: string, args: string[], opts: { input?: Buffer; maxBuffer?: number; env?: NodeJS.ProcessEnv } = {}): Buffer {
  const r = spawnSync(cmd, args, { input: opts.input, maxBuffer: opts.maxBuffer ?? 256 << 20, env: opts.env ?? { ...process.env, TZ: 'UTC' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr?.toString().slice(0, 2000)}`);
  return r.stdout;
}

/** Deterministic pseudo-random bytes (sha256 in counter mode). */
export function bytes(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let o = 0, k = 0; o < n; k++) {
    const h = createHash('sha256').update(`${seed}:${k}`).digest();
    h.copy(out, o, 0, Math.min(32, n - o));
    o += 32;
  }
  return out;
}

const MTIME = new Date('2024-05-06T07:08:09Z');

function makeTypesTree(root: string): void {
  const w = (p: string, data: Buffer | string) => {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), data);
  };
  w('etc/os-release', 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n');
  w('etc/hostname', 'node1\n');
  for (const n of [0, 1, 4095, 4096, 4097, 131071, 131072, 131073, 300000, 1048577]) w(`sizes/s${n}`, bytes(`s${n}`, n));
  w('sizes/zeros-200k', Buffer.alloc(200000));
  w('sizes/text', 'hello squashfs\n'.repeat(20000));
  mkdirSync(join(root, 'bin'), { recursive: true });
  w('bin/busybox', bytes('busybox', 70000));
  symlinkSync('busybox', join(root, 'bin/sh'));
  symlinkSync('/etc/os-release', join(root, 'abs-link'));
  symlinkSync('../etc', join(root, 'bin/etc-up'));
  symlinkSync('nowhere', join(root, 'dangling'));
  symlinkSync('loop-b', join(root, 'loop-a'));
  symlinkSync('loop-a', join(root, 'loop-b'));
  symlinkSync('x/'.repeat(2000), join(root, 'long-link'));
  w('links/h1', bytes('hard', 5000));
  linkSync(join(root, 'links/h1'), join(root, 'links/h2'));
  linkSync(join(root, 'links/h1'), join(root, 'h3'));
  // Sparse: data in the middle, and a file that is only a hole.
  const fd = openSync(join(root, 'sparse'), 'w');
  writeSync(fd, bytes('sp', 1000), 0, 1000, 3_000_000);
  writeSync(fd, Buffer.from('end'), 0, 3, 5 * 1048576 - 3);
  closeSync(fd);
  w('hole', '');
  spawnSync('truncate', ['-s', '2M', join(root, 'hole')]);
  mkdirSync(join(root, 'dev'));
  run('mknod', [join(root, 'dev/null'), 'c', '1', '3']);
  run('mknod', [join(root, 'dev/sda1'), 'b', '8', '1']);
  run('mknod', [join(root, 'dev/big'), 'c', '300', '70000']);
  run('mkfifo', [join(root, 'dev/fifo')]);
  run('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', join(root, 'dev/sock')]);
  const name255 = 'n'.repeat(251) + '.txt';
  w(`names/${name255}`, 'long name\n');
  w('names/ünïcødé-名前.txt', 'utf-8 name\n');
  w('names/space name', 'x');
  w('names/bang!file', 'a literal bang\n');
  mkdirSync(join(root, 'empty-dir'));
  mkdirSync(join(root, 'perm'));
  w('perm/suid', '#!/bin/sh\n');
  spawnSync('chmod', ['4755', join(root, 'perm/suid')]);
  spawnSync('chmod', ['1777', join(root, 'perm')]);
  w('perm/owned', 'owned\n');
  spawnSync('chown', ['1234:5678', join(root, 'perm/owned')]);
  // xattrs: small, large, a large value shared by three files (stored once, then out of line).
  const big = bytes('xbig', 3000).toString('hex').slice(0, 3000);
  w('x/small', 'x');
  w('x/large', 'x');
  w('x/shared1', 'x');
  w('x/shared2', 'y');
  w('x/shared3', 'z');
  run('setfattr', ['-n', 'user.small', '-v', 'v1', join(root, 'x/small')]);
  run('setfattr', ['-n', 'user.other', '-v', '0x00ff10', join(root, 'x/small')]);
  run('setfattr', ['-n', 'user.big', '-v', big, join(root, 'x/large')]);
  for (const f of ['x/shared1', 'x/shared2', 'x/shared3', 'etc/os-release']) run('setfattr', ['-n', 'user.shared', '-v', big, join(root, f)]);
  run('setfattr', ['-n', 'trusted.dev', '-v', 'cdev', join(root, 'dev/null')]);
  run('setfattr', ['-n', 'trusted.fifo', '-v', 'p', join(root, 'dev/fifo')]);
  run('setfattr', ['-n', 'user.dir', '-v', 'd', join(root, 'x')]);
}

function makeBigTree(root: string): void {
  makeTypesTree(root);
  // 5,000 entries in one directory, 10,000 files in all.
  mkdirSync(join(root, 'many'));
  for (let k = 0; k < 5000; k++) writeFileSync(join(root, 'many', `entry-${String(k).padStart(5, '0')}-${'p'.repeat(k % 40)}`), `${k}\n`);
  for (let d = 0; d < 50; d++) {
    mkdirSync(join(root, `spread/d${d}`), { recursive: true });
    for (let k = 0; k < 100; k++) writeFileSync(join(root, `spread/d${d}/f${k}`), k % 7 === 0 ? bytes(`${d}/${k}`, 9000) : `${d}/${k}\n`);
  }
}

/** Every mtime fixed, so listings do not depend on when the tree was made. */
function fixTimes(root: string): void {
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
    if (st.isSymbolicLink()) lutimesSync(p, MTIME, MTIME);
    else utimesSync(p, MTIME, MTIME);
  };
  walk(root);
}

const trees = new Map<string, string>();
export function tree(kind: 'types' | 'big'): string {
  let t = trees.get(kind);
  if (t) return t;
  t = join(workDir(), `tree-${kind}`);
  rmSync(t, { recursive: true, force: true });
  mkdirSync(t);
  (kind === 'big' ? makeBigTree : makeTypesTree)(t);
  fixTimes(t);
  trees.set(kind, t);
  return t;
}

export interface ImageSpec {
  tool: 'mksquashfs' | 'gensquashfs';
  comp: 'gzip' | 'zstd' | 'lz4' | 'xz';
  /** Extra arguments for the tool. */
  args?: string[];
  tree?: 'types' | 'big';
  label?: string;
}

export const specName = (s: ImageSpec) => `${s.tool} ${s.comp}${s.args?.length ? ` ${s.args.join(' ')}` : ''}${s.tree === 'big' ? ' (big tree)' : ''}`;

const images = new Map<string, string>();
/** Build (once per process) the image for `spec`; returns its path. */
export function image(spec: ImageSpec): string {
  const key = specName(spec);
  let p = images.get(key);
  if (p) return p;
  const src = tree(spec.tree ?? 'types');
  p = join(workDir(), `img-${images.size}.sqfs`);
  if (spec.tool === 'mksquashfs') {
    run('mksquashfs', [src, p, '-comp', spec.comp, '-noappend', '-quiet', '-no-progress', '-processors', '1', ...(spec.args ?? [])]);
  } else {
    run('gensquashfs', ['-D', src, '-c', spec.comp, '-k', '-x', '-f', '-q', '-j', '1', ...(spec.args ?? []), p]);
  }
  images.set(key, p);
  return p;
}

export interface ListRow {
  path: string;
  mode: string;
  uid: number;
  gid: number;
  /** Size, or "major,minor" for devices. */
  size: string;
  /** "YYYY-MM-DD HH:MM" (UTC) */
  time: string;
  target?: string;
}

/** unsquashfs -lln -UTC, parsed (paths relative to the root, "/" for it). */
export function unsquashfsList(img: string): ListRow[] {
  const out = run('unsquashfs', ['-lln', '-UTC', img]).toString('utf8');
  const rows: ListRow[] = [];
  for (const line of out.split('\n')) {
    const m = /^(\S{10}) (\d+)\/(\d+)\s+(\d+|\d+,\s*\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) squashfs-root(.*)$/.exec(line);
    if (!m) continue;
    let path = m[6]!;
    let target: string | undefined;
    if (m[1]!.startsWith('l')) {
      const k = path.indexOf(' -> ');
      target = path.slice(k + 4);
      path = path.slice(0, k);
    }
    rows.push({ path: path || '/', mode: m[1]!, uid: Number(m[2]), gid: Number(m[3]), size: m[4]!.replace(/\s+/g, ''), time: m[5]!, ...(target !== undefined ? { target } : {}) });
  }
  return rows;
}

export const haveSquashfsKernel = (): boolean => {
  try {
    return /\bsquashfs\b/.test(run('cat', ['/proc/filesystems']).toString());
  } catch {
    return false;
  }
};

export function exists(p: string): boolean {
  return existsSync(p);
}

/** One entry as squashfs-tools-ng's sqfs2tar writes it to a tar stream (read back by Python's tarfile). */
export interface TarRow {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  link?: string;
  major?: number;
  minor?: number;
  sha256?: string;
  /** name → hex value, from the SCHILY.xattr.* PAX records. */
  xattrs: Record<string, string>;
}

const SQFS2TAR_PY = `
import hashlib, json, subprocess, sys, tarfile
p = subprocess.Popen(['sqfs2tar', '--no-hard-links', '-r', '.', sys.argv[1]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
T = {tarfile.REGTYPE: 'file', tarfile.DIRTYPE: 'directory', tarfile.SYMTYPE: 'symlink', tarfile.CHRTYPE: 'char', tarfile.BLKTYPE: 'block', tarfile.FIFOTYPE: 'fifo'}
out = []
with tarfile.open(fileobj=p.stdout, mode='r|') as tf:
    for m in tf:
        name = m.name[1:] if m.name.startswith('./') else '/' if m.name in ('.', './') else '/' + m.name
        r = {'path': name.rstrip('/') or '/', 'type': T[m.type], 'mode': m.mode, 'uid': m.uid, 'gid': m.gid, 'mtime': int(m.mtime), 'size': m.size,
             'xattrs': {k[len('SCHILY.xattr.'):]: v.encode('utf-8', 'surrogateescape').hex() for k, v in m.pax_headers.items() if k.startswith('SCHILY.xattr.')}}
        if m.issym(): r['link'] = m.linkname
        if m.ischr() or m.isblk(): r['major'], r['minor'] = m.devmajor, m.devminor
        if m.isfile():
            h = hashlib.sha256(); f = tf.extractfile(m)
            for b in iter(lambda: f.read(1 << 20), b''): h.update(b)
            r['sha256'] = h.hexdigest()
        out.append(r)
sys.exit(p.wait() or json.dump(out, sys.stdout))
`;

/** The image as sqfs2tar (squashfs-tools-ng, a second implementation) sees it; sockets are not in tar. */
export function sqfs2tarList(img: string): TarRow[] {
  return JSON.parse(run('python3', ['-c', SQFS2TAR_PY, img], { maxBuffer: 1 << 28 }).toString('utf8')) as TarRow[];
}
