/**
 * File names are bytes (ext4, SquashFS) or UTF-16 units (FAT long names);
 * paths and listings are JS strings. One reversible mapping between them, so
 * two names never collapse into one and every name shown can be typed back:
 *
 * - valid UTF-8 is itself; `\` is written `\\`;
 * - every byte that is not part of valid UTF-8 is `\xHH` (lower-case hex);
 * - on FAT a lone UTF-16 surrogate is taken as its 3-byte WTF-8 form, so it
 *   shows as `\xed\xa0\x80` (U+D800) and maps back to the same unit.
 *
 * Reading a path back (`nameToBytes`), `\\` is one backslash and `\xHH` one
 * byte; any other backslash stays as written. The CLI's display escaping
 * (control and bidi characters, packages/cli/src/output.ts) uses the same
 * `\xHH` bytes, so what `ls` prints, `cat` accepts.
 */

/** The name of raw bytes, as listings show it and paths accept it. */
export function nameFromBytes(raw: Uint8Array): string {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  // Fast path: valid UTF-8 without a backslash is itself.
  if (!b.includes(0x5c)) {
    const s = b.toString('utf8');
    if (!s.includes('\ufffd') || Buffer.from(s, 'utf8').equals(b)) return s;
  }
  let out = '';
  let i = 0;
  while (i < b.length) {
    const n = utf8SeqLen(b, i);
    if (n === 0) {
      out += `\\x${b[i]!.toString(16).padStart(2, '0')}`;
      i++;
      continue;
    }
    const ch = b.toString('utf8', i, i + n);
    out += ch === '\\' ? '\\\\' : ch;
    i += n;
  }
  return out;
}

/** Length of the valid (shortest-form, non-surrogate) UTF-8 sequence at `i`, or 0. */
function utf8SeqLen(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // a surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xf0 && c1 < 0x90) return 0;
    if (c === 0xf4 && c1 >= 0x90) return 0;
    return 4;
  }
  return 0;
}

/** The bytes a name (or path component) given as `nameFromBytes` shows it stands for. */
export function nameToBytes(name: string): Buffer {
  if (!name.includes('\\')) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let lit = '';
  const flush = () => {
    if (lit) parts.push(Buffer.from(lit, 'utf8'));
    lit = '';
  };
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    if (ch === '\\' && name[i + 1] === '\\') {
      lit += '\\';
      i++;
    } else if (ch === '\\' && name[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(name.slice(i + 2, i + 4))) {
      flush();
      parts.push(Buffer.from([parseInt(name.slice(i + 2, i + 4), 16)]));
      i += 3;
    } else lit += ch;
  }
  flush();
  return Buffer.concat(parts);
}

/** Does the shown name differ from the exact one (escapes in it)? Then listings add the bytes (`nameBase64`). */
export function nameIsEscaped(name: string): boolean {
  return name.includes('\\');
}

/** UTF-16 (a FAT long name, lone surrogates allowed) as WTF-8 bytes. */
export function wtf8FromUtf16(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Buffer.from(out);
}

/** WTF-8 bytes back to UTF-16 (lone surrogates restored); other invalid bytes as U+FFFD (no FAT name holds them). */
export function utf16FromWtf8(b: Buffer): string {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c === 0xed && i + 2 < b.length && (b[i + 1]! & 0xe0) === 0xa0 && (b[i + 2]! & 0xc0) === 0x80) {
      out += String.fromCharCode(0xd000 | ((b[i + 1]! & 63) << 6) | (b[i + 2]! & 63));
      i += 3;
      continue;
    }
    const n = utf8SeqLen(b, i);
    if (n === 0) {
      out += '\ufffd';
      i++;
    } else {
      out += b.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

/** A FAT long name (UTF-16) as listings show it. */
export function nameFromUtf16(s: string): string {
  // Common case: well-formed UTF-16 without a backslash (FAT forbids "\" anyway).
  if (!/[\ud800-\udfff\\]/.test(s)) return s;
  return nameFromBytes(wtf8FromUtf16(s));
}

/** A shown FAT name back to the UTF-16 the volume compares. */
export function nameToUtf16(name: string): string {
  return name.includes('\\') ? utf16FromWtf8(nameToBytes(name)) : name;
}
