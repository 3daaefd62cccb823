/**
 * evaluate's metrics against values worked out by hand: precision, recall, F1 (a class never predicted included),
 * macro F1, the confusion matrix, loss, and ROC AUC with tied scores.
 */
import { describe, expect, it } from 'vitest';
import { metricsFromProbabilities, rocAuc } from '../../src/evaluate';

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
    expect(c).toEqual({ name: 'c', precision: 0, recall: 0, f1: 0, support: 2 });
    expect(m.macroF1).toBeCloseTo((0.5 + 2 / 3 + 0) / 3, 12);
    // loss: -ln 0.8 for the 3 right, -ln 0.1 for the 3 wrong
    expect(m.loss).toBeCloseTo((3 * -Math.log(0.8) + 3 * -Math.log(0.1)) / 6, 5);
    expect(m.rocAuc).toBeUndefined(); // only for two classes
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
