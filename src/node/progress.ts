/**
 * Progress output on a stream, the one implementation the library's Node code, the CLI and the examples share: a
 * redrawn bar on a terminal, plain lines (at most one per 10 % or 5 s) when the stream is piped or redirected.
 * @module
 */
import type { ProgressCallback, ProgressStage } from '../types';

/** The stream progress is written on: `process.stderr`, or anything with `write` (and, for a bar, `isTTY`). */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean };

/**
 * Options of {@link progressReporter}.
 * @category Node
 */
export interface ProgressReporterArgs {
  /**
   * Draw a redrawn bar (for a terminal) instead of plain lines.
   * @defaultValue `stream.isTTY`
   */
  bar?: boolean;
  /**
   * Print nothing.
   * @defaultValue `false`
   */
  quiet?: boolean;
}

/** Width of the bar, in characters. */
const BAR_WIDTH = 30;

function drawBar(stage: string, done: number, total: number, fraction: number, rateText: string): string {
  const filled = Math.round(fraction * BAR_WIDTH);
  return `\r${stage} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${total}${rateText.replace(',', '')} `;
}

/**
 * A {@link ProgressCallback} that reports on `stream`. Each new `stage` (or the same stage starting over) starts a
 * new bar or series of lines.
 *
 * @category Node
 * @example
 * ```ts
 * await fit(model, data, { onProgress: progressReporter(process.stderr) });
 * ```
 */
export function progressReporter(stream: ProgressStream, args: ProgressReporterArgs = {}): ProgressCallback {
  const bar = args.bar ?? Boolean(stream.isTTY);
  let stage = '';
  let started = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  let open = false;
  let lastDone = 0;
  let lastTotal = -1;
  return ({ done, total, stage: s }) => {
    if (args.quiet) return;
    const now = Date.now();
    const restarted = s !== stage || total !== lastTotal || done < lastDone;
    lastDone = done;
    lastTotal = total;
    if (restarted) {
      if (open) stream.write('\n');
      open = false;
      stage = s;
      started = now;
      lastDraw = 0;
      lastDecile = -1;
    }
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const seconds = (now - started) / 1000;
    const finished = done >= total;
    // The first report of a stage comes after its first unit of work: no rate until time has passed.
    const rateText = seconds > 0.5 ? `, ${(done / seconds).toFixed(0)}/s` : '';
    if (bar) {
      if (!finished && now - lastDraw < 100) return;
      lastDraw = now;
      stream.write(drawBar(stage, done, total, fraction, rateText));
      open = !finished;
      if (finished) stream.write('\n');
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (finished || decile > lastDecile || now - lastDraw >= 5000) {
      lastDecile = decile;
      lastDraw = now;
      stream.write(`${stage}: ${done}/${total} (${Math.round(fraction * 100)}%${rateText})\n`);
    }
  };
}

/**
 * Options of {@link createProgress}.
 * @internal
 */
export interface ProgressArgs {
  /** Called as work advances (at most about 10 times a second, plus at the end). @defaultValue none */
  onProgress?: ProgressCallback;
  /** Also draw a bar on `stream` (through {@link progressReporter}). @defaultValue `false` */
  bar?: boolean;
  /** Stream the bar is drawn on. @defaultValue `process.stderr` */
  stream?: ProgressStream;
}

/**
 * A running count of work done; see {@link createProgress}.
 * @internal
 */
export interface ProgressCounter {
  /** Adds `n` (default 1) done units. */
  tick(n?: number): void;
  /** Reports the final state. */
  finish(): void;
}

/**
 * Counts `total` units of work named `stage` and reports them, throttled to about 10 a second, to `onProgress`
 * and, with `bar`, to a {@link progressReporter} on `stream`.
 *
 * @internal
 * @example
 * ```ts
 * const progress = createProgress('scan', files.length, { onProgress: (p) => console.log(p.done) });
 * for (const f of files) { await scan(f); progress.tick(); }
 * progress.finish();
 * ```
 */
export function createProgress(stage: ProgressStage, total: number, args: ProgressArgs = {}): ProgressCounter {
  const sinks = [args.onProgress, args.bar ? progressReporter(args.stream ?? process.stderr, { bar: true }) : undefined].filter(
    (f): f is ProgressCallback => f !== undefined,
  );
  let done = 0;
  let last = 0;
  let reported = -1;
  const report = (force: boolean): void => {
    const now = Date.now();
    if ((!force && now - last < 100) || reported === done) return;
    last = now;
    reported = done;
    for (const sink of sinks) sink({ done, total, stage });
  };
  return {
    tick(n = 1) {
      done += n;
      report(done >= total);
    },
    finish() {
      report(true);
    },
  };
}
