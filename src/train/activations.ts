/**
 * Activations at the freeze boundary, computed once per image (and per cached view, e.g. mirrored) and kept in
 * JavaScript memory (not on the backend), so training the top costs only the top.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { tryFold } from '../backbone/fold';
import { env, log } from '../env';
import { throwIfAborted } from '../errors';
import type { ProgressCallback } from '../types';
import type { ParallelRun } from '../services';
import type { LabelledSource } from './source';
import type { Yielder } from './yield';
import { FLOAT32_IN_MEMORY, copyRow, type RowStorage, type RowStore } from './row-store';

/**
 * Cached activations of `n` images: `rows[view][output]` holds (at least) `n` rows of `size(output)` values, in
 * memory or in a spill file (see `row-store.ts`). Read them with {@link gatherBatch}; take a part with
 * {@link subsetActivations}.
 */
export interface Activations {
  n: number;
  shapes: number[][];
  /** Per view (0: as is, 1: mirrored, ...), per boundary output. */
  rows: RowStore[][];
  labels: Int32Array;
  keys: (string | undefined)[];
  /** Frees the rows' storage (closes and deletes a spill file). Safe to call twice; shared by uncopied subsets. */
  dispose(): void;
  /** Where the rows are: `'memory'`, or the spill file's path. */
  where: string;
}

/** A transformation of a batch before extraction (a cached view), e.g. horizontal flip. */
export type ViewTransform = (xs: tf.Tensor4D) => tf.Tensor4D;

/** The two views of flip augmentation and of flip test-time augmentation: the images as they are, then mirrored left to right. @internal */
export function flipViews(): ViewTransform[] {
  return [(x) => x, (x) => tf.reverse(x, 2)];
}

/** Persistent storage of per-image activations, keyed by image content and extractor identity. @category Caches */
export interface ActivationStore {
  /** Activations of one image (one array per boundary output), or undefined. */
  get(key: string): Promise<Float32Array[] | undefined>;
  /** Stores one image's activations. */
  set(key: string, values: Float32Array[]): Promise<void>;
}

/** Runs the frozen prefix over batches. */
interface BatchRunner {
  /**
   * Starts a batch. Resolves once `xs` has been read (the caller may dispose it then) to the batch's pending
   * result: one Float32Array per boundary output. Wrapped in an object so the two waits stay apart.
   */
  start(xs: tf.Tensor4D): Promise<{ result: Promise<Float32Array[]> }>;
  /**
   * Batches worth keeping in flight: 2 on worker threads (the next batch is queued while this one runs, so the
   * workers never wait for this thread to read results and prepare the next batch), 1 in this thread.
   */
  depth: number;
  close(): void;
}

/** A plain function from a batch to the boundary activations (the caller disposes the result). */
export type ExtractFunction = (xs: tf.Tensor4D) => tf.Tensor[];

/**
 * The fastest way to run `extractor` here: on `env.parallelExtractor`'s workers when it takes the job, else the
 * folded program (BN folded, conv+bias+relu6 fused) in this thread, else `extractor.predict`.
 */
async function openRunner(extractor: tfl.LayersModel | ExtractFunction, images: number): Promise<BatchRunner> {
  const folded = typeof extractor === 'function' ? undefined : tryFold(extractor);
  const predict: ExtractFunction =
    typeof extractor === 'function'
      ? extractor
      : folded
        ? (x) => folded.predict(x)
        : (x) => {
            const o = extractor.predict(x, { batchSize: x.shape[0] });
            return Array.isArray(o) ? o : [o];
          };
  let parallel: ParallelRun | undefined;
  if (folded && env.parallelExtractor) {
    try {
      parallel = await env.parallelExtractor.open(() => folded.serialize(), { backend: tf.getBackend(), images });
    } catch {
      parallel = undefined;
    }
  }
  const run = parallel;
  return {
    depth: run ? 2 : 1,
    async start(xs) {
      if (run) {
        const pixels = (await xs.data()) as Float32Array;
        const result = run.run(pixels, xs.shape as [number, number, number, number]);
        result.catch(() => undefined); // handled here, rethrown where the caller awaits it
        return { result };
      }
      const outs = tf.tidy(() => predict(xs));
      try {
        return { result: Promise.resolve(await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array))) };
      } finally {
        outs.forEach((t) => t.dispose());
      }
    },
    close() {
      parallel?.dispose();
      folded?.dispose();
    },
  };
}

