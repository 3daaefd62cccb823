/**
 * Gradient steps on `env.parallelTrainer` (data-parallel: each worker computes the gradients of its share of the
 * batch, this thread adds them and applies the optimizer), with the fall-back to this thread when the trainer
 * declines the job or fails.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { env, log } from '../env';
import type { ParallelTraining, PortableTop } from '../services';
import { gatherBatch, type Activations } from './activations';
import type { FitState } from './fit-state';
import { applyGradients } from './fused-adam';

/** The top with its weights, for the workers. */
function portableTop(top: tfl.LayersModel, numClasses: number): PortableTop {
  return {
    topology: top.toJSON(null, false),
    weights: top.weights.map((w) => ({ name: w.name, shape: [...w.shape] as number[], values: new Float32Array(w.read().dataSync() as Float32Array) })),
    numClasses,
  };
}

/**
 * Opens a data-parallel job for `state`'s top on `env.parallelTrainer`, or returns `undefined` (no trainer, a
 * BatchNormalization layer among the trainable ones, the trainer declines, or it fails to start: then said once, and
 * training stays in this thread).
 * @internal
 */
export async function openParallelTraining(state: FitState): Promise<ParallelTraining | undefined> {
  const trainer = env.parallelTrainer;
  if (!trainer) return undefined;
  const { split, model, args, vars } = state;
  const batchNorms = split.top.layers.filter((l) => l.getClassName() === 'BatchNormalization').map((l) => l.name);
  if (batchNorms.length > 0) {
    // In training mode a BatchNormalization layer normalises by the statistics of the rows it is given and moves its
    // running averages: a worker's share of the batch would give other numbers than the whole batch.
    log(`tfjs-transfer: training stays on this thread: the trainable layers include BatchNormalization (${batchNorms.slice(0, 3).join(', ')}${batchNorms.length > 3 ? ', ...' : ''}), which a share of the batch would normalise differently.`);
    return undefined;
  }
  try {
    const job = await trainer.openTraining(() => portableTop(split.top, model.numClasses), {
      backend: tf.getBackend(),
      batchSize: args.batchSize,
      boundaryShapes: split.shapes,
      parameters: vars.reduce((a, v) => a + v.size, 0),
    });
    if (job) log(`tfjs-transfer: training on ${job.workers} worker threads (each computes the gradients of 1/${job.workers} of every batch).`);
    return job;
  } catch (e) {
    log(`tfjs-transfer: training stays on this thread: the worker threads could not take the job (${e instanceof Error ? e.message : String(e)}).`);
    return undefined;
  }
}

/**
 * One gradient step on rows `idx` through `job`: the same loss, norm and update as the single-thread step, up to
 * float rounding (the shards' gradients are added in worker order). The update is applied only when the loss and
 * the norm are finite.
 * @internal
 */
export async function parallelTrainStep(
  state: FitState,
  job: ParallelTraining,
  acts: Activations,
  idx: number[],
  viewOf: (row: number) => number,
  dropoutSeeds: number[],
): Promise<{ loss: number; norm: number; correct: number }> {
  const { optimizer, vars } = state;
  const classWeight = state.args.classWeight;
  const inputs = await gatherRows(acts, idx, viewOf);
  const labels = Int32Array.from(idx, (r) => acts.labels[r]!);
  const sampleWeights = classWeight ? Float32Array.from(labels, (c) => classWeight[c]!) : undefined;
  const weights = await Promise.all(vars.map(async (v) => (await v.data()) as Float32Array));
  const r = await job.gradients(weights, { inputs, labels, sampleWeights, dropoutSeeds });
  const grads: tf.NamedTensorMap = {};
  vars.forEach((v, i) => (grads[v.name] = tf.tensor(r.grads[i]!, v.shape, 'float32')));
  try {
    // The workers' sum of squares when they give it (each squares its part of the sum), else on the backend as the
    // one-thread step does: either way not a JavaScript loop over 1.9 M values on this thread (5-30 ms measured)
    // while every worker waits for the next weights.
    let norm: number;
    if (r.squaredNorm !== undefined) norm = Math.sqrt(r.squaredNorm);
    else {
      const normT = tf.tidy(() => {
        const squares = Object.values(grads).map((g) => tf.sum(tf.square(g)));
        return tf.sqrt(squares.length === 1 ? squares[0]! : tf.addN(squares));
      });
      norm = (await normT.data())[0]!;
      normT.dispose();
    }
    const loss = r.loss;
    if (Number.isFinite(loss) && Number.isFinite(norm)) applyGradients(optimizer, grads);
    return { loss, norm, correct: r.correct };
  } finally {
    tf.dispose(Object.values(grads));
  }
}

/**
 * The mean loss and accuracy of the top on `acts` (first view) in inference mode, scored on the job's workers in
 * chunks of `chunk` rows. The same numbers as `scoreActivations` in this thread, up to float rounding.
 * @internal
 */
export async function parallelScore(state: FitState, job: ParallelTraining, acts: Activations, chunk: number): Promise<{ loss: number; accuracy: number }> {
  const weights = await Promise.all(state.vars.map(async (v) => (await v.data()) as Float32Array));
  let lossSum = 0;
  let correct = 0;
  const rows = Array.from({ length: acts.n }, (_, i) => i);
  for (let s = 0; s < acts.n; s += chunk) {
    const idx = rows.slice(s, s + chunk);
    const inputs = await gatherRows(acts, idx, () => 0);
    const r = await job.evaluate(weights, { inputs, labels: acts.labels.slice(s, s + idx.length) });
    lossSum += r.lossSum;
    correct += r.correct;
  }
  return { loss: lossSum / acts.n, accuracy: correct / acts.n };
}

/** Rows `idx` (a view per row) as plain arrays, one per boundary output, for the workers. */
async function gatherRows(acts: Activations, idx: number[], viewOf: (row: number) => number): Promise<Float32Array[]> {
  const batch = gatherBatch(acts, idx, viewOf);
  try {
    return await Promise.all(batch.map(async (t) => (await t.data()) as Float32Array));
  } finally {
    tf.dispose(batch);
  }
}
