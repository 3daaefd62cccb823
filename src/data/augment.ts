/**
 * Seeded data augmentation on image tensors (raw 0..255 pixels), as Keras' preprocessing layers do it.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../errors';
import { Random } from '../util/random';

/**
 * Which random transformations to apply, and how strongly. Each image of a batch gets its own random draw. Set a
 * field to `false` or `0` to turn that transformation off. Geometric transformations fill uncovered pixels by
 * reflecting the image (Keras' default `fill_mode="reflect"`).
 * @category Step 2: Pipeline
 */
export interface AugmentArgs {
  /**
   * Random horizontal flip (half the images, like Keras `RandomFlip("horizontal")`).
   * @defaultValue `true`
   */
  flip?: boolean;
  /**
   * Maximum rotation as a fraction of a full turn (2π), like Keras `RandomRotation(factor)`: `0.1` rotates by a
   * random angle in [-36°, +36°]. Default `0.1`.
   */
  rotation?: number | false;
  /**
   * Maximum zoom as a fraction, like Keras `RandomZoom`: `0.1` samples an area between 0.9x and 1.1x the image's
   * size (zooming in and out), keeping the aspect ratio. Default `0.1`.
   */
  zoom?: number | false;
  /**
   * Maximum shift as a fraction of the height and width, like Keras `RandomTranslation(f, f)`: `0.1` moves the
   * image by up to 10% in each direction. Default `0.1`.
   */
  translation?: number | false;
  /**
   * Maximum brightness change as a fraction of the 0..255 range, like Keras `RandomBrightness(f)`: `0.1` adds
   * the same random value in [-25.5, 25.5] to every pixel of an image. Default `0.1`.
   */
  brightness?: number | false;
  /**
   * Maximum contrast change, like Keras `RandomContrast(f)`: each channel's deviation from its mean is scaled by
   * a random factor in [1 - f, 1 + f]. Default `0.1`.
   */
  contrast?: number | false;
}

/**
 * {@link AugmentArgs} with every default filled in.
 * @category Step 2: Pipeline
 */
export const DEFAULT_AUGMENT_ARGS: Readonly<Required<{ [K in keyof AugmentArgs]: Exclude<AugmentArgs[K], false> }>> = {
  flip: true,
  rotation: 0.1,
  zoom: 0.1,
  translation: 0.1,
  brightness: 0.1,
  contrast: 0.1,
};

interface ResolvedArgs {
  flip: boolean;
  rotation: number;
  zoom: number;
  translation: number;
  brightness: number;
  contrast: number;
}

/** Fills defaults and checks ranges. @internal */
export function resolveAugmentArgs(args: AugmentArgs = {}, what = 'augment'): ResolvedArgs {
  const num = (key: 'rotation' | 'zoom' | 'translation' | 'brightness' | 'contrast', max: number): number => {
    const v = args[key];
    if (v === false) return 0;
    const value = v ?? DEFAULT_AUGMENT_ARGS[key];
    check(
      typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= max,
      `${what}: ${key} must be a number in [0, ${max}] (or false), got ${String(v)}.`,
    );
    return value;
  };
  return {
    flip: args.flip ?? DEFAULT_AUGMENT_ARGS.flip,
    rotation: num('rotation', 1),
    zoom: num('zoom', 0.9),
    translation: num('translation', 1),
    brightness: num('brightness', 1),
    contrast: num('contrast', 1),
  };
}

/**
 * Applies seeded random augmentation to a batch of images with raw pixels in 0..255 (the result is clipped to
 * 0..255, float32). The same `seed` gives the same result on every backend and platform (up to float rounding).
 * The input is not disposed.
 *
 * @param images `[n, height, width, channels]`.
 * @param args Which transformations and how strong; see {@link AugmentArgs} for the defaults.
 * @param seed Seed (an integer). Default 0. (The library's own callers may pass its internal random generator.)
 *
 * @example
 * ```ts
 * const augmented = augmentImages(batch.xs, { rotation: 0.05, brightness: false }, 42);
 * ```
 * @category Step 2: Pipeline
 */
export function augmentImages(images: tf.Tensor4D, args: AugmentArgs = {}, seed: number | Random = 0): tf.Tensor4D {
  check(
    images instanceof tf.Tensor && images.rank === 4,
    `augmentImages: expected a [n, height, width, channels] tensor, got ${
      images instanceof tf.Tensor ? `shape [${(images as tf.Tensor).shape.join(', ')}]` : typeof images
    }.`,
  );
  const a = resolveAugmentArgs(args, 'augmentImages');
  const random = typeof seed === 'number' ? new Random(seed) : seed;
  const [n, height, width] = images.shape;
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;

  // Draw every random number up front, in a fixed order, so results do not depend on which ops run.
  const transforms = new Float32Array(n * 8);
  const deltas = new Float32Array(n);
  const factors = new Float32Array(n);
  let geometric = false;
  for (let i = 0; i < n; i++) {
    const flip = a.flip && random.next() < 0.5 ? -1 : 1;
    const theta = a.rotation > 0 ? random.uniform(-a.rotation, a.rotation) * 2 * Math.PI : 0;
    const scale = a.zoom > 0 ? 1 + random.uniform(-a.zoom, a.zoom) : 1;
    const dx = a.translation > 0 ? random.uniform(-a.translation, a.translation) * width : 0;
    const dy = a.translation > 0 ? random.uniform(-a.translation, a.translation) * height : 0;
    deltas[i] = a.brightness > 0 ? random.uniform(-a.brightness, a.brightness) * 255 : 0;
    factors[i] = a.contrast > 0 ? 1 + random.uniform(-a.contrast, a.contrast) : 1;
    // Output pixel p maps to input C + s R(θ) F (p - C) - d, the form tf.image.transform takes.
    const cos = Math.cos(theta);
    const sin = Math.sin(theta);
    const a00 = scale * cos * flip;
    const a01 = -scale * sin;
    const a10 = scale * sin * flip;
    const a11 = scale * cos;
    transforms.set([a00, a01, cx - a00 * cx - a01 * cy - dx, a10, a11, cy - a10 * cx - a11 * cy - dy, 0, 0], i * 8);
    if (flip !== 1 || theta !== 0 || scale !== 1 || dx !== 0 || dy !== 0) geometric = true;
  }

  return tf.tidy(() => {
    let x: tf.Tensor4D = images.dtype === 'float32' ? images : tf.cast(images, 'float32');
    if (geometric) {
      const matrices = tf.tensor2d(transforms, [n, 8]);
      if (tf.getBackend() === 'cpu' && n > 1) {
        // tfjs-backend-cpu 4.22's Transform kernel reads only the first image of a batch (the others come out
        // black), so transform one image at a time there.
        const images = tf.split(x, n, 0);
        const rows = tf.split(matrices, n, 0);
        x = tf.concat(images.map((img, i) => tf.image.transform(img as tf.Tensor4D, rows[i] as tf.Tensor2D, 'bilinear', 'reflect')), 0);
      } else {
        x = tf.image.transform(x, matrices, 'bilinear', 'reflect');
      }
    }
    if (a.contrast > 0) {
      const mean = tf.mean(x, [1, 2], true);
      x = tf.add(tf.mul(tf.sub(x, mean), tf.tensor4d(factors, [n, 1, 1, 1])), mean);
    }
    if (a.brightness > 0) x = tf.add(x, tf.tensor4d(deltas, [n, 1, 1, 1]));
    if (a.contrast > 0 || a.brightness > 0 || geometric) x = tf.clipByValue(x, 0, 255);
    return x === images ? tf.clone(x) : x;
  });
}
