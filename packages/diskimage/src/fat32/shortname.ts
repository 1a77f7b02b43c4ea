import { InputError } from '@diskimg/partitions/internal';
import { NTRES_LOWER_BASE, NTRES_LOWER_EXT } from './dirent.js';

/**
 * Long-name validation and 8.3 alias generation, following what Linux vfat
 * and Windows do: a name that fits 8.3 with one case per part is stored as
 * the short name alone with the NT lower-case flags; otherwise the alias is
 * the upper-cased basis with invalid characters replaced by "_", and a "~N"
 * tail when the conversion lost information or collides.
 */

export const MAX_NAME = 255;
/** Long names may hold anything from 0x20 up except the characters matched here (and DEL). */
const LONG_INVALID = /["*/:<>?\\|\x00-\x1f\x7f]/;
/** Characters valid in a short name (besides A-Z, 0-9 and ≥ 0x80 which we never emit). */
const SHORT_SPECIAL = "$%'-_@~`!(){}^#&";

export interface ShortName {
  /** 11 bytes for DIR_Name. */
  name11: Buffer;
  /** DIR_NTRes lower-case flags. */
  ntRes: number;
  /** Whether long-name entries must precede the short entry. */
  needsLfn: boolean;
}

/** Throw InputError if FAT cannot hold `name` as one path component. */
export function checkLongName(name: string, where = name): void {
  if (name.length === 0) throw new InputError(`${where}: empty file name`);
  if (name.length > MAX_NAME) {
    throw new InputError(`${where}: name is ${name.length} characters; FAT allows at most ${MAX_NAME} per path component, shorten it`);
  }
  if (name === '.' || name === '..') throw new InputError(`${where}: "${name}" cannot be a file name`);
  const bad = LONG_INVALID.exec(name);
  if (bad) {
    const c = bad[0];
    const shown = c.charCodeAt(0) < 0x20 || c === '\x7f' ? `control character 0x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `"${c}"`;
    throw new InputError(`${where}: FAT cannot hold ${shown} in a file name; rename it`);
  }
  if (/[. ]$/.test(name)) throw new InputError(`${where}: FAT cannot hold a name ending in a dot or space; rename it`);
}

function isShortChar(c: string): boolean {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || SHORT_SPECIAL.includes(c);
}

function caseOf(s: string): 'upper' | 'lower' | 'none' | 'mixed' {
  const up = s !== s.toLowerCase();
  const low = s !== s.toUpperCase();
  return up && low ? 'mixed' : up ? 'upper' : low ? 'lower' : 'none';
}

function pack(base: string, ext: string): Buffer {
  const b = Buffer.from(base.padEnd(8, ' ') + ext.padEnd(3, ' '), 'latin1');
  if (b[0] === 0xe5) b[0] = 0x05;
  return b;
}

/** Upper-case and map to valid short-name characters; reports whether anything was lost. */
function basis(part: string): { s: string; lossy: boolean } {
  let s = '';
  let lossy = false;
  for (const ch of part) {
    if (ch === ' ' || ch === '.') {
      lossy = true;
      continue;
    }
    const u = ch.toUpperCase();
    if (u.length === 1 && isShortChar(u)) s += u;
    else {
      s += '_';
      lossy = true;
    }
  }
  return { s, lossy };
}

/**
 * The short name for `name` in a directory whose existing 11-byte names
 * `taken` holds (as latin1 strings). Call checkLongName first. `tails`, one
 * per directory, only for callers whose `taken` never loses names (populate).
 */
export function makeShortName(name: string, taken: Set<string>, tails?: Map<string, number>): ShortName {
  // 1. Names that are already valid 8.3 with one case per part need no long entries.
  const m = /^([^.]{1,8})(?:\.([^.]{1,3}))?$/.exec(name);
  if (m) {
    const [, b, e = ''] = m;
    const cb = caseOf(b);
    const ce = caseOf(e);
    const valid = [...(b + e)].every((c) => isShortChar(c.toUpperCase()) && c.toUpperCase().length === 1);
    if (valid && cb !== 'mixed' && ce !== 'mixed') {
      const name11 = pack(b.toUpperCase(), e.toUpperCase());
      const ntRes = (cb === 'lower' ? NTRES_LOWER_BASE : 0) | (ce === 'lower' ? NTRES_LOWER_EXT : 0);
      if (!taken.has(name11.toString('latin1'))) return { name11, ntRes, needsLfn: false };
    }
  }
  // 2. Otherwise build the basis: leading dots dropped, extension after the last dot.
  const stripped = name.replace(/^\.+/, '');
  const dot = stripped.lastIndexOf('.');
  const rawBase = dot > 0 ? stripped.slice(0, dot) : stripped;
  const rawExt = dot > 0 ? stripped.slice(dot + 1) : '';
  const b = basis(rawBase);
  const e = basis(rawExt);
  const base = b.s || '_';
  const ext = e.s.slice(0, 3);
  const lossy = b.lossy || e.lossy || stripped !== name || b.s.length > 8 || e.s.length > 3 || !b.s;
  if (!lossy) {
    // only the case changed (e.g. "Makefile"): the upper-cased name itself, with a long entry for the case
    const name11 = pack(base, ext);
    if (!taken.has(name11.toString('latin1'))) return { name11, ntRes: 0, needsLfn: true };
  }
  // `tails` remembers, per basis, the lowest ~n not yet known taken: same answer
  // as scanning from ~1 while `taken` only grows, without the quadratic scan.
  const key = `${base}.${ext}`;
  for (let n = tails?.get(key) ?? 1; n < 1_000_000; n++) {
    const tail = `~${n}`;
    const name11 = pack(base.slice(0, 8 - tail.length) + tail, ext);
    if (!taken.has(name11.toString('latin1'))) {
      tails?.set(key, n);
      return { name11, ntRes: 0, needsLfn: true };
    }
  }
  throw new InputError(`${name}: no free 8.3 alias left in this directory`);
}
