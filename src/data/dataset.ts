/**
 * Datasets: labelled images streamed in batches with bounded memory, from any source. Browser-safe.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { env, log } from '../env';
import { TransferError, check, throwIfAborted } from '../errors';
import type { BatchOptions, DrawableImage, ImageBatch, ImageDataLike, ImageDataset, ImageSize, Labels } from '../types';
import { isLocalPath } from '../util/location';
import { Random } from '../util/random';
import { takeRows } from '../util/rows';
import { type AugmentArgs, augmentImages, resolveAugmentArgs } from './augment';
import { checkClassNames, toClassIndices } from './labels';
import { RESIZE_FITS, type ResizeFit, resizeImages } from './resize';

/**
 * A file or image that was left out, and why. Nothing is dropped silently: every one is listed here.
 * @category Step 2: Pipeline
 */
export interface SkippedImage {
  /** Where it came from: a file path, a URL, `"images[3]"`. */
  source: string;
  /** What was wrong, for people (e.g. `"not an image: the content matches no supported format"`). */
  reason: string;
  /** `'scan'` when found while listing the data, `'load'` when decoding failed while producing batches. */
  stage: 'scan' | 'load';
  /** The class it would have had, when known. */
  label?: string;
  /**
   * Whether it is an expected non-image (a hidden file, `Thumbs.db`, `.DS_Store`) rather than a problem. Ignored
   * files are listed but never make `strict` mode fail.
   */
  ignored?: boolean;
}

/**
 * Pixels decoded outside tfjs (e.g. by sharp in Node): `height * width * channels` values, row-major, RGB.
 * @category Step 2: Pipeline
 */
export interface DecodedPixels {
  /** Pixel values in 0..255, `[height, width, channels]` order. */
  data: Uint8Array | Uint8ClampedArray | Float32Array;
  /** Image height in pixels. */
  height: number;
  /** Image width in pixels. */
  width: number;
  /**
   * 3 (RGB), 4 (RGBA: alpha is dropped) or 1 (gray: copied to R, G and B).
   * @defaultValue 3
   */
  channels?: number;
}

/**
 * What a {@link DatasetSource} loader returns for one image. A returned tensor is owned (disposed) by the dataset.
 * @category Step 2: Pipeline
 */
export type LoadedImage = DecodedPixels | tf.Tensor3D;

/**
 * What the pipeline asks a loader for.
 * @category Step 2: Pipeline
 */
export interface LoadRequest {
  /** Target `[height, width]`; the loader may resize (cheaper at decode time) or leave it to the pipeline. */
  size?: ImageSize;
  /** How to fit a different aspect ratio into `size`. */
  fit: ResizeFit;
  /** Aborted when the consumer stops iterating; loaders should stop early. */
  signal: AbortSignal;
}

/**
 * Facts about one image known without decoding it (from its header), used by `examine`.
 * @category Step 2: Pipeline
 */
export interface ImageInfo {
  /** Width in pixels, after EXIF orientation. */
  width?: number;
  /** Height in pixels, after EXIF orientation. */
  height?: number;
  /** Format, e.g. `'jpeg'`, `'png'`, `'tensor'`. */
  format?: string;
  /** Size of the encoded file in bytes. */
  bytes?: number;
}

/**
 * Everything {@link createDataset} needs to turn a loader into a streaming dataset.
 * @category Step 2: Pipeline
 */
export interface DatasetSource {
  /** Class names; label `i` means `classes[i]`. */
  classes: readonly string[];
  /** Class index of each image. Its length is the dataset's size. */
  labels: ArrayLike<number>;
  /** Loads image `index` (0-based). Throw (or reject) to have it skipped and recorded in `skipped`. */
  load(index: number, request: LoadRequest): Promise<LoadedImage>;
  /**
   * Where each image comes from, for reports.
   * @defaultValue `"<name>[i]"`
   */
  sources?: readonly string[];
  /**
   * Content identity of each image (e.g. a content hash), used as feature-cache keys.
   * @defaultValue none
   */
  keys?: readonly string[];
  /**
   * Header facts per image, for `examine`.
   * @defaultValue none
   */
  info?: readonly (ImageInfo | undefined)[];
  /**
   * The size every image already has, if they all share one; then `batches()` needs no `size`.
   * @defaultValue none
   */
  imageSize?: ImageSize;
  /**
   * Images loaded at the same time.
   * @defaultValue 4
   */
  concurrency?: number;
  /**
   * Batches decoded ahead of the consumer.
   * @defaultValue 2
   */
  prefetch?: number;
  /**
   * Augmentation used when `batches({ augment: true })`.
   * @defaultValue the {@link AugmentArgs} defaults
   */
  augment?: AugmentArgs;
  /**
   * How images are fitted to `size`.
   * @defaultValue `'squash'`
   */
  fit?: ResizeFit;
  /**
   * Make an image that fails to load an error instead of skipping it.
   * @defaultValue `false`
   */
  strict?: boolean;
  /**
   * Called for each image skipped while producing batches (after it is added to `skipped`).
   * @defaultValue none
   */
  onSkip?: (skipped: SkippedImage) => void;
  /**
   * Images already skipped before the dataset was made (e.g. while scanning a folder).
   * @defaultValue `[]`
   */
  skipped?: SkippedImage[];
  /**
   * Names the dataset in messages and default sources.
   * @defaultValue `"dataset"`
   */
  name?: string;
}

