import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachHead, evaluate, fit, freeze, loadBackbone, predict, TransferError, env } from '../../src/index';
import { stripes, tinyBackbone, weightValues } from '../helpers/tiny';

env.verbose = false;
let baseline = 0;
beforeEach(() => {
  baseline = tf.memory().numTensors;
});

describe('loadBackbone from a LayersModel', () => {
  it('cuts at out_relu by default, applies preprocessing, and frees everything on dispose', async () => {
    const before = tf.memory().numTensors;
    const backbone = await loadBackbone(tinyBackbone(32), { takeOwnership: true });
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    expect(backbone.kind).toBe('layers');
    expect(backbone.featureLayer).toBe('out_relu');
    expect(backbone.inputShape).toEqual([32, 32, 3]);
    expect(backbone.featureShape).toEqual([16, 16, 16]);
    // A model with out_relu is taken as MobileNetV2-like: [-1, 1] preprocessing.
    expect(backbone.preprocessing).toEqual({ scale: 1 / 127.5, offset: -1 });
    const x = tf.fill([2, 32, 32, 3], 127.5) as tf.Tensor4D;
    const f = backbone.extract(x);
    expect(f.shape).toEqual([2, 16, 16, 16]);
    tf.dispose([x, f]);
    backbone.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs a fully convolutional model at another input size', async () => {
    const backbone = await loadBackbone(tinyBackbone(32), { takeOwnership: true, inputSize: 48 });
    expect(backbone.inputShape).toEqual([48, 48, 3]);
    expect(backbone.featureShape).toEqual([24, 24, 16]);
    const x = tf.zeros([1, 48, 48, 3]) as tf.Tensor4D;
    const f = backbone.extract(x);
    expect(f.shape).toEqual([1, 24, 24, 16]);
    tf.dispose([x, f]);
    backbone.dispose();
  });

  it('names the candidates when the feature layer does not exist', async () => {
    const model = tinyBackbone(32);
    await expect(loadBackbone(model, { featureLayer: 'out_relu6' })).rejects.toThrow(/no layer named "out_relu6".*Candidates.*out_relu/s);
    model.dispose();
  });

  it('takes an explicit feature layer and preprocessing', async () => {
    const backbone = await loadBackbone(tinyBackbone(32), { takeOwnership: true, featureLayer: 'block_1_add', preprocessing: { scale: 1 / 255, offset: 0 } });
    expect(backbone.featureShape).toEqual([16, 16, 8]);
    expect(backbone.preprocessing).toEqual({ scale: 1 / 255, offset: 0 });
    backbone.dispose();
  });

  it('rejects bad arguments with specific errors', async () => {
    await expect(loadBackbone('mobilenet_v9')).rejects.toMatchObject({ code: 'UNKNOWN_BACKBONE' });
    await expect(loadBackbone('mobilenet_v2_1.4_160')).rejects.toThrow(/1.3 and 1.4 at 224 only/);
    await expect(loadBackbone(tinyBackbone(32), { takeOwnership: true, inputSize: 3 })).rejects.toThrow(/inputSize must be an integer from 8/);
    await expect(loadBackbone(42 as unknown as string)).rejects.toThrow(/unsupported source/);
    await expect(loadBackbone('./models/x/model.json')).rejects.toMatchObject({ code: 'NODE_ONLY' });
  });
});

describe('loadBackbone from a function', () => {
  it('probes the feature shape and applies preprocessing before calling it', async () => {
    let seenMax = 0;
    const fn = (x: tf.Tensor4D) => {
      seenMax = Math.max(seenMax, tf.max(x).dataSync()[0]!);
      return tf.mean(x, [1, 2]);
    };
    const backbone = await loadBackbone(fn, { inputSize: 16, preprocessing: { scale: 1 / 255, offset: 0 } });
    expect(backbone.kind).toBe('function');
    expect(backbone.featureShape).toEqual([3]);
    const x = tf.fill([2, 16, 16, 3], 255) as tf.Tensor4D;
    const f = backbone.extract(x);
    expect(Array.from(f.dataSync())).toEqual([1, 1, 1, 1, 1, 1]);
    expect(seenMax).toBeLessThanOrEqual(1);
    tf.dispose([x, f]);
    backbone.dispose();
  });
});

