/**
 * Built-in callback: the numerical guard. A batch whose loss or gradient norm is NaN or infinite was not applied
 * (the epoch loop applies only finite steps); the guard then restores the best epoch's weights (or those from
 * before the call) and throws `NUMERICAL_FAULT`. It also warns once of exploding gradients: a norm above
 * `gradientNormWarning`, or 100x the running median of the last 50 batches.
 * @internal
 * @module
 */
import { log } from '../../env';
import { TransferError } from '../../errors';
import type { BatchLogs, FitCallback } from '../callbacks';
import { restore, type FitState } from '../fit-state';

/** @internal */
export function numericalGuard(state: FitState): FitCallback {
  const { args, history } = state;
  const recentNorms: number[] = [];
  let epoch = 0;
  let inEpoch = 0;
  const rate = () => (args.givenOptimizer ? '' : ` (now ${args.learningRate})`);
  const fault = (logs: BatchLogs): never => {
    restore(state.vars, state.bestWeights ?? state.startWeights);
    throw new TransferError(
      'NUMERICAL_FAULT',
      `fit: the ${Number.isFinite(logs.loss) ? `gradient norm became ${logs.gradientNorm}` : `loss became ${logs.loss}`} at epoch ${epoch + 1}, batch ${inEpoch}; training stopped` +
        ` and the ${state.bestWeights ? `weights of the best epoch (${history.bestEpoch + 1})` : 'weights from before this fit'} were restored. ` +
        `Lower the learning rate${rate()} or check the inputs for NaN.`,
    );
  };
  return {
    onEpochBegin(e) {
      epoch = e;
      inEpoch = 0;
    },
    onBatchEnd(_batch, logs) {
      inEpoch++;
      const norm = logs.gradientNorm;
      if (!Number.isFinite(logs.loss) || !Number.isFinite(norm)) fault(logs);
      if (history.warnings.length === 0) {
        const sorted = [...recentNorms].sort((a, b) => a - b);
        const median = sorted.length ? sorted[sorted.length >> 1]! : 0;
        const jump = recentNorms.length >= 5 && median > 0 && norm > 100 * median;
        if (norm > args.gradientNormWarning || jump) {
          const warning =
            `tfjs-transfer: exploding gradients? The gradient norm reached ${norm.toPrecision(3)} at epoch ${epoch + 1}, batch ${inEpoch} ` +
            `(${jump ? `${(norm / median).toFixed(0)}x the running median ${median.toPrecision(3)}` : `above gradientNormWarning ${args.gradientNormWarning}`}). ` +
            `Lower the learning rate${rate()} or check the inputs and labels.`;
          history.warnings.push(warning);
          log(warning);
        }
      }
      recentNorms.push(norm);
      if (recentNorms.length > 50) recentNorms.shift();
    },
  };
}
