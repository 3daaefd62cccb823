import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlanRunner, foldModel } from '../../src/backbone/fold';
import { disposeLayers } from '../../src/util/dispose';
import { loadBackbone } from '../../src/backbone/load';
import type { Backbone } from '../../src/backbone/backbone';
import '../../src/node/index';
import { env } from '../../src/env';
import { hasShared, MODEL_035, MODEL_100 } from '../helpers/real-data';

const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? tf.getBackend();
// cpu is ~30x slower than wasm: tiny inputs there.
const SIZE = backend === 'cpu' ? 96 : 224;
const N = backend === 'cpu' ? 2 : 4;

/** max |a - b| / max |a|. */
function relDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => {
    expect(b.shape).toEqual(a.shape);
    const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
    const m = tf.max(tf.abs(a)).dataSync()[0]!;
    return d / Math.max(m, 1e-12);
  });
}

function snapshotWeights(model: tfl.LayersModel): Float32Array[] {
  return model.weights.map((w) => Float32Array.from(w.read().dataSync() as Float32Array));
}

function expectBitIdentical(model: tfl.LayersModel, before: Float32Array[]): void {
  const after = snapshotWeights(model);
  expect(after.length).toBe(before.length);
  after.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(before[i]!.buffer))).toBe(true));
}

/** Random moving statistics so folding is not a no-op. */
function randomiseBatchNorm(model: tfl.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const ws = layer.getWeights();
    const values = ws.map((w, i) =>
      i === ws.length - 1 ? tf.randomUniform(w.shape, 0.5, 2, 'float32', seed + i) : tf.randomNormal(w.shape, 0, 0.5, 'float32', seed + i),
    );
    layer.setWeights(values);
    tf.dispose(values);
  }
}

describe('foldModel on synthetic graphs', () => {
  it('folds Conv2D/DepthwiseConv2D + BN (+ReLU6), keeps shared tensors unfolded, falls back for unknown layers', () => {
    const base = tf.memory().numTensors;
    const input = tfl.input({ shape: [12, 12, 3] });
    const seed = (s: number) => tfl.initializers.glorotUniform({ seed: s });
    let x = tfl.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }).apply(input) as tfl.SymbolicTensor;
    x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, useBias: false, kernelInitializer: seed(1) }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.batchNormalization({ epsilon: 1e-3 }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ maxValue: 6 }).apply(x) as tfl.SymbolicTensor;
    // Depthwise with multiplier 2 and bias, then BN without scale/center, then plain ReLU.
    let y = tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', depthwiseInitializer: seed(2) }).apply(x) as tfl.SymbolicTensor;
    y = tfl.layers.batchNormalization({ scale: false, center: false }).apply(y) as tfl.SymbolicTensor;
    y = tfl.layers.reLU().apply(y) as tfl.SymbolicTensor;
    // A conv whose output feeds two layers: its BN cannot be folded into it.
    const shared = tfl.layers.conv2d({ filters: 16, kernelSize: 1, kernelInitializer: seed(3) }).apply(y) as tfl.SymbolicTensor;
    const bnShared = tfl.layers.batchNormalization().apply(shared) as tfl.SymbolicTensor;
    let z = tfl.layers.add().apply([bnShared, shared]) as tfl.SymbolicTensor;
    z = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(z) as tfl.SymbolicTensor; // no native op: layer.apply fallback
    z = tfl.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'relu', kernelInitializer: seed(4) }).apply(z) as tfl.SymbolicTensor;
    z = tfl.layers.globalAveragePooling2d({}).apply(z) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 3, activation: 'relu6', kernelInitializer: seed(5) }).apply(z) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: [out, y] });
    randomiseBatchNorm(model, 7);
    const before = snapshotWeights(model);
    const weightTensors = tf.memory().numTensors;

    const folded = foldModel(model);
    expect(folded.stats.foldedBatchNorms).toBe(2);
    expect(folded.stats.fusedActivations).toBe(2);
    expect(folded.stats.fallbacks).toEqual(['MaxPooling2D']);
    expect(folded.serialize()).toBeUndefined(); // a fallback layer cannot leave this thread

    const xs = tf.randomUniform([2, 12, 12, 3], -1, 1, 'float32', 3);
    const ref = model.predict(xs) as tf.Tensor[];
    const got = folded.predict(xs);
    expect(got).toHaveLength(2);
    got.forEach((g, i) => expect(relDiff(ref[i]!, g)).toBeLessThan(1e-4));
    tf.dispose([...ref, ...got, xs]);
    folded.dispose();
    folded.dispose(); // twice is safe
    expect(tf.memory().numTensors).toBe(weightTensors);
    expectBitIdentical(model, before);
    disposeLayers(model.layers);
    expect(tf.memory().numTensors).toBe(base);
  });

  it('serializes a plan without fallbacks and runs it with tfjs-core alone', () => {
    const input = tfl.input({ shape: [8, 8, 3] });
    let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tfl.SymbolicTensor;
    x = tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ maxValue: 6 }).apply(x) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: x });
    randomiseBatchNorm(model, 11);
    const base = tf.memory().numTensors;
    const folded = foldModel(model);
    const serialized = folded.serialize()!;
    expect(serialized.plan.steps.map((s) => s.op)).toEqual(['conv2d']);
    folded.dispose();
    const runner = createPlanRunner(serialized); // weights are copies: the folded model is gone
    const xs = tf.randomUniform([3, 8, 8, 3], 0, 1, 'float32', 5);
    const ref = model.predict(xs) as tf.Tensor;
    const [got] = runner.predict(xs);
    expect(relDiff(ref, got!)).toBeLessThan(1e-4);
    tf.dispose([ref, got!, xs]);
    runner.dispose();
    expect(tf.memory().numTensors).toBe(base);
    disposeLayers(model.layers);
  });
});

