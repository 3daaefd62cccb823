/**
 * The unknown detector's `pretrainedClasses` method: how expected an image's distribution over the backbone's own
 * pretrained classes (MobileNetV2's 1000 ImageNet classes) is, given that distribution's average over the training
 * images. A photo of a cat shown to a flowers model spreads its ImageNet probability over cat classes that no
 * flower photo ever reached; a cat from another photo collection, shown to a cats-vs-dogs model, still reaches the
 * cat classes its training images did. Pure JavaScript on plain arrays, as the prototypes are.
 *
 * Score of an image with pooled features `x`: `Σ_j p_j log q_j`, where `p = softmax((W x + b) / T)` is its
 * distribution over the pretrained classes at temperature `T` and `q` the training images' mean `p`, smoothed;
 * standardised by its mean and standard deviation over held-out images. Measurements: `docs/unknown.md`.
 * @module
 */
import type { PretrainedClassifier } from './backbone/pretrained-classifier';
import { TransferError } from './errors';
import { decodeFloat16, encodeFloat16 } from './util/float16';
import { decodeRows, encodedRowsLength, encodeRows } from './util/packed-rows';

/** Temperature of the pretrained classifier's softmax (measured: 2 separates better than 1 on both tasks). @internal */
export const PRETRAINED_CLASSES_TEMPERATURE = 2;
/** Added to each class's mean probability before the logarithm, so a class no training image reached costs `log(1e-4)`, not infinity. @internal */
export const PRETRAINED_CLASSES_SMOOTHING = 1e-4;

/** What a saved model stores for the `pretrainedClasses` method (metadata `tfjsTransfer.unknown`). @internal */
export interface PretrainedClassesRecord {
  method: 'pretrainedClasses';
  /** Length of the pooled feature vectors. */
  dim: number;
  /** The model's classes (not the pretrained ones). */
  classes: number;
  /** Number of pretrained classes. */
  units: number;
  temperature: number;
  smoothing: number;
  /** The pretrained classifier's weights, `[units, dim]`, as 4-bit rows (`util/packed-rows.ts`, `uint4`). */
  weights: string;
  /** Its biases, `[units]`, float16. */
  bias: string;
  /** `log q`, `[units]`, float16: the smoothed mean distribution of the training images. */
  logPrior: string;
  /** Mean and standard deviation of the raw score over the held-out images. */
  scoreMean: number;
  scoreStd: number;
  threshold: number;
  targetAcceptance: number;
  trainingImages: number;
  heldOutImages: number;
}

/** Base64 bytes of a record for a classifier of `units` classes on `dim` features (the numbers and the JSON around them). @internal */
export function pretrainedClassesBytes(units: number, dim: number): number {
  return encodedRowsLength(units, dim, 'uint4') + 2 * encodedRowsLength(1, units, 'float16') + 1024;
}

interface Decoded {
  weights: Float32Array;
  bias: Float32Array;
  logPrior: Float32Array;
}

/** Probabilities `[n, units]` of the pretrained classes at temperature `t` for the `[n, dim]` rows of `x`. */
function classProbabilities(x: Float32Array, n: number, dim: number, weights: Float32Array, bias: Float32Array, t: number): Float32Array {
  const units = bias.length;
  const out = new Float32Array(n * units);
  const z = new Float64Array(units);
  for (let r = 0; r < n; r++) {
    const xo = r * dim;
    let max = -Infinity;
    for (let j = 0; j < units; j++) {
      const wo = j * dim;
      let s = bias[j]!;
      for (let i = 0; i < dim; i++) s += weights[wo + i]! * x[xo + i]!;
      z[j] = s / t;
      if (z[j]! > max) max = z[j]!;
    }
    let sum = 0;
    for (let j = 0; j < units; j++) sum += (z[j] = Math.exp(z[j]! - max));
    const o = r * units;
    for (let j = 0; j < units; j++) out[o + j] = z[j]! / sum;
  }
  return out;
}

/** Raw scores `Σ_j p_j log q_j` of probabilities `[n, units]`. */
function rawScores(p: Float32Array, n: number, logPrior: Float32Array): Float64Array {
  const units = logPrior.length;
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let j = 0; j < units; j++) s += p[r * units + j]! * logPrior[j]!;
    out[r] = s;
  }
  return out;
}

