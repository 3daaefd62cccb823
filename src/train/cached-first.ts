/**
 * Persistent-cache lookup before decoding: when a dataset knows every image's content key up front (image
 * folders do), the activation store is asked first and only the misses are decoded and run through the frozen
 * prefix. A warm cache then costs no decoding and no backbone at all.
 * @internal
 * @module
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { throwIfAborted } from '../errors';
import type { ImageDataset } from '../types';
import { extractActivations, readEntry, sizeOf, type ActivationStore, type Activations, type ExtractionArgs } from './activations';
import type { LabelledSource } from './source';

/** A dataset that can be subset by index and knows its content keys (the pipeline's `Dataset`). */
interface KeyedDataset extends ImageDataset {
  readonly keys: readonly string[] | undefined;
  subset(indices: ArrayLike<number>, name?: string): KeyedDataset;
}

function isKeyed(data: unknown): data is KeyedDataset {
  const d = data as KeyedDataset;
  return (
    typeof d === 'object' &&
    d !== null &&
    typeof d.subset === 'function' &&
    Array.isArray(d.keys) &&
    d.keys.length === d.size &&
    d.keys.every((k) => typeof k === 'string' && k.length > 0)
  );
}

/**
 * Activations of `data` with the store consulted before any decoding; `undefined` when `data` cannot be looked up
 * by key (the caller then extracts as usual). `toSource` turns a subset into a labelled source.
 */
export async function extractCachedFirst(
  extractor: tfl.LayersModel,
  shapes: number[][],
  data: unknown,
  toSource: (subset: ImageDataset) => LabelledSource,
  options: ExtractionArgs & { store: { store: ActivationStore; identity: string } },
): Promise<Activations | undefined> {
  if (!isKeyed(data)) return undefined;
  const keys = data.keys as readonly string[];
  const numViews = Math.max(1, options.views.length);
  const sizes = shapes.map(sizeOf);
  const n = data.size;
  const values = Array.from({ length: numViews }, () => sizes.map((s) => new Float32Array(n * s)));
  const present = new Uint8Array(n);
  const misses: number[] = [];
  const { identity } = options.store;
  for (let i = 0; i < n; i++) {
    throwIfAborted(options.signal, 'Feature extraction');
    let hit = true;
    const rows: Float32Array[][] = [];
    for (let v = 0; v < numViews && hit; v++) {
      const got = await readEntry(options.store, `${identity}:${v}:${keys[i]}`);
      if (!got || got.length !== sizes.length || got.some((a, j) => a.length !== sizes[j])) hit = false;
      else rows.push(got);
    }
    if (hit) {
      rows.forEach((perOutput, v) => perOutput.forEach((arr, j) => values[v]![j]!.set(arr, i * sizes[j]!)));
      present[i] = 1;
    } else misses.push(i);
  }
  if (misses.length < n) options.onProgress?.({ done: n - misses.length, total: n, stage: 'cache' });
  if (misses.length > 0) {
    const fresh = await extractActivations(extractor, shapes, toSource(data.subset(misses, 'uncached')), options);
    // Rows come back in subset order; images that failed to decode are missing, so match them by key.
    const position = new Map<string, number>();
    misses.forEach((i) => position.set(keys[i]!, i));
    for (let r = 0; r < fresh.n; r++) {
      const i = position.get(fresh.keys[r] ?? '');
      if (i === undefined) continue;
      for (let v = 0; v < numViews; v++) {
        fresh.values[v]!.forEach((arr, j) => values[v]![j]!.set(arr.subarray(r * sizes[j]!, (r + 1) * sizes[j]!), i * sizes[j]!));
      }
      present[i] = 1;
    }
  }
  const kept = Array.from({ length: n }, (_, i) => i).filter((i) => present[i]);
  const compact = kept.length === n ? values : values.map((perView) => perView.map((arr, j) => {
    const out = new Float32Array(kept.length * sizes[j]!);
    kept.forEach((i, r) => out.set(arr.subarray(i * sizes[j]!, (i + 1) * sizes[j]!), r * sizes[j]!));
    return out;
  }));
  return {
    n: kept.length,
    shapes,
    values: compact,
    labels: Int32Array.from(kept, (i) => data.labels[i]!),
    keys: kept.map((i) => keys[i]),
  };
}