describe('attachHead', () => {
  it('builds a sigmoid head for two classes and softmax for more', async () => {
    const b2 = freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true }));
    const m2 = attachHead(b2, { classes: ['cat', 'dog'], seed: 1 });
    expect(m2.model.outputs[0]!.shape).toEqual([null, 1]);
    expect(m2.headSpec).toMatchObject({ pooling: 'avg', dropout: 0.2, outputActivation: 'sigmoid' });
    m2.dispose();
    const b3 = freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true }));
    const m3 = attachHead(b3, { classes: 3, hiddenUnits: [8], pooling: 'max' });
    expect(m3.model.outputs[0]!.shape).toEqual([null, 3]);
    expect(m3.classes).toEqual(['class_0', 'class_1', 'class_2']);
    m3.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('rejects a single class, duplicate names and bad pooling', async () => {
    const b = await loadBackbone(tinyBackbone(32), { takeOwnership: true });
    expect(() => attachHead(b, { classes: ['only'] })).toThrow(/at least 2 classes/);
    expect(() => attachHead(b, { classes: ['a', 'a'] })).toThrow(/"a" appears twice/);
    expect(() => attachHead(b, { classes: 2, pooling: 'none' })).toThrow(/needs vector features/);
    expect(() => attachHead(b, { classes: 2, dropout: 1 })).toThrow(/dropout must be in \[0, 1\)/);
    b.dispose();
  });
});


