/**
 * Stage 4 of {@link fit}: the epoch loop over cached activations, driving a {@link CallbackList} (tfjs-layers'
 * `fitLoop`). Each step computes the gradients and their global norm first and applies them only when the loss and
 * the norm are finite, so a NaN step never reaches the weights or the optimizer state (the numerical-guard
 * callback then reports it).
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { gatherBatch, type Activations } from './activations';
import type { CallbackList, EpochLogs } from './callbacks';
import type { FitState } from './fit-state';
import { variableGradsFreeingEarly } from './gradients';
import { correctCount, meanLoss, targetsFor } from './losses';
import type { Yielder } from './yield';
import { log } from '../env';
import type { ParallelTraining } from '../services';
import { openParallelTraining, parallelScore, parallelTrainStep } from './parallel-step';
import { applyGradients } from './fused-adam';

/** The activations the loop trains and validates on. @internal */
export interface TrainingData {
  /** Training activations for `epoch`: the cached ones, or freshly augmented ones when augmentation cannot be cached. */
  activationsFor(epoch: number): Promise<Activations>;
  /** Validation activations, if any. */
  validation: Activations | undefined;
  /** Cached views per image (2 with flip augmentation: a random one per image and epoch). */
  views: number;
}

/** Runs the epochs from `state.startEpoch`, with the callbacks' hooks around them. @internal */
export async function runEpochs(state: FitState, data: TrainingData, callbacks: CallbackList, yielder: Yielder): Promise<void> {
  const { model, args, history } = state;
  await callbacks.onTrainBegin();
  const parallel: { job: ParallelTraining | undefined } = { job: await openParallelTraining(state) };
  try {
    await runAllEpochs(state, data, callbacks, yielder, parallel);
  } finally {
    parallel.job?.dispose();
  }
}

async function runAllEpochs(state: FitState, data: TrainingData, callbacks: CallbackList, yielder: Yielder, parallel: { job: ParallelTraining | undefined }): Promise<void> {
  const { model, args, history } = state;
  if (data.validation && !history.initial) {
    const v = await scoreValidation(state, data.validation, parallel);
    history.initial = { valLoss: v.loss, valAccuracy: v.accuracy };
  }
  for (let epoch = state.startEpoch; epoch < args.epochs && !model.stopTraining; epoch++) {
    await callbacks.onEpochBegin(epoch);
    const logs = await runEpoch(state, data, callbacks, epoch, yielder, parallel);
    if (data.validation) {
      const v = await scoreValidation(state, data.validation, parallel);
      logs.valLoss = v.loss;
      logs.valAccuracy = v.accuracy;
      history.valLoss.push(v.loss);
      history.valAccuracy.push(v.accuracy);
    }
    history.loss.push(logs.loss);
    history.accuracy.push(logs.accuracy);
    history.epochs = epoch + 1;
    await callbacks.onEpochEnd(epoch, logs);
    await yielder.epochEnd();
  }
}

async function runEpoch(
  state: FitState,
  data: TrainingData,
  callbacks: CallbackList,
  epoch: number,
  yielder: Yielder,
  parallel: { job: ParallelTraining | undefined },
): Promise<EpochLogs> {
  const { rng, args } = state;
  const acts = await data.activationsFor(epoch);
  const order = Array.from({ length: acts.n }, (_, i) => i);
  if (args.shuffle) rng.shuffle(order);
  const viewOf = new Int32Array(acts.n);
  if (data.views > 1) for (let i = 0; i < acts.n; i++) viewOf[i] = rng.int(data.views);
  const dropoutLayers = state.split.top.layers.filter((l) => l.getClassName() === 'Dropout') as unknown as { seed?: number }[];
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  for (let s = 0; s < acts.n && !state.model.stopTraining; s += args.batchSize) {
    const idx = order.slice(s, s + args.batchSize);
    await callbacks.onBatchBegin(state.batchCounter, { size: idx.length });
    const seeds = dropoutLayers.map((d) => (d.seed = rng.seed()));
    const step = await anyStep(state, acts, idx, (r) => viewOf[r]!, seeds, parallel);
    lossSum += step.loss * idx.length;
    correct += step.correct;
    seen += idx.length;
    await callbacks.onBatchEnd(state.batchCounter++, { loss: step.loss, accuracy: step.correct / idx.length, size: idx.length, gradientNorm: step.norm });
    await yielder.batchEnd();
  }
  return { loss: lossSum / seen, accuracy: correct / seen };
}

