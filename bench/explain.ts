/**
 * `npm run bench:explain`: do the heatmaps of `explain` mean something? (issue 16)
 *
 * The deletion test: for each validation image, mask the 20% of its pixels the heatmap of the predicted class ranks
 * highest, and (separately) a random 20% of its pixels, and measure how much the predicted class's probability
 * drops. Heatmaps that point at the evidence drop it far more than chance (target: the mean drop at least 3x the
 * random one). Masking variants, all reported: fill with the image's mean colour, with grey 127.5, or with a
 * strongly blurred copy of the image (a box blur 31 px wide); random masks are scattered pixels (the literal
 * "random 20%") and random 32 x 32 blocks (the same area in patches, closer to the heatmap's contiguous region).
 * A last pair works on the heatmap's own grid: its top 20% of feature-map cells (10 of 49, each 32 x 32 px) against
 * 10 random cells.
 *
 * Data: cats vs dogs (../shared/data/cats_and_dogs_filtered_200px), 100 validation images per class, a default head
 * (average pooling, dropout 0.2, one sigmoid unit: CAM) trained on `--train` images per class of the train folder;
 * then flowers (../shared/data/flower_photos), 40 validation images per class of 5 (its head on at most 60 per class
 * unless `--train all`). MobileNetV2 1.0 at 224, wasm.
 * `--train all` trains each head on its whole train folder (2000 / 2934 images, read through `imageFolder`, features
 * on the worker pool): the model a user gets, rather than a quick one.
 *
 * Usage: npm run bench:explain [-- --train 100 --datasets cats,flowers --hidden 0 --backend wasm --fraction 0.2 --val N --method auto --patch 2]
 * (`--method occlusion` / `deletion` measures occlusion sensitivity's / greedy deletion's maps, `--patch` their square's side in grid cells.)
 * (`--val N` takes N validation images per class instead of 100 / 40, for a quick try.)
 * (`--hidden 64` trains a head with a hidden layer instead, so Grad-CAM runs.)
 */
import { readdir, readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { attachHead, createExtractPool, decodeImage, env, explain, fit, freeze, imageFolder, loadBackbone, predict, upsampleHeatmap, type ExplainMethod, type TransferModel } from '../src/node/index';
import { headPlan } from '../src/evaluate/explain';
import { Random } from '../src/util/random';

const { values } = parseArgs({
  options: {
    train: { type: 'string', default: '100' },
    datasets: { type: 'string', default: 'cats,flowers' },
    hidden: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'wasm' },
    fraction: { type: 'string', default: '0.2' },
    val: { type: 'string' },
    method: { type: 'string', default: 'auto' },
    patch: { type: 'string' },
  },
});
await tf.setBackend(values.backend!);
if (tf.getBackend() !== values.backend) throw new Error(`backend ${values.backend} did not initialise`);
env.verbose = false;
const ROOT = resolve(import.meta.dirname, '..', '..', 'shared');
const MODEL = join(ROOT, 'models', 'mobilenet_v2_1.0_224');
const SIZE = 224;
const FRACTION = Number(values.fraction);
const hidden = Number(values.hidden);
/** `--train all`: each head on its whole train folder. */
const TRAIN_ALL = values.train === 'all';
if (TRAIN_ALL) {
  const pool = createExtractPool();
  env.parallelExtractor = pool;
  process.on('beforeExit', () => void pool.dispose());
}

interface Spec {
  name: string;
  dir: string;
  trainPerClass: number;
  validationPerClass: number;
}
const SPECS: Record<string, Spec> = {
  cats: { name: 'cats vs dogs', dir: join(ROOT, 'data', 'cats_and_dogs_filtered_200px'), trainPerClass: TRAIN_ALL ? Infinity : Number(values.train), validationPerClass: Number(values.val ?? 100) },
  flowers: { name: 'flowers', dir: join(ROOT, 'data', 'flower_photos'), trainPerClass: TRAIN_ALL ? Infinity : Math.min(Number(values.train), 60), validationPerClass: Number(values.val ?? 40) },
};

