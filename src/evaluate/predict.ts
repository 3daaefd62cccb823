/**
 * `predict`: what the model says about new images.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { decodeImageInput, type ImageInput } from '../data/dataset';
import { resizeImages } from '../data/resize';
import { TransferError, check, throwIfAborted } from '../errors';
import { TransferModel, classProbabilityColumns } from '../transfer-model';
import { withDefaults } from '../util/args';
import { takeRows } from '../util/rows';
import { poolForDetector } from '../train/detector-features';

/** One image's prediction. @category Step 5: Evaluate */
export interface Prediction {
  /** The most likely class. */
  label: string;
  /** Its index in the model's classes. */
  index: number;
  /** Its probability. */
  probability: number;
  /** Every class's probability, by name. */
  probabilities: Record<string, number>;
  /**
   * `true` when the image looks like none of the classes (its `familiarity` is below the threshold of the
   * model's unknown detector); `label` is then only the closest class. Present when the model has an unknown
   * detector (`model.unknownDetector`; `fit` and `transferLearn` fit one), absent otherwise.
   */
  unknown?: boolean;
  /**
   * How much the image looks like the training images of the classes, in the detector's standardised units (0 is
   * the held-out images' mean, higher is more familiar); `unknown` when below `model.unknownDetector.threshold`.
   * Present with `unknown`.
   */
  familiarity?: number;
}

/**
 * Test-time augmentation of {@link predict} and {@link evaluate}: `'none'` (each image as it is), or `'flip'`
 * (the mean of the probabilities of the image and of its mirror image, left to right: two backbone passes per
 * image). Measured with MobileNetV2 1.0 on both tasks (docs/accuracy.md, "Flip at prediction time"): `'flip'` moves
 * accuracy by a few tenths of a point, mostly up (+0.1 to +0.5 on most sets, -0.6 on one), for twice the prediction
 * time, so it is not the default.
 * @category Step 5: Evaluate
 */
export type TestTimeAugmentation = 'none' | 'flip';

/** The values {@link TestTimeAugmentation} takes, for checking. @internal */
export const TEST_TIME_AUGMENTATIONS: readonly TestTimeAugmentation[] = Object.freeze(['none', 'flip']);

/** Defaults of {@link predict}. @category Step 5: Evaluate */
export const PREDICT_DEFAULTS = Object.freeze({
  /** Images per forward pass. */
  batchSize: 32,
  /** Test-time augmentation. */
  tta: 'none' as TestTimeAugmentation,
});

/** Refuses a `tta` that is not a {@link TestTimeAugmentation}. @internal */
export function checkTta(tta: unknown, where: string): asserts tta is TestTimeAugmentation {
  check(
    TEST_TIME_AUGMENTATIONS.includes(tta as TestTimeAugmentation),
    `${where}: tta must be ${TEST_TIME_AUGMENTATIONS.map((t) => `'${t}'`).join(' or ')}, got ${JSON.stringify(tta)}.`,
  );
}

/** Options of {@link predict}. An option given as `undefined` or `null` takes its default. @category Step 5: Evaluate */
export interface PredictArgs {
  /** Images per forward pass. @defaultValue {@link PREDICT_DEFAULTS}.batchSize (32) */
  batchSize?: number;
  /** Stops before the next image is decoded or the forward pass starts; `predict` then rejects with an `AbortError`. @defaultValue none */
  signal?: AbortSignal;
  /**
   * Test-time augmentation: `'flip'` averages the probabilities of each image and its mirror image (twice the
   * time). `unknown` and `familiarity` still come from the image as it is (the detector's threshold was chosen on
   * single views).
   * @defaultValue {@link PREDICT_DEFAULTS}.tta (`'none'`)
   */
  tta?: TestTimeAugmentation;
}

/** What {@link predict} accepts: a tensor of raw pixels (`[h, w, 3]` or `[n, h, w, 3]`), or images (in Node also local file paths). @category Step 5: Evaluate */
export type PredictInput = tf.Tensor3D | tf.Tensor4D | ImageInput | readonly ImageInput[];

/**
 * Predicts the class of each image. Takes raw RGB pixels `[n, h, w, 3]` or one image `[h, w, 3]` of any size, or
 * images as the browser has them (`HTMLImageElement`, canvas, video frame, `ImageBitmap`, `ImageData`, `Blob`,
 * a URL; in Node, with `tfjs-transfer/node`, a local file path), or a list of those. Images are resized to the model's input the way its training images were (`model.resizeFit`). Tensors passed
 * in are not disposed.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const [p] = await predict(model, document.querySelector('img')!);
 * console.log(p.label, p.probability, p.probabilities);
 * if (p.unknown) console.log('none of my classes (closest:', p.label, ')');
 * const many = await predict(model, batchTensor); // one Prediction per image
 * const averaged = await predict(model, batchTensor, { tta: 'flip' }); // each image and its mirror image, averaged
 * ```
 */
