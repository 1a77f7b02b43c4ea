/**
 * Just enough of GRUB's script language (grub-core/script/yylex.l) to quote
 * values we render and to read words and menu entries back.
 *
 * Lexing rules we follow:
 * - unquoted word characters are anything but `{}|&$;<>`, blanks, newline,
 *   quotes and backslash; `\x` outside quotes is a literal x;
 * - '…' is literal (no escapes at all);
 * - "…" expands `$var`; inside it `\$`, `\\`, `\"` are escapes, `\<newline>`
 *   is dropped and any other backslash is literal;
 * - `#` at the start of a word comments to the end of the line.
 */

/** Characters that may stand unquoted in a word (and a word must not start with #). */
const BARE_WORD = /^[^{}|&$;<>\s'"\\#][^{}|&$;<>\s'"\\]*$/;

/** Quote one argument so GRUB reads back exactly `s`; bare when that is safe (as upstream writes them). */
export function quoteWord(s: string): string {
  if (BARE_WORD.test(s)) return s;
  return quoteString(s);
}

/** Quote a string in double quotes when it needs no escapes (upstream's style), else in single quotes. */
export function quoteString(s: string): string {
  if (!/[$"\\`\n]/.test(s)) return `"${s}"`;
  // Single quotes take everything literally; a ' is closed, escaped and reopened.
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface Word {
  /** The value after quote removal (variables are not expanded). */
  value: string;
  /** True when any part of it was a `$variable` (so `value` holds the literal `$name`). */
  expands: boolean;
}

/** One simple command: its words, or a lone `{` / `}` block marker. */
export interface Command {
  words: Word[];
  /** 1-based line where the command starts. */
  line: number;
}

/**
 * Split GRUB script text into commands. `{` and `}` are emitted as commands of
 * their own (so `menuentry "x" { echo hi }` on one line reads like the multi-line form).
 * Lenient: unterminated quotes end at end of input.
 */
export function tokenize(text: string): Command[] {
  const out: Command[] = [];
  let words: Word[] = [];
  let line = 1;
  let start = 1;
  let i = 0;
  const n = text.length;
  const endCommand = () => {
    if (words.length > 0) out.push({ words, line: start });
    words = [];
  };
  while (i < n) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '\n' || c === ';') {
      if (c === '\n') line++;
      endCommand();
      i++;
      continue;
    }
    if (c === '\\' && text[i + 1] === '\n') {
      // Line continuation between words.
      i += 2;
      line++;
      continue;
    }
    if (c === '#') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (words.length === 0) start = line;
    if (c === '{' || c === '}') {
      if (c === '{') {
        words.push({ value: '{', expands: false });
        endCommand();
      } else {
        endCommand();
        out.push({ words: [{ value: '}', expands: false }], line });
      }
      i++;
      continue;
    }
    // A word: a run of bare characters, escapes and quoted parts.
    let value = '';
    let expands = false;
    while (i < n) {
      const d = text[i]!;
      if (d === ' ' || d === '\t' || d === '\r' || d === '\n' || d === ';' || d === '{' || d === '}') break;
      if (d === '\\') {
        if (text[i + 1] === '\n') {
          i += 2;
          line++;
          continue;
        }
        if (i + 1 < n) value += text[i + 1];
        i += 2;
      } else if (d === "'") {
        const end = text.indexOf("'", i + 1);
        const stop = end < 0 ? n : end;
        const part = text.slice(i + 1, stop);
        line += countNewlines(part);
        value += part;
        i = stop + 1;
      } else if (d === '"') {
        i++;
        while (i < n && text[i] !== '"') {
          const e = text[i]!;
          if (e === '\\' && i + 1 < n) {
            const f = text[i + 1]!;
            if (f === '$' || f === '\\' || f === '"') {
              value += f;
              i += 2;
              continue;
            }
            if (f === '\n') {
              line++;
              i += 2;
              continue;
            }
          }
          if (e === '$') expands = true;
          if (e === '\n') line++;
          value += e;
          i++;
        }
        i++;
      } else if (d === '$') {
        expands = true;
        if (text[i + 1] === '{') {
          const end = text.indexOf('}', i);
          const stop = end < 0 ? n : end + 1;
          value += text.slice(i, stop);
          i = stop;
        } else {
          value += d;
          i++;
        }
      } else {
        value += d;
        i++;
      }
    }
    words.push({ value, expands });
  }
  endCommand();
  return out;
}

function countNewlines(s: string): number {
  let k = 0;
  for (const ch of s) if (ch === '\n') k++;
  return k;
}
