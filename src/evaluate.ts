/**
 * `evaluate` (step 5) and `predict`: how good the model is, and what it says about new images.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { decodeImageInput, type ImageInput } from './data/dataset';
import { resizeImages } from './data/resize';
import { TransferError, check, throwIfAborted } from './errors';
import { TransferModel } from './transfer-model';
import { gatherBatch, extractActivations } from './train/activations';
import { freezeBoundaryOf } from './train/boundary';
import type { KeptActivations } from './train/kept-activations';
import { toLabelledSource } from './train/source';
import type { LabelledData } from './types';
import { withDefaults } from './util/args';

/** Precision, recall and F1 of one class (one-vs-rest). @category Step 5: Evaluate */
export interface ClassMetrics {
  /** Class name. */
  name: string;
  /** Of the images predicted as this class, the fraction that are. 0 when none was predicted. */
  precision: number;
  /** Of the images of this class, the fraction predicted as it. */
  recall: number;
  /** Harmonic mean of precision and recall. */
  f1: number;
  /** Number of images of this class. */
  support: number;
}

/** One image the model got wrong. @category Step 5: Evaluate */
export interface Misclassified {
  /** Position of the image in the data. */
  index: number;
  /** Where it came from, when the data knows (a file path). */
  source?: string;
  /** True class. */
  actual: string;
  /** Predicted class. */
  predicted: string;
  /** Probability of the predicted class. */
  probability: number;
}

/** What {@link evaluate} returns. @category Step 5: Evaluate */
export interface Evaluation {
  /** Mean cross-entropy. */
  loss: number;
  /** Fraction of images classified correctly. */
  accuracy: number;
  /** Number of images evaluated. */
  count: number;
  /** Class names, in the order of `perClass` and the confusion matrix. */
  classes: string[];
  /** Precision, recall, F1 and support of each class. */
  perClass: ClassMetrics[];
  /** Unweighted mean F1 over classes. */
  macroF1: number;
  /** `confusionMatrix[actual][predicted]`: counts. */
  confusionMatrix: number[][];
  /** Two classes only: area under the ROC curve of P(classes[1]). */
  rocAuc?: number;
  /** The images the model got wrong (at most `maxMisclassified`). */
  misclassified: Misclassified[];
}

/** Defaults of {@link evaluate}. @category Step 5: Evaluate */
export const EVALUATE_DEFAULTS = Object.freeze({
  batchSize: 32,
  maxMisclassified: 100,
});

/** Options of {@link evaluate}. An option given as `undefined` or `null` takes its default. @category Step 5: Evaluate */
export interface EvaluateArgs {
  /** Images per forward pass. @defaultValue {@link EVALUATE_DEFAULTS}.batchSize (32) */
  batchSize?: number;
  /** How many misclassified images to list. @defaultValue {@link EVALUATE_DEFAULTS}.maxMisclassified (100) */
  maxMisclassified?: number;
  /** Stops within one batch; `evaluate` then rejects with an `AbortError`. @defaultValue none */
  signal?: AbortSignal;
  /**
   * The frozen-prefix activations of `data` kept by `fit` (`history.validationActivations`, with
   * `keepValidationActivations: true`): the backbone then does not run. They are checked to belong to this model
   * and this data, with the same frozen layers; otherwise `evaluate` throws.
   * @defaultValue none (the frozen prefix runs over `data`)
   */
  activations?: KeptActivations;
}

