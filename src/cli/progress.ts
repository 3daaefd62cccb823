/**
 * Progress output of the CLI: a redrawn bar on a terminal, plain lines (at most one per 10 % or 5 s) when stderr
 * is piped or redirected, nothing with `--quiet`.
 * @module
 */
import type { ProgressCallback } from '../types';

/** Options of {@link progressReporter}. */
export interface ProgressReporterOptions {
  /** Draw a redrawn bar (a terminal) instead of plain lines. Default: `stream.isTTY`. */
  bar?: boolean;
  /** Print nothing. */
  quiet?: boolean;
}

/**
 * A {@link ProgressCallback} that reports on `stream`. Each new `stage` starts a new bar or series of lines.
 *
 * @example
 * ```ts
 * await fit(model, data, { onProgress: progressReporter(process.stderr) });
 * ```
 */
export function progressReporter(stream: NodeJS.WritableStream & { isTTY?: boolean }, options: ProgressReporterOptions = {}): ProgressCallback {
  const bar = options.bar ?? Boolean(stream.isTTY);
  let stage = '';
  let started = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  let open = false;
  let lastDone = 0;
  let lastTotal = -1;
  return ({ done, total, stage: s }) => {
    if (options.quiet) return;
    const now = Date.now();
    // A new stage, or the same stage starting over (e.g. a second extraction), starts a new report.
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
      const width = 30;
      const filled = Math.round(fraction * width);
      stream.write(`\r${stage} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${rateText.replace(',', '')} `);
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
