/**
 * The unknown detector: does an image look like any of the model's classes at all? Two methods, one threshold
 * rule. `pretrainedClasses` (when the backbone has its own pretrained classifier, e.g. MobileNetV2's ImageNet top,
 * and has not been fine-tuned): how expected the image's distribution over the pretrained classes is, given the
 * training images' (`unknown-classes.ts`). `prototypes` (any backbone): per-class cosine prototypes of the pooled
 * backbone features (spherical k-means), in two views (as is, and centred by the training mean), whose
 * standardised similarities are averaged into one score. Either way a threshold chosen on held-out images of the
 * classes. Pure JavaScript on plain arrays: no tfjs kernel, so every backend and the browser score alike.
 *
 * Why this design, and the detectors it was measured against: `docs/unknown.md`.
 * @module
 */
import type { PretrainedClassifier } from './backbone/pretrained-classifier';
import { TransferError } from './errors';
import { fitPretrainedClasses, pretrainedClassesBytes, pretrainedClassesProblem, PretrainedClassesScorer, type PretrainedClassesRecord } from './unknown-classes';
import { decodeFloat16, encodeFloat16 } from './util/float16';
import { decodeRows, encodeRows, ROW_ENCODINGS, type RowEncoding } from './util/packed-rows';
import { Random } from './util/random';

/**
 * How the features are prepared before the cosine similarity: `none` (L2-normalised as they are) or `mean`
 * (the training images' mean subtracted first). `both` (the default) averages the two scores.
 * @category Step 5: Evaluate
 */
export type UnknownCentring = 'both' | 'none' | 'mean';

/**
 * How the detector scores an image. `pretrainedClasses`: how expected the image's distribution over the backbone's
 * own pretrained classes (MobileNetV2's 1000 ImageNet classes) is, given the training images'; it needs a backbone
 * loaded with its classifier on top of the features, not fine-tuned, and features pooled by average (the
 * default head). `prototypes`: cosine similarity to per-class prototypes of the pooled features; any backbone.
 * `auto` (the default): `pretrainedClasses` where it can be used, `prototypes` otherwise. Why: `docs/unknown.md`.
 * @category Step 5: Evaluate
 */
export type UnknownMethod = 'auto' | 'pretrainedClasses' | 'prototypes';

/** Defaults of the unknown detector (`fit`'s `unknown` option, {@link fitUnknownDetector}). @category Step 5: Evaluate */
export const UNKNOWN_DETECTOR_DEFAULTS = Object.freeze({
  /** How the detector scores: the backbone's pretrained classes where possible, else prototypes. */
  method: 'auto' as UnknownMethod,
  /** Share of held-out images of the classes the threshold accepts. */
  targetAcceptance: 0.95 as number,
  /** Prototypes per class (fewer when the size budget or the class's images call for it). */
  prototypesPerClass: 16 as number,
  /** Which prepared features the score uses. */
  centring: 'both' as UnknownCentring,
  /** Most bytes the detector may add to a saved model's `model.json`. */
  maxBytes: 1_000_000 as number,
  /** k-means iterations per class. */
  iterations: 25 as number,
});

/**
 * Options of the unknown detector: `fit(model, data, { unknown: { ... } })`, `transferLearn({ unknown: { ... } })`
 * and {@link fitUnknownDetector}. An option given as `undefined` or `null` takes its default.
 * @category Step 5: Evaluate
 */
export interface UnknownDetectorArgs {
  /**
   * How the detector scores an image: `auto` uses the backbone's own pretrained classes when the backbone was
   * loaded with its classifier (e.g. the catalog's MobileNetV2 with its ImageNet top), is not fine-tuned and the
   * head pools by average, and per-class prototypes otherwise. `pretrainedClasses` throws when it cannot be used.
   * @defaultValue {@link UNKNOWN_DETECTOR_DEFAULTS}.method ('auto')
   */
  method?: UnknownMethod;
  /**
   * Share of held-out images of the classes that the threshold accepts (the rest are the price of refusing other
   * things). Higher keeps more real images of the classes, and lets more other things through.
   * @defaultValue {@link UNKNOWN_DETECTOR_DEFAULTS}.targetAcceptance (0.95)
   */
  targetAcceptance?: number;
  /** Prototypes per class (`prototypes` method). @defaultValue {@link UNKNOWN_DETECTOR_DEFAULTS}.prototypesPerClass (16) */
  prototypesPerClass?: number;
  /**
   * `both` averages the scores of the features as they are and centred by the training mean (the measured best
   * compromise); `none` refuses other things most strictly but also more photos of the classes taken elsewhere;
   * `mean` keeps those but suits narrow domains only (see `docs/unknown.md`).
   * @defaultValue {@link UNKNOWN_DETECTOR_DEFAULTS}.centring ('both')
   */
  centring?: UnknownCentring;
  /** Most bytes the detector may add to `model.json` (prototypes per class are capped to fit). @defaultValue {@link UNKNOWN_DETECTOR_DEFAULTS}.maxBytes (1 MB) */
  maxBytes?: number;
  /** k-means iterations per class. @defaultValue {@link UNKNOWN_DETECTOR_DEFAULTS}.iterations (25) */
  iterations?: number;
}

