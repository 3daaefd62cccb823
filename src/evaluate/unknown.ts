/**
 * The unknown detector at step 5: fitting it on a model that has none (`fitUnknownDetector`), and measuring it
 * (`evaluate(model, data, { unknown })`).
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import { splitIndices } from '../data/split';
import { TransferError, check, throwIfAborted } from '../errors';
import { TransferModel } from '../transfer-model';
import { extractActivations, subsetActivations, type Activations } from '../train/activations';
import { freezeBoundaryOf } from '../train/boundary';
import { detectorVectorsFromActivations } from '../train/detector-features';
import { toLabelledSource, toUnlabelledSource } from '../train/source';
import type { LabelledData } from '../types';
import { chooseAndFitUnknownDetector, resolveUnknownArgs, unknownMethodFor, type UnknownDetector, type UnknownDetectorArgs, type UnknownDetectorSummary } from '../unknown-detector';
import { Random } from '../util/random';
import { rocAuc } from './metrics';

/**
 * Images of none of the model's classes, for `evaluate(model, data, { unknown })`: raw pixels `[n, h, w, 3]`,
 * `{ xs, ys }` or an ImageDataset of any classes (labels are ignored), e.g. `imageFolder('photos/other')`.
 * @category Step 5: Evaluate
 */
export type UnknownImages = tf.Tensor4D | LabelledData;

/**
 * How well the unknown detector does, in {@link Evaluation.unknown}: always on the evaluated images of the
 * classes; with `evaluate(..., { unknown: otherImages })` also on images of other things.
 * @category Step 5: Evaluate
 */
export interface UnknownEvaluation {
  /** The detector's threshold (its score is standardised: higher = more like the classes). */
  threshold: number;
  /** Share of the evaluated images of the classes the detector accepts (the rest it calls unknown). */
  accepted: number;
  /** Accuracy on the accepted images of the classes (`undefined` when none is accepted). */
  acceptedAccuracy: number | undefined;
  /** Number of other images given (0 without the `unknown` option). */
  otherImages: number;
  /** Share of the other images accepted, i.e. wrongly taken for one of the classes (`undefined` without them). */
  otherAccepted: number | undefined;
  /** Share of the other images refused as unknown: `1 - otherAccepted`. */
  otherRejected: number | undefined;
  /** ROC AUC of the score, images of the classes against the other images (1 = perfectly separated). */
  rocAuc: number | undefined;
  /** The detector's scores in {@link UNKNOWN_HISTOGRAM_BINS} bins: the images of the classes, and the other images when given. */
  histogram: UnknownScoreHistogram;
}

/** Number of equal-width bins of {@link UnknownScoreHistogram}. @category Step 5: Evaluate */
export const UNKNOWN_HISTOGRAM_BINS = 30;

/**
 * The unknown detector's scores binned, for a histogram of in-distribution against other images with the threshold
 * (the report draws it). @category Step 5: Evaluate
 */
export interface UnknownScoreHistogram {
  /** The `bins + 1` bin edges, lowest first, spanning every score and the threshold. Bin `i` is `[edges[i], edges[i + 1])` (the last bin also holds its upper edge). */
  edges: number[];
  /** How many images of the classes (the evaluated data) fall in each bin. */
  classes: number[];
  /** How many other images (the `unknown` option) fall in each bin; `undefined` without them. */
  other: number[] | undefined;
}

/** The histogram of `own` (and `other`) scores in equal-width bins spanning them and `threshold`. @internal */
export function scoreHistogram(own: ArrayLike<number>, other: ArrayLike<number> | undefined, threshold: number, bins = UNKNOWN_HISTOGRAM_BINS): UnknownScoreHistogram {
  let lo = threshold;
  let hi = threshold;
  for (const list of [own, other ?? []]) {
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (!Number.isFinite(s)) continue;
      if (s < lo) lo = s;
      if (s > hi) hi = s;
    }
  }
  if (hi - lo < 1e-9) {
    lo -= 0.5;
    hi += 0.5;
  }
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + i * width));
  const count = (list: ArrayLike<number>): number[] => {
    const counts = new Array<number>(bins).fill(0);
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (!Number.isFinite(s)) continue;
      counts[Math.min(bins - 1, Math.floor((s - lo) / width))]!++;
    }
    return counts;
  };
  return { edges, classes: count(own), other: other === undefined ? undefined : count(other) };
}

/** The share of `scores` at or above `threshold`. */
function shareAtLeast(scores: Float64Array, threshold: number): number {
  let c = 0;
  for (const s of scores) if (s >= threshold) c++;
  return scores.length ? c / scores.length : 0;
}

/**
 * The detector's figures on `acts` (images of the classes, with their predicted classes `predicted`) and, when
 * given, on `other`. @internal
 */
