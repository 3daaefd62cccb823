/**
 * The training half of a pool worker (`extract-worker.ts` routes the `train-*` messages here): it rebuilds the
 * trainable top from its topology and weights, and on each step computes the gradients of its shard of the batch.
 *
 * A shard's loss is its part of the batch's loss: Σ over its rows of (weight × cross-entropy) / the batch's
 * denominator (its row count, or its summed weights with `classWeight`), plus the regularization losses on the
 * first shard only, so the shards' gradients add up to the gradient of the whole batch. Dropout draws the mask
 * of the whole batch from the step's seed and takes the shard's rows of it, so the masks, and therefore the
 * gradients, equal those of one thread running the whole batch.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { PortableTop } from '../services';
import { variableGradsFreeingEarly } from '../train/gradients';
import { correctCount, crossEntropy, targetsFor } from '../train/losses';
import { registerWasmTrainingKernels } from '../train/wasm-kernels';

/** The message that loads a top into a worker. @internal */
export interface TrainLoad {
  type: 'train-load';
  id: number;
  top: PortableTop;
  /** Where the calling thread writes the current trainable weights before each step (all of them, in order). */
  weights: SharedArrayBuffer;
  /**
   * One region per worker of as many float32 values as `weights`: each worker writes its shard's gradients into
   * region `slot`; after every shard of a step has arrived, worker k adds part k of every region, in shard order,
   * into region 0, which then holds the batch's gradient (see {@link stepShard}).
   */
  gradients: SharedArrayBuffer;
  /** Two int32 values: how many shards of the current step have arrived, and an abort flag (non-zero: give up). */
  sync: SharedArrayBuffer;
}

/** One shard of one step. @internal */
export interface TrainStep {
  type: 'train-step';
  job: number;
  id: number;
  /** The shard's activations, one array per boundary output. */
  inputs: Float32Array[];
  labels: Int32Array;
  sampleWeights: Float32Array | undefined;
  /** The batch's loss denominator (rows, or summed weights). */
  denominator: number;
  /** Whether this shard carries the regularization losses (the first one). */
  regularization: boolean;
  dropout: { seeds: number[]; batch: number; offset: number };
  /** This shard's index: its region of the gradient buffer, and its part of the sum. */
  shard: number;
  /** How many shards this step has (at most the number of workers). */
  shards: number;
}

/** Rows to score in inference mode. @internal */
export interface TrainEval {
  type: 'train-eval';
  job: number;
  id: number;
  inputs: Float32Array[];
  labels: Int32Array;
}

/** What a scored shard sends back. @internal */
export interface TrainEvalResult {
  type: 'eval-result';
  job: number;
  lossSum: number;
  correct: number;
}

/** What a shard sends back once its part of the sum is in region 0 of the gradient buffer. @internal */
export interface TrainStepResult {
  type: 'train-result';
  job: number;
  loss: number;
  correct: number;
  /** The sum of the squares of this worker's part of the summed gradient. */
  squares: number;
}

interface LoadedTop {
  model: tfl.LayersModel;
  vars: tf.Variable[];
  shapes: number[][];
  weights: Float32Array;
  gradients: SharedArrayBuffer;
  sync: Int32Array;
  numClasses: number;
  dropouts: ShardDropout[];
}

/** The step settings the patched dropout layers read. */
interface ShardDropout {
  rate: number;
  seed: number | undefined;
  batch: number;
  offset: number;
}

const tops = new Map<number, LoadedTop>();

/**
 * Makes a Dropout layer draw the whole batch's mask (`tf.dropout`'s formula: floor(u + keep) / keep with
 * u ~ U[0, 1) from the seed) and apply the rows of this shard.
 */
function patchDropout(layer: tfl.layers.Layer): ShardDropout {
  const settings: ShardDropout = { rate: (layer as unknown as { rate: number }).rate, seed: undefined, batch: 0, offset: 0 };
  const patched = layer as unknown as { call: (inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }) => tf.Tensor };
  patched.call = (inputs, kwargs) =>
    tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      if (!kwargs.training || settings.rate === 0) return tf.clone(x);
      const keep = 1 - settings.rate;
      const full = [settings.batch, ...x.shape.slice(1)];
      const u = tf.randomUniform(full, 0, 1, 'float32', settings.seed);
      const rows = tf.slice(u, [settings.offset, ...x.shape.slice(1).map(() => 0)], x.shape);
      return tf.mul(x, tf.div(tf.floor(tf.add(rows, keep)), keep));
    });
  return settings;
}