/** One prepared view of the features: its prototypes and the statistics that standardise its score. @internal */
export interface UnknownViewRecord {
  centring: 'none' | 'mean';
  /** `[prototypes, dim]` unit vectors, base64 in `encoding`. */
  prototypes: string;
  /** How `prototypes` is encoded (`util/packed-rows.ts`); absent (files before 0.2.0's quantized saves) means float16. */
  encoding?: RowEncoding;
  /** Class index of each prototype. */
  prototypeClass: number[];
  /** Mean and standard deviation of this view's similarity over the held-out images. */
  scoreMean: number;
  scoreStd: number;
}

/**
 * The score statistics and threshold of the prototypes stored in a more compact encoding, fitted on the same
 * held-out images (each view's prototypes encoded from the previous encoding's values: float16 → uint8 → uint4).
 * @internal
 */
export interface CompactCalibration {
  views: Array<{ scoreMean: number; scoreStd: number }>;
  threshold: number;
}

/** What a saved model stores for the `prototypes` method (metadata `tfjsTransfer.unknown`). @internal */
export interface PrototypeDetectorRecord {
  method: 'prototypes';
  dim: number;
  classes: number;
  /** Training mean of the features, `[dim]`, float16 base64 (used by the `mean` view). */
  mean: string;
  views: UnknownViewRecord[];
  threshold: number;
  targetAcceptance: number;
  trainingImages: number;
  heldOutImages: number;
  /** Calibrations of the encodings more compact than the views' (what {@link UnknownDetector.reencoded} uses). */
  compact?: Partial<Record<'uint8' | 'uint4', CompactCalibration>>;
}

/** What a saved model stores (metadata `tfjsTransfer.unknown`), by method. @internal */
export type UnknownDetectorRecord = PrototypeDetectorRecord | PretrainedClassesRecord;

/** What every {@link UnknownDetectorSummary} tells. @category Step 5: Evaluate */
export interface UnknownDetectorSummaryBase {
  /** Length of the feature vectors (e.g. 1280 for MobileNetV2). */
  dim: number;
  /** Images scoring below this are "none of the classes". */
  threshold: number;
  /** Share of the held-out images the threshold was chosen to accept. */
  targetAcceptance: number;
  /** Images the detector was fitted on. */
  trainingImages: number;
  /** Held-out images the threshold was chosen on. */
  heldOutImages: number;
  /** Bytes the detector adds to `model.json`. */
  bytes: number;
}

/**
 * The `pretrainedClasses` detector: how expected an image's distribution over the backbone's own pretrained
 * classes is, given the training images'. @category Step 5: Evaluate
 */
export interface PretrainedClassesDetectorSummary extends UnknownDetectorSummaryBase {
  /** The backbone's own pretrained classes. */
  method: 'pretrainedClasses';
  /** Number of pretrained classes (1000 for ImageNet). */
  pretrainedClasses: number;
  /** Temperature of the pretrained classifier's softmax. */
  temperature: number;
}

/**
 * What `model.unknownDetector` tells about the model's unknown detector (fitted by `fit`, {@link transferLearn} or
 * {@link fitUnknownDetector}, saved with the model): a {@link PretrainedClassesDetectorSummary} or a
 * {@link PrototypeDetectorSummary}, told apart by `method`.
 * @category Step 5: Evaluate
 */
export type UnknownDetectorSummary = PretrainedClassesDetectorSummary | PrototypeDetectorSummary;