/**
 * Reads `source` one batch ahead, so loading (decoding, resizing) the next batch overlaps extracting this one. A
 * batch read ahead but never consumed (error, abort) is disposed.
 */
async function* prefetch<T extends { xs: tf.Tensor }>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  let finished = false;
  try {
    for (;;) {
      const r = await next;
      if (r.done) {
        finished = true;
        return;
      }
      next = it.next();
      next.catch(() => undefined); // rethrown when awaited above
      yield r.value;
    }
  } finally {
    if (!finished) {
      const pending = await next.catch(() => undefined);
      if (pending && !pending.done) pending.value.xs.dispose();
      await it.return?.(undefined);
    }
  }
}

/** How {@link extractActivations} runs. @internal */
export interface ExtractionArgs {
  batchSize: number;
  views: ViewTransform[];
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Applied to raw batches before the views (e.g. random augmentation). */
  transform?: (xs: tf.Tensor4D) => tf.Tensor4D;
  store?: { store: ActivationStore; identity: string };
  /** Gives the event loop a turn between batches (see `FitArgs.yieldEvery`). */
  yielder?: Yielder;
  /** Where the rows are kept. @defaultValue float32 in memory */
  storage?: RowStorage;
}

/** Number of values in one image's activations of `shape`. @internal */
export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Runs `extractor` over every image of `source` once per view, keeping the rows where `options.storage` says
 * (float32 in memory by default). A layers model runs folded (see `foldModel`) and, when `env.parallelExtractor`
 * takes the job, on worker threads. On failure the storage is freed (a spill file deleted).
 */
export async function extractActivations(
  extractor: tfl.LayersModel | ExtractFunction,
  shapes: number[][],
  source: LabelledSource,
  options: ExtractionArgs,
): Promise<Activations> {
  const views = options.views.length > 0 ? options.views : [(x: tf.Tensor4D) => x];
  const capacity = source.size;
  const sizes = shapes.map(sizeOf);
  const allocation = (options.storage ?? FLOAT32_IN_MEMORY).allocate(capacity, sizes, views.length);
  const labels = new Int32Array(capacity);
  const keys: (string | undefined)[] = [];
  const runner = await openRunner(extractor, capacity * views.length).catch((error: unknown) => {
    allocation.dispose();
    throw error;
  });
  let n = 0;
  const put = (row: number, perView: Float32Array[][]): void =>
    perView.forEach((outs, v) => outs.forEach((o, j) => allocation.rows[v]![j]!.write(row, o)));
  // Batches started but not yet stored, oldest first; at most runner.depth of them.
  const inFlight: Promise<void>[] = [];
  let extracted = 0;
  const progress = (b: number): void => {
    extracted += b;
    options.onProgress?.({ done: extracted, total: capacity, stage: 'extract' });
  };
  try {
    for await (const batch of prefetch(source.batches(options.batchSize, options.signal))) {
      try {
        throwIfAborted(options.signal, 'Feature extraction');
        const b = batch.xs.shape[0];
        const offset = n;
        const cachedRows = options.store ? await readStore(options.store, batch.keys, views.length, sizes) : undefined;
        if (!cachedRows) {
          const results = await startViews(runner, views, options.transform, batch.xs);
          const store = options.store;
          const keysOfBatch = batch.keys;
          const stored = Promise.all(results).then(async (perView) => {
            put(offset, perView);
            if (store && keysOfBatch) await writeStore(store, keysOfBatch, perView, sizes);
            progress(b);
          });
          stored.catch(() => undefined); // handled here, rethrown when awaited below
          inFlight.push(stored);
        } else {
          cachedRows.forEach((row, i) => put(offset + i, row));
          progress(b);
        }
        labels.set(batch.ys, offset);
        for (let i = 0; i < b; i++) keys.push(batch.keys?.[i]);
        n += b;
        while (inFlight.length >= runner.depth) await inFlight.shift();
        await options.yielder?.batchEnd();
      } finally {
        batch.xs.dispose();
      }
    }
    while (inFlight.length > 0) await inFlight.shift();
  } catch (error) {
    await Promise.allSettled(inFlight);
    allocation.dispose();
    throw error;
  } finally {
    // Never release the workers' copy of the backbone under a batch they are still running.
    await Promise.allSettled(inFlight);
    runner.close();
  }
  return { n, shapes, rows: allocation.rows, labels: labels.slice(0, n), keys, dispose: allocation.dispose, where: allocation.where };
}

