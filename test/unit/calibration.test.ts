/**
 * Temperature scaling: the fit against temperatures worked out by hand, the stratified folds and the
 * cross-validated ECE by hand, and `calibrate` on small models (sigmoid, softmax with a hidden layer): the exact
 * logits are divided by T inside the last Dense layer, accuracy is unchanged, the record is kept, saved and loaded,
 * kept activations are used, bad heads and bad options are refused, and no tensor leaks.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { attachHead, env, evaluate, fit, freeze, loadBackbone, loadModel, save } from '../../src/node/index';
import { calibrate, CALIBRATE_DEFAULTS } from '../../src/evaluate';
import { crossValidatedEce, fitTemperature, foldsOf, nllAt, probabilitiesAt } from '../../src/evaluate/calibration';
import { TransferModel } from '../../src/transfer-model';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-calib-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('temperature fit, by hand', () => {
  it('nllAt: sigmoid and softmax', () => {
    // sigmoid, z = 0: -ln 0.5; z = 2, y = 1 at T = 2: softplus(-1) = ln(1 + e^-1)
    expect(nllAt(Float64Array.from([0]), Int32Array.from([1]), 1, 1)).toBeCloseTo(Math.log(2), 12);
    expect(nllAt(Float64Array.from([2]), Int32Array.from([1]), 1, 2)).toBeCloseTo(Math.log(1 + Math.exp(-1)), 12);
    expect(nllAt(Float64Array.from([2]), Int32Array.from([0]), 1, 2)).toBeCloseTo(Math.log(1 + Math.exp(1)), 12);
    // softmax [2, 0, 0], label 1, T = 1: ln(e^2 + 2) - 0
    expect(nllAt(Float64Array.from([2, 0, 0]), Int32Array.from([1]), 3, 1)).toBeCloseTo(Math.log(Math.exp(2) + 2), 12);
  });

  it('sigmoid: every |logit| = 2, 3 of 4 right: the NLL is least where sigmoid(2 / T) = 3/4, T = 2 / ln 3', () => {
    const logits = Float64Array.from([2, -2, 2, 2]);
    const labels = Int32Array.from([1, 0, 1, 0]); // the last one is wrong
    expect(fitTemperature(logits, labels, 1)).toBeCloseTo(2 / Math.log(3), 6);
  });

  it('softmax: logits [2, 0, 0] (the 2 rotating), 2 of 4 right: p_top(T) = 1/2, e^(2/T) = 2, T = 2 / ln 2', () => {
    const logits = Float64Array.from([2, 0, 0, 0, 2, 0, 0, 0, 2, 2, 0, 0]);
    const labels = Int32Array.from([0, 1, 1, 2]); // rows 3 and 4 are wrong
    expect(fitTemperature(logits, labels, 3)).toBeCloseTo(2 / Math.log(2), 6);
    const p = probabilitiesAt(logits, 3, 2 / Math.log(2));
    expect(p[0]).toBeCloseTo(0.5, 9);
    expect(p[1]).toBeCloseTo(0.25, 9);
  });

  it('stops at the bounds: separable data sharpens to the smallest temperature, chance to the largest', () => {
    expect(fitTemperature(Float64Array.from([1, -1]), Int32Array.from([1, 0]), 1)).toBeCloseTo(CALIBRATE_DEFAULTS.minTemperature, 6);
    expect(fitTemperature(Float64Array.from([1, 1]), Int32Array.from([1, 0]), 1)).toBeCloseTo(CALIBRATE_DEFAULTS.maxTemperature, 4);
    expect(fitTemperature(Float64Array.from([1, -1]), Int32Array.from([1, 0]), 1, 0.5, 2)).toBeCloseTo(0.5, 6);
  });

  it('foldsOf: each class dealt round-robin, the count running on across classes', () => {
    expect([...foldsOf(Int32Array.from([0, 0, 0, 1, 1]), 2)]).toEqual([0, 1, 0, 1, 0]);
    expect([...foldsOf(Int32Array.from([1, 0, 1, 0, 2]), 3)]).toEqual([2, 0, 0, 1, 1]);
  });

  it('crossValidatedEce: each fold is predicted at the temperature fitted on the other', () => {
    // labels 0 0 1 1 1 1 -> folds 0 1 0 1 0 1. Fold 0: logits 2, labels (0, 1, 1): 2 of 3 right, T0 = 2 / ln 2.
    // Fold 1: logits 4, same labels, T1 = 4 / ln 2. Fold 0 at T1: p = sigmoid(ln 2 / 2) = 1 / (1 + 2^-1/2), accuracy 2/3;
    // fold 1 at T0: p = sigmoid(2 ln 2) = 4/5, accuracy 2/3. Two bins of 3 images each.
    const logits = Float64Array.from([2, 4, 2, 4, 2, 4]);
    const labels = Int32Array.from([0, 0, 1, 1, 1, 1]);
    const p0 = 1 / (1 + 2 ** -0.5);
    const expected = 0.5 * Math.abs(2 / 3 - p0) + 0.5 * Math.abs(2 / 3 - 0.8);
    expect(crossValidatedEce(logits, labels, 1, 2, 0.05, 20)).toBeCloseTo(expected, 6);
  });
});

/** Stripes with every 5th label flipped, so the head cannot be perfectly sure and T lands inside its bounds. */
function noisy(n: number, seed: number): { xs: tf.Tensor4D; ys: number[] } {
  const d = stripes(n, 32, seed);
  return { xs: d.xs, ys: d.ys.map((y, i) => (i % 5 === 2 ? 1 - y : y)) };
}

