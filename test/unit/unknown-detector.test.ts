/**
 * The unknown detector: float16 storage against known bit patterns, the prototype fit and its threshold on
 * synthetic vectors, the record's checks, and the detector through the public API on a tiny backbone (fit,
 * predict, evaluate with other images, save/load, fitUnknownDetector, a fine-tuned boundary), with no tensor leak.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { attachHead, env, evaluate, fit, fitUnknownDetector, freeze, loadBackbone, loadModel, predict, save, UNKNOWN_DETECTOR_DEFAULTS } from '../../src/node/index';
import { decodeFloat16, encodeFloat16, fromBase64, fromHalfBits, toBase64, toHalfBits } from '../../src/util/float16';
import { fitPrototypeDetector, resolveUnknownArgs, thresholdFor, unknownDetectorFromRecord, type LabelledVectors } from '../../src/unknown-detector';
import { Random } from '../../src/util/random';
import { decodeRows, encodedRowsLength, encodeRows } from '../../src/util/packed-rows';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-unknown-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('float16 in base64', () => {
  it('encodes known values bit-exactly and rounds to nearest even', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(1e6)).toBe(0x7c00); // overflow -> Infinity
    expect(toHalfBits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalfBits(0.1)).toBe(0x2e66);
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie, even stays
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, rounds up to even
    expect(fromHalfBits(0x3555)).toBeCloseTo(0.333251953125, 12);
    expect(fromHalfBits(0x0001)).toBe(2 ** -24);
    expect(Number.isNaN(fromHalfBits(0x7e00))).toBe(true);
  });

  it('base64 matches Buffer for every length mod 3, and refuses what is not base64', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 100]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255);
      expect(toBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
      expect([...fromBase64(toBase64(bytes))!]).toEqual([...bytes]);
    }
    expect(fromBase64('abc')).toBeUndefined();
    expect(fromBase64('ab!d')).toBeUndefined();
    const v = Float32Array.from([0.5, -1.25, 3]);
    expect([...decodeFloat16(encodeFloat16(v), 3)!]).toEqual([0.5, -1.25, 3]);
    expect(decodeFloat16(encodeFloat16(v), 4)).toBeUndefined();
  });
});

/** `n` vectors of `dim` around one of `centres` per class, with noise. */
function clusters(centres: number[][][], n: number, noise: number, seed: number): LabelledVectors {
  const dim = centres[0]![0]!.length;
  const rng = new Random(seed);
  const values = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % centres.length;
    const centre = centres[c]![rng.int(centres[c]!.length)]!;
    labels[i] = c;
    for (let d = 0; d < dim; d++) values[i * dim + d] = Math.max(0, centre[d]! + noise * (rng.next() - 0.5));
  }
  return { values, labels, n, dim };
}

const unit = (dim: number, hot: number[]) => Array.from({ length: dim }, (_, d) => (hot.includes(d) ? 1 : 0.1));

describe('packed rows (float16, 8-bit and 4-bit codes per row)', () => {
  const rng = new Random(3);
  const rowsOf = (n: number, dim: number) => Float32Array.from({ length: n * dim }, () => rng.next() * 2 - 0.5);

  it('8 and 4 bits: every value within half a step of its row, for odd and even lengths; the lengths it promises', () => {
    for (const dim of [1, 7, 16, 1280]) {
      const x = rowsOf(3, dim);
      for (const [encoding, levels] of [['uint8', 255], ['uint4', 15]] as const) {
        const text = encodeRows(x, dim, encoding);
        expect(text.length).toBe(encodedRowsLength(3, dim, encoding));
        const y = decodeRows(text, 3, dim, encoding)!;
        for (let r = 0; r < 3; r++) {
          const row = x.subarray(r * dim, (r + 1) * dim);
          const step = (Math.max(...row) - Math.min(...row)) / levels;
          for (let i = 0; i < dim; i++) expect(Math.abs(y[r * dim + i]! - row[i]!)).toBeLessThanOrEqual(step / 2 + 1e-6);
        }
      }
      expect(decodeRows(encodeRows(x, dim, 'float16'), 3, dim, 'float16')).toEqual(decodeFloat16(encodeFloat16(x), 3 * dim));
      expect(encodeRows(x, dim, 'float16').length).toBe(encodedRowsLength(3, dim, 'float16'));
    }
    // A constant row decodes exactly; the extremes of a row are exact.
    expect([...decodeRows(encodeRows(new Float32Array([0.25, 0.25, 0.25]), 3, 'uint4'), 1, 3, 'uint4')!]).toEqual([0.25, 0.25, 0.25]);
    expect([...decodeRows(encodeRows(new Float32Array([-1, 0.4, 2]), 3, 'uint8'), 1, 3, 'uint8')!].map((v) => +v.toFixed(5))).toEqual([-1, 0.4, 2]);
  });

  it('refuses what is not such a text', () => {
    const text = encodeRows(rowsOf(2, 5), 5, 'uint8');
    expect(decodeRows(text, 3, 5, 'uint8')).toBeUndefined();
    expect(decodeRows(text, 2, 5, 'uint4')).toBeUndefined();
    expect(decodeRows('not base64!', 2, 5, 'uint8')).toBeUndefined();
    expect(decodeRows(42, 2, 5, 'uint8')).toBeUndefined();
    const nan = new Uint8Array(fromBase64(text)!);
    new DataView(nan.buffer).setFloat32(0, Number.NaN, true);
    expect(decodeRows(toBase64(nan), 2, 5, 'uint8')).toBeUndefined();
  });
});