/** `train-load`: rebuilds the top (weights from the message) and patches its dropout layers. @internal */
export async function loadTop(msg: TrainLoad): Promise<void> {
  unloadTop(msg.id);
  if (tf.getBackend() === 'wasm') registerWasmTrainingKernels();
  const { top } = msg;
  const model = (await tfl.models.modelFromJSON(top.topology as tf.io.ModelJSON['modelTopology'] as never)) as tfl.LayersModel;
  const all = model.weights;
  if (all.length !== top.weights.length) {
    model.dispose();
    throw new Error(`train worker: the top has ${all.length} weights, the message ${top.weights.length}.`);
  }
  const initial = top.weights.map((w) => tf.tensor(w.values, [...w.shape], 'float32'));
  model.setWeights(initial);
  tf.dispose(initial);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const dropouts = model.layers.filter((l) => l.getClassName() === 'Dropout').map(patchDropout);
  tops.set(msg.id, {
    model,
    vars,
    shapes: model.inputs.map((i) => i.shape.slice(1) as number[]),
    weights: new Float32Array(msg.weights),
    gradients: msg.gradients,
    sync: new Int32Array(msg.sync),
    numClasses: top.numClasses,
    dropouts,
  });
}

/** `train-unload`. @internal */
export function unloadTop(id: number): void {
  const t = tops.get(id);
  if (!t) return;
  t.model.dispose();
  tops.delete(id);
}

/** The loaded top `id`. */
function loadedTop(id: number): LoadedTop {
  const t = tops.get(id);
  if (!t) throw new Error(`train worker: top ${id} is not loaded.`);
  return t;
}

/** Sets `t`'s variables to the weights in the shared buffer; returns `t`. */
function atSharedWeights(t: LoadedTop): LoadedTop {
  let offset = 0;
  for (const v of t.vars) {
    // A copy: the cpu backend keeps the array it is given, and the shared buffer changes between steps.
    const value = tf.tensor(t.weights.slice(offset, offset + v.size), v.shape, 'float32');
    v.assign(value);
    value.dispose();
    offset += v.size;
  }
  return t;
}

/** `train-eval`: the summed loss and the correct count of the rows, in inference mode. @internal */
export async function evalShard(msg: TrainEval): Promise<TrainEvalResult> {
  const t = atSharedWeights(loadedTop(msg.id));
  const n = msg.labels.length;
  const [l, c] = tf.tidy(() => {
    const inputs = msg.inputs.map((v, j) => tf.tensor(v, [n, ...t.shapes[j]!], 'float32'));
    const p = t.model.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: false }) as tf.Tensor2D;
    const targets = targetsFor(msg.labels, t.numClasses);
    return [tf.sum(crossEntropy(p, targets)), correctCount(p, targets)];
  });
  try {
    return { type: 'eval-result', job: msg.job, lossSum: (await l!.data())[0]!, correct: (await c!.data())[0]! };
  } finally {
    tf.dispose([l!, c!]);
  }
}

/**
 * Rows a worker runs through the top at once; a longer shard runs in passes of this many rows whose gradients are
 * added, so that the activations a pass keeps for its backward pass (in a wasm heap that never shrinks) stay
 * bounded. A shard of 16 rows (batch 32 on two workers) runs as one pass. Measured from `block_11_expand`
 * (docs/performance.md): with {@link variableGradsFreeingEarly} a pass of 8 rows peaks at 113 MB of live wasm
 * memory and one of 16 at 226 MB; passes of 16 gave a worker's 16 rows in 650-700 ms against 700-780 ms in two
 * passes of 8, and the 20 000-image run of `bench/fine-tune-memory.ts` peaked at 1227 MB of RSS with them (1145 MB
 * with 8; the target is 1.5 GB).
 * @internal
 */
export const MICRO_BATCH_ROWS = 16;

/** What a worker says when it stops waiting because another shard of the step failed. @internal */
export const ABORTED = 'another shard of this step failed';

/** Waits until `parties` shards of this step have arrived (this one included), or the abort flag is raised. */
function arriveAndWait(sync: Int32Array, parties: number): void {
  if (Atomics.add(sync, 0, 1) + 1 >= parties) {
    Atomics.notify(sync, 0);
    return;
  }
  for (;;) {
    if (Atomics.load(sync, 1) !== 0) throw new Error(`train worker: ${ABORTED}.`);
    const seen = Atomics.load(sync, 0);
    if (seen >= parties) return;
    Atomics.wait(sync, 0, seen, 1000);
  }
}

/** Raises the abort flag, so that the other shards of the step stop waiting for this one. */
function abortStep(sync: Int32Array): void {
  Atomics.store(sync, 1, 1);
  Atomics.notify(sync, 0);
}

