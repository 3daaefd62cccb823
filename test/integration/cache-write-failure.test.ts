/**
 * A cache is an optimisation: a write that fails (a store whose `set` rejects, a disk cache whose entry paths are
 * folders, a full disk, a read-only folder) warns once, naming the cache and the error, and training goes on with
 * the same results as a run without a cache.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/node/index';
import { attachHead, env, fit, freeze, loadBackbone, type TransferModel } from '../../src/index';
import { createDiskCache } from '../../src/node/disk-cache';
import type { ActivationStore } from '../../src/train/activations';
import type { ImageDataset } from '../../src/types';
import { stripes, tinyBackbone, weightValues, keyedDataset } from '../helpers/tiny';

const keyed = (xs: tf.Tensor4D, labels: number[], keys: string[]) => keyedDataset(xs, labels, keys, ['l', 'r']);

describe('a failing cache write does not stop fit', () => {
  let data: ReturnType<typeof stripes>;
  let dataset: ImageDataset;
  let tmp: string;
  let baseline = 0;
  const messages: string[] = [];
  const savedLogger = env.logger;
  const savedVerbose = env.verbose;

  beforeAll(async () => {
    env.parallelExtractor = undefined;
    env.verbose = true;
    env.logger = (m) => void messages.push(m);
    data = stripes(12);
    dataset = keyed(data.xs, data.ys, data.ys.map((_, i) => `img-${i}`));
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tt-cache-fail-'));
    baseline = tf.memory().numTensors;
  });
  afterAll(async () => {
    expect(tf.memory().numTensors).toBe(baseline);
    data.xs.dispose();
    env.logger = savedLogger;
    env.verbose = savedVerbose;
    await fs.rm(tmp, { recursive: true, force: true });
  });

  async function run(cache?: ActivationStore): Promise<{ loss: number[]; weights: Map<string, Float32Array> }> {
    const model: TransferModel = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    try {
      const history = await fit(model, dataset, { epochs: 2, batchSize: 4, seed: 1, verbose: false, cache });
      return { loss: history.loss, weights: weightValues(model.head.layers) };
    } finally {
      model.dispose();
    }
  }

  const cacheWarnings = (): string[] => messages.filter((m) => /cache/i.test(m));

  it('a store whose set rejects: one warning naming the error, same results as no cache', async () => {
    const plain = await run();
    messages.length = 0;
    let sets = 0;
    const failing: ActivationStore = {
      get: async () => undefined,
      set: async () => {
        sets++;
        throw new Error('ENOSPC: no space left on device');
      },
    };
    const got = await run(failing);
    expect(sets).toBeGreaterThan(0);
    expect(got.loss).toEqual(plain.loss);
    expect(got.weights).toEqual(plain.weights);
    const warnings = cacheWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/ENOSPC: no space left on device/);
  });

  it('a store whose get rejects is a miss: one warning, same results', async () => {
    const plain = await run();
    messages.length = 0;
    const written = new Map<string, Float32Array[]>();
    const broken: ActivationStore = {
      get: async () => {
        throw new Error('EIO: i/o error, read');
      },
      set: async (key, values) => void written.set(key, values),
    };
    const got = await run(broken);
    expect(got.loss).toEqual(plain.loss);
    expect(got.weights).toEqual(plain.weights);
    expect(written.size).toBeGreaterThan(0);
    const warnings = cacheWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not read the activation cache .*EIO: i\/o error, read/);
  });

  it('a disk cache whose entry paths are folders: one warning naming the cache folder, same results', async () => {
    const plain = await run();
    // Learn the keys fit writes, then put a folder where each entry's file would go.
    const keys: string[] = [];
    await run({ get: async () => undefined, set: async (key) => void keys.push(key) });
    const dir = path.join(tmp, 'disk');
    const cache = createDiskCache(dir);
    for (const key of keys) await fs.mkdir(await cache.pathOf(key), { recursive: true });
    messages.length = 0;
    const got = await run(cache);
    expect(got.loss).toEqual(plain.loss);
    expect(got.weights).toEqual(plain.weights);
    const warnings = cacheWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(cache.dir);
  });
});
