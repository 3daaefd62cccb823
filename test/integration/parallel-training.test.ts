/**
 * Data-parallel training on the worker pool (`env.parallelTrainer`): two workers give the history and weights of
 * one thread (float tolerance), a run with a seed is repeatable for a given worker count, dropout masks and
 * class weights included, no step falls back to this thread, a top with BatchNormalization is declined, and nothing
 * leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/node/index';
import { env } from '../../src/env';
import { loadBackbone } from '../../src/backbone/load';
import { freeze } from '../../src/freeze';
import { attachHead } from '../../src/head';
import { fit } from '../../src/train/fit';
import { createExtractPool, type ExtractPool } from '../../src/node/extract-pool';
import type { FitArgs } from '../../src/train/fit-args';
import { shardRows } from '../../src/node/pooled-training';
import { MICRO_BATCH_ROWS } from '../../src/node/train-shard';
import { stripes, tinyBackbone, weightValues } from '../helpers/tiny';

const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? tf.getBackend();

/**
 * Fine-tunes from `block_1_project` with `trainer` (or in this thread). The backbone has no BatchNorm (as the shared
 * MobileNetV2 1.0, whose BatchNorm is folded), unless `batchNorm`: then the pool must decline the job.
 */
async function run(options: FitArgs, trainer: ExtractPool | undefined, logs: string[], batchNorm = false) {
  env.parallelTrainer = trainer;
  const model = attachHead(freeze(await loadBackbone(tinyBackbone(32, 3, undefined, { batchNorm }), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5, dropout: 0.3, l2: 1e-3 });
  const data = stripes(40, 32, 11);
  try {
    await fit(model, { xs: data.xs, ys: data.ys.map((y) => (y ? 'r' : 'l')) }, { epochs: 1, batchSize: 8, seed: 2, verbose: false });
    freeze(model, { trainableFrom: 'block_1_project' });
    const before = logs.length;
    const history = await fit(model, { xs: data.xs, ys: data.ys.map((y) => (y ? 'r' : 'l')) }, { ...options, verbose: true });
    const said = logs.slice(before);
    const parallel = said.some((l) => /training on 2 worker threads/.test(l));
    // A worker failure hands the run back to this thread, which would make the comparisons below vacuous.
    const fellBack = said.filter((l) => /goes on in this thread/.test(l));
    return { history: { ...history, timing: undefined }, weights: weightValues(model.model.layers), parallel, fellBack, said };
  } finally {
    data.xs.dispose();
    model.dispose();
  }
}

function maxRelDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let worst = 0;
  for (const [k, va] of a) {
    const vb = b.get(k)!;
    let m = 0;
    let d = 0;
    for (let i = 0; i < va.length; i++) {
      m = Math.max(m, Math.abs(va[i]!));
      d = Math.max(d, Math.abs(va[i]! - vb[i]!));
    }
    worst = Math.max(worst, m === 0 ? d : d / m);
  }
  return worst;
}

describe(`data-parallel training on worker threads (${backend})`, () => {
  let pool: ExtractPool;
  const logs: string[] = [];
  const saved = { trainer: env.parallelTrainer, extractor: env.parallelExtractor, verbose: env.verbose, logger: env.logger };
  let baseline = 0;

  beforeAll(() => {
    env.verbose = true;
    env.logger = (m) => logs.push(m);
    env.parallelExtractor = undefined;
    pool = createExtractPool({ workers: 2, backends: [], trainingBackends: ['wasm', 'cpu'] });
    baseline = tf.memory().numTensors;
  });

  afterAll(async () => {
    await pool?.dispose();
    Object.assign(env, { parallelTrainer: saved.trainer, parallelExtractor: saved.extractor, verbose: saved.verbose, logger: saved.logger });
    expect(tf.memory().numTensors).toBe(baseline);
  });

  const cases: [string, FitArgs][] = [
    ['dropout, l2, flip views, validation', { epochs: 2, batchSize: 8, learningRate: 0.01, seed: 9, validationSplit: 0.25, augment: { flip: true, rotation: 0, zoom: 0, translation: 0, brightness: 0, contrast: 0 } }],
    // Batches of 2 x MICRO_BATCH_ROWS + 5 rows: each worker's shard runs as a full pass and a short one.
    [`class weights, sgd, shards longer than one pass of ${MICRO_BATCH_ROWS} rows`, { epochs: 2, batchSize: 2 * MICRO_BATCH_ROWS + 5, learningRate: 0.05, seed: 4, optimizer: 'sgd', classWeight: { l: 1, r: 3 } }],
  ];

  it.each(cases)('%s: two workers match one thread, and repeat exactly', async (_name, options) => {
    const one = await run(options, undefined, logs);
    const two = await run(options, pool, logs);
    const again = await run(options, pool, logs);
    expect(one.parallel).toBe(false);
    expect(two.parallel).toBe(true);
    expect(two.fellBack).toEqual([]);
    expect(again.fellBack).toEqual([]);
    expect(again.history).toEqual(two.history);
    expect(maxRelDiff(two.weights, again.weights)).toBe(0);
    const h1 = one.history;
    const h2 = two.history;
    expect(h2.epochs).toBe(h1.epochs);
    for (const key of ['loss', 'accuracy', 'valLoss', 'valAccuracy'] as const) {
      expect(h2[key].length).toBe(h1[key].length);
      h1[key].forEach((v, i) => expect(Math.abs(h2[key][i]! - v)).toBeLessThan(1e-4 * Math.max(1, Math.abs(v))));
    }
    expect(maxRelDiff(one.weights, two.weights)).toBeLessThan(1e-4);
    // The weights did move: the comparison is not between two untouched models.
    expect(h1.loss[0]).not.toBe(h1.loss[1]);
  });

  it('a top with BatchNormalization stays in this thread, said once, with the one-thread history', async () => {
    const options: FitArgs = { epochs: 1, batchSize: 8, learningRate: 0.01, seed: 3 };
    const one = await run(options, undefined, logs, true);
    const pooled = await run(options, pool, logs, true);
    expect(pooled.parallel).toBe(false);
    expect(pooled.fellBack).toEqual([]);
    expect(pooled.said.filter((l) => /training stays on this thread: the trainable layers include BatchNormalization \(block_1_project_BN, Conv_1_bn\)/.test(l))).toHaveLength(1);
    expect(pooled.history).toEqual(one.history);
  });

  it('head training on pooled features stays in this thread (the pool declines it)', async () => {
    const job = await pool.openTraining(() => ({ topology: {}, weights: [], numClasses: 2 }), { backend, batchSize: 32, boundaryShapes: [[1280]], parameters: 1281 });
    expect(job).toBeUndefined();
  });

  it('cuts a batch into contiguous shards, never an empty one', () => {
    expect(shardRows(32, 2)).toEqual([[0, 16], [16, 32]]);
    expect(shardRows(13, 2)).toEqual([[0, 7], [7, 13]]);
    expect(shardRows(1, 2)).toEqual([[0, 1]]);
    expect(shardRows(5, 3)).toEqual([[0, 2], [2, 4], [4, 5]]);
  });
});
