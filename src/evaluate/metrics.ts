/**
 * The metrics of {@link evaluate}: loss, accuracy, per-class precision / recall / F1, macro F1, the confusion
 * matrix, ROC AUC (binary, or one-vs-rest per class and their macro mean), the expected calibration error with its
 * reliability diagram, the misclassified images, and what to look at: the top losses, the most confused pairs and
 * the images nearest each class's decision boundary, from probabilities and labels.
 * @module
 */
import type { UnknownEvaluation } from './unknown';
import type { Heatmap } from './heatmap';

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
  /**
   * One-vs-rest area under the ROC curve of this class's probability: the chance that an image of this class gets
   * a higher P(this class) than an image of another class (ties count half). `undefined` when the data has no image
   * of this class, or only images of it (no positives or no negatives: the area is not defined).
   */
  rocAuc?: number;
}

/**
 * One bin of a reliability diagram: the images whose top-class probability lies in `(lower, upper]` (the first bin
 * also holds 0). @category Step 5: Evaluate
 */
export interface ReliabilityBin {
  /** Lower edge of the bin (excluded, except 0 in the first bin). */
  lower: number;
  /** Upper edge of the bin (included). */
  upper: number;
  /** Images whose top probability falls in the bin. */
  count: number;
  /** Mean top probability of those images (0 when the bin is empty). */
  confidence: number;
  /** Share of those images classified correctly (0 when the bin is empty). */
  accuracy: number;
}

/**
 * The data of a reliability diagram: accuracy against confidence in equal-width bins of the top-class probability.
 * A calibrated model has `accuracy` close to `confidence` in every bin that holds images.
 * @category Step 5: Evaluate
 */
export interface Reliability {
  /** {@link RELIABILITY_BINS} bins of equal width covering [0, 1], lowest first (empty bins included). */
  bins: ReliabilityBin[];
}

/** Number of equal-width bins of the expected calibration error and the reliability diagram (Guo et al., 2017). @category Step 5: Evaluate */
export const RELIABILITY_BINS = 15;

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

/**
 * One of the most confident mistakes: an image the model got wrong, by how much (its loss). With `evaluate`'s
 * `explain` option, the heatmaps of the predicted and the true class show what it looked at.
 * @category Step 5: Evaluate
 */
export interface TopLoss {
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
  /** Probability of the true class. */
  actualProbability: number;
  /** Cross-entropy of the image, −ln P(true class) (P clipped to [1e-7, 1 − 1e-7], as the mean `loss`). */
  loss: number;
  /**
   * Where the model looked: the predicted class's heatmap and the true class's, from {@link explain}. Present only
   * with `evaluate(..., { explain: true })`. Their `imageSize` is the model's input size (the image as the model
   * saw it); `upsample([h, w])` fits them to the original file.
   */
  heatmaps?: {
    /** The predicted class's heatmap: what argued for the wrong answer. */
    predicted: Heatmap;
    /** The true class's heatmap: where the model saw the right one, if anywhere. */
    actual: Heatmap;
  };
}

/** A pair of classes the model mixes up: images of `actual` predicted as `predicted`. @category Step 5: Evaluate */
export interface ConfusedPair {
  /** True class. */
  actual: string;
  /** The class they were taken for. */
  predicted: string;
  /** How many images (`confusionMatrix[actual][predicted]`). */
  count: number;
}

/** An image of a class close to that class's decision boundary. @category Step 5: Evaluate */
export interface BoundaryImage {
  /** Position of the image in the data. */
  index: number;
  /** Where it came from, when the data knows (a file path). */
  source?: string;
  /** Predicted class. */
  predicted: string;
  /** Probability of the image's own class. */
  probability: number;
  /**
   * P(own class) − the largest probability of another class: positive on the right side of the boundary, negative
   * on the wrong one; the closer to 0, the closer to the boundary.
   */
  margin: number;
}