describe('freeze + fit', () => {
  afterEach(() => {
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('trains the head only: every backbone weight, BN statistics included, is bit-identical', async () => {
    const backbone = freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true }));
    const model = attachHead(backbone, { classes: ['left', 'right'], seed: 3, dropout: 0 });
    const before = weightValues(backbone.layers);
    const headBefore = weightValues(model.head.layers);
    const data = stripes(24);
    const history = await fit(model, data, { epochs: 20, batchSize: 8, learningRate: 0.05, seed: 1, verbose: false });
    expect(history.epochs).toBe(20);
    expect(history.loss[19]!).toBeLessThan(history.loss[0]!);
    expect(history.trained.layers).toEqual(['tt_output']);
    expect(history.boundary.layers).toEqual(['tt_pool']);
    const after = weightValues(backbone.layers);
    for (const [name, values] of before) expect(after.get(name), name).toEqual(values);
    const headAfter = weightValues(model.head.layers);
    expect(headAfter.get('tt_output#0')).not.toEqual(headBefore.get('tt_output#0'));
    expect(headBefore.get('tt_output#0')).toBeDefined();
    const ev = await evaluate(model, data);
    expect(ev.accuracy).toBeGreaterThan(0.9);
    data.xs.dispose();
    model.dispose();
  });

  it("keeps BatchNorm statistics even under tfjs's own LayersModel.fit", async () => {
    const backbone = freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true }));
    const model = attachHead(backbone, { classes: ['left', 'right'], seed: 3 });
    const before = weightValues(backbone.layers);
    const data = stripes(8);
    model.model.compile({ optimizer: tf.train.sgd(0.1), loss: 'binaryCrossentropy' });
    const ys = tf.tensor2d(data.ys, [8, 1]);
    await model.model.fit(data.xs, ys, { epochs: 2, batchSize: 4, verbose: 0 });
    const after = weightValues(backbone.layers);
    for (const [name, values] of before) expect(after.get(name), name).toEqual(values);
    tf.dispose([ys, data.xs]);
    (model.model.optimizer as tf.Optimizer).dispose();
    model.dispose();
  });

  it('fine-tunes above trainableFrom and leaves everything below bit-identical', async () => {
    const backbone = freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true }));
    const model = attachHead(backbone, { classes: ['left', 'right'], seed: 3 });
    const data = stripes(16);
    await fit(model, data, { epochs: 2, learningRate: 0.01, seed: 1, verbose: false });
    freeze(model, { trainableFrom: 'block_1_project' });
    const layers = backbone.layers;
    const cut = layers.findIndex((l) => l.name === 'block_1_project');
    const frozen = layers.slice(0, cut);
    const before = weightValues(frozen);
    const trainable = weightValues(layers.slice(cut));
    const history = await fit(model, data, { epochs: 2, learningRate: 0.01, seed: 1, verbose: false });
    expect(history.trained.layers).toContain('block_1_project');
    expect(history.trained.layers).not.toContain('block_1_depthwise');
    // The boundary is where frozen meets trainable: the skip connection crosses it too.
    expect(history.boundary.layers.sort()).toEqual(['Conv1_relu', 'block_1_depthwise_relu']);
    const after = weightValues(frozen);
    for (const [name, values] of before) expect(after.get(name), name).toEqual(values);
    const trainedAfter = weightValues(layers.slice(cut));
    expect(trainedAfter.get('block_1_project#0')).not.toEqual(trainable.get('block_1_project#0'));
    // BN moving statistics never change, even in the trainable part.
    expect(trainedAfter.get('Conv_1_bn#2')).toEqual(trainable.get('Conv_1_bn#2'));
    expect(trainedAfter.get('Conv_1_bn#3')).toEqual(trainable.get('Conv_1_bn#3'));
    data.xs.dispose();
    model.dispose();
  });

  it('is deterministic with a seed', async () => {
    const run = async () => {
      const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
      const data = stripes(16);
      const h = await fit(model, data, { epochs: 3, learningRate: 0.01, seed: 9, verbose: false, validationSplit: 0.25 });
      const w = weightValues(model.head.layers);
      data.xs.dispose();
      model.dispose();
      return { h, w };
    };
    const a = await run();
    const b = await run();
    expect(a.h.loss).toEqual(b.h.loss);
    expect(a.h.valLoss).toEqual(b.h.valLoss);
    expect(a.w).toEqual(b.w);
  });

  it('stops early and restores the best weights', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    const data = stripes(16);
    const val = stripes(8, 32, 99);
    const h = await fit(model, data, { epochs: 60, learningRate: 0.05, seed: 1, verbose: false, validationData: val, earlyStopping: { patience: 2 } });
    expect(h.initial).toBeDefined();
    if (h.stoppedEarly) expect(h.epochs).toBeLessThan(60);
    const ev = await evaluate(model, val);
    expect(ev.loss).toBeCloseTo(h.valLoss[h.bestEpoch]!, 4);
    tf.dispose([data.xs, val.xs]);
    model.dispose();
  });

  it('aborts within a batch through an AbortSignal', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    const data = stripes(16);
    const controller = new AbortController();
    const run = fit(model, data, {
      epochs: 50,
      batchSize: 4,
      verbose: false,
      callbacks: { onBatchEnd: (batch) => { if (batch === 5) controller.abort('user'); } },
      signal: controller.signal,
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError', code: 'ABORTED' });
    data.xs.dispose();
    model.dispose();
  });

  it('rejects bad data and options with specific errors', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    const data = stripes(8);
    await expect(fit(model, { xs: data.xs, ys: [0, 1] }, { verbose: false })).rejects.toThrow(/2 labels|length|expected 8/i);
    await expect(fit(model, { xs: data.xs, ys: data.ys.map((y) => y + 5) }, { verbose: false })).rejects.toThrow(/5|range|class/i);
    await expect(fit(model, { xs: data.xs, ys: data.ys.map(() => 'bird') }, { verbose: false })).rejects.toThrow(/bird/);
    await expect(fit(model, data, { epochs: -1 })).rejects.toThrow(/epochs must be an integer/);
    await expect(fit(model, data, { learningRate: 0 })).rejects.toThrow(/learningRate must be a positive number/);
    await expect(fit(model, data, { classWeight: { bird: 2 } })).rejects.toThrow(/"bird", which is not a class/);
    const empty = tf.zeros([0, 32, 32, 3]) as tf.Tensor4D;
    await expect(fit(model, { xs: empty, ys: [] }, { verbose: false })).rejects.toMatchObject({ code: 'EMPTY_DATA' });
    const gray = tf.zeros([2, 32, 32, 1]) as tf.Tensor4D;
    await expect(fit(model, { xs: gray, ys: [0, 1] }, { verbose: false })).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
    await expect(fit({} as never, data)).rejects.toThrow(TransferError);
    tf.dispose([data.xs, empty, gray]);
    model.dispose();
  });
});