/** Area under the ROC curve (ties counted half), by the rank-sum formula. @internal */
export function rocAuc(scores: Float32Array, positives: Uint8Array): number | undefined {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]!] = rank;
    i = j + 1;
  }
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) {
    if (positives[i]) {
      pos++;
      rankSum += ranks[i]!;
    }
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return undefined;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Metrics from probabilities `[n, k]` and true labels. @internal */
export function metricsFromProbabilities(
  probs: Float32Array,
  labels: Int32Array,
  classes: readonly string[],
  sources: (string | undefined)[] = [],
  maxMisclassified = 100,
): Evaluation {
  const k = classes.length;
  const n = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let lossSum = 0;
  let correct = 0;
  const misclassified: Misclassified[] = [];
  for (let i = 0; i < n; i++) {
    let argmax = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c]! > probs[i * k + argmax]!) argmax = c;
    const y = labels[i]!;
    confusion[y]![argmax]!++;
    lossSum -= Math.log(Math.min(Math.max(probs[i * k + y]!, 1e-7), 1 - 1e-7));
    if (argmax === y) correct++;
    else if (misclassified.length < maxMisclassified) {
      misclassified.push({ index: i, source: sources[i], actual: classes[y]!, predicted: classes[argmax]!, probability: probs[i * k + argmax]! });
    }
  }
  const perClass = classes.map((name, c) => {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c]!, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support };
  });
  const result: Evaluation = {
    loss: lossSum / n,
    accuracy: correct / n,
    count: n,
    classes: [...classes],
    perClass,
    macroF1: perClass.reduce((a, m) => a + m.f1, 0) / k,
    confusionMatrix: confusion,
    misclassified,
  };
  if (k === 2) {
    const scores = new Float32Array(n);
    const positives = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      scores[i] = probs[i * 2 + 1]!;
      positives[i] = labels[i] === 1 ? 1 : 0;
    }
    result.rocAuc = rocAuc(scores, positives);
  }
  return result;
}

/**
 * Evaluates `model` on labelled data: loss, accuracy, per-class precision / recall / F1, the confusion matrix,
 * ROC AUC for two classes, and the misclassified images. Runs in inference mode; changes nothing.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const result = await evaluate(model, validation);
 * console.log(result.accuracy, result.perClass, result.confusionMatrix);
 * ```
 */
export async function evaluate(model: TransferModel, data: LabelledData, args: EvaluateArgs = {}): Promise<Evaluation> {
  check(model instanceof TransferModel, `evaluate: expected a TransferModel, got ${Object.prototype.toString.call(model)}.`);
  check(data != null, 'evaluate: data is required: { xs, ys } or an ImageDataset.');
  check(args == null || typeof args === 'object', 'evaluate: options must be an object such as { batchSize: 32 }.');
  const options = withDefaults(args, EVALUATE_DEFAULTS);
  const batchSize = options.batchSize;
  check(Number.isInteger(batchSize) && batchSize > 0, `evaluate: batchSize must be a positive integer, got ${batchSize}.`);
  model.assertUsable('evaluate');
  const source = toLabelledSource(data, model.classes, [model.inputShape[0], model.inputShape[1]], 'evaluate');
  const k = model.numClasses;
  // The frozen prefix runs as in fit (folded, on worker threads when available); with the activations fit kept
  // for this data, the backbone does not run at all.
  const split = freezeBoundaryOf(model);
  const acts = options.activations
    ? await options.activations.activationsFor(model, data, 'evaluate')
    : await extractActivations(split.extractor, split.shapes, source, { batchSize, views: [], signal: options.signal });
  if (acts.n === 0) throw new TransferError('EMPTY_DATA', 'evaluate: no images could be read.');
  const probs = new Float32Array(acts.n * k);
  const rows = Array.from({ length: acts.n }, (_, i) => i);
  for (let s = 0; s < acts.n; s += batchSize) {
    throwIfAborted(options.signal, 'evaluate');
    const idx = rows.slice(s, s + batchSize);
    const p = tf.tidy(() => {
      const inputs = gatherBatch(acts, idx, () => 0);
      const out = split.top.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: false }) as tf.Tensor2D;
      return (k === 2 && out.shape[1] === 1 ? tf.concat([tf.sub(1, out), out], 1) : out) as tf.Tensor2D;
    });
    try {
      probs.set(await p.data(), s * k);
    } finally {
      p.dispose();
    }
  }
  const sources = 'sources' in data && Array.isArray((data as { sources?: unknown }).sources) && (data as { sources: string[] }).sources.length === acts.n
    ? (data as { sources: string[] }).sources
    : [];
  return metricsFromProbabilities(probs, acts.labels, model.classes, sources, options.maxMisclassified);
}

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
}

/** Defaults of {@link predict}. @category Step 5: Evaluate */
export const PREDICT_DEFAULTS = Object.freeze({
  batchSize: 32,
});

/** Options of {@link predict}. An option given as `undefined` or `null` takes its default. @category Step 5: Evaluate */
export interface PredictArgs {
  /** Images per forward pass. @defaultValue {@link PREDICT_DEFAULTS}.batchSize (32) */
  batchSize?: number;
  /** Stops before the next image is decoded or the forward pass starts; `predict` then rejects with an `AbortError`. @defaultValue none */
  signal?: AbortSignal;
}

