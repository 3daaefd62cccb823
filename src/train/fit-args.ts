/**
 * Stage 1 of {@link fit}: check the options and resolve them, once, against {@link FIT_DEFAULTS}.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import { resolveAugmentArgs, type AugmentArgs } from '../data/augment';
import { env } from '../env';
import { check } from '../errors';
import type { TransferModel } from '../transfer-model';
import type { LabelledData, ProgressCallback } from '../types';
import { withDefaults } from '../util/args';
import type { ActivationStore } from './activations';
import { callbackList, HOOKS, type FitCallback } from './callbacks';
import type { CheckpointArgs } from './checkpoint';
import { resolveUnknownArgs, type UnknownDetectorArgs } from '../unknown-detector';
import { ACTIVATION_STORAGES, type ActivationStorage } from './storage-policy';

/**
 * When `fit` gives the event loop a turn, so timers, abort signals, UI events and rendering run: `'auto'` at most
 * every 125 ms (checked after each batch), `'batch'` after every batch, `'epoch'` after every epoch, `'never'`, or
 * a number of milliseconds. As tfjs-layers' `yieldEvery`.
 * @category Step 4: Train
 */
export type YieldEvery = 'auto' | 'batch' | 'epoch' | 'never' | number;

/** Defaults of {@link EarlyStoppingArgs} (the monitor defaults to `valLoss` with validation data, else `loss`). @category Step 4: Train */
export const EARLY_STOPPING_DEFAULTS = Object.freeze({
  /** Epochs without improvement before stopping. */
  patience: 3,
  /** Smallest change that counts as an improvement. */
  minDelta: 0,
  /** Restore the weights of the best epoch when training ends. */
  restoreBestWeights: true,
});

/** Early stopping: stop when the monitored metric has not improved for `patience` epochs. @category Step 4: Train */
export interface EarlyStoppingArgs {
  /**
   * The metric watched.
   * @defaultValue `'valLoss'` when there is validation data, else `'loss'`
   */
  monitor?: 'valLoss' | 'valAccuracy' | 'loss' | 'accuracy';
  /**
   * Epochs without improvement before stopping.
   * @defaultValue {@link EARLY_STOPPING_DEFAULTS}.patience (3)
   */
  patience?: number;
  /**
   * Smallest change that counts as an improvement.
   * @defaultValue {@link EARLY_STOPPING_DEFAULTS}.minDelta (0)
   */
  minDelta?: number;
  /**
   * Restore the weights of the best epoch when training ends.
   * @defaultValue {@link EARLY_STOPPING_DEFAULTS}.restoreBestWeights (true)
   */
  restoreBestWeights?: boolean;
}

/**
 * Defaults of {@link fit}, the Keras tutorial's (Adam 1e-4, 10 epochs, batch 32). `transferLearn` has its own,
 * measured ones (`TRANSFER_LEARN_DEFAULTS`).
 * @category Step 4: Train
 */
export const FIT_DEFAULTS = Object.freeze({
  /** Passes over the training data (the Keras tutorial's 10). */
  epochs: 10,
  /** Images per gradient step. */
  batchSize: 32,
  /** Learning rate of the default optimizer (the Keras tutorial's Adam 1e-4). */
  learningRate: 1e-4,
  /** The optimizer. */
  optimizer: 'adam' as 'adam' | 'sgd' | 'rmsprop' | tf.Optimizer,
  /** Share held out for validation when no `validationData` is given (none). */
  validationSplit: 0,
  /** Shuffle the training data every epoch. */
  shuffle: true,
  /** Random augmentation (none). */
  augment: false as boolean | AugmentArgs,
  /** Early stopping (off). */
  earlyStopping: false as boolean | EarlyStoppingArgs,
  /** Gradient norm above which an exploding-gradient warning is given. */
  gradientNormWarning: 1000,
  /** How often training yields to the event loop: at most every 125 ms. */
  yieldEvery: 'auto' as YieldEvery,
  /** Keep the validation activations for `evaluate` (no). */
  keepValidationActivations: false,
  /** Fit the unknown detector after training, when there are validation images (yes, with its defaults). */
  unknown: true as boolean | UnknownDetectorArgs,
  /**
   * How the cached activations are kept: float32 for a pooled boundary, float16 for a spatial one (fine-tuning),
   * the training rows in a scratch file past `activationMemoryBudget` where the platform can (Node).
   */
  activationStorage: 'auto' as ActivationStorage,
  /**
   * Bytes of cached activations (as stored) kept in memory before `'auto'` spills the training rows to disk: 64 MiB.
   * Measured (docs/performance.md): fine-tuning MobileNetV2 1.0 from `block_11_expand` on wasm peaks at about
   * 1.55-1.58 GB of RSS whatever the cache holds (the training steps' wasm heap), and reading spilled rows back
   * costs nothing measurable (positioned reads served by the page cache), so the cache is kept small: 64 MiB is
   * about 850 fine-tuning images with flips, or 6 500 images at the pooled boundary.
   */
  activationMemoryBudget: 64 * 2 ** 20,
});