/** Starts every view of one batch on `runner`; resolves once the inputs are read, to the pending results. */
async function startViews(
  runner: BatchRunner,
  views: ViewTransform[],
  transform: ((xs: tf.Tensor4D) => tf.Tensor4D) | undefined,
  xs: tf.Tensor4D,
): Promise<Promise<Float32Array[]>[]> {
  const input = transform ? tf.tidy(() => transform(xs)) : xs;
  const results: Promise<Float32Array[]>[] = [];
  try {
    for (let v = 0; v < views.length; v++) {
      const viewed = tf.tidy(() => views[v]!(input));
      try {
        results.push((await runner.start(viewed)).result);
      } finally {
        if (viewed !== input) viewed.dispose();
      }
    }
  } finally {
    if (input !== xs) input.dispose();
  }
  return results;
}

async function readStore(
  s: { store: ActivationStore; identity: string },
  keys: string[] | undefined,
  numViews: number,
  sizes: number[],
): Promise<Float32Array[][][] | undefined> {
  if (!keys) return undefined;
  // Concurrent reads within a batch (a disk or IndexedDB store overlaps them).
  const rows = await Promise.all(
    keys.map(async (key) => {
      const perView: Float32Array[][] = [];
      for (let v = 0; v < numViews; v++) {
        const got = await readEntry(s, `${s.identity}:${v}:${key}`);
        if (!got || got.length !== sizes.length || got.some((a, j) => a.length !== sizes[j])) return undefined;
        perView.push(got);
      }
      return perView;
    }),
  );
  return rows.every((r) => r !== undefined) ? (rows as Float32Array[][][]) : undefined;
}

async function writeStore(
  s: { store: ActivationStore; identity: string },
  keys: string[],
  perView: Float32Array[][],
  sizes: number[],
): Promise<void> {
  if (failedStores.has(s)) return;
  const writes: Promise<void>[] = [];
  for (let i = 0; i < keys.length; i++) {
    for (let v = 0; v < perView.length; v++) {
      // The exact float32 values as extracted, whatever the in-fit storage encodes.
      const row = perView[v]!.map((arr, j) => arr.slice(i * sizes[j]!, (i + 1) * sizes[j]!));
      // A store may throw synchronously as well as reject.
      writes.push(Promise.resolve().then(() => s.store.set(`${s.identity}:${v}:${keys[i]}`, row)));
    }
  }
  const failure = (await Promise.allSettled(writes)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) cacheWriteFailed(s, failure.reason);
}

/**
 * Stores (per fit: the `{ store, identity }` object of one call) whose writes failed. A cache is an optimisation:
 * a failed write (a full disk, a read-only folder, an entry path that is a folder) is said once, later writes of
 * that fit are skipped, and extraction goes on with the activations it computed, so results equal a run without
 * the cache.
 */
const failedStores = new WeakSet<object>();

function cacheWriteFailed(s: { store: ActivationStore }, reason: unknown): void {
  if (failedStores.has(s)) return;
  failedStores.add(s);
  const message = reason instanceof Error ? reason.message : String(reason);
  log(
    `tfjs-transfer: could not write to the activation cache ${describeStore(s.store)} (${message}); ` +
      'training goes on without caching (results are unchanged; the next run extracts again).',
  );
}

/**
 * One entry of `s.store`, or `undefined` when it has none or the read fails (said once per fit, like a failed
 * write: a cache that cannot be read is a cache miss, never a reason to stop).
 * @internal
 */
