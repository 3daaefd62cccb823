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
import { extractActivations, readEntry, sizeOf, subsetActivations, type ActivationStore, type Activations, type ExtractionArgs } from './activations';
import { FLOAT32_IN_MEMORY, copyRow } from './row-store';
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
  const storage = options.storage ?? FLOAT32_IN_MEMORY;
  const all = storage.allocate(n, sizes, numViews);
  const acts: Activations = { n, shapes, rows: all.rows, labels: Int32Array.from(data.labels), keys: [...keys], dispose: all.dispose, where: all.where };
  try {
    const present = new Uint8Array(n);
    const misses = await readHits(acts, keys, numViews, sizes, present, options);
    if (misses.length < n) options.onProgress?.({ done: n - misses.length, total: n, stage: 'cache' });
    if (misses.length > 0) await fillMisses(acts, misses, present, extractor, toSource(data.subset(misses, 'uncached')), options);
    const kept = Array.from({ length: n }, (_, i) => i).filter((i) => present[i]);
    if (kept.length === n) return acts;
    const compact = subsetActivations(acts, kept, { storage });
    acts.dispose();
    return compact;
  } catch (error) {
    acts.dispose();
    throw error;
  }
}

/** Reads every image's cached rows into `acts`, marking them in `present`; returns the indices of the misses. */
async function readHits(
  acts: Activations,
  keys: readonly string[],
  numViews: number,
  sizes: number[],
  present: Uint8Array,
  options: ExtractionArgs & { store: { store: ActivationStore; identity: string } },
): Promise<number[]> {
  const misses: number[] = [];
  const { identity } = options.store;
  for (let i = 0; i < acts.n; i++) {
    throwIfAborted(options.signal, 'Feature extraction');
    let hit = true;
    const rows: Float32Array[][] = [];
    for (let v = 0; v < numViews && hit; v++) {
      const got = await readEntry(options.store, `${identity}:${v}:${keys[i]}`);
      if (!got || got.length !== sizes.length || got.some((a, j) => a.length !== sizes[j])) hit = false;
      else rows.push(got);
    }
    if (hit) {
      rows.forEach((perOutput, v) => perOutput.forEach((arr, j) => acts.rows[v]![j]!.write(i, arr)));
      present[i] = 1;
    } else misses.push(i);
  }
  return misses;
}

/** Extracts the misses and copies their rows into `acts` (matched by key: images that failed to decode are missing). */
async function fillMisses(
  acts: Activations,
  misses: number[],
  present: Uint8Array,
  extractor: tfl.LayersModel,
  source: LabelledSource,
  options: ExtractionArgs,
): Promise<void> {
  const fresh = await extractActivations(extractor, acts.shapes, source, options);
  try {
    const position = new Map<string, number>();
    misses.forEach((i) => position.set(acts.keys[i]!, i));
    const scratch = new Float32Array(Math.max(0, ...acts.shapes.map(sizeOf)));
    for (let r = 0; r < fresh.n; r++) {
      const i = position.get(fresh.keys[r] ?? '');
      if (i === undefined) continue;
      fresh.rows.forEach((perView, v) => perView.forEach((src, j) => copyRow(src, r, acts.rows[v]![j]!, i, scratch)));
      present[i] = 1;
    }
  } finally {
    fresh.dispose();
  }
}
