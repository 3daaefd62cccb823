/**
 * Heatmaps of {@link explain}: the `Heatmap` record, bilinear upsampling, the colour map, blending a heatmap over an
 * image's pixels, and drawing that on a canvas (browser). Pure JavaScript: no tfjs op, so it works on every backend
 * and after the tensors are gone.
 * @module
 */
import { TransferError, check } from '../errors';
import type { DrawableImage, ImageDataLike, ImageSize } from '../types';

/** A heatmap's values and their grid: the part of a {@link Heatmap} the overlay helpers need. @category Step 5: Evaluate */
export interface HeatmapData {
  /** Values in 0..1, row-major `[height, width]`. */
  data: Float32Array;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /**
   * The part of the image the grid covers, as fractions of the image's height and width, when it is not the whole
   * image: a model that centre-crops (`model.resizeFit`) saw only the middle of a photo of another shape (the rest
   * reads 0), one that pads saw the photo inside a larger frame. Absent: the grid covers the whole image.
   */
  region?: {
    /** Top edge of the part the grid covers, as a fraction of the image's height (negative when padded). */
    top: number;
    /** Left edge, as a fraction of the image's width. */
    left: number;
    /** Height covered, as a fraction of the image's height (above 1 when padded). */
    height: number;
    /** Width covered, as a fraction of the image's width. */
    width: number;
  };
}

/**
 * Where the model looked for one class in one image: one value in 0..1 per cell of the backbone's last feature map
 * (7 x 7 for MobileNetV2 at 224), 1 for the cell that argued most for the class. See {@link explain}.
 * @category Step 5: Evaluate
 */
export interface Heatmap extends HeatmapData {
  /** The class explained. */
  label: string;
  /** Its index in the model's classes. */
  index: number;
  /** The model's probability for it on this image. */
  probability: number;
  /**
   * How it was computed: `cam` (class activation map: the output layer's weights for the class applied at every
   * position of the feature map; exact for a pooled linear head) or `gradcam` (Grad-CAM: the feature map weighted by
   * the spatial mean of the class logit's gradient, then ReLU) or `occlusion` (how far the class's probability falls
   * when the region is hidden under a blurred copy of the image) or `deletion` (the regions whose hiding together
   * lowers it most, greedily, in the order they were hidden).
   */
  method: 'cam' | 'gradcam' | 'occlusion' | 'deletion';
  /** `[height, width]` of the image as it was given (before resizing to the model's input). */
  imageSize: ImageSize;
  /**
   * The heatmap resized bilinearly (half-pixel centres, as `tf.image.resizeBilinear`) to `size`, row-major.
   * A non-enumerable method: a copy made by `structuredClone` or `postMessage` keeps the data but not this method;
   * call {@link upsampleHeatmap} on such a copy.
   * @param size `[height, width]`. @defaultValue the image's size, {@link Heatmap.imageSize}
   */
  upsample(size?: ImageSize): Float32Array;
}

/**
 * Resizes a heatmap bilinearly to `[height, width]` with half-pixel centres (each cell's value sits at its centre,
 * edges clamp), as `tf.image.resizeBilinear(x, size, false, true)` does. Pure JavaScript.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const [e] = await explain(model, image);
 * const full = upsampleHeatmap(e.heatmap, [480, 640]); // Float32Array of 480 * 640 values in 0..1
 * ```
 */
