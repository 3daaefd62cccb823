/**
 * Built-in callback: abort. Checks the signal before every batch and epoch, so an abort (from anywhere, a timer
 * included, since training yields to the event loop) stops training within one batch with an `AbortError`.
 * @internal
 * @module
 */
import { throwIfAborted } from '../../errors';
import type { FitCallback } from '../callbacks';

/** @internal */
export function abortCallback(signal: AbortSignal | undefined): FitCallback {
  const check = () => throwIfAborted(signal, 'fit');
  return { onTrainBegin: check, onEpochBegin: check, onBatchBegin: check };
}
