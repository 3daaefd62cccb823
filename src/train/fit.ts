/**
 * `fit`: step 4, train the trainable part of a {@link TransferModel}.
 *
 * The frozen prefix runs once per image (in inference mode) and its output is cached; epochs then train only the
 * top on the cached activations. Mirrored images are cached as a second view, so flip augmentation stays cheap;
 * other augmentations re-run the frozen prefix each epoch (said in a log line). Gradients never flow through
 * frozen layers, so no backend has to hold a whole backbone's activations for backpropagation.
 *
 * `fit` is a short pipeline of stages, each in its own module:
 * 1. resolve and check the arguments (`fit-args.ts`, {@link FIT_DEFAULTS});
 * 2. build the sources (`fit-sources.ts`);
 * 3. split at the freeze boundary (`boundary.ts`) and obtain the activations (`fit-activations.ts`: cache, worker
 *    pool or folded prefix);
 * 4. the epoch loop (`epoch-loop.ts`), driving callbacks that share one interface (`callbacks.ts`): the built-in
 *    abort, numerical guard, progress and logging, early stopping and checkpoint callbacks (`callbacks/`), then
 *    the caller's.
 * @module
 */
import { RESIZE_FITS, type ResizeFit } from '../data/resize';
import { fitUnknownAfterTraining } from './fit-unknown';
import { unknownMethodFor } from '../unknown-detector';
import * as tf from '@tensorflow/tfjs-core';
import { env } from '../env';
import { TransferError, check, throwIfAborted } from '../errors';
import { TransferModel, type TrainingRun } from '../transfer-model';
import type { LabelledData } from '../types';
import { Random } from '../util/random';
import { freezeBoundaryOf, type FreezeBoundary } from './boundary';
import { CallbackList, type FitCallback } from './callbacks';
import { abortCallback, disposedWhileTraining } from './callbacks/abort';
import { checkpointCallback } from './callbacks/checkpointing';
import { earlyStopping, monitorOf, restoreBestWeights } from './callbacks/early-stopping';
import { numericalGuard } from './callbacks/numerical-guard';
import { progressCallback } from './callbacks/progress';
import { checkFingerprint, hashNumbers, openCheckpoint, type CheckpointSession, type RunFingerprint } from './checkpoint';
import { runEpochs } from './epoch-loop';
import { obtainActivations, type FitActivations } from './fit-activations';
import { resolveFitArgs, type FitArgs, type ResolvedFitArgs } from './fit-args';
import { buildSources, type FitSources } from './fit-sources';
import { disposeSnapshot, snapshot, type FitState } from './fit-state';
import { emptyHistory, type FitHistory } from './history';
import { extractorIdentity } from './identity';
import { KeptActivations } from './kept-activations';
import { registerWasmTrainingKernels } from './wasm-kernels';
import { createYielder } from './yield';

export type { BatchBeginLogs, BatchLogs, EpochLogs, FitCallback } from './callbacks';
export { EARLY_STOPPING_DEFAULTS, FIT_DEFAULTS, type EarlyStoppingArgs, type FitArgs, type YieldEvery } from './fit-args';
export type { FitHistory } from './history';
export { KeptActivations } from './kept-activations';

function makeOptimizer(args: ResolvedFitArgs): { optimizer: tf.Optimizer; owned: boolean } {
  const choice = args.optimizer;
  if (typeof choice === 'object' && choice !== null && typeof (choice as tf.Optimizer).minimize === 'function') return { optimizer: choice, owned: false };
  switch (choice) {
    case 'adam':
      return { optimizer: tf.train.adam(args.learningRate), owned: true };
    case 'sgd':
      return { optimizer: tf.train.sgd(args.learningRate), owned: true };
    case 'rmsprop':
      return { optimizer: tf.train.rmsprop(args.learningRate), owned: true };
    default:
      throw new TransferError('INVALID_ARGUMENT', `fit: optimizer must be 'adam', 'sgd', 'rmsprop' or a tf.Optimizer, got ${JSON.stringify(choice)}.`);
  }
}