/**
 * Options of {@link fit}. Names follow Keras / tfjs `model.fit`. An option given as `undefined` or `null` takes
 * its default.
 * @category Step 4: Train
 */
export interface FitArgs {
  /** Passes over the training data. @defaultValue {@link FIT_DEFAULTS}.epochs (10, the Keras tutorial's) */
  epochs?: number;
  /** Images per gradient step. @defaultValue {@link FIT_DEFAULTS}.batchSize (32) */
  batchSize?: number;
  /** Learning rate of the default optimizer. @defaultValue {@link FIT_DEFAULTS}.learningRate (1e-4, Adam, the Keras tutorial's) */
  learningRate?: number;
  /**
   * `'adam'`, `'sgd'`, `'rmsprop'`, or a `tf.Optimizer` instance (then `learningRate` is ignored and the optimizer
   * is not disposed, so its state carries over between calls).
   * @defaultValue {@link FIT_DEFAULTS}.optimizer (`'adam'`)
   */
  optimizer?: 'adam' | 'sgd' | 'rmsprop' | tf.Optimizer;
  /** Data to report validation loss and accuracy on after every epoch. @defaultValue none */
  validationData?: LabelledData;
  /**
   * Fraction of the training data held out for validation, in (0, 1), when `validationData` is not given: a
   * seeded, stratified split (each class keeps its proportion).
   * @defaultValue {@link FIT_DEFAULTS}.validationSplit (0, none)
   */
  validationSplit?: number;
  /** Weight of each class in the loss, by class index or name, e.g. `{ cat: 1, dog: 2 }`. @defaultValue all 1 */
  classWeight?: Record<string | number, number>;
  /** Seed of shuffling, the validation split, dropout and augmentation. @defaultValue random (a resumed checkpoint's) */
  seed?: number;
  /** Shuffle the training data every epoch. @defaultValue {@link FIT_DEFAULTS}.shuffle (true) */
  shuffle?: boolean;
  /**
   * Random augmentation of the training images: `true` for the defaults of {@link AugmentArgs}, or the args.
   * Flip alone is cached (both orientations once); any other transformation re-runs the frozen backbone every
   * epoch.
   * @defaultValue {@link FIT_DEFAULTS}.augment (false)
   */
  augment?: boolean | AugmentArgs;
  /**
   * Stop when the monitored metric stops improving: `true` for {@link EARLY_STOPPING_DEFAULTS}, or the args.
   * Adds the built-in early-stopping callback.
   * @defaultValue {@link FIT_DEFAULTS}.earlyStopping (off)
   */
  earlyStopping?: boolean | EarlyStoppingArgs;
  /**
   * One callback or a list of them ({@link FitCallback}), called in order after the built-in ones.
   * @defaultValue none
   */
  callbacks?: FitCallback | readonly FitCallback[];
  /**
   * Stops training within one batch; `fit` then rejects with an `AbortError` (the weights stay as trained). A
   * timer's abort is seen too, because training yields to the event loop (see `yieldEvery`).
   * @defaultValue none
   */
  signal?: AbortSignal;
  /** Progress of feature extraction (`stage: 'extract'` / `'cache'`) and of training (`'train'`, per epoch). @defaultValue none */
  onProgress?: ProgressCallback;
  /** Print one line per epoch through `env.logger`. @defaultValue `env.verbose` */
  verbose?: boolean;
  /**
   * Persistent activation cache (disk in Node, IndexedDB in the browser; see `createDiskCache`,
   * `createIndexedDBCache`, `createMemoryCache`). Used only when the data provides content keys (image folders do).
   * @defaultValue none (activations are cached in memory for the duration of the call)
   */
  cache?: ActivationStore;
  /** Images per forward pass of the frozen backbone while extracting. @defaultValue `batchSize` */
  extractBatchSize?: number;
  /**
   * Checkpoint the whole training state (trainable weights, optimizer state, epoch, history, early-stopping state,
   * RNG state) every `every` epochs, atomically, and resume from it when the same run starts again: a run killed at
   * any moment ends bit-identical to an uninterrupted one with the same seed on the same backend. A checkpoint of a
   * different run (data, model or options) is refused with an error naming the differences. Adds the built-in
   * checkpoint callback.
   * @defaultValue none
   *
   * @example
   * ```ts
   * await fit(model, data, { epochs: 50, seed: 1, checkpoint: { directory: 'runs/cats' } }); // Node
   * ```
   */
  checkpoint?: CheckpointArgs;
  /**
   * Warn once (through `env.logger`) when the global gradient norm of a batch exceeds this value, or jumps 100x
   * above the running median of the previous batches: the sign of exploding gradients (lower the learning rate).
   * Each batch's norm is in `onBatchEnd`'s logs; the warning is also kept in `history.warnings`.
   * @defaultValue {@link FIT_DEFAULTS}.gradientNormWarning (1000)
   */
  gradientNormWarning?: number;
  /** When training gives the event loop a turn. @defaultValue {@link FIT_DEFAULTS}.yieldEvery (`'auto'`: at most every 125 ms) */
  yieldEvery?: YieldEvery;
  /**
   * Keep the frozen-prefix activations of `validationData` and return them as `history.validationActivations`,
   * for `evaluate(model, validationData, { activations })` without running the backbone again.
   * @defaultValue {@link FIT_DEFAULTS}.keepValidationActivations (false: nothing is kept after `fit` returns)
   */
  keepValidationActivations?: boolean;
  /**
   * Fit the unknown detector after training (`model.unknownDetector`, saved with the model; {@link predict} then
   * marks images of none of the classes `unknown`): by default, how expected an image's distribution over the
   * backbone's own pretrained classes is (when the backbone has its pretrained classifier and no backbone layer
   * trains), else per-class prototypes of the training images' pooled features (`unknown.method`); its threshold chosen on the validation images (`validationData` or the `validationSplit`) to accept
   * `targetAcceptance` of them. Without validation images no detector is fitted (and any previous one is
   * dropped, as the features it was fitted on may have changed). `false` skips it; an object sets its options.
   * Costs no backbone pass when the backbone is frozen (the pooled features are the cached activations).
   * @defaultValue {@link FIT_DEFAULTS}.unknown (true: fitted with {@link UNKNOWN_DETECTOR_DEFAULTS})
   */
  unknown?: boolean | UnknownDetectorArgs;
  /**
   * How the activations cached at the freeze boundary are kept (see {@link ActivationStorage}). `'auto'`: float32
   * for a pooled (rank-1) boundary, where they are small and exactness is free; float16 for a spatial boundary
   * (fine-tuning; half the bytes, relative error at most 2^-11, validation accuracy unchanged within noise: see
   * docs/performance.md); and the training rows spilled to an already-deleted scratch file when training plus
   * validation rows would exceed `activationMemoryBudget` and `env.activationSpill` exists (installed by
   * `tfjs-transfer/node`; the disk cache's folder when `cache` is a disk cache, else the OS temp folder). A batch
   * then reads just its rows back. Validation rows always stay in memory. The file is gone when `fit` returns or
   * throws. `'disk'` always spills (and fails without `env.activationSpill`).
   * @defaultValue {@link FIT_DEFAULTS}.activationStorage (`'auto'`)
   *
   * @example
   * ```ts
   * await fit(model, folder.train, { activationStorage: 'float32' }); // exact, in memory, whatever the size
   * ```
   */
  activationStorage?: ActivationStorage;
  /**
   * Bytes of cached activations (as encoded) kept in memory before `activationStorage: 'auto'` spills the training
   * rows to disk.
   * @defaultValue {@link FIT_DEFAULTS}.activationMemoryBudget (64 MiB)
   *
   * @example
   * ```ts
   * await fit(model, folder.train, { activationMemoryBudget: 4 * 2 ** 30 }); // a big machine: keep 4 GiB in memory
   * ```
   */
  activationMemoryBudget?: number;
}

