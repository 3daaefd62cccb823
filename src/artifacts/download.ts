/**
 * Download progress and abort for model files fetched over HTTP: a `fetch` wrapper that counts the bytes of each
 * weight shard as it arrives and reports them in the one {@link Progress} shape (stage `'download'`), and stops
 * at the signal (before each request, and inside it when the `fetch` honours `signal`). Browser-safe.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { throwIfAborted } from '../errors';
import type { ProgressCallback } from '../types';
import { isHttpUrl } from '../util/location';

/**
 * Arguments of {@link downloadMonitor}.
 * @internal
 */
export interface DownloadMonitorArgs {
  /** The `fetch` to wrap. Default: tfjs's platform fetch. */
  fetch?: typeof globalThis.fetch;
  /** Where reports go. Default: none. */
  onProgress?: ProgressCallback;
  /** Stops the download: checked before every request and passed to `fetch`. Default: none. */
  signal?: AbortSignal;
  /** The model's location, reported as `file`. */
  file: string;
  /** What is being done, for the abort message (e.g. `"Loading the backbone"`). */
  what: string;
}

/**
 * A download in progress, from {@link downloadMonitor}.
 * @internal
 */
export interface DownloadMonitor {
  /** A `fetch` for `tf.io.http({ fetchFunc })`: reports the bytes of every weight shard, stops at the signal. */
  readonly fetchFunc: typeof globalThis.fetch;
  /**
   * Reports the end of the load (`done === total`) unless the last report already said so; `weightBytes` is the
   * size of the loaded weights, used when nothing was reported on the way (a handler that does not fetch).
   */
  finish(weightBytes: number): void;
}

/** The byte size of a model's weight data (one buffer or several). @internal */
export function weightByteLength(artifacts: tf.io.ModelArtifacts): number {
  const data = artifacts.weightData as ArrayBuffer | ArrayBuffer[] | undefined;
  if (data == null) return 0;
  return Array.isArray(data) ? data.reduce((sum, b) => sum + b.byteLength, 0) : data.byteLength;
}

/**
 * Wraps `fetch` to report download progress in bytes (`total` grows as each shard's size becomes known: its
 * `Content-Length`, corrected by the bytes actually read) and to honour an abort signal.
 *
 * @example
 * ```ts
 * const monitor = downloadMonitor({ onProgress, signal, file: url, what: 'Loading the model' });
 * const artifacts = await tf.io.http(url, { fetchFunc: monitor.fetchFunc }).load!();
 * monitor.finish(weightByteLength(artifacts));
 * ```
 * @internal
 */
export function downloadMonitor(args: DownloadMonitorArgs): DownloadMonitor {
  const { onProgress, signal, file, what } = args;
  const base: typeof globalThis.fetch = args.fetch ?? ((input, init) => tf.env().platform.fetch(input as string, init));
  let done = 0;
  let total = 0;
  let finished = false;
  const report = (): void => {
    finished = done >= total;
    onProgress?.({ stage: 'download', done: Math.min(done, total), total, file });
  };
  const fetchFunc = (async (input: RequestInfo | URL, init?: RequestInit, options?: { isBinary?: boolean }) => {
    throwIfAborted(signal, what);
    const response = await base(input, signal ? { ...init, signal } : init);
    throwIfAborted(signal, what);
    if (!options?.isBinary || !onProgress) return response;
    const announced = Number(response.headers.get('content-length'));
    const counted = Number.isFinite(announced) && announced > 0 ? announced : 0;
    total += counted;
    const read = response.arrayBuffer.bind(response);
    Object.defineProperty(response, 'arrayBuffer', {
      configurable: true,
      value: async () => {
        const buffer = await read();
        throwIfAborted(signal, what);
        total += buffer.byteLength - counted;
        done += buffer.byteLength;
        report();
        return buffer;
      },
    });
    return response;
  }) as typeof globalThis.fetch;
  return {
    fetchFunc,
    finish(weightBytes) {
      if (finished && total > 0) return;
      if (total === 0) done = total = weightBytes;
      else done = total;
      report();
    },
  };
}

/**
 * The handler tfjs would pick for a model URL, with HTTP downloads going through `monitor` (progress, abort).
 * `undefined` when no handler accepts the URL.
 * @internal
 */
export function urlLoadHandler(url: string, monitor: DownloadMonitor): tf.io.IOHandler | undefined {
  if (isHttpUrl(url)) return tf.io.http(url, { fetchFunc: monitor.fetchFunc });
  return tf.io.getLoadHandlers(url)[0];
}
