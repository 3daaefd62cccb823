/**
 * `heatmapPng`: an image with a heatmap of `explain` blended over it, encoded as PNG with sharp (Node).
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { TransferError, check } from '../errors';
import { overlayHeatmap, type HeatmapData, type OverlayArgs } from '../evaluate/heatmap';
import type { ImageDataLike } from '../types';
import { decodeImage, loadSharp } from './decode';

/** Options of {@link heatmapPng}. @category Step 5: Evaluate */
export interface HeatmapPngArgs extends OverlayArgs {
  /** Also write the PNG to this file (a path or `file://` URL). @defaultValue none (only returned) */
  file?: string;
}

/** What {@link heatmapPng} draws the heatmap over. @category Step 5: Evaluate */
export type HeatmapPngImage = string | Uint8Array | ImageDataLike | tf.Tensor3D;

/** The image as RGB or RGBA bytes with its size. */
async function pixelsOf(image: HeatmapPngImage): Promise<ImageDataLike> {
  if (typeof image === 'string') {
    const file = /^file:\/\//i.test(image) ? fileURLToPath(image) : image;
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (error) {
      throw new TransferError('INVALID_ARGUMENT', `heatmapPng: cannot read the image file ${file}: ${error instanceof Error ? error.message : String(error)}.`, { cause: error });
    }
    return decodeImage(bytes);
  }
  if (image instanceof Uint8Array) return decodeImage(image);
  if (image instanceof tf.Tensor) {
    check(image.rank === 3 && image.shape[2] === 3, `heatmapPng: a tensor image must be RGB [h, w, 3], got [${image.shape.join(', ')}].`);
    const values = await image.data();
    return { data: Uint8ClampedArray.from(values), width: image.shape[1]!, height: image.shape[0]! };
  }
  check(image != null && typeof image === 'object' && 'data' in image, 'heatmapPng: image must be a file path, encoded image bytes, { data, width, height } pixels or a [h, w, 3] tensor.');
  return image;
}

/**
 * Draws `heatmap` (from {@link explain}, or any `{ data, height, width }` of 0..1 values) over `image` in the jet
 * colour map, at the image's own size (the heatmap is upsampled bilinearly), and encodes the result as PNG with
 * sharp. `image` is a file path, encoded image bytes (JPEG, PNG, WebP, GIF, BMP), RGB/RGBA pixels
 * (`{ data, width, height }`, e.g. a {@link decodeImage} result) or a raw-pixel tensor `[h, w, 3]` (not disposed).
 * Returns the PNG's bytes, and writes them to `file` when given.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * import { explain, heatmapPng } from 'tfjs-transfer/node';
 * const [e] = await explain(model, 'photos/cat.jpg');
 * await heatmapPng('photos/cat.jpg', e.heatmap, { file: 'cat-heatmap.png', alpha: 0.45 });
 * ```
 */
export async function heatmapPng(image: HeatmapPngImage, heatmap: HeatmapData, args: HeatmapPngArgs = {}): Promise<Uint8Array> {
  check(args == null || typeof args === 'object', "heatmapPng: options must be an object such as { file: 'out.png' }.");
  check(args?.file == null || typeof args.file === 'string', 'heatmapPng: file must be a path or file:// URL.');
  const pixels = await pixelsOf(image);
  const rgba = overlayHeatmap(pixels, heatmap, args ?? {});
  const sharp = await loadSharp();
  const png = await sharp(new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength), { raw: { width: pixels.width, height: pixels.height, channels: 4 } }).png().toBuffer();
  const bytes = new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
  if (args?.file != null) {
    const file = /^file:\/\//i.test(args.file) ? fileURLToPath(args.file) : args.file;
    await writeFile(file, bytes);
  }
  return bytes;
}
