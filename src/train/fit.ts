/**
 * `fit`: step 4, train the trainable part of a {@link TransferModel}.
 *
 * The frozen prefix runs once per image (in inference mode) and its output is cached; epochs then train only the
 * top on the cached activations. Mirrored images are cached as a second view, so flip augmentation stays cheap;
 * other augmentations re-run the frozen prefix each epoch (said in a log line). Gradients never flow through
 * frozen layers, so no backend has to hold a whole backbone's activations for backpropagation.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { augmentImages, resolveAugmentArgs, type AugmentArgs } from '../data/augment';
import { splitIndices } from '../data/split';
import { log } from '../env';
import { TransferError, check, throwIfAborted } from '../errors';
import { TransferModel } from '../transfer-model';
import type { LabelledData, ProgressCallback } from '../types';
import { Random } from '../util/random';
import { extractActivations, gatherBatch, subsetActivations, type ActivationStore, type Activations } from './activations';
import { splitAtFreezeBoundary, type FreezeBoundary } from './boundary';
import { extractCachedFirst } from './cached-first';
import { correctCount, meanLoss, targetsFor } from './losses';
import { toLabelledSource, type LabelledSource } from './source';
import { registerWasmTrainingKernels } from './wasm-kernels';
// >>> reliability: checkpoints
import {
  captureOptimizer,
  checkFingerprint,
  hashNumbers,
  openCheckpoint,
  restoreOptimizer,
  storeTensor,
  toTensor,
  writeCheckpoint,
  type CheckpointArgs,
  type CheckpointSession,
} from './checkpoint';
// <<< reliability

/** Metrics of one epoch, as passed to callbacks and kept in {@link FitHistory}. */
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

/** Callbacks of {@link fit}; each may be async (training waits for it). */
export interface FitCallbacks {
  /** Before the first epoch, after feature extraction. */
  onTrainBegin?: () => void | Promise<void>;
  /**
   * After each batch, with its loss, accuracy, size and the global L2 norm of its gradients (before the update;
   * see {@link FitArgs.gradientNormWarning}).
   */
  onBatchEnd?: (batch: number, logs: { loss: number; accuracy: number; size: number; gradientNorm: number }) => void | Promise<void>;
  /** After each epoch (0-based), with its metrics. */
  onEpochEnd?: (epoch: number, logs: EpochLogs) => void | Promise<void>;
  /** After training, with the history. */
  onTrainEnd?: (history: FitHistory) => void | Promise<void>;
}

/** Early stopping: stop when the monitored metric has not improved for `patience` epochs. */
export interface EarlyStoppingArgs {
  /** `valLoss` (default when there is validation data), `valAccuracy`, `loss` or `accuracy`. */
  monitor?: 'valLoss' | 'valAccuracy' | 'loss' | 'accuracy';
  /** Epochs without improvement before stopping. Default 3. */
  patience?: number;
  /** Smallest change that counts as an improvement. Default 0. */
  minDelta?: number;
  /** Restore the weights of the best epoch when training ends. Default true. */
  restoreBestWeights?: boolean;
}

/** Options of {@link fit}. Names follow Keras / tfjs `model.fit`. */
export interface FitArgs {
  /** Passes over the training data. Default 10 (the Keras tutorial's). */
  epochs?: number;
  /** Images per gradient step. Default 32. */
  batchSize?: number;
  /** Learning rate of the default optimizer. Default 1e-4 (the Keras tutorial's, Adam). */
  learningRate?: number;
  /**
   * `'adam'` (default), `'sgd'`, `'rmsprop'`, or a `tf.Optimizer` instance (then `learningRate` is ignored and
   * the optimizer is not disposed, so its state carries over between calls).
   */
  optimizer?: 'adam' | 'sgd' | 'rmsprop' | tf.Optimizer;
  /** Data to report validation loss and accuracy on after every epoch. Default: none. */
  validationData?: LabelledData;
  /**
   * Fraction of the training data held out for validation, in (0, 1), when `validationData` is not given: a
   * seeded, stratified split (each class keeps its proportion). Default 0 (none).
   */
  validationSplit?: number;
  /** Weight of each class in the loss, by class index or name, e.g. `{ cat: 1, dog: 2 }`. Default: all 1. */
  classWeight?: Record<string | number, number>;
  /** Seed of shuffling, the validation split, dropout and augmentation. Default: random. */
  seed?: number;
  /** Shuffle the training data every epoch. Default true. */
  shuffle?: boolean;
  /**
   * Random augmentation of the training images: `true` for the defaults of {@link AugmentArgs}, or the args.
   * Flip alone is cached (both orientations once); any other transformation re-runs the frozen backbone every
   * epoch. Default false.
   */
  augment?: boolean | AugmentArgs;
  /** Stop when the monitored metric stops improving: `true` for the defaults, or the args. Default off. */
  earlyStopping?: boolean | EarlyStoppingArgs;
  /** Callbacks per batch and per epoch. */
  callbacks?: FitCallbacks;
  /** Stops training within one batch; `fit` then rejects with an `AbortError` (the weights stay as trained). */
  signal?: AbortSignal;
  /** Progress of feature extraction. */
  onProgress?: ProgressCallback;
  /** Print one line per epoch through `env.logger`. Default true. */
  verbose?: boolean;
  /**
   * Persistent activation cache (disk in Node, IndexedDB in the browser; see `createActivationCache`). Used only
   * when the data provides content keys (image folders do). Default: none (activations are cached in memory
   * for the duration of the call).
   */
  cache?: ActivationStore;
  /** Images per forward pass of the frozen backbone while extracting. Default: `batchSize`. */
  extractBatchSize?: number;
  // >>> reliability: checkpoints and gradient reports
  /**
   * Checkpoint the whole training state (trainable weights, optimizer state, epoch, history, early-stopping state,
   * RNG state) every `every` epochs, atomically, and resume from it when the same run starts again: a run killed at
   * any moment ends bit-identical to an uninterrupted one with the same seed on the same backend. A checkpoint of a
   * different run (data, model or options) is refused with an error naming the differences. Default: none.
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
   * Each batch's norm is in `onBatchEnd`'s logs; the warning is also kept in `history.warnings`. Default 1000.
   */
  gradientNormWarning?: number;
  // <<< reliability
}

