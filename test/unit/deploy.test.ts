/**
 * Deploying a model small: quantized artefacts (float16 / uint8 in the weight manifest stock tfjs reads, which
 * weights stay float32, the verify check and its refusal), head-only artefacts with a checked backbone reference,
 * the model card inside every artefact, and a format-1 artefact written before all this (test/fixtures/format1-tiny).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { attachHead, env, evaluate, fit, freeze, loadBackbone, loadModel, save, type TransferModel } from '../../src/node/index';
import { quantizeArtifacts } from '../../src/artifacts/quantize';
import { toHalfBits as float16Bits } from '../../src/util/float16';
import { VERSION } from '../../src/util/version';
import { stripes } from '../helpers/tiny';

env.verbose = false;

/** A MobileNetV2-shaped backbone wide enough that some kernels have 1024+ values (quantized). */
function wideBackbone(seed = 1, size = 32): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.glorotUniform({ seed: seed * 100 + s });
  const input = tfl.input({ shape: [size, size, 3], name: 'input_1' });
  let x = tfl.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1', kernelInitializer: init(1) }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn_Conv1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6, name: 'Conv1_relu' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 64, kernelSize: 1, name: 'block_1_expand', kernelInitializer: init(2) }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6, name: 'block_1_expand_relu' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'block_1_depthwise', depthwiseInitializer: init(3) }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 32, kernelSize: 1, name: 'block_1_project', kernelInitializer: init(4) }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 64, kernelSize: 1, name: 'Conv_1', kernelInitializer: init(5) }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6, name: 'out_relu' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x, name: 'wide_mobilenet' });
}

async function wideModel(seed = 1): Promise<TransferModel> {
  const backbone = freeze(await loadBackbone(wideBackbone(seed), { name: 'wide_mobilenet', takeOwnership: true }));
  return attachHead(backbone, { classes: ['red', 'blue'], seed: 3 });
}

