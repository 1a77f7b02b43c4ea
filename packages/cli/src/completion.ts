/**
 * Shell completion (`diskimg completion` prints yargs' bash/zsh script, which calls
 * `diskimg --get-yargs-completions WORDS…`). The answer is computed here from the same yargs
 * command definitions the parser uses, not by yargs' own completer: that one crashes on numeric
 * choices (`--sector-size <TAB>`: "c.replace is not a function"), offers `--verify` for an option
 * only ever given as `--no-verify`, and single-letter aliases as `--q`.
 */
import type { Argv, CommandModule } from 'yargs';

export const COMPLETION_FLAG = '--get-yargs-completions';

/** One option as the command line spells it. */
export interface OptionSpec {
  /** What to type: `--os-tar`, or `--no-verify` for a boolean that defaults to true. */
  readonly flag: string;
  /** The option's own name (yargs key), to notice it was given already. */
  readonly key: string;
  readonly takesValue: boolean;
  /** Allowed values, as text (numbers too). */
  readonly choices?: readonly string[];
  readonly repeatable: boolean;
  /** Other spellings, as typed (`-q`, `--ssh-option`): never offered, but recognised as given. */
  readonly aliases: readonly string[];
}

export interface CommandSpec {
  readonly name: string;
  readonly positionals: readonly { name: string; choices?: readonly string[] }[];
  readonly options: readonly OptionSpec[];
}

interface YargsOptions {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
  array: string[];
  choices: Record<string, unknown[]>;
  default: Record<string, unknown>;
  hiddenOptions: string[];
}

/** The options yargs holds after `configure` ran (global options, or one command's builder). */
function optionsOf(y: Argv): { options: OptionSpec[]; positionals: { name: string; choices?: string[] }[] } {
  const o = (y as unknown as { getOptions(): YargsOptions }).getOptions();
  const groups = (y as unknown as { getGroups(): Record<string, string[]> }).getGroups();
  const positionalNames = new Set(groups['Positionals:'] ?? []);
  const aliases = new Set(Object.values(o.alias ?? {}).flat());
  const text = (c: unknown[] | undefined) => (Array.isArray(c) && c.length > 0 ? c.map(String) : undefined);
  const options: OptionSpec[] = [];
  for (const key of Object.keys(o.key)) {
    if (positionalNames.has(key) || aliases.has(key) || o.hiddenOptions.includes(key)) continue;
    const bool = o.boolean.includes(key);
    const choices = text(o.choices[key]);
    options.push({
      flag: bool && o.default[key] === true ? `--no-${key}` : `--${key}`,
      key,
      takesValue: !bool,
      ...(choices ? { choices } : {}),
      repeatable: o.array.includes(key),
      aliases: (o.alias?.[key] ?? []).map((a) => (a.length === 1 ? `-${a}` : `--${a}`)),
    });
  }
  const positionals = [...positionalNames].map((name) => {
    const choices = text(o.choices[name]);
    return choices ? { name, choices } : { name };
  });
  return { options, positionals };
}

/** Every command's options and positionals, from its yargs builder, plus the global options. */
export async function commandSpecs(
  commands: readonly CommandModule<any, any>[],
  globals: (y: Argv) => Argv,
): Promise<{ globals: OptionSpec[]; commands: CommandSpec[] }> {
  const { default: yargs } = await import('yargs');
  const fresh = () => globals(yargs([]).help().version(false));
  const specs: CommandSpec[] = [];
  for (const c of commands) {
    const name = String(Array.isArray(c.command) ? c.command[0] : c.command).split(' ')[0]!;
    const y = fresh();
    if (typeof c.builder === 'function') (c.builder as (y: Argv) => Argv)(y);
    else if (c.builder) y.options(c.builder as never);
    const { options, positionals } = optionsOf(y);
    specs.push({ name, options, positionals });
  }
  specs.push({ name: 'completion', options: optionsOf(fresh()).options, positionals: [] });
  return { globals: optionsOf(fresh()).options, commands: specs };
}

/**
 * The completions for `words` (the whole command line as the shell split it, program name first,
 * the word being completed last, possibly ""). Candidates are filtered by the current word's prefix.
 */
export function complete(spec: { globals: readonly OptionSpec[]; commands: readonly CommandSpec[] }, words: readonly string[]): string[] {
  const args = words.slice(1);
  const current = args.length > 0 ? args[args.length - 1]! : '';
  const before = args.slice(0, -1);
  const byPrefix = (list: readonly string[]) => list.filter((w) => w.startsWith(current));

  // Find the command and what was given so far (option values are skipped as words).
  let command: CommandSpec | undefined;
  const given = new Set<string>();
  let positionalCount = 0;
  let pending: OptionSpec | undefined; // the option whose value the next word is
  const optionsNow = () => [...(command?.options ?? spec.globals)];
  for (const w of before) {
    if (pending) {
      pending = undefined;
      continue;
    }
    if (w === '--') break;
    if (w.startsWith('-')) {
      const flag = w.split('=')[0]!;
      const o = optionsNow().find((x) => x.flag === flag || `--${x.key}` === flag || `--no-${x.key}` === flag || x.aliases.includes(flag));
      if (o) {
        given.add(o.key);
        if (o.takesValue && !w.includes('=')) pending = o;
      }
      continue;
    }
    if (!command) command = spec.commands.find((c) => c.name === w);
    else positionalCount++;
  }

  if (pending) return pending.choices ? byPrefix(pending.choices) : [];
  const eq = /^(--[\w-]+)=/.exec(current);
  if (eq) {
    const o = optionsNow().find((x) => x.flag === eq[1]);
    return o?.choices ? byPrefix(o.choices.map((c) => `${eq[1]}=${c}`)) : [];
  }
  if (current.startsWith('-')) return byPrefix(optionsNow().filter((o) => o.repeatable || !given.has(o.key)).map((o) => o.flag));
  if (!command) return byPrefix(spec.commands.map((c) => c.name));
  const positional = command.positionals[positionalCount];
  return positional?.choices ? byPrefix(positional.choices) : [];
}
