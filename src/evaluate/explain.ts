/**
 * `explain`: where in each image the model found its class. Class activation maps (CAM) for a pooled linear head,
 * Grad-CAM otherwise, from the backbone's last feature map (the head's input); occlusion sensitivity and greedy
 * deletion on request, from the model's own probabilities. Pure tfjs ops, so every backend.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { TransferError, check, throwIfAborted } from '../errors';
import { TransferModel, classProbabilityColumns } from '../transfer-model';
import type { ImageSize } from '../types';
import { withDefaults } from '../util/args';
import { takeRows } from '../util/rows';
import { fitPlacement } from '../data/resize';
import { upsampleHeatmap, type Heatmap } from './heatmap';
import { predictionOf, toModelBatch, type PredictInput, type Prediction } from './predict';

/** How {@link explain} computes a heatmap. @category Step 5: Evaluate */
export type ExplainMethod = 'auto' | 'cam' | 'gradcam' | 'occlusion' | 'deletion';

/** Defaults of {@link explain}. @category Step 5: Evaluate */
export const EXPLAIN_DEFAULTS = Object.freeze({
  /** `auto`: `cam` where it is exact (a pooled linear head), `gradcam` otherwise. */
  method: 'auto' as ExplainMethod,
  /** Images per forward (and backward) pass. */
  batchSize: 16,
  /** `occlusion`: the side, in grid cells, of the square hidden at each position. */
  occlusionPatch: 2,
  /** `deletion`: the side, in grid cells, of the square hidden at each step (finer than occlusion's: measured best). */
  deletionPatch: 1,
  /** `deletion`: the share of the grid hidden greedily before the rest is ranked by occlusion. */
  deletionArea: 0.2,
});

/** Options of {@link explain}. An option given as `undefined` or `null` takes its default. @category Step 5: Evaluate */
export interface ExplainArgs {
  /**
   * `cam`: the output layer's weights for the class applied at every position of the feature map (exact for a
   * head of average pooling or flatten, then one Dense layer: the map's mean, plus the bias, is the class logit);
   * refused for other heads. `gradcam`: Grad-CAM (Selvaraju et al., 2017): the gradient of the class logit with
   * respect to the feature map, averaged over positions, weights the map's channels; ReLU of their sum. Any head.
   * `occlusion`: occlusion sensitivity (Zeiler and Fergus, 2014): each cell of the feature map's grid (32 x 32 px at
   * 7 x 7), with its neighbours out to {@link ExplainArgs.occlusionPatch}, is hidden under a blurred copy of the
   * image, and the map is how far the class's probability falls; one backbone pass per position of the square and
   * image (36 at 224 px with the default patch), so about 40x the cost of the others, for maps that track the
   * evidence more closely (measured in `docs/accuracy.md`). Any head.
   * `deletion`: greedy deletion: round after round, the square (of {@link ExplainArgs.deletionPatch} cells,
   * one by default) whose hiding together with those already hidden (under the same blurred copy) lowers the
   * class's probability most is hidden, until {@link ExplainArgs.deletionArea} of the grid is; the map ranks those
   * cells in the order they were hidden, above every other, and the rest by how far hiding each alone lowered it
   * (the first round). It finds evidence that only counts together (two eyes, several flowers), which one square at
   * a time misses: masking the 20% of pixels it ranks highest costs the prediction about twice what occlusion's do
   * (`docs/accuracy.md`). Costly: about 450 backbone passes per image and class at 224 px with the default square
   * (about 100 with squares of 2), so it suits a few images. Any head.
   * `auto`: `cam` where it is exact, `gradcam` otherwise.
   * @defaultValue {@link EXPLAIN_DEFAULTS}.method (`'auto'`)
   */
  method?: ExplainMethod;
  /**
   * More classes to explain in every image (names or indices), beyond the predicted one, which always comes first.
   * @defaultValue none (the predicted class only)
   */
  classes?: readonly (string | number)[];
  /** Images per forward (and backward) pass. @defaultValue {@link EXPLAIN_DEFAULTS}.batchSize (16) */
  batchSize?: number;
  /**
   * Method `occlusion` only: the side, in cells of the feature map's grid, of the square hidden at each position
   * (it slides one cell at a time; a cell's value is the mean fall over the squares that cover it). 1 hides one
   * cell at a time.
   * @defaultValue {@link EXPLAIN_DEFAULTS}.occlusionPatch (2)
   */
  occlusionPatch?: number;
  /**
   * Method `deletion` only: the side, in cells of the feature map's grid, of the square hidden at each step.
   * 2 costs about a quarter of 1's backbone passes and ranks less well (`docs/accuracy.md`).
   * @defaultValue {@link EXPLAIN_DEFAULTS}.deletionPatch (1)
   */
  deletionPatch?: number;
  /**
   * Method `deletion` only: the share of the feature map's grid hidden greedily (each round hides the square that
   * lowers the class's probability most together with those already hidden).
   * @defaultValue {@link EXPLAIN_DEFAULTS}.deletionArea (0.2)
   */
  deletionArea?: number;
  /** Stops before the next image is decoded or the next batch runs; `explain` then rejects with an `AbortError`. @defaultValue none */
  signal?: AbortSignal;
}