/** What identifies this run; checked against a checkpoint before the (long) extraction, and again after it. */
function fingerprintOf(model: TransferModel, split: FreezeBoundary, args: ResolvedFitArgs, seed: number, images: number): RunFingerprint {
  const vars = trainableVariables(split);
  const es = args.earlyStopping;
  return {
    classes: model.classes,
    backbone: model.backbone.name,
    inputShape: model.inputShape,
    boundary: split.names,
    boundaryShapes: split.shapes,
    trainedLayers: trainedLayers(split),
    weightShapes: vars.map((v) => v.shape),
    images,
    batchSize: args.batchSize,
    optimizer: typeof args.optimizer === 'object' ? ((args.optimizer.constructor as { className?: string }).className ?? 'custom') : args.optimizer,
    learningRate: args.givenOptimizer ? null : args.learningRate,
    seed,
    validationSplit: args.validationSplit,
    validationData: args.validationData !== undefined,
    shuffle: args.shuffle,
    augment: args.augment ?? null,
    earlyStopping: es ? { monitor: es.monitor ?? null, patience: es.patience, minDelta: es.minDelta, restoreBestWeights: es.restoreBestWeights } : null,
    classWeight: args.classWeight ? Array.from(args.classWeight) : null,
  };
}

function trainableVariables(split: FreezeBoundary): tf.Variable[] {
  return split.top.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
}

function trainedLayers(split: FreezeBoundary): string[] {
  return split.top.layers.filter((l) => l.trainable && l.trainableWeights.length > 0).map((l) => l.name);
}

/** Opens the checkpoint (its seed is the run's when none is given) and refuses one of another run or with too many epochs. */
async function openRun(model: TransferModel, split: FreezeBoundary, args: ResolvedFitArgs, seedArg: number | undefined, images: number) {
  const session: CheckpointSession | undefined = args.checkpoint ? await openCheckpoint(args.checkpoint, 'fit') : undefined;
  const seed = seedArg ?? session?.found?.state.seed ?? Math.floor(Math.random() * 2 ** 31);
  const fingerprint = fingerprintOf(model, split, args, seed, images);
  if (session) {
    checkFingerprint(session, fingerprint, 'fit');
    const found = session.found;
    if (found && found.state.epoch > args.epochs) {
      throw new TransferError(
        'INVALID_ARGUMENT',
        `fit: the checkpoint at ${session.store.location} has ${found.state.epoch} epochs done, more than epochs: ${args.epochs}. ` +
          'Ask for at least that many epochs, or pass checkpoint.resume: false to start over.',
      );
    }
  }
  return { session, seed, fingerprint };
}

/** The built-in callbacks, in the order they run, then the caller's. */
function callbacksFor(state: FitState, session: CheckpointSession | undefined, fingerprint: RunFingerprint, user: FitCallback[]): CallbackList {
  const say = state.args.verbose ? (m: string) => env.logger(m) : () => undefined;
  const builtIn: FitCallback[] = [abortCallback(state.args.signal, state.model), numericalGuard(state), progressCallback(state, say), earlyStopping(state, say)];
  if (session) builtIn.push(checkpointCallback(state, session, fingerprint, say));
  return new CallbackList([...builtIn, ...user]);
}