/**
 * Options for {@link Dataset.batches}: {@link BatchOptions} plus pipeline settings.
 * @category Step 2: Pipeline
 */
export interface DatasetBatchArgs extends Omit<BatchOptions, 'augment'> {
  /** Augment (training only): `true` uses the dataset's {@link AugmentArgs}, an object overrides them. Default `false`. */
  augment?: boolean | AugmentArgs;
  /**
   * Batches decoded ahead of the consumer; memory is bounded by `(prefetch + 1) * batchSize` images.
   * @defaultValue the dataset's (2)
   */
  prefetch?: number;
  /**
   * How images are fitted to `size`.
   * @defaultValue the dataset's (`'squash'`)
   */
  fit?: ResizeFit;
}

/**
 * An {@link ImageDataset} with the extras the pipeline provides: where images come from, content keys, header
 * facts, what was skipped, and subsets.
 * @category Step 2: Pipeline
 */
export interface Dataset extends ImageDataset {
  /** Names the dataset in messages (`"train"`, `"validation"`, ...). */
  readonly name: string;
  /** Where each image comes from (file path, URL, `"images[3]"`), in dataset order. */
  readonly sources: readonly string[];
  /** Content identity of each image (sha256 of the file, truncated, for folders), in dataset order, if known. */
  readonly keys: readonly string[] | undefined;
  /** Header facts of each image, if known. */
  readonly info: readonly (ImageInfo | undefined)[] | undefined;
  /** The size every image already has, if they all share one. */
  readonly imageSize: ImageSize | undefined;
  /** How its images are fitted to a size of another aspect ratio (`fit` records it in the model it trains). */
  readonly fit: ResizeFit;
  /**
   * Every image left out, with the reason: at scan time and, as batches are produced, at load time. It is shared
   * with every subset of the same data and grows while batches run.
   */
  readonly skipped: readonly SkippedImage[];
  /** A dataset of some of these images (indices into this dataset), e.g. for a split. */
  subset(indices: ArrayLike<number>, name?: string): Dataset;
  /** Streams the images in batches of raw 0..255 float32 pixels; see {@link DatasetBatchArgs}. */
  batches(options?: DatasetBatchArgs): AsyncIterable<ImageBatch>;
}

/** State shared by a dataset and its subsets. */
interface SharedState {
  source: DatasetSource;
  skipped: SkippedImage[];
  failed: Set<number>;
  baseSources: readonly string[];
}

const DEFAULT_BATCH_SIZE = 32;
const DEFAULT_CONCURRENCY = 4;
const DEFAULT_PREFETCH = 2;

/**
 * Makes a streaming {@link Dataset} from a loader, so any source plugs into the pipeline: the loader decodes one
 * image on demand; the dataset shuffles (seeded), batches, prefetches with bounded concurrency, resizes, augments,
 * and skips (and records) images that fail to load.
 *
 * @example
 * ```ts
 * const ds = createDataset({
 *   classes: ['cat', 'dog'],
 *   labels: [0, 1, 1],
 *   sources: urls,
 *   load: async (i) => decodeSomehow(urls[i]), // -> { data, height, width } or a Tensor3D
 * });
 * for await (const { xs, ys } of ds.batches({ batchSize: 16, size: [224, 224] })) { ...; xs.dispose(); ys.dispose(); }
 * ```
 * @category Step 2: Pipeline
 */
