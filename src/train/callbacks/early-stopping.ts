/**
 * Built-in callback: the best epoch and early stopping. Always installed, since `history.bestEpoch` is kept
 * either way; with `earlyStopping` it also stops training (through `model.stopTraining`) once the monitored
 * metric has not improved for `patience` epochs, and keeps the best epoch's weights; {@link restoreBestWeights}
 * puts them back when the epochs end (Keras' `EarlyStopping(restore_best_weights=True)`), before anything is fitted
 * on the final weights (the unknown detector) and before any `onTrainEnd`.
 * @internal
 * @module
 */
import { TransferError } from '../../errors';
import type { FitCallback } from '../callbacks';
import { disposeSnapshot, restore, snapshot, type FitState } from '../fit-state';

/** @internal */
export function earlyStopping(state: FitState, say: (message: string) => void): FitCallback {
  const { args, history, monitor } = state;
  const es = args.earlyStopping;
  const higherIsBetter = monitor === 'valAccuracy' || monitor === 'accuracy';
  const restoreBest = es?.restoreBestWeights ?? false;
  const minDelta = es?.minDelta ?? 0;
  return {
    onEpochEnd(epoch, logs) {
      const value = logs[monitor];
      if (value === undefined) return;
      const best = state.best;
      const improved = best === undefined || (higherIsBetter ? value > best + minDelta : value < best - minDelta);
      if (improved) {
        state.best = value;
        history.bestEpoch = epoch;
        state.sinceBest = 0;
        if (restoreBest) {
          disposeSnapshot(state.bestWeights);
          state.bestWeights = snapshot(state.vars);
        }
        return;
      }
      if (!es) return;
      state.sinceBest++;
      // Out of patience on the last epoch is not an early stop: every epoch asked for ran.
      if (state.sinceBest >= es.patience && epoch + 1 < args.epochs) {
        history.stoppedEarly = true;
        state.model.stopTraining = true;
        say(`tfjs-transfer: early stopping after epoch ${epoch + 1} of ${args.epochs}; best ${monitor} ${state.best!.toFixed(4)} at epoch ${history.bestEpoch + 1}.`);
      }
    },
  };
}

/**
 * Puts the best epoch's weights back (when early stopping keeps them and the best epoch was not the last). Runs
 * as soon as the epochs end: the unknown detector of a fine-tuned backbone is fitted on the features of the
 * weights the model ends with, so they must be in place first. @internal
 */
export function restoreBestWeights(state: FitState): void {
  if (state.args.earlyStopping?.restoreBestWeights && state.bestWeights && state.history.bestEpoch !== state.history.epochs - 1) restore(state.vars, state.bestWeights);
}

/** The metric compared across epochs; throws when early stopping watches a validation metric without validation data. @internal */
export function monitorOf(es: FitState['args']['earlyStopping'], hasValidation: boolean): FitState['monitor'] {
  const monitor = es?.monitor ?? (hasValidation ? 'valLoss' : 'loss');
  if (es && monitor.startsWith('val') && !hasValidation) {
    throw new TransferError('INVALID_ARGUMENT', `fit: earlyStopping monitors ${monitor} but there is no validation data; give validationData or validationSplit, or monitor 'loss'.`);
  }
  return monitor;
}
