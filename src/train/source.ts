/**
 * One way to read labelled data, whatever form it came in (tensors or a streaming dataset), resized to the model's
 * input size and labelled with the model's class indices.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { resizeImages } from '../data/resize';
import { takeRows } from '../util/rows';
import { toClassIndices } from '../data/labels';
import { TransferError, check, throwIfAborted } from '../errors';
import type { ImageDataset, LabelledData, TensorData } from '../types';

/** A batch of raw images and int32 class indices. The consumer disposes `xs`. */
export interface SourceBatch {
  xs: tf.Tensor4D;
  ys: Int32Array;
  keys: string[] | undefined;
  sources: string[] | undefined;
}

/** Labelled data, normalised. */
export interface LabelledSource {
  size: number;
  labels: Int32Array;
  /** Streams batches in data order at `size`; never shuffled (callers shuffle indices). */
  batches(batchSize: number, signal?: AbortSignal): AsyncIterable<SourceBatch>;
}

export function isImageDataset(data: unknown): data is ImageDataset {
  return (
    typeof data === 'object' &&
    data !== null &&
    typeof (data as ImageDataset).batches === 'function' &&
    Array.isArray((data as ImageDataset).classes)
  );
}

export function isTensorData(data: unknown): data is TensorData {
  return typeof data === 'object' && data !== null && (data as TensorData).xs instanceof tf.Tensor && 'ys' in (data as object);
}

/** Normalises `data` for a model with `classes` and input `[h, w]`. */
export function toLabelledSource(
  data: LabelledData,
  classes: readonly string[],
  inputSize: readonly [number, number],
  where: string,
): LabelledSource {
  if (isTensorData(data)) return tensorSource(data, classes, inputSize, where);
  if (isImageDataset(data)) return datasetSource(data, classes, inputSize, where);
  throw new TransferError(
    'INVALID_ARGUMENT',
    `${where}: data must be { xs: Tensor4D of raw pixels, ys: labels } or an ImageDataset (imageFolder, fromTensors, fromImages), got ${describe(data)}.`,
  );
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (typeof x === 'object') return `an object with keys [${Object.keys(x as object).join(', ')}]`;
  return typeof x;
}

function fitSize(xs: tf.Tensor4D, inputSize: readonly [number, number]): tf.Tensor4D {
  if (xs.shape[1] === inputSize[0] && xs.shape[2] === inputSize[1]) return xs.dtype === 'float32' ? xs.clone() : tf.cast(xs, 'float32');
  return resizeImages(xs, [inputSize[0], inputSize[1]]);
}

function tensorSource(data: TensorData, classes: readonly string[], inputSize: readonly [number, number], where: string): LabelledSource {
  const { xs } = data;
  if (xs.rank !== 4 || xs.shape[3] !== 3) {
    throw new TransferError('SHAPE_MISMATCH', `${where}: xs must be raw RGB pixels [n, height, width, 3], got [${xs.shape.join(', ')}]. A single image needs a batch axis: xs.expandDims(0).`);
  }
  const n = xs.shape[0];
  if (n === 0) throw new TransferError('EMPTY_DATA', `${where}: xs has no images.`);
  const { indices } = toClassIndices(data.ys, { classes, expectedLength: n, what: `${where}: ys` });
  return {
    size: n,
    labels: indices,
    async *batches(batchSize, signal) {
      for (let s = 0; s < n; s += batchSize) {
        throwIfAborted(signal, where);
        const size = Math.min(batchSize, n - s);
        const batch = tf.tidy(() => fitSize(takeRows(xs, s, size), inputSize));
        yield { xs: batch, ys: indices.slice(s, s + size), keys: undefined, sources: undefined };
      }
    },
  };
}

function datasetSource(data: ImageDataset, classes: readonly string[], inputSize: readonly [number, number], where: string): LabelledSource {
  if (data.size === 0) throw new TransferError('EMPTY_DATA', `${where}: the dataset has no images.`);
  const same = data.classes.length === classes.length && data.classes.every((c, i) => c === classes[i]);
  if (!same) {
    throw new TransferError(
      'CLASS_MISMATCH',
      `${where}: the data's classes [${data.classes.join(', ')}] differ from the model's [${classes.join(', ')}]. ` +
        `Build the head with classes: dataset.classes, or load the data with the model's class list.`,
    );
  }
  const labels = Int32Array.from(data.labels);
  check(labels.length === data.size, `${where}: the dataset reports ${data.size} images but ${labels.length} labels.`);
  return {
    size: data.size,
    labels,
    async *batches(batchSize, signal) {
      for await (const batch of data.batches({ batchSize, size: [inputSize[0], inputSize[1]], shuffle: false, augment: false, signal })) {
        let xs: tf.Tensor4D | undefined;
        try {
          xs = tf.tidy(() => fitSize(batch.xs, inputSize));
          const ys = Int32Array.from(batch.ys.dataSync());
          yield { xs, ys, keys: batch.keys, sources: batch.sources };
          xs = undefined;
        } finally {
          batch.xs.dispose();
          batch.ys.dispose();
          xs?.dispose();
        }
      }
    },
  };
}

/**
 * Images whose labels do not matter (e.g. photos of other things for the unknown detector): a tensor of raw pixels
 * `[n, h, w, 3]`, `{ xs, ys }` (the labels are ignored) or an ImageDataset of any classes. Every label reads 0.
 */
export function toUnlabelledSource(data: tf.Tensor4D | LabelledData, inputSize: readonly [number, number], where: string): LabelledSource {
  if (data instanceof tf.Tensor) {
    const xs = data;
    check(xs.rank === 4 && xs.shape[3] === 3, `${where}: images must be raw RGB pixels [n, height, width, 3], got [${xs.shape.join(', ')}].`);
    return tensorSource({ xs, ys: new Array<number>(xs.shape[0]).fill(0) }, ['any'], inputSize, where);
  }
  if (isTensorData(data)) return toUnlabelledSource(data.xs as tf.Tensor4D, inputSize, where);
  if (isImageDataset(data)) {
    const anyClass: ImageDataset = { classes: ['any'], size: data.size, labels: new Array<number>(data.size).fill(0), batches: (o) => data.batches(o) };
    const inner = datasetSource(anyClass, ['any'], inputSize, where);
    return {
      ...inner,
      async *batches(batchSize, signal) {
        for await (const b of inner.batches(batchSize, signal)) yield { ...b, ys: new Int32Array(b.ys.length) };
      },
    };
  }
  throw new TransferError('INVALID_ARGUMENT', `${where}: images must be a tf.Tensor4D of raw pixels, { xs, ys } or an ImageDataset, got ${describe(data)}.`);
}
