/**
 * explain: CAM is exact for the default head (the map's mean plus the bias is the logit), Grad-CAM agrees with it on
 * a linear head and runs on heads with hidden layers, the method is chosen automatically, heatmaps are 0..1 at the
 * feature map's resolution, upsampling matches tf.image.resizeBilinear, the overlay blends, tensors are freed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachHead, drawHeatmap, env, explain, freeze, loadBackbone, overlayHeatmap, predict, upsampleHeatmap, type TransferModel } from '../../src/index';
import { headPlan, rawMaps } from '../../src/evaluate/explain';
import { jetColour } from '../../src/evaluate/heatmap';
import { TransferError } from '../../src/errors';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;

describe('explain', () => {
  let linear: TransferModel;
  let hidden: TransferModel;
  let three: TransferModel;
  let images: tf.Tensor4D;
  let baseline = 0;
  beforeAll(async () => {
    linear = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['a', 'b'], seed: 1 });
    hidden = attachHead(freeze(await loadBackbone(tinyBackbone(32, 2), { takeOwnership: true })), { classes: ['a', 'b'], hiddenUnits: [8], seed: 2 });
    three = attachHead(freeze(await loadBackbone(tinyBackbone(32, 3), { takeOwnership: true })), { classes: ['x', 'y', 'z'], seed: 3 });
    const data = stripes(5, 32);
    images = data.xs;
    // The first extraction compiles (folds) each backbone once and keeps the result: not a leak.
    for (const m of [linear, hidden, three]) await predict(m, images);
    baseline = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(baseline);
    images.dispose();
    [linear, hidden, three].forEach((m) => m.dispose());
  });

  it('CAM of the default head is exact: mean of the raw map + bias = the logit, for class 1 (+w) and class 0 (-w)', async () => {
    const plan = headPlan(linear, 'test');
    expect(plan.linear).toBe('avg');
    const features = linear.backbone.extract(images) as tf.Tensor4D;
    const bias = (await plan.bias!.data())[0]!;
    const p = (await predict(linear, images)).map((x) => x.probabilities.b!);
    for (const c of [1, 0]) {
      const maps = rawMaps(plan, features, [c, c, c, c, c], 'cam');
      const mean = tf.mean(maps, [1, 2]);
      const means = await mean.data();
      tf.dispose([maps, mean]);
      for (let i = 0; i < 5; i++) {
        const logit = c === 1 ? means[i]! + bias : means[i]! - bias; // class 0's logit is -z
        const pc = 1 / (1 + Math.exp(-logit));
        expect(pc).toBeCloseTo(c === 1 ? p[i]! : 1 - p[i]!, 4);
      }
    }
    features.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('CAM of a flatten head is exact too: the raw map sums (with the bias) to the logit', async () => {
    const flat = attachHead(freeze(await loadBackbone(tinyBackbone(32, 4), { takeOwnership: true })), { classes: ['a', 'b'], pooling: 'flatten', seed: 4 });
    try {
      const p = (await predict(flat, images)).map((x) => x.probabilities.b!);
      const plan = headPlan(flat, 'test');
      expect(plan.linear).toBe('flatten');
      const features = flat.backbone.extract(images) as tf.Tensor4D;
      const maps = rawMaps(plan, features, [1, 1, 1, 1, 1], 'cam');
      const total = tf.sum(maps, [1, 2]);
      const sums = await total.data();
      const bias = (await plan.bias!.data())[0]!;
      tf.dispose([features, maps, total]);
      for (let i = 0; i < 5; i++) expect(1 / (1 + Math.exp(-(sums[i]! + bias)))).toBeCloseTo(p[i]!, 4);
      expect((await explain(flat, images))[0]!.heatmap.method).toBe('cam');
    } finally {
      flat.dispose();
    }
  });

  it('Grad-CAM on a linear head is ReLU(CAM) up to a scale; auto picks cam there and gradcam with hidden layers', async () => {
    const plan = headPlan(linear, 'test');
    const features = linear.backbone.extract(images) as tf.Tensor4D;
    const cam = rawMaps(plan, features, [1, 1, 1, 1, 1], 'cam');
    const grad = rawMaps(plan, features, [1, 1, 1, 1, 1], 'gradcam');
    const [h, w] = plan.shape;
    const scaled = tf.tidy(() => tf.div(tf.relu(cam), h * w));
    const expected = await scaled.data();
    scaled.dispose();
    const got = await grad.data();
    for (let i = 0; i < got.length; i++) expect(got[i]!).toBeCloseTo(expected[i]!, 5);
    tf.dispose([features, cam, grad]);
    const one = tf.slice(images, 0, 1) as tf.Tensor4D;
    const [a] = await explain(linear, one);
    expect(a!.heatmap.method).toBe('cam');
    const [b] = await explain(hidden, one);
    one.dispose();
    expect(b!.heatmap.method).toBe('gradcam');
    const refused = await explain(hidden, images, { method: 'cam' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TransferError);
    expect((refused as Error).message).toMatch(/method 'cam' needs a pooled linear head.*'gradcam'/);
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('one result per image: the prediction of predict, a 0..1 heatmap at the feature map size, upsampled to the image', async () => {
    const preds = await predict(hidden, images);
    const out = await explain(hidden, images, { batchSize: 2 });
    expect(out).toHaveLength(5);
    const [h, w] = hidden.backbone.featureShape;
    out.forEach((e, i) => {
      expect(e.label).toBe(preds[i]!.label);
      expect(e.probability).toBeCloseTo(preds[i]!.probability, 5);
      expect(e.heatmaps).toHaveLength(1);
      expect(e.heatmap).toBe(e.heatmaps[0]);
      expect([e.heatmap.height, e.heatmap.width]).toEqual([h, w]);
      expect(e.heatmap.data).toHaveLength(h! * w!);
      expect(Math.max(...e.heatmap.data)).toBeCloseTo(1, 6);
      expect(Math.min(...e.heatmap.data)).toBeGreaterThanOrEqual(0);
      expect(e.heatmap.imageSize).toEqual([32, 32]);
      expect(e.heatmap.upsample()).toHaveLength(32 * 32);
    });
    // An image of another size: the heatmap knows it, upsample() defaults to it.
    const big = tf.tidy(() => tf.image.resizeBilinear(tf.slice(images, 0, 1) as tf.Tensor4D, [40, 56]) as tf.Tensor4D);
    const [e] = await explain(hidden, big);
    big.dispose();
    expect(e!.heatmap.imageSize).toEqual([40, 56]);
    expect(e!.heatmap.upsample()).toHaveLength(40 * 56);
    // Plain data across threads: structuredClone (what postMessage does) keeps every field, drops only the method.
    const copy = structuredClone(e!);
    expect(copy.heatmap.data).toEqual(e!.heatmap.data);
    expect(upsampleHeatmap(copy.heatmap, [40, 56])).toEqual(e!.heatmap.upsample());
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('softmax head: the predicted class first, then the classes asked for, by name or index, with their probabilities', async () => {
    const out = await explain(three, images, { classes: ['z', 0] });
    for (const e of out) {
      const labels = e.heatmaps.map((m) => m.label);
      expect(labels[0]).toBe(e.label);
      expect(new Set(labels)).toEqual(new Set([e.label, 'z', 'x']));
      expect(labels.length).toBe(new Set([e.label, 'z', 'x']).size);
      for (const m of e.heatmaps) expect(m.probability).toBeCloseTo(e.probabilities[m.label]!, 6);
    }
    await expect(explain(three, images, { classes: ['nope'] })).rejects.toThrow(/unknown class "nope"/);
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('occlusion: each cell is the fall of the class probability when squares covering it are blurred out, by hand', async () => {
    const [h, w] = three.backbone.featureShape as [number, number];
    const image = tf.slice(images, 1, 1) as tf.Tensor4D;
    const blurred = tf.avgPool(image, 3, 1, 'same'); // a window of one cell (32 px / 16 cells = 2 -> 3, odd)
    const [pixels, blur] = [await image.data(), await blurred.data()];
    blurred.dispose();
    const [base] = await predict(three, image);
    for (const patch of [1, 2]) {
      const [e] = await explain(three, image, { method: 'occlusion', occlusionPatch: patch, classes: ['x', 'y', 'z'] });
      expect(e!.heatmap.method).toBe('occlusion');
      // By hand: every square's occluded copy through predict, then each cell's mean fall over the squares covering it.
      const sums = new Float32Array(h * w * 3);
      const counts = new Float32Array(h * w);
      const copies: Float32Array[] = [];
      const covered: number[][] = [];
      for (let py = 0; py + patch <= h; py++) {
        for (let px = 0; px + patch <= w; px++) {
          const copy = Float32Array.from(pixels);
          for (let y = py * 2; y < (py + patch) * 2; y++) for (let x = px * 2; x < (px + patch) * 2; x++) for (let c = 0; c < 3; c++) copy[(y * 32 + x) * 3 + c] = blur[(y * 32 + x) * 3 + c]!;
          copies.push(copy);
          const cells: number[] = [];
          for (let y = py; y < py + patch; y++) for (let x = px; x < px + patch; x++) cells.push(y * w + x);
          covered.push(cells);
        }
      }
      const batch = tf.tensor4d(Float32Array.from(copies.flatMap((c) => Array.from(c))), [copies.length, 32, 32, 3]);
      const preds = await predict(three, batch);
      batch.dispose();
      preds.forEach((p, q) => {
        for (const cell of covered[q]!) {
          counts[cell]! += 1;
          ['x', 'y', 'z'].forEach((name, c) => (sums[cell * 3 + c]! += base!.probabilities[name]! - p.probabilities[name]!));
        }
      });
      for (const map of e!.heatmaps) {
        const raw = Array.from({ length: h * w }, (_, cell) => sums[cell * 3 + map.index]! / counts[cell]!);
        const [lo, hi] = [Math.min(...raw), Math.max(...raw)];
        raw.forEach((v, cell) => expect(map.data[cell]!).toBeCloseTo((v - lo) / (hi - lo), 3));
      }
    }
    image.dispose();
    await expect(explain(three, images, { method: 'occlusion', occlusionPatch: 0 })).rejects.toThrow(/occlusionPatch must be a positive integer/);
    // undefined means the default; the result is the same as leaving it out.
    const [a, b] = await Promise.all([explain(three, images, { method: 'occlusion', occlusionPatch: undefined, batchSize: 2 }), explain(three, images, { method: 'occlusion' })]);
    expect(a.map((x) => Array.from(x.heatmap.data))).toEqual(b.map((x) => Array.from(x.heatmap.data)));
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('deletion: the square whose hiding alone lowers the class most ranks first, the hidden area above the rest; no leak', async () => {
    const [h, w] = three.backbone.featureShape as [number, number];
    const image = tf.slice(images, 2, 1) as tf.Tensor4D;
    const blurred = tf.avgPool(image, 3, 1, 'same');
    const [pixels, blur] = [await image.data(), await blurred.data()];
    blurred.dispose();
    const [e] = await explain(three, image, { method: 'deletion', deletionPatch: 2, deletionArea: 0.2 });
    // undefined means the default (squares of one cell); the result is the same as leaving it out.
    const [[one], [same], [undef]] = await Promise.all([
      explain(three, image, { method: 'deletion', deletionArea: 0.01 }),
      explain(three, image, { method: 'deletion', deletionArea: 0.01, deletionPatch: 1 }),
      explain(three, image, { method: 'deletion', deletionArea: 0.01, deletionPatch: undefined }),
    ]);
    expect(Array.from(one!.heatmap.data)).toEqual(Array.from(same!.heatmap.data));
    expect(Array.from(undef!.heatmap.data)).toEqual(Array.from(same!.heatmap.data));
    expect(one!.heatmap.data.filter((v) => v > 0.999)).toHaveLength(1); // one cell hidden first
    expect(e!.heatmap.method).toBe('deletion');
    const c = e!.heatmap.index;
    // Round one by hand: each 2 x 2 square blurred out alone, through predict.
    const copies: Float32Array[] = [];
    const squares: number[][] = [];
    for (let py = 0; py + 2 <= h; py++) {
      for (let px = 0; px + 2 <= w; px++) {
        const copy = Float32Array.from(pixels);
        for (let y = py * 2; y < (py + 2) * 2; y++) for (let x = px * 2; x < (px + 2) * 2; x++) for (let k = 0; k < 3; k++) copy[(y * 32 + x) * 3 + k] = blur[(y * 32 + x) * 3 + k]!;
        copies.push(copy);
        squares.push([py * w + px, py * w + px + 1, (py + 1) * w + px, (py + 1) * w + px + 1]);
      }
    }
    const batch = tf.tensor4d(Float32Array.from(copies.flatMap((x) => Array.from(x))), [copies.length, 32, 32, 3]);
    const preds = await predict(three, batch);
    batch.dispose();
    const p = preds.map((x) => x.probabilities[three.classes[c]!]!);
    const best = p.indexOf(Math.min(...p));
    for (const cell of squares[best]!) expect(e!.heatmap.data[cell]).toBeCloseTo(1, 6); // hidden first: the top
    // At least 20% of the cells are hidden (ranked above every other cell), and the map spans 0..1.
    const data = Array.from(e!.heatmap.data);
    const goal = Math.ceil(0.2 * h * w);
    const sorted = [...data].sort((a, b) => b - a);
    const hiddenCells = data.filter((v) => v > sorted[goal - 1]! - 1e-9).length;
    expect(hiddenCells).toBeGreaterThanOrEqual(goal);
    expect(Math.min(...data)).toBeCloseTo(0, 6);
    image.dispose();
    await expect(explain(three, images, { method: 'deletion', deletionArea: 0 })).rejects.toThrow(/deletionArea must be a share in \(0, 1\]/);
    await expect(explain(three, images, { method: 'deletion', deletionPatch: 1.5 })).rejects.toThrow(/deletionPatch must be a positive integer/);
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('upsampleHeatmap matches tf.image.resizeBilinear with half-pixel centres', async () => {
    const data = Float32Array.from([0, 0.25, 1, 0.5, 0.75, 0.1]);
    const mine = upsampleHeatmap({ data, height: 2, width: 3 }, [5, 7]);
    const t = tf.tidy(() => tf.image.resizeBilinear(tf.tensor4d(data, [1, 2, 3, 1]), [5, 7], false, true));
    const ref = await t.data();
    t.dispose();
    for (let i = 0; i < ref.length; i++) expect(mine[i]!).toBeCloseTo(ref[i]!, 5);
  });

  it('overlayHeatmap blends the jet colour map over RGB or RGBA pixels', () => {
    const rgb = { data: new Uint8Array(4 * 4 * 3).fill(100), width: 4, height: 4 };
    const heat = { data: Float32Array.from([0, 1, 0, 1]), height: 2, width: 2 };
    expect(Array.from(overlayHeatmap(rgb, heat, { alpha: 0 }).slice(0, 4))).toEqual([100, 100, 100, 255]);
    const full = overlayHeatmap(rgb, { data: new Float32Array(4).fill(1), height: 2, width: 2 }, { alpha: 1 });
    expect(Array.from(full.slice(0, 4))).toEqual([128, 0, 0, 255]); // jet(1) = dark red
    expect(jetColour(0.5)).toEqual([127.5, 255, 127.5]);
    expect(() => overlayHeatmap({ data: new Uint8Array(5), width: 4, height: 4 }, heat)).toThrow(/needs 64 bytes \(RGBA\) or 48 \(RGB\), got 5/);
  });

  it('drawHeatmap draws the image, sizes an unsized canvas to it, and puts the blended pixels back', () => {
    const put: { data: Uint8ClampedArray; width: number; height: number }[] = [];
    const drawn: number[][] = [];
    const ctx = {
      drawImage: (_: unknown, x: number, y: number, w: number, h: number) => drawn.push([x, y, w, h]),
      getImageData: (_x: number, _y: number, w: number, h: number) => ({ data: new Uint8ClampedArray(w * h * 4).fill(200), width: w, height: h }),
      createImageData: (w: number, h: number) => ({ data: new Uint8ClampedArray(w * h * 4), width: w, height: h }),
      putImageData: (d: { data: Uint8ClampedArray; width: number; height: number }) => put.push(d),
    };
    const canvas = { width: 300, height: 150, getContext: () => ctx };
    const heat = { data: Float32Array.from([0, 1, 0, 1]), height: 2, width: 2 };
    drawHeatmap(canvas, { width: 6, height: 4, naturalWidth: 6, naturalHeight: 4 } as never, heat, { alpha: 0.5 });
    expect([canvas.width, canvas.height]).toEqual([6, 4]);
    expect(drawn).toEqual([[0, 0, 6, 4]]);
    const source = { data: new Uint8ClampedArray(6 * 4 * 4).fill(200), width: 6, height: 4 };
    expect(put[0]!.data).toEqual(overlayHeatmap(source, heat, { alpha: 0.5 }));
    // ImageData in: drawn as it is, the canvas takes its size.
    drawHeatmap(canvas, { data: new Uint8ClampedArray(3 * 2 * 4).fill(10), width: 3, height: 2 }, heat);
    expect([canvas.width, canvas.height]).toEqual([3, 2]);
    expect(() => drawHeatmap({ width: 1, height: 1, getContext: () => null }, source, heat)).toThrow(/2d context/);
  });
});