/**
 * One image explained: its prediction (as {@link predict} gives it) and a heatmap per class explained.
 * @category Step 5: Evaluate
 */
export interface Explanation extends Prediction {
  /** The heatmap of the predicted class (`heatmaps[0]`). */
  heatmap: Heatmap;
  /** The predicted class's heatmap, then one per class asked for in {@link ExplainArgs.classes} (in that order, the predicted one not repeated). */
  heatmaps: Heatmap[];
}

/** What the head looks like to the explainer. */
interface HeadPlan {
  /** Feature map `[h, w, c]`. */
  shape: [number, number, number];
  /** `avg` / `flatten`: a linear head CAM is exact for; `undefined` otherwise. */
  linear: 'avg' | 'flatten' | undefined;
  /** Every head layer before the output Dense layer. */
  body: tfl.layers.Layer[];
  /** The output Dense layer's kernel `[d, units]` and bias `[units]` (tfjs variables: not disposed here). */
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D | undefined;
  /** One sigmoid unit for two classes (class 1 = +logit, class 0 = -logit). */
  sigmoid: boolean;
}

/** Reads the head: the last layer must be Dense; the rest decides whether CAM is exact. @internal */
export function headPlan(model: TransferModel, where: string): HeadPlan {
  const fs = model.backbone.featureShape;
  if (fs.length !== 3) {
    throw new TransferError('SHAPE_MISMATCH', `${where}: heatmaps need a spatial feature map [h, w, c]; backbone "${model.backbone.name}" gives [${fs.join(', ')}].`);
  }
  const layers = model.head.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const output = layers[layers.length - 1];
  if (!output || output.getClassName() !== 'Dense' || output.weights.length < 1) {
    throw new TransferError('INVALID_ARGUMENT', `${where}: the head must end in a Dense layer (attachHead's do), got ${output?.getClassName() ?? 'no layer'}.`);
  }
  const body = layers.slice(0, -1);
  const kinds = body.map((l) => l.getClassName()).filter((c) => c !== 'Dropout');
  const linear = kinds.length === 1 && kinds[0] === 'GlobalAveragePooling2D' ? 'avg' : kinds.length === 1 && kinds[0] === 'Flatten' ? 'flatten' : undefined;
  const kernel = output.weights[0]!.read() as tf.Tensor2D;
  const bias = output.weights[1]?.read() as tf.Tensor1D | undefined;
  return { shape: [fs[0]!, fs[1]!, fs[2]!], linear, body, kernel, bias, sigmoid: kernel.shape[1] === 1 && model.numClasses === 2 };
}

/** The method that runs for `asked` on this head. @internal */
export function resolveMethod(plan: HeadPlan, asked: ExplainMethod, where: string): Heatmap['method'] {
  if (asked === 'gradcam' || asked === 'occlusion' || asked === 'deletion') return asked;
  if (asked === 'cam' && !plan.linear) {
    throw new TransferError(
      'INVALID_ARGUMENT',
      `${where}: method 'cam' needs a pooled linear head (average pooling or flatten, then the output layer); this head has hidden or max-pooling layers. Use method 'gradcam' or 'auto'.`,
    );
  }
  return plan.linear ? 'cam' : 'gradcam';
}

/**
 * Per image, the output unit and sign that give class `classes[i]`'s logit: softmax unit `c`; one sigmoid unit
 * `+1` for class 1 and `-1` for class 0 (P(class 0) = sigmoid(-z)).
 */
