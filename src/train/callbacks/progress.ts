/**
 * Built-in callback: progress and logging. With `verbose`, prints the untrained head's validation metrics before
 * the first epoch and one line per epoch (Keras' format); with `onProgress`, reports `stage: 'train'` after each
 * epoch.
 * @internal
 * @module
 */
import type { FitCallback } from '../callbacks';
import type { FitState } from '../fit-state';

/** @internal */
export function progressCallback(state: FitState, say: (message: string) => void): FitCallback {
  const { args, history } = state;
  let started = Date.now();
  let first = true;
  return {
    onEpochBegin() {
      started = Date.now();
      if (first && history.initial && history.resumedEpochs === 0) {
        say(`tfjs-transfer: before training: val_loss ${history.initial.valLoss.toFixed(4)} - val_accuracy ${history.initial.valAccuracy.toFixed(4)}`);
      }
      first = false;
    },
    onEpochEnd(epoch, logs) {
      say(
        `epoch ${epoch + 1}/${args.epochs} - loss ${logs.loss.toFixed(4)} - accuracy ${logs.accuracy.toFixed(4)}` +
          (logs.valLoss !== undefined ? ` - val_loss ${logs.valLoss.toFixed(4)} - val_accuracy ${logs.valAccuracy!.toFixed(4)}` : '') +
          ` - ${((Date.now() - started) / 1000).toFixed(2)}s`,
      );
      args.onProgress?.({ stage: 'train', done: epoch + 1, total: args.epochs });
    },
  };
}