/** {@link FitArgs} resolved: every default filled in. @internal */
export interface ResolvedFitArgs {
  epochs: number;
  batchSize: number;
  extractBatchSize: number;
  learningRate: number;
  optimizer: 'adam' | 'sgd' | 'rmsprop' | tf.Optimizer;
  validationData: LabelledData | undefined;
  validationSplit: number;
  classWeight: Float32Array | undefined;
  shuffle: boolean;
  augment: ReturnType<typeof resolveAugmentArgs> | undefined;
  earlyStopping: (Required<Omit<EarlyStoppingArgs, 'monitor'>> & { monitor: EarlyStoppingArgs['monitor'] }) | undefined;
  callbacks: FitCallback[];
  signal: AbortSignal | undefined;
  onProgress: ProgressCallback | undefined;
  verbose: boolean;
  cache: ActivationStore | undefined;
  checkpoint: CheckpointArgs | undefined;
  gradientNormWarning: number;
  yieldEvery: YieldEvery;
  keepValidationActivations: boolean;
  /** The unknown detector's options, or `undefined` for none. */
  unknown: Required<UnknownDetectorArgs> | undefined;
  /** Whether a `tf.Optimizer` instance was given (then `learningRate` is not the optimizer's). */
  givenOptimizer: boolean;
  activationStorage: ActivationStorage;
  activationMemoryBudget: number;
}