/** The images of one class nearest its decision boundary, nearest first. @category Step 5: Evaluate */
export interface ClassBoundary {
  /** The class. */
  label: string;
  /** Its images with the smallest |margin|, nearest first. */
  images: BoundaryImage[];
}

/** How much of the interpretation {@link metricsFromProbabilities} lists. @internal */
export interface InterpretationLimits {
  maxTopLosses: number;
  maxConfusedPairs: number;
  boundaryImages: number;
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
  /**
   * Area under the ROC curve. Two classes: the binary AUC of P(classes[1]) (images of classes[1] are the
   * positives). More classes: the macro mean of the one-vs-rest AUCs of `perClass[i].rocAuc`, over the classes
   * where it is defined (a class with no image, or with every image, has none and is left out of the mean).
   * `undefined` when no class has one.
   */
  rocAuc?: number;
  /**
   * Expected calibration error: the mean over images of |accuracy − confidence| of their bin, in
   * {@link RELIABILITY_BINS} (15) equal-width bins of the top-class probability (for two classes the larger of the
   * two probabilities), i.e. sum over bins of (count / n) × |accuracy − confidence|. 0 is perfectly calibrated.
   */
  ece: number;
  /** The bins behind {@link Evaluation.ece}: the data of a reliability diagram. */
  reliability: Reliability;
  /** The images the model got wrong (at most `maxMisclassified`), in data order. */
  misclassified: Misclassified[];
  /** How the unknown detector does (present when the model has one; see {@link UnknownEvaluation}). */
  unknown?: UnknownEvaluation;
  /** The most confident mistakes, highest loss first (at most `maxTopLosses`). */
  topLosses: TopLoss[];
  /** The class pairs most often confused, most first (at most `maxConfusedPairs`; pairs with a count of 0 are left out). */
  confusedPairs: ConfusedPair[];
  /** For every class, in class order, its images nearest the decision boundary (at most `boundaryImages` each). */
  nearBoundary: ClassBoundary[];
}

/** Area under the ROC curve (ties counted half), by the rank-sum formula; `undefined` without positives or negatives. @internal */
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

/**
 * The reliability diagram and expected calibration error of probabilities `[n, k]` (row-major) against true labels:
 * {@link RELIABILITY_BINS} equal-width bins of each image's top probability; bin `b` holds `(b / 15, (b + 1) / 15]`
 * (and 0). The top class is the first largest probability, as in the confusion matrix. @internal
 */
export function reliabilityOf(probs: Float32Array | Float64Array, labels: Int32Array, k: number, bins = RELIABILITY_BINS): { ece: number; reliability: Reliability } {
  const n = labels.length;
  const count = new Float64Array(bins);
  const confidence = new Float64Array(bins);
  const correct = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    let top = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c]! > probs[i * k + top]!) top = c;
    const p = probs[i * k + top]!;
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(p * bins) - 1));
    count[b]!++;
    confidence[b]! += p;
    if (top === labels[i]) correct[b]!++;
  }
  let ece = 0;
  const out: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const c = count[b]!;
    const conf = c ? confidence[b]! / c : 0;
    const acc = c ? correct[b]! / c : 0;
    if (c) ece += (c / n) * Math.abs(acc - conf);
    out.push({ lower: b / bins, upper: (b + 1) / bins, count: c, confidence: conf, accuracy: acc });
  }
  return { ece: n ? ece : 0, reliability: { bins: out } };
}

/** One-vs-rest ROC AUC of each class's probability in `probs` `[n, k]`. @internal */
export function oneVsRestAuc(probs: Float32Array, labels: Int32Array, k: number): (number | undefined)[] {
  const n = labels.length;
  return Array.from({ length: k }, (_, c) => {
    const scores = new Float32Array(n);
    const positives = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      scores[i] = probs[i * k + c]!;
      positives[i] = labels[i] === c ? 1 : 0;
    }
    return rocAuc(scores, positives);
  });
}