async function trained(classes: string[], hiddenUnits: number[] = []) {
  const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes, seed: 1, dropout: 0, hiddenUnits });
  const train = noisy(40, 7);
  const val = noisy(30, 11);
  const k = classes.length;
  const ys = (d: { ys: number[] }) => d.ys.map((y, i) => (k === 2 ? y : (y + (i % 3 === 0 ? 1 : 0)) % k));
  const trainData = { xs: train.xs, ys: ys(train) };
  const valData = { xs: val.xs, ys: ys(val) };
  const history = await fit(model, trainData, { epochs: 15, batchSize: 8, learningRate: 0.05, seed: 1, validationData: valData, keepValidationActivations: true, verbose: false });
  return { model, trainData, valData, history, dispose: () => tf.dispose([train.xs, val.xs]) };
}

describe('calibrate', () => {
  it('sigmoid head: divides the exact logits by T inside the last Dense layer; accuracy and ranking unchanged; no leak', async () => {
    const base = tf.memory().numTensors;
    const { model, valData, history, dispose } = await trained(['red', 'blue']);
    const before = model.predictProbabilities(valData.xs);
    const p = (await before.data()) as Float32Array;
    before.dispose();
    const evalBefore = await evaluate(model, valData);
    const inside = tf.memory().numTensors;
    const record = await calibrate(model, valData);
    expect(tf.memory().numTensors).toBe(inside);
    expect(record).toMatchObject({ method: 'temperature', images: 30, folds: 5 });
    expect(model.calibration).toEqual(record);
    expect(record.eceBefore).toBeCloseTo(evalBefore.ece, 5);
    expect(record.temperature).toBeGreaterThan(CALIBRATE_DEFAULTS.minTemperature * 1.01);
    expect(record.temperature).toBeLessThan(CALIBRATE_DEFAULTS.maxTemperature * 0.99);
    // The logits recovered from the probabilities (float32: close, not exact) give the same temperature.
    const logits = Float64Array.from({ length: 30 }, (_, i) => Math.log(p[i * 2 + 1]! / p[i * 2]!));
    const labels = Int32Array.from(valData.ys);
    expect(fitTemperature(logits, labels, 1)).toBeCloseTo(record.temperature, 3);
    const after = model.predictProbabilities(valData.xs);
    const q = (await after.data()) as Float32Array;
    after.dispose();
    for (let i = 0; i < 30; i++) expect(q[i * 2 + 1]).toBeCloseTo(1 / (1 + Math.exp(-logits[i]! / record.temperature)), 4);
    const evalAfter = await evaluate(model, valData, { activations: history.validationActivations });
    expect(evalAfter.accuracy).toBe(evalBefore.accuracy);
    expect(evalAfter.rocAuc).toBeCloseTo(evalBefore.rocAuc!, 6);
    expect(evalAfter.loss).toBeLessThanOrEqual(evalBefore.loss + 1e-6); // T minimises exactly this NLL
    // A second calibration finds T ~ 1 on the calibrated model; the record's temperature is the product.
    const again = await calibrate(model, valData, { activations: history.validationActivations });
    expect(again.temperature).toBeCloseTo(record.temperature, 3);
    history.validationActivations?.dispose();
    model.dispose();
    dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('softmax head with a hidden layer: only the last Dense layer is scaled; kept activations give the same record', async () => {
    const base = tf.memory().numTensors;
    const { model, valData, history, dispose } = await trained(['a', 'b', 'c'], [6]);
    const hidden = model.model.getLayer('tt_hidden_0').getWeights().map((w) => w.dataSync().slice());
    const before = model.predictProbabilities(valData.xs);
    const p = (await before.data()) as Float32Array;
    before.dispose();
    const withKept = await calibrate(model, valData, { activations: history.validationActivations });
    // Undo, then calibrate again without the kept activations: the same figures (the backbone runs again).
    const out = model.model.getLayer('tt_output');
    tf.tidy(() => out.setWeights(out.getWeights().map((w) => tf.mul(w, withKept.temperature))));
    model.setCalibration(undefined);
    const fresh = await calibrate(model, valData);
    expect(fresh.temperature).toBeCloseTo(withKept.temperature, 5);
    expect(fresh.eceBefore).toBeCloseTo(withKept.eceBefore, 6);
    expect(fresh.eceAfter).toBeCloseTo(withKept.eceAfter, 6);
    expect(model.model.getLayer('tt_hidden_0').getWeights().map((w) => w.dataSync().slice())).toEqual(hidden);
    // softmax(log p / T) = softmax(z / T): log p differs from the logits by a constant per row.
    const after = model.predictProbabilities(valData.xs);
    const q = (await after.data()) as Float32Array;
    after.dispose();
    for (let i = 0; i < 30; i++) {
      const e = [0, 1, 2].map((c) => Math.exp(Math.log(p[i * 3 + c]!) / fresh.temperature));
      const s = e[0]! + e[1]! + e[2]!;
      for (let c = 0; c < 3; c++) expect(q[i * 3 + c]).toBeCloseTo(e[c]! / s, 4);
    }
    history.validationActivations?.dispose();
    model.dispose();
    dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('the record is saved with the model and loaded back; the reloaded model predicts the calibrated probabilities', async () => {
    const base = tf.memory().numTensors;
    const { model, trainData, valData, history, dispose } = await trained(['red', 'blue']);
    history.validationActivations?.dispose();
    const record = await calibrate(model, valData);
    const dir = path.join(tmp, 'calibrated');
    await save(model, dir);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')).userDefinedMetadata.tfjsTransfer;
    expect(meta.calibration).toEqual(record);
    const loaded = await loadModel(dir);
    expect(loaded.calibration).toEqual(record);
    const a = model.predictProbabilities(valData.xs);
    const b = loaded.predictProbabilities(valData.xs);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBeLessThan(1e-6);
    tf.dispose([a, b]);
    await fit(loaded, trainData, { epochs: 1, batchSize: 8, seed: 2, verbose: false });
    expect(loaded.calibration).toBeUndefined(); // trained again: the record no longer describes the weights
    loaded.dispose();
    model.dispose();
    dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('a malformed record in a file is dropped, not trusted', async () => {
    const { calibrationRecord } = await import('../../src/transfer-model');
    expect(calibrationRecord({ method: 'temperature', temperature: -1, eceBefore: 0, eceAfter: 0, images: 1, folds: 2 })).toBeUndefined();
    expect(calibrationRecord({ method: 'platt', temperature: 1, eceBefore: 0, eceAfter: 0, images: 1, folds: 2 })).toBeUndefined();
    expect(calibrationRecord('x')).toBeUndefined();
    expect(calibrationRecord({ method: 'temperature', temperature: 2, eceBefore: 0.1, eceAfter: 0.05, images: 9, folds: 5, extra: 1 })).toEqual({
      method: 'temperature', temperature: 2, eceBefore: 0.1, eceAfter: 0.05, images: 9, folds: 5,
    });
  });

  it('refuses a head that does not end in a Dense layer, bad options, too few images; an abort leaves the model unchanged', async () => {
    const base = tf.memory().numTensors;
    const backbone = await loadBackbone(tinyBackbone(32), { takeOwnership: true });
    const pool = tfl.layers.globalAveragePooling2d({ name: 'tt_pool' });
    const dense = tfl.layers.dense({ units: 2, name: 'tt_logits' });
    const act = tfl.layers.activation({ activation: 'softmax', name: 'tt_output' });
    const stack = (x: tfl.SymbolicTensor) => act.apply(dense.apply(pool.apply(x))) as tfl.SymbolicTensor;
    const featureInput = tfl.input({ shape: backbone.featureShape, name: 'tt_features' });
    const odd = new TransferModel({
      backbone: freeze(backbone),
      classes: ['a', 'b'],
      model: tfl.model({ inputs: backbone.model!.inputs, outputs: stack(backbone.model!.outputs[0]!) }),
      head: tfl.model({ inputs: featureInput, outputs: stack(featureInput) }),
      headSpec: { pooling: 'avg', dropout: 0, hiddenUnits: [], hiddenActivation: 'relu', outputActivation: 'softmax' },
      headLayers: ['tt_pool', 'tt_logits', 'tt_output'],
    });
    const xs = tf.zeros([4, 32, 32, 3]) as tf.Tensor4D;
    const data = { xs, ys: [0, 1, 0, 1] };
    await expect(calibrate(odd, data)).rejects.toMatchObject({ code: 'NOT_SUPPORTED', message: expect.stringMatching(/"tt_output" is a Activation layer, not a Dense layer/) });
    odd.dispose();

    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['a', 'b'], seed: 1 });
    await expect(calibrate(model, data, { folds: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/folds/) });
    await expect(calibrate(model, data, { minTemperature: 2, maxTemperature: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const one = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
    await expect(calibrate(model, { xs: one, ys: [0] })).rejects.toMatchObject({ code: 'EMPTY_DATA' });
    const w = model.model.getLayer('tt_output').getWeights().map((t) => t.dataSync().slice());
    const controller = new AbortController();
    controller.abort();
    await expect(calibrate(model, data, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(model.model.getLayer('tt_output').getWeights().map((t) => t.dataSync().slice())).toEqual(w);
    expect(model.calibration).toBeUndefined();
    // undefined options take the defaults
    const r = await calibrate(model, data, { folds: undefined, batchSize: undefined, minTemperature: undefined, maxTemperature: undefined, signal: undefined, activations: undefined });
    expect(r.folds).toBe(4); // 4 images: one fold each
    tf.dispose([xs, one]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });
});
