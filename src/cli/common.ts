/**
 * Pieces shared by the CLI's commands: exit codes, usage errors, option parsing, output streams.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TransferError } from '../errors';
import { writeLine } from '../node/progress';

/** Exit codes the CLI guarantees (documented in every `--help`). */
export const EXIT = {
  /** Success. */
  OK: 0,
  /** The command ran and failed: unreadable model or images, a model trained on other classes, no network, ... */
  FAILURE: 1,
  /** The command line was wrong: unknown command or option, missing or malformed argument. */
  USAGE: 2,
} as const;

/** Footer of every `--help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  runtime failure (missing folder, unreadable model or image, model trained on other classes, offline, ...)
  2  usage error (unknown command or option, missing or malformed argument)
  With --json a failure still prints one document on stdout: { "error": { "code", "message", "exitCode" } }.`;

/** Names of image files, as `imageFolder` reads them. */
export const IMAGE_FILE = /\.(jpe?g|jfif|png|webp|gif|bmp|tiff?|heic|heif|avif)$/i;

/** A mistake on the command line: printed with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Where the CLI writes: results to `out` (stdout), everything else to `err` (stderr). Replaceable in tests. */
export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The process's own streams. */
export const processIo: Io = { out: process.stdout, err: process.stderr };

/** Writes one line to a stream. */
export function line(stream: NodeJS.WritableStream, text = ''): void {
  writeLine(stream, text); // clears and redraws an open progress bar around the line (node/progress.ts)
}

/** One command of the CLI. */
export interface Command {
  name: string;
  summary: string;
  help: string;
  run(argv: string[], io: Io): Promise<number>;
}

/** The values `parse` returns for `options`. */
export type ParsedValues<O extends NonNullable<ParseArgsConfig['options']>> = ReturnType<typeof parse<O>>['values'];

/** What {@link defineCommand} needs: the command's name, texts, options, and its body. */
export interface CommandSpec<O extends NonNullable<ParseArgsConfig['options']>> {
  name: string;
  summary: string;
  help: string;
  /** Its `parseArgs` options; a `help` option prints `help`. */
  options: O;
  /** Runs the command on the parsed command line; returns the exit code. */
  run(values: ParsedValues<O>, positionals: string[], io: Io): Promise<number>;
}

/**
 * A {@link Command} that parses its options strictly (mistakes become {@link UsageError}s of the command) and
 * prints its help for `--help`, before running `spec.run`.
 */
export function defineCommand<O extends NonNullable<ParseArgsConfig['options']>>(spec: CommandSpec<O>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: spec.help,
    async run(argv, io) {
      const { values, positionals } = parse(spec.name, argv, spec.options);
      if ((values as { help?: unknown }).help) {
        line(io.out, spec.help);
        return EXIT.OK;
      }
      return spec.run(values, positionals, io);
    },
  };
}

/** Options every command takes. */
export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  backend: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
} as const satisfies ParseArgsConfig['options'];

/** Help text of the common options. */
export const COMMON_HELP = `  --backend <name>   tensorflow | wasm | cpu (default: tensorflow if @tensorflow/tfjs-node is installed,
                     else wasm, else cpu)
  -q, --quiet        no progress output on stderr
  -h, --help         show this help`;

/** `parseArgs` with strict checking, turning its errors into {@link UsageError}s of `command`. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: O,
): { values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true; args: string[] }>>['values']; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values, positionals: r.positionals };
  } catch (e) {
    const msg = e instanceof Error ? e.message.replace(/\. To specify a positional.*$/s, '.') : String(e);
    throw new UsageError(msg, command);
  }
}

/** The one folder a command takes (`examine <dir>`, `train <dir>`), or a usage error. */
export function oneFolder(command: string, positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError(`${command} takes one folder, got ${positionals.length ? positionals.join(' ') : 'none'}.`, command);
  return positionals[0]!;
}

/** A positive integer option, or a usage error. */
export function intOption(command: string, name: string, value: string | undefined, min = 1, max = 1e6): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${value}".`, command);
  }
  return n;
}

/** A string option that must be one of `choices` (`undefined` when not given), or a usage error. */
export function choiceOption<T extends string>(command: string, name: string, value: string | undefined, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got "${value}".`, command);
  return value as T;
}

/** `--tta <none|flip>` of `predict` and `evaluate`: its help line. */
export const TTA_HELP = `  --tta <none|flip>   test-time augmentation: flip also scores each image's mirror image and averages the two
                      (twice the time; default none)`;

/** A positive number option, or a usage error. */
export function numberOption(command: string, name: string, value: string | undefined, min = 0, max = Infinity): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= min || n > max) {
    throw new UsageError(`--${name} must be a number above ${min}${max < Infinity ? ` and at most ${max}` : ''}, got "${value}".`, command);
  }
  return n;
}

/** The message and exit code of an error thrown by a command. */
export function describeError(e: unknown): { message: string; code: number } {
  if (e instanceof UsageError) {
    const help = e.command ? `tfjs-transfer ${e.command} --help` : 'tfjs-transfer --help';
    return { message: `error: ${e.message}\nSee '${help}'.`, code: EXIT.USAGE };
  }
  if (e instanceof TransferError) return { message: `error: ${e.message}`, code: EXIT.FAILURE };
  if (e instanceof Error) return { message: `error: ${e.message}`, code: EXIT.FAILURE };
  return { message: `error: ${String(e)}`, code: EXIT.FAILURE };
}

/** The `--json` document of a failed command: `{ error: { code, message, exitCode } }`. */
export interface ErrorDocument {
  error: {
    /** `USAGE` for a usage error, else the `TransferError` code (`EMPTY_DATA`, `NETWORK`, ...), a Node error code, or `ERROR`. */
    code: string;
    /** What went wrong and what to do, as on stderr (without the `error: ` prefix). */
    message: string;
    /** The exit code (1 runtime failure, 2 usage error). */
    exitCode: number;
  };
}

/** The {@link ErrorDocument} of `e`, which made the command exit with `exitCode`. */
export function errorDocument(e: unknown, exitCode: number): ErrorDocument {
  const message = describeError(e).message.replace(/^error: /, '');
  let code = 'ERROR';
  if (e instanceof UsageError) code = 'USAGE';
  else if (e instanceof TransferError) code = e.code;
  else if (e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string') code = (e as NodeJS.ErrnoException).code!;
  return { error: { code, message, exitCode } };
}
