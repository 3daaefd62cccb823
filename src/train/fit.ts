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
import { log } from '../env';
import { TransferError, check, throwIfAborted } from '../errors';
import { TransferModel } from '../transfer-model';
import type { LabelledData, ProgressCallback } from '../types';
import { Random } from '../util/random';
import { extractActivations, gatherBatch, subsetActivations, type ActivationStore, type Activations } from './activations';
import { splitAtFreezeBoundary, type FreezeBoundary } from './boundary';
import { correctCount, meanLoss, targetsFor } from './losses';
import { toLabelledSource } from './source';
import { registerWasmTrainingKernels } from './wasm-kernels';

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
  /** After each batch, with its loss and accuracy. */
  onBatchEnd?: (batch: number, logs: { loss: number; accuracy: number; size: number }) => void | Promise<void>;
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
  initial?: { valLoss: number; valAccuracy: number };
  /** Where training started: `{ layers, parameters }` that were trained. */
  trained: { layers: string[]; parameters: number };
  /** The freeze-boundary activations: which layers' outputs were cached and their shape per image. */
  boundary: { layers: string[]; shapes: number[][] };
  /** Milliseconds spent extracting features, and training. */
  timing: { extractMs: number; trainMs: number };
}

const splitCache = new WeakMap<TransferModel, { signature: string; split: FreezeBoundary }>();

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

/** Seeded stratified split of `labels` into train and validation row lists. @internal */
export function stratifiedSplit(labels: Int32Array, fraction: number, rng: Random): { train: number[]; validation: number[] } {
  const byClass = new Map<number, number[]>();
  labels.forEach((c, i) => {
    const list = byClass.get(c) ?? [];
    list.push(i);
    byClass.set(c, list);
  });
  const train: number[] = [];
  const validation: number[] = [];
  for (const rows of [...byClass.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1])) {
    rng.shuffle(rows);
    const k = Math.round(rows.length * fraction);
    validation.push(...rows.slice(0, k));
    train.push(...rows.slice(k));
  }
  return { train: train.sort((a, b) => a - b), validation: validation.sort((a, b) => a - b) };
}

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
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
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

  const source = toLabelledSource(data, model.classes, inputSize, where);
  const cacheable = !augmentArgs || onlyFlip(augmentArgs);
  const views = augmentArgs && cacheable ? [(x: tf.Tensor4D) => x, mirror] : [];
  if (augmentArgs && !cacheable) log('tfjs-transfer: augmentation beyond flipping cannot be cached; the frozen backbone runs every epoch.');
  const extractBatch = options.extractBatchSize ?? batchSize;
  const storeFor = options.cache && cacheable ? { store: options.cache, identity: await extractorIdentity(split, model) } : undefined;

  const t0 = Date.now();
  let extractMs = 0;
  let trainMs = 0;
  let acts = await extractActivations(split.extractor, split.shapes, source, {
    batchSize: extractBatch,
    views,
    signal: options.signal,
    onProgress: options.onProgress,
    store: storeFor,
  });
  let valActs: Activations | undefined;
  let trainRows: number[] | undefined;
  if (options.validationData) {
    const vsource = toLabelledSource(options.validationData, model.classes, inputSize, `${where}: validationData`);
    valActs = await extractActivations(split.extractor, split.shapes, vsource, { batchSize: extractBatch, views: [], signal: options.signal, store: storeFor && { ...storeFor } });
  } else if (options.validationSplit) {
    const parts = stratifiedSplit(acts.labels, options.validationSplit, new Random(seed ^ 0x5bd1e995));
    if (parts.train.length === 0 || parts.validation.length === 0) {
      throw new TransferError('EMPTY_DATA', `fit: validationSplit ${options.validationSplit} of ${acts.n} images leaves an empty split.`);
    }
    valActs = subsetActivations({ ...acts, values: [acts.values[0]!] }, parts.validation);
    acts = subsetActivations(acts, parts.train);
    trainRows = parts.train;
  }
  if (acts.n === 0) throw new TransferError('EMPTY_DATA', 'fit: no training images could be read.');
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
  };
  let best: number | undefined;
  let bestSnap: Snapshot | undefined;
  const startSnap = snapshot(vars);
  let sinceBest = 0;
  const weightsTensorFor = (labels: Int32Array) =>
    weightsPerClass ? tf.tensor1d(Float32Array.from(labels, (c) => weightsPerClass[c]!)) : undefined;

  try {
    if (valActs) {
      const v = await scoreActivations(split.top, valActs, model.numClasses, Math.max(batchSize, 64));
      history.initial = { valLoss: v.loss, valAccuracy: v.accuracy };
    }
    await options.callbacks?.onTrainBegin?.();
    let batchCounter = 0;
    for (let epoch = 0; epoch < epochs; epoch++) {
      const te = Date.now();
      if (!cacheable) {
        // Fresh random augmentation each epoch: re-run the frozen prefix.
        const fresh = await extractActivations(split.extractor, split.shapes, source, {
          batchSize: extractBatch,
          views: [],
          signal: options.signal,
          transform: (x) => augmentImages(x, augmentArgs!, rng),
        });
        acts = trainRows ? subsetActivations(fresh, trainRows) : fresh;
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
        const lossT = tf.tidy(() => {
          const inputs = gatherBatch(acts, idx, (r) => viewOf[r]!);
          const targets = targetsFor(labels, model.numClasses);
          const w = weightsTensorFor(labels);
          return optimizer.minimize(
            () => {
              const p = split.top.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: true }) as tf.Tensor2D;
              correctT = tf.keep(correctCount(p, targets));
              const reg = split.top.calculateLosses();
              const base = meanLoss(p, targets, w);
              return reg.length ? (tf.addN([base, ...reg]) as tf.Scalar) : base;
            },
            true,
            vars,
          ) as tf.Scalar;
        });
        const lossV = (await lossT.data())[0]!;
        const correctV = correctT ? (await correctT.data())[0]! : 0;
        lossT.dispose();
        correctT?.dispose();
        if (!Number.isFinite(lossV)) {
          restore(vars, bestSnap ?? startSnap);
          throw new TransferError(
            'NUMERICAL_FAULT',
            `fit: the loss became ${lossV} at epoch ${epoch + 1}, batch ${s / batchSize + 1}; training stopped and the ` +
              `${bestSnap ? `weights of the best epoch (${history.bestEpoch + 1})` : 'weights from before this fit'} were restored. ` +
              `Lower the learning rate (now ${options.learningRate ?? 1e-4}) or check the inputs for NaN.`,
          );
        }
        lossSum += lossV * idx.length;
        correct += correctV;
        await options.callbacks?.onBatchEnd?.(batchCounter++, { loss: lossV, accuracy: correctV / idx.length, size: idx.length });
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
            break;
          }
        }
      }
    }
    if (restoreBest && bestSnap && history.bestEpoch !== history.epochs - 1) restore(vars, bestSnap);
    trainMs = Date.now() - t0 - extractMs;
    history.timing = { extractMs, trainMs };
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