export function upsampleHeatmap(heatmap: HeatmapData, size: ImageSize): Float32Array {
  checkHeatmap(heatmap, 'upsampleHeatmap');
  const [outH, outW] = size ?? [];
  check(Number.isInteger(outH) && Number.isInteger(outW) && outH! > 0 && outW! > 0, `upsampleHeatmap: size must be [height, width], positive integers, got ${JSON.stringify(size)}.`);
  const { data, height: h, width: w } = heatmap;
  const r = heatmap.region ?? { top: 0, left: 0, height: 1, width: 1 };
  const out = new Float32Array(outH! * outW!);
  // Grid coordinate of an output pixel's centre along one axis, or NaN outside the part of the image the grid covers.
  const gridAt = (i: number, n: number, start: number, extent: number, cells: number) => {
    const u = ((i + 0.5) / n - start) / extent;
    return u < 0 || u > 1 ? Number.NaN : Math.min(Math.max(u * cells - 0.5, 0), cells - 1);
  };
  // Source coordinates of each output column, computed once.
  const x0 = new Int32Array(outW!);
  const x1 = new Int32Array(outW!);
  const fx = new Float32Array(outW!);
  const outsideX = new Uint8Array(outW!);
  for (let x = 0; x < outW!; x++) {
    const src = gridAt(x, outW!, r.left, r.width, w);
    outsideX[x] = Number.isNaN(src) ? 1 : 0;
    x0[x] = Number.isNaN(src) ? 0 : Math.floor(src);
    x1[x] = Math.min(x0[x]! + 1, w - 1);
    fx[x] = Number.isNaN(src) ? 0 : src - x0[x]!;
  }
  for (let y = 0; y < outH!; y++) {
    const src = gridAt(y, outH!, r.top, r.height, h);
    if (Number.isNaN(src)) continue; // a row the model never saw: 0
    const y0 = Math.floor(src);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = src - y0;
    for (let x = 0; x < outW!; x++) {
      if (outsideX[x]) continue;
      const top = data[y0 * w + x0[x]!]! * (1 - fx[x]!) + data[y0 * w + x1[x]!]! * fx[x]!;
      const bottom = data[y1 * w + x0[x]!]! * (1 - fx[x]!) + data[y1 * w + x1[x]!]! * fx[x]!;
      out[y * outW! + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/**
 * The "jet" colour map (dark blue, blue, cyan, yellow, red, dark red), the one the CAM and Grad-CAM papers draw
 * with. Written out rather than taken from a charting library: jet is defined as exactly these six piecewise-linear
 * anchors, so six rows reproduce it with no dependency (and no sampled approximation) in a browser-safe module.
 */
const JET: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 0, 127.5],
  [0.125, 0, 0, 255],
  [0.375, 0, 255, 255],
  [0.625, 255, 255, 0],
  [0.875, 255, 0, 0],
  [1, 127.5, 0, 0],
];

/** The jet colour of `v` in 0..1 (clamped), as `[r, g, b]` in 0..255. @internal */
export function jetColour(v: number): [number, number, number] {
  const t = Number.isFinite(v) ? Math.min(Math.max(v, 0), 1) : 0;
  let i = 1;
  while (i < JET.length - 1 && JET[i]![0] < t) i++;
  const a = JET[i - 1]!;
  const b = JET[i]!;
  const f = (t - a[0]) / (b[0] - a[0]);
  return [a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f, a[3] + (b[3] - a[3]) * f];
}

/** Defaults of {@link overlayHeatmap} and the helpers built on it. @category Step 5: Evaluate */
export const OVERLAY_DEFAULTS = Object.freeze({
  /** Opacity of the colour map at the heatmap's hottest cells. */
  alpha: 0.5,
  /** Heatmap values below this are not coloured at all (the image shows through). */
  threshold: 0,
});

/** Options of {@link overlayHeatmap}, {@link drawHeatmap} and `heatmapPng`. @category Step 5: Evaluate */
export interface OverlayArgs {
  /** Opacity of the colour over the image, 0..1. @defaultValue {@link OVERLAY_DEFAULTS}.alpha (0.5) */
  alpha?: number;
  /** Heatmap values below this leave the image as it is. @defaultValue {@link OVERLAY_DEFAULTS}.threshold (0) */
  threshold?: number;
}

/**
 * Blends a heatmap, in the jet colour map, over an image's pixels: RGBA (4 bytes a pixel, as `ImageData`) or RGB
 * (3), `width * height` pixels. The heatmap is upsampled bilinearly to the image's size first. Returns new RGBA
 * bytes (alpha copied, or 255 for RGB input); the input is not changed.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const [e] = await explain(model, imageData);
 * const rgba = overlayHeatmap(imageData, e.heatmap, { alpha: 0.4 });
 * ctx.putImageData(new ImageData(rgba, imageData.width, imageData.height), 0, 0);
 * ```
 */
export function overlayHeatmap(image: ImageDataLike, heatmap: HeatmapData, args: OverlayArgs = {}): Uint8ClampedArray {
  checkHeatmap(heatmap, 'overlayHeatmap');
  check(image != null && typeof image === 'object' && image.data != null, 'overlayHeatmap: image must be { data, width, height } (RGBA or RGB bytes), such as an ImageData.');
  const { width, height, data } = image;
  check(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0, `overlayHeatmap: image width and height must be positive integers, got ${width} x ${height}.`);
  const pixels = width * height;
  const channels = data.length === pixels * 4 ? 4 : data.length === pixels * 3 ? 3 : 0;
  if (!channels) {
    throw new TransferError('INVALID_ARGUMENT', `overlayHeatmap: a ${width}x${height} image needs ${pixels * 4} bytes (RGBA) or ${pixels * 3} (RGB), got ${data.length}.`);
  }
  const alpha = args?.alpha ?? OVERLAY_DEFAULTS.alpha;
  const threshold = args?.threshold ?? OVERLAY_DEFAULTS.threshold;
  check(typeof alpha === 'number' && alpha >= 0 && alpha <= 1, `overlayHeatmap: alpha must be in [0, 1], got ${alpha}.`);
  check(typeof threshold === 'number' && Number.isFinite(threshold), `overlayHeatmap: threshold must be a number, got ${threshold}.`);
  const values = heatmap.height === height && heatmap.width === width ? heatmap.data : upsampleHeatmap(heatmap, [height, width]);
  const out = new Uint8ClampedArray(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    const v = values[p]!;
    const a = v >= threshold ? alpha : 0;
    const [r, g, b] = jetColour(v);
    out[p * 4] = data[p * channels]! * (1 - a) + r * a;
    out[p * 4 + 1] = data[p * channels + 1]! * (1 - a) + g * a;
    out[p * 4 + 2] = data[p * channels + 2]! * (1 - a) + b * a;
    out[p * 4 + 3] = channels === 4 ? data[p * 4 + 3]! : 255;
  }
  return out;
}

/**
 * A canvas {@link drawHeatmap} draws on: an `HTMLCanvasElement` or `OffscreenCanvas` is one. Declared structurally so
 * that the published types compile without the DOM lib.
 * @category Step 5: Evaluate
 */
export interface CanvasLike {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** The canvas's 2D context (`null` when it has another kind). */
  getContext(contextId: '2d'): unknown;
}

/** The parts of a canvas and its 2D context the helper calls. */
interface Canvas2D {
  width: number;
  height: number;
  getContext(kind: '2d'): {
    drawImage(image: DrawableImage, x: number, y: number, w: number, h: number): void;
    getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray; width: number; height: number };
    putImageData(data: unknown, x: number, y: number): void;
    createImageData(w: number, h: number): { data: Uint8ClampedArray; width: number; height: number };
  } | null;
}

/**
 * Draws `image` on `canvas` (an `HTMLCanvasElement` or `OffscreenCanvas`, resized to the image unless it already
 * has a size other than the HTML default 300 x 150; an `ImageData` always gives the canvas its size) with `heatmap` blended over it in the jet colour map ({@link overlayHeatmap}). `image` is anything
 * `drawImage` takes (image element, canvas, video frame, `ImageBitmap`) or an `ImageData`. Browser only.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const img = document.querySelector('img')!;
 * const [e] = await explain(model, img);
 * drawHeatmap(document.querySelector('canvas')!, img, e.heatmap, { alpha: 0.45 });
 * ```
 */
export function drawHeatmap(canvas: CanvasLike, image: DrawableImage | ImageDataLike, heatmap: HeatmapData, args: OverlayArgs = {}): void {
  checkHeatmap(heatmap, 'drawHeatmap');
  const target = canvas as unknown as Canvas2D;
  const ctx = target?.getContext?.('2d');
  if (!ctx) throw new TransferError('INVALID_ARGUMENT', 'drawHeatmap: canvas must be an HTMLCanvasElement or OffscreenCanvas with a 2d context.');
  const isPixels = typeof (image as ImageDataLike)?.data === 'object' && typeof (image as ImageDataLike).width === 'number';
  let pixels: ImageDataLike;
  if (isPixels) {
    // Pixels are drawn as they are: the canvas takes their size.
    pixels = image as ImageDataLike;
    target.width = pixels.width;
    target.height = pixels.height;
  } else {
    if (!target.width || !target.height || (target.width === 300 && target.height === 150)) {
      // 300 x 150 is a canvas nobody sized (the HTML default): take the image's size.
      const size = drawableSize(image as DrawableImage);
      target.width = size.width;
      target.height = size.height;
    }
    ctx.drawImage(image as DrawableImage, 0, 0, target.width, target.height);
    pixels = ctx.getImageData(0, 0, target.width, target.height);
  }
  const blended = overlayHeatmap(pixels, heatmap, args);
  const out = ctx.createImageData(target.width, target.height);
  out.data.set(blended);
  ctx.putImageData(out, 0, 0);
}

function drawableSize(image: DrawableImage): { width: number; height: number } {
  const i = image as { naturalWidth?: number; naturalHeight?: number; videoWidth?: number; videoHeight?: number; width?: number; height?: number; displayWidth?: number; displayHeight?: number };
  const width = i.naturalWidth || i.videoWidth || i.displayWidth || i.width || 0;
  const height = i.naturalHeight || i.videoHeight || i.displayHeight || i.height || 0;
  if (!width || !height) throw new TransferError('INVALID_ARGUMENT', 'drawHeatmap: the image has no size yet (not loaded?); await img.decode() first.');
  return { width, height };
}

function checkHeatmap(heatmap: HeatmapData, where: string): void {
  check(
    heatmap != null && heatmap.data instanceof Float32Array && Number.isInteger(heatmap.height) && Number.isInteger(heatmap.width) && heatmap.height > 0 && heatmap.width > 0,
    `${where}: heatmap must be { data: Float32Array, height, width } (a Heatmap from explain).`,
  );
  check(heatmap.data.length === heatmap.height * heatmap.width, `${where}: heatmap data has ${heatmap.data.length} values, expected ${heatmap.height} x ${heatmap.width}.`);
}