const given = (v: unknown): boolean => v !== undefined && v !== null;

/** Throws `INVALID_ARGUMENT` naming the first bad option. `undefined` and `null` are always fine. @internal */
export function checkFitArgs(args: FitArgs): void {
  const intIn = (v: unknown, name: string, lo: number, hi: number) =>
    check(!given(v) || (Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi), `fit: ${name} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}.`);
  const bool = (v: unknown, name: string) => check(!given(v) || typeof v === 'boolean', `fit: ${name} must be true or false, got ${JSON.stringify(v)}.`);
  intIn(args.epochs, 'epochs', 0, 1e6);
  intIn(args.batchSize, 'batchSize', 1, 1e5);
  intIn(args.extractBatchSize, 'extractBatchSize', 1, 1e5);
  check(
    !given(args.learningRate) || (typeof args.learningRate === 'number' && args.learningRate > 0 && Number.isFinite(args.learningRate)),
    `fit: learningRate must be a positive number, got ${JSON.stringify(args.learningRate)}.`,
  );
  check(
    !given(args.validationSplit) || (typeof args.validationSplit === 'number' && args.validationSplit >= 0 && args.validationSplit < 1),
    `fit: validationSplit must be in [0, 1), got ${JSON.stringify(args.validationSplit)}.`,
  );
  check(!given(args.seed) || Number.isFinite(args.seed), `fit: seed must be a number, got ${JSON.stringify(args.seed)}.`);
  check(!given(args.signal) || typeof args.signal?.aborted === 'boolean', 'fit: signal must be an AbortSignal.');
  bool(args.shuffle, 'shuffle');
  bool(args.verbose, 'verbose');
  bool(args.keepValidationActivations, 'keepValidationActivations');
  check(!given(args.validationData) || typeof args.validationData === 'object', 'fit: validationData must be { xs, ys } or an ImageDataset.');
  check(!given(args.augment) || typeof args.augment === 'boolean' || typeof args.augment === 'object', 'fit: augment must be true, false or an AugmentArgs object.');
  checkCallbacks(args.callbacks);
  check(!given(args.onProgress) || typeof args.onProgress === 'function', 'fit: onProgress must be a function.');
  check(
    !given(args.gradientNormWarning) || (typeof args.gradientNormWarning === 'number' && args.gradientNormWarning > 0),
    `fit: gradientNormWarning must be a positive number, got ${JSON.stringify(args.gradientNormWarning)}.`,
  );
  const y = args.yieldEvery;
  check(
    !given(y) || ['auto', 'batch', 'epoch', 'never'].includes(y as string) || (typeof y === 'number' && y >= 0 && Number.isFinite(y)),
    `fit: yieldEvery must be 'auto', 'batch', 'epoch', 'never' or a number of milliseconds, got ${JSON.stringify(y)}.`,
  );
  checkEarlyStopping(args.earlyStopping);
  check(
    !given(args.activationStorage) || ACTIVATION_STORAGES.includes(args.activationStorage!),
    `fit: activationStorage must be ${ACTIVATION_STORAGES.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(args.activationStorage)}.`,
  );
  check(
    !given(args.activationMemoryBudget) || (typeof args.activationMemoryBudget === 'number' && args.activationMemoryBudget >= 0),
    `fit: activationMemoryBudget must be a number of bytes (0 or more, Infinity for no limit), got ${JSON.stringify(args.activationMemoryBudget)}.`,
  );
  check(!given(args.unknown) || typeof args.unknown === 'boolean' || typeof args.unknown === 'object', `fit: unknown must be true, false or the detector's options such as { targetAcceptance: 0.95 }, got ${JSON.stringify(args.unknown)}.`);
}

function checkCallbacks(callbacks: unknown): void {
  check(!given(callbacks) || typeof callbacks === 'object', 'fit: callbacks must be an object such as { onEpochEnd }, or a list of them.');
  callbackList(callbacks as FitCallback | undefined).forEach((c, i) => {
    const name = Array.isArray(callbacks) ? `callbacks[${i}]` : 'callbacks';
    check(typeof c === 'object' && c !== null, `fit: ${name} must be an object such as { onEpochEnd }.`);
    for (const [hook, fn] of Object.entries(c)) {
      if ((HOOKS as readonly string[]).includes(hook)) check(fn == null || typeof fn === 'function', `fit: ${name}.${hook} must be a function.`);
    }
  });
}

