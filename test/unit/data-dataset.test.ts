import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { augmentImages } from '../../src/data/augment';
import { type SkippedImage, createDataset, fromImages, fromTensors } from '../../src/data/dataset';
import { splitDataset } from '../../src/data/split';
import { env } from '../../src/env';
import type { ImageBatch } from '../../src/types';

let baseline = 0;
beforeEach(() => {
  env.verbose = false;
  baseline = tf.memory().numTensors;
});
afterEach(() => {
  env.verbose = true;
  expect(tf.memory().numTensors).toBe(baseline);
});

/** n images of 4x4 where every pixel of image i is i. */
function numbered(n: number, h = 4, w = 4): tf.Tensor4D {
  return tf.tidy(() => tf.mul(tf.ones([n, h, w, 3]), tf.reshape(tf.range(0, n, 1, 'float32'), [n, 1, 1, 1])) as tf.Tensor4D);
}

async function collect(batches: AsyncIterable<ImageBatch>): Promise<{ ids: number[]; labels: number[]; shapes: number[][] }> {
  const ids: number[] = [];
  const labels: number[] = [];
  const shapes: number[][] = [];
  for await (const b of batches) {
    shapes.push(b.xs.shape);
    const x = await b.xs.data();
    const per = b.xs.shape[1] * b.xs.shape[2] * 3;
    for (let i = 0; i < b.xs.shape[0]; i++) ids.push(x[i * per] as number);
    labels.push(...(await b.ys.data()));
    tf.dispose([b.xs, b.ys]);
  }
  return { ids, labels, shapes };
}

describe('fromTensors', () => {
  it('streams batches of raw pixels with int32 labels, in order', async () => {
    const xs = numbered(5);
    const ds = fromTensors(xs, ['b', 'a', 'b', 'a', 'a']);
    expect(ds.classes).toEqual(['a', 'b']);
    expect(ds.labels).toEqual([1, 0, 1, 0, 0]);
    const { ids, labels, shapes } = await collect(ds.batches({ batchSize: 2 }));
    expect(ids).toEqual([0, 1, 2, 3, 4]);
    expect(labels).toEqual([1, 0, 1, 0, 0]);
    expect(shapes).toEqual([[2, 4, 4, 3], [2, 4, 4, 3], [1, 4, 4, 3]]);
    xs.dispose();
  });

  it('shuffles reproducibly from the seed, and differently for another seed', async () => {
    const xs = numbered(20);
    const ds = fromTensors(xs, new Array(20).fill(0), { classes: ['only'] });
    const a = await collect(ds.batches({ batchSize: 6, shuffle: true, seed: 3 }));
    const b = await collect(ds.batches({ batchSize: 6, shuffle: true, seed: 3 }));
    const c = await collect(ds.batches({ batchSize: 6, shuffle: true, seed: 4 }));
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(c.ids);
    expect([...a.ids].sort((p, q) => p - q)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    xs.dispose();
  });

  it('resizes to a requested size and rejects labels that do not match', async () => {
    const xs = numbered(2, 8, 6);
    const ds = fromTensors(xs, [0, 1]);
    const { shapes } = await collect(ds.batches({ size: [3, 3] }));
    expect(shapes).toEqual([[2, 3, 3, 3]]);
    expect(() => fromTensors(xs, [0])).toThrow(/got 1 labels for 2 images/);
    expect(() => fromTensors(xs, [0, 3], { classes: ['a', 'b'] })).toThrow(/out of range for 2 classes/);
    xs.dispose();
  });

  it('stops early without leaking when the consumer breaks, and honours an abort signal', async () => {
    const xs = numbered(10);
    const ds = fromTensors(xs, new Array(10).fill(0));
    for await (const b of ds.batches({ batchSize: 2, prefetch: 3 })) {
      tf.dispose([b.xs, b.ys]);
      break;
    }
    const controller = new AbortController();
    const run = async (): Promise<void> => {
      for await (const b of ds.batches({ batchSize: 2, signal: controller.signal })) {
        tf.dispose([b.xs, b.ys]);
        controller.abort('user pressed stop');
      }
    };
    await expect(run()).rejects.toMatchObject({ name: 'AbortError', code: 'ABORTED' });
    xs.dispose();
  });
});

describe('createDataset', () => {
  it('skips and records images whose loader fails, reports them, and keeps going', async () => {
    const onSkip = vi.fn<(s: SkippedImage) => void>();
    let calls = 0;
    const ds = createDataset({
      classes: ['a', 'b'],
      labels: [0, 1, 0, 1],
      sources: ['one', 'two', 'three', 'four'],
      onSkip,
      load: async (i) => {
        calls++;
        if (i === 2) throw new Error('bad bytes');
        return { data: new Uint8Array(2 * 2 * 3).fill(i * 10), height: 2, width: 2 };
      },
    });
    const first = await collect(ds.batches({ batchSize: 4 }));
    expect(first.ids).toEqual([0, 10, 30]);
    expect(first.labels).toEqual([0, 1, 1]);
    expect(ds.skipped).toEqual([{ source: 'three', reason: 'bad bytes', stage: 'load', label: 'a' }]);
    expect(onSkip).toHaveBeenCalledTimes(1);
    // The failed image is not retried, nor reported again, on the next pass.
    await collect(ds.batches({ batchSize: 4 }));
    expect(calls).toBe(7);
    expect(ds.skipped).toHaveLength(1);
  });

  it('makes a load failure an error in strict mode', async () => {
    const ds = createDataset({
      classes: ['a'],
      labels: [0, 0],
      sources: ['ok.jpg', 'broken.jpg'],
      strict: true,
      load: async (i) => {
        if (i === 1) throw new Error('truncated');
        return { data: new Uint8Array(12), height: 2, width: 2 };
      },
    });
    await expect(collect(ds.batches())).rejects.toThrow(/Could not load broken\.jpg: truncated/);
  });

  it('converts gray and RGBA pixels and tensors, and asks for a size when images differ', async () => {
    const ds = createDataset({
      classes: ['a'],
      labels: [0, 0, 0],
      load: async (i) =>
        i === 0
          ? { data: new Uint8Array(4).fill(50), height: 2, width: 2, channels: 1 }
          : i === 1
            ? { data: new Uint8Array(16).fill(60), height: 2, width: 2, channels: 4 }
            : tf.fill([3, 3, 3], 70) as tf.Tensor3D,
    });
    await expect(collect(ds.batches())).rejects.toThrow(/differ in size.*pass `size`/);
    const { ids, shapes } = await collect(ds.batches({ size: [2, 2] }));
    expect(ids).toEqual([50, 60, 70]);
    expect(shapes).toEqual([[3, 2, 2, 3]]);
  });

  it('keeps at most prefetch batches in flight', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const ds = createDataset({
      classes: ['a'],
      labels: new Array(40).fill(0),
      concurrency: 100,
      load: async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
        return { data: new Uint8Array(3), height: 1, width: 1 };
      },
    });
    for await (const b of ds.batches({ batchSize: 4, prefetch: 2 })) {
      await new Promise((r) => setTimeout(r, 5));
      tf.dispose([b.xs, b.ys]);
    }
    expect(maxInFlight).toBeLessThanOrEqual(8);
    expect(maxInFlight).toBeGreaterThan(4);
  });
});