/** The `prototypes` detector: per-class cosine prototypes of the pooled backbone features. @category Step 5: Evaluate */
export interface PrototypeDetectorSummary extends UnknownDetectorSummaryBase {
  /** Per-class cosine prototypes of the pooled backbone features. */
  method: 'prototypes';
  /** The prepared features the score averages. */
  centring: UnknownCentring;
  /** Prototypes per class (the most any class has). */
  prototypesPerClass: number;
  /**
   * How the prototypes are stored: `float16` as fitted; `uint8` (8-bit codes) in an artefact saved with
   * `quantize: 'float16'`, `uint4` in one saved with `quantize: 'uint8'`, so the detector shrinks with the weights.
   */
  prototypeEncoding: 'float16' | 'uint8' | 'uint4';
}

/** Feature vectors with class labels: `values` is `[n, dim]` row-major. @internal */
export interface LabelledVectors {
  values: Float32Array;
  labels: Int32Array;
  n: number;
  dim: number;
}

/** Unit rows of `x - centre` (or of `x` without a centre). */
function normalisedRows(x: Float32Array, n: number, dim: number, centre?: Float32Array): Float32Array {
  const out = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    const o = r * dim;
    let s = 0;
    for (let i = 0; i < dim; i++) {
      const v = x[o + i]! - (centre ? centre[i]! : 0);
      out[o + i] = v;
      s += v * v;
    }
    const inv = 1 / Math.sqrt(s + 1e-12);
    for (let i = 0; i < dim; i++) out[o + i]! *= inv;
  }
  return out;
}

function dotRow(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let i = 0; i < dim; i++) s += a[ao + i]! * b[bo + i]!;
  return s;
}

/** Spherical k-means (cosine) of the unit rows `rows` of `X`, k-means++ seeding: `k` unit centroids. */
function sphericalKMeans(X: Float32Array, rows: number[], dim: number, k: number, iterations: number, rng: Random): Float32Array[] {
  const first = rows[rng.int(rows.length)]!;
  const cent: Float32Array[] = [X.slice(first * dim, (first + 1) * dim)];
  const best = new Float64Array(rows.length).fill(-Infinity);
  while (cent.length < k) {
    const last = cent[cent.length - 1]!;
    let total = 0;
    const weight = rows.map((r, j) => {
      best[j] = Math.max(best[j]!, dotRow(last, 0, X, r * dim, dim));
      const d = Math.max(0, 1 - best[j]!) ** 2;
      total += d;
      return d;
    });
    if (total === 0) break; // fewer distinct images than prototypes
    let u = rng.next() * total;
    let pick = 0;
    for (; pick < weight.length - 1; pick++) {
      u -= weight[pick]!;
      if (u <= 0) break;
    }
    cent.push(X.slice(rows[pick]! * dim, (rows[pick]! + 1) * dim));
  }
  for (let it = 0; it < iterations; it++) {
    const sums = cent.map(() => new Float64Array(dim));
    for (const r of rows) {
      let b = 0;
      let bv = -Infinity;
      for (let j = 0; j < cent.length; j++) {
        const v = dotRow(cent[j]!, 0, X, r * dim, dim);
        if (v > bv) [bv, b] = [v, j];
      }
      const s = sums[b]!;
      for (let i = 0; i < dim; i++) s[i] += X[r * dim + i]!;
    }
    sums.forEach((s, j) => {
      let nn = 0;
      for (let i = 0; i < dim; i++) nn += s[i]! * s[i]!;
      if (nn > 0) cent[j] = Float32Array.from(s, (v) => v / Math.sqrt(nn));
    });
  }
  return cent;
}

/** Base64 length of `values` float16 numbers. */
const encodedBytes = (values: number): number => Math.ceil((values * 2) / 3) * 4;

function viewsOf(centring: UnknownCentring): Array<'none' | 'mean'> {
  return centring === 'both' ? ['none', 'mean'] : [centring];
}

/** Prototypes per class within the byte budget (at least 1). */
function prototypesWithin(args: Required<UnknownDetectorArgs>, classes: number, dim: number): number {
  const views = viewsOf(args.centring).length;
  const perPrototype = encodedBytes(dim) * views * classes;
  const fixed = encodedBytes(dim) + 2048; // the mean, and the JSON around the numbers
  return Math.max(1, Math.min(args.prototypesPerClass, Math.floor((args.maxBytes - fixed) / perPrototype)));
}

