import { InputError, UsageError } from '@diskimg/partitions/internal';

/**
 * psyopsOS trusted comments are space-separated key=value pairs
 * (`type=psyopsOS filename=… version=… kernel=… alpine=…`). Like upstream's
 * parse_trusted_comment, tokens without '=' are ignored (old signatures had
 * some); unlike it, a value keeps any further '=' characters.
 */
export function parseTrustedComment(comment: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const tok of comment.trim().split(/\s+/)) {
    const eq = tok.indexOf('=');
    if (eq > 0) fields[tok.slice(0, eq)] = tok.slice(eq + 1);
  }
  return fields;
}

/** Format key=value pairs as a trusted comment; keys and values must survive parseTrustedComment. */
export function formatTrustedComment(fields: Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]>): string {
  const list = Array.isArray(fields) ? fields : Object.entries(fields);
  const seen = new Set<string>();
  return list
    .map(([k, v]) => {
      if (!/^[^\s=]+$/.test(k)) throw new InputError(`trusted comment key ${JSON.stringify(k)}: must be non-empty, without blanks or '='`);
      if (/\s/.test(v)) throw new InputError(`trusted comment ${k}=${JSON.stringify(v)}: values cannot contain blanks`);
      if (seen.has(k)) throw new InputError(`trusted comment key ${k}: given twice`);
      seen.add(k);
      return `${k}=${v}`;
    })
    .join(' ');
}

/** Parse `KEY=VALUE` command-line assignments (e.g. repeated --trusted). */
export function parseAssignments(list: readonly string[], option = '--trusted'): Array<[string, string]> {
  return list.map((a) => {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new UsageError(`${option} ${JSON.stringify(a)}: expected KEY=VALUE`);
    return [a.slice(0, eq), a.slice(eq + 1)];
  });
}