function unitMask(plan: HeadPlan, classes: readonly number[]): tf.Tensor2D {
  const units = plan.kernel.shape[1];
  const mask = new Float32Array(classes.length * units);
  classes.forEach((c, i) => {
    if (plan.sigmoid) mask[i * units] = c === 1 ? 1 : -1;
    else mask[i * units + c] = 1;
  });
  return tf.tensor2d(mask, [classes.length, units]);
}

/** Raw (unnormalised) maps `[n, h, w]` of one class per image. @internal */
export function rawMaps(plan: HeadPlan, features: tf.Tensor4D, classes: readonly number[], method: 'cam' | 'gradcam'): tf.Tensor3D {
  return tf.tidy(() => {
    const mask = unitMask(plan, classes);
    const [h, w, c] = plan.shape;
    const n = features.shape[0];
    if (method === 'cam') {
      // The class's kernel column (signed), at every position: avg -> [n, 1, 1, c]; flatten -> [n, h, w, c].
      const columns = tf.matMul(mask, plan.kernel, false, true);
      const weights = plan.linear === 'avg' ? tf.reshape(columns, [n, 1, 1, c]) : tf.reshape(columns, [n, h, w, c]);
      return tf.sum(tf.mul(features, weights), -1) as tf.Tensor3D;
    }
    const logit = (f: tf.Tensor): tf.Scalar => {
      const x = plan.body.reduce((t, layer) => layer.apply(t, { training: false }) as tf.Tensor, f) as tf.Tensor2D;
      const z = plan.bias ? tf.add(tf.matMul(x, plan.kernel), plan.bias) : tf.matMul(x, plan.kernel);
      return tf.sum(tf.mul(z, mask));
    };
    // The images are independent (no batch statistic in inference mode), so the gradient of the summed logits
    // with respect to image i's features is that image's own gradient.
    const grads = tf.grad(logit)(features) as tf.Tensor4D;
    const alpha = tf.mean(grads, [1, 2], true);
    return tf.relu(tf.sum(tf.mul(features, alpha), -1)) as tf.Tensor3D;
  });
}

/** {@link rawMaps}, read back. */
async function mapValues(plan: HeadPlan, features: tf.Tensor4D, classes: readonly number[], method: 'cam' | 'gradcam'): Promise<Float32Array> {
  const m = rawMaps(plan, features, classes, method);
  try {
    return (await m.data()) as Float32Array;
  } finally {
    m.dispose();
  }
}

/** Scales one map to 0..1: CAM and occlusion by min-max (as Zhou et al.), Grad-CAM (already ReLU'd) by its maximum. */
function normalise(values: Float32Array, method: Heatmap['method']): Float32Array {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const low = method === 'gradcam' ? 0 : min;
  const range = max - low;
  const out = new Float32Array(values.length);
  if (!(range > 0) || !Number.isFinite(range)) return out;
  for (let i = 0; i < values.length; i++) out[i] = (values[i]! - low) / range;
  return out;
}

/**
 * The part of an image of `imageSize` the model's input showed, as fractions of the image, when the model fits
 * other shapes by cropping or padding (`model.resizeFit`) and the shape differs; `undefined` when it saw the whole
 * image stretched.
 */
function regionSeen(model: TransferModel, imageSize: ImageSize): Heatmap['region'] {
  const [H, W] = imageSize;
  const [h, w] = model.inputShape;
  const { crop, box } = fitPlacement([H, W], [h, w], model.resizeFit);
  if (crop.height === H && crop.width === W && box.height === h && box.width === w) return undefined;
  // The model's whole input, in the image's pixels: the kept window, widened by the padding around its box.
  const sy = crop.height / box.height;
  const sx = crop.width / box.width;
  return { top: (crop.top - box.top * sy) / H, left: (crop.left - box.left * sx) / W, height: (h * sy) / H, width: (w * sx) / W };
}

function heatmapRecord(model: TransferModel, values: Float32Array, plan: HeadPlan, index: number, probability: number, method: Heatmap['method'], imageSize: ImageSize): Heatmap {
  const [height, width] = plan.shape;
  const record = {
    label: model.classes[index]!,
    index,
    probability,
    method,
    data: normalise(values, method),
    height,
    width,
    imageSize: [imageSize[0], imageSize[1]] as ImageSize,
  } as Heatmap;
  const region = regionSeen(model, imageSize);
  if (region) record.region = region;
  // Not enumerable, so a heatmap survives structuredClone / postMessage (to or from a Web Worker) and JSON, as data.
  Object.defineProperty(record, 'upsample', { value: (size?: ImageSize) => upsampleHeatmap(record, size ?? record.imageSize), enumerable: false });
  return record;
}

