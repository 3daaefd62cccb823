/**
 * Types shared by every step of the workflow. Each step's own options live beside its function
 * (`LoadBackboneArgs` in `backbone/`, `FitArgs` in `train/`, ...); only what crosses steps is here.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';

/**
 * How raw RGB pixels (0..255) are mapped to what a backbone expects: `y = x * scale + offset`, with
 * `scale` and `offset` either one number or one number per channel (R, G, B).
 *
 * MobileNetV2 (and every Keras `mobilenet_v2.preprocess_input` model) uses `{ scale: 1 / 127.5, offset: -1 }`,
 * i.e. pixels in [-1, 1]. A model that takes pixels in [0, 1] uses `{ scale: 1 / 255, offset: 0 }`; ImageNet
 * mean/std normalisation is `{ scale: [1/(255*0.229), 1/(255*0.224), 1/(255*0.225)], offset: [-0.485/0.229, ...] }`.
 * The identity is `{ scale: 1, offset: 0 }`.
 *
 * Preprocessing is stored with a saved model, so a saved model always takes raw pixels.
 * @category Step 3: Compose
 */
export interface Preprocessing {
  /** Multiplier applied to raw 0..255 pixels; one number, or three (R, G, B). */
  scale: number | readonly [number, number, number];
  /** Added after scaling; one number, or three (R, G, B). */
  offset: number | readonly [number, number, number];
}

/**
 * How an image whose aspect ratio differs from the target is fitted:
 * - `'squash'`: stretch to the target size, ignoring the aspect ratio (Keras' default; what
 *   `image_dataset_from_directory` does).
 * - `'centerCrop'`: scale so the image covers the target, then cut the overflow equally on both sides (Keras
 *   `crop_to_aspect_ratio=True`).
 * - `'pad'`: scale so the whole image fits, then pad the rest equally on both sides with black (Keras
 *   `pad_to_aspect_ratio=True`).
 * @category Step 2: Pipeline
 */
export type ResizeFit = 'squash' | 'centerCrop' | 'pad';

/**
 * Spatial input size of a backbone: `[height, width]` in pixels.
 * @category Step 2: Pipeline
 */
export type ImageSize = readonly [height: number, width: number];

/**
 * Class labels for a set of images, in any of the forms users already have:
 * class indices (`number[]`, `Int32Array`, a 1-D tensor), class names (`string[]`, matched against the model's
 * classes), or a one-hot `[n, numClasses]` tensor.
 * @category Step 2: Pipeline
 */
export type Labels = ArrayLike<number> | readonly string[] | tf.Tensor1D | tf.Tensor2D;

/**
 * Images already in memory: `xs` holds raw RGB pixels in 0..255, shape `[n, height, width, 3]`, at the backbone's
 * input size (see `resizeImages` to get there); `ys` the label of each image.
 * @category Step 2: Pipeline
 */
export interface TensorData {
  /** Raw RGB pixels in 0..255, `[n, height, width, 3]`. */
  xs: tf.Tensor4D;
  /** One label per image. */
  ys: Labels;
}

/**
 * One batch produced by an {@link ImageDataset}. The consumer owns (and must dispose) `xs` and `ys`.
 * @category Step 2: Pipeline
 */
export interface ImageBatch {
  /** Raw RGB pixels in 0..255, `[n, height, width, 3]`, float32. */
  xs: tf.Tensor4D;
  /** Class index of each image, int32 `[n]`. */
  ys: tf.Tensor1D;
  /**
   * A stable identity for each image's *content* (e.g. a content hash), used as the key of feature caches.
   * Absent when the source cannot provide one; caching then falls back to the dataset's own order.
   */
  keys?: string[];
  /** Where each image came from (a file path, a URL, `"tensor[17]"`), for reports and error messages. */
  sources?: string[];
}

/**
 * Options for {@link ImageDataset.batches}.
 * @category Step 2: Pipeline
 */