/** The score of each image in `x` under one view (max cosine similarity to its prototypes, not standardised). */
function viewSimilarity(x: Float32Array, n: number, dim: number, prototypes: Float32Array, centre: Float32Array | undefined): Float64Array {
  const q = normalisedRows(x, n, dim, centre);
  const m = prototypes.length / dim;
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let best = -Infinity;
    for (let j = 0; j < m; j++) best = Math.max(best, dotRow(q, r * dim, prototypes, j * dim, dim));
    out[r] = best;
  }
  return out;
}

/**
 * The threshold that accepts `target` of `scores` (an image is accepted when its score is at least the threshold):
 * halfway between the lowest accepted score and the highest refused one, so that rounding differences between
 * backends or code paths do not flip the images at the edge. @internal
 */
export function thresholdFor(scores: ArrayLike<number>, target: number): number {
  const sorted = Float64Array.from(scores).sort();
  const i = Math.min(sorted.length - 1, Math.max(0, Math.floor((1 - target) * sorted.length + 1e-9)));
  if (i === 0) return sorted[0]! - 1e-6 * Math.max(1, Math.abs(sorted[0]!));
  return (sorted[i - 1]! + sorted[i]!) / 2;
}

function meanStd(v: Float64Array): { mean: number; std: number } {
  let m = 0;
  for (const x of v) m += x;
  m /= v.length;
  let s = 0;
  for (const x of v) s += (x - m) ** 2;
  return { mean: m, std: Math.sqrt(s / v.length) || 1e-6 };
}

/** The views' score statistics and the threshold of `views`' prototypes, from the held-out images. */
function calibrate(base: Omit<PrototypeDetectorRecord, 'threshold'>, heldOut: LabelledVectors): PrototypeDetectorRecord {
  const plain = new UnknownDetector({ ...base, threshold: 0 });
  const views = base.views.map((v, i) => {
    const { mean, std } = meanStd(plain.viewScores(i, heldOut.values, heldOut.n));
    return { ...v, scoreMean: mean, scoreStd: std };
  });
  const standardised = new UnknownDetector({ ...base, views, threshold: 0 });
  return { ...base, views, threshold: thresholdFor(standardised.score(heldOut.values, heldOut.n), base.targetAcceptance) };
}

/** Per-class spherical k-means prototypes of one view of `train`, flattened `[prototypes, dim]`. */
function viewPrototypes(train: LabelledVectors, classes: number, k: number, centre: Float32Array | undefined, args: Required<UnknownDetectorArgs>, seed: number): { flat: Float32Array; prototypeClass: number[] } {
  const { dim } = train;
  const X = normalisedRows(train.values, train.n, dim, centre);
  const protos: Float32Array[] = [];
  const prototypeClass: number[] = [];
  const rng = new Random(seed);
  for (let c = 0; c < classes; c++) {
    const rows: number[] = [];
    for (let r = 0; r < train.n; r++) if (train.labels[r] === c) rows.push(r);
    if (rows.length === 0) continue;
    for (const p of sphericalKMeans(X, rows, dim, Math.min(k, rows.length), args.iterations, rng)) {
      protos.push(p);
      prototypeClass.push(c);
    }
  }
  const flat = new Float32Array(protos.length * dim);
  protos.forEach((p, i) => flat.set(p, i * dim));
  return { flat, prototypeClass };
}

/**
 * Fits the detector: prototypes from `train`, the standardisation and the threshold from `heldOut` (images of the
 * classes the prototypes never saw), for the float16 prototypes and for their 8-bit and 4-bit encodings (which
 * quantized saves store). @internal
 */
