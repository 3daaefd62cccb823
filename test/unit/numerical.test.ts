/**
 * Numerical faults in fit: a NaN or infinite loss stops training with NUMERICAL_FAULT and restores the best weights
 * seen (or the weights from before the call); exploding gradients are reported once and per batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachHead, env, fit, freeze, loadBackbone, TransferError, type TransferModel } from '../../src/index';
import { stripes, tinyBackbone, weightValues } from '../helpers/tiny';

let baseline = 0;
let logged: string[] = [];
const logger = env.logger;
beforeEach(() => {
  baseline = tf.memory().numTensors;
  logged = [];
  env.verbose = true;
  env.logger = (m) => logged.push(m);
});
afterEach(() => {
  env.logger = logger;
  env.verbose = false;
  expect(tf.memory().numTensors).toBe(baseline);
});

async function tinyModel(): Promise<TransferModel> {
  return attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5, hiddenUnits: [8], dropout: 0 });
}

/** SGD that, at step `at`, runs a user-supplied mischief on the weights or the gradients. */
class FaultySgd extends tf.SGDOptimizer {
  steps = 0;
  constructor(
    learningRate: number,
    private readonly at: number,
    private readonly mischief: { corruptWeights?: tf.Variable[]; scaleGradients?: number },
  ) {
    super(learningRate);
  }
  override computeGradients(f: () => tf.Scalar, varList?: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    const out = super.computeGradients(f, varList);
    if (this.steps + 1 === this.at && this.mischief.scaleGradients) {
      for (const key of Object.keys(out.grads)) {
        const g = out.grads[key]!;
        out.grads[key] = tf.mul(g, this.mischief.scaleGradients);
        g.dispose();
      }
    }
    return out;
  }
  override applyGradients(grads: Parameters<tf.SGDOptimizer['applyGradients']>[0]): void {
    super.applyGradients(grads);
    if (++this.steps === this.at && this.mischief.corruptWeights) {
      for (const v of this.mischief.corruptWeights) {
        const t = tf.mul(v, NaN);
        v.assign(t);
        t.dispose();
      }
    }
  }
}

describe('NaN and infinite losses', () => {
  for (const [name, value] of [['NaN', NaN], ['infinite', Infinity]] as const) {
    it(`refuses ${name} pixels before training, naming the images (was: trained silently on wasm)`, async () => {
      const model = await tinyModel();
      const data = stripes(16);
      const poisoned = tf.tidy(() => tf.concat([tf.fill([1, 32, 32, 3], value), tf.slice(data.xs, [1, 0, 0, 0], [-1, -1, -1, -1])])) as tf.Tensor4D;
      const before = weightValues(model.model.layers);
      const run = fit(model, { xs: poisoned, ys: data.ys }, { epochs: 3, batchSize: 16, learningRate: 0.01, seed: 1, verbose: false });
      await expect(run).rejects.toMatchObject({ code: 'NUMERICAL_FAULT' });
      // (wasm's clip/relu6 turn NaN into 0, so without the pixel check the image trained silently as a grey one.)
      await expect(run).rejects.toThrow(/fit: a training image has NaN or infinite pixel values \(image 0; indices in data order\); training did not start and no weight changed/);
      expect(weightValues(model.model.layers)).toEqual(before);
      tf.dispose([data.xs, poisoned]);
      model.dispose();
    });
  }

  it('restores the best epoch weights when it blows up later (early stopping on)', async () => {
    const model = await tinyModel();
    const data = stripes(16);
    const perEpoch: Map<string, Float32Array>[] = [];
    const kernels = model.head.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const optimizer = new FaultySgd(0.05, 9, { corruptWeights: kernels }); // 4 batches per epoch: step 9 = epoch 3
    const run = fit(model, data, {
      epochs: 6, batchSize: 4, seed: 1, verbose: false, optimizer, earlyStopping: { monitor: 'loss', patience: 10 },
      callbacks: { onEpochEnd: () => void perEpoch.push(weightValues(model.model.layers)) },
    });
    const error = (await run.catch((e: unknown) => e)) as TransferError;
    expect(error).toBeInstanceOf(TransferError);
    expect(error.code).toBe('NUMERICAL_FAULT');
    // NaN weights give a clipped (finite) loss but NaN gradients: the gradient check catches what the loss check missed.
    const m = /(loss|gradient norm) became NaN at epoch 3, batch 2; training stopped and the weights of the best epoch \((\d)\) were restored/.exec(error.message);
    expect(m, error.message).not.toBeNull();
    expect(perEpoch).toHaveLength(2);
    expect(weightValues(model.model.layers)).toEqual(perEpoch[Number(m![2]) - 1]);
    optimizer.dispose();
    data.xs.dispose();
    model.dispose();
  });

  it('restores the weights from before the call when it blows up later without early stopping', async () => {
    const model = await tinyModel();
    const data = stripes(16);
    const before = weightValues(model.model.layers);
    const kernels = model.head.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const optimizer = new FaultySgd(0.05, 6, { corruptWeights: kernels });
    await expect(fit(model, data, { epochs: 4, batchSize: 4, seed: 1, verbose: false, optimizer })).rejects.toThrow(/became NaN at epoch 2, batch 3.*weights from before this fit were restored\. Lower the learning rate or check/);
    expect(weightValues(model.model.layers)).toEqual(before);
    optimizer.dispose();
    data.xs.dispose();
    model.dispose();
  });

  it('a non-finite gradient never reaches the weights', async () => {
    const model = await tinyModel();
    const data = stripes(16);
    const before = weightValues(model.model.layers);
    const optimizer = new FaultySgd(0.05, 3, { scaleGradients: Infinity });
    await expect(fit(model, data, { epochs: 2, batchSize: 4, seed: 1, verbose: false, optimizer })).rejects.toThrow(/gradient norm became (Infinity|NaN) at epoch 1, batch 3/);
    expect(weightValues(model.model.layers)).toEqual(before);
    expect(optimizer.steps).toBe(2);
    optimizer.dispose();
    data.xs.dispose();
    model.dispose();
  });
});