export interface BatchOptions {
  /** Images per batch. Default 32. */
  batchSize?: number;
  /** Resize every image to this `[height, width]`. Default: the dataset's own size (required if images differ). */
  size?: ImageSize;
  /** Shuffle the order (seeded by `seed`). Default false. */
  shuffle?: boolean;
  /** Seed for shuffling and augmentation. Default 0 when `shuffle` or `augment` is used. */
  seed?: number;
  /** Apply the dataset's augmentation (training only). Default false. */
  augment?: boolean;
  /** Stop within one batch when aborted; the iterator then throws an `AbortError`. */
  signal?: AbortSignal;
}

/**
 * A labelled image collection that can be streamed in batches without holding every decoded image in memory.
 * Built by the pipeline (`imageFolder` in Node, `fromImages` / `fromTensors` anywhere) and accepted by `fit`,
 * `evaluate` and `transferLearn`.
 * @category Step 2: Pipeline
 */
export interface ImageDataset {
  /** Class names; label `i` means `classes[i]`. */
  readonly classes: readonly string[];
  /** Number of images. */
  readonly size: number;
  /** Class index of every image, in dataset order (cheap: no decoding). */
  readonly labels: readonly number[];
  /** Stream the images in batches. */
  batches(options?: BatchOptions): AsyncIterable<ImageBatch>;
}

/**
 * Anything `fit`, `evaluate` and `transferLearn` accept as labelled images.
 * @category Step 2: Pipeline
 */
export type LabelledData = TensorData | ImageDataset;

/**
 * Pixels shaped like the DOM's `ImageData` (RGBA bytes, row by row): an `ImageData` is one. Declared structurally so
 * that the published types compile without the DOM lib (a Node project).
 * @category Step 2: Pipeline
 */
export interface ImageDataLike {
  /** RGBA bytes, `width * height * 4` of them. */
  readonly data: Uint8ClampedArray | Uint8Array;
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
}

/**
 * An image the browser draws: an `HTMLImageElement`, `HTMLCanvasElement`, `HTMLVideoElement` or `ImageBitmap`
 * (what `tf.browser.fromPixels` reads). Declared structurally so that the published types compile without the DOM
 * lib; the DOM's types satisfy it.
 * @category Step 2: Pipeline
 */
export interface DrawableImage {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
}

/**
 * The part of the DOM's `IDBFactory` that {@link createIndexedDBCache} calls: `globalThis.indexedDB` is one, and
 * so is `fake-indexeddb`'s. Declared structurally so that the published types compile without the DOM lib.
 * @category Caches
 */
export interface IDBFactoryLike {
  /** Opens (or creates) a database; returns an `IDBOpenDBRequest`. */
  open(name: string, version?: number): unknown;
}

/**
 * What a long operation is doing, in {@link Progress}:
 * - `'download'`: fetching a model's files (units: bytes, or shards when the size is unknown);
 * - `'scan'`: listing and checking an image folder (units: files);
 * - `'decode'`: decoding and resizing images outside training (units: images);
 * - `'cache'`: images whose activations were found in a persistent cache (units: images);
 * - `'extract'`: running the frozen backbone over images (units: images);
 * - `'train'`: training epochs (units: epochs);
 * - `'evaluate'`: evaluating or predicting (units: images);
 * - `'save'`: writing a model (units: bytes).
 * @category Environment
 */
export type ProgressStage = 'download' | 'scan' | 'decode' | 'cache' | 'extract' | 'train' | 'evaluate' | 'save';

/**
 * One progress report: `done` of `total` units of `stage`. Every function that takes an `onProgress` reports in
 * this one shape, and `transferLearn` forwards the reports of every step it runs.
 * @category Environment
 */
export interface Progress {
  /** What is being done. */
  stage: ProgressStage;
  /** Units done so far (never more than `total`). */
  done: number;
  /** Units in all (may grow while a download learns its size). */
  total: number;
  /** The file, model or folder concerned, when there is one (a URL, a path). */
  file?: string;
}

/**
 * Called with the progress of a long operation; see {@link Progress}.
 * @category Environment
 */
export type ProgressCallback = (progress: Progress) => void;