describe('fitPrototypeDetector on synthetic features', () => {
  const dim = 16;
  // Two classes, two modes each; "other" things live on other axes.
  const classes = [[unit(dim, [0, 1]), unit(dim, [2, 3])], [unit(dim, [4, 5]), unit(dim, [6, 7])]];
  const train = clusters(classes, 400, 0.6, 1);
  const held = clusters(classes, 200, 0.6, 2);
  const other = clusters([[unit(dim, [10, 11]), unit(dim, [12, 13])]], 200, 0.6, 3);
  const args = resolveUnknownArgs({}, 'test');

  it('accepts the target share of held-out images, refuses the other things, AUC near 1', () => {
    const d = fitPrototypeDetector(train, held, 2, args, 1);
    const own = d.score(held.values, held.n);
    const theirs = d.score(other.values, other.n);
    const t = d.record.threshold;
    const accepted = own.filter((s) => s >= t).length / own.length;
    expect(accepted).toBeGreaterThanOrEqual(0.95);
    expect(accepted).toBeLessThan(0.97);
    expect(theirs.filter((s) => s >= t).length).toBe(0);
    expect(d.summary()).toMatchObject({ method: 'prototypes', centring: 'both', dim, prototypesPerClass: 16, targetAcceptance: 0.95, trainingImages: 400, heldOutImages: 200 });
  });

  it('thresholdFor: halfway below the (1 - target) quantile, so the edge image is not decided by rounding', () => {
    expect(thresholdFor(Float64Array.from([5, 1, 3, 2, 4]), 0.8)).toBe(1.5);
    expect(thresholdFor(Float64Array.from([5, 1, 3, 2, 4]), 0.4)).toBe(3.5);
    expect(thresholdFor(Float64Array.from([5, 1, 3, 2, 4]), 1)).toBeCloseTo(1 - 1e-6, 12);
  });

  it('caps the prototypes per class to the byte budget, and centring picks the views', () => {
    // A 16-float prototype is 44 base64 characters; 2 views x 2 classes; the mean and 2 KB of JSON are set aside.
    const maxBytes = 44 + 2048 + 3 * 44 * 2 * 2;
    const small = fitPrototypeDetector(train, held, 2, { ...args, maxBytes }, 1);
    expect(small.summary().prototypesPerClass).toBe(3);
    expect(small.summary().bytes).toBeLessThan(maxBytes);
    expect(fitPrototypeDetector(train, held, 2, { ...args, centring: 'none' }, 1).record.views.map((v) => v.centring)).toEqual(['none']);
    expect(fitPrototypeDetector(train, held, 2, { ...args, centring: 'mean' }, 1).record.views.map((v) => v.centring)).toEqual(['mean']);
  });

  it('a record survives JSON; a damaged one is refused with what is wrong', () => {
    const d = fitPrototypeDetector(train, held, 2, args, 1);
    const copy = unknownDetectorFromRecord(JSON.parse(JSON.stringify(d.record)), 2, 'test')!;
    expect([...copy.score(other.values.subarray(0, 5 * dim), 5)]).toEqual([...d.score(other.values.subarray(0, 5 * dim), 5)]);
    expect(unknownDetectorFromRecord(undefined, 2, 'test')).toBeUndefined();
    const broken = (edit: (r: Record<string, unknown>) => void) => {
      const r = JSON.parse(JSON.stringify(d.record)) as Record<string, unknown>;
      edit(r);
      return () => unknownDetectorFromRecord(r, 2, 'loadModel: x');
    };
    expect(broken((r) => (r.classes = 3))).toThrow(/fitted for 3 classes, the model has 2/);
    expect(broken((r) => ((r.views as { prototypes: string }[])[0]!.prototypes = 'AAAA'))).toThrow(/prototypes are not float16 rows matching/);
    expect(broken((r) => ((r.views as { encoding: string }[])[0]!.encoding = 'uint2'))).toThrow(/encoding "uint2" is none of float16, uint8, uint4/);
    expect(broken((r) => ((r.views as { encoding: string }[])[0]!.encoding = 'uint8'))).toThrow(/prototypes are not uint8 rows/);
    expect(broken((r) => (r.threshold = 'x'))).toThrow(/threshold is not a number/);
    expect(broken((r) => (r.method = 'magic'))).toThrow(/unknown method "magic"/);
    expect(broken((r) => ((r.compact as { uint4: { threshold: unknown } }).uint4.threshold = null))).toThrow(/compact.uint4 is not a calibration/);
  });

  it('re-encoded in 8 and 4 bits: fewer bytes, calibrated for its encoding, never re-expanded', () => {
    const d = fitPrototypeDetector(train, held, 2, args, 1);
    const acceptedOf = (x: typeof d) => x.score(held.values, held.n).filter((v) => v >= x.record.threshold).length / held.n;
    const b16 = d.summary().bytes;
    const d8 = d.reencoded('uint8');
    const d4 = d.reencoded('uint4');
    expect(d.summary().prototypeEncoding).toBe('float16');
    expect(d8.summary().prototypeEncoding).toBe('uint8');
    expect(d4.summary().prototypeEncoding).toBe('uint4');
    // 16-value prototypes: 32 bytes as float16, 8 + 16 as uint8, 8 + 8 as uint4 (the header is a large share here).
    const protoBytes = (x: typeof d) => x.record.views.reduce((a, v) => a + v.prototypes.length, 0);
    expect(protoBytes(d8) / protoBytes(d)).toBeCloseTo(24 / 32, 1);
    expect(protoBytes(d4) / protoBytes(d)).toBeCloseTo(16 / 32, 1);
    expect(d8.summary().bytes).toBeLessThan(b16);
    for (const [x, encoding] of [[d8, 'uint8'], [d4, 'uint4']] as const) {
      // The threshold and standardisation fitted for this encoding on the same held-out images: the same share accepted.
      expect(x.record.threshold).toBe(d.record.compact![encoding]!.threshold);
      expect(x.record.views.map((v) => v.scoreStd)).toEqual(d.record.compact![encoding]!.views.map((v) => v.scoreStd));
      expect(acceptedOf(x)).toBe(acceptedOf(d));
      const theirs = x.score(other.values, other.n);
      expect(theirs.filter((v) => v >= x.record.threshold).length).toBe(0);
      const copy = unknownDetectorFromRecord(JSON.parse(JSON.stringify(x.record)), 2, 'test')!;
      expect([...copy.score(held.values, held.n)]).toEqual([...x.score(held.values, held.n)]);
    }
    // uint8 keeps the uint4 calibration (and going on from it gives d4 exactly); uint4 keeps none.
    expect(d8.record.compact).toEqual({ uint4: d.record.compact!.uint4 });
    expect(d4.record.compact).toBeUndefined();
    expect(d8.reencoded('uint4').record).toEqual(d4.record);
    expect(d4.reencoded('uint8')).toBe(d4);
    expect(d8.reencoded('float16')).toBe(d8);
    expect(d.reencoded('float16')).toBe(d);
  });

  it('options: undefined means the default; bad values are named', () => {
    expect(resolveUnknownArgs({ targetAcceptance: undefined, centring: undefined }, 'fit')).toEqual({ ...UNKNOWN_DETECTOR_DEFAULTS });
    expect(() => resolveUnknownArgs({ targetAcceptance: 1.5 }, 'fit')).toThrow(/unknown.targetAcceptance must be a share in \(0, 1\], got 1.5/);
    expect(() => resolveUnknownArgs({ centring: 'both-ish' as 'both' }, 'fit')).toThrow(/unknown.centring must be/);
    expect(() => resolveUnknownArgs({ prototypesPerClass: 0 }, 'fit')).toThrow(/prototypesPerClass/);
  });
});