export async function readEntry(s: { store: ActivationStore }, key: string): Promise<Float32Array[] | undefined> {
  if (failedReads.has(s)) return undefined;
  try {
    return await s.store.get(key);
  } catch (error) {
    // Reads run concurrently: only the first failure is said.
    if (failedReads.has(s)) return undefined;
    failedReads.add(s);
    log(
      `tfjs-transfer: could not read the activation cache ${describeStore(s.store)} (${error instanceof Error ? error.message : String(error)}); ` +
        'extracting without it (results are unchanged).',
    );
    return undefined;
  }
}

const failedReads = new WeakSet<object>();

/** How a store is named in messages: its folder or name when it has one. */
function describeStore(store: ActivationStore): string {
  const named = store as { dir?: unknown; name?: unknown };
  if (typeof named.dir === 'string') return `at ${named.dir}`;
  if (typeof named.name === 'string' && named.name.length > 0) return `"${named.name}"`;
  return `(${store.constructor?.name && store.constructor.name !== 'Object' ? store.constructor.name : 'the cache option'})`;
}

/** Gathers rows `indices` (with a view per row) into one float32 tensor per boundary output, decoding stored rows. */
export function gatherBatch(acts: Activations, indices: ArrayLike<number>, viewOf: (row: number) => number): tf.Tensor[] {
  const b = indices.length;
  return acts.shapes.map((shape, j) => {
    const size = sizeOf(shape);
    const buf = new Float32Array(b * size);
    for (let i = 0; i < b; i++) {
      const row = indices[i]!;
      acts.rows[viewOf(row)]![j]!.read(row, buf, i * size);
    }
    return tf.tensor(buf, [b, ...shape], 'float32');
  });
}

/** Rows of another store, through an index map (a subset that copies nothing). */
class MappedRows implements RowStore {
  readonly rows: number;
  readonly size: number;
  readonly encoding: RowStore['encoding'];
  constructor(
    private readonly base: RowStore,
    private readonly map: Int32Array,
  ) {
    this.rows = map.length;
    this.size = base.size;
    this.encoding = base.encoding;
  }
  write(row: number, values: Float32Array): void {
    for (let r = 0; r * this.size < values.length; r++) this.base.write(this.map[row + r]!, values.subarray(r * this.size, (r + 1) * this.size));
  }
  read(row: number, out: Float32Array, offset: number): void {
    this.base.read(this.map[row]!, out, offset);
  }
}

/** How {@link subsetActivations} takes its rows. @internal */
export interface SubsetArgs {
  /** The views kept, in order. @defaultValue every view */
  views?: number[];
  /**
   * Copy the rows into this storage (the subset then owns its own rows and outlives `acts`). @defaultValue none:
   * the subset reads `acts`' rows through an index map, copies nothing, and shares `acts`' `dispose`
   */
  storage?: RowStorage;
}

/** Activations restricted to `rows` (for a validation split), copied into `options.storage` or mapped onto `acts`. */
export function subsetActivations(acts: Activations, rows: number[], options: SubsetArgs = {}): Activations {
  const views = options.views ?? acts.rows.map((_, v) => v);
  const common = { n: rows.length, shapes: acts.shapes, labels: Int32Array.from(rows, (r) => acts.labels[r]!), keys: rows.map((r) => acts.keys[r]) };
  if (!options.storage) {
    const map = Int32Array.from(rows);
    return { ...common, rows: views.map((v) => acts.rows[v]!.map((store) => new MappedRows(store, map))), dispose: acts.dispose, where: acts.where };
  }
  const sizes = acts.shapes.map(sizeOf);
  const allocation = options.storage.allocate(rows.length, sizes, views.length);
  try {
    const scratch = new Float32Array(Math.max(0, ...sizes));
    views.forEach((v, k) => acts.rows[v]!.forEach((src, j) => rows.forEach((r, i) => copyRow(src, r, allocation.rows[k]![j]!, i, scratch))));
  } catch (error) {
    allocation.dispose();
    throw error;
  }
  return { ...common, rows: allocation.rows, dispose: allocation.dispose, where: allocation.where };
}