export function createDataset(source: DatasetSource): Dataset {
  const name = source.name ?? 'dataset';
  checkClassNames(source.classes, `${name}: classes`);
  const n = source.labels.length;
  for (let i = 0; i < n; i++) {
    const label = source.labels[i] as number;
    check(
      Number.isInteger(label) && label >= 0 && label < source.classes.length,
      `${name}: label ${i} is ${String(label)}, not a class index in 0..${source.classes.length - 1}.`,
    );
  }
  for (const [key, list] of [['sources', source.sources], ['keys', source.keys], ['info', source.info]] as const) {
    check(
      list === undefined || list.length === n,
      `${name}: ${key} has ${list?.length} entries for ${n} images; give one per image.`,
    );
  }
  if (source.fit !== undefined) {
    check(RESIZE_FITS.includes(source.fit), `${name}: fit must be one of ${RESIZE_FITS.join(', ')}, got '${source.fit}'.`);
  }
  checkPositiveInt(source.concurrency, `${name}: concurrency`);
  checkPositiveInt(source.prefetch, `${name}: prefetch`, true);
  if (source.augment) resolveAugmentArgs(source.augment, `${name}: augment`);
  const baseSources = source.sources ?? Array.from({ length: n }, (_, i) => `${name}[${i}]`);
  const state: SharedState = { source, skipped: source.skipped ?? [], failed: new Set(), baseSources };
  return new StreamingDataset(state, Array.from({ length: n }, (_, i) => i), name);
}

function checkPositiveInt(value: number | undefined, what: string, allowZero = false): void {
  if (value === undefined) return;
  check(
    Number.isInteger(value) && (allowZero ? value >= 0 : value > 0),
    `${what} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${String(value)}.`,
  );
}

class StreamingDataset implements Dataset {
  readonly classes: readonly string[];
  readonly labels: readonly number[];
  readonly sources: readonly string[];
  readonly keys: readonly string[] | undefined;
  readonly info: readonly (ImageInfo | undefined)[] | undefined;

  constructor(
    private readonly state: SharedState,
    private readonly indices: readonly number[],
    readonly name: string,
  ) {
    const src = state.source;
    this.classes = src.classes;
    this.labels = indices.map((i) => src.labels[i] as number);
    this.sources = indices.map((i) => state.baseSources[i] as string);
    this.keys = src.keys ? indices.map((i) => src.keys?.[i] as string) : undefined;
    this.info = src.info ? indices.map((i) => src.info?.[i]) : undefined;
  }

  get size(): number {
    return this.indices.length;
  }

  get imageSize(): ImageSize | undefined {
    return this.state.source.imageSize;
  }

  get fit(): ResizeFit {
    return this.state.source.fit ?? 'squash';
  }

  get skipped(): readonly SkippedImage[] {
    return this.state.skipped;
  }