/** A save handler keeping the artefacts in memory (and counting writes). */
function memory(): tf.io.IOHandler & { artifacts?: tf.io.ModelArtifacts; writes: number } {
  const h: tf.io.IOHandler & { artifacts?: tf.io.ModelArtifacts; writes: number } = {
    writes: 0,
    save: async (a) => {
      h.writes++;
      h.artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  };
  return h;
}

const bytesOf = (a: tf.io.ModelArtifacts) => (a.weightData as ArrayBuffer).byteLength;
const jsonBytes = (a: tf.io.ModelArtifacts) => JSON.stringify({ modelTopology: a.modelTopology, weightsManifest: [{ paths: ['w.bin'], weights: a.weightSpecs }], userDefinedMetadata: a.userDefinedMetadata }).length;

async function probabilities(model: TransferModel, xs: tf.Tensor4D): Promise<Float32Array> {
  const p = model.predictProbabilities(xs);
  const out = (await p.data()) as Float32Array;
  p.dispose();
  return out;
}

describe('float16 encoding', () => {
  it('rounds to nearest even, keeps subnormals, overflows to infinity, keeps NaN', () => {
    expect(float16Bits(1)).toBe(0x3c00);
    expect(float16Bits(-2)).toBe(0xc000);
    expect(float16Bits(65504)).toBe(0x7bff);
    expect(float16Bits(65520)).toBe(0x7c00); // halfway to the next, rounds to even: infinity
    expect(float16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float16Bits(2 ** -26)).toBe(0x0000);
    expect(float16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie, to even
    expect(float16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, to even (up)
    expect(float16Bits(0) | float16Bits(-0)).toBe(0x8000);
    expect(float16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(float16Bits(NaN) & 0x3ff).not.toBe(0);
  });

  it('tfjs decodes what it writes: float16 within 2^-11 relative, uint8 within half a step', () => {
    const values = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i * 12.9898) * 3);
    const specs: tf.io.WeightsManifestEntry[] = [{ name: 'k/kernel', shape: [50, 100], dtype: 'float32' }];
    const artifacts: tf.io.ModelArtifacts = { modelTopology: {}, weightSpecs: specs, weightData: values.slice().buffer };
    for (const dtype of ['float16', 'uint8'] as const) {
      const q = quantizeArtifacts(artifacts, dtype, () => undefined);
      expect(q.bytesAfter).toBe(values.length * (dtype === 'uint8' ? 1 : 2));
      const decoded = tf.io.decodeWeights(q.artifacts.weightData!, q.artifacts.weightSpecs!);
      const back = decoded['k/kernel']!.dataSync();
      const spec = q.artifacts.weightSpecs![0]!;
      let worst = 0;
      for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(back[i]! - values[i]!) / (dtype === 'uint8' ? spec.quantization!.scale! : Math.abs(values[i]!) || 1));
      expect(worst).toBeLessThanOrEqual(dtype === 'uint8' ? 0.5 + 1e-4 : 2 ** -11);
      tf.dispose(Object.values(decoded));
    }
  });
});

describe('uint8 grids', () => {
  const roundTrip = (values: Float32Array) => {
    const q = quantizeArtifacts({ modelTopology: {}, weightSpecs: [{ name: 'k/kernel', shape: [values.length, 1], dtype: 'float32' }], weightData: values.slice().buffer }, 'uint8', () => undefined);
    const decoded = tf.io.decodeWeights(q.artifacts.weightData!, q.artifacts.weightSpecs!);
    const back = Float32Array.from(decoded['k/kernel']!.dataSync());
    tf.dispose(Object.values(decoded));
    return back;
  };

  it('a tensor already on a uint8 grid (dequantized weights) comes back on the same levels, even on a grid that uses 255', () => {
    const scale = 0.0123;
    const min = -1.37;
    const values = Float32Array.from({ length: 3000 }, (_, i) => ((i * 37) % 255) * scale + min); // levels 0..254
    const back = roundTrip(values);
    // Within float32 rounding of the same level (a min / max grid would be off by up to half a step, 0.006).
    back.forEach((v, i) => expect(Math.abs(v - values[i]!)).toBeLessThan(1e-6));
  });

  it('otherwise 0 is a level: zero weights stay zero (no shift shared by every weight near zero)', () => {
    const values = Float32Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? 0 : Math.sin(i) * 0.7 + 0.1));
    const back = roundTrip(values);
    for (let i = 0; i < values.length; i += 3) expect(back[i]).toBe(0);
  });
});