/**
 * Trains the trainable part of `model` on `data`: the head, plus any backbone layers left unfrozen by
 * {@link freeze}. Frozen layers are bit-identical afterwards, BatchNorm statistics included.
 *
 * `data` is `{ xs, ys }` with `xs` raw RGB pixels 0..255 `[n, h, w, 3]` (resized to the model's input size if
 * needed) and `ys` class indices, names or one-hot rows; or an `ImageDataset` (e.g. `imageFolder(...).train`).
 *
 * Works on every backend, wasm included (the missing convolution gradients are provided for fine-tuning). Training
 * yields to the event loop (see {@link FitArgs.yieldEvery}). A second `fit` of the same model while one runs is
 * refused.
 *
 * @returns The loss and accuracy of every epoch (validation too, when given).
 * @category Step 4: Train
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
  check(options == null || typeof options === 'object', 'fit: options must be an object.');
  const args = resolveFitArgs(model, options ?? {});
  model.assertUsable('fit');
  if (model.isTraining) {
    throw new TransferError('INVALID_ARGUMENT', 'fit: this model is already training (another fit call has not finished); await it first, or train a second model.');
  }
  throwIfAborted(args.signal, 'fit');
  model.setTraining(true);
  // The weights change, so a calibration record (whose temperature stays folded in them) no longer describes them.
  model.setCalibration(undefined);
  // The detector was fitted on features that training may change; it is refitted after training.
  model.setUnknownDetector(undefined);
  model.setEvaluation(undefined); // an evaluation of the old weights no longer describes the model either
  try {
    const history = await train(model, data, args, options?.seed ?? undefined);
    if (model.isDisposePending) throw disposedWhileTraining();
    return history;
  } finally {
    model.setTraining(false); // frees the model here if dispose() was called meanwhile
  }
}

/** The stages, in order. */
async function train(model: TransferModel, data: LabelledData, args: ResolvedFitArgs, seedArg: number | undefined): Promise<FitHistory> {
  if (tf.getBackend() === 'wasm') registerWasmTrainingKernels();
  const split = freezeBoundaryOf(model);
  const vars = trainableVariables(split);
  if (vars.length === 0) throw new TransferError('INVALID_ARGUMENT', 'fit: nothing to train: every layer of the model is frozen.');
  // Once backbone layers train, the backbone's pretrained classifier no longer matches its features.
  if (split.top.layers.some((l) => l.trainable && l.trainableWeights.length > 0 && !model.headLayers.includes(l.name))) model.backbone.forgetPretrainedClassifier();
  if (args.unknown) unknownMethodFor(args.unknown, model.backbone.pretrainedClassifier, model.headSpec.pooling, model.backbone.featureShape[model.backbone.featureShape.length - 1]!, 'fit');
  const sources = buildSources(model, data, args);
  const { session, seed, fingerprint } = await openRun(model, split, args, seedArg, sources.train.size);
  const rng = new Random(seed);
  const yielder = createYielder(args.yieldEvery);
  const t0 = Date.now();
  const acts = await obtainActivations({ model, data, split, sources, args, seed, rng, yielder });
  try {
    return await trainOn(model, data, args, { split, vars, session, seed, fingerprint, rng, yielder, t0 }, acts);
  } finally {
    acts.dispose(); // a spill file is closed and deleted, on success, error and abort alike
  }
}

/** The stages after the activations: the epochs, the detector, the record of the run. */
async function trainOn(
  model: TransferModel,
  data: LabelledData,
  args: ResolvedFitArgs,
  run: { split: FreezeBoundary; vars: tf.Variable[]; session: CheckpointSession | undefined; seed: number; fingerprint: RunFingerprint; rng: Random; yielder: ReturnType<typeof createYielder>; t0: number },
  acts: FitActivations,
): Promise<FitHistory> {
  const { split, vars, session, seed, fingerprint, rng, yielder, t0 } = run;
  // The labels must match too.
  fingerprint.trainLabels = await hashNumbers(acts.train.labels);
  fingerprint.validationLabels = acts.validation ? await hashNumbers(acts.validation.labels) : null;
  if (session) checkFingerprint(session, fingerprint, 'fit');
  const extractMs = Date.now() - t0;
  logExtraction(args, split, acts, extractMs, vars);
  const monitor = monitorOf(args.earlyStopping, acts.validation !== undefined);
  const { optimizer, owned } = makeOptimizer(args); // Adam allocates its state here: nothing may throw between this and the try
  const history = emptyHistory({ layers: trainedLayers(split), parameters: vars.reduce((a, v) => a + v.size, 0) }, { layers: split.names, shapes: split.shapes });
  const state: FitState = {
    model, split, args, seed, rng, vars, optimizer, history, t0, extractMs,
    monitor,
    startEpoch: 0, batchCounter: 0, best: undefined, sinceBest: 0, startWeights: snapshot(vars), bestWeights: undefined,
  };
  model.stopTraining = false;
  try {
    const callbacks = callbacksFor(state, session, fingerprint, args.callbacks);
    await runEpochs(state, acts, callbacks, yielder);
    restoreBestWeights(state); // before the detector is fitted on the final weights' features
    history.timing = { extractMs, trainMs: Date.now() - t0 - extractMs };
    if (!model.isDisposePending) await fitUnknownAfterTraining(model, split, acts, args, seed);
    await keepValidation(model, args, acts, split, history);
    await callbacks.onTrainEnd(history);
    model.addTrainingRun(trainingRun(model, state, acts, fingerprint));
    // The model fits new photos the way its training images were fitted (a pipeline dataset says how; tensors do not).
    const dataFit = (data as { fit?: unknown }).fit;
    if (RESIZE_FITS.includes(dataFit as ResizeFit)) model.setResizeFit(dataFit as ResizeFit);
    return history;
  } finally {
    model.stopTraining = false;
    disposeSnapshot(state.bestWeights);
    disposeSnapshot(state.startWeights);
    if (owned) optimizer.dispose();
  }
}