function checkEarlyStopping(es: unknown): void {
  check(!given(es) || typeof es === 'boolean' || typeof es === 'object', 'fit: earlyStopping must be true, false or { monitor, patience, minDelta, restoreBestWeights }.');
  if (!es || typeof es !== 'object') return;
  const e = es as EarlyStoppingArgs;
  check(!given(e.monitor) || ['valLoss', 'valAccuracy', 'loss', 'accuracy'].includes(e.monitor!), `fit: earlyStopping.monitor must be 'valLoss', 'valAccuracy', 'loss' or 'accuracy', got ${JSON.stringify(e.monitor)}.`);
  check(!given(e.patience) || (Number.isInteger(e.patience) && e.patience! >= 0), `fit: earlyStopping.patience must be a non-negative integer, got ${JSON.stringify(e.patience)}.`);
  check(!given(e.minDelta) || (typeof e.minDelta === 'number' && e.minDelta >= 0 && Number.isFinite(e.minDelta)), `fit: earlyStopping.minDelta must be a non-negative number, got ${JSON.stringify(e.minDelta)}.`);
  check(!given(e.restoreBestWeights) || typeof e.restoreBestWeights === 'boolean', `fit: earlyStopping.restoreBestWeights must be true or false, got ${JSON.stringify(e.restoreBestWeights)}.`);
}

/** Class weights as an array by class index, or `undefined` for all 1. @internal */
export function classWeights(model: TransferModel, cw: FitArgs['classWeight']): Float32Array | undefined {
  if (!cw) return undefined;
  check(typeof cw === 'object', 'fit: classWeight must be an object such as { cat: 1, dog: 2 } or { 0: 1, 1: 2 }.');
  const w = new Float32Array(model.numClasses).fill(1);
  for (const [key, value] of Object.entries(cw)) {
    const byName = model.classes.indexOf(key);
    const index = byName >= 0 ? byName : /^\d+$/.test(key) ? Number(key) : -1;
    check(index >= 0 && index < model.numClasses, `fit: classWeight has "${key}", which is not a class of the model (${model.classes.join(', ')}) nor an index below ${model.numClasses}.`);
    check(typeof value === 'number' && value >= 0 && Number.isFinite(value), `fit: classWeight["${key}"] must be a non-negative number, got ${JSON.stringify(value)}.`);
    w[index] = value;
  }
  return w;
}

/** Checks `args` and fills in every default, once. @internal */
export function resolveFitArgs(model: TransferModel, args: FitArgs): ResolvedFitArgs {
  checkFitArgs(args);
  const r = withDefaults(args, FIT_DEFAULTS);
  check(!(r.validationData && r.validationSplit), 'fit: give either validationData or validationSplit, not both.');
  const es = r.earlyStopping ? withDefaults(r.earlyStopping === true ? {} : r.earlyStopping, EARLY_STOPPING_DEFAULTS) : undefined;
  return {
    epochs: r.epochs,
    batchSize: r.batchSize,
    extractBatchSize: r.extractBatchSize ?? r.batchSize,
    learningRate: r.learningRate,
    optimizer: r.optimizer,
    validationData: r.validationData,
    validationSplit: r.validationData ? 0 : r.validationSplit,
    classWeight: classWeights(model, r.classWeight),
    shuffle: r.shuffle,
    augment: r.augment ? resolveAugmentArgs(r.augment === true ? {} : r.augment, 'fit: augment') : undefined,
    earlyStopping: es && { monitor: es.monitor, patience: es.patience, minDelta: es.minDelta, restoreBestWeights: es.restoreBestWeights },
    callbacks: callbackList(r.callbacks),
    signal: r.signal,
    onProgress: r.onProgress,
    verbose: r.verbose ?? env.verbose,
    cache: r.cache,
    checkpoint: r.checkpoint,
    gradientNormWarning: r.gradientNormWarning,
    yieldEvery: r.yieldEvery,
    keepValidationActivations: r.keepValidationActivations,
    unknown: r.unknown === false ? undefined : resolveUnknownArgs(r.unknown === true ? {} : r.unknown, 'fit'),
    givenOptimizer: typeof r.optimizer === 'object',
    activationStorage: r.activationStorage,
    activationMemoryBudget: r.activationMemoryBudget,
  };
}