describe('quantized artefacts', () => {
  it('uint8 and float16: kernels quantized, head, vectors and small tensors float32; stock tfjs and loadModel read them', async () => {
    const model = await wideModel();
    const { xs } = stripes(6, 32, 5);
    const before = await probabilities(model, xs);
    const sizes: Record<string, number> = {};
    for (const quantize of ['float32', 'float16', 'uint8'] as const) {
      const h = memory();
      const report = await save(model, h, { quantize });
      const a = h.artifacts!;
      sizes[quantize] = bytesOf(a);
      expect(report.artefact).toMatchObject({ quantization: quantize, backbone: 'embedded', weightBytes: bytesOf(a) });
      const quantized = a.weightSpecs!.filter((s) => s.quantization).map((s) => s.name);
      if (quantize === 'float32') expect(quantized).toEqual([]);
      else {
        expect(quantized.map((n) => n.split('/')[0]).sort()).toEqual(['Conv_1', 'block_1_expand', 'block_1_project']);
        expect(a.weightSpecs!.find((s) => s.quantization)!.quantization!.dtype).toBe(quantize);
        expect(report.artefact.quantizedWeights).toBe(3);
      }
      // Stock tfjs: raw pixels in, probabilities out.
      const stock = await tfl.loadLayersModel(tf.io.fromMemory(a));
      const p = stock.predict(xs) as tf.Tensor;
      const stockP = await p.data();
      p.dispose();
      stock.dispose();
      const loaded = await loadModel(tf.io.fromMemory(a));
      expect(loaded.card.artefact?.quantization).toBe(quantize);
      const after = await probabilities(loaded, xs);
      loaded.dispose();
      const tol = quantize === 'float32' ? 1e-6 : quantize === 'float16' ? 2e-3 : 3e-2;
      for (let i = 0; i < 6; i++) {
        expect(Math.abs(stockP[i]! - before[2 * i + 1]!)).toBeLessThan(tol);
        expect(Math.abs(after[2 * i + 1]! - before[2 * i + 1]!)).toBeLessThan(tol);
      }
    }
    // 5120 values quantized (1024 + 2048 + 2048): 2 bytes each saved by float16, 3 by uint8.
    expect(sizes.float32! - sizes.float16!).toBe(5120 * 2);
    expect(sizes.float32! - sizes.uint8!).toBe(5120 * 3);
    xs.dispose();
    model.dispose();
  });

  it('a quantized artefact saved to a folder loads through the file loader (manifest validated)', async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'tt-deploy-'));
    try {
      const model = await wideModel();
      await save(model, dir, { quantize: 'uint8' });
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
      expect(json.weightsManifest[0]!.weights.some((w) => w.quantization?.dtype === 'uint8')).toBe(true);
      const loaded = await loadModel(dir);
      expect(loaded.card.artefact).toMatchObject({ quantization: 'uint8', library: { name: 'tfjs-transfer', version: VERSION } });
      loaded.dispose();
      model.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('verify reports the accuracy change; a drop over maxAccuracyDrop is refused and nothing is written', async () => {
    const model = await wideModel();
    const { xs } = stripes(24, 32, 8);
    // Labels = the float32 model's own answers (accuracy 1 before); then the output bias is moved so that one
    // image sits exactly between its float32 and its uint8 logit: quantizing flips it, deterministically.
    const h0 = memory();
    await save(model, h0, { quantize: 'uint8' });
    const q = await loadModel(tf.io.fromMemory(h0.artifacts!));
    const pf = await probabilities(model, xs);
    const pq = await probabilities(q, xs);
    q.dispose();
    const logit = (p: number) => Math.log(p / (1 - p));
    let k = 0;
    for (let i = 0; i < 24; i++) if (Math.abs(logit(pf[2 * i + 1]!) - logit(pq[2 * i + 1]!)) > Math.abs(logit(pf[2 * k + 1]!) - logit(pq[2 * k + 1]!))) k = i;
    const shift = -(logit(pf[2 * k + 1]!) + logit(pq[2 * k + 1]!)) / 2;
    const out = model.head.getLayer('tt_output');
    const [kernel, bias] = out.getWeights();
    const moved = tf.add(bias!, shift);
    out.setWeights([kernel!, moved]);
    moved.dispose();
    const shifted = await probabilities(model, xs);
    const ys = Array.from({ length: 24 }, (_, i) => (shifted[2 * i + 1]! > 0.5 ? 1 : 0));

    // The default bound (one point) refuses a 1-in-24 drop, and nothing is written.
    const refused = memory();
    const baseline = tf.memory().numTensors;
    await expect(save(model, refused, { quantize: 'uint8', verify: { xs, ys } })).rejects.toMatchObject({
      code: 'ACCURACY_DROP',
      message: expect.stringMatching(/from 100\.00% to 95\.83% .*Nothing was written/),
    });
    expect(refused.writes).toBe(0);
    expect(tf.memory().numTensors).toBe(baseline);
    // A bound the drop fits in: written, with the check in the report.
    const ok = memory();
    const report = await save(model, ok, { quantize: 'uint8', verify: { xs, ys }, maxAccuracyDrop: 0.05 });
    expect(report.verification).toMatchObject({ images: 24, accuracyBefore: 1, maxAccuracyDrop: 0.05 });
    expect(report.verification!.drop).toBeCloseTo(1 / 24, 12); // the one image flipped
    // float16 keeps it (its error is far smaller than the uint8 one the bias was placed against).
    const half = await save(model, memory(), { quantize: 'float16', verify: { xs, ys }, maxAccuracyDrop: 0 });
    expect(half.verification!.drop).toBe(0);
    // The card of the written file holds the check; verify does not replace the model's own evaluation.
    const loaded = await loadModel(tf.io.fromMemory(ok.artifacts!));
    expect(loaded.card.artefact?.verification?.images).toBe(24);
    loaded.dispose();
    expect(model.evaluation).toBeUndefined();
    xs.dispose();
    model.dispose();
  });

  it('refuses bad options', async () => {
    const model = await wideModel();
    await expect(save(model, memory(), { quantize: 'int4' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('float16') });
    await expect(save(model, memory(), { maxAccuracyDrop: 5 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(save(model, memory(), { backbone: 'none' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await save(model, memory(), { quantize: undefined, backbone: null as never, maxAccuracyDrop: undefined }); // the defaults
    model.dispose();
  });
});

describe('head-only artefacts', () => {
  it('hold the head and a hashed reference; identical predictions with the same backbone, refused with another', async () => {
    const model = await wideModel(1);
    const { xs } = stripes(6, 32, 5);
    const before = await probabilities(model, xs);
    const h = memory();
    const report = await save(model, h, { backbone: 'reference' });
    expect(report.artefact.backbone).toBe('reference');
    expect(bytesOf(h.artifacts!) + jsonBytes(h.artifacts!)).toBeLessThan(20_000);
    const meta = (h.artifacts!.userDefinedMetadata as { tfjsTransfer: { contents: string; backbone: { weightsSha256: string } } }).tfjsTransfer;
    expect(meta.contents).toBe('head');
    expect(meta.backbone.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    // The backbone was a LayersModel object: the caller passes it again.
    await expect(loadModel(tf.io.fromMemory(h.artifacts!))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('pass that backbone') });
    const baseline = tf.memory().numTensors;
    const given = wideBackbone(1);
    const same = await loadModel(tf.io.fromMemory(h.artifacts!), { backbone: given });
    expect(Array.from(await probabilities(same, xs))).toEqual(Array.from(before));
    expect(same.card.backbone.weightsSha256).toBe(meta.backbone.weightsSha256);
    expect(same.isSerializable).toBe(true); // a layers backbone: it can be saved whole again
    const full = memory();
    await save(same, full);
    expect((full.artifacts!.userDefinedMetadata as { tfjsTransfer: { contents: string } }).tfjsTransfer.contents).toBe('full');
    same.dispose();
    given.dispose(); // a LayersModel passed in stays the caller's
    const other = wideBackbone(2);
    await expect(loadModel(tf.io.fromMemory(h.artifacts!), { backbone: other })).rejects.toMatchObject({ code: 'BACKBONE_MISMATCH', message: expect.stringContaining('SHA-256') });
    other.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
    xs.dispose();
    model.dispose();
  });

  it('a backbone loaded from a path is found again by that path; a fine-tuned backbone cannot be referenced', async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'tt-ref-'));
    try {
      const bbDir = path.join(dir, 'backbone');
      const source = wideBackbone(4);
      await source.save(env.fileSystem!.saver(bbDir)); // the library's own file saver (no tfjs-node here)
      source.dispose();
      const model = attachHead(freeze(await loadBackbone(bbDir)), { classes: 3, seed: 2 });
      const { xs } = stripes(4, 32, 6);
      const before = await probabilities(model, xs);
      await save(model, path.join(dir, 'head'), { backbone: 'reference' });
      const reloaded = await loadModel(path.join(dir, 'head'));
      expect(Array.from(await probabilities(reloaded, xs))).toEqual(Array.from(before));
      expect(reloaded.card.artefact?.backbone).toBe('reference');
      reloaded.dispose();
      freeze(model, { trainableFrom: 'block_1_project' });
      await fit(model, { xs, ys: [0, 1, 2, 0] }, { epochs: 1, seed: 1 });
      await expect(save(model, path.join(dir, 'tuned'), { backbone: 'reference' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('fine-tuned') });
      expect(fs.existsSync(path.join(dir, 'tuned'))).toBe(false);
      xs.dispose();
      model.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the model card', () => {
  it('records training, the last evaluation, the calibration and the artefact, and loadModel returns it', async () => {
    const model = await wideModel();
    const { xs, ys } = stripes(20, 32, 9);
    await fit(model, { xs, ys }, { epochs: 2, seed: 4, validationSplit: 0.25 });
    expect(model.trainingRuns).toHaveLength(1);
    expect(model.trainingRuns[0]).toMatchObject({ imagesPerClass: { red: 7, blue: 7 }, validationImages: 6, epochs: 2, settings: { optimizer: 'adam', batchSize: 32, seed: 4 } });
    const e = await evaluate(model, { xs, ys });
    expect(model.evaluation?.accuracy).toBe(e.accuracy);
    const h = memory();
    await save(model, h, { quantize: 'float16' });
    const loaded = await loadModel(tf.io.fromMemory(h.artifacts!));
    const card = loaded.card;
    expect(card.classes).toEqual(['red', 'blue']);
    expect(card.inputShape).toEqual([32, 32, 3]);
    expect(card.preprocessing).toEqual(model.backbone.preprocessing);
    expect(card.backbone).toMatchObject({ name: 'wide_mobilenet', kind: 'layers', featureLayer: 'out_relu' });
    expect(card.backbone.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(card.training).toEqual(JSON.parse(JSON.stringify(model.trainingRuns)));
    expect(card.evaluation).toMatchObject({ accuracy: e.accuracy, count: 20, perClass: [{ name: 'red' }, { name: 'blue' }] });
    expect(card.artefact).toMatchObject({ library: { name: 'tfjs-transfer', version: VERSION }, quantization: 'float16', backbone: 'embedded' });
    expect(Date.parse(card.artefact!.savedAt!)).toBeGreaterThan(Date.now() - 60_000);
    // Training again clears the evaluation and adds a run.
    await fit(loaded, { xs, ys }, { epochs: 1, seed: 1 });
    expect(loaded.card.evaluation).toBeUndefined();
    expect(loaded.card.training).toHaveLength(2);
    loaded.dispose();
    xs.dispose();
    model.dispose();
  });

  it('a malformed card in an edited file is dropped part by part, never trusted', async () => {
    const model = await wideModel();
    const h = memory();
    await save(model, h);
    const meta = (h.artifacts!.userDefinedMetadata as { tfjsTransfer: { card: Record<string, unknown> } }).tfjsTransfer;
    meta.card.training = [{ imagesPerClass: 'many' }, 7];
    meta.card.evaluation = { accuracy: 'high' };
    meta.card.artefact = { quantization: 'int2', library: 3 };
    const loaded = await loadModel(tf.io.fromMemory(h.artifacts!));
    expect(loaded.card.training).toEqual([]);
    expect(loaded.card.evaluation).toBeUndefined();
    expect(loaded.card.artefact).toMatchObject({ quantization: 'float32', library: { version: 'unknown' } });
    loaded.dispose();
    model.dispose();
  });

  it('a format-1 artefact written before model cards (test/fixtures/format1-tiny) loads and predicts as it did', async () => {
    const dir = path.resolve(__dirname, '../fixtures/format1-tiny');
    const expected = (JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { probabilities: number[] }).probabilities;
    const model = await loadModel(dir);
    const { xs } = stripes(4, 32, 99);
    const p = await probabilities(model, xs);
    p.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-5));
    expect(model.classes).toEqual(['red', 'blue']);
    expect(model.card.training).toEqual([]);
    expect(model.card.artefact).toMatchObject({ library: { name: 'tfjs-transfer', version: 'unknown' }, savedAt: undefined, quantization: 'float32', backbone: 'embedded' });
    xs.dispose();
    model.dispose();
  });
});
