/**
 * What {@link fit} returns.
 * @module
 */
import type { KeptActivations } from './kept-activations';

/** What {@link fit} returns: the metrics of every epoch. @category Step 4: Train */
export interface FitHistory {
  /** Epochs run. */
  epochs: number;
  /** Training loss per epoch. */
  loss: number[];
  /** Training accuracy per epoch. */
  accuracy: number[];
  /** Validation loss per epoch (empty without validation data). */
  valLoss: number[];
  /** Validation accuracy per epoch (empty without validation data). */
  valAccuracy: number[];
  /** Index of the best epoch by the monitored metric (the last one without early stopping). */
  bestEpoch: number;
  /** Whether early stopping ended training before the last epoch. */
  stoppedEarly: boolean;
  /** Validation loss and accuracy before the first step (with validation data). */
  initial?: {
    /** Validation loss of the untrained head. */
    valLoss: number;
    /** Validation accuracy of the untrained head. */
    valAccuracy: number;
  };
  /** Where training started: `{ layers, parameters }` that were trained. */
  trained: {
    /** Names of the layers whose weights were trained. */
    layers: string[];
    /** Number of trained parameters. */
    parameters: number;
  };
  /** The freeze-boundary activations: which layers' outputs were cached and their shape per image. */
  boundary: {
    /** Layers whose outputs were cached (the freeze boundary). */
    layers: string[];
    /** Shape of one image's cached activations, per boundary layer. */
    shapes: number[][];
  };
  /** Milliseconds spent extracting features, and training. */
  timing: {
    /** Running the frozen part over the data (decoding included). */
    extractMs: number;
    /** Training the top, validation included. */
    trainMs: number;
  };
  /** Warnings raised while training (exploding gradients). Empty when all went well. */
  warnings: string[];
  /** Epochs restored from a checkpoint instead of being run (0 without `checkpoint` or on a fresh start). */
  resumedEpochs: number;
  /**
   * The validation data's frozen-prefix activations, with `keepValidationActivations: true` and `validationData`:
   * pass them to `evaluate(model, validationData, { activations })` so the backbone does not run again, then call
   * `dispose()` (or let them be collected). Absent otherwise.
   */
  validationActivations?: KeptActivations;
}

/** An empty history. @internal */
export function emptyHistory(trained: FitHistory['trained'], boundary: FitHistory['boundary']): FitHistory {
  return {
    epochs: 0,
    loss: [],
    accuracy: [],
    valLoss: [],
    valAccuracy: [],
    bestEpoch: -1,
    stoppedEarly: false,
    trained,
    boundary,
    timing: { extractMs: 0, trainMs: 0 },
    warnings: [],
    resumedEpochs: 0,
  };
}
