/**
 * evaluate's metrics against values worked out by hand: precision, recall, F1 (a class never predicted included),
 * macro F1, the confusion matrix, loss, ROC AUC with tied scores (binary, and one-vs-rest on 3 classes with its
 * macro mean), the expected calibration error and the reliability diagram.
 */
import { describe, expect, it } from 'vitest';
import { metricsFromProbabilities, RELIABILITY_BINS, rocAuc } from '../../src/evaluate';
import { reliabilityOf } from '../../src/evaluate/metrics';

describe('metricsFromProbabilities', () => {
  it('three classes, one never predicted', () => {
    // labels:    a a b b c c
    // predicted: a b b b a b   (c is never predicted)
    const labels = Int32Array.from([0, 0, 1, 1, 2, 2]);
    const P = (c: number) => [0, 1, 2].map((k) => (k === c ? 0.8 : 0.1));
    const probs = Float32Array.from([...P(0), ...P(1), ...P(1), ...P(1), ...P(0), ...P(1)]);
    const m = metricsFromProbabilities(probs, labels, ['a', 'b', 'c'], ['f0', 'f1', 'f2', 'f3', 'f4', 'f5']);
    expect(m.confusionMatrix).toEqual([
      [1, 1, 0],
      [0, 2, 0],
      [1, 1, 0],
    ]);
    expect(m.accuracy).toBeCloseTo(3 / 6, 12);
    // a: tp 1, predicted 2, support 2 -> P 1/2, R 1/2, F1 1/2
    // b: tp 2, predicted 4, support 2 -> P 1/2, R 1, F1 2/3
    // c: tp 0, predicted 0, support 2 -> P 0 (none predicted), R 0, F1 0
    const [a, b, c] = m.perClass;
    expect(a).toMatchObject({ name: 'a', support: 2 });
    expect(a!.precision).toBeCloseTo(0.5, 12);
    expect(a!.recall).toBeCloseTo(0.5, 12);
    expect(a!.f1).toBeCloseTo(0.5, 12);
    expect(b!.precision).toBeCloseTo(0.5, 12);
    expect(b!.recall).toBeCloseTo(1, 12);
    expect(b!.f1).toBeCloseTo(2 / 3, 12);
    expect(c).toEqual({ name: 'c', precision: 0, recall: 0, f1: 0, support: 2, rocAuc: 0.5 }); // every P(c) is 0.1: all tied
    expect(m.macroF1).toBeCloseTo((0.5 + 2 / 3 + 0) / 3, 12);
    // loss: -ln 0.8 for the 3 right, -ln 0.1 for the 3 wrong
    expect(m.loss).toBeCloseTo((3 * -Math.log(0.8) + 3 * -Math.log(0.1)) / 6, 5);
    // One-vs-rest ROC AUC, ties counted half. a: P(a) of the a's (0.8, 0.1) against the rest (0.1, 0.1, 0.8, 0.1):
    // 0.8 wins 3, ties 1 -> 3.5; 0.1 ties 3 -> 1.5; 5 / 8. b: P(b) of the b's (0.8, 0.8) against (0.1, 0.8, 0.1, 0.8):
    // each wins 2, ties 2 -> 3; 6 / 8. c: all tied, 1/2. Macro mean (0.625 + 0.75 + 0.5) / 3.
    expect(a!.rocAuc).toBeCloseTo(5 / 8, 12);
    expect(b!.rocAuc).toBeCloseTo(6 / 8, 12);
    expect(m.rocAuc).toBeCloseTo((5 / 8 + 6 / 8 + 0.5) / 3, 12);
    expect(m.misclassified.map((x) => [x.index, x.source, x.actual, x.predicted])).toEqual([
      [1, 'f1', 'a', 'b'],
      [4, 'f4', 'c', 'a'],
      [5, 'f5', 'c', 'b'],
    ]);
    expect(metricsFromProbabilities(probs, labels, ['a', 'b', 'c'], [], 1).misclassified).toHaveLength(1);
  });

  it('two classes: ROC AUC of P(classes[1]) with ties counted half', () => {
    // P(pos) and truth:  0.9 pos, 0.6 neg, 0.6 pos, 0.2 neg
    // pairs (pos, neg): (0.9, 0.6) 1, (0.9, 0.2) 1, (0.6, 0.6) tie 1/2, (0.6, 0.2) 1 -> 3.5 / 4
    const p1 = [0.9, 0.6, 0.6, 0.2];
    const probs = Float32Array.from(p1.flatMap((p) => [1 - p, p]));
    const labels = Int32Array.from([1, 0, 1, 0]);
    const m = metricsFromProbabilities(probs, labels, ['neg', 'pos']);
    expect(m.rocAuc).toBeCloseTo(3.5 / 4, 12);
    // predicted (argmax, ties to the first class): pos, pos, pos, neg
    expect(m.confusionMatrix).toEqual([
      [1, 1],
      [0, 2],
    ]);
    expect(m.perClass[1]!.precision).toBeCloseTo(2 / 3, 12);
    expect(m.perClass[1]!.recall).toBeCloseTo(1, 12);
    expect(m.perClass[1]!.f1).toBeCloseTo(0.8, 12);
    expect(m.perClass[0]!.precision).toBeCloseTo(1, 12);
    expect(m.perClass[0]!.recall).toBeCloseTo(0.5, 12);
    expect(m.perClass[0]!.f1).toBeCloseTo(2 / 3, 12);
  });

  it('rocAuc: all scores tied is 0.5; perfect is 1; reversed is 0; one class only is undefined', () => {
    const pos = Uint8Array.from([1, 0, 1, 0]);
    expect(rocAuc(Float32Array.from([0.5, 0.5, 0.5, 0.5]), pos)).toBe(0.5);
    expect(rocAuc(Float32Array.from([0.9, 0.1, 0.8, 0.2]), pos)).toBe(1);
    expect(rocAuc(Float32Array.from([0.1, 0.9, 0.2, 0.8]), pos)).toBe(0);
    expect(rocAuc(Float32Array.from([0.1, 0.9]), Uint8Array.from([1, 1]))).toBeUndefined();
  });
});