/** `perClass` files of each class of `dir/split`, a seeded sample (sorted first, so every run picks the same). */
async function files(dir: string, split: string, perClass: number, seed: number): Promise<{ paths: string[]; labels: number[]; classes: string[] }> {
  const classes = (await readdir(join(dir, split), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const paths: string[] = [];
  const labels: number[] = [];
  const rng = new Random(seed);
  for (const [c, name] of classes.entries()) {
    const all = (await readdir(join(dir, split, name))).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
    const picked = rng.shuffle(all).slice(0, perClass);
    for (const f of picked) {
      paths.push(join(dir, split, name, f));
      labels.push(c);
    }
  }
  return { paths, labels, classes };
}

/** Decodes and squashes to 224 x 224 (as predict does), float32 0..255. */
async function load(paths: string[]): Promise<tf.Tensor4D> {
  const images: tf.Tensor3D[] = [];
  for (const p of paths) {
    const d = await decodeImage(await readFile(p), { size: [SIZE, SIZE], fit: 'squash' });
    images.push(tf.tensor3d(Float32Array.from(d.data), [SIZE, SIZE, 3]));
  }
  const out = tf.stack(images) as tf.Tensor4D;
  tf.dispose(images);
  return out;
}

type Fill = 'mean' | 'grey' | 'blur';
type Pick = 'heatmap' | 'random pixels' | 'random blocks' | 'heatmap cells' | 'random cells' | 'contrast' | 'contrast cells';

/**
 * Pixels (of SIZE * SIZE) to mask: the upsampled heatmap's top fraction, a random fraction, random 32-px blocks
 * (placed anywhere), or whole cells of the feature map (the heatmap's own grid, 32 px at 7 x 7): its top cells or
 * random ones, as many as make the fraction (10 of 49 = 20.4% at 20%).
 */
function maskIndices(pick: Pick, heat: Float32Array | undefined, cells: { data: Float32Array; height: number; width: number } | undefined, rng: Random): Uint8Array {
  const n = SIZE * SIZE;
  const count = Math.round(n * FRACTION);
  const mask = new Uint8Array(n);
  if (pick === 'heatmap cells' || pick === 'random cells' || pick === 'contrast cells') {
    const { height: h, width: w } = cells!;
    const order = Array.from({ length: h * w }, (_, i) => i);
    if (pick !== 'random cells') order.sort((a, b) => cells!.data[b]! - cells!.data[a]!);
    else rng.shuffle(order);
    for (const cell of order.slice(0, Math.round(h * w * FRACTION))) {
      const [cy, cx] = [Math.floor(cell / w), cell % w];
      for (let y = Math.floor((cy * SIZE) / h); y < Math.floor(((cy + 1) * SIZE) / h); y++) {
        for (let x = Math.floor((cx * SIZE) / w); x < Math.floor(((cx + 1) * SIZE) / w); x++) mask[y * SIZE + x] = 1;
      }
    }
  } else if (pick === 'heatmap' || pick === 'contrast') {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => heat![b]! - heat![a]!);
    for (let i = 0; i < count; i++) mask[order[i]!] = 1;
  } else if (pick === 'random pixels') {
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
    for (let i = 0; i < count; i++) mask[order[i]!] = 1;
  } else {
    let masked = 0;
    while (masked < count) {
      const y0 = Math.floor(rng.next() * (SIZE - 32));
      const x0 = Math.floor(rng.next() * (SIZE - 32));
      for (let y = y0; y < y0 + 32 && masked < count; y++) {
        for (let x = x0; x < x0 + 32 && masked < count; x++) {
          if (!mask[y * SIZE + x]) {
            mask[y * SIZE + x] = 1;
            masked++;
          }
        }
      }
    }
  }
  return mask;
}

/** One masked copy of `pixels` (one image, SIZE x SIZE x 3): masked pixels take the fill. */
function masked(pixels: Float32Array, blurred: Float32Array, mask: Uint8Array, fill: Fill): Float32Array {
  const out = Float32Array.from(pixels);
  const mean = [0, 0, 0];
  for (let p = 0; p < SIZE * SIZE; p++) for (let c = 0; c < 3; c++) mean[c]! += pixels[p * 3 + c]! / (SIZE * SIZE);
  for (let p = 0; p < SIZE * SIZE; p++) {
    if (!mask[p]) continue;
    for (let c = 0; c < 3; c++) out[p * 3 + c] = fill === 'mean' ? mean[c]! : fill === 'grey' ? 127.5 : blurred[p * 3 + c]!;
  }
  return out;
}

/**
 * The experiment: CAM of log P(c) for a linear (average-pooled) head. d log p_c / d pooled = w_c - sum_j p_j w_j,
 * so each position's share is F_ij . (w_c - sum_j p_j w_j): evidence for c against the classes it competes with.
 */
async function contrastMaps(model: TransferModel, images: tf.Tensor4D, predicted: number[]): Promise<{ data: Float32Array; height: number; width: number }[]> {
  const plan = headPlan(model, 'bench');
  if (plan.linear !== 'avg') throw new Error('the contrastive map is worked out for an average-pooled linear head only (run without --hidden)');
  const out: { data: Float32Array; height: number; width: number }[] = [];
  const [h, w, c] = plan.shape;
  for (let s = 0; s < images.shape[0]; s += 16) {
    const n = Math.min(16, images.shape[0] - s);
    const maps = tf.tidy(() => {
      const f = model.backbone.extract(tf.slice(images, s, n) as tf.Tensor4D) as tf.Tensor4D;
      const z = tf.add(tf.matMul(tf.mean(f, [1, 2]) as tf.Tensor2D, plan.kernel), plan.bias ?? 0) as tf.Tensor2D;
      const units = plan.kernel.shape[1];
      let dir: tf.Tensor2D;
      if (plan.sigmoid) {
        dir = tf.mul(tf.transpose(plan.kernel), tf.tensor2d(predicted.slice(s, s + n).map((k) => (k === 1 ? 1 : -1)), [n, 1])) as tf.Tensor2D;
      } else {
        const p = tf.softmax(z);
        const onehot = tf.cast(tf.oneHot(tf.tensor1d(predicted.slice(s, s + n), 'int32'), units), 'float32');
        dir = tf.matMul(tf.sub(onehot, p), plan.kernel, false, true) as tf.Tensor2D;
      }
      return tf.sum(tf.mul(f, tf.reshape(dir, [n, 1, 1, c])), -1);
    });
    const v = (await maps.data()) as Float32Array;
    maps.dispose();
    for (let i = 0; i < n; i++) {
      const raw = v.slice(i * h * w, (i + 1) * h * w);
      const lo = Math.min(...raw);
      const hi = Math.max(...raw);
      out.push({ data: raw.map((x) => (hi > lo ? (x - lo) / (hi - lo) : 0)), height: h, width: w });
    }
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function run(spec: Spec): Promise<void> {
  const t0 = performance.now();
  const train = await files(spec.dir, 'train', spec.trainPerClass, 1);
  const validation = await files(spec.dir, 'validation', spec.validationPerClass, 2);
  const backbone = freeze(await loadBackbone(MODEL));
  const model: TransferModel = attachHead(backbone, { classes: train.classes, seed: 1, hiddenUnits: hidden ? [hidden] : [] });
  const trainArgs = { epochs: 10, batchSize: 32, learningRate: 1e-3, seed: 1, verbose: false };
  if (TRAIN_ALL) {
    const folder = await imageFolder(join(spec.dir, 'train'), { size: [SIZE, SIZE], fit: 'squash', validationSplit: 0, classes: train.classes, progressBar: false, verbose: false });
    await fit(model, folder.train, trainArgs);
  } else {
    const xs = await load(train.paths);
    await fit(model, { xs, ys: train.labels }, trainArgs);
    xs.dispose();
  }
  const trainS = (performance.now() - t0) / 1000;

  const images = await load(validation.paths);
  const t1 = performance.now();
  const explained = await explain(model, images, { method: values.method as ExplainMethod, occlusionPatch: values.patch === undefined ? undefined : Number(values.patch), deletionPatch: values.patch === undefined ? undefined : Number(values.patch) });
  const explainS = (performance.now() - t1) / 1000;
  const contrast = hidden ? explained.map((e) => e.heatmap) : await contrastMaps(model, images, explained.map((e) => e.index));
  const accuracy = mean(explained.map((e, i) => (e.index === validation.labels[i] ? 1 : 0)));
  const blurredT = tf.tidy(() => tf.avgPool(images, 31, 1, 'same'));
  const fills: Fill[] = ['mean', 'grey', 'blur'];
  const picks: Pick[] = ['heatmap', 'random pixels', 'random blocks', 'heatmap cells', 'random cells', 'contrast', 'contrast cells'];
  const drops = new Map<string, number[]>();
  const n = images.shape[0];
  const all = await images.data();
  const blurAll = await blurredT.data();
  blurredT.dispose();
  const per = SIZE * SIZE * 3;
  const rng = new Random(3);
  for (let s = 0; s < n; s += 16) {
    const idx = Array.from({ length: Math.min(16, n - s) }, (_, i) => s + i);
    const masks = new Map<Pick, Uint8Array[]>(picks.map((p) => [p, idx.map((i) => { const h = p.startsWith('contrast') ? contrast[i]! : explained[i]!.heatmap; return maskIndices(p, p === 'heatmap' || p === 'contrast' ? upsampleHeatmap(h, [SIZE, SIZE]) : undefined, h, rng); })]));
    for (const fill of fills) {
      for (const pick of picks) {
        const batch = new Float32Array(idx.length * per);
        idx.forEach((i, j) => batch.set(masked(all.subarray(i * per, (i + 1) * per) as Float32Array, blurAll.subarray(i * per, (i + 1) * per) as Float32Array, masks.get(pick)![j]!, fill), j * per));
        const t = tf.tensor4d(batch, [idx.length, SIZE, SIZE, 3]);
        const preds = await predict(model, t);
        t.dispose();
        const key = `${fill}|${pick}`;
        if (!drops.has(key)) drops.set(key, []);
        idx.forEach((i, j) => drops.get(key)!.push(explained[i]!.probability - preds[j]!.probabilities[explained[i]!.label]!));
      }
    }
  }
  images.dispose();
  const method = explained[0]!.heatmap.method;
  console.log(`\n## ${spec.name}: ${n} validation images (${validation.classes.length} classes), head trained on ${train.paths.length}; method ${method}; accuracy ${(accuracy * 100).toFixed(1)}%; mean probability of the predicted class ${mean(explained.map((e) => e.probability)).toFixed(3)}`);
  console.log(`train ${trainS.toFixed(0)} s, explain ${explainS.toFixed(1)} s (${(n / explainS).toFixed(1)} images/s), masking ${(FRACTION * 100).toFixed(0)}% of the pixels`);
  console.log('| fill | heatmap drop | random pixels drop | ratio | random blocks drop | ratio | heatmap cells drop | random cells drop | ratio |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const fill of fills) {
    const d = (pick: Pick) => mean(drops.get(`${fill}|${pick}`)!);
    const [h, rp, rb, hc, rc] = [d('heatmap'), d('random pixels'), d('random blocks'), d('heatmap cells'), d('random cells')];
    console.log(`| ${fill} | ${h.toFixed(3)} | ${rp.toFixed(3)} | ${(h / rp).toFixed(1)}x | ${rb.toFixed(3)} | ${(h / rb).toFixed(1)}x | ${hc.toFixed(3)} | ${rc.toFixed(3)} | ${(hc / rc).toFixed(1)}x |`);
  }
  if (hidden) {
    model.dispose();
    return; // the contrastive map is defined for a linear head only
  }
  console.log('\nThe experiment beside it: a contrastive CAM, the map of log P(class) instead of the class logit (kernel column minus the probability-weighted mean of all columns; for one sigmoid unit the same ranking as CAM):');
  console.log('| fill | contrast drop | ratio to random pixels | ratio to random blocks | contrast cells drop | ratio to random cells |');
  console.log('|---|---|---|---|---|---|');
  for (const fill of fills) {
    const d = (pick: Pick) => mean(drops.get(`${fill}|${pick}`)!);
    const [c, cc] = [d('contrast'), d('contrast cells')];
    console.log(`| ${fill} | ${c.toFixed(3)} | ${(c / d('random pixels')).toFixed(1)}x | ${(c / d('random blocks')).toFixed(1)}x | ${cc.toFixed(3)} | ${(cc / d('random cells')).toFixed(1)}x |`);
  }
  model.dispose();
}

console.log(`# explain: the deletion check (backend ${tf.getBackend()}, ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} at start)`);
for (const name of values.datasets!.split(',')) {
  const spec = SPECS[name.trim()];
  if (!spec) throw new Error(`unknown dataset ${name}: cats or flowers`);
  await run(spec);
}
console.log(`\nload average ${loadavg().map((x) => x.toFixed(2)).join(' ')} at the end`);