export function fitPrototypeDetector(train: LabelledVectors, heldOut: LabelledVectors, classes: number, args: Required<UnknownDetectorArgs>, seed: number): UnknownDetector<PrototypeDetectorRecord> {
  const { dim } = train;
  const mean = new Float32Array(dim);
  for (let r = 0; r < train.n; r++) for (let i = 0; i < dim; i++) mean[i]! += train.values[r * dim + i]! / train.n;
  const meanRounded = decodeFloat16(encodeFloat16(mean), dim)!; // score with what is stored
  const k = prototypesWithin(args, classes, dim);
  const views: UnknownViewRecord[] = viewsOf(args.centring).map((centring) => {
    const { flat, prototypeClass } = viewPrototypes(train, classes, k, centring === 'mean' ? meanRounded : undefined, args, seed);
    return { centring, prototypes: encodeFloat16(flat), prototypeClass, scoreMean: 0, scoreStd: 1 };
  });
  const base = {
    method: 'prototypes' as const, dim, classes, mean: encodeFloat16(mean), views,
    targetAcceptance: args.targetAcceptance, trainingImages: train.n, heldOutImages: heldOut.n,
  };
  let current = calibrate(base, heldOut);
  const record: PrototypeDetectorRecord = { ...current, compact: {} };
  for (const encoding of ['uint8', 'uint4'] as const) {
    current = calibrate({ ...current, views: new UnknownDetector(current).encodedViews(encoding) }, heldOut);
    record.compact![encoding] = { views: current.views.map((v) => ({ scoreMean: v.scoreMean, scoreStd: v.scoreStd })), threshold: current.threshold };
  }
  return new UnknownDetector<PrototypeDetectorRecord>(record);
}

/**
 * Fits the `pretrainedClasses` detector: the training images' mean distribution over `classifier`'s classes from
 * `train`, the standardisation and the threshold from `heldOut`. @internal
 */
export function fitPretrainedClassesDetector(train: LabelledVectors, heldOut: LabelledVectors, classes: number, classifier: PretrainedClassifier, args: Required<UnknownDetectorArgs>): UnknownDetector<PretrainedClassesRecord> {
  const { heldOutScores, ...base } = fitPretrainedClasses(train, heldOut, classes, classifier, args.targetAcceptance);
  return new UnknownDetector<PretrainedClassesRecord>({ ...base, threshold: thresholdFor(heldOutScores, args.targetAcceptance) });
}

/**
 * The method `auto` resolves to for features of `dim` values pooled by `pooling`, with the backbone's
 * pretrained classifier `classifier` (if any); throws `INVALID_ARGUMENT` when `pretrainedClasses` is asked for
 * and cannot be used, saying why. @internal
 */
export function unknownMethodFor(args: Required<UnknownDetectorArgs>, classifier: PretrainedClassifier | undefined, pooling: string, dim: number, where: string): 'pretrainedClasses' | 'prototypes' {
  if (args.method === 'prototypes') return 'prototypes';
  const why =
    classifier === undefined ? "the backbone has no pretrained classifier above its features (it was loaded without one, or its layers were fine-tuned)"
    : pooling !== 'avg' && pooling !== 'flatten' ? `the head pools by ${pooling}; the pretrained classifier takes average-pooled features`
    : classifier.dim !== dim ? `the pretrained classifier takes ${classifier.dim} features, the pooled features have ${dim}`
    : pretrainedClassesBytes(classifier.units, classifier.dim) > args.maxBytes ? `it needs ${pretrainedClassesBytes(classifier.units, classifier.dim)} bytes, more than unknown.maxBytes (${args.maxBytes})`
    : undefined;
  if (why === undefined) return 'pretrainedClasses';
  if (args.method === 'pretrainedClasses') throw new TransferError('INVALID_ARGUMENT', `${where}: unknown.method 'pretrainedClasses' cannot be used: ${why}. Use method 'prototypes' or 'auto'.`);
  return 'prototypes';
}

/**
 * The detector `args.method` asks for, fitted: `pretrainedClasses` with `classifier` where {@link unknownMethodFor}
 * allows, per-class prototypes otherwise. @internal
 */
