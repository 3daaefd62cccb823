/**
 * `evaluate` (step 5): how good the model is on labelled data.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { TransferError, check, throwIfAborted } from '../errors';
import { TransferModel, classProbabilityColumns, type EvaluationRecord } from '../transfer-model';
import { gatherBatch, extractActivations, flipViews } from '../train/activations';
import { freezeBoundaryOf } from '../train/boundary';
import type { KeptActivations } from '../train/kept-activations';
import { toLabelledSource, type LabelledSource } from '../train/source';
import type { LabelledData } from '../types';
import { withDefaults } from '../util/args';
import { EXPLAIN_DEFAULTS, checkDeletionArea, checkOcclusionPatch, explainBatch, headPlan, resolveMethod, type ExplainMethod } from './explain';
import type { Heatmap } from './heatmap';
import { metricsFromProbabilities, type Evaluation, type TopLoss } from './metrics';
import { checkTta, type TestTimeAugmentation } from './predict';
import { unknownEvaluation, type UnknownImages } from './unknown';

/** Defaults of {@link evaluate}. @category Step 5: Evaluate */
export const EVALUATE_DEFAULTS = Object.freeze({
  /** Images per forward pass. */
  batchSize: 32,
  /** How many misclassified images are listed. */
  maxMisclassified: 100,
  /** How many of the most confident mistakes are listed in `topLosses`. */
  maxTopLosses: 10,
  /** How many confused class pairs are listed. */
  maxConfusedPairs: 10,
  /** How many images of each class near its decision boundary are listed. */
  boundaryImages: 5,
  /** Heatmaps of the top losses: off (they cost a pass over those images and a backward pass through the head). */
  explain: false as boolean | EvaluateExplainArgs,
  /** Test-time augmentation. */
  tta: 'none' as TestTimeAugmentation,
});

/** The `explain` option of {@link evaluate} as an object. @category Step 5: Evaluate */
export interface EvaluateExplainArgs {
  /** How the heatmaps are computed (see {@link ExplainArgs.method}). @defaultValue `'auto'` */
  method?: ExplainMethod;
  /** Method `occlusion`: the square's side in grid cells (see {@link ExplainArgs.occlusionPatch}). @defaultValue {@link EXPLAIN_DEFAULTS}.occlusionPatch (2) */
  occlusionPatch?: number;
  /** Method `deletion`: the square's side in grid cells (see {@link ExplainArgs.deletionPatch}). @defaultValue {@link EXPLAIN_DEFAULTS}.deletionPatch (1) */
  deletionPatch?: number;
  /** Method `deletion`: the share of the grid hidden greedily (see {@link ExplainArgs.deletionArea}). @defaultValue {@link EXPLAIN_DEFAULTS}.deletionArea (0.2) */
  deletionArea?: number;
}

/** Options of {@link evaluate}. An option given as `undefined` or `null` takes its default. @category Step 5: Evaluate */
export interface EvaluateArgs {
  /** Images per forward pass. @defaultValue {@link EVALUATE_DEFAULTS}.batchSize (32) */
  batchSize?: number;
  /** How many misclassified images to list. @defaultValue {@link EVALUATE_DEFAULTS}.maxMisclassified (100) */
  maxMisclassified?: number;
  /** How many of the most confident mistakes to list in `topLosses`. @defaultValue {@link EVALUATE_DEFAULTS}.maxTopLosses (10) */
  maxTopLosses?: number;
  /** How many confused class pairs to list in `confusedPairs`. @defaultValue {@link EVALUATE_DEFAULTS}.maxConfusedPairs (10) */
  maxConfusedPairs?: number;
  /** How many images of each class near its decision boundary to list in `nearBoundary`. @defaultValue {@link EVALUATE_DEFAULTS}.boundaryImages (5) */
  boundaryImages?: number;
  /**
   * Heatmaps for the top losses ({@link explain}): `topLosses[i].heatmaps` holds the predicted and the true class's.
   * `true`, or `{ method }`. Costs a second pass over those images (decoding and the backbone) and a backward pass
   * through the head with Grad-CAM. Needs a backbone with a spatial feature map.
   * @defaultValue {@link EVALUATE_DEFAULTS}.explain (`false`)
   */
  explain?: boolean | EvaluateExplainArgs;
  /** Stops within one batch; `evaluate` then rejects with an `AbortError`. @defaultValue none */
  signal?: AbortSignal;
  /**
   * The frozen-prefix activations of `data` kept by `fit` (`history.validationActivations`, with
   * `keepValidationActivations: true`): the backbone then does not run. They are checked to belong to this model
   * and this data, with the same frozen layers; otherwise `evaluate` throws.
   * @defaultValue none (the frozen prefix runs over `data`)
   */
  activations?: KeptActivations;
  /**
   * Images of none of the model's classes (raw pixels, `{ xs, ys }` or an ImageDataset of any classes; labels are
   * ignored): {@link Evaluation.unknown} then also says how many of them the unknown detector refuses and the ROC
   * AUC of its score. Needs a model with a detector (`model.unknownDetector`).
   * @defaultValue none (with a detector, `unknown` still reports the share of `data` it accepts)
   */
  unknown?: UnknownImages;
  /**
   * Test-time augmentation, as in {@link predict}: `'flip'` scores each image by the mean of its and its mirror
   * image's probabilities (the backbone runs twice per image). The unknown detector's figures still come from the
   * images as they are. Cannot be combined with `activations` (they hold one view).
   * @defaultValue {@link EVALUATE_DEFAULTS}.tta (`'none'`)
   */
  tta?: TestTimeAugmentation;
}