/** What {@link fit} returns: the metrics of every epoch. */
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
  /** Whether early stopping ended training. */
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
  // >>> reliability
  /** Warnings raised while training (exploding gradients). Empty when all went well. */
  warnings: string[];
  /** Epochs restored from a checkpoint instead of being run (0 without `checkpoint` or on a fresh start). */
  resumedEpochs: number;
  // <<< reliability
}

const splitCache = new WeakMap<TransferModel, { signature: string; split: FreezeBoundary }>();

/** The validation activations of a model's last `fit`, for one reuse by `evaluate`. @internal */
const lastValidation = new WeakMap<TransferModel, { data: LabelledData; signature: string; identity: string; acts: Activations }>();

/**
 * The frozen-prefix activations of `data` computed by the last `fit` of `model` (its validation data), if they are
 * still valid (same freeze boundary, same frozen weights). Taken once: a second call returns undefined. @internal
 */
export async function takeValidationActivations(model: TransferModel, data: LabelledData): Promise<Activations | undefined> {
  const memo = lastValidation.get(model);
  if (!memo || memo.data !== data) return undefined;
  lastValidation.delete(model);
  if (memo.signature !== freezeSignature(model)) return undefined;
  const split = freezeBoundaryOf(model);
  if ((await extractorIdentity(split, model)) !== memo.identity) return undefined;
  return memo.acts;
}

function freezeSignature(model: TransferModel): string {
  return model.model.layers.map((l) => (l.trainable ? '1' : '0')).join('');
}

/** The model split at its current freeze boundary (memoised until `freeze` changes it). @internal */
export function freezeBoundaryOf(model: TransferModel): FreezeBoundary {
  const signature = freezeSignature(model);
  const hit = splitCache.get(model);
  if (hit && hit.signature === signature) return hit.split;
  const split = splitAtFreezeBoundary(model);
  splitCache.set(model, { signature, split });
  return split;
}

function makeOptimizer(choice: FitArgs['optimizer'], learningRate: number): { optimizer: tf.Optimizer; owned: boolean } {
  if (typeof choice === 'object' && choice !== null && typeof (choice as tf.Optimizer).minimize === 'function') return { optimizer: choice as tf.Optimizer, owned: false };
  switch (choice ?? 'adam') {
    case 'adam':
      return { optimizer: tf.train.adam(learningRate), owned: true };
    case 'sgd':
      return { optimizer: tf.train.sgd(learningRate), owned: true };
    case 'rmsprop':
      return { optimizer: tf.train.rmsprop(learningRate), owned: true };
    default:
      throw new TransferError('INVALID_ARGUMENT', `fit: optimizer must be 'adam', 'sgd', 'rmsprop' or a tf.Optimizer, got ${JSON.stringify(choice)}.`);
  }
}

