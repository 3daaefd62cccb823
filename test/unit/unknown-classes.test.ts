/**
 * The unknown detector's `pretrainedClasses` method: finding a backbone's own classifier, the score and its
 * threshold on synthetic vectors, the record's checks, and the method through the public API on a tiny backbone
 * with a classifier on top (chosen by default, saved and loaded, dropped once the backbone trains), with no leak.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { attachHead, env, evaluate, fit, fitUnknownDetector, freeze, loadBackbone, loadModel, predict, save } from '../../src/node/index';
import { findPretrainedClassifier, type PretrainedClassifier } from '../../src/backbone/pretrained-classifier';
import { pretrainedClassesBytes } from '../../src/unknown-classes';
import { fitPretrainedClassesDetector, resolveUnknownArgs, unknownDetectorFromRecord, unknownMethodFor, type LabelledVectors } from '../../src/unknown-detector';
import { encodeFloat16 } from '../../src/util/float16';
import { Random } from '../../src/util/random';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-unknown-classes-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('findPretrainedClassifier', () => {
  const features = () => {
    const input = tfl.input({ shape: [4, 4, 3] });
    const f = tfl.layers.conv2d({ filters: 6, kernelSize: 1, name: 'feat' }).apply(input) as tfl.SymbolicTensor;
    return { input, f };
  };
  const dense = (units: number, activation: 'softmax' | 'linear' | 'relu', name = 'predictions') => tfl.layers.dense({ units, activation, name });

  it('finds pooling then a softmax dense layer, through dropout or a separate softmax, with the kernel transposed', () => {
    const { input, f } = features();
    const top = dense(5, 'softmax');
    const out = top.apply(tfl.layers.dropout({ rate: 0.2 }).apply(tfl.layers.globalAveragePooling2d({}).apply(f))) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    const c = findPretrainedClassifier(model, f)!;
    expect(c).toMatchObject({ dim: 6, units: 5, layer: 'predictions' });
    const [k, b] = top.getWeights().map((w) => w.arraySync()) as [number[][], number[]];
    for (let j = 0; j < 5; j++) for (let d = 0; d < 6; d++) expect(c.weights[j * 6 + d]).toBeCloseTo(k[d]![j]!, 6);
    expect([...c.bias]).toEqual(b.map((v) => Math.fround(v)));
    const { input: i2, f: f2 } = features();
    const logits = dense(3, 'linear', 'logits').apply(tfl.layers.globalAveragePooling2d({}).apply(f2)) as tfl.SymbolicTensor;
    const m2 = tfl.model({ inputs: i2, outputs: tfl.layers.activation({ activation: 'softmax' }).apply(logits) as tfl.SymbolicTensor });
    expect(findPretrainedClassifier(m2, f2)).toMatchObject({ dim: 6, units: 3, layer: 'logits' });
    model.dispose();
    m2.dispose();
  });

  it('finds none for a model without one: no top, a relu dense, flatten, another tensor, two outputs', () => {
    const cases: Array<(f: tfl.SymbolicTensor) => tfl.SymbolicTensor | tfl.SymbolicTensor[]> = [
      (f) => f,
      (f) => dense(4, 'relu').apply(tfl.layers.globalAveragePooling2d({}).apply(f)) as tfl.SymbolicTensor,
      (f) => dense(4, 'softmax').apply(tfl.layers.flatten({}).apply(f)) as tfl.SymbolicTensor,
      (f) => dense(4, 'softmax').apply(tfl.layers.globalMaxPooling2d({}).apply(f)) as tfl.SymbolicTensor,
      (f) => {
        const p = tfl.layers.globalAveragePooling2d({}).apply(f) as tfl.SymbolicTensor;
        return [dense(4, 'softmax', 'a').apply(p) as tfl.SymbolicTensor, dense(4, 'softmax', 'b').apply(p) as tfl.SymbolicTensor];
      },
    ];
    for (const make of cases) {
      const { input, f } = features();
      const model = tfl.model({ inputs: input, outputs: make(f) });
      expect(findPretrainedClassifier(model, f)).toBeUndefined();
      model.dispose();
    }
    // Pooling of another tensor than the features.
    const { input, f } = features();
    const g = tfl.layers.conv2d({ filters: 6, kernelSize: 1 }).apply(f) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: dense(4, 'softmax').apply(tfl.layers.globalAveragePooling2d({}).apply(g)) as tfl.SymbolicTensor });
    expect(findPretrainedClassifier(model, f)).toBeUndefined();
    model.dispose();
  });
});

/**
 * A synthetic "pretrained" world: `units` pretrained classes, each a unit direction in `dim` dimensions; the
 * classifier scores a vector by its dot product with each direction (times `sharpness`). Images are noisy vectors
 * near one direction.
 */