export async function unknownEvaluation(
  model: TransferModel,
  acts: Activations,
  predicted: Int32Array,
  other: UnknownImages | undefined,
  args: { batchSize: number; signal: AbortSignal | undefined },
): Promise<UnknownEvaluation | undefined> {
  const detector = model.detector;
  if (!detector) {
    if (other === undefined) return undefined;
    throw new TransferError('NOT_SUPPORTED', 'evaluate: the model has no unknown detector to measure; fit one with fitUnknownDetector(model, trainingData), or train with fit(..., { validationSplit: 0.2 }).');
  }
  const split = freezeBoundaryOf(model);
  const own = detector.score(...vectorsOf(await detectorVectorsFromActivations(model, split, acts, undefined, args.batchSize)));
  const threshold = detector.record.threshold;
  let accepted = 0;
  let right = 0;
  own.forEach((s, i) => {
    if (s < threshold) return;
    accepted++;
    if (predicted[i] === acts.labels[i]) right++;
  });
  const result: UnknownEvaluation = {
    threshold,
    accepted: acts.n ? accepted / acts.n : 0,
    acceptedAccuracy: accepted ? right / accepted : undefined,
    otherImages: 0,
    otherAccepted: undefined,
    otherRejected: undefined,
    rocAuc: undefined,
    histogram: scoreHistogram(own, undefined, threshold),
  };
  if (other === undefined) return result;
  throwIfAborted(args.signal, 'evaluate');
  const source = toUnlabelledSource(other, [model.inputShape[0], model.inputShape[1]], 'evaluate: unknown');
  const otherActs = await extractActivations(split.extractor, split.shapes, source, { batchSize: args.batchSize, views: [], signal: args.signal });
  if (otherActs.n === 0) throw new TransferError('EMPTY_DATA', 'evaluate: none of the unknown images could be read.');
  const theirs = detector.score(...vectorsOf(await detectorVectorsFromActivations(model, split, otherActs, undefined, args.batchSize)));
  const scores = new Float32Array(own.length + theirs.length);
  scores.set(own);
  scores.set(theirs, own.length);
  const positives = new Uint8Array(scores.length);
  positives.fill(1, 0, own.length);
  result.otherImages = theirs.length;
  result.otherAccepted = shareAtLeast(theirs, threshold);
  result.otherRejected = 1 - result.otherAccepted;
  result.rocAuc = rocAuc(scores, positives);
  result.histogram = scoreHistogram(own, theirs, threshold);
  return result;
}

const vectorsOf = (v: { values: Float32Array; n: number }): [Float32Array, number] => [v.values, v.n];

/** Defaults of {@link fitUnknownDetector} beyond the detector's own ({@link UNKNOWN_DETECTOR_DEFAULTS}). @category Step 5: Evaluate */
export const FIT_UNKNOWN_DETECTOR_DEFAULTS = Object.freeze({
  /** Share of `data` held out to choose the threshold when no `validationData` is given. */
  validationSplit: 0.2,
  /** Images per forward pass. */
  batchSize: 32,
  /** Seed of the split and of the k-means seeding. */
  seed: 1,
});

/** Options of {@link fitUnknownDetector}. An option given as `undefined` or `null` takes its default. @category Step 5: Evaluate */
export interface FitUnknownDetectorArgs extends UnknownDetectorArgs {
  /**
   * Images of the classes the prototypes never see, on which the threshold is chosen (e.g. the validation data).
   * @defaultValue none: `validationSplit` of `data` is held out
   */
  validationData?: LabelledData;
  /** Share of `data` held out (stratified) when no `validationData` is given. @defaultValue {@link FIT_UNKNOWN_DETECTOR_DEFAULTS}.validationSplit (0.2) */
  validationSplit?: number;
  /** Images per forward pass. @defaultValue {@link FIT_UNKNOWN_DETECTOR_DEFAULTS}.batchSize (32) */
  batchSize?: number;
  /** Seed of the split and of the k-means seeding. @defaultValue {@link FIT_UNKNOWN_DETECTOR_DEFAULTS}.seed (1) */
  seed?: number;
  /** Stops within one batch; the model keeps the detector it had. @defaultValue none */
  signal?: AbortSignal;
}

