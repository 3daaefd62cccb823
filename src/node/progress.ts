/**
 * Progress reporting for long loads: a callback, and a progress bar on stderr when it is a terminal.
 * @module
 */
import type { ProgressCallback, ProgressStage } from '../types';

/** Options for {@link createProgress}. */
export interface ProgressOptions {
  /** Called as work advances (at most about 10 times a second, plus at the end). Default: none. */
  onProgress?: ProgressCallback;
  /** Draw a progress bar on stderr. Default: `true` when stderr is a terminal (TTY), else `false`. */
  bar?: boolean;
  /** Stream the bar is drawn on. Default `process.stderr`. */
  stream?: NodeJS.WriteStream;
}

/** A running progress report; see {@link createProgress}. */
export interface Progress {
  /** Adds `n` (default 1) done units. */
  tick(n?: number): void;
  /** Reports the final state and ends the bar's line. */
  finish(): void;
}

/**
 * Starts reporting progress of `total` units of work named `stage`.
 *
 * @example
 * ```ts
 * const progress = createProgress('scanning', files.length, { onProgress: (p) => console.log(p.done) });
 * for (const f of files) { await scan(f); progress.tick(); }
 * progress.finish();
 * ```
 */
export function createProgress(stage: ProgressStage, total: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const bar = options.bar ?? Boolean(stream.isTTY);
  const started = Date.now();
  let done = 0;
  let last = 0;
  let reported = -1;
  const report = (force: boolean): void => {
    const now = Date.now();
    if ((!force && now - last < 100) || reported === done) return;
    last = now;
    reported = done;
    options.onProgress?.({ done, total, stage });
    if (bar) {
      const width = 30;
      const filled = total > 0 ? Math.round((done / total) * width) : width;
      const rate = done / Math.max(0.001, (now - started) / 1000);
      stream.write(
        `\r${stage} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${rate.toFixed(0)}/s `,
      );
    }
  };
  return {
    tick(n = 1) {
      done += n;
      report(done >= total);
    },
    finish() {
      report(true);
      if (bar && total > 0) stream.write('\n');
    },
  };
}