function world(dim: number, units: number, seed: number) {
  const rng = new Random(seed);
  const dirs = Array.from({ length: units }, () => {
    const v = Float32Array.from({ length: dim }, () => rng.next() - 0.5);
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  });
  const sharpness = 6;
  const classifier: PretrainedClassifier = {
    dim, units, layer: 'predictions',
    weights: Float32Array.from({ length: units * dim }, (_, i) => dirs[Math.floor(i / dim)]![i % dim]! * sharpness),
    bias: new Float32Array(units),
  };
  /** `n` images near pretrained classes `which` (cycled), labelled by `label(i)`. */
  const images = (which: number[], n: number, noise: number, label: (i: number) => number): LabelledVectors => {
    const values = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      const d = dirs[which[i % which.length]!]!;
      for (let k = 0; k < dim; k++) values[i * dim + k] = d[k]! + noise * (rng.next() - 0.5);
    }
    return { values, labels: Int32Array.from({ length: n }, (_, i) => label(i)), n, dim };
  };
  return { classifier, images };
}

describe('the pretrainedClasses detector on synthetic vectors', () => {
  const dim = 24;
  const w = world(dim, 40, 3);
  // Class 0 of the model looks like pretrained classes 0-2, class 1 like 3-5; other things like 10-30.
  const ours = [0, 3, 1, 4, 2, 5];
  const train = w.images(ours, 300, 0.4, (i) => (ours[i % 6]! < 3 ? 0 : 1));
  const held = w.images(ours, 200, 0.4, (i) => (ours[i % 6]! < 3 ? 0 : 1));
  const other = w.images(Array.from({ length: 20 }, (_, i) => 10 + i), 200, 0.4, () => -1);
  const args = resolveUnknownArgs({}, 'test');

  it('accepts the target share of held-out images and refuses images of other pretrained classes', () => {
    const d = fitPretrainedClassesDetector(train, held, 2, w.classifier, args);
    const heldScores = d.score(held.values, held.n);
    const accepted = heldScores.filter((s) => s >= d.record.threshold).length / held.n;
    expect(accepted).toBeGreaterThanOrEqual(0.95);
    expect(accepted).toBeLessThan(0.97);
    const otherScores = d.score(other.values, other.n);
    expect(otherScores.filter((s) => s >= d.record.threshold).length / other.n).toBeLessThan(0.05);
    // Standardised on the held-out images.
    const mean = heldScores.reduce((a, b) => a + b, 0) / held.n;
    expect(mean).toBeCloseTo(0, 2);
    expect(d.summary()).toMatchObject({ method: 'pretrainedClasses', pretrainedClasses: 40, temperature: 2, dim, trainingImages: 300, heldOutImages: 200, targetAcceptance: 0.95 });
    expect(d.summary().bytes).toBeLessThanOrEqual(pretrainedClassesBytes(40, dim));
    // Quantized saves keep it as it is (its classifier is stored in 4 bits already).
    expect(d.reencoded('uint4')).toBe(d);
  });

  it('a record survives JSON; a damaged one is refused with what is wrong', () => {
    const d = fitPretrainedClassesDetector(train, held, 2, w.classifier, args);
    const copy = unknownDetectorFromRecord(JSON.parse(JSON.stringify(d.record)), 2, 'test')!;
    expect([...copy.score(other.values, other.n)]).toEqual([...d.score(other.values, other.n)]);
    const broken = (edit: (r: Record<string, unknown>) => void) => {
      const r = JSON.parse(JSON.stringify(d.record)) as Record<string, unknown>;
      edit(r);
      return () => unknownDetectorFromRecord(r, 2, 'loadModel: x');
    };
    expect(broken((r) => (r.weights = 'AAAA'))).toThrow(/loadModel: x: the unknown detector stored with the model is damaged \(weights are not 4-bit rows/);
    expect(broken((r) => (r.units = 41))).toThrow(/weights are not 4-bit rows/);
    expect(broken((r) => (r.logPrior = encodeFloat16(new Float32Array(40).fill(0.5))))).toThrow(/logPrior is not a float16 vector of units log-probabilities/);
    expect(broken((r) => (r.temperature = 0))).toThrow(/temperature is not a positive number/);
    expect(broken((r) => (r.scoreStd = -1))).toThrow(/scoreStd is not a positive number/);
    expect(broken((r) => (r.classes = 3))).toThrow(/fitted for 3 classes, the model has 2/);
  });

  it('the method: auto picks it where it can be used; asked for where it cannot, the error says why', () => {
    const auto = resolveUnknownArgs({ method: undefined }, 'test');
    expect(auto.method).toBe('auto');
    expect(unknownMethodFor(auto, w.classifier, 'avg', dim, 'fit')).toBe('pretrainedClasses');
    expect(unknownMethodFor(auto, w.classifier, 'flatten', dim, 'fit')).toBe('pretrainedClasses');
    expect(unknownMethodFor(auto, undefined, 'avg', dim, 'fit')).toBe('prototypes');
    expect(unknownMethodFor(auto, w.classifier, 'max', dim, 'fit')).toBe('prototypes');
    expect(unknownMethodFor({ ...auto, maxBytes: 1000 }, w.classifier, 'avg', dim, 'fit')).toBe('prototypes');
    expect(unknownMethodFor({ ...auto, method: 'prototypes' }, w.classifier, 'avg', dim, 'fit')).toBe('prototypes');
    const asked = { ...auto, method: 'pretrainedClasses' as const };
    expect(() => unknownMethodFor(asked, undefined, 'avg', dim, 'fit')).toThrow(/fit: unknown.method 'pretrainedClasses' cannot be used: the backbone has no pretrained classifier/);
    expect(() => unknownMethodFor(asked, w.classifier, 'max', dim, 'fit')).toThrow(/the head pools by max/);
    expect(() => unknownMethodFor(asked, w.classifier, 'avg', dim + 1, 'fit')).toThrow(/takes 24 features, the pooled features have 25/);
    expect(() => resolveUnknownArgs({ method: 'magic' as 'auto' }, 'fit')).toThrow(/unknown.method must be 'auto', 'pretrainedClasses' or 'prototypes', got "magic"/);
  });
});

describe('the pretrainedClasses method through the public API (tiny backbone with a classifier on top)', () => {
  const size = 32;
  const greens = (n: number) => tf.tidy(() => tf.clipByValue(tf.add(tf.tile(tf.reshape(tf.tensor1d([60, 200, 60]), [1, 1, 1, 3]), [n, size, size, 1]), tf.randomUniform([n, size, size, 3], -60, 60, 'float32', 5)), 0, 255) as tf.Tensor4D);
  const backboneWithTop = () => loadBackbone(tinyBackbone(size, 1, 12), { inputSize: [size, size], preprocessing: { scale: 1 / 127.5, offset: -1 }, takeOwnership: true });
  const fitArgs = { epochs: 2, batchSize: 16, learningRate: 0.01, seed: 1, verbose: false };

  it('fit chooses it by default; predict, evaluate, save and load agree; no leak', async () => {
    const before = tf.memory().numTensors;
    const backbone = await backboneWithTop();
    expect(backbone.pretrainedClassifier).toMatchObject({ dim: 16, units: 12, layer: 'predictions' });
    expect(backbone.featureLayer).toBe('out_relu');
    const model = attachHead(freeze(backbone), { classes: ['red', 'blue'], seed: 1 });
    const train = stripes(80, size, 1);
    const val = stripes(40, size, 2);
    const others = greens(20);
    try {
      await fit(model, train, { ...fitArgs, validationData: val });
      const s = model.unknownDetector!;
      expect(s).toMatchObject({ method: 'pretrainedClasses', pretrainedClasses: 12, trainingImages: 80, heldOutImages: 40, targetAcceptance: 0.95 });
      const e = await evaluate(model, val, { unknown: others });
      expect(e.unknown!.accepted).toBeGreaterThanOrEqual(0.95);
      const preds = await predict(model, val.xs);
      expect(preds.filter((p) => !p.unknown).length / preds.length).toBeCloseTo(e.unknown!.accepted, 12);
      const otherPreds = await predict(model, others);
      expect(otherPreds.filter((p) => !p.unknown).length / otherPreds.length).toBeCloseTo(e.unknown!.otherAccepted!, 12);
      for (const quantize of ['float32', 'uint8'] as const) {
        const dir = path.join(tmp, `m-${quantize}`);
        await save(model, dir, { quantize });
        const loaded = await loadModel(dir);
        expect(loaded.unknownDetector).toEqual(s); // the classifier is stored in 4 bits whatever the weights
        expect(loaded.backbone.pretrainedClassifier).toBeUndefined(); // the artefact carries the detector, not the top
        if (quantize === 'float32') {
          const again = await predict(loaded, val.xs);
          again.forEach((p, i) => expect(p.familiarity).toBeCloseTo(preds[i]!.familiarity!, 5));
          // Refitted on a loaded model (no classifier any more): prototypes.
          expect((await fitUnknownDetector(loaded, train, { validationData: val })).method).toBe('prototypes');
        }
        loaded.dispose();
      }
      // Asked for prototypes, it fits prototypes.
      expect((await fitUnknownDetector(model, train, { validationData: val, method: 'prototypes' })).method).toBe('prototypes');
      expect((await fitUnknownDetector(model, train, { validationData: val })).method).toBe('pretrainedClasses');
    } finally {
      model.dispose();
      tf.dispose([train.xs, val.xs, others]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('once backbone layers train, the classifier is forgotten: prototypes, and pretrainedClasses refused before training', async () => {
    const backbone = await backboneWithTop();
    const model = attachHead(freeze(backbone, { trainableFrom: 'block_1_project' }), { classes: ['red', 'blue'], seed: 1 });
    const train = stripes(40, size, 1);
    const val = stripes(20, size, 2);
    try {
      await expect(fit(model, train, { ...fitArgs, validationData: val, unknown: { method: 'pretrainedClasses' } })).rejects.toThrow(/fit: unknown.method 'pretrainedClasses' cannot be used: the backbone has no pretrained classifier/);
      expect(model.trainingRuns).toHaveLength(0); // refused before any epoch
      await fit(model, train, { ...fitArgs, validationData: val });
      expect(model.unknownDetector!.method).toBe('prototypes');
      expect(backbone.pretrainedClassifier).toBeUndefined();
    } finally {
      model.dispose();
      tf.dispose([train.xs, val.xs]);
    }
  });
});