/** The most confident mistakes, highest loss first (ties: data order). @internal */
export function topLossesOf(probs: Float32Array, labels: Int32Array, classes: readonly string[], sources: readonly (string | undefined)[], max: number): TopLoss[] {
  const k = classes.length;
  const out: TopLoss[] = [];
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    let top = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c]! > probs[i * k + top]!) top = c;
    if (top === y) continue;
    const actualProbability = probs[i * k + y]!;
    const loss = -Math.log(Math.min(Math.max(actualProbability, 1e-7), 1 - 1e-7));
    out.push({ index: i, source: sources[i], actual: classes[y]!, predicted: classes[top]!, probability: probs[i * k + top]!, actualProbability, loss });
  }
  return out.sort((a, b) => b.loss - a.loss || a.index - b.index).slice(0, max);
}

/** Off-diagonal cells of the confusion matrix, largest first (ties: class order). @internal */
export function confusedPairsOf(confusion: readonly (readonly number[])[], classes: readonly string[], max: number): ConfusedPair[] {
  const out: ConfusedPair[] = [];
  confusion.forEach((row, a) => row.forEach((count, p) => {
    if (a !== p && count > 0) out.push({ actual: classes[a]!, predicted: classes[p]!, count });
  }));
  return out.sort((x, y) => y.count - x.count).slice(0, max);
}

/** Per class, its images with the smallest |P(own) − max P(other)|. @internal */
export function nearBoundaryOf(probs: Float32Array, labels: Int32Array, classes: readonly string[], sources: readonly (string | undefined)[], max: number): ClassBoundary[] {
  const k = classes.length;
  const perClass: BoundaryImage[][] = classes.map(() => []);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    let other = -1;
    let top = 0;
    for (let c = 0; c < k; c++) {
      if (c !== y && (other < 0 || probs[i * k + c]! > probs[i * k + other]!)) other = c;
      if (probs[i * k + c]! > probs[i * k + top]!) top = c;
    }
    const probability = probs[i * k + y]!;
    perClass[y]!.push({ index: i, source: sources[i], predicted: classes[top]!, probability, margin: probability - probs[i * k + other]! });
  }
  return perClass.map((images, c) => ({
    label: classes[c]!,
    images: images.sort((a, b) => Math.abs(a.margin) - Math.abs(b.margin) || a.index - b.index).slice(0, max),
  }));
}

/** Metrics from probabilities `[n, k]` and true labels. @internal */
export function metricsFromProbabilities(
  probs: Float32Array,
  labels: Int32Array,
  classes: readonly string[],
  sources: (string | undefined)[] = [],
  maxMisclassified = 100,
  limits: InterpretationLimits = { maxTopLosses: 10, maxConfusedPairs: 10, boundaryImages: 5 },
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
  const aucs = oneVsRestAuc(probs, labels, k);
  const perClass = classes.map((name, c): ClassMetrics => {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c]!, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support, rocAuc: aucs[c] };
  });
  const { ece, reliability } = reliabilityOf(probs, labels, k);
  const result: Evaluation = {
    loss: lossSum / n,
    accuracy: correct / n,
    count: n,
    classes: [...classes],
    perClass,
    macroF1: perClass.reduce((a, m) => a + m.f1, 0) / k,
    confusionMatrix: confusion,
    ece,
    reliability,
    misclassified,
    topLosses: topLossesOf(probs, labels, classes, sources, limits.maxTopLosses),
    confusedPairs: confusedPairsOf(confusion, classes, limits.maxConfusedPairs),
    nearBoundary: nearBoundaryOf(probs, labels, classes, sources, limits.boundaryImages),
  };
  // Two classes: the binary AUC of P(classes[1]), which is perClass[1]'s. More: the macro mean of the defined ones.
  const defined = aucs.filter((a): a is number => a !== undefined);
  const auc = k === 2 ? aucs[1] : defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : undefined;
  if (auc !== undefined) result.rocAuc = auc;
  return result;
}
