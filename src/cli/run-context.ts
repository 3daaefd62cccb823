/**
 * Sets up a command's run: backend, logging to stderr (so `--json` keeps stdout for the document), progress.
 * @module
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { env } from '../env';
import { TransferError } from '../errors';
import type { ProgressCallback } from '../types';
import { selectBackend, type CliBackend } from './backend';
import { line, type Io } from './common';
import { progressReporter } from '../node/progress';

/** What a command gets from {@link startRun}. */
export interface RunContext {
  backend: CliBackend;
  /** Progress callback (no-op when quiet). */
  progress: ProgressCallback;
  /** A notice on stderr (suppressed when quiet). */
  note(message: string): void;
}

/** Sends the library's log lines to stderr, or nowhere when `quiet` (stdout stays for results and `--json`). */
export function routeLogs(io: Io, quiet: boolean | undefined): void {
  env.verbose = !quiet;
  env.logger = (message: string) => line(io.err, message);
}

/** Options of {@link startRun}. */
export interface StartRunArgs {
  /** The `--backend` value. Default: the first of tensorflow, wasm, cpu that starts. */
  backend?: string;
  /** `--quiet`: no log lines, notices or progress. Default false. */
  quiet?: boolean;
  /** The command, for usage errors. */
  command: string;
}

/**
 * Routes the library's log lines to stderr (or nowhere when `quiet`), then imports and activates the backend.
 */
export async function startRun(io: Io, options: StartRunArgs): Promise<RunContext> {
  routeLogs(io, options.quiet);
  const backend = await selectBackend(options.backend, options.command);
  const note = (message: string) => {
    if (!options.quiet) line(io.err, message);
  };
  note(`tfjs-transfer: backend ${backend}`);
  return { backend, progress: progressReporter(io.err, { quiet: options.quiet }), note };
}

/** Checks that `dir` is an existing folder, with a clear message otherwise. */
export async function requireFolder(dir: string, what: string): Promise<string> {
  const path = resolve(dir);
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TransferError(
      'INVALID_ARGUMENT',
      `${what} "${dir}" ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(e)})`}. ` +
        `Pass a folder with one subfolder per class (e.g. photos/cats/*.jpg, photos/dogs/*.jpg).`,
      { cause: e },
    );
  }
  if (!s.isDirectory()) {
    throw new TransferError('INVALID_ARGUMENT', `${what} "${dir}" is a file, not a folder. Pass a folder with one subfolder per class.`);
  }
  return path;
}
