/**
 * Progress output on a stream, the one implementation the library's Node code, the CLI and the examples share: a
 * redrawn bar on a terminal, plain lines (at most one per 10 % or 5 s) when the stream is piped or redirected.
 * @module
 */
import type { ProgressCallback, ProgressStage } from '../types';

/** The stream progress is written on: `process.stderr`, or anything with `write` (and, for a bar, `isTTY` and `columns`). */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

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

/** The bar each stream shows right now (its last drawing), while it is unfinished. */
const openBars = new WeakMap<object, string>();
/** The terminal stream a bar was last drawn on. */
let terminalBar: NodeJS.WritableStream | undefined;

/**
 * Writes `text` and a newline on `stream`; when a progress bar of {@link progressReporter} is open on it (a
 * terminal), the bar's line is cleared first and the bar is drawn again below the text, so log lines and the bar
 * never share a line. What the CLI writes on stderr goes through here. @internal
 */
export function writeLine(stream: NodeJS.WritableStream & { isTTY?: boolean }, text: string): void {
  const bar = openBars.get(stream);
  if (bar !== undefined) {
    stream.write(`\r\x1b[K${text}\n${bar}`);
    return;
  }
  // Another terminal stream (stdout while the bar is on stderr) shares the screen: the bar steps aside too.
  const other = stream.isTTY ? terminalBar : undefined;
  const otherBar = other && openBars.get(other);
  if (other && otherBar !== undefined) other.write('\r\x1b[K');
  stream.write(`${text}\n`);
  if (other && otherBar !== undefined) other.write(otherBar);
}

/** Width of the bar, in characters. */
const BAR_WIDTH = 30;

/** `90` → `1m30s`, `3725` → `1h02m`. @internal */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * One redraw of the bar: back to the start of the line, the bar, then "erase to the end of the line" (so a shorter
 * redraw leaves nothing of a longer one), cut to the terminal's width (a wrapped line could not be redrawn in place).
 */
function drawBar(stage: string, done: number, total: number, fraction: number, timing: string, columns: number | undefined): string {
  const width = columns && columns > 0 ? Math.max(10, Math.min(BAR_WIDTH, columns - stage.length - `${total}`.length * 2 - timing.length - 6)) : BAR_WIDTH;
  const filled = Math.round(fraction * width);
  let text = `${stage} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${timing}`;
  if (columns && columns > 1 && text.length > columns - 1) text = text.slice(0, columns - 1);
  return `\r${text}\x1b[K`;
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
      openBars.delete(stream);
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
      // The ETA from the mean rate so far; the elapsed time once finished.
      const eta = finished ? ` in ${formatDuration(seconds)}` : seconds > 0.5 && done > 0 ? ` eta ${formatDuration(((total - done) * seconds) / done)}` : '';
      const drawn = drawBar(stage, done, total, fraction, `${rateText.replace(',', '')}${eta}`, stream.columns);
      stream.write(drawn);
      open = !finished;
      if (open) {
        openBars.set(stream, drawn);
        terminalBar = stream;
      }
      else {
        openBars.delete(stream);
        stream.write('\n');
      }
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