describe.skipIf(!hasShared)('foldModel on the real MobileNetV2 models', () => {
  const backbones: Record<string, Backbone> = {};
  beforeAll(async () => {
    env.verbose = false;
    backbones['0.35'] = await loadBackbone(MODEL_035, { inputSize: SIZE });
    backbones['1.0'] = await loadBackbone(MODEL_100, { inputSize: SIZE });
  });
  afterAll(() => Object.values(backbones).forEach((b) => b.dispose()));

  for (const [name, bn] of [['0.35', 52], ['1.0', 0]] as const) {
    it(`matches model.predict within 1e-4 on MobileNetV2 ${name} (${bn} BatchNorms folded) and leaves its weights bit-identical`, async () => {
      const bb = backbones[name]!;
      const model = bb.model!;
      const before = snapshotWeights(model);
      const base = tf.memory().numTensors;
      const xs = tf.randomUniform([N, SIZE, SIZE, 3], 0, 255, 'float32', 42) as tf.Tensor4D;
      const folded = foldModel(model);
      expect(folded.stats.foldedBatchNorms).toBe(bn);
      expect(folded.stats.fusedActivations).toBe(35); // every ReLU6 of MobileNetV2 runs inside its conv
      expect(folded.stats.fallbacks).toEqual([]);
      const ref = model.predict(xs) as tf.Tensor;
      const [got] = folded.predict(xs);
      expect(relDiff(ref, got!)).toBeLessThan(1e-4);
      // Backbone.extract runs the folded path too.
      const viaExtract = bb.extract(xs);
      expect(relDiff(ref, viaExtract)).toBeLessThan(1e-4);
      // The worker path: serialized plan on this backend.
      const runner = createPlanRunner(folded.serialize()!);
      const [viaPlan] = runner.predict(xs);
      expect(relDiff(ref, viaPlan!)).toBeLessThan(1e-4);
      tf.dispose([ref, got!, viaExtract, viaPlan!, xs]);
      runner.dispose();
      folded.dispose();
      expect(tf.memory().numTensors).toBe(base);
      expectBitIdentical(model, before);
    });
  }
});