/**
 * Fits the model's unknown detector (`fit` and {@link transferLearn} do it after training; call this for a model
 * trained without validation images, or loaded without a detector, or to change its options). The method
 * (`method`, default `auto`): `pretrainedClasses` when the backbone still has its own pretrained classifier (loaded
 * with one, e.g. MobileNetV2 with its ImageNet top, and not fine-tuned since; a model read by `loadModel` has
 * none): the score is how expected the image's distribution over those classes is, given the mean distribution
 * of `data`'s images. Otherwise `prototypes`: per class, `prototypesPerClass` unit vectors found by spherical
 * k-means over the pooled backbone features of `data`'s images; the score of an image is the mean, over the
 * prepared views (`centring`), of its highest cosine similarity to any prototype. Either score is standardised
 * on the held-out images, and the threshold accepts `targetAcceptance` of them. The detector is stored on the
 * model and saved with it (within `maxBytes`). See `docs/unknown.md` for the detectors measured and why these.
 *
 * @returns What `model.unknownDetector` now reports.
 * @throws TransferError `EMPTY_DATA` when a class has no training image or nothing is held out; `INVALID_ARGUMENT`
 *   when `method: 'pretrainedClasses'` cannot be used (before any image is read); `ABORTED`.
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const detector = await fitUnknownDetector(model, data.train, { validationData: data.validation });
 * const [p] = await predict(model, photo);
 * if (p.unknown) console.log('none of my classes');
 * ```
 */
export async function fitUnknownDetector(model: TransferModel, data: LabelledData, args: FitUnknownDetectorArgs = {}): Promise<UnknownDetectorSummary> {
  check(model instanceof TransferModel, `fitUnknownDetector: expected a TransferModel, got ${Object.prototype.toString.call(model)}.`);
  check(data != null, 'fitUnknownDetector: data is required: the labelled training images, { xs, ys } or an ImageDataset.');
  check(args == null || typeof args === 'object', 'fitUnknownDetector: options must be an object such as { targetAcceptance: 0.95 }.');
  const a = args ?? {};
  const detectorArgs = resolveUnknownArgs(a, 'fitUnknownDetector');
  const batchSize = a.batchSize ?? FIT_UNKNOWN_DETECTOR_DEFAULTS.batchSize;
  const seed = a.seed ?? FIT_UNKNOWN_DETECTOR_DEFAULTS.seed;
  const validationSplit = a.validationSplit ?? FIT_UNKNOWN_DETECTOR_DEFAULTS.validationSplit;
  check(Number.isInteger(batchSize) && batchSize > 0, `fitUnknownDetector: batchSize must be a positive integer, got ${JSON.stringify(batchSize)}.`);
  check(typeof validationSplit === 'number' && validationSplit > 0 && validationSplit < 1, `fitUnknownDetector: validationSplit must be in (0, 1), got ${JSON.stringify(validationSplit)}.`);
  model.assertUsable('fitUnknownDetector');
  // A method that cannot be used fails before any extraction.
  unknownMethodFor(detectorArgs, model.backbone.pretrainedClassifier, model.headSpec.pooling, model.backbone.featureShape[model.backbone.featureShape.length - 1]!, 'fitUnknownDetector');
  const split = freezeBoundaryOf(model);
  const size: [number, number] = [model.inputShape[0], model.inputShape[1]];
  const extract = (d: LabelledData, where: string) =>
    extractActivations(split.extractor, split.shapes, toLabelledSource(d, model.classes, size, where), { batchSize, views: [], signal: a.signal });
  let train = await extract(data, 'fitUnknownDetector');
  let held: Activations;
  if (a.validationData != null) {
    held = await extract(a.validationData, 'fitUnknownDetector: validationData');
  } else {
    const parts = splitIndices(train.labels, validationSplit, new Random(seed ^ 0x5bd1e995));
    if (parts.validation.length === 0 || parts.train.length === 0) throw new TransferError('EMPTY_DATA', `fitUnknownDetector: validationSplit ${validationSplit} of ${train.n} images leaves an empty part; give more images or validationData.`);
    held = subsetActivations(train, parts.validation);
    train = subsetActivations(train, parts.train);
  }
  if (held.n === 0) throw new TransferError('EMPTY_DATA', 'fitUnknownDetector: no held-out image to choose the threshold on.');
  const missing = model.classes.filter((_, c) => !train.labels.includes(c));
  if (missing.length) throw new TransferError('EMPTY_DATA', `fitUnknownDetector: no training image of ${missing.map((c) => `"${c}"`).join(', ')}; every class needs images to have prototypes.`);
  const detector: UnknownDetector = chooseAndFitUnknownDetector(
    await detectorVectorsFromActivations(model, split, train, undefined, batchSize),
    await detectorVectorsFromActivations(model, split, held, undefined, batchSize),
    model.numClasses,
    detectorArgs,
    seed,
    model.backbone.pretrainedClassifier,
    model.headSpec.pooling,
    'fitUnknownDetector',
  );
  throwIfAborted(a.signal, 'fitUnknownDetector');
  model.setUnknownDetector(detector);
  return detector.summary();
}
