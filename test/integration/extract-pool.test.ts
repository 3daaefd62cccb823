import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/node/index';
import { env } from '../../src/env';
import { loadBackbone } from '../../src/backbone/load';
import { foldModel } from '../../src/backbone/fold';
import { freeze } from '../../src/freeze';
import { attachHead } from '../../src/head';
import { fit } from '../../src/train/fit';
import { createExtractPool, type ExtractPool } from '../../src/node/extract-pool';
import { disposeLayers } from '../../src/util/dispose';
import type { Backbone } from '../../src/backbone/backbone';
import { catsAndDogs, hasShared, MODEL_035 } from '../helpers/real-data';

const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? tf.getBackend();
const SIZE = backend === 'cpu' ? 64 : 128;
const PER_CLASS = backend === 'cpu' ? 2 : 6;

describe.skipIf(!hasShared)('extraction on worker threads', () => {
  let backbone: Backbone;
  let data: { xs: tf.Tensor4D; ys: string[] };
  let pool: ExtractPool;
  let baseline: number;
  const logs: string[] = [];

  beforeAll(async () => {
    env.verbose = true;
    env.logger = (m) => logs.push(m);
    backbone = freeze(await loadBackbone(MODEL_035, { inputSize: SIZE }));
    data = await catsAndDogs('train', PER_CLASS, SIZE);
    pool = createExtractPool({ workers: 2, minImages: 0, backends: ['wasm', 'cpu'] });
    baseline = tf.memory().numTensors;
  });

  afterAll(async () => {
    env.parallelExtractor = undefined;
    await pool?.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
    backbone?.dispose();
    data?.xs.dispose();
  });

  it('two workers compute the same activations as the folded model in this thread', async () => {
    const folded = foldModel(backbone.model!);
    try {
      const run = await pool.open(() => folded.serialize(), { backend: tf.getBackend(), images: data.ys.length });
      expect(run).toBeDefined();
      expect(pool.started).toBe(true);
      const pixels = Float32Array.from(data.xs.dataSync() as Float32Array);
      const [viaWorkers] = await run!.run(pixels, data.xs.shape);
      const [here] = folded.predict(data.xs);
      const local = here!.dataSync();
      here!.dispose();
      expect(viaWorkers!.length).toBe(local.length);
      let maxDiff = 0;
      for (let i = 0; i < local.length; i++) maxDiff = Math.max(maxDiff, Math.abs(local[i]! - viaWorkers![i]!));
      expect(maxDiff).toBeLessThan(1e-4);
      run!.dispose();
    } finally {
      folded.dispose();
    }
  });

  it('cuts batches into pieces that idle workers take in turn, and puts the results back in order', async () => {
    const small = createExtractPool({ workers: 2, minImages: 0, backends: ['wasm', 'cpu'], chunkImages: 1 });
    const folded = foldModel(backbone.model!);
    try {
      const run = await small.open(() => folded.serialize(), { backend: tf.getBackend(), images: data.ys.length });
      expect(run).toBeDefined();
      const pixels = Float32Array.from(data.xs.dataSync() as Float32Array);
      // Two batches at once, as extractActivations keeps them: every piece of both goes through one queue.
      const half = Math.floor(data.ys.length / 2);
      const per = pixels.length / data.ys.length;
      const [[a], [b]] = await Promise.all([
        run!.run(pixels.slice(0, half * per), [half, SIZE, SIZE, 3]),
        run!.run(pixels.slice(half * per), [data.ys.length - half, SIZE, SIZE, 3]),
      ]);
      const [here] = folded.predict(data.xs);
      const local = here!.dataSync();
      here!.dispose();
      const joined = new Float32Array(a!.length + b!.length);
      joined.set(a!, 0);
      joined.set(b!, a!.length);
      expect(joined.length).toBe(local.length);
      let maxDiff = 0;
      for (let i = 0; i < local.length; i++) maxDiff = Math.max(maxDiff, Math.abs(local[i]! - joined[i]!));
      expect(maxDiff).toBeLessThan(1e-4);
      run!.dispose();
    } finally {
      folded.dispose();
      await small.dispose();
    }
  });

  it('rejects what is still queued when the pool is disposed, instead of leaving it pending', async () => {
    const small = createExtractPool({ workers: 1, minImages: 0, backends: ['wasm', 'cpu'], chunkImages: 1 });
    const folded = foldModel(backbone.model!);
    try {
      const run = await small.open(() => folded.serialize(), { backend: tf.getBackend(), images: data.ys.length });
      const pixels = Float32Array.from(data.xs.dataSync() as Float32Array);
      const outcome = expect(run!.run(pixels, data.xs.shape)).rejects.toThrow(/pool was disposed/);
      await small.dispose();
      await outcome;
    } finally {
      folded.dispose();
    }
  });

  it('fit gives the same history with and without the pool (flip views included)', async () => {
    const histories = [];
    let runs = 0;
    const counting: ExtractPool['open'] = async (plan, job) => {
      const run = await pool.open(plan, job);
      if (!run) return undefined;
      return { run: (p, s) => (runs++, run.run(p, s)), dispose: () => run.dispose() };
    };
    for (const extractor of [undefined, { open: counting }]) {
      env.parallelExtractor = extractor;
      const model = attachHead(backbone, { classes: ['cat', 'dog'], seed: 5 });
      try {
        histories.push(await fit(model, data, { epochs: 2, seed: 9, verbose: false, augment: { flip: true, rotation: 0, zoom: 0, translation: 0, brightness: 0, contrast: 0 } }));
      } finally {
        disposeLayers(model.head.layers);
      }
    }
    env.parallelExtractor = undefined;
    expect(runs).toBe(2); // one batch, two views (as is, mirrored), on the workers
    const [a, b] = histories;
    expect(b!.loss.length).toBe(2);
    b!.loss.forEach((l, i) => expect(l).toBeCloseTo(a!.loss[i]!, 5));
  });

  it('keeps the next batches queued on the workers while one runs, and stores every batch in order', async () => {
    const histories = [];
    let running = 0;
    let mostAtOnce = 0;
    const tracking: ExtractPool['open'] = async (plan, job) => {
      const run = await pool.open(plan, job);
      if (!run) return undefined;
      return {
        run: async (p, s) => {
          mostAtOnce = Math.max(mostAtOnce, ++running);
          try {
            return await run.run(p, s);
          } finally {
            running--;
          }
        },
        dispose: () => run.dispose(),
      };
    };
    const flip = { flip: true, rotation: 0, zoom: 0, translation: 0, brightness: 0, contrast: 0 };
    const extractBatchSize = Math.ceil(data.ys.length / 3); // several batches, the last one shorter on cpu
    for (const extractor of [undefined, { open: tracking }]) {
      env.parallelExtractor = extractor;
      const model = attachHead(backbone, { classes: ['cat', 'dog'], seed: 5 });
      try {
        histories.push(await fit(model, data, { epochs: 2, seed: 9, verbose: false, extractBatchSize, augment: flip }));
      } finally {
        disposeLayers(model.head.layers);
      }
    }
    env.parallelExtractor = undefined;
    expect(mostAtOnce).toBeGreaterThan(1);
    expect(running).toBe(0);
    const [a, b] = histories;
    b!.loss.forEach((l, i) => expect(l).toBeCloseTo(a!.loss[i]!, 5));
    b!.accuracy.forEach((x, i) => expect(x).toBeCloseTo(a!.accuracy[i]!, 5));
  });

  it('a batch failing on the workers while others are queued fails fit cleanly and releases the job after they settle', async () => {
    const before = tf.memory().numTensors;
    let calls = 0;
    let running = 0;
    let runningAtRelease = -1;
    const failing: ExtractPool['open'] = async (plan, job) => {
      const run = await pool.open(plan, job);
      if (!run) return undefined;
      return {
        run: async (p, s) => {
          running++;
          try {
            if (++calls === 2) throw new Error('worker lost batch 2');
            return await run.run(p, s);
          } finally {
            running--;
          }
        },
        dispose: () => {
          runningAtRelease = running;
          run.dispose();
        },
      };
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    env.parallelExtractor = { open: failing };
    const model = attachHead(backbone, { classes: ['cat', 'dog'], seed: 5 });
    try {
      await expect(fit(model, data, { epochs: 1, seed: 1, verbose: false, extractBatchSize: Math.ceil(data.ys.length / 3) })).rejects.toThrow(/worker lost batch 2/);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      disposeLayers(model.head.layers);
      env.parallelExtractor = undefined;
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    expect(runningAtRelease).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('declines jobs it should not take: another backend, a small job, a model that cannot leave the thread', async () => {
    const small = createExtractPool({ workers: 1, minImages: 100 });
    expect(await small.open(() => undefined, { backend: 'wasm', images: 1000 })).toBeUndefined();
    expect(await small.open(() => ({ plan: { numInputs: 1, numSlots: 1, steps: [], free: [], outputs: [0], weightShapes: [] }, weights: [] }), { backend: 'wasm', images: 10 })).toBeUndefined();
    expect(await small.open(() => ({ plan: { numInputs: 1, numSlots: 1, steps: [], free: [], outputs: [0], weightShapes: [] }, weights: [] }), { backend: 'tensorflow', images: 1000 })).toBeUndefined();
    expect(small.started).toBe(false);
    await small.dispose();
  });

  it('falls back to this thread with one notice when the workers cannot start', async () => {
    const broken = createExtractPool({ workers: 1, minImages: 0, backends: ['webgl'] });
    logs.length = 0;
    const plan = () => ({ plan: { numInputs: 1, numSlots: 1, steps: [], free: [], outputs: [0], weightShapes: [] }, weights: [] });
    expect(await broken.open(plan, { backend: 'webgl', images: 10 })).toBeUndefined();
    expect(await broken.open(plan, { backend: 'webgl', images: 10 })).toBeUndefined();
    expect(logs.filter((l) => /worker threads could not start.*unsupported backend "webgl"/.test(l))).toHaveLength(1);
    await broken.dispose();
    // fit still works with a broken pool installed.
    env.parallelExtractor = broken;
    const model = attachHead(backbone, { classes: ['cat', 'dog'], seed: 5 });
    try {
      const h = await fit(model, data, { epochs: 1, seed: 1, verbose: false });
      expect(h.loss).toHaveLength(1);
    } finally {
      disposeLayers(model.head.layers);
      env.parallelExtractor = undefined;
    }
  });
});
