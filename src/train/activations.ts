/**
 * Activations at the freeze boundary, computed once per image (and per cached view, e.g. mirrored) and kept in
 * JavaScript memory (not on the backend), so training the top costs only the top.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { throwIfAborted } from '../errors';
import type { ProgressCallback } from '../types';
import type { LabelledSource } from './source';

/** Cached activations of `n` images. `values[view][output]` holds `n * size(output)` floats. */
export interface Activations {
  n: number;
  shapes: number[][];
  /** Per view (0: as is, 1: mirrored, ...), per boundary output. */
  values: Float32Array[][];
  labels: Int32Array;
  keys: (string | undefined)[];
}

/** A transformation of a batch before extraction (a cached view), e.g. horizontal flip. */
export type ViewTransform = (xs: tf.Tensor4D) => tf.Tensor4D;

/** Persistent storage of per-image activations, keyed by image content and extractor identity. */
export interface ActivationStore {
  /** Activations of one image (one array per boundary output), or undefined. */
  get(key: string): Promise<Float32Array[] | undefined>;
  /** Stores one image's activations. */
  set(key: string, values: Float32Array[]): Promise<void>;
}

export interface ExtractOptions {
  batchSize: number;
  views: ViewTransform[];
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Applied to raw batches before the views (e.g. random augmentation). */
  transform?: (xs: tf.Tensor4D) => tf.Tensor4D;
  store?: { store: ActivationStore; identity: string };
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Runs `extractor` over every image of `source` once per view. */
export async function extractActivations(
  extractor: tfl.LayersModel,
  shapes: number[][],
  source: LabelledSource,
  options: ExtractOptions,
): Promise<Activations> {
  const views = options.views.length > 0 ? options.views : [(x: tf.Tensor4D) => x];
  const capacity = source.size;
  const sizes = shapes.map(sizeOf);
  let values = views.map(() => sizes.map((s) => new Float32Array(capacity * s)));
  const labels = new Int32Array(capacity);
  const keys: (string | undefined)[] = [];
  let n = 0;
  for await (const batch of source.batches(options.batchSize, options.signal)) {
    try {
      throwIfAborted(options.signal, 'Feature extraction');
      const b = batch.xs.shape[0];
      const cachedRows = options.store ? await readStore(options.store, batch.keys, views.length, sizes) : undefined;
      if (!cachedRows) {
        const input = options.transform ? tf.tidy(() => options.transform!(batch.xs)) : batch.xs;
        try {
          for (let v = 0; v < views.length; v++) {
            const outs = tf.tidy(() => {
              const viewed = views[v]!(input);
              const o = extractor.predict(viewed, { batchSize: b });
              return Array.isArray(o) ? o : [o];
            });
            try {
              for (let j = 0; j < outs.length; j++) {
                const data = (await outs[j]!.data()) as Float32Array;
                values[v]![j]!.set(data, n * sizes[j]!);
              }
            } finally {
              outs.forEach((t) => t.dispose());
            }
          }
        } finally {
          if (input !== batch.xs) input.dispose();
        }
        if (options.store && batch.keys) await writeStore(options.store, batch.keys, values, n, sizes);
      } else {
        cachedRows.forEach((row, i) => {
          row.forEach((perView, v) => perView.forEach((arr, j) => values[v]![j]!.set(arr, (n + i) * sizes[j]!)));
        });
      }
      labels.set(batch.ys, n);
      for (let i = 0; i < b; i++) keys.push(batch.keys?.[i]);
      n += b;
      options.onProgress?.({ done: n, total: capacity, stage: 'extract' });
    } finally {
      batch.xs.dispose();
    }
  }
  if (n < capacity) values = values.map((perView) => perView.map((arr, j) => arr.slice(0, n * sizes[j]!)));
  return { n, shapes, values, labels: labels.slice(0, n), keys };
}

async function readStore(
  s: { store: ActivationStore; identity: string },
  keys: string[] | undefined,
  numViews: number,
  sizes: number[],
): Promise<Float32Array[][][] | undefined> {
  if (!keys) return undefined;
  const rows: Float32Array[][][] = [];
  for (const key of keys) {
    const perView: Float32Array[][] = [];
    for (let v = 0; v < numViews; v++) {
      const got = await s.store.get(`${s.identity}:${v}:${key}`);
      if (!got || got.length !== sizes.length || got.some((a, j) => a.length !== sizes[j])) return undefined;
      perView.push(got);
    }
    rows.push(perView);
  }
  return rows;
}

async function writeStore(
  s: { store: ActivationStore; identity: string },
  keys: string[],
  values: Float32Array[][],
  offset: number,
  sizes: number[],
): Promise<void> {
  for (let i = 0; i < keys.length; i++) {
    for (let v = 0; v < values.length; v++) {
      const row = values[v]!.map((arr, j) => arr.slice((offset + i) * sizes[j]!, (offset + i + 1) * sizes[j]!));
      await s.store.set(`${s.identity}:${v}:${keys[i]}`, row);
    }
  }
}

/** Gathers rows `indices` (with a view per row) into one tensor per boundary output. */
export function gatherBatch(acts: Activations, indices: ArrayLike<number>, viewOf: (row: number) => number): tf.Tensor[] {
  const b = indices.length;
  return acts.shapes.map((shape, j) => {
    const size = sizeOf(shape);
    const buf = new Float32Array(b * size);
    for (let i = 0; i < b; i++) {
      const row = indices[i]!;
      const src = acts.values[viewOf(row)]![j]!;
      buf.set(src.subarray(row * size, (row + 1) * size), i * size);
    }
    return tf.tensor(buf, [b, ...shape], 'float32');
  });
}

/** Activations restricted to `rows` (for a validation split). */
export function subsetActivations(acts: Activations, rows: number[]): Activations {
  const sizes = acts.shapes.map(sizeOf);
  const values = acts.values.map((perView) =>
    perView.map((arr, j) => {
      const s = sizes[j]!;
      const out = new Float32Array(rows.length * s);
      rows.forEach((r, i) => out.set(arr.subarray(r * s, (r + 1) * s), i * s));
      return out;
    }),
  );
  return {
    n: rows.length,
    shapes: acts.shapes,
    values,
    labels: Int32Array.from(rows, (r) => acts.labels[r]!),
    keys: rows.map((r) => acts.keys[r]),
  };
}