/**
 * Fits the method's numbers: the training images' mean distribution over the pretrained classes (from
 * `train`), and the score's standardisation from `heldOut` (the threshold is the caller's, on the standardised
 * scores). Everything is computed with the stored (4-bit, float16) values, so a saved model scores as fitted.
 * @internal
 */
export function fitPretrainedClasses(
  train: { values: Float32Array; n: number; dim: number },
  heldOut: { values: Float32Array; n: number },
  classes: number,
  classifier: PretrainedClassifier,
  targetAcceptance: number,
): Omit<PretrainedClassesRecord, 'threshold'> & { heldOutScores: Float64Array } {
  const { dim, units } = classifier;
  if (train.dim !== dim) throw new TransferError('SHAPE_MISMATCH', `unknown detector: the pretrained classifier takes ${dim} features, the pooled features have ${train.dim}.`);
  const weights = encodeRows(classifier.weights, dim, 'uint4');
  const bias = encodeFloat16(classifier.bias);
  const w = decodeRows(weights, units, dim, 'uint4')!;
  const b = decodeFloat16(bias, units)!;
  const t = PRETRAINED_CLASSES_TEMPERATURE;
  const eps = PRETRAINED_CLASSES_SMOOTHING;
  const p = classProbabilities(train.values, train.n, dim, w, b, t);
  const q = new Float64Array(units);
  for (let r = 0; r < train.n; r++) for (let j = 0; j < units; j++) q[j] += p[r * units + j]!;
  const logPrior = encodeFloat16(Array.from(q, (v) => Math.log((v / train.n + eps) / (1 + units * eps))));
  const raw = rawScores(classProbabilities(heldOut.values, heldOut.n, dim, w, b, t), heldOut.n, decodeFloat16(logPrior, units)!);
  let mean = 0;
  for (const v of raw) mean += v / raw.length;
  let variance = 0;
  for (const v of raw) variance += (v - mean) ** 2 / raw.length;
  const std = Math.sqrt(variance) || 1e-6;
  return {
    method: 'pretrainedClasses', dim, classes, units, temperature: t, smoothing: eps, weights, bias, logPrior,
    scoreMean: mean, scoreStd: std, targetAcceptance, trainingImages: train.n, heldOutImages: heldOut.n,
    heldOutScores: raw.map((v) => (v - mean) / std),
  };
}

/** Scores a record's method: standardised `Σ_j p_j log q_j` of the `[n, dim]` rows of `x`. @internal */
export class PretrainedClassesScorer {
  private decoded: Decoded | undefined;

  constructor(private readonly record: Readonly<PretrainedClassesRecord>) {}

  private values(): Decoded {
    const r = this.record;
    this.decoded ??= { weights: decodeRows(r.weights, r.units, r.dim, 'uint4')!, bias: decodeFloat16(r.bias, r.units)!, logPrior: decodeFloat16(r.logPrior, r.units)! };
    return this.decoded;
  }

  score(x: Float32Array, n: number): Float64Array {
    const r = this.record;
    const { weights, bias, logPrior } = this.values();
    const raw = rawScores(classProbabilities(x, n, r.dim, weights, bias, r.temperature), n, logPrior);
    return raw.map((v) => (v - r.scoreMean) / r.scoreStd);
  }
}

/** Why `r` (a record whose method is `pretrainedClasses`) is not a valid one, or `undefined` when it is. @internal */
export function pretrainedClassesProblem(r: Record<string, unknown>): string | undefined {
  const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (!Number.isInteger(r.dim) || (r.dim as number) <= 0) return 'dim is not a positive integer';
  if (!Number.isInteger(r.units) || (r.units as number) < 2) return 'units is not an integer of at least 2';
  for (const f of ['temperature', 'smoothing', 'scoreStd'] as const) if (!finite(r[f]) || (r[f] as number) <= 0) return `${f} is not a positive number`;
  if (!finite(r.scoreMean)) return 'scoreMean is not a number';
  const units = r.units as number;
  if (!decodeRows(r.weights, units, r.dim as number, 'uint4')) return 'weights are not 4-bit rows of units x dim values';
  if (!decodeFloat16(r.bias, units)) return 'bias is not a float16 vector of units values';
  const prior = decodeFloat16(r.logPrior, units);
  if (!prior || !prior.every((v) => Number.isFinite(v) && v <= 0)) return 'logPrior is not a float16 vector of units log-probabilities';
  return undefined;
}