function validateArgs(args: FitArgs): void {
  const intIn = (v: unknown, name: string, lo: number, hi: number) =>
    check(v === undefined || (Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi), `fit: ${name} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}.`);
  intIn(args.epochs, 'epochs', 0, 1e6);
  intIn(args.batchSize, 'batchSize', 1, 1e5);
  intIn(args.extractBatchSize, 'extractBatchSize', 1, 1e5);
  check(
    args.learningRate === undefined || (typeof args.learningRate === 'number' && args.learningRate > 0 && Number.isFinite(args.learningRate)),
    `fit: learningRate must be a positive number, got ${JSON.stringify(args.learningRate)}.`,
  );
  check(
    args.validationSplit === undefined || (typeof args.validationSplit === 'number' && args.validationSplit >= 0 && args.validationSplit < 1),
    `fit: validationSplit must be in [0, 1), got ${JSON.stringify(args.validationSplit)}.`,
  );
  check(args.seed === undefined || Number.isFinite(args.seed), `fit: seed must be a number, got ${JSON.stringify(args.seed)}.`);
  check(args.signal === undefined || typeof args.signal?.aborted === 'boolean', 'fit: signal must be an AbortSignal.');
  // >>> reliability: option checks that were missing
  check(args.shuffle === undefined || typeof args.shuffle === 'boolean', `fit: shuffle must be true or false, got ${JSON.stringify(args.shuffle)}.`);
  check(args.verbose === undefined || typeof args.verbose === 'boolean', `fit: verbose must be true or false, got ${JSON.stringify(args.verbose)}.`);
  check(
    args.validationData === undefined || (typeof args.validationData === 'object' && args.validationData !== null),
    'fit: validationData must be { xs, ys } or an ImageDataset.',
  );
  check(args.augment === undefined || typeof args.augment === 'boolean' || (typeof args.augment === 'object' && args.augment !== null), 'fit: augment must be true, false or an AugmentArgs object.');
  check(args.callbacks === undefined || (typeof args.callbacks === 'object' && args.callbacks !== null), 'fit: callbacks must be an object such as { onEpochEnd }.');
  if (args.callbacks) {
    for (const [name, fn] of Object.entries(args.callbacks)) check(fn === undefined || typeof fn === 'function', `fit: callbacks.${name} must be a function.`);
  }
  check(args.onProgress === undefined || typeof args.onProgress === 'function', 'fit: onProgress must be a function.');
  check(
    args.gradientNormWarning === undefined || (typeof args.gradientNormWarning === 'number' && args.gradientNormWarning > 0),
    `fit: gradientNormWarning must be a positive number, got ${JSON.stringify(args.gradientNormWarning)}.`,
  );
  const es = args.earlyStopping;
  check(es === undefined || typeof es === 'boolean' || (typeof es === 'object' && es !== null), 'fit: earlyStopping must be true, false or { monitor, patience, minDelta, restoreBestWeights }.');
  if (es && typeof es === 'object') {
    check(es.monitor === undefined || ['valLoss', 'valAccuracy', 'loss', 'accuracy'].includes(es.monitor), `fit: earlyStopping.monitor must be 'valLoss', 'valAccuracy', 'loss' or 'accuracy', got ${JSON.stringify(es.monitor)}.`);
    check(es.patience === undefined || (Number.isInteger(es.patience) && es.patience >= 0), `fit: earlyStopping.patience must be a non-negative integer, got ${JSON.stringify(es.patience)}.`);
    check(es.minDelta === undefined || (typeof es.minDelta === 'number' && es.minDelta >= 0 && Number.isFinite(es.minDelta)), `fit: earlyStopping.minDelta must be a non-negative number, got ${JSON.stringify(es.minDelta)}.`);
    check(es.restoreBestWeights === undefined || typeof es.restoreBestWeights === 'boolean', `fit: earlyStopping.restoreBestWeights must be true or false, got ${JSON.stringify(es.restoreBestWeights)}.`);
  }
  // <<< reliability
}

function classWeights(model: TransferModel, cw: FitArgs['classWeight']): Float32Array | undefined {
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

// >>> reliability: non-finite inputs and activations
/**
 * `source` with every batch checked for NaN / infinite pixels (one sum per batch). Needed because some kernels
 * (wasm's clip / relu6) turn NaN into 0, so a NaN image would otherwise train silently as another picture.
 */
function finitePixels(source: LabelledSource, what: string): LabelledSource {
  return {
    size: source.size,
    labels: source.labels,
    batches(batchSize, signal) {
      return {
        async *[Symbol.asyncIterator]() {
          let offset = 0;
          for await (const batch of source.batches(batchSize, signal)) {
            const total = tf.tidy(() => tf.sum(batch.xs));
            const ok = Number.isFinite((await total.data())[0]!);
            total.dispose();
            if (!ok) {
              const perImage = tf.tidy(() => tf.sum(batch.xs, [1, 2, 3]));
              const sums = await perImage.data();
              perImage.dispose();
              batch.xs.dispose();
              const bad = Array.from(sums, (v, i) => (Number.isFinite(v) ? -1 : i)).filter((i) => i >= 0);
              const names = bad.slice(0, 3).map((i) => batch.sources?.[i] ?? `image ${offset + i}`);
              throw new TransferError(
                'NUMERICAL_FAULT',
                `fit: ${bad.length === 1 ? 'a' : bad.length} ${what} image${bad.length === 1 ? ' has' : 's have'} NaN or infinite pixel values ` +
                  `(${names.join(', ')}${bad.length > 3 ? ', ...' : ''}; indices in data order); training did not start and no weight changed. ` +
                  'Pixels must be finite numbers in 0..255.',
              );
            }
            offset += batch.xs.shape[0];
            yield batch;
          }
        },
      };
    },
  };
}

/** Throws NUMERICAL_FAULT when any cached activation is NaN or infinite, naming the first images concerned. */
function checkFinite(acts: Activations, rows: number[] | undefined, what: string): void {
  const bad: number[] = [];
  let example = 0;
  const sizes = acts.shapes.map((s) => s.reduce((a, b) => a * b, 1));
  for (let r = 0; r < acts.n; r++) {
    let ok = true;
    for (const perView of acts.values) {
      for (let j = 0; j < perView.length && ok; j++) {
        const arr = perView[j]!;
        for (let i = r * sizes[j]!, end = (r + 1) * sizes[j]!; i < end; i++) {
          if (!Number.isFinite(arr[i]!)) {
            if (bad.length === 0) example = arr[i]!;
            ok = false;
            break;
          }
        }
      }
      if (!ok) break;
    }
    if (!ok) bad.push(rows ? rows[r]! : r);
  }
  if (bad.length === 0) return;
  throw new TransferError(
    'NUMERICAL_FAULT',
    `fit: the frozen layers gave ${example} features for ${bad.length} of ${acts.n} ${what} images (indices ${bad.slice(0, 5).join(', ')}` +
      `${bad.length > 5 ? ', ...' : ''}, in data order); training did not start and no weight changed. ` +
      'Check those images for NaN or infinite pixel values (xs must be finite numbers in 0..255).',
  );
}
// <<< reliability

interface Snapshot {
  values: tf.Tensor[];
}

function snapshot(vars: tf.Variable[]): Snapshot {
  return { values: vars.map((v) => tf.clone(v)) };
}

function restore(vars: tf.Variable[], snap: Snapshot): void {
  vars.forEach((v, i) => v.assign(snap.values[i]!));
}

function disposeSnapshot(snap: Snapshot | undefined): void {
  snap?.values.forEach((t) => t.dispose());
}

/** Evaluates the top on cached activations: mean loss and accuracy. @internal */
export async function scoreActivations(
  top: tfl.LayersModel,
  acts: Activations,
  numClasses: number,
  batchSize: number,
): Promise<{ loss: number; accuracy: number }> {
  let lossSum = 0;
  let correct = 0;
  const rows = Array.from({ length: acts.n }, (_, i) => i);
  for (let s = 0; s < acts.n; s += batchSize) {
    const idx = rows.slice(s, s + batchSize);
    const [l, c] = tf.tidy(() => {
      const inputs = gatherBatch(acts, idx, () => 0);
      const p = top.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: false }) as tf.Tensor2D;
      const t = targetsFor(acts.labels.subarray(s, s + idx.length), numClasses);
      return [tf.mul(meanLoss(p, t), idx.length), correctCount(p, t)];
    });
    lossSum += (await l!.data())[0]!;
    correct += (await c!.data())[0]!;
    l!.dispose();
    c!.dispose();
  }
  return { loss: lossSum / acts.n, accuracy: correct / acts.n };
}

