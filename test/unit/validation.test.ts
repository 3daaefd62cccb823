/**
 * Input validation over the public API: wrong types, out-of-range values, wrong shapes, class counts and labels
 * not in the class list are refused with a TransferError that names the argument and the value.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachHead, env, evaluate, fit, freeze, fromTensors, loadBackbone, predict, resizeImages, toClassIndices, TransferError, type TransferModel,
} from '../../src/index';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;
let model: TransferModel;
let data: { xs: tf.Tensor4D; ys: number[] };
beforeAll(async () => {
  model = attachHead(freeze(await loadBackbone(tinyBackbone(16), { takeOwnership: true })), { classes: ['cat', 'dog'], seed: 1 });
  data = stripes(4, 16);
});
afterAll(() => {
  data.xs.dispose();
  model.dispose();
});

async function refuses(run: () => unknown, code: string | string[], message: RegExp): Promise<void> {
  const error = await Promise.resolve().then(run).then(() => undefined, (e: unknown) => e);
  expect(error, String(message)).toBeInstanceOf(TransferError);
  expect([code].flat(), (error as Error).message).toContain((error as TransferError).code);
  expect((error as Error).message).toMatch(message);
}

describe('fit options', () => {
  const cases: [string, object, RegExp][] = [
    ['epochs as a string', { epochs: '5' }, /epochs must be an integer from 0 to 1000000, got "5"/],
    ['fractional batchSize', { batchSize: 2.5 }, /batchSize must be an integer/],
    ['negative learningRate', { learningRate: -1 }, /learningRate must be a positive number, got -1/],
    ['validationSplit of 1', { validationSplit: 1 }, /validationSplit must be in \[0, 1\), got 1/],
    ['unknown optimizer', { optimizer: 'adamw' }, /optimizer must be 'adam', 'sgd', 'rmsprop' or a tf.Optimizer, got "adamw"/],
    ['shuffle as a string (new check)', { shuffle: 'no' }, /shuffle must be true or false, got "no"/],
    ['earlyStopping.patience negative (new check)', { earlyStopping: { patience: -1 } }, /earlyStopping.patience must be a non-negative integer, got -1/],
    ['earlyStopping.monitor unknown (new check)', { earlyStopping: { monitor: 'val_loss' } }, /earlyStopping.monitor must be .* got "val_loss"/],
    ['callbacks not functions (new check)', { callbacks: { onEpochEnd: 3 } }, /callbacks.onEpochEnd must be a function/],
    ['gradientNormWarning zero', { gradientNormWarning: 0 }, /gradientNormWarning must be a positive number, got 0/],
    ['classWeight for an unknown class', { classWeight: { bird: 2 } }, /"bird", which is not a class of the model \(cat, dog\)/],
    ['negative classWeight', { classWeight: { cat: -1 } }, /classWeight\["cat"\] must be a non-negative number/],
    ['validationData and validationSplit', { get validationData() { return data; }, validationSplit: 0.2 }, /either validationData or validationSplit/],
    ['monitoring valLoss without validation', { earlyStopping: { monitor: 'valLoss' } }, /monitors valLoss but there is no validation data/],
  ];
  for (const [name, options, message] of cases) {
    it(name, async () => {
      const before = tf.memory().numTensors;
      await refuses(() => fit(model, data, { verbose: false, epochs: 1, ...options } as never), 'INVALID_ARGUMENT', message);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('data: shapes, class counts, labels', () => {
  it('labels not in the class list, out-of-range indices, wrong counts, wrong shapes', async () => {
    await refuses(() => fit(model, { xs: data.xs, ys: ['cat', 'dog', 'bird', 'cat'] }, { verbose: false }), 'CLASS_MISMATCH', /bird/);
    await refuses(() => evaluate(model, { xs: data.xs, ys: [0, 1, 2, 0] }), 'CLASS_MISMATCH', /2/);
    await refuses(() => fit(model, { xs: data.xs, ys: [0, 1] }, { verbose: false }), ['SHAPE_MISMATCH', 'INVALID_ARGUMENT'], /2 labels|4 images|length|expected 4/i);
    const oneHot3 = tf.oneHot(tf.tensor1d([0, 1, 2, 0], 'int32'), 3);
    await refuses(() => evaluate(model, { xs: data.xs, ys: oneHot3 as tf.Tensor2D }), ['CLASS_MISMATCH', 'SHAPE_MISMATCH', 'INVALID_ARGUMENT'], /one-hot labels have 3 columns but there are 2 classes/);
    oneHot3.dispose();
    const gray = tf.zeros([2, 16, 16, 1]) as tf.Tensor4D;
    await refuses(() => predict(model, gray), 'SHAPE_MISMATCH', /RGB \[h, w, 3\]/);
    await refuses(() => fit(model, { xs: gray, ys: [0, 1] }, { verbose: false }), 'SHAPE_MISMATCH', /3|channel|RGB/i);
    gray.dispose();
    await refuses(() => fit(model, null as never), 'INVALID_ARGUMENT', /data is required/);
    await refuses(() => fit(model, { xs: [1, 2], ys: [0] } as never, { verbose: false }), 'INVALID_ARGUMENT', /data must be/);
  });

  it('class lists: too few, duplicates, wrong types', async () => {
    const bb = await loadBackbone(tinyBackbone(16), { takeOwnership: true });
    expect(() => attachHead(bb, { classes: ['only'] })).toThrow(/at least 2 classes/);
    expect(() => attachHead(bb, { classes: ['a', 'a'] })).toThrow(/"a" appears twice/);
    expect(() => attachHead(bb, { classes: 2, hiddenActivation: 'sigmoidz' as never })).toThrow(/hiddenActivation must be one of relu, .* got "sigmoidz"/);
    bb.dispose();
    expect(() => toClassIndices(['a', 'b'], { classes: 'ab' as never })).toThrow(/classes must be an array of class names, got string/);
    expect(() => toClassIndices(['a', 'c'], { classes: ['a', 'b'] })).toThrow(/c/);
    expect(() => fromTensors(data.xs, ['a', 'b'])).toThrow(TransferError);
  });
});

describe('gaps fixed while fuzzing', () => {
  it('predict: batchSize is checked (was: "Pass at least one tensor to concat" / wasm "divide by zero")', async () => {
    for (const batchSize of [0, -3, NaN, 2.5, '8']) {
      await refuses(() => predict(model, data.xs, { batchSize } as never), 'INVALID_ARGUMENT', /predict: batchSize must be a positive integer/);
    }
  });

  it('predict: a value that is no image is INVALID_ARGUMENT (was: tfjs fromPixels error)', async () => {
    await refuses(() => predict(model, { length: 2 } as never), 'INVALID_ARGUMENT', /not an image/);
  });

  it('resizeImages: never returns its input (disposing the result disposed the input) and checks size', () => {
    const x = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
    const same = resizeImages(x, [16, 16]);
    expect(same).not.toBe(x);
    same.dispose();
    expect(x.isDisposed).toBe(false);
    expect(() => resizeImages(x, 16 as never)).toThrow(/size must be \[height, width\], got 16/);
    x.dispose();
  });

  it("loadBackbone: a falsy preprocessing (0, '', false) is refused (was: TypeError 'v is not iterable')", async () => {
    for (const preprocessing of [0, '', false]) {
      await refuses(() => loadBackbone(tinyBackbone(16), { takeOwnership: true, preprocessing } as never), 'INVALID_ARGUMENT', /preprocessing must be an object/);
    }
  });
});
