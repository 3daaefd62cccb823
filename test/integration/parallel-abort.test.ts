/**
 * The workers' barrier in a data-parallel step (`src/node/train-shard.ts`): when one worker's shard fails, the other
 * stops waiting for it (the step rejects, naming the failure, instead of hanging), and the next step of the same job
 * works and gives the batch's gradient, summed by the workers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/node/index';
import { env } from '../../src/env';
import { loadBackbone } from '../../src/backbone/load';
import { freeze } from '../../src/freeze';
import { attachHead } from '../../src/head';
import { freezeBoundaryOf } from '../../src/train/boundary';
import { openParallelTraining } from '../../src/train/parallel-step';
import type { FitState } from '../../src/train/fit-state';
import { createExtractPool, type ExtractPool } from '../../src/node/extract-pool';
import { meanLoss, targetsFor } from '../../src/train/losses';
import { registerWasmTrainingKernels } from '../../src/train/wasm-kernels';
import { tinyBackbone } from '../helpers/tiny';

const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? tf.getBackend();

describe(`a data-parallel step whose shard fails (${backend})`, () => {
  let pool: ExtractPool;
  const saved = env.parallelTrainer;

  beforeAll(() => {
    registerWasmTrainingKernels(); // the one-thread reference below runs the gradient kernels in this thread
    pool = createExtractPool({ workers: 2, backends: [], trainingBackends: ['wasm', 'cpu'] });
    env.parallelTrainer = pool;
  });

  afterAll(async () => {
    env.parallelTrainer = saved;
    await pool?.dispose();
  });

  it('rejects instead of waiting forever, and the next step sums the shards', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32, 3, undefined, { batchNorm: false }), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5, dropout: 0 });
    freeze(model, { trainableFrom: 'block_1_project' });
    const before = tf.memory().numTensors;
    const split = freezeBoundaryOf(model);
    const vars = split.top.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const optimizer = tf.train.adam(1e-3);
    const state = { model, split, vars, optimizer, args: { batchSize: 8, classWeight: undefined } } as unknown as FitState;
    const job = await openParallelTraining(state);
    try {
      expect(job?.workers).toBe(2);
      const n = 8;
      // One array per boundary output (here two: the block's input reaches its residual add).
      const inputs = split.shapes.map((shape, k) => Float32Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.abs(Math.sin(i + k))));
      const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
      const weights = await Promise.all(vars.map(async (v) => (await v.data()) as Float32Array));
      // Sample weights for 6 of the 8 rows: the first shard (rows 0-3) has all of its own, the second (rows 4-7)
      // only two of four, so only the second worker throws.
      const short = { inputs, labels, sampleWeights: new Float32Array(6).fill(1), dropoutSeeds: [] };
      const started = Date.now();
      // The second shard's own error (tfjs' broadcasting complaint), not the first's "another shard ... failed".
      const error = await job!.gradients(weights, short).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).not.toMatch(/another shard of this step failed/);
      expect(Date.now() - started).toBeLessThan(20_000);

      const good = await job!.gradients(weights, { inputs, labels, sampleWeights: undefined, dropoutSeeds: [] });
      // The same batch in this thread: the workers' sum equals one thread's gradient within float tolerance.
      const xs = inputs.map((v, k) => tf.tensor(v, [n, ...split.shapes[k]!]));
      const targets = targetsFor(labels, model.numClasses);
      const { grads, value } = tf.variableGrads(() => {
        // As the one-thread step: the mean loss plus the top's regularization losses.
        const base = meanLoss(split.top.apply(xs.length === 1 ? xs[0]! : xs, { training: true }) as tf.Tensor2D, targets);
        const reg = split.top.calculateLosses();
        return reg.length ? (tf.addN([base, ...reg]) as tf.Scalar) : base;
      }, vars);
      value.dispose();
      const expected = await Promise.all(vars.map(async (v) => (await grads[v.name]!.data()) as Float32Array));
      tf.dispose([...xs, targets, ...Object.values(grads)]);
      let worst = 0;
      let squares = 0;
      good.grads.forEach((g, i) => {
        const e = expected[i]!;
        const scale = Math.max(1e-6, ...Array.from(e, Math.abs));
        for (let j = 0; j < g.length; j++) {
          worst = Math.max(worst, Math.abs(g[j]! - e[j]!) / scale);
          squares += g[j]! * g[j]!;
        }
      });
      expect(worst).toBeLessThan(1e-3);
      expect(good.squaredNorm).toBeDefined();
      expect(Math.abs(good.squaredNorm! - squares)).toBeLessThanOrEqual(1e-6 * Math.max(1, squares));
      expect(Number.isFinite(good.loss)).toBe(true);
    } finally {
      job?.dispose();
      optimizer.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