function onlyFlip(aug: ReturnType<typeof resolveAugmentArgs>): boolean {
  return aug.flip && aug.rotation === 0 && aug.zoom === 0 && aug.translation === 0 && aug.brightness === 0 && aug.contrast === 0;
}

const mirror = (x: tf.Tensor4D): tf.Tensor4D => tf.reverse(x, 2);

/**
 * Trains the trainable part of `model` on `data`: the head, plus any backbone layers left unfrozen by
 * {@link freeze}. Frozen layers are bit-identical afterwards, BatchNorm statistics included.
 *
 * `data` is `{ xs, ys }` with `xs` raw RGB pixels 0..255 `[n, h, w, 3]` (resized to the model's input size if
 * needed) and `ys` class indices, names or one-hot rows; or an `ImageDataset` (e.g. `imageFolder(...).train`).
 *
 * Works on every backend, wasm included (the missing convolution gradients are provided for fine-tuning).
 *
 * @returns The loss and accuracy of every epoch (validation too, when given).
 *
 * @example
 * ```ts
 * const history = await fit(model, { xs, ys: ['cat', 'dog', ...] }, {
 *   epochs: 10, validationSplit: 0.2, earlyStopping: true, seed: 42,
 * });
 * console.log(history.valAccuracy.at(-1));
 * ```
 */
