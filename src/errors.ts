/**
 * Errors thrown by tfjs-transfer. Every error says what was wrong, where, and what to do about it.
 * @module
 */

/**
 * Machine-readable reason of a {@link TransferError}.
 * @category Errors
 */
export type TransferErrorCode =
  | 'INVALID_ARGUMENT'
  | 'UNKNOWN_BACKBONE'
  | 'LAYER_NOT_FOUND'
  | 'SHAPE_MISMATCH'
  | 'CLASS_MISMATCH'
  | 'EMPTY_DATA'
  | 'MODEL_LOAD_FAILED'
  | 'MODEL_INVALID'
  | 'SAVE_FAILED'
  | 'NOT_SUPPORTED'
  | 'NETWORK'
  | 'IMAGE_DECODE_FAILED'
  | 'NUMERICAL_FAULT'
  | 'ABORTED'
  | 'NODE_ONLY'
  | 'ACCURACY_DROP'
  | 'BACKBONE_MISMATCH'
  /** A Web Worker running the library failed: an error there that was not a `TransferError`, or the worker died or was terminated. */
  | 'WORKER_FAILED';

/**
 * The one error class of the library. `code` is stable across versions; `message` is for people and names the
 * argument or file concerned and what to do.
 *
 * @example
 * ```ts
 * try { await loadBackbone('mobilenet_v9'); }
 * catch (e) { if (e instanceof TransferError && e.code === 'UNKNOWN_BACKBONE') console.log(e.message); }
 * ```
 * @category Errors
 */
export class TransferError extends Error {
  /** Machine-readable reason. */
  readonly code: TransferErrorCode;

  constructor(code: TransferErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = code === 'ABORTED' ? 'AbortError' : 'TransferError';
    this.code = code;
  }
}

/** Throws a `TransferError('INVALID_ARGUMENT')` unless `condition` holds. @internal */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new TransferError('INVALID_ARGUMENT', message);
}

/** Throws an `AbortError` if `signal` was aborted. @internal */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) {
    throw new TransferError('ABORTED', `${what} was aborted${signal.reason ? `: ${String(signal.reason)}` : ''}.`, {
      cause: signal.reason,
    });
  }
}