describe('ROC AUC on more than two classes', () => {
  it('one-vs-rest with ties; a class with no image has none and is left out of the macro mean', () => {
    // labels a a b b (no c). Rows of P(a, b, c):
    const rows = [
      [0.6, 0.3, 0.1],
      [0.3, 0.3, 0.4],
      [0.3, 0.6, 0.1],
      [0.6, 0.3, 0.1],
    ];
    const m = metricsFromProbabilities(Float32Array.from(rows.flat()), Int32Array.from([0, 0, 1, 1]), ['a', 'b', 'c']);
    // a: positives (0.6, 0.3) vs negatives (0.6, 0.3): 0.6 ties one, beats one -> 1.5; 0.3 ties one -> 0.5; 2 / 4
    // b: positives (0.6, 0.3) vs negatives (0.3, 0.3): 0.6 beats both -> 2; 0.3 ties both -> 1; 3 / 4
    // c: no positives: undefined
    expect(m.perClass[0]!.rocAuc).toBeCloseTo(0.5, 12);
    expect(m.perClass[1]!.rocAuc).toBeCloseTo(0.75, 12);
    expect(m.perClass[2]!.rocAuc).toBeUndefined();
    expect(m.rocAuc).toBeCloseTo((0.5 + 0.75) / 2, 12);
    // every image of one class: no negatives, no AUC anywhere
    const all = metricsFromProbabilities(Float32Array.from(rows.flat()), Int32Array.from([0, 0, 0, 0]), ['a', 'b', 'c']);
    expect(all.perClass.map((c) => c.rocAuc)).toEqual([undefined, undefined, undefined]);
    expect(all.rocAuc).toBeUndefined();
    expect(JSON.parse(JSON.stringify(all)).rocAuc).toBeUndefined();
  });

  it('two classes: rocAuc is the binary AUC of P(classes[1]), and both classes carry it', () => {
    const p1 = [0.9, 0.6, 0.6, 0.2];
    const m = metricsFromProbabilities(Float32Array.from(p1.flatMap((p) => [1 - p, p])), Int32Array.from([1, 0, 1, 0]), ['neg', 'pos']);
    expect(m.rocAuc).toBeCloseTo(3.5 / 4, 12);
    expect(m.perClass[1]!.rocAuc).toBeCloseTo(3.5 / 4, 12);
    expect(m.perClass[0]!.rocAuc).toBeCloseTo(3.5 / 4, 6);
  });
});

