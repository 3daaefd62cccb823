/**
 * One data-parallel training job on the worker pool ({@link ParallelTraining}): cuts each batch into one
 * contiguous shard per worker, publishes the current weights through a shared buffer, and lets the workers add the
 * shards' gradients, in shard order, in a second shared buffer, each its own part of the weights (so a run
 * depends only on its inputs and the number of workers, and this thread neither copies nor adds them).
 * @internal
 * @module
 */
import { TransferError } from '../errors';
import type { GradientBatch, ParallelTraining } from '../services';
import { ABORTED, type TrainEval, type TrainEvalResult, type TrainStep, type TrainStepResult } from './train-shard';

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
  private readonly sum: Float32Array;
  private readonly sync: Int32Array;

  /**
   * `buffers.weights` holds the trainable weights; `buffers.gradients` one region per worker of the same size
   * (region 0 receives the sum); `buffers.sync` the step's arrival count and abort flag (the layout `train-shard.ts`
   * reads).
   */
  constructor(
    private readonly id: number,
    readonly workers: number,
    buffers: { weights: SharedArrayBuffer; gradients: SharedArrayBuffer; sync: SharedArrayBuffer },
    private readonly pool: TrainingPoolLink,
  ) {
    this.weights = new Float32Array(buffers.weights);
    this.sum = new Float32Array(buffers.gradients, 0, this.weights.length);
    this.sync = new Int32Array(buffers.sync);
  }

  /** The sizes of the weights last published (the gradients come back in the same layout). */
  private sizes: number[] = [];

  /** Publishes `weights` to the workers (between steps, so no worker reads while this writes). */
  private publish(weights: readonly Float32Array[]): void {
    if (this.released) throw new TransferError('INVALID_ARGUMENT', 'This training job was released.');
    this.sizes = weights.map((w) => w.length);
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

  async gradients(weights: readonly Float32Array[], batch: GradientBatch): Promise<{ grads: Float32Array[]; loss: number; correct: number; squaredNorm: number }> {
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
    // No worker is in a step now (the last one's replies are all in): reset its arrival count and abort flag.
    Atomics.store(this.sync, 0, 0);
    Atomics.store(this.sync, 1, 0);
    // A failing shard raises the abort flag at once (so that no worker waits for it), and the step settles only
    // when every shard has: the next step must not reset the barrier under a worker still in this one.
    const abort = (e: unknown) => {
      Atomics.store(this.sync, 1, 1);
      Atomics.notify(this.sync, 0);
      throw e;
    };
    const settled = await this.pool.busy(() =>
      Promise.allSettled(
        shards.map(([a, b], k) =>
          this.pool
            .step(k, {
              type: 'train-step',
              job: this.pool.nextJobId(),
              id: this.id,
              inputs: rowsOf(batch.inputs, sizes, a, b),
              labels: batch.labels.slice(a, b),
              sampleWeights: w?.slice(a, b),
              denominator,
              regularization: k === 0,
              dropout: { seeds: [...batch.dropoutSeeds], batch: n, offset: a },
              shard: k,
              shards: shards.length,
            })
            .catch(abort),
        ),
      ),
    );
    const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    // The shard that failed first, rather than those that gave up waiting for it.
    if (failures.length) throw failures.find((e) => !String(e instanceof Error ? e.message : e).includes(ABORTED)) ?? failures[0];
    const results = settled.map((r) => (r as PromiseFulfilledResult<TrainStepResult>).value);
    return {
      grads: this.gradientViews(),
      loss: results.reduce((x, r) => x + r.loss, 0),
      correct: results.reduce((x, r) => x + r.correct, 0),
      squaredNorm: results.reduce((x, r) => x + r.squares, 0),
    };
  }

  /** The summed gradient (region 0), one view per weight in the order of the published weights. */
  private gradientViews(): Float32Array[] {
    const out: Float32Array[] = [];
    let offset = 0;
    for (const size of this.sizes) {
      out.push(this.sum.subarray(offset, offset + size));
      offset += size;
    }
    return out;
  }

  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.pool.release();
  }
}

/** Rows `[a, b)` of each input (`sizes[j]` values per row), copied so they can be transferred. */
function rowsOf(inputs: readonly Float32Array[], sizes: number[], a: number, b: number): Float32Array[] {
  return inputs.map((arr, j) => arr.slice(a * sizes[j]!, b * sizes[j]!));
}
