/**
 * Built-in callback: abort. Checks the signal (and whether the model was disposed meanwhile) before every batch and
 * epoch, so an abort (from anywhere, a timer
 * included, since training yields to the event loop) stops training within one batch with an `AbortError`.
 * @internal
 * @module
 */
import { TransferError, throwIfAborted } from '../../errors';
import type { TransferModel } from '../../transfer-model';
import type { FitCallback } from '../callbacks';

/** @internal */
export function abortCallback(signal: AbortSignal | undefined, model: TransferModel): FitCallback {
  const check = () => {
    throwIfAborted(signal, 'fit');
    if (model.isDisposePending) throw disposedWhileTraining();
  };
  return { onTrainBegin: check, onEpochBegin: check, onBatchBegin: check };
}

/** The error of a `fit` whose model was disposed while it trained. @internal */
export function disposedWhileTraining(): TransferError {
  return new TransferError(
    'ABORTED',
    'fit: the model was disposed while it was training; training stopped before the next batch and the model was freed. ' +
      'Await fit (or abort it with its signal) before calling dispose().',
  );
}