export async function predict(model: TransferModel, images: PredictInput, args: PredictArgs = {}): Promise<Prediction[]> {
  check(model instanceof TransferModel, `predict: expected a TransferModel, got ${Object.prototype.toString.call(model)}.`);
  check(images != null, 'predict: images are required: a tf.Tensor of raw RGB pixels, an image element, a Blob, a URL, or a list of them.');
  check(args == null || typeof args === 'object', 'predict: options must be an object such as { batchSize: 32 }.');
  const options = withDefaults(args, PREDICT_DEFAULTS);
  check(Number.isInteger(options.batchSize) && options.batchSize > 0, `predict: batchSize must be a positive integer, got ${JSON.stringify(options.batchSize)}.`);
  check(options.signal === undefined || typeof options.signal?.aborted === 'boolean', 'predict: signal must be an AbortSignal.');
  checkTta(options.tta, 'predict');
  throwIfAborted(options.signal, 'predict');
  model.assertUsable('predict');
  const { batch } = await toModelBatch(model, images, options.signal, 'predict');
  let p: tf.Tensor2D | undefined;
  let vectors: tf.Tensor2D | undefined;
  try {
    throwIfAborted(options.signal, 'predict');
    if (model.detector) [p, vectors] = probabilitiesAndVectors(model, batch, options.batchSize);
    else p = model.predictProbabilities(batch, { batchSize: options.batchSize });
    if (options.tta === 'flip') p = averagedWithMirror(model, batch, p, options.batchSize, options.signal);
    const values = await p.data();
    const familiarity = vectors && model.detector ? model.detector.score((await vectors.data()) as Float32Array, batch.shape[0]) : undefined;
    const threshold = model.detector?.record.threshold ?? 0;
    return Array.from({ length: batch.shape[0] }, (_, i) => {
      const prediction = predictionOf(values, i, model.classes);
      if (familiarity) Object.assign(prediction, { unknown: familiarity[i]! < threshold, familiarity: familiarity[i]! });
      return prediction;
    });
  } finally {
    batch.dispose();
    p?.dispose();
    vectors?.dispose();
  }
}

/** The mean of `p` (the probabilities of `batch`, disposed here) and those of `batch` mirrored left to right. */
function averagedWithMirror(model: TransferModel, batch: tf.Tensor4D, p: tf.Tensor2D, batchSize: number, signal: AbortSignal | undefined): tf.Tensor2D {
  try {
    throwIfAborted(signal, 'predict');
    const mirrored = tf.reverse(batch, 2);
    try {
      const q = model.predictProbabilities(mirrored, { batchSize });
      try {
        return tf.tidy(() => tf.mul(tf.add(p, q), 0.5));
      } finally {
        q.dispose();
      }
    } finally {
      mirrored.dispose();
    }
  } finally {
    p.dispose();
  }
}

/** Probabilities `[n, k]` and the unknown detector's feature vectors `[n, d]`, from one backbone pass per batch. */
function probabilitiesAndVectors(model: TransferModel, images: tf.Tensor4D, batchSize: number): [tf.Tensor2D, tf.Tensor2D] {
  model.backbone.checkImages(images, 'predict');
  const probs: tf.Tensor2D[] = [];
  const vectors: tf.Tensor2D[] = [];
  try {
    for (let s = 0; s < images.shape[0]; s += batchSize) {
      const size = Math.min(batchSize, images.shape[0] - s);
      tf.tidy(() => {
        const features = model.backbone.extract(takeRows(images, s, size), { batchSize });
        const p = model.head.predict(features) as tf.Tensor2D;
        probs.push(tf.keep(classProbabilityColumns(p, model.numClasses)));
        vectors.push(tf.keep(poolForDetector(features, model.headSpec.pooling)));
      });
    }
    return [tf.concat(probs, 0), tf.concat(vectors, 0)];
  } finally {
    tf.dispose([...probs, ...vectors]);
  }
}

/** Row `i` of probabilities `[n, k]` (row-major) as a {@link Prediction} (the first largest wins). @internal */
export function predictionOf(values: ArrayLike<number>, i: number, classes: readonly string[]): Prediction {
  const k = classes.length;
  let best = 0;
  const probabilities: Record<string, number> = {};
  for (let c = 0; c < k; c++) {
    probabilities[classes[c]!] = values[i * k + c]!;
    if (values[i * k + c]! > values[i * k + best]!) best = c;
  }
  return { label: classes[best]!, index: best, probability: values[i * k + best]!, probabilities };
}

/** A batch at the model's input size, and each image's size before resizing. @internal */
export interface ModelBatch {
  /** Raw pixels `[n, h, w, 3]` at the model's input size, float32; the caller disposes it. */
  batch: tf.Tensor4D;
  /** Each image's `[height, width]` as given (before resizing). */
  sizes: [number, number][];
}