  subset(indices: ArrayLike<number>, name?: string): Dataset {
    const picked: number[] = [];
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k] as number;
      check(
        Number.isInteger(i) && i >= 0 && i < this.indices.length,
        `${this.name}.subset: index ${String(i)} is out of range for ${this.indices.length} images.`,
      );
      picked.push(this.indices[i] as number);
    }
    return new StreamingDataset(this.state, picked, name ?? `${this.name}.subset`);
  }

  batches(options: DatasetBatchArgs = {}): AsyncIterable<ImageBatch> {
    const src = this.state.source;
    const what = `${this.name}.batches`;
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    checkPositiveInt(batchSize, `${what}: batchSize`);
    checkPositiveInt(options.prefetch, `${what}: prefetch`, true);
    const size = options.size ?? src.imageSize;
    if (size) {
      check(
        size.length === 2 && size.every((v) => Number.isInteger(v) && v > 0),
        `${what}: size must be [height, width] in positive integers, got [${size.join(', ')}].`,
      );
    }
    const fit = options.fit ?? src.fit ?? 'squash';
    check(RESIZE_FITS.includes(fit), `${what}: fit must be one of ${RESIZE_FITS.join(', ')}, got '${String(fit)}'.`);
    const augmentArgs =
      options.augment === true ? (src.augment ?? {}) : options.augment ? { ...src.augment, ...options.augment } : undefined;
    if (augmentArgs) resolveAugmentArgs(augmentArgs, `${what}: augment`);
    const seed = options.seed ?? 0;
    check(Number.isFinite(seed), `${what}: seed must be a finite number, got ${String(seed)}.`);
    const settings: RunSettings = {
      batchSize,
      size,
      fit,
      augmentArgs,
      seed,
      shuffle: options.shuffle ?? false,
      prefetch: options.prefetch ?? src.prefetch ?? DEFAULT_PREFETCH,
      concurrency: src.concurrency ?? DEFAULT_CONCURRENCY,
      signal: options.signal,
      what,
    };
    return { [Symbol.asyncIterator]: () => this.run(settings) };
  }

  private async *run(s: RunSettings): AsyncGenerator<ImageBatch> {
    throwIfAborted(s.signal, s.what);
    const order = Array.from({ length: this.indices.length }, (_, i) => i);
    if (s.shuffle) new Random(s.seed).shuffle(order);
    const augmentRandom = new Random((s.seed ^ 0x5bd1e995) >>> 0);
    const chunks: number[][] = [];
    for (let i = 0; i < order.length; i += s.batchSize) chunks.push(order.slice(i, i + s.batchSize));

    const controller = new AbortController();
    const onAbort = (): void => controller.abort(s.signal?.reason);
    s.signal?.addEventListener('abort', onAbort);
    const limit = limiter(s.concurrency);
    const pending: Promise<Loaded[]>[] = [];
    let next = 0;
    const fill = (): void => {
      while (pending.length < Math.max(1, s.prefetch) && next < chunks.length) {
        const promise = this.loadChunk(chunks[next++] as number[], s, controller.signal, limit);
        promise.catch(() => undefined); // handled when awaited; avoid unhandled-rejection noise meanwhile
        pending.push(promise);
      }
    };
    try {
      fill();
      while (pending.length > 0) {
        const items = await (pending.shift() as Promise<Loaded[]>);
        let batch: ImageBatch | undefined;
        try {
          fill();
          throwIfAborted(s.signal, s.what);
          const kept = items.filter((item) => item.image !== undefined);
          if (kept.length > 0) batch = this.assemble(kept, s, augmentRandom);
        } finally {
          for (const item of items) if (item.image instanceof tf.Tensor) item.image.dispose();
        }
        if (batch) yield batch;
      }
    } finally {
      s.signal?.removeEventListener('abort', onAbort);
      controller.abort(new Error('iteration stopped'));
      for (const promise of pending) {
        const items = await promise.catch(() => [] as Loaded[]);
        for (const item of items) if (item.image instanceof tf.Tensor) item.image.dispose();
      }
    }
  }

  private async loadChunk(
    positions: number[],
    s: RunSettings,
    signal: AbortSignal,
    limit: Limiter,
  ): Promise<Loaded[]> {
    const src = this.state.source;
    const results = await Promise.allSettled(
      positions.map((pos) =>
        limit(async (): Promise<Loaded> => {
          const index = this.indices[pos] as number;
          if (this.state.failed.has(index) || signal.aborted) return { pos, index };
          try {
            const image = await src.load(index, { size: s.size, fit: s.fit, signal });
            if (signal.aborted) {
              if (image instanceof tf.Tensor) image.dispose();
              return { pos, index };
            }
            return { pos, index, image: validateLoaded(image, this.state.baseSources[index] as string) };
          } catch (error) {
            if (signal.aborted) return { pos, index };
            return this.recordFailure(pos, index, error);
          }
        }),
      ),
    );
    const items: Loaded[] = [];
    let firstError: unknown;
    for (const r of results) {
      if (r.status === 'fulfilled') items.push(r.value);
      else firstError ??= r.reason;
    }
    if (firstError !== undefined) {
      for (const item of items) if (item.image instanceof tf.Tensor) item.image.dispose();
      throw firstError;
    }
    return items;
  }

  private recordFailure(pos: number, index: number, error: unknown): Loaded {
    const src = this.state.source;
    const source = this.state.baseSources[index] as string;
    const reason = error instanceof Error ? error.message : String(error);
    if (src.strict) {
      throw new TransferError(
        'IMAGE_DECODE_FAILED',
        `Could not load ${source}: ${reason}. Fix or remove the file, or leave \`strict\` off to skip such images.`,
        { cause: error },
      );
    }
    this.state.failed.add(index);
    const skipped: SkippedImage = {
      source,
      reason,
      stage: 'load',
      label: src.classes[src.labels[index] as number],
    };
    this.state.skipped.push(skipped);
    log(`tfjs-transfer: skipped ${source}: ${reason}`);
    src.onSkip?.(skipped);
    return { pos, index };
  }

  private assemble(items: Loaded[], s: RunSettings, augmentRandom: Random): ImageBatch {
    const src = this.state.source;
    const labels = items.map((item) => src.labels[item.index] as number);
    const xs = tf.tidy(() => {
      let target = s.size;
      if (!target) {
        const first = shapeOf(items[0]?.image as LoadedImage);
        for (const item of items) {
          const [h, w] = shapeOf(item.image as LoadedImage);
          if (h !== first[0] || w !== first[1]) {
            throw new TransferError(
              'SHAPE_MISMATCH',
              `${s.what}: images differ in size (${this.state.baseSources[items[0]?.index ?? 0]} is ` +
                `${first[0]}x${first[1]}, ${this.state.baseSources[item.index]} is ${h}x${w}); pass \`size\` ` +
                `(e.g. the backbone's [224, 224]) to batches().`,
            );
          }
        }
        target = first;
      }
      const [th, tw] = target;
      const allRawAtSize = items.every((item) => {
        const img = item.image as LoadedImage;
        return !(img instanceof tf.Tensor) && img.height === th && img.width === tw && (img.channels ?? 3) === 3;
      });
      let batch: tf.Tensor4D;
      if (allRawAtSize) {
        const pixels = th * tw * 3;
        const data = new Float32Array(items.length * pixels);
        items.forEach((item, k) => data.set((item.image as DecodedPixels).data, k * pixels));
        batch = tf.tensor4d(data, [items.length, th, tw, 3], 'float32');
      } else {
        const images = items.map((item) => {
          const t = toRgbTensor(item.image as LoadedImage);
          return t.shape[0] === th && t.shape[1] === tw ? t : resizeImages(t, [th, tw], { fit: s.fit });
        });
        batch = tf.stack(images) as tf.Tensor4D;
      }
      if (batch.dtype !== 'float32') batch = tf.cast(batch, 'float32');
      if (s.augmentArgs) batch = augmentImages(batch, s.augmentArgs, augmentRandom);
      return batch;
    });
    const ys = tf.tensor1d(labels, 'int32');
    const batch: ImageBatch = { xs, ys, sources: items.map((item) => this.state.baseSources[item.index] as string) };
    if (src.keys) batch.keys = items.map((item) => src.keys?.[item.index] as string);
    return batch;
  }
}