/** The head's class probabilities `[n, k]` for features (one sigmoid unit widened to two columns). */
function classProbabilities(model: TransferModel, features: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    return classProbabilityColumns(model.head.predict(features) as tf.Tensor2D, model.numClasses);
  });
}

/** Checks an occlusion square's side (`what` names the option in the message). @internal */
export function checkOcclusionPatch(patch: number, what: string): void {
  check(Number.isInteger(patch) && patch > 0, `${what} must be a positive integer (grid cells), got ${JSON.stringify(patch)}.`);
}

/** Checks greedy deletion's share of the grid (`what` names the option in the message). @internal */
export function checkDeletionArea(area: number, what: string): void {
  check(typeof area === 'number' && area > 0 && area <= 1, `${what} must be a share in (0, 1], got ${JSON.stringify(area)}.`);
}

/**
 * The squares occlusion hides: for each position (top-left cell `py, px`, sliding one cell), a mask `[H, W]` of
 * the input's pixels under it (1 hidden), and the grid cells it covers.
 */
function occlusionSquares(grid: [number, number], input: [number, number], patch: number): { masks: Float32Array; cells: number[][] } {
  const [h, w] = grid;
  const [H, W] = input;
  const p = Math.min(patch, h, w);
  const cells: number[][] = [];
  const masks = new Float32Array((h - p + 1) * (w - p + 1) * H * W);
  let k = 0;
  for (let py = 0; py + p <= h; py++) {
    for (let px = 0; px + p <= w; px++, k++) {
      const covered: number[] = [];
      for (let y = py; y < py + p; y++) for (let x = px; x < px + p; x++) covered.push(y * w + x);
      cells.push(covered);
      const [y0, y1] = [Math.floor((py * H) / h), Math.floor(((py + p) * H) / h)];
      const [x0, x1] = [Math.floor((px * W) / w), Math.floor(((px + p) * W) / w)];
      for (let y = y0; y < y1; y++) masks.fill(1, k * H * W + y * W + x0, k * H * W + y * W + x1);
    }
  }
  return { masks, cells };
}

/**
 * Occlusion sensitivity for a batch of images at the model's input size: per image, grid cell and class, the mean
 * fall of the class's probability (`probs`, the unoccluded `[n * k]`) over the squares that cover the cell, each
 * square hidden under a box-blurred copy of the image (a window of one cell). `[n][cell * k + class]`.
 */
async function occlusionFalls(model: TransferModel, plan: HeadPlan, images: tf.Tensor4D, probs: Float32Array | Int32Array | Uint8Array, args: ExplainBatchArgs): Promise<Float32Array[]> {
  const [h, w] = plan.shape;
  const [, H, W] = images.shape;
  const k = model.numClasses;
  const { masks, cells } = occlusionSquares([h, w], [H, W], args.occlusionPatch);
  const positions = cells.length;
  const window = 2 * Math.floor(Math.round(H / h) / 2) + 1;
  const hide = tf.tensor4d(masks, [positions, H, W, 1]);
  const keep = tf.sub(1, hide);
  const out: Float32Array[] = [];
  try {
    for (let i = 0; i < images.shape[0]; i++) {
      throwIfAborted(args.signal, args.where);
      const occluded = tf.tidy(() => {
        const image = tf.slice(images, i, 1);
        return tf.add(tf.mul(image, keep), tf.mul(tf.avgPool(image, window, 1, 'same'), hide)) as tf.Tensor4D;
      });
      const seen: tf.Tensor2D[] = [];
      try {
        for (let s = 0; s < positions; s += args.batchSize) {
          const n = Math.min(args.batchSize, positions - s);
          seen.push(tf.tidy(() => classProbabilities(model, model.backbone.extract(takeRows(occluded, s, n), { batchSize: n }))));
        }
        const all = tf.concat(seen);
        const p = await all.data();
        all.dispose();
        const falls = new Float32Array(h * w * k);
        const covers = new Float32Array(h * w);
        cells.forEach((covered, q) => {
          for (const cell of covered) {
            covers[cell]! += 1;
            for (let c = 0; c < k; c++) falls[cell * k + c]! += probs[i * k + c]! - p[q * k + c]!;
          }
        });
        for (let cell = 0; cell < h * w; cell++) for (let c = 0; c < k; c++) falls[cell * k + c]! /= covers[cell]!;
        out.push(falls);
      } finally {
        occluded.dispose();
        tf.dispose(seen);
      }
    }
  } finally {
    hide.dispose();
    keep.dispose();
  }
  return out;
}