/**
 * Evaluates `model` on labelled data: loss, accuracy, per-class precision / recall / F1, the confusion matrix,
 * ROC AUC (for two classes the binary AUC of P(classes[1]); for more, one-vs-rest per class in
 * `perClass[i].rocAuc` and their macro mean in `rocAuc`), the expected calibration error (`ece`, 15 equal-width
 * bins of the top-class probability) with the data of a reliability diagram (`reliability.bins`), and the
 * misclassified images; and what to look at: the most confident mistakes (`topLosses`, highest loss first, with
 * heatmaps of the predicted and the true class when `explain` is on), the most confused class pairs
 * (`confusedPairs`) and, for every class, its images nearest the decision boundary (`nearBoundary`); with an
 * unknown detector on the model, how it does ({@link Evaluation.unknown}: the share of `data` it accepts, the
 * accuracy on those, and with `unknown` images the share of them it refuses and the ROC AUC). Runs in inference
 * mode; changes no weight. A summary is kept as `model.evaluation` (saved in the model card of {@link save}).
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const result = await evaluate(model, validation);
 * console.log(result.accuracy, result.perClass, result.confusionMatrix);
 * console.log(result.rocAuc, result.ece, result.reliability.bins); // AUC, calibration error, reliability diagram
 * const withOthers = await evaluate(model, validation, { unknown: otherPhotos });
 * console.log(withOthers.unknown?.otherRejected, withOthers.unknown?.rocAuc);
 * console.log(result.topLosses[0], result.confusedPairs, result.nearBoundary[0].images);
 * const explained = await evaluate(model, validation, { explain: true, maxTopLosses: 8 });
 * explained.topLosses[0].heatmaps?.predicted.upsample(); // where it looked when it got it wrong
 * ```
 */
export async function evaluate(model: TransferModel, data: LabelledData, args: EvaluateArgs = {}): Promise<Evaluation> {
  check(model instanceof TransferModel, `evaluate: expected a TransferModel, got ${Object.prototype.toString.call(model)}.`);
  check(data != null, 'evaluate: data is required: { xs, ys } or an ImageDataset.');
  check(args == null || typeof args === 'object', 'evaluate: options must be an object such as { batchSize: 32 }.');
  const options = withDefaults(args, EVALUATE_DEFAULTS);
  const batchSize = options.batchSize;
  check(Number.isInteger(batchSize) && batchSize > 0, `evaluate: batchSize must be a positive integer, got ${batchSize}.`);
  for (const key of ['maxMisclassified', 'maxTopLosses', 'maxConfusedPairs', 'boundaryImages'] as const) {
    const v = options[key];
    check((Number.isInteger(v) || v === Infinity) && v >= 0, `evaluate: ${key} must be a non-negative integer (or Infinity: all), got ${JSON.stringify(v)}.`);
  }
  check(typeof options.explain === 'boolean' || typeof options.explain === 'object', `evaluate: explain must be true, false or { method }, got ${JSON.stringify(options.explain)}.`);
  checkTta(options.tta, 'evaluate');
  check(
    !(options.tta === 'flip' && options.activations),
    "evaluate: tta 'flip' needs the mirror images' activations, and the kept activations hold only the images as they are; drop `activations` (the frozen prefix then runs over both views) or `tta`.",
  );
  model.assertUsable('evaluate');
  // Checked before the data pass, so an unexplainable model fails at once.
  const explainPlan = options.explain ? headPlan(model, 'evaluate') : undefined;
  const explainMethod = explainPlan ? resolveMethod(explainPlan, (typeof options.explain === 'object' && options.explain.method) || 'auto', 'evaluate') : undefined;
  const occlusionPatch = (typeof options.explain === 'object' ? options.explain.occlusionPatch : undefined) ?? EXPLAIN_DEFAULTS.occlusionPatch;
  checkOcclusionPatch(occlusionPatch, 'evaluate: explain.occlusionPatch');
  const deletionPatch = (typeof options.explain === 'object' ? options.explain.deletionPatch : undefined) ?? EXPLAIN_DEFAULTS.deletionPatch;
  checkOcclusionPatch(deletionPatch, 'evaluate: explain.deletionPatch');
  const deletionArea = (typeof options.explain === 'object' ? options.explain.deletionArea : undefined) ?? EXPLAIN_DEFAULTS.deletionArea;
  checkDeletionArea(deletionArea, 'evaluate: explain.deletionArea');
  const source = toLabelledSource(data, model.classes, [model.inputShape[0], model.inputShape[1]], 'evaluate');
  const k = model.numClasses;
  // The frozen prefix runs as in fit (folded, on worker threads when available); with the activations fit kept
  // for this data, the backbone does not run at all.
  const split = freezeBoundaryOf(model);
  const acts = options.activations
    ? await options.activations.activationsFor(model, data, 'evaluate')
    : await extractActivations(split.extractor, split.shapes, source, { batchSize, views: options.tta === 'flip' ? flipViews() : [], signal: options.signal });
  if (acts.n === 0) throw new TransferError('EMPTY_DATA', 'evaluate: no images could be read.');
  const probs = new Float32Array(acts.n * k);
  const rows = Array.from({ length: acts.n }, (_, i) => i);
  for (let s = 0; s < acts.n; s += batchSize) {
    throwIfAborted(options.signal, 'evaluate');
    const idx = rows.slice(s, s + batchSize);
    const p = tf.tidy(() => {
      const ofView = (view: number) => {
        const inputs = gatherBatch(acts, idx, () => view);
        const out = split.top.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: false }) as tf.Tensor2D;
        return classProbabilityColumns(out, k);
      };
      // Every view kept (one, or the image and its mirror with tta 'flip') scores the image: their mean.
      const views = acts.rows.length;
      return views === 1 ? ofView(0) : (tf.div(tf.addN(acts.rows.map((_, v) => ofView(v))), views) as tf.Tensor2D);
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
  const result = metricsFromProbabilities(probs, acts.labels, model.classes, sources, options.maxMisclassified, options);
  if (explainPlan && explainMethod && result.topLosses.length) {
    await explainTopLosses(model, source, result.topLosses, explainPlan, { method: explainMethod, occlusionPatch, deletionPatch, deletionArea }, batchSize, options.signal);
  }
  const unknown = await unknownEvaluation(model, acts, argmaxRows(probs, k), options.unknown, { batchSize, signal: options.signal });
  const evaluation = unknown ? { ...result, unknown } : result;
  model.setEvaluation(evaluationRecord(evaluation));
  return evaluation;
}

function argmaxRows(probs: Float32Array, k: number): Int32Array {
  const n = probs.length / k;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) for (let c = 1; c < k; c++) if (probs[i * k + c]! > probs[i * k + out[i]!]!) out[i] = c;
  return out;
}