describe('expected calibration error and the reliability diagram', () => {
  it('15 equal-width bins of the top probability (for two classes the larger of the two), by hand', () => {
    // P(pos) 0.9 (pos, right), 0.92 (neg, wrong), 0.3 (neg: top 0.7, right), 0.55 (pos, right).
    // Bin b holds (b/15, (b+1)/15]: 0.9 and 0.92 -> bin 13 (0.8667, 0.9333]; 0.7 -> bin 10 (0.6667, 0.7333];
    // 0.55 -> bin 8 (0.5333, 0.6].
    const p1 = [0.9, 0.92, 0.3, 0.55];
    const m = metricsFromProbabilities(Float32Array.from(p1.flatMap((p) => [1 - p, p])), Int32Array.from([1, 0, 0, 1]), ['neg', 'pos']);
    const bins = m.reliability.bins;
    expect(bins).toHaveLength(RELIABILITY_BINS);
    expect(RELIABILITY_BINS).toBe(15);
    expect(bins.map((b) => b.count)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 0]);
    expect(bins[13]!.lower).toBeCloseTo(13 / 15, 12);
    expect(bins[13]!.upper).toBeCloseTo(14 / 15, 12);
    expect(bins[13]!.confidence).toBeCloseTo(0.91, 6);
    expect(bins[13]!.accuracy).toBe(0.5);
    expect(bins[10]!.confidence).toBeCloseTo(0.7, 6);
    expect(bins[10]!.accuracy).toBe(1);
    expect(bins[8]!.confidence).toBeCloseTo(0.55, 6);
    expect(bins[0]).toEqual({ lower: 0, upper: 1 / 15, count: 0, confidence: 0, accuracy: 0 });
    // ECE = 2/4 |0.5 - 0.91| + 1/4 |1 - 0.7| + 1/4 |1 - 0.55| = 0.205 + 0.075 + 0.1125
    expect(m.ece).toBeCloseTo(0.3925, 6);
  });

  it('three classes: the top class is the first largest; perfectly calibrated bins give 0', () => {
    // Two images at top probability 0.5: one right, one wrong -> |0.5 - 0.5| = 0; one at 1.0, right -> 0.
    const probs = Float32Array.from([0.5, 0.25, 0.25, 0.25, 0.5, 0.25, 0, 0, 1]);
    const { ece, reliability } = reliabilityOf(probs, Int32Array.from([0, 0, 2]), 3);
    expect(ece).toBeCloseTo(0, 12);
    expect(reliability.bins[7]!.count).toBe(2); // 0.5 -> (7/15, 8/15]
    expect(reliability.bins[14]!.count).toBe(1); // 1 -> the last bin
    // A confidently wrong image: top 0.8 (class 1), label 0: ECE 0.8.
    expect(reliabilityOf(Float32Array.from([0.1, 0.8, 0.1]), Int32Array.from([0]), 3).ece).toBeCloseTo(0.8, 6);
    // A tie for the top goes to the first class, as in the confusion matrix.
    expect(reliabilityOf(Float32Array.from([0.4, 0.4, 0.2]), Int32Array.from([0]), 3).ece).toBeCloseTo(0.6, 6);
  });
});
