/**
 * The `tfjs-transfer` command line: train, evaluate, predict, examine, export, info.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage error.
 * @module
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import '../node/index';
import { EXIT, EXIT_CODES_HELP, describeError, errorDocument, line, processIo, UsageError, type Command, type Io } from './common';
import { evaluateCommand } from './evaluate';
import { examineCommand } from './examine';
import { exportCommand } from './export';
import { infoCommand } from './info';
import { predictCommand } from './predict';
import { trainCommand } from './train';
import { VERSION } from '../util/version';

/** Every command, in help order. */
export const COMMANDS: readonly Command[] = [trainCommand, evaluateCommand, predictCommand, examineCommand, exportCommand, infoCommand];

/** Top-level help. */
export const MAIN_HELP = `Usage: tfjs-transfer <command> [options]

Transfer learning for TensorFlow.js from the command line.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Run 'tfjs-transfer <command> --help' for a command's options.

  tfjs-transfer train photos --out my-model          # photos/<class>/*.jpg
  tfjs-transfer evaluate my-model photos-test --json
  tfjs-transfer predict my-model cat.jpg dog.jpg
  tfjs-transfer examine photos
  tfjs-transfer export my-model --format onnx --out my-model.onnx
  tfjs-transfer info my-model

Options:
  -h, --help     show this help
  -v, --version  print the version

Logs and progress go to stderr; results (and --json documents) to stdout. Progress is a bar on a terminal and
plain lines when piped.

${EXIT_CODES_HELP}`;



/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code. Never calls `process.exit`.
 *
 * @example
 * ```ts
 * process.exitCode = await main(['predict', 'my-model', 'cat.jpg']);
 * ```
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const target = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    line(io.out, target ? target.help : MAIN_HELP);
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '-v' || name === '--version') {
    line(io.out, VERSION);
    return EXIT.OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) {
      throw new UsageError(
        name.startsWith('-') ? `unknown option "${name}" (options come after the command).` : `unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(', ')}.`,
      );
    }
    return await command.run(rest, io);
  } catch (e) {
    const { message, code } = describeError(e);
    line(io.err, message);
    // --json promises one JSON document on stdout, failures included.
    if (wantsJson(rest)) line(io.out, JSON.stringify(errorDocument(e, code)));
    if (process.env.TFJS_TRANSFER_DEBUG && e instanceof Error && e.stack) line(io.err, e.stack);
    return code;
  }
}

/** Whether the command line asks for `--json` (before a `--` that ends the options). */
function wantsJson(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

function isEntry(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = EXIT.FAILURE;
    },
  );
}