export function chooseAndFitUnknownDetector(
  train: LabelledVectors,
  heldOut: LabelledVectors,
  classes: number,
  args: Required<UnknownDetectorArgs>,
  seed: number,
  classifier: PretrainedClassifier | undefined,
  pooling: string,
  where: string,
): UnknownDetector {
  return unknownMethodFor(args, classifier, pooling, train.dim, where) === 'pretrainedClasses'
    ? fitPretrainedClassesDetector(train, heldOut, classes, classifier!, args)
    : fitPrototypeDetector(train, heldOut, classes, args, seed);
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/**
 * The detector of a record read from a file, or `undefined` when the record is absent; throws `MODEL_INVALID`
 * naming what is wrong when it is present but malformed (a damaged detector must not silently accept everything).
 * @internal
 */
export function unknownDetectorFromRecord(value: unknown, classes: number, where: string): UnknownDetector | undefined {
  if (value == null) return undefined;
  const bad = (why: string): never => {
    throw new TransferError('MODEL_INVALID', `${where}: the unknown detector stored with the model is damaged (${why}). Fit it again with fitUnknownDetector(model, data), or delete "unknown" from model.json's tfjsTransfer metadata.`);
  };
  if (typeof value !== 'object') bad('not an object');
  const r = value as Record<string, unknown>;
  if (r.method !== 'prototypes' && r.method !== 'pretrainedClasses') bad(`unknown method ${JSON.stringify(r.method)}`);
  if (!Number.isInteger(r.dim) || (r.dim as number) <= 0) bad('dim is not a positive integer');
  if (r.classes !== classes) bad(`it was fitted for ${String(r.classes)} classes, the model has ${classes}`);
  for (const f of ['threshold', 'targetAcceptance', 'trainingImages', 'heldOutImages'] as const) if (!finite(r[f])) bad(`${f} is not a number`);
  if (r.method === 'pretrainedClasses') {
    const problem = pretrainedClassesProblem(r);
    if (problem) bad(problem);
    return new UnknownDetector(JSON.parse(JSON.stringify(r)) as PretrainedClassesRecord);
  }
  const dim = r.dim as number;
  if (!decodeFloat16(r.mean, dim)) bad('mean is not a float16 vector of dim values');
  if (!Array.isArray(r.views) || r.views.length === 0 || r.views.length > 2) bad('views must be one or two');
  for (const v of r.views as unknown[]) {
    const view = v as Record<string, unknown>;
    if (view == null || typeof view !== 'object' || (view.centring !== 'none' && view.centring !== 'mean')) bad('a view has no valid centring');
    const cls = view.prototypeClass;
    if (!Array.isArray(cls) || cls.length === 0 || !cls.every((c) => Number.isInteger(c) && c >= 0 && c < classes)) bad('prototypeClass is not a list of class indices');
    const encoding = view.encoding ?? 'float16';
    if (!ROW_ENCODINGS.includes(encoding as RowEncoding)) bad(`a view's encoding ${JSON.stringify(encoding)} is none of ${ROW_ENCODINGS.join(', ')}`);
    if (!decodeRows(view.prototypes, (cls as number[]).length, dim, encoding as RowEncoding)) bad(`prototypes are not ${encoding as string} rows matching prototypeClass and dim`);
    if (!finite(view.scoreMean) || !finite(view.scoreStd) || (view.scoreStd as number) <= 0) bad('a view has no valid score statistics');
  }
  if (r.compact != null) {
    if (typeof r.compact !== 'object') bad('compact is not an object');
    for (const [encoding, c] of Object.entries(r.compact as Record<string, unknown>)) {
      const cal = c as CompactCalibration | null;
      const ok = (encoding === 'uint8' || encoding === 'uint4') && cal != null && finite(cal.threshold) && Array.isArray(cal.views) && cal.views.length === (r.views as unknown[]).length;
      if (!ok || !cal!.views.every((v) => v != null && finite(v.scoreMean) && finite(v.scoreStd) && v.scoreStd > 0)) bad(`compact.${encoding} is not a calibration of the views`);
    }
  }
  return new UnknownDetector(JSON.parse(JSON.stringify(r)) as UnknownDetectorRecord);
}

/** The summary type of a detector whose record is `R`. @internal */
export type SummaryOf<R extends UnknownDetectorRecord> = R extends PrototypeDetectorRecord ? PrototypeDetectorSummary : R extends PretrainedClassesRecord ? PretrainedClassesDetectorSummary : UnknownDetectorSummary;

/**
 * A fitted unknown detector: scores feature vectors (higher = more like the classes). Made by `fit` and
 * {@link fitUnknownDetector}; read with the model by `loadModel`. @internal
 */
export class UnknownDetector<R extends UnknownDetectorRecord = UnknownDetectorRecord> {
  readonly record: Readonly<R>;
  private decoded: { mean: Float32Array; prototypes: Float32Array[] } | undefined;
  private classesScorer: PretrainedClassesScorer | undefined;

  constructor(record: R) {
    this.record = Object.freeze(record);
  }

  /** The record of the `prototypes` method (the methods below that only it has). */
  private get prototypeRecord(): Readonly<PrototypeDetectorRecord> {
    const r: Readonly<UnknownDetectorRecord> = this.record;
    if (r.method !== 'prototypes') throw new TransferError('NOT_SUPPORTED', `unknown detector: the ${r.method} method has no prototypes.`);
    return r;
  }

  /** The record as the union of the methods' records (a generic `R` does not narrow). */
  private get anyRecord(): Readonly<UnknownDetectorRecord> {
    return this.record;
  }

  /** The stored values, decoded once. */
  private values(): { mean: Float32Array; prototypes: Float32Array[] } {
    const r = this.prototypeRecord;
    this.decoded ??= {
      mean: decodeFloat16(r.mean, r.dim)!,
      prototypes: r.views.map((v) => decodeRows(v.prototypes, v.prototypeClass.length, r.dim, v.encoding ?? 'float16')!),
    };
    return this.decoded;
  }

  /** The views with their prototypes encoded in `encoding` from the stored values (statistics unchanged). */
  encodedViews(encoding: RowEncoding): UnknownViewRecord[] {
    const { prototypes } = this.values();
    const r = this.prototypeRecord;
    return r.views.map((v, i) => ({ ...v, prototypes: encodeRows(prototypes[i]!, r.dim, encoding), encoding }));
  }

  /**
   * This detector with its prototypes stored one or two steps more compactly (float16 → uint8 → uint4, each step
   * encoded from the previous one's values, as {@link fitPrototypeDetector} calibrated them), with the score
   * statistics and threshold fitted for that encoding (`record.compact`; a record without them keeps its own).
   * A detector already as compact or more is returned as it is: precision lost is not regained. The
   * `pretrainedClasses` method always stores its classifier in 4 bits: it is returned as it is.
   */
  reencoded(encoding: RowEncoding): UnknownDetector<R> {
    if (this.anyRecord.method !== 'prototypes') return this;
    const rank = (e: RowEncoding | undefined) => ROW_ENCODINGS.indexOf(e ?? 'float16');
    let d = this as UnknownDetector;
    for (let step = rank(this.prototypeRecord.views[0]!.encoding) + 1; step <= rank(encoding); step++) {
      const next = ROW_ENCODINGS[step]! as 'uint8' | 'uint4';
      const r = d.prototypeRecord;
      const cal = r.compact?.[next];
      const views = d.encodedViews(next).map((v, i) => (cal ? { ...v, ...cal.views[i]! } : v));
      const compact = next === 'uint8' && r.compact?.uint4 ? { uint4: r.compact.uint4 } : undefined;
      const { compact: _dropped, ...rest } = r;
      d = new UnknownDetector(JSON.parse(JSON.stringify({ ...rest, views, threshold: cal?.threshold ?? r.threshold, ...(compact ? { compact } : {}) })) as UnknownDetectorRecord);
    }
    return d as UnknownDetector<R>;
  }

  /** One view's raw score (max cosine similarity, not standardised) of the `[n, dim]` rows of `x`. */
  viewScores(view: number, x: Float32Array, n: number): Float64Array {
    const { mean, prototypes } = this.values();
    const r = this.prototypeRecord;
    return viewSimilarity(x, n, r.dim, prototypes[view]!, r.views[view]!.centring === 'mean' ? mean : undefined);
  }

  /** Scores of the `[n, dim]` rows of `x`: the mean over views of the standardised max cosine similarity. */
  score(x: Float32Array, n: number): Float64Array {
    const { dim } = this.record;
    if (x.length !== n * dim) throw new TransferError('SHAPE_MISMATCH', `unknown detector: expected ${n} feature vectors of ${dim} values, got ${x.length} values.`);
    const any = this.anyRecord;
    if (any.method === 'pretrainedClasses') return (this.classesScorer ??= new PretrainedClassesScorer(any)).score(x, n);
    const { views } = this.prototypeRecord;
    const { mean, prototypes } = this.values();
    const out = new Float64Array(n);
    views.forEach((v, i) => {
      const s = viewSimilarity(x, n, dim, prototypes[i]!, v.centring === 'mean' ? mean : undefined);
      for (let r = 0; r < n; r++) out[r]! += (s[r]! - v.scoreMean) / v.scoreStd / views.length;
    });
    return out;
  }

  /** What `model.unknownDetector` shows. */
  summary(): SummaryOf<R> {
    const common = {
      dim: this.record.dim, threshold: this.record.threshold, targetAcceptance: this.record.targetAcceptance,
      trainingImages: this.record.trainingImages, heldOutImages: this.record.heldOutImages, bytes: JSON.stringify(this.record).length,
    };
    const any = this.anyRecord;
    if (any.method === 'pretrainedClasses') {
      const summary: PretrainedClassesDetectorSummary = { method: 'pretrainedClasses', pretrainedClasses: any.units, temperature: any.temperature, ...common };
      return summary as SummaryOf<R>;
    }
    const r = this.prototypeRecord;
    const centring: UnknownCentring = r.views.length === 2 ? 'both' : r.views[0]!.centring;
    const perClass = Math.max(...r.views.map((v) => Math.max(...Array.from({ length: r.classes }, (_, c) => v.prototypeClass.filter((p) => p === c).length))));
    const encodings = r.views.map((v) => v.encoding ?? 'float16');
    const prototypeEncoding = encodings.reduce((a, e) => (ROW_ENCODINGS.indexOf(e) > ROW_ENCODINGS.indexOf(a) ? e : a), 'float16');
    const summary: PrototypeDetectorSummary = { method: 'prototypes', centring, prototypesPerClass: perClass, prototypeEncoding, ...common };
    return summary as SummaryOf<R>;
  }
}

/** One line describing a detector, for logs and the model card, e.g. `ImageNet-style pretrained classes (1000, temperature 2)`. @internal */
export function describeUnknownDetector(u: UnknownDetectorSummary): string {
  return u.method === 'pretrainedClasses'
    ? `the backbone's ${u.pretrainedClasses} pretrained classes (temperature ${u.temperature})`
    : `${u.prototypesPerClass} prototypes per class (${u.centring}, ${u.prototypeEncoding})`;
}

/**
 * `args` checked and resolved against {@link UNKNOWN_DETECTOR_DEFAULTS} (`undefined` and `null` take the default);
 * throws `INVALID_ARGUMENT` naming the bad field. @internal
 */
export function resolveUnknownArgs(args: UnknownDetectorArgs | undefined, where: string): Required<UnknownDetectorArgs> {
  const bad = (what: string): never => {
    throw new TransferError('INVALID_ARGUMENT', `${where}: ${what}`);
  };
  if (args != null && typeof args !== 'object') bad(`the unknown detector's options must be an object such as { targetAcceptance: 0.95 }, got ${JSON.stringify(args)}.`);
  const a = args ?? {};
  const pick = <K extends keyof UnknownDetectorArgs>(k: K): NonNullable<UnknownDetectorArgs[K]> => (a[k] ?? UNKNOWN_DETECTOR_DEFAULTS[k]) as NonNullable<UnknownDetectorArgs[K]>;
  const r: Required<UnknownDetectorArgs> = {
    method: pick('method'),
    targetAcceptance: pick('targetAcceptance'),
    prototypesPerClass: pick('prototypesPerClass'),
    centring: pick('centring'),
    maxBytes: pick('maxBytes'),
    iterations: pick('iterations'),
  };
  if (!['auto', 'pretrainedClasses', 'prototypes'].includes(r.method)) bad(`unknown.method must be 'auto', 'pretrainedClasses' or 'prototypes', got ${JSON.stringify(r.method)}.`);
  if (!(typeof r.targetAcceptance === 'number' && r.targetAcceptance > 0 && r.targetAcceptance <= 1)) bad(`unknown.targetAcceptance must be a share in (0, 1], got ${JSON.stringify(r.targetAcceptance)}.`);
  if (!(Number.isInteger(r.prototypesPerClass) && r.prototypesPerClass >= 1 && r.prototypesPerClass <= 1024)) bad(`unknown.prototypesPerClass must be an integer from 1 to 1024, got ${JSON.stringify(r.prototypesPerClass)}.`);
  if (!['both', 'none', 'mean'].includes(r.centring)) bad(`unknown.centring must be 'both', 'none' or 'mean', got ${JSON.stringify(r.centring)}.`);
  if (!(typeof r.maxBytes === 'number' && r.maxBytes > 0)) bad(`unknown.maxBytes must be a positive number, got ${JSON.stringify(r.maxBytes)}.`);
  if (!(Number.isInteger(r.iterations) && r.iterations >= 0 && r.iterations <= 1000)) bad(`unknown.iterations must be an integer from 0 to 1000, got ${JSON.stringify(r.iterations)}.`);
  return r;
}
