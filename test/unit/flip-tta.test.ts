/**
 * Flip test-time augmentation (`tta: 'flip'`): `predict` and `evaluate` score each image by the mean of its and its
 * mirror image's probabilities; the unknown detector still scores the image as it is; bad values and the
 * combination with kept activations are refused; no tensor is left behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachHead, env, evaluate, fit, fromTensors, freeze, loadBackbone, predict, type TransferModel } from '../../src/index';
import { TransferError } from '../../src/errors';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;
const size = 32;

describe("tta: 'flip'", () => {
  let model: TransferModel;
  let val: ReturnType<typeof stripes>;
  let baseline = 0;
  beforeAll(async () => {
    model = attachHead(freeze(await loadBackbone(tinyBackbone(size), { takeOwnership: true })), { classes: ['red', 'blue'], seed: 1 });
    const train = stripes(48, size, 3);
    // A validation split: fit also fits the unknown detector.
    await fit(model, fromTensors(train.xs, train.ys, { classes: ['red', 'blue'] }), { epochs: 2, batchSize: 16, seed: 1, validationSplit: 0.25, learningRate: 1e-2 });
    train.xs.dispose();
    val = stripes(20, size, 9);
    baseline = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(baseline);
    val.xs.dispose();
    model.dispose();
  });

  it('predict: the mean of the image and its mirror image; familiarity from the image as it is', async () => {
    expect(model.unknownDetector).toBeDefined();
    const mirrored = tf.reverse(val.xs, 2);
    const plain = await predict(model, val.xs);
    const ofMirror = await predict(model, mirrored);
    const flip = await predict(model, val.xs, { tta: 'flip' });
    mirrored.dispose();
    let differs = false;
    flip.forEach((p, i) => {
      for (const c of model.classes) {
        const mean = (plain[i]!.probabilities[c]! + ofMirror[i]!.probabilities[c]!) / 2;
        expect(p.probabilities[c]).toBeCloseTo(mean, 6);
        if (Math.abs(p.probabilities[c]! - plain[i]!.probabilities[c]!) > 1e-4) differs = true;
      }
      expect(p.label).toBe(p.probabilities.red! >= p.probabilities.blue! ? 'red' : 'blue');
      expect(p.familiarity).toBe(plain[i]!.familiarity);
      expect(p.unknown).toBe(plain[i]!.unknown);
    });
    expect(differs).toBe(true); // the noise is not symmetric: the mirror image is another image
    expect(await predict(model, val.xs, { tta: 'none' })).toEqual(plain);
  });

  it('evaluate: accuracy and loss of the averaged probabilities; the detector figures unchanged', async () => {
    const flip = await predict(model, val.xs, { tta: 'flip' });
    const classes = ['red', 'blue'];
    let right = 0;
    let loss = 0;
    flip.forEach((p, i) => {
      if (p.label === classes[val.ys[i]!]) right++;
      loss -= Math.log(Math.max(p.probabilities[classes[val.ys[i]!]!]!, 1e-7));
    });
    const data = { xs: val.xs, ys: val.ys };
    const e = await evaluate(model, data, { tta: 'flip' });
    const plain = await evaluate(model, data);
    expect(e.count).toBe(20);
    expect(e.accuracy).toBeCloseTo(right / 20, 10);
    expect(e.loss).toBeCloseTo(loss / 20, 4);
    expect(e.loss).not.toBeCloseTo(plain.loss, 6);
    expect(e.unknown!.accepted).toBe(plain.unknown!.accepted);
    expect(e.unknown!.histogram).toEqual(plain.unknown!.histogram);
  });

  it('refuses other values, and kept activations (they hold one view)', async () => {
    const bad = await predict(model, val.xs, { tta: 'mirror' as never }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(TransferError);
    expect((bad as TransferError).message).toMatch(/predict: tta must be 'none' or 'flip', got "mirror"/);
    const badEval = await evaluate(model, { xs: val.xs, ys: val.ys }, { tta: 'both' as never }).catch((e: unknown) => e);
    expect((badEval as TransferError).message).toMatch(/evaluate: tta must be 'none' or 'flip', got "both"/);
    const kept = { activationsFor: () => Promise.reject(new Error('must not be read')) } as never;
    const withKept = await evaluate(model, { xs: val.xs, ys: val.ys }, { tta: 'flip', activations: kept }).catch((e: unknown) => e);
    expect((withKept as TransferError).message).toMatch(/tta 'flip' needs the mirror images' activations/);
  });
});