describe('exploding gradients', () => {
  it('reports each batch gradient norm and warns once above gradientNormWarning', async () => {
    const model = await tinyModel();
    const data = stripes(16);
    const norms: number[] = [];
    const history = await fit(model, data, {
      epochs: 2, batchSize: 4, seed: 1, verbose: false, gradientNormWarning: 1e-9,
      callbacks: { onBatchEnd: (_b, logs) => void norms.push(logs.gradientNorm) },
    });
    expect(norms).toHaveLength(8);
    for (const n of norms) expect(n).toBeGreaterThan(0);
    expect(history.warnings).toHaveLength(1);
    expect(history.warnings[0]).toMatch(/exploding gradients\? The gradient norm reached .* at epoch 1, batch 1 \(above gradientNormWarning 1e-9\)\. Lower the learning rate/);
    expect(logged.filter((l) => l.includes('exploding'))).toEqual(history.warnings);
    data.xs.dispose();
    model.dispose();
  });

  it('warns when the norm jumps 100x above its running median, and not otherwise', async () => {
    const model = await tinyModel();
    const data = stripes(32);
    const quiet = await fit(model, data, { epochs: 2, batchSize: 4, seed: 1, verbose: false, learningRate: 0.01 });
    expect(quiet.warnings).toEqual([]);
    const optimizer = new FaultySgd(0.0, 12, { scaleGradients: 1e4 }); // lr 0: the spike does not change the weights
    const norms: number[] = [];
    const history = await fit(model, data, { epochs: 2, batchSize: 4, seed: 1, verbose: false, optimizer, callbacks: { onBatchEnd: (_b, l) => void norms.push(l.gradientNorm) } });
    expect(history.warnings).toHaveLength(1);
    expect(history.warnings[0]).toMatch(/at epoch 2, batch 4 \(\d+x the running median/);
    expect(norms[11]! / norms[10]!).toBeGreaterThan(100);
    optimizer.dispose();
    data.xs.dispose();
    model.dispose();
  });

  it('the split step (computeGradients, norm, applyGradients) stays deterministic', async () => {
    const run = async () => {
      const model = await tinyModel();
      const data = stripes(16);
      const h = await fit(model, data, { epochs: 2, batchSize: 8, seed: 2, verbose: false, shuffle: false });
      const w = weightValues(model.model.layers);
      data.xs.dispose();
      model.dispose();
      return { h, w };
    };
    const a = await run();
    const b = await run();
    expect(a.h.loss).toEqual(b.h.loss);
    expect(a.w).toEqual(b.w);
  });
});