export async function fit(model: TransferModel, data: LabelledData, options: FitArgs = {}): Promise<FitHistory> {
  check(model instanceof TransferModel, `fit: expected a TransferModel (from attachHead or loadModel), got ${Object.prototype.toString.call(model)}.`);
  check(data != null, 'fit: data is required: { xs, ys } or an ImageDataset.');
  check(typeof options === 'object' && options !== null, 'fit: options must be an object.');
  validateArgs(options);
  model.assertUsable('fit');
  const where = 'fit';
  const epochs = options.epochs ?? 10;
  const batchSize = options.batchSize ?? 32;
  const verbose = options.verbose ?? true;
  // >>> reliability: read the checkpoint first; a resumed run takes its seed from it when none is given
  const ckpt: CheckpointSession | undefined = options.checkpoint !== undefined ? await openCheckpoint(options.checkpoint, 'fit') : undefined;
  const resumed = ckpt?.found;
  // <<< reliability
  const seed = options.seed ?? resumed?.state.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rng = new Random(seed);
  const augmentArgs = options.augment ? resolveAugmentArgs(options.augment === true ? {} : options.augment, 'fit: augment') : undefined;
  const weightsPerClass = classWeights(model, options.classWeight);
  if (options.validationData && options.validationSplit) {
    throw new TransferError('INVALID_ARGUMENT', 'fit: give either validationData or validationSplit, not both.');
  }
  throwIfAborted(options.signal, 'fit');

  if (tf.getBackend() === 'wasm') registerWasmTrainingKernels();
  const split = freezeBoundaryOf(model);
  const vars = split.top.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  if (vars.length === 0) throw new TransferError('INVALID_ARGUMENT', 'fit: nothing to train: every layer of the model is frozen.');
  const trainedLayers = split.top.layers.filter((l) => l.trainable && l.trainableWeights.length > 0).map((l) => l.name);
  const parameters = vars.reduce((a, v) => a + v.size, 0);
  const inputSize = [model.inputShape[0], model.inputShape[1]] as const;

  const source = finitePixels(toLabelledSource(data, model.classes, inputSize, where), 'training'); // reliability: finitePixels
  const cacheable = !augmentArgs || onlyFlip(augmentArgs);
  const views = augmentArgs && cacheable ? [(x: tf.Tensor4D) => x, mirror] : [];
  if (augmentArgs && !cacheable) log('tfjs-transfer: augmentation beyond flipping cannot be cached; the frozen backbone runs every epoch.');
  const extractBatch = options.extractBatchSize ?? batchSize;
  const storeFor = options.cache && cacheable ? { store: options.cache, identity: await extractorIdentity(split, model) } : undefined;
  // >>> reliability: what identifies this run, checked against the checkpoint before the (long) extraction
  const esArgs = options.earlyStopping ? (options.earlyStopping === true ? {} : options.earlyStopping) : undefined;
  const fingerprint: Record<string, unknown> = {
    classes: model.classes,
    backbone: model.backbone.name,
    inputShape: model.inputShape,
    boundary: split.names,
    boundaryShapes: split.shapes,
    trainedLayers,
    weightShapes: vars.map((v) => v.shape),
    images: source.size,
    batchSize,
    optimizer: typeof options.optimizer === 'object' ? (options.optimizer.constructor as { className?: string }).className ?? 'custom' : options.optimizer ?? 'adam',
    learningRate: typeof options.optimizer === 'object' ? null : options.learningRate ?? 1e-4,
    seed,
    validationSplit: options.validationSplit ?? 0,
    validationData: options.validationData !== undefined,
    shuffle: options.shuffle ?? true,
    augment: augmentArgs ?? null,
    earlyStopping: esArgs ? { monitor: esArgs.monitor ?? null, patience: esArgs.patience ?? 3, minDelta: esArgs.minDelta ?? 0, restoreBestWeights: esArgs.restoreBestWeights ?? true } : null,
    classWeight: weightsPerClass ? Array.from(weightsPerClass) : null,
  };
  if (ckpt) {
    checkFingerprint(ckpt, fingerprint, 'fit');
    if (resumed && resumed.state.epoch > epochs) {
      throw new TransferError(
        'INVALID_ARGUMENT',
        `fit: the checkpoint at ${ckpt.store.location} has ${resumed.state.epoch} epochs done, more than epochs: ${epochs}. ` +
          'Ask for at least that many epochs, or pass checkpoint.resume: false to start over.',
      );
    }
  }
  // <<< reliability

  const t0 = Date.now();
  let extractMs = 0;
  let trainMs = 0;
  // With a persistent cache and content keys known up front, only uncached images are decoded at all.
  // Augmentation that cannot be cached re-runs the frozen prefix every epoch; without a validation split to carve
  // out of clean activations, this first pass is already the first epoch's augmented one (same random draws, in
  // the same order, as extracting at the start of epoch 1).
  const augmentUpFront = !cacheable && !options.validationSplit;
  const trainOptions = {
    batchSize: extractBatch,
    views,
    signal: options.signal,
    onProgress: options.onProgress,
    store: storeFor,
    transform: augmentUpFront ? (x: tf.Tensor4D) => augmentImages(x, augmentArgs!, rng) : undefined,
  };
  let acts =
    (storeFor &&
      (await extractCachedFirst(split.extractor, split.shapes, data, (sub) => finitePixels(toLabelledSource(sub, model.classes, inputSize, where), 'training'), { ...trainOptions, store: storeFor }))) ||
    (await extractActivations(split.extractor, split.shapes, source, trainOptions));
  let valActs: Activations | undefined;
  let trainRows: number[] | undefined;
  if (options.validationData) {
    const vsource = finitePixels(toLabelledSource(options.validationData, model.classes, inputSize, `${where}: validationData`), 'validationData'); // reliability
    const valOptions = { batchSize: extractBatch, views: [], signal: options.signal, store: storeFor && { ...storeFor } };
    const validationData = options.validationData;
    valActs =
      (storeFor &&
        (await extractCachedFirst(split.extractor, split.shapes, validationData, (sub) => finitePixels(toLabelledSource(sub, model.classes, inputSize, `${where}: validationData`), 'validationData'), { ...valOptions, store: storeFor }))) ||
      (await extractActivations(split.extractor, split.shapes, vsource, valOptions));
  } else if (options.validationSplit) {
    const parts = splitIndices(acts.labels, options.validationSplit, new Random(seed ^ 0x5bd1e995));
    if (parts.train.length === 0 || parts.validation.length === 0) {
      throw new TransferError('EMPTY_DATA', `fit: validationSplit ${options.validationSplit} of ${acts.n} images leaves an empty split.`);
    }
    valActs = subsetActivations({ ...acts, values: [acts.values[0]!] }, parts.validation);
    acts = subsetActivations(acts, parts.train);
    trainRows = parts.train;
  }
  if (acts.n === 0) throw new TransferError('EMPTY_DATA', 'fit: no training images could be read.');
  // >>> reliability: the labels must match too
  fingerprint.trainLabels = hashNumbers(acts.labels);
  fingerprint.validationLabels = valActs ? hashNumbers(valActs.labels) : null;
  if (ckpt) checkFingerprint(ckpt, fingerprint, 'fit');
  // A NaN or infinite pixel gives NaN features, which the clipped cross-entropy would silently turn into a finite
  // loss with zero gradients: refuse them here, naming the images.
  checkFinite(acts, trainRows, 'training');
  if (valActs) checkFinite(valActs, undefined, options.validationData ? 'validationData' : 'validation split');
  // <<< reliability
  extractMs = Date.now() - t0;
  if (verbose) {
    log(
      `tfjs-transfer: cached ${split.names.join(', ')} activations [${split.shapes.map((s) => s.join('x')).join(', ')}] of ${acts.n} images` +
        `${views.length > 1 ? ` x${views.length} views` : ''}${valActs ? ` (+${valActs.n} validation)` : ''} in ${(extractMs / 1000).toFixed(1)}s; training ${parameters} parameters`,
    );
  }

  const es = options.earlyStopping ? (options.earlyStopping === true ? {} : options.earlyStopping) : undefined;
  const monitor = es?.monitor ?? (valActs ? 'valLoss' : 'loss');
  if (es && monitor.startsWith('val') && !valActs) {
    throw new TransferError('INVALID_ARGUMENT', `fit: earlyStopping monitors ${monitor} but there is no validation data; give validationData or validationSplit, or monitor 'loss'.`);
  }
  const patience = es?.patience ?? 3;
  const minDelta = es?.minDelta ?? 0;
  const restoreBest = es ? es.restoreBestWeights ?? true : false;
  const higherIsBetter = monitor === 'valAccuracy' || monitor === 'accuracy';

  const { optimizer, owned } = makeOptimizer(options.optimizer, options.learningRate ?? 1e-4);
  const dropoutLayers = split.top.layers.filter((l) => l.getClassName() === 'Dropout') as unknown as { seed?: number }[];
  const history: FitHistory = {
    epochs: 0,
    loss: [],
    accuracy: [],
    valLoss: [],
    valAccuracy: [],
    bestEpoch: -1,
    stoppedEarly: false,
    trained: { layers: trainedLayers, parameters },
    boundary: { layers: split.names, shapes: split.shapes },
    timing: { extractMs, trainMs },
    warnings: [], // reliability
    resumedEpochs: 0, // reliability
  };
  let best: number | undefined;
  let bestSnap: Snapshot | undefined;
  let startSnap = snapshot(vars); // reliability: let, replaced when resuming
  let sinceBest = 0;
  const weightsTensorFor = (labels: Int32Array) =>
    weightsPerClass ? tf.tensor1d(Float32Array.from(labels, (c) => weightsPerClass[c]!)) : undefined;

  // >>> reliability: gradient norms, checkpoint state
  const gradientLimit = options.gradientNormWarning ?? 1000;
  const recentNorms: number[] = [];
  let startEpoch = 0;
  let batchCounter = 0;
  // <<< reliability
  try {
    // >>> reliability: resume from the checkpoint
    if (resumed && ckpt) {
      const saved = resumed.weights;
      if (saved.length !== vars.length || saved.some((w, i) => JSON.stringify(w.shape) !== JSON.stringify(vars[i]!.shape))) {
        throw new TransferError('INVALID_ARGUMENT', `fit: the checkpoint at ${ckpt.store.location} holds weights of other shapes than this model's trainable weights; use another checkpoint directory or checkpoint.resume: false.`);
      }
      saved.forEach((w, i) => {
        const t = toTensor(w);
        vars[i]!.assign(t);
        t.dispose();
      });
      await restoreOptimizer(optimizer, resumed.optimizer, resumed.optimizerExtra);
      rng.setState(resumed.state.rngState);
      const h = resumed.state.history;
      history.loss = [...h.loss];
      history.accuracy = [...h.accuracy];
      history.valLoss = [...h.valLoss];
      history.valAccuracy = [...h.valAccuracy];
      history.bestEpoch = h.bestEpoch;
      history.stoppedEarly = resumed.state.stoppedEarly;
      history.warnings = [...(h.warnings ?? [])];
      if (h.initial) history.initial = { ...h.initial };
      history.epochs = resumed.state.epoch;
      history.resumedEpochs = resumed.state.epoch;
      best = resumed.state.best ?? undefined;
      sinceBest = resumed.state.sinceBest;
      if (restoreBest && resumed.best) bestSnap = { values: resumed.best.map(toTensor) };
      startEpoch = resumed.state.epoch;
      batchCounter = resumed.state.batchCounter;
      disposeSnapshot(startSnap);
      startSnap = snapshot(vars);
      if (resumed.state.backend !== tf.getBackend()) {
        log(`tfjs-transfer: the checkpoint was written on the ${resumed.state.backend} backend and resumes on ${tf.getBackend()}; results will differ slightly from an uninterrupted run.`);
      }
      if (verbose) log(`tfjs-transfer: resumed from ${ckpt.store.location} after epoch ${startEpoch}${history.stoppedEarly || startEpoch === epochs ? ' (training was already complete)' : ''}.`);
    }
    // <<< reliability
    if (valActs && !history.initial) {
      const v = await scoreActivations(split.top, valActs, model.numClasses, Math.max(batchSize, 64));
      history.initial = { valLoss: v.loss, valAccuracy: v.accuracy };
    }
    await options.callbacks?.onTrainBegin?.();
    for (let epoch = startEpoch; epoch < epochs && !history.stoppedEarly; epoch++) { // reliability: resumes at startEpoch
      const te = Date.now();
      if (!cacheable && !(augmentUpFront && epoch === 0)) {
        // Fresh random augmentation each epoch: re-run the frozen prefix.
        const fresh = await extractActivations(split.extractor, split.shapes, source, {
          batchSize: extractBatch,
          views: [],
          signal: options.signal,
          transform: (x) => augmentImages(x, augmentArgs!, rng),
        });
        acts = trainRows ? subsetActivations(fresh, trainRows) : fresh;
        checkFinite(acts, trainRows, 'augmented training'); // reliability
      }
      const order = Array.from({ length: acts.n }, (_, i) => i);
      if (options.shuffle ?? true) rng.shuffle(order);
      const viewOf = new Int32Array(acts.n);
      if (views.length > 1) for (let i = 0; i < acts.n; i++) viewOf[i] = rng.int(views.length);
      let lossSum = 0;
      let correct = 0;
      for (let s = 0; s < acts.n; s += batchSize) {
        throwIfAborted(options.signal, 'fit');
        const idx = order.slice(s, s + batchSize);
        for (const d of dropoutLayers) d.seed = rng.seed();
        const labels = Int32Array.from(idx, (r) => acts.labels[r]!);
        let correctT: tf.Scalar | undefined;
        // >>> reliability: computeGradients + applyGradients (what minimize does), so the gradient norm is known
        // before the update and a non-finite step never reaches the weights or the optimizer state.
        const step = tf.tidy(() => {
          const inputs = gatherBatch(acts, idx, (r) => viewOf[r]!);
          const targets = targetsFor(labels, model.numClasses);
          const w = weightsTensorFor(labels);
          const { value, grads } = optimizer.computeGradients(() => {
            const p = split.top.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: true }) as tf.Tensor2D;
            correctT = tf.keep(correctCount(p, targets));
            const reg = split.top.calculateLosses();
            const base = meanLoss(p, targets, w);
            return reg.length ? (tf.addN([base, ...reg]) as tf.Scalar) : base;
          }, vars);
          const squares = Object.values(grads).map((g) => tf.sum(tf.square(g)));
          const norm = tf.sqrt(squares.length === 1 ? squares[0]! : tf.addN(squares)) as tf.Scalar;
          return { value, grads, norm };
        });
        const disposeStep = () => tf.dispose([step.value, step.norm, ...Object.values(step.grads)]);
        let lossV: number;
        let normV: number;
        let correctV: number;
        try {
          lossV = (await step.value.data())[0]!;
          normV = (await step.norm.data())[0]!;
          correctV = correctT ? (await correctT.data())[0]! : 0;
        } finally {
          correctT?.dispose();
        }
        if (Number.isFinite(lossV) && Number.isFinite(normV)) optimizer.applyGradients(step.grads);
        disposeStep();
        if (!Number.isFinite(lossV) || !Number.isFinite(normV)) {
          restore(vars, bestSnap ?? startSnap);
          throw new TransferError(
            'NUMERICAL_FAULT',
            `fit: the ${Number.isFinite(lossV) ? `gradient norm became ${normV}` : `loss became ${lossV}`} at epoch ${epoch + 1}, batch ${s / batchSize + 1}; training stopped and the ` +
              `${bestSnap ? `weights of the best epoch (${history.bestEpoch + 1})` : 'weights from before this fit'} were restored. ` +
              `Lower the learning rate${typeof options.optimizer === 'object' ? '' : ` (now ${options.learningRate ?? 1e-4})`} or check the inputs for NaN.`, // reliability: no rate of a given optimizer
          );
        }
        if (history.warnings.length === 0) {
          const sorted = [...recentNorms].sort((a, b) => a - b);
          const median = sorted.length ? sorted[sorted.length >> 1]! : 0;
          const jump = recentNorms.length >= 5 && median > 0 && normV > 100 * median;
          if (normV > gradientLimit || jump) {
            const warning =
              `tfjs-transfer: exploding gradients? The gradient norm reached ${normV.toPrecision(3)} at epoch ${epoch + 1}, batch ${s / batchSize + 1} ` +
              `(${jump ? `${(normV / median).toFixed(0)}x the running median ${median.toPrecision(3)}` : `above gradientNormWarning ${gradientLimit}`}). ` +
              `Lower the learning rate (now ${options.learningRate ?? 1e-4}) or check the inputs and labels.`;
            history.warnings.push(warning);
            log(warning);
          }
        }
        recentNorms.push(normV);
        if (recentNorms.length > 50) recentNorms.shift();
        // <<< reliability
        lossSum += lossV * idx.length;
        correct += correctV;
        await options.callbacks?.onBatchEnd?.(batchCounter++, { loss: lossV, accuracy: correctV / idx.length, size: idx.length, gradientNorm: normV });
      }
      const logs: EpochLogs = { loss: lossSum / acts.n, accuracy: correct / acts.n };
      if (valActs) {
        const v = await scoreActivations(split.top, valActs, model.numClasses, Math.max(batchSize, 64));
        logs.valLoss = v.loss;
        logs.valAccuracy = v.accuracy;
        history.valLoss.push(v.loss);
        history.valAccuracy.push(v.accuracy);
      }
      history.loss.push(logs.loss);
      history.accuracy.push(logs.accuracy);
      history.epochs = epoch + 1;
      if (verbose) {
        log(
          `epoch ${epoch + 1}/${epochs} - loss ${logs.loss.toFixed(4)} - accuracy ${logs.accuracy.toFixed(4)}` +
            (valActs ? ` - val_loss ${logs.valLoss!.toFixed(4)} - val_accuracy ${logs.valAccuracy!.toFixed(4)}` : '') +
            ` - ${((Date.now() - te) / 1000).toFixed(2)}s`,
        );
      }
      await options.callbacks?.onEpochEnd?.(epoch, logs);
      const value = logs[monitor];
      if (value !== undefined) {
        const improved = best === undefined || (higherIsBetter ? value > best + minDelta : value < best - minDelta);
        if (improved) {
          best = value;
          history.bestEpoch = epoch;
          sinceBest = 0;
          if (restoreBest) {
            disposeSnapshot(bestSnap);
            bestSnap = snapshot(vars);
          }
        } else if (es) {
          sinceBest++;
          if (sinceBest >= patience) {
            history.stoppedEarly = true;
            if (verbose) log(`tfjs-transfer: early stopping after epoch ${epoch + 1}; best ${monitor} ${best!.toFixed(4)} at epoch ${history.bestEpoch + 1}.`);
            // reliability: the loop ends after the checkpoint below (was: break)
          }
        }
      }
      // >>> reliability: checkpoint after the epoch, with everything needed to continue bit-identically
      if (ckpt && ((epoch + 1) % ckpt.every === 0 || epoch + 1 === epochs || history.stoppedEarly)) {
        const opt = await captureOptimizer(optimizer);
        const names = split.top.trainableWeights.map((w) => (w as unknown as { originalName: string }).originalName);
        await writeCheckpoint(
          ckpt,
          {
            state: {
              epoch: epoch + 1,
              batchCounter,
              seed,
              rngState: rng.getState(),
              best,
              sinceBest,
              stoppedEarly: history.stoppedEarly,
              history: {
                loss: history.loss,
                accuracy: history.accuracy,
                valLoss: history.valLoss,
                valAccuracy: history.valAccuracy,
                bestEpoch: history.bestEpoch,
                initial: history.initial,
                trainMs: Date.now() - t0 - extractMs,
                warnings: history.warnings,
              },
              backend: tf.getBackend(),
            },
            fingerprint,
            weights: await Promise.all(vars.map((v, i) => storeTensor(names[i] ?? `weight_${i}`, v))),
            optimizer: opt.weights,
            optimizerExtra: opt.extra,
            best: restoreBest && bestSnap ? await Promise.all(bestSnap.values.map((t, i) => storeTensor(`best/${names[i] ?? i}`, t))) : undefined,
          },
          'fit',
        );
      }
      // <<< reliability
    }
    if (restoreBest && bestSnap && history.bestEpoch !== history.epochs - 1) restore(vars, bestSnap);
    trainMs = Date.now() - t0 - extractMs;
    history.timing = { extractMs, trainMs };
    if (valActs && options.validationData) {
      // evaluate(model, sameValidationData) right after fit reuses these instead of running the backbone again.
      lastValidation.set(model, { data: options.validationData, signature: freezeSignature(model), identity: await extractorIdentity(split, model), acts: valActs });
    }
    await options.callbacks?.onTrainEnd?.(history);
    return history;
  } finally {
    disposeSnapshot(bestSnap);
    disposeSnapshot(startSnap);
    if (owned) optimizer.dispose();
  }
}

/**
 * A string that changes whenever the frozen prefix would compute different activations: backbone identity, input
 * size, preprocessing, boundary layers, and a hash of every weight of the prefix. @internal
 */
export async function extractorIdentity(split: FreezeBoundary, model: TransferModel): Promise<string> {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h ^= x;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const layer of split.frozenLayers) {
    for (const w of layer.getWeights()) {
      const data = await w.data();
      const bytes = new Uint32Array(data.buffer, data.byteOffset, data.byteLength >>> 2);
      for (let i = 0; i < bytes.length; i++) mix(bytes[i]!);
    }
  }
  const desc = JSON.stringify({
    b: model.backbone.name,
    src: model.backbone.source,
    s: model.inputShape,
    p: model.backbone.preprocessing,
    n: split.names,
    sh: split.shapes,
  });
  for (let i = 0; i < desc.length; i++) mix(desc.charCodeAt(i));
  return `v1-${h.toString(16).padStart(8, '0')}`;
}
