/**
 * Resizing images (tensors) to a backbone's input size.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../errors';
import type { ImageSize, ResizeFit } from '../types';

export type { ResizeFit } from '../types';

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

/** A rectangle in pixels. @internal */
export interface PixelBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/**
 * Where an image of `inSize` goes when {@link resizeImages} fits it to `outSize`: the window of the image it keeps
 * (`crop`: all of it unless centre-cropping) and the box of the output that window fills (`box`: all of it unless
 * padding). The one place the geometry of the three fits is computed (explain maps heatmaps back with it). @internal
 */
export function fitPlacement(inSize: ImageSize, outSize: ImageSize, fit: ResizeFit): { crop: PixelBox; box: PixelBox } {
  const [inH, inW] = inSize;
  const [outH, outW] = outSize;
  const crop = { top: 0, left: 0, height: inH, width: inW };
  const box = { top: 0, left: 0, height: outH, width: outW };
  if (fit === 'centerCrop') {
    // Largest centred window with the target's aspect ratio.
    const scale = Math.min(inH / outH, inW / outW);
    crop.height = Math.min(inH, Math.max(1, Math.round(outH * scale)));
    crop.width = Math.min(inW, Math.max(1, Math.round(outW * scale)));
    crop.top = Math.floor((inH - crop.height) / 2);
    crop.left = Math.floor((inW - crop.width) / 2);
  } else if (fit === 'pad') {
    const scale = Math.min(outH / inH, outW / inW);
    box.height = Math.min(outH, Math.max(1, Math.round(inH * scale)));
    box.width = Math.min(outW, Math.max(1, Math.round(inW * scale)));
    box.top = Math.floor((outH - box.height) / 2);
    box.left = Math.floor((outW - box.width) / 2);
  }
  return { crop, box };
}

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
    const { crop, box } = fitPlacement([inH, inW], [outH, outW], fit);
    if (crop.height !== inH || crop.width !== inW) x = tf.slice(x, [0, crop.top, crop.left, 0], [-1, crop.height, crop.width, -1]);
    x = resizeBilinearAntialiased(x, box.height, box.width, antialias);
    if (box.height !== outH || box.width !== outW) {
      x = tf.pad(x, [
        [0, 0],
        [box.top, outH - box.height - box.top],
        [box.left, outW - box.width - box.left],
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
