/**
 * The metrics of {@link evaluate}: loss, accuracy, per-class precision / recall / F1, macro F1, the confusion
 * matrix, ROC AUC (two classes) and the misclassified images, from probabilities and labels.
 * @module
 */

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
