/**
 * The arguments of a subcommand (`e2ee-chat key|pins|history|admin ...`), parsed one way for all of them:
 * node:util parseArgs, strict (an unknown or mistyped option is a usage error), positionals allowed (the
 * verb and its operands), and `-h`/`--help` added to every command's options. A usage error is written
 * once to stderr as `e2ee-chat NAME: WHAT` followed by the command's usage; help goes to stdout.
 */
import { parseArgs } from 'node:util';

/** A command's options: each a string or a flag, given at most once. */
type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Where a command writes (the process's streams, or a test's). */
export interface Output {
  out(s: string): void;
  err(s: string): void;
}

export const STD: Output = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** Exit statuses every subcommand shares. */
export const CMD_EXIT = { OK: 0, USAGE: 2 } as const;

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

type Values<O extends OptionSpec> = {
  [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : string;
};

export interface Parsed<O extends OptionSpec> {
  values: Values<O>;
  positionals: string[];
}

/**
 * Parses `argv` for the command `name`. Returns the options and positionals, or the exit status when
 * nothing is left to do: 0 after printing `usage` for --help, 2 after a usage error (the error, then
 * `usage`, on stderr).
 */
export function parseCommand<const O extends OptionSpec>(name: string, argv: string[], options: O, usage: string, io: Output = STD): Parsed<O> | number {
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: true, options: { ...options, ...HELP } });
  } catch (e) {
    io.err(`e2ee-chat ${name}: ${(e as Error).message}\n${usage}\n`);
    return CMD_EXIT.USAGE;
  }
  if (parsed.values['help'] === true) {
    io.out(usage + '\n');
    return CMD_EXIT.OK;
  }
  return { values: parsed.values as Values<O>, positionals: parsed.positionals };
}

/** Writes `e2ee-chat NAME: MSG` to stderr and returns `code` (default 2, usage). */
export function failer(name: string, io: Output = STD): (msg: string, code?: number) => number {
  return (msg, code = CMD_EXIT.USAGE) => {
    io.err(`e2ee-chat ${name}: ${msg}\n`);
    return code;
  };
}