/** The pixel mask `[H, W]` (1 hidden) of the grid cells marked in `hidden` (`[h * w]`). */
function cellsMask(hidden: Uint8Array, grid: [number, number], input: [number, number], out: Float32Array, offset: number): void {
  const [h, w] = grid;
  const [H, W] = input;
  for (let cy = 0; cy < h; cy++) {
    const [y0, y1] = [Math.floor((cy * H) / h), Math.floor(((cy + 1) * H) / h)];
    for (let cx = 0; cx < w; cx++) {
      if (!hidden[cy * w + cx]) continue;
      const [x0, x1] = [Math.floor((cx * W) / w), Math.floor(((cx + 1) * W) / w)];
      for (let y = y0; y < y1; y++) out.fill(1, offset + y * W + x0, offset + y * W + x1);
    }
  }
}

/**
 * Greedy deletion for one image and class: hides, one square at a time, the square whose hiding (with the squares
 * already hidden) lowers the class's probability most, until `area` of the grid is hidden. The map ranks the cells
 * hidden in that order first, then the rest by how far hiding their square alone lowered it (the first round,
 * which is occlusion sensitivity). `[cells]`.
 */
async function deletionMap(model: TransferModel, plan: HeadPlan, image: tf.Tensor4D, blurred: tf.Tensor4D, c: number, base: number, args: ExplainBatchArgs): Promise<Float32Array> {
  const [h, w] = plan.shape;
  const [, H, W] = image.shape;
  const k = model.numClasses;
  const { cells: squares } = occlusionSquares([h, w], [H, W], args.deletionPatch);
  const hidden = new Uint8Array(h * w);
  const order = new Int32Array(h * w).fill(-1);
  const first = new Float32Array(h * w);
  const goal = Math.ceil(args.deletionArea * h * w);
  let count = 0;
  for (let round = 0; count < goal; round++) {
    throwIfAborted(args.signal, args.where);
    const candidates = squares.map((sq, q) => q).filter((q) => squares[q]!.some((cell) => !hidden[cell]));
    const masks = new Float32Array(candidates.length * H * W);
    candidates.forEach((q, j) => {
      const union = Uint8Array.from(hidden);
      for (const cell of squares[q]!) union[cell] = 1;
      cellsMask(union, [h, w], [H, W], masks, j * H * W);
    });
    const p = new Float32Array(candidates.length);
    for (let s = 0; s < candidates.length; s += args.batchSize) {
      const n = Math.min(args.batchSize, candidates.length - s);
      const probs = tf.tidy(() => {
        const hide = tf.tensor4d(masks.subarray(s * H * W, (s + n) * H * W), [n, H, W, 1]);
        const mixed = tf.add(tf.mul(image, tf.sub(1, hide)), tf.mul(blurred, hide)) as tf.Tensor4D;
        return classProbabilities(model, model.backbone.extract(mixed, { batchSize: n }));
      });
      const values = await probs.data();
      probs.dispose();
      for (let j = 0; j < n; j++) p[s + j] = values[j * k + c]!;
    }
    if (round === 0) {
      const covers = new Float32Array(h * w);
      candidates.forEach((q, j) => squares[q]!.forEach((cell) => ((first[cell]! += base - p[j]!), (covers[cell]! += 1))));
      for (let cell = 0; cell < h * w; cell++) first[cell]! /= Math.max(1, covers[cell]!);
    }
    let best = 0;
    for (let j = 1; j < candidates.length; j++) if (p[j]! < p[best]!) best = j;
    for (const cell of squares[candidates[best]!]!) {
      if (hidden[cell]) continue;
      hidden[cell] = 1;
      order[cell] = round;
      count++;
    }
  }
  // Hidden cells above every other, earlier rounds higher; the rest by their first-round fall, squeezed below.
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of first) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const rounds = Math.max(...order) + 1;
  return Float32Array.from({ length: h * w }, (_, cell) => (order[cell]! >= 0 ? 2 + (rounds - order[cell]!) / rounds : (first[cell]! - lo) / (hi - lo || 1)));
}

