/**
 * Compact storage of cached boundary activations: the float16 codec (exact where representable, relative error at
 * most 2^-11 otherwise, Inf / NaN / subnormals / saturation), gatherBatch over float32, float16 and spilled rows,
 * the policy of activationStorage 'auto', the spill file deleted when fit ends (success, error, abort), and a fit
 * with float16 storage whose history matches float32 within tolerance, tensors back to baseline.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachHead, env, fit, freeze, loadBackbone, type FitArgs, type TransferModel } from '../../src/index';
import { createActivationSpill } from '../../src/node/spill';
import type { ActivationSpill } from '../../src/services';
import { extractActivations, gatherBatch, subsetActivations, type Activations } from '../../src/train/activations';
import { rowStorage, type RowStorage } from '../../src/train/row-store';
import { encodingsFor, planStorage } from '../../src/train/storage-policy';
import { decodeHalfInto, encodeHalfInto, fromHalfBits, halfToFloatTable, toHalfBits } from '../../src/util/float16';
import { Random } from '../../src/util/random';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;
let baseline = 0;
beforeEach(() => {
  baseline = tf.memory().numTensors;
});
afterEach(() => {
  expect(tf.memory().numTensors).toBe(baseline);
});

const scratchDir = mkdtempSync(path.join(os.tmpdir(), 'tt-spill-test-'));
afterAll(() => rmSync(scratchDir, { recursive: true, force: true }));

const half = (values: number[]): Uint16Array => {
  const out = new Uint16Array(values.length);
  encodeHalfInto(Float32Array.from(values), out);
  return out;
};
const roundTrip = (values: Float32Array): Float32Array => {
  const bits = new Uint16Array(values.length);
  encodeHalfInto(values, bits);
  const out = new Float32Array(values.length);
  decodeHalfInto(bits, 0, values.length, out, 0);
  return out;
};

describe('float16 codec', () => {
  it('is exact for every representable value: all 65536 bit patterns decode and encode back (NaN stays NaN)', () => {
    const table = halfToFloatTable();
    const bits = new Uint16Array(65536);
    encodeHalfInto(table, bits);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(table[h]!)) expect(Number.isNaN(fromHalfBits(bits[h]!))).toBe(true);
      else expect(bits[h]).toBe(h);
      expect(Object.is(table[h], fromHalfBits(h)) || Number.isNaN(table[h]!)).toBe(true);
    }
  });

  it('rounds to nearest even with relative error at most 2^-11 across the normal range, as toHalfBits does', () => {
    const rng = new Random(3);
    const values = Float32Array.from({ length: 200_000 }, () => (rng.next() < 0.5 ? -1 : 1) * 2 ** (-14 + rng.next() * 29.9));
    const back = roundTrip(values);
    const bits = new Uint16Array(values.length);
    encodeHalfInto(values, bits);
    let worst = 0;
    for (let i = 0; i < values.length; i++) {
      worst = Math.max(worst, Math.abs(back[i]! - values[i]!) / Math.abs(values[i]!));
      expect(bits[i]).toBe(toHalfBits(values[i]!)); // the same rounding as the weight quantizer's
    }
    expect(worst).toBeLessThanOrEqual(2 ** -11);
    expect(worst).toBeGreaterThan(2 ** -12); // the bound is reached, not loose
    // Ties go to the even mantissa: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
    expect(Array.from(half([1 + 2 ** -11, 1 + 3 * 2 ** -11]))).toEqual([0x3c00, 0x3c02]);
  });

  it('keeps Infinity and NaN, saturates finite overflow to ±65504, keeps subnormals and flushes what is below them', () => {
    const out = roundTrip(Float32Array.from([Infinity, -Infinity, NaN, 65504, 65519, 65520, 1e9, -3e38, 0, -0]));
    expect(Array.from(out.subarray(0, 2))).toEqual([Infinity, -Infinity]);
    expect(Number.isNaN(out[2]!)).toBe(true);
    expect(Array.from(out.subarray(3, 8))).toEqual([65504, 65504, 65504, 65504, -65504]);
    expect(Object.is(out[9], -0)).toBe(true);
    // Subnormals: multiples of 2^-24, rounded to nearest even; absolute error at most 2^-25.
    const tiny = Float32Array.from([2 ** -24, 3 * 2 ** -24, 2 ** -20 + 2 ** -26, 2 ** -15, -(2 ** -14) * 0.75, 2 ** -25, 2 ** -25 * 1.01, 2 ** -26, 1e-30]);
    const t = roundTrip(tiny);
    expect(Array.from(t.subarray(0, 5))).toEqual([2 ** -24, 3 * 2 ** -24, 2 ** -20, 2 ** -15, -(2 ** -14) * 0.75]);
    expect(Array.from(t.subarray(5))).toEqual([0, 2 ** -24, 0, 0]); // 2^-25 is a tie: to even (0)
    for (let i = 0; i < tiny.length; i++) expect(Math.abs(t[i]! - tiny[i]!)).toBeLessThanOrEqual(2 ** -25);
  });
});

/** Activations of 10 images of 2 views and 2 outputs (a spatial and a pooled one) in `storage`. */
async function sample(storage: RowStorage): Promise<Activations> {
  const rng = new Random(9);
  const images = tf.tidy(() => tf.randomUniform([10, 4, 4, 3], 0, 255, 'float32', 4)) as tf.Tensor4D;
  try {
    const source = {
      size: 10,
      labels: new Int32Array(10).map((_, i) => i % 2),
      async *batches(b: number) {
        for (let s = 0; s < 10; s += b) {
          const n = Math.min(b, 10 - s);
          yield { xs: tf.slice(images, [s, 0, 0, 0], [n, -1, -1, -1]), ys: Int32Array.from({ length: n }, (_, i) => (s + i) % 2), keys: undefined, sources: undefined };
        }
      },
    };
    const extract = (x: tf.Tensor4D): tf.Tensor[] => [tf.mul(tf.sub(x, 128), rng.next() + 0.01), tf.mean(x, [1, 2])];
    const flip = (x: tf.Tensor4D): tf.Tensor4D => tf.reverse(x, 2);
    return await extractActivations(extract, [[4, 4, 3], [3]], source, { batchSize: 4, views: [(x) => x, flip], storage });
  } finally {
    images.dispose();
  }
}