describe('fromImages', () => {
  it('decodes pixel objects and tensors with tf.browser.fromPixels, leaving input tensors alive', async () => {
    const t = tf.fill([2, 2, 3], 9, 'int32') as tf.Tensor3D;
    const ds = fromImages([
      { image: { data: new Uint8Array(16).fill(200), width: 2, height: 2 }, label: 'dog' },
      { image: t, label: 'cat', source: 'mine' },
    ]);
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(ds.sources).toEqual(['images[0]', 'mine']);
    const { ids, labels } = await collect(ds.batches({ size: [2, 2] }));
    expect(ids).toEqual([200, 9]);
    expect(labels).toEqual([1, 0]);
    expect(t.isDisposed).toBe(false);
    expect(ds.keys).toBeUndefined();
    const keyed = fromImages([
      { image: t, label: 'cat', key: 'k1' },
      { image: t, label: 'dog', key: 'k2' },
    ]);
    expect(keyed.keys).toEqual(['k1', 'k2']);
    const partly = fromImages([
      { image: t, label: 'cat', key: 'k1' },
      { image: t, label: 'dog' },
    ]);
    expect(partly.keys).toBeUndefined();
    t.dispose();
  });

  it('decodes Blobs via createImageBitmap and records what cannot be decoded', async () => {
    const original = globalThis.createImageBitmap;
    const close = vi.fn();
    globalThis.createImageBitmap = (async (blob: Blob) => {
      const bytes = new Uint8Array(await blob.arrayBuffer());
      if (bytes[0] !== 1) throw new Error('InvalidStateError: The source image could not be decoded.');
      return { data: new Uint8Array(16).fill(77), width: 2, height: 2, close } as unknown as ImageBitmap;
    }) as typeof createImageBitmap;
    try {
      const ds = fromImages([
        { image: new Blob([new Uint8Array([1])]), label: 0 },
        { image: new Blob([new Uint8Array([0])]), label: 1, source: 'broken.png' },
      ]);
      const { ids } = await collect(ds.batches({ size: [2, 2] }));
      expect(ids).toEqual([77]);
      expect(close).toHaveBeenCalledTimes(1);
      expect(ds.skipped[0]?.source).toBe('broken.png');
      expect(ds.skipped[0]?.reason).toMatch(/not a decodable image/);
    } finally {
      globalThis.createImageBitmap = original;
    }
  });
});