/** Greedy deletion maps for a batch: `[n][cell * k + class]`, filled for the classes `slots[i]` of each image. */
async function deletionFalls(model: TransferModel, plan: HeadPlan, images: tf.Tensor4D, probs: Float32Array | Int32Array | Uint8Array, slots: number[][], args: ExplainBatchArgs): Promise<Float32Array[]> {
  const [h, w] = plan.shape;
  const [, H] = images.shape;
  const k = model.numClasses;
  const window = 2 * Math.floor(Math.round(H / h) / 2) + 1;
  const out: Float32Array[] = [];
  for (let i = 0; i < images.shape[0]; i++) {
    const image = tf.slice(images, i, 1);
    const blurred = tf.avgPool(image, window, 1, 'same') as tf.Tensor4D;
    try {
      const falls = new Float32Array(h * w * k);
      for (const c of slots[i]!) {
        const map = await deletionMap(model, plan, image, blurred, c, probs[i * k + c]!, args);
        map.forEach((v, cell) => (falls[cell * k + c] = v));
      }
      out.push(falls);
    } finally {
      image.dispose();
      blurred.dispose();
    }
  }
  return out;
}

/** What {@link explainBatch} needs besides the images. @internal */
export interface ExplainBatchArgs {
  method: Heatmap['method'];
  batchSize: number;
  /** Method `occlusion`: the square's side in grid cells. */
  occlusionPatch: number;
  /** Method `deletion`: the square's side in grid cells. */
  deletionPatch: number;
  /** Method `deletion`: the share of the grid hidden greedily. */
  deletionArea: number;
  /** Classes to explain for image `i` after the predicted one (duplicates of it are dropped). */
  extraClasses: (i: number, predicted: number) => readonly number[];
  signal?: AbortSignal;
  where: string;
}

/**
 * Explains images already at the model's input size (`[n, h, w, 3]` raw pixels, not disposed), batch by batch:
 * one backbone pass per batch, then the head's probabilities and one map per class slot. @internal
 */
export async function explainBatch(model: TransferModel, plan: HeadPlan, images: tf.Tensor4D, sizes: readonly ImageSize[], args: ExplainBatchArgs): Promise<Explanation[]> {
  const out: Explanation[] = [];
  const n = images.shape[0];
  const k = model.numClasses;
  for (let s = 0; s < n; s += args.batchSize) {
    throwIfAborted(args.signal, args.where);
    const size = Math.min(args.batchSize, n - s);
    // This batch's images, used by the feature pass and, for occlusion, by every occluded pass.
    const part = size === n ? images : (takeRows(images, s, size) as tf.Tensor4D);
    let features: tf.Tensor4D | undefined;
    try {
      features = tf.tidy(() => model.backbone.extract(part, { batchSize: size }) as tf.Tensor4D);
      const p = classProbabilities(model, features);
      const probs = await p.data();
      p.dispose();
      let falls: Float32Array[] | undefined;
      const predictions = Array.from({ length: size }, (_, i) => predictionOf(probs, i, model.classes));
      const slots = predictions.map((pred, i) => [pred.index, ...new Set(args.extraClasses(s + i, pred.index).filter((c) => c !== pred.index))]);
      if (args.method === 'occlusion') falls = await occlusionFalls(model, plan, part, probs, args);
      if (args.method === 'deletion') falls = await deletionFalls(model, plan, part, probs, slots, args);
      const maps: Heatmap[][] = predictions.map(() => []);
      const most = Math.max(...slots.map((x) => x.length));
      for (let slot = 0; slot < most; slot++) {
        // Images with fewer classes repeat their predicted one in this pass; the result is not kept.
        const classes = slots.map((x) => x[slot] ?? x[0]!);
        const cells = plan.shape[0] * plan.shape[1];
        const values = falls ? undefined : await mapValues(plan, features, classes, args.method as 'cam' | 'gradcam');
        slots.forEach((x, i) => {
          if (slot >= x.length) return;
          const c = x[slot]!;
          const map = falls ? Float32Array.from({ length: cells }, (_, cell) => falls[i]![cell * k + c]!) : Float32Array.from(values!.subarray(i * cells, (i + 1) * cells));
          maps[i]!.push(heatmapRecord(model, map, plan, c, probs[i * k + c]!, args.method, sizes[s + i]!));
        });
      }
      predictions.forEach((pred, i) => out.push({ ...pred, heatmap: maps[i]![0]!, heatmaps: maps[i]! }));
    } finally {
      features?.dispose();
      if (part !== images) part.dispose();
    }
  }
  return out;
}

