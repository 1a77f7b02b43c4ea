import { GRUBENV_SIGNATURE } from './grubenv.js';

/**
 * The environment block as GRUB itself reads and edits it at boot
 * (grub-core/lib/envblk.c, grub-core/commands/loadenv.c, GRUB 2.06), byte
 * for byte, so the model in decision.ts can say exactly what `load_env` sees
 * and what `save_env` writes back. Unlike decodeGrubenv (which refuses a
 * damaged block), these are as lenient as GRUB: a broken line ends the
 * iteration but keeps the variables before it.
 */

const HASH = 0x23;
const NL = 0x0a;
const BACKSLASH = 0x5c;
const EQ = 0x3d;
const SIG = Buffer.from(GRUBENV_SIGNATURE, 'latin1');

/**
 * grub_envblk_open: the block GRUB accepts, or undefined ("invalid
 * environment block"). GRUB wants at least sizeof(SIGNATURE) bytes, which
 * counts the C string's NUL: 26.
 */
export function envblkOpen(bytes: Uint8Array | undefined): Buffer | undefined {
  if (bytes === undefined || bytes.length < SIG.length + 1) return undefined;
  const b = Buffer.from(bytes);
  return b.subarray(0, SIG.length).equals(SIG) ? b : undefined;
}

/** find_next_line: skip escaped pairs, stop after the newline. */
function findNextLine(b: Buffer, p: number, pend: number): number {
  while (p < pend) {
    if (b[p] === BACKSLASH) p += 2;
    else if (b[p] === NL) break;
    else p++;
  }
  return p + 1;
}

/** grub_envblk_iterate: the (name, value) pairs GRUB's load_env sees, in block order. */
export function envblkIterate(b: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const pend = b.length;
  let p = SIG.length;
  while (p < pend) {
    if (b[p] !== HASH) {
      const nameStart = p;
      while (p < pend && b[p] !== EQ) p++;
      if (p === pend) return out; // broken
      const nameEnd = p;
      p++;
      const valueStart = p;
      while (p < pend) {
        if (b[p] === NL) break;
        else if (b[p] === BACKSLASH) p += 2;
        else p++;
      }
      if (p >= pend) return out; // broken
      const value: number[] = [];
      for (let q = valueStart; b[q] !== NL; q++) {
        if (b[q] === BACKSLASH) q++;
        value.push(b[q]!);
      }
      // GRUB's names and values are C strings: a NUL ends them.
      const cstr = (x: Buffer) => {
        const z = x.indexOf(0);
        return (z < 0 ? x : x.subarray(0, z)).toString('latin1');
      };
      out.push([cstr(b.subarray(nameStart, nameEnd)), cstr(Buffer.from(value))]);
    }
    p = findNextLine(b, p, pend);
  }
  return out;
}

/**
 * load_env --file F VAR…: the variables GRUB sets (a whitelist keeps only
 * those named; a later line wins). Undefined when load_env fails.
 */
export function loadEnv(bytes: Uint8Array | undefined, whitelist: readonly string[]): Map<string, string> | undefined {
  const b = envblkOpen(bytes);
  if (!b) return undefined;
  const vars = new Map<string, string>();
  for (const [n, v] of envblkIterate(b)) if (whitelist.length === 0 || whitelist.includes(n)) vars.set(n, v);
  return vars;
}

const escapedLen = (v: Buffer) => v.reduce((n, c) => n + (c === BACKSLASH || c === NL ? 2 : 1), 0);

/** grub_envblk_set, in place on `b`; false when GRUB returns 0 (broken block or no room). */
export function envblkSet(b: Buffer, name: string, value: string): boolean {
  const nm = Buffer.from(name, 'latin1');
  const val = Buffer.from(value, 'latin1');
  const nl = nm.length;
  const vl = escapedLen(val);
  const pend = b.length;
  let p = SIG.length;
  let space = pend - 1;
  while (b[space] === HASH) space--;
  if (b[space] !== NL) return false; // broken
  space++;
  let found = false;
  while (p + nl + 1 < space) {
    if (b.subarray(p, p + nl).equals(nm) && b[p + nl] === EQ) {
      p += nl + 1;
      let len = 0;
      while (p + len < pend && b[p + len] !== NL) len += b[p + len] === BACKSLASH ? 2 : 1;
      if (p + len >= pend) return false; // broken
      if (pend - space < vl - len) return false; // no space
      if (vl < len) {
        b.copyWithin(p + vl, p + len, pend);
        b.fill(HASH, space - (len - vl), space);
      } else {
        b.copyWithin(p + vl, p + len, pend - (vl - len));
      }
      found = true;
      break;
    }
    p = findNextLine(b, p, pend);
  }
  if (!found) {
    if (pend - space < nl + 1 + vl + 1) return false; // no space
    nm.copy(b, space);
    p = space + nl;
    b[p++] = EQ;
  }
  for (const c of val) {
    if (c === BACKSLASH || c === NL) b[p++] = BACKSLASH;
    b[p++] = c;
  }
  b[p] = NL;
  return true;
}

/** grub_envblk_delete, in place on `b`. */
export function envblkDelete(b: Buffer, name: string): void {
  const nm = Buffer.from(name, 'latin1');
  const nl = nm.length;
  const pend = b.length;
  let p = SIG.length;
  while (p + nl + 1 < pend) {
    if (b.subarray(p, p + nl).equals(nm) && b[p + nl] === EQ) {
      let len = nl + 1;
      while (p + len < pend) {
        if (b[p + len] === NL) break;
        len += b[p + len] === BACKSLASH ? 2 : 1;
      }
      if (p + len >= pend) return; // broken
      len++;
      b.copyWithin(p, p + len, pend);
      b.fill(HASH, pend - len, pend);
      return;
    }
    p = findNextLine(b, p, pend);
  }
}

/**
 * save_env --file F VAR…: the block GRUB writes, given the variables it has
 * set (`undefined` = unset: the line is deleted). Undefined when save_env
 * fails before writing (invalid block, "environment block too small"); GRUB
 * then leaves the file as it was.
 */
export function saveEnv(bytes: Uint8Array | undefined, vars: ReadonlyArray<readonly [string, string | undefined]>): Buffer | undefined {
  const opened = envblkOpen(bytes);
  if (!opened) return undefined;
  const b = Buffer.from(opened); // GRUB edits its own copy and writes only on success
  for (const [name, value] of vars) {
    if (value === undefined) envblkDelete(b, name);
    else if (!envblkSet(b, name, value)) return undefined;
  }
  return b;
}

/**
 * Bytes of the block that are not the trailing '#' padding. GRUB rewrites
 * the whole block in place, one sector after the other: while this stays
 * under 512 in both the old and the new block, their second sectors are
 * both all '#', so a write torn between the sectors leaves the old or the
 * new block, never a mix.
 */
export function envContentLength(bytes: Uint8Array): number {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === HASH) end--;
  return end;
}