describe('augmentImages', () => {
  it('is seeded, keeps shape and range, and varies per image', () => {
    const xs = tf.tidy(() => tf.randomUniform([4, 16, 16, 3], 0, 255, 'float32', 1) as tf.Tensor4D);
    const a = augmentImages(xs, {}, 5);
    const b = augmentImages(xs, {}, 5);
    const c = augmentImages(xs, {}, 6);
    expect(a.shape).toEqual([4, 16, 16, 3]);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBe(0);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, c))).dataSync()[0])).toBeGreaterThan(1);
    expect(tf.tidy(() => tf.min(a).dataSync()[0])).toBeGreaterThanOrEqual(0);
    expect(tf.tidy(() => tf.max(a).dataSync()[0])).toBeLessThanOrEqual(255);
    tf.dispose([xs, a, b, c]);
  });

  it('flips horizontally and exactly when only flip is on', () => {
    const xs = tf.tidy(() => tf.tile(tf.reshape(tf.range(0, 4, 1, 'float32'), [1, 1, 4, 1]), [8, 2, 1, 3]) as tf.Tensor4D);
    const off = { rotation: false, zoom: false, translation: false, brightness: false, contrast: false } as const;
    const out = augmentImages(xs, off, 1);
    const rows = (out.arraySync() as number[][][][]).map((img) => img[0]?.map((p) => p[0]));
    expect(rows.some((r) => r?.join() === '3,2,1,0')).toBe(true);
    expect(rows.some((r) => r?.join() === '0,1,2,3')).toBe(true);
    expect(rows.every((r) => r?.join() === '3,2,1,0' || r?.join() === '0,1,2,3')).toBe(true);
    tf.dispose([xs, out]);
  });

  it('validates its arguments', () => {
    const xs = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
    expect(() => augmentImages(xs, { rotation: -1 })).toThrow(/rotation must be a number in \[0, 1\]/);
    xs.dispose();
  });

  it('is applied by batches({ augment: true }) only', async () => {
    const xs = tf.tidy(() => tf.randomUniform([3, 8, 8, 3], 0, 255, 'float32', 2) as tf.Tensor4D);
    const ds = fromTensors(xs, [0, 1, 0]);
    const plain: number[] = [];
    const augmented: number[] = [];
    for await (const b of ds.batches()) {
      plain.push(...(await b.xs.data()));
      tf.dispose([b.xs, b.ys]);
    }
    for await (const b of ds.batches({ augment: true, seed: 1 })) {
      augmented.push(...(await b.xs.data()));
      tf.dispose([b.xs, b.ys]);
    }
    expect(plain).toEqual([...(await xs.data())]);
    expect(augmented).not.toEqual(plain);
    xs.dispose();
  });
});

describe('splitDataset', () => {
  it('makes a seeded, stratified split with no overlap', () => {
    const labels = [...new Array(30).fill(0), ...new Array(10).fill(1)];
    const ds = createDataset({ classes: ['a', 'b'], labels, load: async () => ({ data: new Uint8Array(3), height: 1, width: 1 }) });
    const s1 = splitDataset(ds, { validationSplit: 0.2, seed: 1 });
    const s2 = splitDataset(ds, { validationSplit: 0.2, seed: 1 });
    const s3 = splitDataset(ds, { validationSplit: 0.2, seed: 2 });
    expect(s1.validation.labels.filter((l) => l === 0)).toHaveLength(6);
    expect(s1.validation.labels.filter((l) => l === 1)).toHaveLength(2);
    expect(s1.train.size + s1.validation.size).toBe(40);
    expect(s1.validation.sources).toEqual(s2.validation.sources);
    expect(s1.validation.sources).not.toEqual(s3.validation.sources);
    const overlap = s1.train.sources.filter((s) => s1.validation.sources.includes(s));
    expect(overlap).toEqual([]);
    expect(() => splitDataset(ds, { validationSplit: 1 })).toThrow(/strictly between 0 and 1/);
  });
});
