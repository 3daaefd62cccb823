/**
 * One data-parallel training job on the worker pool ({@link ParallelTraining}): cuts each batch into one
 * contiguous shard per worker, publishes the current weights through a shared buffer, and adds the shards'
 * gradients in worker order (so a run depends only on its inputs and the number of workers).
 * @internal
 * @module
 */
import { TransferError } from '../errors';
import type { GradientBatch, ParallelTraining } from '../services';
import type { TrainEval, TrainEvalResult, TrainStep, TrainStepResult } from './train-shard';

/** What the job needs from its pool. @internal */
export interface TrainingPoolLink {
  /** Sends a shard to worker `slot`; resolves with its gradients (a step) or its scores (an evaluation). */
  step<M extends TrainStep | TrainEval>(slot: number, msg: M): Promise<M extends TrainStep ? TrainStepResult : TrainEvalResult>;
  /** Frees the job's top in every worker. */
  release(): void;
  /** Keeps the workers referenced while `work` runs. */
  busy<T>(work: () => Promise<T>): Promise<T>;
  /** A job number no other message uses. */
  nextJobId(): number;
}

/** Rows `[start, end)` of each non-empty shard of an `n`-row batch over `workers` workers. @internal */
export function shardRows(n: number, workers: number): Array<[number, number]> {
  const per = Math.ceil(n / workers);
  const out: Array<[number, number]> = [];
  for (let s = 0; s < n; s += per) out.push([s, Math.min(n, s + per)]);
  return out;
}

/** @internal */
export class PooledTraining implements ParallelTraining {
  private released = false;
  private readonly weights: Float32Array;

  constructor(
    private readonly id: number,
    readonly workers: number,
    shared: SharedArrayBuffer,
    private readonly pool: TrainingPoolLink,
  ) {
    this.weights = new Float32Array(shared);
  }

  /** Publishes `weights` to the workers (between steps, so no worker reads while this writes). */
  private publish(weights: readonly Float32Array[]): void {
    if (this.released) throw new TransferError('INVALID_ARGUMENT', 'This training job was released.');
    let offset = 0;
    for (const w of weights) {
      if (offset + w.length > this.weights.length) break;
      this.weights.set(w, offset);
      offset += w.length;
    }
    const total = weights.reduce((a, w) => a + w.length, 0);
    if (total !== this.weights.length) {
      throw new TransferError('INVALID_ARGUMENT', `gradients: got ${total} weight values, the job's top has ${this.weights.length}.`);
    }
  }

  async evaluate(weights: readonly Float32Array[], rows: { readonly inputs: readonly Float32Array[]; readonly labels: Int32Array }): Promise<{ lossSum: number; correct: number }> {
    this.publish(weights);
    const n = rows.labels.length;
    const sizes = rows.inputs.map((a) => a.length / n);
    const results = await this.pool.busy(() =>
      Promise.all(
        shardRows(n, this.workers).map(([a, b], k) =>
          this.pool.step(k, {
            type: 'train-eval',
            job: this.pool.nextJobId(),
            id: this.id,
            inputs: rowsOf(rows.inputs, sizes, a, b),
            labels: rows.labels.slice(a, b),
          }),
        ),
      ),
    );
    return { lossSum: results.reduce((x, r) => x + r.lossSum, 0), correct: results.reduce((x, r) => x + r.correct, 0) };
  }

  async gradients(weights: readonly Float32Array[], batch: GradientBatch): Promise<{ grads: Float32Array[]; loss: number; correct: number }> {
    this.publish(weights);
    const n = batch.labels.length;
    const sizes = batch.inputs.map((a) => a.length / n);
    const w = batch.sampleWeights;
    let denominator = n;
    if (w) {
      denominator = 0;
      for (let i = 0; i < n; i++) denominator += w[i]!;
    }
    const shards = shardRows(n, this.workers);
    const results = await this.pool.busy(() =>
      Promise.all(
        shards.map(([a, b], k) =>
          this.pool.step(k, {
            type: 'train-step',
            job: this.pool.nextJobId(),
            id: this.id,
            inputs: rowsOf(batch.inputs, sizes, a, b),
            labels: batch.labels.slice(a, b),
            sampleWeights: w?.slice(a, b),
            denominator,
            regularization: k === 0,
            dropout: { seeds: [...batch.dropoutSeeds], batch: n, offset: a },
          }),
        ),
      ),
    );
    return sumShards(results);
  }

  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.pool.release();
  }
}

/** Adds the shards' gradients, losses and correct counts, in shard order. */
function sumShards(results: TrainStepResult[]): { grads: Float32Array[]; loss: number; correct: number } {
  const [first, ...rest] = results;
  if (!first) throw new TransferError('INVALID_ARGUMENT', 'gradients: the batch is empty.');
  const grads = first.grads;
  let loss = first.loss;
  let correct = first.correct;
  for (const r of rest) {
    r.grads.forEach((g, i) => {
      const acc = grads[i]!;
      for (let j = 0; j < g.length; j++) acc[j]! += g[j]!;
    });
    loss += r.loss;
    correct += r.correct;
  }
  return { grads, loss, correct };
}

/** Rows `[a, b)` of each input (`sizes[j]` values per row), copied so they can be transferred. */
function rowsOf(inputs: readonly Float32Array[], sizes: number[], a: number, b: number): Float32Array[] {
  return inputs.map((arr, j) => arr.slice(a * sizes[j]!, b * sizes[j]!));
}
