import yargs from 'yargs';
import { DiskimgError, UsageError } from '@diskimg/partitions';
import { commands } from './commands/index.js';

/** Exit codes: 0 ok, 1 failure, 2 usage. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const parser = yargs(joinDashValues(argv))
    .scriptName('diskimg')
    .usage('$0 <command> [options]')
    .option('json', { type: 'boolean', describe: 'print one JSON document on stdout', global: true })
    .strict()
    .demandCommand(1, 'name a command (see --help)')
    .recommendCommands()
    .help()
    .version(false)
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    });
  for (const c of commands) parser.command(c);
  try {
    await parser.parseAsync();
    // A command may end "not ok" without an error (status: 1 when the slot is not confirmed).
    if (typeof process.exitCode === 'number') code = process.exitCode;
  } catch (err) {
    code = reportError(err);
  }
  return code;
}

/**
 * `--os-tar -` means standard input, but yargs reads a lone "-" as a
 * positional: hand it over as `--os-tar=-`.
 */
function joinDashValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (/^--[a-z][a-z-]*$/.test(a) && argv[i + 1] === '-') {
      out.push(`${a}=-`);
      i++;
    } else out.push(a);
  }
  return out;
}

function reportError(err: unknown): number {
  if (err instanceof UsageError) {
    // yargs messages can span lines ("Invalid values:\n  Argument: …"): keep errors to one line.
    process.stderr.write(`diskimg: ${err.message.replace(/\s*\n\s*/g, ' ').trim()} (see diskimg --help)\n`);
    return 2;
  }
  if (err instanceof DiskimgError) {
    process.stderr.write(`diskimg: ${err.message}\n`);
    return 1;
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && e.message) {
    // System errors (EACCES, ENOSPC, …) are the user's to fix: one line, no stack.
    process.stderr.write(`diskimg: ${e.message}\n`);
    return 1;
  }
  process.stderr.write(`diskimg: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}