/**
 * One step on the workers when a parallel job is open, else in this thread. A job that fails mid-run is said once
 * and released; the step, and the rest of the run, train in this thread (from the same weights).
 */
async function anyStep(
  state: FitState,
  acts: Activations,
  idx: number[],
  viewOf: (row: number) => number,
  seeds: number[],
  parallel: { job: ParallelTraining | undefined },
): Promise<{ loss: number; norm: number; correct: number }> {
  const job = parallel.job;
  if (job) {
    try {
      return await parallelTrainStep(state, job, acts, idx, viewOf, seeds);
    } catch (e) {
      parallel.job = undefined;
      job.dispose();
      log(`tfjs-transfer: training goes on in this thread: a worker thread failed (${e instanceof Error ? e.message : String(e)}).`);
    }
  }
  return trainStep(state, acts, idx, viewOf);
}

/** One gradient step on rows `idx` in this thread: loss, gradient norm and correct count, applied only when finite. @internal */
export async function trainStep(state: FitState, acts: Activations, idx: number[], viewOf: (row: number) => number): Promise<{ loss: number; norm: number; correct: number }> {
  const { model, split, optimizer, vars } = state;
  const weights = state.args.classWeight;
  const labels = Int32Array.from(idx, (r) => acts.labels[r]!);
  let correctT: tf.Scalar | undefined;
  // computeGradients + applyGradients (what minimize does), so the norm is known before the update. tfjs' own
  // computeGradients is tf.variableGrads, run here with a backward pass that frees as it goes; an optimizer that
  // overrides computeGradients gets its own.
  const gradients = optimizer.computeGradients === tf.Optimizer.prototype.computeGradients
    ? variableGradsFreeingEarly
    : (f: () => tf.Scalar, v: tf.Variable[]) => optimizer.computeGradients(f, v);
  const step = tf.tidy(() => {
    const inputs = gatherBatch(acts, idx, viewOf);
    const targets = targetsFor(labels, model.numClasses);
    const w = weights ? tf.tensor1d(Float32Array.from(labels, (c) => weights[c]!)) : undefined;
    const { value, grads } = gradients(() => {
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
  try {
    const loss = (await step.value.data())[0]!;
    const norm = (await step.norm.data())[0]!;
    const correct = correctT ? (await correctT.data())[0]! : 0;
    if (Number.isFinite(loss) && Number.isFinite(norm)) applyGradients(optimizer, step.grads);
    return { loss, norm, correct };
  } finally {
    correctT?.dispose();
    tf.dispose([step.value, step.norm, ...Object.values(step.grads)]);
  }
}

/**
 * The validation pass: on the workers of the parallel job when one is open (each scores a share of every chunk),
 * else in this thread. A failing job is released and the pass runs here.
 */
async function scoreValidation(state: FitState, acts: Activations, parallel: { job: ParallelTraining | undefined }): Promise<{ loss: number; accuracy: number }> {
  const job = parallel.job;
  const chunk = Math.max(state.args.batchSize, 64);
  if (job) {
    try {
      return await parallelScore(state, job, acts, chunk * job.workers);
    } catch (e) {
      parallel.job = undefined;
      job.dispose();
      log(`tfjs-transfer: validation goes on in this thread: a worker thread failed (${e instanceof Error ? e.message : String(e)}).`);
    }
  }
  return scoreActivations(state.split.top, acts, state.model.numClasses, chunk);
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