/**
 * Part `shard` of `shards` of the sum: values `[lo, hi)` of regions 1.. added, in shard order, into region 0 (each
 * addition rounded to float32, as one thread adding the shards in order would). Returns the sum of the squares of
 * the summed values of the part (in float64), for the gradient's norm.
 */
function reducePart(gradients: SharedArrayBuffer, size: number, shard: number, shards: number): number {
  const per = Math.ceil(size / shards / 4) * 4;
  const lo = Math.min(size, shard * per);
  const hi = Math.min(size, lo + per);
  if (hi <= lo) return 0;
  const acc = new Float32Array(gradients, lo * 4, hi - lo);
  for (let r = 1; r < shards; r++) {
    const g = new Float32Array(gradients, (r * size + lo) * 4, hi - lo);
    for (let j = 0; j < g.length; j++) acc[j]! += g[j]!;
  }
  let squares = 0;
  for (let j = 0; j < acc.length; j++) squares += acc[j]! * acc[j]!;
  return squares;
}

/**
 * `train-step`: this shard's gradients at the weights in the shared buffer, in passes of {@link MICRO_BATCH_ROWS},
 * written to its region of the gradient buffer; then, once every shard of the step is there, this worker's part of
 * their sum into region 0. A failure raises the abort flag so that no other worker waits for this one.
 * @internal
 */
export async function stepShard(msg: TrainStep): Promise<TrainStepResult> {
  const t = loadedTop(msg.id);
  const size = t.weights.length;
  try {
    atSharedWeights(t);
    const region = new Float32Array(t.gradients, msg.shard * size * 4, size);
    const n = msg.labels.length;
    let loss = 0;
    let correct = 0;
    for (let a = 0; a < n; a += MICRO_BATCH_ROWS) {
      const part = await passGradients(t, msg, a, Math.min(n, a + MICRO_BATCH_ROWS), region, a > 0);
      loss += part.loss;
      correct += part.correct;
    }
    if (n === 0) region.fill(0);
    arriveAndWait(t.sync, msg.shards);
    const squares = reducePart(t.gradients, size, msg.shard, msg.shards);
    return { type: 'train-result', job: msg.job, loss, correct, squares };
  } catch (e) {
    abortStep(t.sync);
    throw e;
  }
}

/**
 * The gradients of rows `[a, b)` of the shard (their part of the batch's loss; regularization with the first rows),
 * written into `region` (all weights, in order), or added to what it holds when `add`.
 */
async function passGradients(t: LoadedTop, msg: TrainStep, a: number, b: number, region: Float32Array, add: boolean): Promise<{ loss: number; correct: number }> {
  const n = b - a;
  const labels = msg.labels.subarray(a, b);
  const weights = msg.sampleWeights?.subarray(a, b);
  t.dropouts.forEach((d, i) => Object.assign(d, { seed: msg.dropout.seeds[i], batch: msg.dropout.batch, offset: msg.dropout.offset + a }));
  let correctT: tf.Scalar | undefined;
  const { value, grads } = tf.tidy(() => {
    const inputs = msg.inputs.map((v, j) => {
      const size = v.length / msg.labels.length;
      return tf.tensor(v.subarray(a * size, b * size), [n, ...t.shapes[j]!], 'float32');
    });
    const targets = targetsFor(labels, t.numClasses);
    return variableGradsFreeingEarly(() => {
      const p = t.model.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: true }) as tf.Tensor2D;
      correctT = tf.keep(correctCount(p, targets));
      const per = crossEntropy(p, targets);
      const summed = weights ? tf.sum(tf.mul(per, tf.tensor1d(weights))) : tf.sum(per);
      const base = tf.div(summed, msg.denominator) as tf.Scalar;
      const reg = msg.regularization && a === 0 ? t.model.calculateLosses() : [];
      return reg.length ? (tf.addN([base, ...reg]) as tf.Scalar) : base;
    }, t.vars);
  });
  try {
    let offset = 0;
    for (const v of t.vars) {
      const g = (await grads[v.name]!.data()) as Float32Array;
      const into = region.subarray(offset, offset + v.size);
      if (!add) into.set(g);
      else for (let j = 0; j < g.length; j++) into[j]! += g[j]!;
      offset += v.size;
    }
    const loss = (await value.data())[0]!;
    const correct = correctT ? (await correctT.data())[0]! : 0;
    return { loss, correct };
  } finally {
    correctT?.dispose();
    tf.dispose([value, ...Object.values(grads)]);
  }
}