describe('the unknown detector through the public API (tiny backbone)', () => {
  const size = 32;
  /** Green noise: neither reddish nor bluish. */
  const greens = (n: number) => tf.tidy(() => tf.clipByValue(tf.add(tf.tile(tf.reshape(tf.tensor1d([60, 200, 60]), [1, 1, 1, 3]), [n, size, size, 1]), tf.randomUniform([n, size, size, 3], -60, 60, 'float32', 5)), 0, 255) as tf.Tensor4D);

  async function trained(trainableFrom?: string) {
    const backbone = await loadBackbone(tinyBackbone(size), { inputSize: [size, size], preprocessing: { scale: 1 / 127.5, offset: -1 }, takeOwnership: true });
    const model = attachHead(freeze(backbone, trainableFrom ? { trainableFrom } : {}), { classes: ['red', 'blue'], seed: 1 });
    const train = stripes(80, size, 1);
    const val = stripes(40, size, 2);
    const history = await fit(model, train, { epochs: 3, batchSize: 16, learningRate: 0.01, seed: 1, validationData: val, verbose: false });
    return { model, train, val, history };
  }

  it('fit fits it from the validation images; predict and evaluate agree on which images it accepts; no leak', async () => {
    const before = tf.memory().numTensors;
    const { model, train, val } = await trained();
    const s = model.unknownDetector!;
    expect(s).toMatchObject({ method: 'prototypes', centring: 'both', trainingImages: 80, heldOutImages: 40, targetAcceptance: 0.95 });
    const others = greens(30);
    const result = await evaluate(model, val, { unknown: others });
    const u = result.unknown!;
    expect(u.threshold).toBe(s.threshold);
    expect(u.accepted).toBeGreaterThanOrEqual(0.95); // chosen on these very images
    expect(u.otherImages).toBe(30);
    expect(u.otherAccepted).toBeCloseTo(1 - u.otherRejected!, 12);
    expect(u.rocAuc).toBeGreaterThan(0.9);
    const preds = await predict(model, val.xs);
    expect(preds.every((p) => typeof p.unknown === 'boolean' && Number.isFinite(p.familiarity))).toBe(true);
    expect(preds.filter((p) => !p.unknown).length / preds.length).toBeCloseTo(u.accepted, 12);
    const otherPreds = await predict(model, others);
    expect(otherPreds.filter((p) => !p.unknown).length / otherPreds.length).toBeCloseTo(u.otherAccepted!, 12);
    // Saved and loaded: the same scores.
    await save(model, path.join(tmp, 'm1'));
    const loaded = await loadModel(path.join(tmp, 'm1'));
    expect(loaded.unknownDetector).toEqual(s);
    const again = await predict(loaded, val.xs);
    again.forEach((p, i) => expect(p.familiarity).toBeCloseTo(preds[i]!.familiarity!, 5));
    loaded.dispose();
    // A head-only artefact leaves the detector out unless asked (it would be many times the head's size).
    const meta = (dir: string) => JSON.parse(fs.readFileSync(path.join(tmp, dir, 'model.json'), 'utf8')).userDefinedMetadata.tfjsTransfer;
    await save(model, path.join(tmp, 'h1'), { backbone: 'reference' });
    expect(meta('h1').unknown).toBeUndefined();
    expect(meta('h1').card.unknownDetector).toBeUndefined();
    await save(model, path.join(tmp, 'h2'), { backbone: 'reference', unknownDetector: true });
    expect(meta('h2').unknown.threshold).toBe(s.threshold);
    await save(model, path.join(tmp, 'm2'), { unknownDetector: false });
    expect(meta('m2').unknown).toBeUndefined();
    expect(meta('m1').card.unknownDetector).toEqual(s);
    // Quantized saves shrink the detector with the weights; what loads is what the card says.
    for (const [quantize, encoding] of [['float16', 'uint8'], ['uint8', 'uint4']] as const) {
      await save(model, path.join(tmp, `q-${quantize}`), { quantize });
      const q = await loadModel(path.join(tmp, `q-${quantize}`));
      expect(q.unknownDetector).toMatchObject({ prototypeEncoding: encoding, targetAcceptance: 0.95 });
      expect(q.unknownDetector!.bytes).toBeLessThan(encoding === 'uint8' ? s.bytes : meta('q-float16').card.unknownDetector.bytes);
      expect(meta(`q-${quantize}`).card.unknownDetector).toEqual(q.unknownDetector);
      expect(q.card.unknownDetector).toEqual(q.unknownDetector);
      // Calibrated for its encoding on the same validation images: it still accepts the target share of them.
      const qe = await evaluate(q, val, { unknown: others });
      expect(qe.unknown!.accepted).toBeCloseTo(u.accepted, 12);
      expect(qe.unknown!.threshold).toBe(q.unknownDetector!.threshold);
      q.dispose();
    }
    model.dispose();
    tf.dispose([train.xs, val.xs, others]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a fine-tuned backbone: the detector is fitted on the final features (predict agrees with evaluate)', async () => {
    const { model, train, val } = await trained('block_1_project');
    const u = (await evaluate(model, val)).unknown!;
    const preds = await predict(model, val.xs);
    expect(u.accepted).toBeGreaterThanOrEqual(0.95);
    expect(preds.filter((p) => !p.unknown).length / preds.length).toBeCloseTo(u.accepted, 12);
    model.dispose();
    tf.dispose([train.xs, val.xs]);
  });

  it('a fine-tuned backbone whose best epoch is restored: the detector is fitted on the restored weights', async () => {
    const backbone = await loadBackbone(tinyBackbone(size), { inputSize: [size, size], preprocessing: { scale: 1 / 127.5, offset: -1 }, takeOwnership: true });
    const model = attachHead(freeze(backbone, { trainableFrom: 'block_1_project' }), { classes: ['red', 'blue'], seed: 1 });
    const train = stripes(80, size, 1);
    const val = stripes(40, size, 2);
    try {
      // A rate far too high: the validation loss is best early and worse after, so early stopping restores an epoch
      // before the last (checked: otherwise this test would show nothing).
      const history = await fit(model, train, {
        epochs: 6, batchSize: 16, learningRate: 0.3, seed: 1, validationData: val, verbose: false, activationStorage: 'float32',
        earlyStopping: { patience: 10, restoreBestWeights: true },
      });
      expect(history.bestEpoch).toBeLessThan(history.epochs - 1);
      const u = (await evaluate(model, val)).unknown!;
      expect(u.accepted).toBeGreaterThanOrEqual(0.95); // the threshold was chosen on these images, with these weights
    } finally {
      model.dispose();
      tf.dispose([train.xs, val.xs]);
    }
  });

  it('without validation images or with unknown: false there is none; fitUnknownDetector adds one', async () => {
    const backbone = await loadBackbone(tinyBackbone(size), { inputSize: [size, size], preprocessing: { scale: 1 / 127.5, offset: -1 }, takeOwnership: true });
    const model = attachHead(freeze(backbone), { classes: ['red', 'blue'], seed: 1 });
    const train = stripes(60, size, 1);
    await fit(model, train, { epochs: 1, batchSize: 16, seed: 1, verbose: false });
    expect(model.unknownDetector).toBeUndefined();
    expect((await predict(model, train.xs))[0]!.unknown).toBeUndefined();
    await expect(evaluate(model, train, { unknown: train.xs })).rejects.toThrow(/no unknown detector/);
    await fit(model, train, { epochs: 1, batchSize: 16, seed: 1, validationSplit: 0.25, unknown: false, verbose: false });
    expect(model.unknownDetector).toBeUndefined();
    await fit(model, train, { epochs: 1, batchSize: 16, seed: 1, validationSplit: 0.25, unknown: { targetAcceptance: 0.9, centring: 'none' }, verbose: false });
    expect(model.unknownDetector).toMatchObject({ targetAcceptance: 0.9, centring: 'none' });
    expect(model.unknownDetector!.heldOutImages + model.unknownDetector!.trainingImages).toBe(60);
    const before = tf.memory().numTensors;
    const s = await fitUnknownDetector(model, train, { prototypesPerClass: 4, validationSplit: undefined, seed: undefined });
    expect(s).toMatchObject({ prototypesPerClass: 4, trainingImages: 48, heldOutImages: 12 });
    expect(model.unknownDetector).toEqual(s);
    expect(tf.memory().numTensors).toBe(before);
    await expect(fitUnknownDetector(model, train, { validationSplit: 1 })).rejects.toThrow(/validationSplit must be in \(0, 1\)/);
    await expect(fit(model, train, { unknown: 'yes' as unknown as boolean })).rejects.toThrow(/fit: unknown must be true, false or/);
    model.dispose();
    tf.dispose(train.xs);
  });
});
