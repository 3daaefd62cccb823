/**
 * Contiguous runs of rows (first-axis slices) of a tensor, without the cost of slicing a large tensor on wasm.
 *
 * tfjs-backend-wasm 4.22's `Slice` kernel copies its whole input out of the wasm heap on every call (it reads the
 * input with `readSync` and then picks the rows), so cutting a 1000-image tensor into batches copies the whole
 * tensor once per batch: quadratic in the number of images (measured here: 170-190 ms per 32-image batch of a
 * 512-image 224x224 tensor, against about 10 ms to copy the batch itself). On wasm the rows are read with the
 * backend's ranged `readSync(dataId, start, end)`, which copies only them; every other backend slices (cpu, webgl
 * and tfjs-node slice without copying the rest).
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';

/** The ranged read the wasm backend offers (`BackendWasm.readSync(dataId, start?, end?)`). */
interface RangedReadBackend {
  readSync(dataId: object, start?: number, end?: number): ArrayLike<number>;
  dataIdMap?: { has(dataId: object): boolean };
}

/** A ranged reader for `x`'s values when the active backend is wasm and holds `x`, else undefined. */
function rangedRead(x: tf.Tensor): ((start: number, end: number) => tf.TypedArray) | undefined {
  if (tf.getBackend() !== 'wasm' || x.dtype === 'string' || x.dtype === 'complex64') return undefined;
  const backend = tf.backend() as unknown as RangedReadBackend;
  if (typeof backend.readSync !== 'function' || backend.readSync.length < 3) return undefined;
  if (typeof backend.dataIdMap?.has !== 'function' || !backend.dataIdMap.has(x.dataId)) return undefined;
  return (start, end) => backend.readSync(x.dataId, start, end) as tf.TypedArray;
}

/**
 * Rows `start .. start + count - 1` of `x` (along its first axis) as a new tensor; the caller disposes it.
 * Equal to `tf.slice(x, start, count)` on every backend.
 */
export function takeRows<T extends tf.Tensor>(x: T, start: number, count: number): T {
  const read = count > 0 ? rangedRead(x) : undefined;
  if (!read) {
    const begin = x.shape.map((_, i) => (i === 0 ? start : 0));
    const size = x.shape.map((d, i) => (i === 0 ? count : d));
    return tf.slice(x, begin, size) as T;
  }
  const rowSize = x.shape.slice(1).reduce((a, b) => a * b, 1);
  const values = read(start * rowSize, (start + count) * rowSize);
  return tf.tensor(values, [count, ...x.shape.slice(1)], x.dtype) as T;
}
