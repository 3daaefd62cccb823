/**
 * Resizing images (tensors) to a backbone's input size.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../errors';
import type { ImageSize } from '../types';

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
 * Options for {@link resizeImages}.
 * @category Step 2: Pipeline
 */
export interface ResizeArgs {
  /**
   * How to handle a different aspect ratio.
   * @defaultValue `'squash'`
   */
  fit?: ResizeFit;
  /**
   * Antialias when shrinking by more than 2x: a box (average) pre-shrink by the integer part of the factor, then
   * bilinear. Without it, bilinear resampling of a large photo aliases (skips pixels). Default `true`.
   */
  antialias?: boolean;
}

/** The valid `fit` values, for argument checks. @internal */
export const RESIZE_FITS: readonly ResizeFit[] = ['squash', 'centerCrop', 'pad'];

/**
 * Resizes images to `size` (`[height, width]`) with bilinear interpolation, antialiased when shrinking by more
 * than 2x. Pixel values are kept as they are (no preprocessing); the result is float32. The input is not disposed.
 *
 * @param images One image `[h, w, c]` or a batch `[n, h, w, c]`.
 * @param size Target `[height, width]`.
 * @returns The resized image(s), same rank as `images`, float32.
 *
 * @example
 * ```ts
 * const photo = tf.browser.fromPixels(img);               // [480, 640, 3]
 * const x = resizeImages(photo, [224, 224], { fit: 'centerCrop' }); // [224, 224, 3]
 * ```
 * @category Step 2: Pipeline
 */
export function resizeImages<T extends tf.Tensor3D | tf.Tensor4D>(images: T, size: ImageSize, options: ResizeArgs = {}): T {
  const fit = options.fit ?? 'squash';
  check(
    RESIZE_FITS.includes(fit),
    `resizeImages: fit must be one of ${RESIZE_FITS.map((f) => `'${f}'`).join(', ')}, got '${String(fit)}'.`,
  );
  check(
    images instanceof tf.Tensor && (images.rank === 3 || images.rank === 4),
    `resizeImages: expected a [height, width, channels] or [n, height, width, channels] tensor, got ` +
      `${images instanceof tf.Tensor ? `shape [${images.shape.join(', ')}]` : typeof images}.`,
  );
  check(Array.isArray(size) && size.length === 2, `resizeImages: size must be [height, width], got ${JSON.stringify(size)}.`); // reliability
  const [outH, outW] = size;
  check(
    Number.isInteger(outH) && Number.isInteger(outW) && outH > 0 && outW > 0,
    `resizeImages: size must be two positive integers [height, width], got [${size.join(', ')}].`,
  );
  const antialias = options.antialias ?? true;
  return tf.tidy(() => {
    const batch = (images.rank === 3 ? tf.expandDims(images, 0) : images) as tf.Tensor4D;
    const [, inH, inW] = batch.shape;
    check(inH > 0 && inW > 0, `resizeImages: the image is empty (shape [${images.shape.join(', ')}]).`);
    let x = batch.dtype === 'float32' ? batch : tf.cast(batch, 'float32');
    let targetH = outH;
    let targetW = outW;
    let padTop = 0;
    let padLeft = 0;
    if (fit === 'centerCrop') {
      // Largest centred window with the target's aspect ratio.
      const scale = Math.min(inH / outH, inW / outW);
      const cropH = Math.min(inH, Math.max(1, Math.round(outH * scale)));
      const cropW = Math.min(inW, Math.max(1, Math.round(outW * scale)));
      const top = Math.floor((inH - cropH) / 2);
      const left = Math.floor((inW - cropW) / 2);
      if (cropH !== inH || cropW !== inW) x = tf.slice(x, [0, top, left, 0], [-1, cropH, cropW, -1]);
    } else if (fit === 'pad') {
      const scale = Math.min(outH / inH, outW / inW);
      targetH = Math.min(outH, Math.max(1, Math.round(inH * scale)));
      targetW = Math.min(outW, Math.max(1, Math.round(inW * scale)));
      padTop = Math.floor((outH - targetH) / 2);
      padLeft = Math.floor((outW - targetW) / 2);
    }
    x = resizeBilinearAntialiased(x, targetH, targetW, antialias);
    if (fit === 'pad' && (targetH !== outH || targetW !== outW)) {
      x = tf.pad(x, [
        [0, 0],
        [padTop, outH - targetH - padTop],
        [padLeft, outW - targetW - padLeft],
        [0, 0],
      ]);
    }
    const out = images.rank === 3 ? tf.squeeze(x, [0]) : x;
    // reliability: never hand back the input itself (same size, float32): disposing the result disposed the input.
    return (out === images ? tf.clone(out) : out) as T;
  });
}

/** Bilinear resize with an integer box pre-shrink when the factor exceeds 2 (call inside a tidy). */
function resizeBilinearAntialiased(x: tf.Tensor4D, outH: number, outW: number, antialias: boolean): tf.Tensor4D {
  const [, inH, inW] = x.shape;
  if (inH === outH && inW === outW) return x;
  if (antialias) {
    const kh = Math.max(1, Math.floor(inH / outH / 1));
    const kw = Math.max(1, Math.floor(inW / outW / 1));
    // Pre-shrink only when a factor exceeds 2; keep at least the target size so bilinear finishes the job.
    const fh = inH / outH > 2 ? kh : 1;
    const fw = inW / outW > 2 ? kw : 1;
    if (fh > 1 || fw > 1) x = tf.avgPool(x, [fh, fw], [fh, fw], 'valid');
  }
  const [, h, w] = x.shape;
  if (h === outH && w === outW) return x;
  return tf.image.resizeBilinear(x, [outH, outW], false, true);
}
