import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import { takeRows } from '../../src/util/rows';
import { fromTensors } from '../../src/data/dataset';

const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? tf.getBackend();

/** Counts the elements the active backend copies out through readSync while `fn` runs. */
function countReads(fn: () => void): number {
  const b = tf.backend() as unknown as { readSync: (id: object, s?: number, e?: number) => ArrayLike<number> };
  const original = b.readSync;
  let read = 0;
  b.readSync = function (this: unknown, id: object, s?: number, e?: number) {
    const out = original.call(this, id, s, e);
    read += out.length;
    return out;
  };
  try {
    fn();
  } finally {
    b.readSync = original;
  }
  return read;
}

describe('takeRows', () => {
  afterEach(async () => {
    await tf.setBackend(backend);
  });

  it('equals tf.slice along the first axis for float32 and int32, rank 2 and rank 4, and frees nothing it should not', () => {
    const base = tf.memory().numTensors;
    const a = tf.tensor4d(Float32Array.from({ length: 5 * 3 * 2 * 3 }, (_, i) => i * 0.5 - 7), [5, 3, 2, 3]);
    const b = tf.tensor2d(Int32Array.from({ length: 7 * 4 }, (_, i) => i * 3 - 11), [7, 4], 'int32');
    for (const [x, start, count] of [[a, 0, 5], [a, 1, 3], [a, 4, 1], [b, 0, 1], [b, 2, 5], [b, 6, 1]] as const) {
      const got = takeRows(x as tf.Tensor, start, count);
      const want = tf.slice(x as tf.Tensor, start, count);
      expect(got.shape).toEqual(want.shape);
      expect(got.dtype).toBe(x.dtype);
      expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
      tf.dispose([got, want]);
    }
    expect(a.isDisposed || b.isDisposed).toBe(false);
    tf.dispose([a, b]);
    expect(tf.memory().numTensors).toBe(base);
  });

  it.runIf(backend === 'wasm')('on wasm, cutting a tensor into batches copies each row once, not the whole tensor per batch', () => {
    const x = tf.zeros([64, 8, 8, 3]);
    const total = x.size;
    const withRows = countReads(() => {
      for (let s = 0; s < 64; s += 8) takeRows(x, s, 8).dispose();
    });
    const withSlice = countReads(() => {
      for (let s = 0; s < 64; s += 8) tf.slice(x, s, 8).dispose();
    });
    x.dispose();
    expect(withRows).toBe(total);
    expect(withSlice).toBe(8 * total); // the tfjs-backend-wasm 4.22 behaviour this works around
  });

  it.runIf(backend === 'wasm')('reads a tensor that lives on another backend (it slices then)', async () => {
    await tf.setBackend('cpu');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    await tf.setBackend('wasm');
    const got = takeRows(x, 1, 2);
    expect(Array.from(got.dataSync())).toEqual([3, 4, 5, 6]);
    tf.dispose([got, x]);
  });

  it('fromTensors loads each image with its own rows only', async () => {
    const xs = tf.tensor4d(Float32Array.from({ length: 6 * 2 * 2 * 3 }, (_, i) => i), [6, 2, 2, 3]);
    const ds = fromTensors(xs, [0, 1, 0, 1, 0, 1], { classes: ['a', 'b'] });
    const seen: number[] = [];
    for await (const batch of ds.batches({ batchSize: 4, shuffle: false })) {
      seen.push(...Array.from(batch.xs.dataSync()));
      tf.dispose([batch.xs, batch.ys]);
    }
    expect(seen).toEqual(Array.from(xs.dataSync()));
    xs.dispose();
  });
});