interface RunSettings {
  batchSize: number;
  size: ImageSize | undefined;
  fit: ResizeFit;
  augmentArgs: AugmentArgs | undefined;
  seed: number;
  shuffle: boolean;
  prefetch: number;
  concurrency: number;
  signal: AbortSignal | undefined;
  what: string;
}

interface Loaded {
  pos: number;
  index: number;
  image?: LoadedImage;
}

type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

/** Runs at most `n` tasks at a time. @internal */
export function limiter(n: number): Limiter {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => queue.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

function shapeOf(image: LoadedImage): [number, number] {
  return image instanceof tf.Tensor ? [image.shape[0], image.shape[1]] : [image.height, image.width];
}

function validateLoaded(image: LoadedImage, source: string): LoadedImage {
  if (image instanceof tf.Tensor) {
    if (image.rank !== 3 || ![1, 3, 4].includes(image.shape[2])) {
      const shape = image.shape.join(', ');
      image.dispose();
      throw new Error(`expected a [height, width, 1|3|4] image, got shape [${shape}]`);
    }
    return image;
  }
  check(image != null && typeof image === 'object', `loader for ${source} returned ${String(image)}, not an image.`);
  const channels = image.channels ?? 3;
  if (![1, 3, 4].includes(channels) || image.data.length !== image.height * image.width * channels) {
    throw new Error(
      `decoded pixels have ${image.data.length} values, not height*width*channels = ` +
        `${image.height}*${image.width}*${channels}`,
    );
  }
  return image;
}

/** Any loaded image as a float32 [h, w, 3] tensor (call inside a tidy). */
function toRgbTensor(image: LoadedImage): tf.Tensor3D {
  const t =
    image instanceof tf.Tensor
      ? image
      : tf.tensor3d(image.data instanceof Float32Array ? image.data : Float32Array.from(image.data), [
          image.height,
          image.width,
          image.channels ?? 3,
        ]);
  const c = t.shape[2];
  const rgb = c === 3 ? t : c === 4 ? tf.slice(t, [0, 0, 0], [-1, -1, 3]) : tf.tile(t, [1, 1, 3]);
  return (rgb.dtype === 'float32' ? rgb : tf.cast(rgb, 'float32')) as tf.Tensor3D;
}

// ---------------------------------------------------------------------------------------------------------------
// In-memory sources

/**
 * Options for {@link fromTensors}.
 * @category Step 2: Pipeline
 */
export interface FromTensorsArgs {
  /**
   * Class names. Default: inferred — the sorted distinct names for string labels, the column count for one-hot
   * labels, otherwise `"0"`..`"<max label>"`.
   */
  classes?: readonly string[];
  /**
   * Augmentation used by `batches({ augment: true })`.
   * @defaultValue the {@link AugmentArgs} defaults
   */
  augment?: AugmentArgs;
  /**
   * How images are fitted when `batches()` is given a different `size`.
   * @defaultValue `'squash'`
   */
  fit?: ResizeFit;
  /**
   * Names the dataset in messages.
   * @defaultValue `"tensors"`
   */
  name?: string;
}

/**
 * A dataset over images already in memory. `xs` (raw 0..255 pixels, `[n, h, w, 3]`) is read, never copied or
 * disposed: keep it alive while the dataset is used, and dispose it yourself afterwards. Labels may be class
 * indices, class names, or one-hot rows (read once, not kept).
 *
 * @example
 * ```ts
 * const ds = fromTensors(xs, ['cat', 'dog', 'dog'], { classes: ['cat', 'dog'] });
 * for await (const b of ds.batches({ batchSize: 2, shuffle: true, seed: 1 })) { ...; tf.dispose([b.xs, b.ys]); }
 * ```
 * @category Step 2: Pipeline
 */
export function fromTensors(xs: tf.Tensor4D, ys: Labels, options: FromTensorsArgs = {}): Dataset {
  const name = options.name ?? 'tensors';
  check(
    xs instanceof tf.Tensor && xs.rank === 4 && [1, 3, 4].includes(xs.shape[3]),
    `fromTensors: xs must be a [n, height, width, 3] tensor of raw pixels, got ${
      xs instanceof tf.Tensor ? `shape [${(xs as tf.Tensor).shape.join(', ')}]` : typeof xs
    }.`,
  );
  const [n, height, width, channels] = xs.shape;
  check(n > 0, 'fromTensors: xs holds no images (its first dimension is 0); pass at least one image.');
  const { indices, classes } = toClassIndices(ys, { classes: options.classes, expectedLength: n, what: 'fromTensors(ys)' });
  const classNames = classes ?? inferNumericClasses(ys, indices);
  check(
    classNames.length >= Math.max(...indices) + 1,
    `fromTensors: labels go up to ${Math.max(...indices)} but only ${classNames.length} classes were given.`,
  );
  return createDataset({
    name,
    classes: classNames,
    labels: indices,
    imageSize: [height, width],
    augment: options.augment,
    fit: options.fit,
    concurrency: 64,
    prefetch: 0,
    info: Array.from({ length: n }, () => ({ width, height, format: 'tensor' })),
    load: async (i) => {
      check(!xs.isDisposed, `fromTensors: xs was disposed while the dataset "${name}" was still in use; keep it alive.`);
      return tf.tidy(() => tf.reshape(takeRows(xs, i, 1), [height, width, channels]) as tf.Tensor3D);
    },
  });
}

function inferNumericClasses(ys: Labels, indices: Int32Array): string[] {
  const count = ys instanceof tf.Tensor && ys.rank === 2 ? (ys.shape[1] as number) : Math.max(-1, ...indices) + 1;
  return Array.from({ length: count }, (_, i) => String(i));
}

/**
 * Image sources the browser can decode, plus in-memory pixels and tensors (which work everywhere).
 * @category Step 2: Pipeline
 */
export type ImageInput =
  | tf.Tensor3D
  | tf.PixelData
  | ImageDataLike
  | DrawableImage
  | Blob
  | string;

/**
 * One labelled image for {@link fromImages}.
 * @category Step 2: Pipeline
 */
export interface LabelledImage {
  /**
   * The image: an element, canvas, `ImageBitmap`, `ImageData`, `{ data, width, height }` pixels, a `[h, w, 3]`
   * tensor (not disposed by the dataset), a `File`/`Blob`, or a URL string (fetched with `env.fetch`).
   */
  image: ImageInput;
  /** Class name (matched against `classes`) or class index. */
  label: string | number;
  /**
   * Names the image in reports.
   * @defaultValue the URL, the file name, or `"images[i]"`
   */
  source?: string;
  /**
   * A stable identity of the image's content (e.g. a SHA-256 of its bytes), so a persistent activation cache
   * (`fit({ cache })`) can recognise it across calls and page reloads. Used only when every image has one.
   * Default: none.
   */
  key?: string;
}

/**
 * Options for {@link fromImages}.
 * @category Step 2: Pipeline
 */
export interface FromImagesArgs {
  /**
   * Class names.
   * @defaultValue the sorted distinct names (string labels) or `"0"`..`"<max>"` (numeric labels)
   */
  classes?: readonly string[];
  /**
   * Augmentation used by `batches({ augment: true })`.
   * @defaultValue the {@link AugmentArgs} defaults
   */
  augment?: AugmentArgs;
  /**
   * How images are fitted to `size`.
   * @defaultValue `'squash'`
   */
  fit?: ResizeFit;
  /**
   * Images decoded at the same time.
   * @defaultValue 4
   */
  concurrency?: number;
  /**
   * Batches decoded ahead.
   * @defaultValue 2
   */
  prefetch?: number;
  /**
   * Make an image that fails to decode an error instead of skipping it.
   * @defaultValue `false`
   */
  strict?: boolean;
  /**
   * Called for each image skipped while producing batches.
   * @defaultValue none (a log line is printed)
   */
  onSkip?: (skipped: SkippedImage) => void;
  /**
   * Names the dataset in messages.
   * @defaultValue `"images"`
   */
  name?: string;
}

/**
 * A dataset over a list of labelled images from any browser source (or in-memory pixels and tensors, which also
 * work in Node). Images are decoded lazily, batch by batch, with `tf.browser.fromPixels` and (for `Blob`s and URLs)
 * `createImageBitmap` with EXIF orientation applied; nothing is decoded up front.
 *
 * @example
 * ```ts
 * const ds = fromImages([
 *   { image: document.querySelector('#cat1') as HTMLImageElement, label: 'cat' },
 *   { image: fileInput.files[0], label: 'dog' },
 *   { image: 'https://example.com/dog2.jpg', label: 'dog' },
 * ]);
 * for await (const b of ds.batches({ size: [224, 224] })) { ... }
 * ```
 * @category Step 2: Pipeline
 */
export function fromImages(images: readonly LabelledImage[], options: FromImagesArgs = {}): Dataset {
  const name = options.name ?? 'images';
  check(Array.isArray(images) && images.length > 0, `fromImages: pass a non-empty array of { image, label }.`);
  images.forEach((item, i) =>
    check(
      item != null && item.image != null && (typeof item.label === 'string' || typeof item.label === 'number'),
      `fromImages: item ${i} must be { image, label } with a string or number label.`,
    ),
  );
  const rawLabels = images.map((item) => item.label);
  const allStrings = rawLabels.every((l) => typeof l === 'string');
  check(
    allStrings || rawLabels.every((l) => typeof l === 'number'),
    'fromImages: labels must be all class names or all class indices, not a mix.',
  );
  const { indices, classes } = toClassIndices(rawLabels as string[] | number[], {
    classes: options.classes,
    what: 'fromImages labels',
  });
  const classNames = classes ?? inferNumericClasses(rawLabels as number[], indices);
  const sources = images.map((item, i) => item.source ?? describeImage(item.image, `${name}[${i}]`));
  const keys = images.every((item) => typeof item.key === 'string' && item.key.length > 0) ? images.map((item) => item.key as string) : undefined;
  return createDataset({
    name,
    classes: classNames,
    labels: indices,
    sources,
    keys,
    augment: options.augment,
    fit: options.fit,
    concurrency: options.concurrency,
    prefetch: options.prefetch,
    strict: options.strict,
    onSkip: options.onSkip,
    load: (i, request) => decodeImageInput((images[i] as LabelledImage).image, request.signal),
  });
}

function describeImage(image: ImageInput, fallback: string): string {
  if (typeof image === 'string') return image;
  if (typeof File !== 'undefined' && image instanceof File) return image.name;
  return fallback;
}

/**
 * Decodes any {@link ImageInput} into a `[h, w, 3]` int32 tensor (a tensor input is cloned). Browser-safe.
 * @internal
 */
export async function decodeImageInput(image: ImageInput, signal?: AbortSignal): Promise<tf.Tensor3D> {
  if (image instanceof tf.Tensor) {
    check(!image.isDisposed, 'fromImages: an image tensor was disposed before it was loaded; keep it alive.');
    return tf.clone(image);
  }
  if (typeof image === 'string' && isLocalPath(image) && !/^(data|blob):/i.test(image)) {
    // A local path (or file:// URL): decoded by the platform (Node: sharp), never fetched.
    const decodeFile = env.fileSystem?.decodeImageFile;
    if (!decodeFile) {
      throw new TransferError('NODE_ONLY', `cannot read the image file "${image}": local paths need file access; in Node import from 'tfjs-transfer/node'.`);
    }
    throwIfAborted(signal, 'Decoding');
    return decodeFile(image);
  }
  if (typeof image === 'string') {
    const fetchFn = env.fetch;
    if (!fetchFn) {
      throw new TransferError('NOT_SUPPORTED', `cannot fetch ${image}: no fetch available; set env.fetch.`);
    }
    let response: Response;
    try {
      response = await fetchFn(image, { signal });
    } catch (error) {
      throw new TransferError('NETWORK', `could not fetch ${image}: ${String(error)}`, { cause: error });
    }
    if (!response.ok) throw new TransferError('NETWORK', `fetching ${image} failed with HTTP ${response.status}`);
    return decodeBlob(await response.blob(), image);
  }
  if (typeof Blob !== 'undefined' && image instanceof Blob) return decodeBlob(image, 'a Blob');
  const pixels = checkPixelData(image);
  try {
    return tf.browser.fromPixels(pixels as Parameters<typeof tf.browser.fromPixels>[0], 3);
  } catch (error) {
    // reliability: tfjs' own error for a value that is no image at all
    throw new TransferError(
      'INVALID_ARGUMENT',
      `not an image: ${Object.prototype.toString.call(image)}. Expected a Tensor3D of RGB pixels, an image, video or canvas element, ` +
        `ImageData, an ImageBitmap, { data, width, height } pixels, a Blob or a URL.`,
      { cause: error },
    );
  }
}

/**
 * Checks `{ data, width, height }` pixels (and `ImageData`) before tfjs reads them: positive integer sizes and
 * exactly `width * height * 4` bytes (RGBA), since `fromPixels` reads past a short buffer as garbage. A
 * `Uint8ClampedArray` outside a real `ImageData` (e.g. in Node) is viewed as a `Uint8Array`, which tfjs expects.
 * Anything else is returned as is.
 */
function checkPixelData(image: ImageInput): ImageInput {
  if (typeof image !== 'object' || image === null || !('data' in image) || !('width' in image) || !('height' in image)) return image;
  const { data, width, height } = image as { data: unknown; width: unknown; height: unknown };
  const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!isSize(width) || !isSize(height)) {
    throw new TransferError('INVALID_ARGUMENT', `pixels: width and height must be positive integers, got ${String(width)} x ${String(height)}.`);
  }
  if (!(data instanceof Uint8Array) && !(data instanceof Uint8ClampedArray)) {
    throw new TransferError(
      'INVALID_ARGUMENT',
      `pixels: data must be a Uint8Array or Uint8ClampedArray of RGBA bytes, got ${Object.prototype.toString.call(data)}; ` +
        'for other values use tf.tensor3d(values, [height, width, 3]).',
    );
  }
  const expected = width * height * 4;
  if (data.length !== expected) {
    const rgb = data.length === width * height * 3 ? ' These look like RGB bytes (3 a pixel): pass tf.tensor3d(data, [height, width, 3]) instead.' : '';
    throw new TransferError(
      'INVALID_ARGUMENT',
      `pixels: a ${width}x${height} image needs ${expected} bytes (RGBA, 4 a pixel), got ${data.length}.${rgb}`,
    );
  }
  const isImageData = typeof ImageData !== 'undefined' && image instanceof ImageData;
  if (data instanceof Uint8ClampedArray && !isImageData) {
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height };
  }
  return image;
}

async function decodeBlob(blob: Blob, what: string): Promise<tf.Tensor3D> {
  if (typeof createImageBitmap !== 'function') {
    throw new TransferError(
      'NOT_SUPPORTED',
      `cannot decode ${what}: createImageBitmap is not available here (in Node, use imageFolder from ` +
        `'tfjs-transfer/node', or decodeImage from it and pass the pixels).`,
    );
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch (error) {
    throw new TransferError('IMAGE_DECODE_FAILED', `${what} is not a decodable image (${String(error)})`, {
      cause: error,
    });
  }
  try {
    return tf.browser.fromPixels(bitmap, 3);
  } finally {
    bitmap.close();
  }
}