/**
 * Turns what {@link predict} accepts into one float32 batch at the model's input size (squashed, as in training),
 * checking tensors' shapes and pixel values, and decoding images. Shared by `predict` and `explain`; `where` names
 * the caller in errors. Tensors passed in are not disposed. @internal
 */
export async function toModelBatch(model: TransferModel, images: PredictInput, signal: AbortSignal | undefined, where: string): Promise<ModelBatch> {
  const [h, w] = model.inputShape;
  if (images instanceof tf.Tensor) {
    checkTensorShape(images, where);
    await checkPixelValues(images, where);
    const b4 = images.rank === 4;
    const size: [number, number] = [images.shape[b4 ? 1 : 0]!, images.shape[b4 ? 2 : 1]!];
    const batch = tf.tidy(() => {
      const b = (images.rank === 3 ? tf.expandDims(images, 0) : images) as tf.Tensor4D;
      return b.shape[1] === h && b.shape[2] === w ? tf.cast(b, 'float32') : resizeImages(tf.cast(b, 'float32'), [h, w], { fit: model.resizeFit });
    });
    return { batch, sizes: Array.from({ length: batch.shape[0] }, () => [size[0], size[1]]) };
  }
  const list = (Array.isArray(images) ? images : [images]) as ImageInput[];
  check(list.length > 0, `${where}: the list of images is empty.`);
  const decoded: tf.Tensor3D[] = [];
  try {
    for (const image of list) {
      throwIfAborted(signal, where);
      if (image instanceof tf.Tensor) {
        checkTensorShape(image, where);
        await checkPixelValues(image, where);
      }
      decoded.push(await decodeImageInput(image, signal));
    }
    const batch = tf.tidy(() => tf.stack(decoded.map((d) => resizeImages(d, [h, w], { fit: model.resizeFit }))) as tf.Tensor4D);
    return { batch, sizes: decoded.map((d) => [d.shape[0], d.shape[1]]) };
  } finally {
    tf.dispose(decoded);
  }
}

/** Refuses a tensor that is not `[h, w, 3]` / `[n, h, w, 3]`, saying how to fix the channel count it has. */
function checkTensorShape(images: tf.Tensor, where: string): void {
  const shape = `[${images.shape.join(', ')}]`;
  if (images.rank !== 3 && images.rank !== 4) {
    throw new TransferError('SHAPE_MISMATCH', `${where}: images must be RGB [h, w, 3] or [n, h, w, 3], got ${shape} (rank ${images.rank}).`);
  }
  const channels = images.shape[images.rank - 1];
  if (channels === 3) return;
  const all = images.rank === 3 ? '[-1, -1, 3]' : '[-1, -1, -1, 3]';
  const start = images.rank === 3 ? '[0, 0, 0]' : '[0, 0, 0, 0]';
  const tile = images.rank === 3 ? '[1, 1, 3]' : '[1, 1, 1, 3]';
  const fix =
    channels === 1
      ? `This is a grayscale image: repeat its channel to RGB with tf.image.grayscaleToRGB(images) or tf.tile(images, ${tile}).`
      : channels === 4
        ? `Drop the alpha channel with images.slice(${start}, ${all}).`
        : `Pass 3 channels (red, green, blue) as the last dimension.`;
  throw new TransferError('SHAPE_MISMATCH', `${where}: images must be RGB [h, w, 3] or [n, h, w, 3], got ${shape} (${channels} channels). ${fix}`);
}

/**
 * Refuses NaN, infinite and out-of-range pixels (the model takes raw 0..255 values and does its own
 * preprocessing), which would otherwise predict silently: one reduction to three numbers, read once.
 */
async function checkPixelValues(images: tf.Tensor, where: string): Promise<void> {
  if (images.size === 0) return;
  const stats = tf.tidy(() => {
    const x = tf.cast(images, 'float32');
    return tf.stack([tf.sum(x), tf.min(x), tf.max(x)]);
  });
  const [sum, min, max] = await stats.data();
  stats.dispose();
  if (!Number.isFinite(sum!) || !Number.isFinite(min!) || !Number.isFinite(max!)) {
    throw new TransferError(
      'INVALID_ARGUMENT',
      `${where}: images contain NaN or infinite values; pass raw RGB pixels, finite numbers in 0..255 (check how the tensor was made).`,
    );
  }
  if (min! < -0.5 || max! > 255.5) {
    throw new TransferError(
      'INVALID_ARGUMENT',
      `${where}: pixel values must be raw RGB in 0..255, got values from ${min} to ${max}. Pass the pixels as decoded ` +
        '(do not normalise them: the model applies its own preprocessing); clip them with tf.clipByValue(images, 0, 255) if they only overshoot.',
    );
  }
}
