import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/node/index';
import { env } from '../../src/env';
import { loadBackbone } from '../../src/backbone/load';
import { freeze } from '../../src/freeze';
import { attachHead } from '../../src/head';
import { fit } from '../../src/train/fit';
import { createMemoryCache } from '../../src/train/memory-cache';
import { createIndexedDBCache } from '../../src/train/indexeddb-cache';
import { createDiskCache, DISK_CACHE_VERSION } from '../../src/node/disk-cache';
import type { ActivationStore } from '../../src/train/activations';
import type { ImageDataset, Preprocessing } from '../../src/types';
import type { Backbone } from '../../src/backbone/backbone';
import { disposeLayers } from '../../src/util/dispose';
import { catsAndDogs, hasShared, MODEL_035 } from '../helpers/real-data';
import { keyedDataset } from '../helpers/tiny';

const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? tf.getBackend();
const SIZE = backend === 'cpu' ? 64 : 96;
const PER_CLASS = backend === 'cpu' ? 2 : 4;

const keyed = (xs: tf.Tensor4D, labels: number[], keys: string[]) => keyedDataset(xs, labels, keys, ['cat', 'dog']);

describe.skipIf(!hasShared)('persistent activation caches in fit', () => {
  let xs: tf.Tensor4D;
  let labels: number[];
  let keys: string[];
  let data: ImageDataset;
  let backbone: Backbone;
  let tmp: string;
  let baseline: number;
  const quiet = { epochs: 2, seed: 1, verbose: false } as const;

  beforeAll(async () => {
    env.verbose = false;
    env.parallelExtractor = undefined; // this file tests caching; extract-pool.test.ts tests the workers
    const d = await catsAndDogs('train', PER_CLASS, SIZE);
    xs = d.xs;
    labels = d.ys.map((y) => (y === 'cat' ? 0 : 1));
    keys = labels.map((_, i) => `image-${i}`);
    data = keyed(xs, labels, keys);
    backbone = freeze(await loadBackbone(MODEL_035, { inputSize: SIZE }));
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tfjs-transfer-cache-'));
    baseline = tf.memory().numTensors;
  });

  afterAll(async () => {
    expect(tf.memory().numTensors).toBe(baseline);
    backbone?.dispose();
    xs?.dispose();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  /** fit with a fresh head; disposes the head's weights afterwards (the shared backbone stays). */
  async function fitOnce(bb: Backbone, d: ImageDataset, cache: ActivationStore, extra: Parameters<typeof fit>[2] = {}, head = {}) {
    const model = attachHead(bb, { classes: ['cat', 'dog'], seed: 3, ...head });
    try {
      return await fit(model, d, { ...quiet, cache, ...extra });
    } finally {
      disposeLayers(model.head.layers);
    }
  }

  it('a second fit with another head and learning rate reads every activation from a memory cache', async () => {
    const cache = createMemoryCache();
    const first = await fitOnce(backbone, data, cache, { learningRate: 1e-4 });
    expect(cache.stats).toMatchObject({ hits: 0, writes: labels.length });
    const second = await fitOnce(backbone, data, cache, { learningRate: 1e-3 }, { hiddenUnits: [8], dropout: 0.1 });
    expect(cache.stats.hits).toBe(labels.length);
    expect(cache.stats.writes).toBe(labels.length); // nothing extracted again
    expect(second.boundary).toEqual(first.boundary);
    expect(second.loss.every(Number.isFinite)).toBe(true);
  });

  it('misses on a changed image, a changed backbone weight, another input size and another preprocessing', async () => {
    const cache = createMemoryCache();
    await fitOnce(backbone, data, cache);
    const w0 = cache.stats.writes;

    // One image changed (new content, new key): its batch is extracted again.
    const changedXs = tf.tidy(() => tf.concat([tf.sub(tf.scalar(255), tf.slice(xs, [0, 0, 0, 0], [1, -1, -1, -1])), tf.slice(xs, [1, 0, 0, 0], [-1, -1, -1, -1])]) as tf.Tensor4D);
    await fitOnce(backbone, keyed(changedXs, labels, ['image-0-edited', ...keys.slice(1)]), cache);
    changedXs.dispose();
    const w1 = cache.stats.writes;
    expect(w1).toBeGreaterThan(w0);
    expect(cache.keys().filter((k) => k.endsWith(':image-0-edited'))).toHaveLength(1);

    // A frozen weight changed: the extractor identity changes, every image misses.
    const conv = backbone.model!.layers.find((l) => l.name === 'Conv1')!;
    const original = conv.getWeights().map((w) => tf.clone(w));
    const nudged = original.map((w) => tf.add(w, 0.01));
    conv.setWeights(nudged);
    const hitsBefore = cache.stats.hits;
    await fitOnce(backbone, data, cache);
    expect(cache.stats.hits).toBe(hitsBefore);
    expect(cache.stats.writes).toBe(w1 + labels.length);
    conv.setWeights(original);
    tf.dispose([...original, ...nudged]);
    // Restored weights: hits again.
    await fitOnce(backbone, data, cache);
    expect(cache.stats.hits).toBe(hitsBefore + labels.length);

    // Another input size, another preprocessing: misses.
    for (const options of [{ inputSize: SIZE + 32 }, { inputSize: SIZE, preprocessing: { scale: 1 / 255, offset: 0 } as Preprocessing }]) {
      const other = freeze(await loadBackbone(MODEL_035, options));
      const resized = options.inputSize !== SIZE ? tf.image.resizeBilinear(xs, [options.inputSize, options.inputSize]) : undefined;
      const hits = cache.stats.hits;
      const writes = cache.stats.writes;
      await fitOnce(other, resized ? keyed(resized, labels, keys) : data, cache);
      expect(cache.stats.hits).toBe(hits);
      expect(cache.stats.writes).toBe(writes + labels.length);
      resized?.dispose();
      other.dispose();
    }
  });

  it('a disk cache persists across cache instances, ignores damaged and old-version entries and rewrites them', async () => {
    const dir = path.join(tmp, 'disk');
    const first = createDiskCache(dir);
    await fitOnce(backbone, data, first);
    expect(first.stats.writes).toBe(labels.length);

    const second = createDiskCache(dir); // e.g. the next run of the script
    await fitOnce(backbone, data, second, { learningRate: 1e-3 });
    expect(second.stats).toMatchObject({ hits: labels.length, misses: 0, writes: 0, corrupt: 0 });

    // Damage one entry (truncate) and make another an old version: both ignored, the batch is re-extracted and
    // the entries rewritten whole.
    const files = await listFiles(dir);
    expect(files).toHaveLength(labels.length);
    const bytes = await fs.readFile(files[0]!);
    await fs.writeFile(files[0]!, bytes.subarray(0, bytes.length - 7));
    const old = Buffer.from(await fs.readFile(files[1]!));
    old.writeUInt32LE(DISK_CACHE_VERSION + 1, 4);
    await fs.writeFile(files[1]!, old);
    const third = createDiskCache(dir);
    await fitOnce(backbone, data, third);
    expect(third.stats.corrupt).toBe(2);
    expect(third.stats.writes).toBe(labels.length);
    const fourth = createDiskCache(dir);
    await fitOnce(backbone, data, fourth);
    expect(fourth.stats).toMatchObject({ hits: labels.length, corrupt: 0, writes: 0 });
    // No temporary files left behind by the atomic writes.
    expect((await listFiles(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await fourth.clear();
    expect(await listFiles(dir).catch(() => [])).toEqual([]);
  });

  it('createIndexedDBCache fails clearly without IndexedDB (Node); it is tested in the browser e2e suite', async () => {
    const cache = createIndexedDBCache('tfjs-transfer-test');
    await expect(cache.get('x')).rejects.toThrow(/no IndexedDB.*createDiskCache/);
  });
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of (await fs.readdir(dir)).sort()) {
    const full = path.join(dir, sub);
    if ((await fs.stat(full)).isDirectory()) out.push(...(await listFiles(full)));
    else out.push(full);
  }
  return out;
}

describe('a warm cache skips decoding', () => {
  it.runIf(hasSharedData())('a second fit on an image folder reads no image file at all', async () => {
    const { imageFolder, createMemoryCache, attachHead: attach, freeze: fr, loadBackbone: load, fit: train } = await import('../../src/node/index');
    const fsm = await import('node:fs');
    const osm = await import('node:os');
    const pathm = await import('node:path');
    const shared = pathm.resolve(__dirname, '../../../shared');
    const root = fsm.mkdtempSync(pathm.join(osm.tmpdir(), 'tt-warm-'));
    try {
      for (const cls of ['cats', 'dogs']) {
        fsm.mkdirSync(pathm.join(root, cls));
        const dir = pathm.join(shared, 'data/cats_and_dogs_filtered_200px/train', cls);
        for (const f of fsm.readdirSync(dir).sort().slice(0, 6)) fsm.copyFileSync(pathm.join(dir, f), pathm.join(root, cls, f));
      }
      const folder = await imageFolder(root, { validationSplit: 0, progressBar: false });
      const model = attach(fr(await load(pathm.join(shared, 'models/mobilenet_v2_0.35_224_no_top/model.json'), { inputSize: 96 })), { classes: folder.classes, seed: 1 });
      const cache = createMemoryCache();
      const first = await train(model, folder.train, { epochs: 1, cache, verbose: false, seed: 1, augment: { flip: true, rotation: false, zoom: false, translation: false, brightness: false, contrast: false } });
      // Remove every image: a second fit can only succeed if nothing is decoded.
      fsm.rmSync(pathm.join(root, 'cats'), { recursive: true });
      fsm.rmSync(pathm.join(root, 'dogs'), { recursive: true });
      const second = await train(model, folder.train, { epochs: 1, cache, verbose: false, seed: 1, augment: { flip: true, rotation: false, zoom: false, translation: false, brightness: false, contrast: false } });
      expect(second.loss.length).toBe(1);
      expect(folder.train.skipped.length).toBe(0);
      expect(second.boundary).toEqual(first.boundary);
      model.dispose();
    } finally {
      fsm.rmSync(root, { recursive: true, force: true });
    }
  });
});

function hasSharedData(): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:fs').existsSync(require('node:path').resolve(__dirname, '../../../shared/models'));
}