const read = (acts: Activations, rows: number[], view: number): Float32Array[] => {
  const ts = gatherBatch(acts, rows, () => view);
  const out = ts.map((t) => t.dataSync() as Float32Array);
  tf.dispose(ts);
  return out;
};

describe('gatherBatch over the three storages', () => {
  it('float16 (in memory or spilled) equals float32 within 2^-11 relative; spilled rows equal in-memory ones exactly', async () => {
    const spill = { service: createActivationSpill(), directory: scratchDir };
    const exact = await sample(rowStorage(['float32']));
    const compact = await sample(rowStorage(['float16', 'float32']));
    const spilled = await sample(rowStorage(['float16', 'float32'], spill));
    const spilled32 = await sample(rowStorage(['float32'], spill));
    try {
      expect(spilled.where.startsWith(scratchDir)).toBe(true);
      expect(readdirSync(scratchDir)).toEqual([]); // the name is gone at once (POSIX): nothing can be left behind
      const rows = [7, 0, 3, 3, 9];
      for (const view of [0, 1]) {
        const [a, b] = read(exact, rows, view);
        const [c, d] = read(compact, rows, view);
        for (let i = 0; i < a!.length; i++) expect(Math.abs(c![i]! - a![i]!)).toBeLessThanOrEqual(Math.abs(a![i]!) * 2 ** -11 + 2 ** -25);
        expect(d).toEqual(b); // the pooled output stays float32
        expect(read(spilled, rows, view)).toEqual([c, d]);
        expect(read(spilled32, rows, view)).toEqual([a, b]);
      }
      // A subset reads the same rows (mapped, or copied into other storage).
      const mapped = subsetActivations(spilled, [9, 3]);
      const copied = subsetActivations(spilled, [9, 3], { views: [1], storage: rowStorage(['float32']) });
      expect(read(mapped, [0, 1], 1)).toEqual(read(spilled, [9, 3], 1));
      expect(read(copied, [0, 1], 0)).toEqual(read(spilled, [9, 3], 1));
      expect(Array.from(mapped.labels)).toEqual([1, 1]);
    } finally {
      [exact, compact, spilled, spilled32].forEach((a) => a.dispose());
    }
    spilled.dispose(); // twice is fine
    expect(() => read(spilled, [0], 0)).toThrow(/closed/);
  });

  it("the 'auto' policy: float32 for rank-1 outputs, float16 for spatial ones, training rows spilled past the budget", () => {
    expect(encodingsFor('auto', [[1280]])).toEqual(['float32']);
    expect(encodingsFor('auto', [[14, 14, 96], [7]])).toEqual(['float16', 'float32']);
    expect(encodingsFor('float32', [[14, 14, 96]])).toEqual(['float32']);
    expect(encodingsFor('float16', [[1280]])).toEqual(['float16']);
    const spill = env.activationSpill;
    try {
      env.activationSpill = createActivationSpill();
      const needs = { storage: 'auto' as const, budget: 2 ** 20, shapes: [[14, 14, 96]], views: 2, validationImages: 0, directory: undefined };
      const small = planStorage({ ...needs, trainImages: 10 });
      expect(small.trainBytes).toBe(10 * 2 * 14 * 14 * 96 * 2);
      expect(small.train.spill).toBeUndefined();
      expect(planStorage({ ...needs, trainImages: 100 }).train.spill).toBeDefined(); // 7.2 MB > 1 MiB
      expect(planStorage({ ...needs, trainImages: 100 }).validation.spill).toBeUndefined();
      expect(planStorage({ ...needs, trainImages: 100, storage: 'float16' }).train.spill).toBeUndefined();
      expect(planStorage({ ...needs, trainImages: 1, storage: 'disk' }).train.spill).toBeDefined();
      env.activationSpill = undefined; // a browser: no spill, the rows stay in memory; 'disk' is refused
      expect(planStorage({ ...needs, trainImages: 100 }).train.spill).toBeUndefined();
      expect(() => planStorage({ ...needs, trainImages: 1, storage: 'disk' })).toThrow(/tfjs-transfer\/node/);
    } finally {
      env.activationSpill = spill;
    }
  });
});