/** What {@link predict} accepts: a tensor of raw pixels (`[h, w, 3]` or `[n, h, w, 3]`), or images (in Node also local file paths). @category Step 5: Evaluate */
export type PredictInput = tf.Tensor3D | tf.Tensor4D | ImageInput | readonly ImageInput[];

/**
 * Predicts the class of each image. Takes raw RGB pixels `[n, h, w, 3]` or one image `[h, w, 3]` of any size, or
 * images as the browser has them (`HTMLImageElement`, canvas, video frame, `ImageBitmap`, `ImageData`, `Blob`,
 * a URL; in Node, with `tfjs-transfer/node`, a local file path), or a list of those. Images are resized to the model's input (squashed, as in training). Tensors passed
 * in are not disposed.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const [p] = await predict(model, document.querySelector('img')!);
 * console.log(p.label, p.probability, p.probabilities);
 * const many = await predict(model, batchTensor); // one Prediction per image
 * ```
 */
export async function predict(model: TransferModel, images: PredictInput, args: PredictArgs = {}): Promise<Prediction[]> {
  check(model instanceof TransferModel, `predict: expected a TransferModel, got ${Object.prototype.toString.call(model)}.`);
  check(images != null, 'predict: images are required: a tf.Tensor of raw RGB pixels, an image element, a Blob, a URL, or a list of them.');
  check(args == null || typeof args === 'object', 'predict: options must be an object such as { batchSize: 32 }.');
  const options = withDefaults(args, PREDICT_DEFAULTS);
  check(Number.isInteger(options.batchSize) && options.batchSize > 0, `predict: batchSize must be a positive integer, got ${JSON.stringify(options.batchSize)}.`);
  check(options.signal === undefined || typeof options.signal?.aborted === 'boolean', 'predict: signal must be an AbortSignal.');
  throwIfAborted(options.signal, 'predict');
  model.assertUsable('predict');
  const [h, w] = model.inputShape;
  let batch: tf.Tensor4D;
  if (images instanceof tf.Tensor) {
    if ((images.rank !== 3 && images.rank !== 4) || images.shape[images.rank - 1] !== 3) {
      throw new TransferError('SHAPE_MISMATCH', `predict: images must be RGB [h, w, 3] or [n, h, w, 3], got [${images.shape.join(', ')}]. Drop an alpha channel with images.slice([0, 0, 0], [-1, -1, 3]).`);
    }
    batch = tf.tidy(() => {
      const b = (images.rank === 3 ? tf.expandDims(images, 0) : images) as tf.Tensor4D;
      return b.shape[1] === h && b.shape[2] === w ? tf.cast(b, 'float32') : resizeImages(tf.cast(b, 'float32'), [h, w]);
    });
  } else {
    const list = (Array.isArray(images) ? images : [images]) as ImageInput[];
    check(list.length > 0, 'predict: the list of images is empty.');
    const decoded: tf.Tensor3D[] = [];
    try {
      for (const image of list) {
        throwIfAborted(options.signal, 'predict');
        decoded.push(await decodeImageInput(image, options.signal));
      }
      batch = tf.tidy(() => tf.stack(decoded.map((d) => resizeImages(d, [h, w]))) as tf.Tensor4D);
    } finally {
      tf.dispose(decoded);
    }
  }
  let p: tf.Tensor2D | undefined;
  try {
    throwIfAborted(options.signal, 'predict');
    p = model.predictProbabilities(batch, { batchSize: options.batchSize });
    const values = await p.data();
    const k = model.numClasses;
    const out: Prediction[] = [];
    for (let i = 0; i < batch.shape[0]; i++) {
      let best = 0;
      const probabilities: Record<string, number> = {};
      for (let c = 0; c < k; c++) {
        probabilities[model.classes[c]!] = values[i * k + c]!;
        if (values[i * k + c]! > values[i * k + best]!) best = c;
      }
      out.push({ label: model.classes[best]!, index: best, probability: values[i * k + best]!, probabilities });
    }
    return out;
  } finally {
    batch.dispose();
    p?.dispose();
  }
}