/** What the model card records of this run. */
function trainingRun(model: TransferModel, state: FitState, acts: FitActivations, fingerprint: RunFingerprint): TrainingRun {
  const { history, args } = state;
  const imagesPerClass: Record<string, number> = Object.fromEntries(model.classes.map((c) => [c, 0]));
  for (const label of acts.train.labels) {
    const name = model.classes[label];
    if (name !== undefined) imagesPerClass[name] = (imagesPerClass[name] ?? 0) + 1;
  }
  const best = history.valAccuracy[history.bestEpoch];
  return {
    imagesPerClass,
    validationImages: acts.validation?.n ?? 0,
    epochs: history.epochs,
    bestEpoch: history.bestEpoch,
    stoppedEarly: history.stoppedEarly,
    ...(best !== undefined ? { valAccuracy: best } : {}),
    trainedLayers: [...history.trained.layers],
    trainedParameters: history.trained.parameters,
    curves: { loss: [...history.loss], accuracy: [...history.accuracy], valLoss: [...history.valLoss], valAccuracy: [...history.valAccuracy] },
    settings: {
      optimizer: String(fingerprint.optimizer),
      learningRate: args.givenOptimizer ? null : args.learningRate,
      batchSize: args.batchSize,
      seed: state.seed,
      validationSplit: args.validationSplit,
      augment: fingerprint.augment,
      earlyStoppingPatience: args.earlyStopping ? args.earlyStopping.patience : null,
    },
    finishedAt: new Date().toISOString(),
  };
}

function logExtraction(args: ResolvedFitArgs, split: FreezeBoundary, acts: FitActivations, ms: number, vars: tf.Variable[]): void {
  if (!args.verbose) return;
  const parameters = vars.reduce((a, v) => a + v.size, 0);
  env.logger(
    `tfjs-transfer: cached ${split.names.join(', ')} activations [${split.shapes.map((s) => s.join('x')).join(', ')}] of ${acts.train.n} images` +
      `${acts.views > 1 ? ` x${acts.views} views` : ''}${acts.validation ? ` (+${acts.validation.n} validation)` : ''} in ${(ms / 1000).toFixed(1)}s` +
      ` (${storageOf(acts)}); training ${parameters} parameters`,
  );
}

/** How the training rows are stored, for the log: their encodings and where. */
function storageOf(acts: FitActivations): string {
  const encodings = [...new Set(acts.train.rows[0]?.map((r) => r.encoding) ?? [])].join('/');
  return `${encodings}, ${acts.where === 'memory' ? 'in memory' : `spilled to ${acts.where}`}`;
}

async function keepValidation(model: TransferModel, args: ResolvedFitArgs, acts: FitActivations, split: FreezeBoundary, history: FitHistory): Promise<void> {
  if (!args.keepValidationActivations || !acts.validation || !args.validationData) return;
  history.validationActivations = new KeptActivations(model, args.validationData, acts.validation, await extractorIdentity(split, model));
}