/** Class names or indices to indices, checked. */
function classIndices(model: TransferModel, classes: readonly (string | number)[] | undefined): number[] {
  if (classes == null) return [];
  check(Array.isArray(classes), `explain: classes must be a list of class names or indices, got ${JSON.stringify(classes)}.`);
  return classes.map((c) => {
    const i = typeof c === 'number' ? c : model.classes.indexOf(c);
    check(Number.isInteger(i) && i >= 0 && i < model.numClasses, `explain: unknown class ${JSON.stringify(c)}; the model's classes are ${JSON.stringify(model.classes)}.`);
    return i;
  });
}

/**
 * Shows where in each image the model found its class: a heatmap per image for the predicted class (and any
 * classes asked for), at the resolution of the backbone's last feature map (7 x 7 for MobileNetV2 at 224), with
 * values in 0..1. For the default head (average pooling, one Dense layer) it is the class activation map, exact:
 * the map's mean plus the bias is the class logit. Heads with hidden layers get Grad-CAM. Takes what
 * {@link predict} takes; each heatmap's `upsample()` resizes it to the image's own size (bilinear), and
 * {@link drawHeatmap} (browser) / `heatmapPng` (Node) draw it over the image. Grad-CAM costs one backward pass
 * through the head per class; the backbone runs forward only, once per image. Tensors passed in are not disposed.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const [e] = await explain(model, document.querySelector('img')!);
 * console.log(e.label, e.probability, e.heatmap.method); // 'dog', 0.97, 'cam'
 * const full = e.heatmap.upsample();                     // Float32Array at the image's size
 * drawHeatmap(canvas, img, e.heatmap);
 * const both = await explain(model, images, { classes: ['cat', 'dog'], method: 'gradcam' });
 * ```
 */
export async function explain(model: TransferModel, images: PredictInput, args: ExplainArgs = {}): Promise<Explanation[]> {
  check(model instanceof TransferModel, `explain: expected a TransferModel, got ${Object.prototype.toString.call(model)}.`);
  check(images != null, 'explain: images are required: a tf.Tensor of raw RGB pixels, an image element, a Blob, a URL, or a list of them.');
  check(args == null || typeof args === 'object', "explain: options must be an object such as { method: 'auto' }.");
  const options = withDefaults(args, EXPLAIN_DEFAULTS);
  check(['auto', 'cam', 'gradcam', 'occlusion', 'deletion'].includes(options.method), `explain: method must be 'auto', 'cam', 'gradcam', 'occlusion' or 'deletion', got ${JSON.stringify(options.method)}.`);
  checkDeletionArea(options.deletionArea, 'explain: deletionArea');
  checkOcclusionPatch(options.occlusionPatch, 'explain: occlusionPatch');
  checkOcclusionPatch(options.deletionPatch, 'explain: deletionPatch');
  check(Number.isInteger(options.batchSize) && options.batchSize > 0, `explain: batchSize must be a positive integer, got ${JSON.stringify(options.batchSize)}.`);
  check(options.signal === undefined || typeof options.signal?.aborted === 'boolean', 'explain: signal must be an AbortSignal.');
  throwIfAborted(options.signal, 'explain');
  model.assertUsable('explain');
  const plan = headPlan(model, 'explain');
  const method = resolveMethod(plan, options.method, 'explain');
  const extra = classIndices(model, options.classes);
  const { batch, sizes } = await toModelBatch(model, images, options.signal, 'explain');
  try {
    return await explainBatch(model, plan, batch, sizes, { method, batchSize: options.batchSize, occlusionPatch: options.occlusionPatch, deletionPatch: options.deletionPatch, deletionArea: options.deletionArea, extraClasses: () => extra, signal: options.signal, where: 'explain' });
  } finally {
    batch.dispose();
  }
}
