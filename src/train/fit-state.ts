/**
 * The state one {@link fit} call shares between its epoch loop and its built-in callbacks: the trainable
 * variables, the optimizer, the RNG, the history, weight snapshots and the monitored best. @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TransferModel } from '../transfer-model';
import type { Random } from '../util/random';
import type { FreezeBoundary } from './boundary';
import type { ResolvedFitArgs } from './fit-args';
import type { FitHistory } from './history';

/** Copies of the trainable weights at one moment. @internal */
export interface Snapshot {
  values: tf.Tensor[];
}

/** @internal */
export function snapshot(vars: tf.Variable[]): Snapshot {
  return { values: vars.map((v) => tf.clone(v)) };
}

/** @internal */
export function restore(vars: tf.Variable[], snap: Snapshot): void {
  vars.forEach((v, i) => v.assign(snap.values[i]!));
}

/** @internal */
export function disposeSnapshot(snap: Snapshot | undefined): void {
  snap?.values.forEach((t) => t.dispose());
}

/** @internal */
export interface FitState {
  readonly model: TransferModel;
  readonly split: FreezeBoundary;
  readonly args: ResolvedFitArgs;
  readonly seed: number;
  readonly rng: Random;
  readonly vars: tf.Variable[];
  readonly optimizer: tf.Optimizer;
  readonly history: FitHistory;
  /** `Date.now()` when extraction started; `extractMs` after it. */
  readonly t0: number;
  readonly extractMs: number;
  /** The metric compared across epochs (for `bestEpoch` and early stopping). */
  readonly monitor: 'valLoss' | 'valAccuracy' | 'loss' | 'accuracy';
  /** First epoch to run (after a resumed checkpoint: the epochs it holds). */
  startEpoch: number;
  /** Batches run so far over the whole run (the index given to batch hooks). */
  batchCounter: number;
  /** Best monitored value so far, and epochs since it improved. */
  best: number | undefined;
  sinceBest: number;
  /** The weights from before this call (or at resume), restored after a numerical fault without a best epoch. */
  startWeights: Snapshot;
  /** The weights of the best epoch (kept only with early stopping's `restoreBestWeights`). */
  bestWeights: Snapshot | undefined;
}