/** The summary of an evaluation the model keeps (and its saved model card holds). @internal */
export function evaluationRecord(e: Evaluation): EvaluationRecord {
  return {
    accuracy: e.accuracy,
    loss: e.loss,
    count: e.count,
    macroF1: e.macroF1,
    ece: e.ece,
    ...(e.rocAuc !== undefined ? { rocAuc: e.rocAuc } : {}),
    perClass: e.perClass.map((c) => ({ name: c.name, precision: c.precision, recall: c.recall, f1: c.f1, support: c.support })),
    evaluatedAt: new Date().toISOString(),
  };
}

/**
 * Reads the top losses' images again from the data (in data order, keeping only those rows) and adds their
 * heatmaps: the predicted class's and the true class's.
 */
async function explainTopLosses(
  model: TransferModel,
  source: LabelledSource,
  losses: TopLoss[],
  plan: ReturnType<typeof headPlan>,
  how: { method: Heatmap['method']; occlusionPatch: number; deletionPatch: number; deletionArea: number },
  batchSize: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const wanted = new Map(losses.map((l, j) => [l.index, j]));
  const kept: tf.Tensor3D[] = new Array(losses.length);
  const size: [number, number] = [model.inputShape[0], model.inputShape[1]];
  try {
    let row = 0;
    for await (const batch of source.batches(batchSize, signal)) {
      const n = batch.xs.shape[0];
      for (let i = 0; i < n; i++) {
        const j = wanted.get(row + i);
        if (j !== undefined) kept[j] = tf.tidy(() => tf.squeeze(tf.slice(batch.xs, [i, 0, 0, 0], [1, -1, -1, -1]), [0]) as tf.Tensor3D);
      }
      batch.xs.dispose();
      row += n; // read to the end: the source frees its prefetched batches itself only then
    }
    const present = losses.map((_, j) => j).filter((j) => kept[j]);
    if (!present.length) return;
    const images = tf.stack(present.map((j) => kept[j]!)) as tf.Tensor4D;
    try {
      const both = present.map((j) => [model.classes.indexOf(losses[j]!.predicted), model.classes.indexOf(losses[j]!.actual)]);
      const explained = await explainBatch(model, plan, images, present.map(() => size), {
        ...how,
        batchSize,
        extraClasses: (i) => both[i]!,
        signal,
        where: 'evaluate',
      });
      explained.forEach((e, i) => {
        const loss = losses[present[i]!]!;
        const predicted = e.heatmaps.find((h) => h.label === loss.predicted);
        const truth = e.heatmaps.find((h) => h.label === loss.actual);
        if (predicted && truth) loss.heatmaps = { predicted, actual: truth };
      });
    } finally {
      images.dispose();
    }
  } finally {
    tf.dispose(kept.filter(Boolean));
  }
}