describe('predict', () => {
  it('returns labels and probabilities for any image size', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    const img = tf.zeros([40, 50, 3]) as tf.Tensor3D;
    const [p] = await predict(model, img);
    expect(['l', 'r']).toContain(p!.label);
    expect(p!.probabilities.l! + p!.probabilities.r!).toBeCloseTo(1, 5);
    await expect(predict(model, tf.zeros([4, 4]) as unknown as tf.Tensor3D)).rejects.toThrow(/RGB/);
    img.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(baseline + 1); // the zeros([4,4]) above, created inline
  });
});
void tfl;

describe('predict on non-tensor images', () => {
  it('accepts PixelData objects (and lists of them), resizing each', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    const base = tf.memory().numTensors;
    const pixels = { data: new Uint8Array(20 * 10 * 4).fill(200), width: 20, height: 10 };
    const one = await predict(model, pixels);
    const two = await predict(model, [pixels, pixels]);
    expect(one).toHaveLength(1);
    expect(two).toHaveLength(2);
    expect(two[1]!.probabilities).toEqual(one[0]!.probabilities);
    await expect(predict(model, [])).rejects.toThrow(/list of images is empty/);
    expect(tf.memory().numTensors).toBe(base);
    model.dispose();
  });
});

describe('ownership of a model passed to loadBackbone', () => {
  it('stays with the caller by default, and moves to the backbone with takeOwnership', async () => {
    const base = tf.memory().numTensors;
    const mine = tinyBackbone(32);
    const model = attachHead(freeze(await loadBackbone(mine)), { classes: ['l', 'r'], seed: 1 });
    model.dispose();
    // The caller's model still works and still owns its weights.
    const y = mine.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor;
    expect(y.shape).toEqual([1, 16, 16, 16]);
    y.dispose();
    expect(tf.memory().numTensors).toBeGreaterThan(base);
    mine.dispose();
    const given = await loadBackbone(tinyBackbone(32), { takeOwnership: true });
    given.dispose();
    expect(tf.memory().numTensors).toBe(base + 1); // the zeros above, created inline
  });
});

describe('predictProbabilities', () => {
  it('runs the backbone folded, and equals the composed tf.LayersModel (BatchNorm included) within 1e-5', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['a', 'b', 'c'], seed: 2, hiddenUnits: [8] });
    const base = tf.memory().numTensors;
    const data = stripes(6);
    const diff = tf.tidy(() => {
      const ours = model.predictProbabilities(data.xs);
      const stock = model.model.predict(data.xs) as tf.Tensor;
      return tf.max(tf.abs(tf.sub(ours, stock))).dataSync()[0]!;
    });
    expect(diff).toBeLessThan(1e-5);
    data.xs.dispose();
    expect(tf.memory().numTensors).toBe(base);
    model.dispose();
  });

  it('foldModel owns its folded weights even when built inside tf.tidy', async () => {
    const { foldModel } = await import('../../src/backbone/fold');
    const backbone = await loadBackbone(tinyBackbone(32), { takeOwnership: true });
    let folded!: ReturnType<typeof foldModel>;
    tf.tidy(() => {
      folded = foldModel(backbone.model!);
    });
    const x = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
    const [y] = folded.predict(x);
    expect(y!.shape).toEqual([1, 16, 16, 16]);
    tf.dispose([x, y!]);
    folded.dispose();
    backbone.dispose();
  });
});

describe('augmentation that cannot be cached', () => {
  it('runs the frozen backbone once per image per epoch, not once more up front', async () => {
    let images = 0;
    const counting = (x: tf.Tensor4D) => {
      images += x.shape[0];
      return tf.mean(x, [1, 2]);
    };
    const model = attachHead(freeze(await loadBackbone(counting, { inputSize: 16 })), { classes: ['red', 'blue'], seed: 1 });
    const data = stripes(8, 16);
    images = 0;
    const augment = { flip: false, rotation: 0.1, zoom: false, translation: false, brightness: false, contrast: false } as const;
    await fit(model, data, { epochs: 3, batchSize: 8, seed: 1, verbose: false, augment });
    expect(images).toBe(3 * 8);
    // With a validation split, one clean pass first (the held-out images need un-augmented activations), then one
    // augmented pass per epoch; it still runs over the held-out images too, whose activations are then dropped.
    images = 0;
    await fit(model, data, { epochs: 2, batchSize: 8, seed: 1, verbose: false, augment, validationSplit: 0.25 });
    expect(images).toBe(8 + 2 * 8);
    data.xs.dispose();
    model.dispose();
  });
});
