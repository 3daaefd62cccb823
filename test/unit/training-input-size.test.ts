/**
 * transferLearn and the CLI's train run a MobileNetV2 layers backbone that declares 224 at
 * TRANSFER_LEARN_DEFAULTS.mobileNetV2InputSize (256) unless an input size is given; loadBackbone keeps the declared
 * size, and so does every other backbone.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { env, loadBackbone, transferLearn, TRANSFER_LEARN_DEFAULTS } from '../../src/node/index';
import { loadTrainingBackbone } from '../../src/backbone/load';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;

/** A small fully convolutional model declaring `size` whose last layer is not called out_relu. */
function plainModel(size: number): tfl.LayersModel {
  const input = tfl.input({ shape: [size, size, 3] });
  const x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 4, name: 'features' }).apply(input) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x });
}

describe('the training input size of MobileNetV2 backbones', () => {
  it('is 256 by default', () => {
    expect(TRANSFER_LEARN_DEFAULTS.mobileNetV2InputSize).toBe(256);
  });

  it('applies to a MobileNetV2 layers model declaring 224 unless a size is given; loadBackbone keeps 224', async () => {
    const before = tf.memory().numTensors;
    const shapes: Array<readonly number[]> = [];
    for (const load of [
      (m: tfl.LayersModel) => loadTrainingBackbone(m, { takeOwnership: true }, 256),
      (m: tfl.LayersModel) => loadTrainingBackbone(m, { inputSize: undefined, takeOwnership: true }, 256),
      (m: tfl.LayersModel) => loadTrainingBackbone(m, { inputSize: 224, takeOwnership: true }, 256),
      (m: tfl.LayersModel) => loadTrainingBackbone(m, { inputSize: [160, 192], takeOwnership: true }, 256),
      (m: tfl.LayersModel) => loadTrainingBackbone(m, { featureLayer: 'block_1_add', takeOwnership: true }, 256),
      (m: tfl.LayersModel) => loadBackbone(m, { takeOwnership: true }),
    ]) {
      const backbone = await load(tinyBackbone(224));
      shapes.push(backbone.inputShape);
      backbone.dispose();
    }
    expect(shapes).toEqual([[256, 256, 3], [256, 256, 3], [224, 224, 3], [160, 192, 3], [224, 224, 3], [224, 224, 3]]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('one layers model can be cut more than once (it used to fail inside tfjs: "multiple inbound nodes")', async () => {
    const before = tf.memory().numTensors;
    const model = tinyBackbone(224);
    const a = await loadBackbone(model);
    const b = await loadTrainingBackbone(model, {}, 256);
    const c = await loadBackbone(model, { featureLayer: 'block_1_add' });
    expect([a.inputShape, b.inputShape, c.inputShape]).toEqual([[224, 224, 3], [256, 256, 3], [224, 224, 3]]);
    expect([a.featureShape, b.featureShape, c.featureShape]).toEqual([[112, 112, 16], [128, 128, 16], [112, 112, 8]]);
    const x = tf.randomUniform([1, 224, 224, 3], 0, 255, 'float32', 5) as tf.Tensor4D;
    const fresh = await loadBackbone(tinyBackbone(224), { takeOwnership: true }); // the same weights, cut once
    const fa = tf.tidy(() => a.model!.predict(x) as tf.Tensor);
    const fm = tf.tidy(() => fresh.model!.predict(x) as tf.Tensor);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(fa, fm))).dataSync()[0])).toBeLessThan(1e-4);
    tf.dispose([x, fa, fm]);
    for (const m of [a, b, c, fresh]) m.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('does not apply to a MobileNetV2 declared at another size, nor to other models', async () => {
    const small = tinyBackbone(32);
    const plain = plainModel(224);
    const a = await loadTrainingBackbone(small, { takeOwnership: true }, 256);
    const b = await loadTrainingBackbone(plain, { takeOwnership: true }, 256);
    expect(a.inputShape).toEqual([32, 32, 3]);
    expect(b.inputShape).toEqual([224, 224, 3]);
    a.dispose();
    b.dispose();
  });

  it('transferLearn trains a MobileNetV2 declaring 224 at 256 when nothing is set, and at the size given', async () => {
    const data = stripes(16, 224, 3);
    const common = { data, classes: ['red', 'blue'], epochs: 1, batchSize: 8, seed: 1, examine: false, calibrate: false, unknown: false, verbose: false } as const;
    const byDefault = await transferLearn({ ...common, backbone: tinyBackbone(224), backboneOptions: { takeOwnership: true } });
    expect(byDefault.model.inputShape).toEqual([256, 256, 3]);
    byDefault.model.dispose();
    const given = await transferLearn({ ...common, backbone: tinyBackbone(224), backboneOptions: { inputSize: 224, takeOwnership: true } });
    expect(given.model.inputShape).toEqual([224, 224, 3]);
    given.model.dispose();
    data.xs.dispose();
  });
});
