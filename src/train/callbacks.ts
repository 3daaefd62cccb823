/**
 * The callback interface of {@link fit}: six hooks in tfjs-layers' order (train begin, epoch begin, batch begin,
 * batch end, epoch end, train end), each may be async (training waits for it). Built-in behaviours (abort, numerical
 * guard, progress and logging, early stopping, checkpoints) are callbacks on this same interface.
 *
 * To stop training from a callback, set `model.stopTraining = true` (as with tfjs' `model.stopTraining`): the
 * current batch ends, then the epoch ends (its logs cover the batches run) and `fit` returns normally.
 * @module
 */
import type { FitHistory } from './history';

/** Metrics of one epoch, as passed to callbacks and kept in {@link FitHistory}. @category Step 4: Train */
export interface EpochLogs {
  /** Mean training loss (cross-entropy, plus regularisation). */
  loss: number;
  /** Training accuracy. */
  accuracy: number;
  /** Validation loss, when there is validation data. */
  valLoss?: number;
  /** Validation accuracy, when there is validation data. */
  valAccuracy?: number;
}

/** What `onBatchBegin` receives. @category Step 4: Train */
export interface BatchBeginLogs {
  /** Images in the batch. */
  size: number;
}

/** What `onBatchEnd` receives. @category Step 4: Train */
export interface BatchLogs {
  /** Loss of the batch. */
  loss: number;
  /** Accuracy of the batch. */
  accuracy: number;
  /** Images in the batch. */
  size: number;
  /** Global L2 norm of the batch's gradients, before the update (see `FitArgs.gradientNormWarning`). */
  gradientNorm: number;
}

/**
 * A callback of {@link fit}. Every hook is optional and may return a Promise, which training awaits. Batches are
 * numbered from 0 across the whole run; epochs from 0.
 *
 * @category Step 4: Train
 * @example
 * ```ts
 * const stopAtNinety: FitCallback = {
 *   onEpochEnd: (epoch, logs) => { if (logs.accuracy > 0.9) model.stopTraining = true; },
 * };
 * await fit(model, data, { epochs: 50, callbacks: [stopAtNinety, { onTrainEnd: (h) => console.log(h.epochs) }] });
 * ```
 */
export interface FitCallback {
  /** Before the first epoch, after feature extraction (and after a checkpoint was resumed). */
  onTrainBegin?: () => void | Promise<void>;
  /** Before each epoch. */
  onEpochBegin?: (epoch: number) => void | Promise<void>;
  /** Before each batch. */
  onBatchBegin?: (batch: number, logs: BatchBeginLogs) => void | Promise<void>;
  /** After each batch, with its loss, accuracy, size and gradient norm. */
  onBatchEnd?: (batch: number, logs: BatchLogs) => void | Promise<void>;
  /** After each epoch, with its metrics. */
  onEpochEnd?: (epoch: number, logs: EpochLogs) => void | Promise<void>;
  /** After training, with the history. */
  onTrainEnd?: (history: FitHistory) => void | Promise<void>;
}

/** Names of the six hooks, in the order they run. @internal */
export const HOOKS = ['onTrainBegin', 'onEpochBegin', 'onBatchBegin', 'onBatchEnd', 'onEpochEnd', 'onTrainEnd'] as const;

/** Callbacks called in list order, hook by hook. @internal */
export class CallbackList {
  private readonly list: readonly FitCallback[];

  constructor(list: readonly FitCallback[]) {
    this.list = list;
  }

  async onTrainBegin(): Promise<void> {
    for (const c of this.list) await c.onTrainBegin?.();
  }

  async onEpochBegin(epoch: number): Promise<void> {
    for (const c of this.list) await c.onEpochBegin?.(epoch);
  }

  async onBatchBegin(batch: number, logs: BatchBeginLogs): Promise<void> {
    for (const c of this.list) await c.onBatchBegin?.(batch, logs);
  }

  async onBatchEnd(batch: number, logs: BatchLogs): Promise<void> {
    for (const c of this.list) await c.onBatchEnd?.(batch, logs);
  }

  async onEpochEnd(epoch: number, logs: EpochLogs): Promise<void> {
    for (const c of this.list) await c.onEpochEnd?.(epoch, logs);
  }

  async onTrainEnd(history: FitHistory): Promise<void> {
    for (const c of this.list) await c.onTrainEnd?.(history);
  }
}

/** `callbacks` as a list: one object, a list, or nothing. @internal */
export function callbackList(callbacks: FitCallback | readonly FitCallback[] | undefined | null): FitCallback[] {
  if (callbacks == null) return [];
  return Array.isArray(callbacks) ? [...(callbacks as readonly FitCallback[])] : [callbacks as FitCallback];
}