async function fineTunable(): Promise<TransferModel> {
  const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
  freeze(model, { trainableFrom: 'block_1_project' }); // a spatial boundary (16x16x8)
  return model;
}

/** A spill that records its files, into `scratchDir`. */
function recordingSpill(): { spill: ActivationSpill; files: { path: string; closed: boolean }[] } {
  const inner = createActivationSpill({ directory: scratchDir });
  const files: { path: string; closed: boolean }[] = [];
  return {
    files,
    spill: {
      open(bytes, options) {
        const file = inner.open(bytes, options);
        const record = { path: file.path, closed: false };
        files.push(record);
        return {
          path: file.path,
          write: (p, b) => file.write(p, b),
          read: (p, b) => file.read(p, b),
          close: () => {
            record.closed = true;
            file.close();
          },
        };
      },
    },
  };
}

describe('fit with compact storage', () => {
  const base: FitArgs = { epochs: 3, batchSize: 8, seed: 2, learningRate: 1e-2, validationSplit: 0.25, augment: { flip: true, rotation: 0, zoom: 0, translation: 0, brightness: 0, contrast: 0 } };

  it('float16 and disk give a history within tolerance of float32; the spill file is closed and gone after fit', async () => {
    const data = stripes(32, 32, 3);
    const spill = env.activationSpill;
    const recorder = recordingSpill();
    env.activationSpill = recorder.spill;
    const logs: string[] = [];
    const logger = env.logger;
    env.logger = (m) => logs.push(m);
    try {
      const histories: Record<string, { loss: number[]; valAccuracy: number[]; valLoss: number[] }> = {};
      for (const storage of ['float32', 'float16', 'disk', 'auto'] as const) {
        const model = await fineTunable();
        try {
          const h = await fit(model, data, { ...base, activationStorage: storage, verbose: storage === 'disk' });
          histories[storage] = { loss: h.loss, valAccuracy: h.valAccuracy, valLoss: h.valLoss };
        } finally {
          model.dispose();
        }
      }
      expect(recorder.files).toHaveLength(1); // 'disk' only: 'auto' stays within the 64 MiB budget
      expect(recorder.files[0]!.closed).toBe(true);
      expect(existsSync(recorder.files[0]!.path)).toBe(false);
      expect(readdirSync(scratchDir)).toEqual([]);
      expect(logs.some((l) => l.includes(`float16, spilled to ${recorder.files[0]!.path}`))).toBe(true);
      const ref = histories.float32!;
      for (const storage of ['float16', 'disk', 'auto']) {
        const h = histories[storage]!;
        h.loss.forEach((l, i) => expect(Math.abs(l - ref.loss[i]!)).toBeLessThan(1e-2 * Math.max(1, ref.loss[i]!)));
        h.valLoss.forEach((l, i) => expect(Math.abs(l - ref.valLoss[i]!)).toBeLessThan(1e-2 * Math.max(1, ref.valLoss[i]!)));
        expect(h.valAccuracy).toEqual(ref.valAccuracy);
      }
      expect(histories.disk).toEqual(histories.float16); // the same bytes, in memory or in the file
      expect(histories.auto).toEqual(histories.float16);
    } finally {
      env.activationSpill = spill;
      env.logger = logger;
      data.xs.dispose();
    }
  });

  it('the spill file is closed and gone when fit fails or is aborted', async () => {
    const data = stripes(16, 32, 4);
    const spill = env.activationSpill;
    const recorder = recordingSpill();
    env.activationSpill = recorder.spill;
    const model = await fineTunable();
    try {
      const failing = { onBatchEnd: () => Promise.reject(new Error('boom')) };
      await expect(fit(model, data, { ...base, activationStorage: 'disk', callbacks: failing })).rejects.toThrow('boom');
      const controller = new AbortController();
      const aborting = { onBatchEnd: () => controller.abort() };
      await expect(fit(model, data, { ...base, activationStorage: 'disk', signal: controller.signal, callbacks: aborting })).rejects.toMatchObject({ name: 'AbortError' });
      // A NaN image is refused after extraction, before training: the file goes too.
      const bad = tf.tidy(() => tf.concat([data.xs, tf.fill([1, 32, 32, 3], NaN)])) as tf.Tensor4D;
      await expect(fit(model, { xs: bad, ys: [...data.ys, 0] }, { ...base, validationSplit: 0, activationStorage: 'disk' })).rejects.toMatchObject({ code: 'NUMERICAL_FAULT' });
      bad.dispose();
      expect(recorder.files).toHaveLength(3);
      for (const f of recorder.files) {
        expect(f.closed).toBe(true);
        expect(existsSync(f.path)).toBe(false);
      }
      expect(readdirSync(scratchDir)).toEqual([]);
    } finally {
      env.activationSpill = spill;
      model.dispose();
      data.xs.dispose();
    }
  });

  it("ends the extractor's workers once a fine-tuning fit's activations are cached, and only then", async () => {
    const data = stripes(8, 32, 6);
    const pool = env.parallelExtractor;
    let disposed = 0;
    env.parallelExtractor = { open: async () => undefined, dispose: async () => void disposed++ };
    try {
      const model = await fineTunable();
      try {
        await fit(model, data, { epochs: 1, seed: 1 });
        expect(disposed).toBe(1); // spatial boundary, cached for every epoch
        await fit(model, data, { epochs: 1, seed: 1, augment: { flip: true, rotation: 0.1 } });
        expect(disposed).toBe(1); // re-extracts every epoch: the workers stay
        freeze(model); // the pooled boundary (head only): the workers stay
        await fit(model, data, { epochs: 1, seed: 1 });
        expect(disposed).toBe(1);
      } finally {
        model.dispose();
      }
    } finally {
      env.parallelExtractor = pool;
      data.xs.dispose();
    }
  });

  it('refuses an unknown activationStorage and a negative budget', async () => {
    const data = stripes(8, 32, 5);
    const model = await fineTunable();
    try {
      await expect(fit(model, data, { activationStorage: 'float8' as never })).rejects.toThrow(/activationStorage must be 'auto', 'float32', 'float16', 'disk'/);
      await expect(fit(model, data, { activationMemoryBudget: -1 })).rejects.toThrow(/activationMemoryBudget/);
    } finally {
      model.dispose();
      data.xs.dispose();
    }
  });
});
