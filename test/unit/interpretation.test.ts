/**
 * evaluate's interpretation: top losses (most confident mistakes, sorted by loss), confused pairs (counts, sorted),
 * the images nearest each class's boundary, worked out by hand; and `evaluate(..., { explain: true })` adding the
 * heatmaps of the predicted and the true class to each top loss, with tensors freed, and off by default.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attachHead, env, evaluate, explain, fit, freeze, loadBackbone } from '../../src/index';
import { metricsFromProbabilities } from '../../src/evaluate/metrics';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;

describe('interpretation in the metrics', () => {
  // labels:      a    a    b    b    c    c
  // P(a,b,c):  .7.2.1 .3.6.1 .1.8.1 .45.5.05 .6.2.2 .2.7.1
  const labels = Int32Array.from([0, 0, 1, 1, 2, 2]);
  const probs = Float32Array.from([0.7, 0.2, 0.1, 0.3, 0.6, 0.1, 0.1, 0.8, 0.1, 0.45, 0.5, 0.05, 0.6, 0.2, 0.2, 0.2, 0.7, 0.1]);
  const sources = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5'];
  const m = metricsFromProbabilities(probs, labels, ['a', 'b', 'c'], sources);

  it('topLosses: the mistakes, highest loss (-ln P(true)) first, with both probabilities', () => {
    // Mistakes: f1 (a -> b, P(a) .3), f4 (c -> a, P(c) .2), f5 (c -> b, P(c) .1).
    expect(m.topLosses.map((t) => t.source)).toEqual(['f5', 'f4', 'f1']);
    expect(m.topLosses[0]).toMatchObject({ index: 5, actual: 'c', predicted: 'b' });
    expect(m.topLosses[0]!.probability).toBeCloseTo(0.7, 6);
    expect(m.topLosses[0]!.actualProbability).toBeCloseTo(0.1, 6);
    expect(m.topLosses[0]!.loss).toBeCloseTo(-Math.log(0.1), 5);
    expect(m.topLosses[0]!.heatmaps).toBeUndefined();
    expect(metricsFromProbabilities(probs, labels, ['a', 'b', 'c'], sources, 100, { maxTopLosses: 1, maxConfusedPairs: 1, boundaryImages: 1 }).topLosses).toHaveLength(1);
  });

  it('confusedPairs: off-diagonal counts, most first, zeros left out', () => {
    expect(m.confusedPairs).toEqual([
      { actual: 'a', predicted: 'b', count: 1 },
      { actual: 'c', predicted: 'a', count: 1 },
      { actual: 'c', predicted: 'b', count: 1 },
    ]);
    const twice = metricsFromProbabilities(Float32Array.from([0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.9, 0.1]), Int32Array.from([0, 0, 1, 0]), ['x', 'y']);
    expect(twice.confusedPairs).toEqual([{ actual: 'x', predicted: 'y', count: 2 }]);
  });

  it('nearBoundary: per class, smallest |P(own) - max P(other)| first, signed', () => {
    expect(m.nearBoundary.map((b) => b.label)).toEqual(['a', 'b', 'c']);
    // a: f0 margin .7-.2 = .5, f1 .3-.6 = -.3 -> f1 first
    expect(m.nearBoundary[0]!.images.map((i) => i.source)).toEqual(['f1', 'f0']);
    expect(m.nearBoundary[0]!.images[0]!.margin).toBeCloseTo(-0.3, 6);
    expect(m.nearBoundary[0]!.images[0]!.predicted).toBe('b');
    // b: f2 .8-.1 = .7, f3 .5-.45 = .05 -> f3 first
    expect(m.nearBoundary[1]!.images.map((i) => i.source)).toEqual(['f3', 'f2']);
    expect(m.nearBoundary[1]!.images[0]!.margin).toBeCloseTo(0.05, 6);
    // c: f4 .2-.6 = -.4, f5 .1-.7 = -.6
    expect(m.nearBoundary[2]!.images.map((i) => i.index)).toEqual([4, 5]);
  });
});

describe('evaluate: interpretation and heatmaps of the top losses', () => {
  it('explain: true adds the predicted and true class heatmaps to every top loss; off by default; tensors freed', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['red', 'blue'], seed: 1 });
    const { xs, ys } = stripes(12, 32);
    try {
      // Barely trained, so it makes mistakes; labels flipped on a few images to be sure of some.
      await fit(model, { xs, ys }, { epochs: 1, batchSize: 4, seed: 1, verbose: false });
      const flipped = ys.map((y, i) => (i < 4 ? 1 - y : y));
      await evaluate(model, { xs, ys: flipped }, { explain: true }); // warm-up: folds the backbone once
      const baseline = tf.memory().numTensors;
      const plain = await evaluate(model, { xs, ys: flipped });
      expect(plain.topLosses.length).toBeGreaterThan(0);
      expect(plain.topLosses.every((t) => t.heatmaps === undefined)).toBe(true);
      const losses = plain.topLosses.map((t) => t.loss);
      expect([...losses].sort((a, b) => b - a)).toEqual(losses);
      expect(plain.nearBoundary).toHaveLength(2);
      const explained = await evaluate(model, { xs, ys: flipped }, { explain: true, maxTopLosses: 3 });
      expect(explained.topLosses.length).toBe(Math.min(3, plain.topLosses.length));
      for (const t of explained.topLosses) {
        expect(t.heatmaps?.predicted.label).toBe(t.predicted);
        expect(t.heatmaps?.actual.label).toBe(t.actual);
        expect(t.heatmaps?.predicted.method).toBe('cam');
        expect(t.heatmaps!.predicted.probability).toBeCloseTo(t.probability, 4);
        expect(t.heatmaps!.predicted.data.length).toBe(16 * 16);
      }
      expect(explained.accuracy).toBe(plain.accuracy);
      const occluded = await evaluate(model, { xs, ys: flipped }, { explain: { method: 'occlusion', occlusionPatch: 1 }, maxTopLosses: 1 });
      const one = tf.slice(xs, occluded.topLosses[0]!.index, 1) as tf.Tensor4D;
      const direct = await explain(model, one, { method: 'occlusion', occlusionPatch: 1, classes: [occluded.topLosses[0]!.actual] });
      one.dispose();
      expect(occluded.topLosses[0]!.heatmaps!.predicted.method).toBe('occlusion');
      const mine = direct[0]!.heatmaps.find((m) => m.label === occluded.topLosses[0]!.actual)!.data;
      occluded.topLosses[0]!.heatmaps!.actual.data.forEach((v, i) => expect(v).toBeCloseTo(mine[i]!, 5));
      await expect(evaluate(model, { xs, ys }, { explain: { method: 'occlusion', occlusionPatch: 1.5 } })).rejects.toThrow(/explain.occlusionPatch must be a positive integer/);
      expect(tf.memory().numTensors).toBe(baseline);
      await expect(evaluate(model, { xs, ys }, { explain: { method: 'cam' }, maxTopLosses: -1 })).rejects.toThrow(/maxTopLosses must be a non-negative integer/);
      expect((await evaluate(model, { xs, ys: flipped }, { maxTopLosses: Infinity, maxMisclassified: Infinity })).topLosses.length).toBe(plain.misclassified.length);
    } finally {
      xs.dispose();
      model.dispose();
    }
  });
});
