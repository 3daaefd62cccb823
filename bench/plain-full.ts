/**
 * The plain path run in full, not extrapolated: `npm run bench:plain` (about 25 minutes on wasm here).
 *
 * tfjs-layers' own `model.fitDataset` on the composed model (frozen MobileNetV2 1.0 + GlobalAveragePooling +
 * Dropout 0.2 + Dense(1, sigmoid)), the Keras tutorial's settings: Adam 1e-4, 10 epochs, validation on all 1000
 * validation images after every epoch, training images shuffled every epoch. Batch 16: at the tutorial's 32 the
 * training tape through the whole backbone aborts the wasm module (4 GiB heap), see `npm run bench`.
 *
 * Images are decoded once (sharp, squashed to 224x224) and kept as bytes in JavaScript memory; each step builds
 * its batch tensor from them, so decoding is not charged to the plain path at all. Prints one line per epoch and
 * writes bench/results/plain-full.json. Compare with the `transferLearn() cold` row of `npm run bench` (same data,
 * model, head, optimizer, learning rate and epochs, with decoding included there).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { env } from '../src/node/index';
import { Random } from '../src/util/random';
import { plainTutorialModel } from './common';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHARED = process.env.TFJS_TRANSFER_SHARED ?? path.resolve(here, '../../shared');
const MODEL = path.join(SHARED, 'models/mobilenet_v2_1.0_224/model.json');
const DATA = path.join(SHARED, 'data/cats_and_dogs_filtered_200px');
const SIZE = 224;
const PER = SIZE * SIZE * 3;
const BATCH = Number(process.env.PLAIN_BATCH ?? 16);
const EPOCHS = Number(process.env.PLAIN_EPOCHS ?? 10);
const LIMIT = Number(process.env.PLAIN_LIMIT ?? Infinity); // images per class and split, for a quick try

/** What `LayersModel.fitDataset` takes (a tf.data.Dataset; only `iterator()` is used). */
type FitDataset = Parameters<tfl.LayersModel['fitDataset']>[0];

interface Split {
  pixels: Uint8Array[];
  labels: number[];
}

async function load(split: string): Promise<Split> {
  const out: Split = { pixels: [], labels: [] };
  for (const [label, cls] of ['cats', 'dogs'].entries()) {
    const dir = path.join(DATA, split, cls);
    const names = fs.readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, LIMIT);
    const decoded = await Promise.all(
      names.map(async (f) => new Uint8Array(await sharp(path.join(dir, f)).removeAlpha().resize(SIZE, SIZE, { fit: 'fill' }).raw().toBuffer())),
    );
    out.pixels.push(...decoded);
    out.labels.push(...decoded.map(() => label));
  }
  return out;
}

/** A tf.data-style dataset (what `fitDataset` reads) over `split`, in `order()` each time it is iterated. */
function dataset(split: Split, order: () => number[]): FitDataset {
  return {
    async iterator() {
      const idx = order();
      let s = 0;
      return {
        async next() {
          if (s >= idx.length) return { done: true, value: null };
          const rows = idx.slice(s, s + BATCH);
          s += BATCH;
          const buf = new Float32Array(rows.length * PER);
          rows.forEach((r, i) => buf.set(split.pixels[r]!, i * PER));
          const xs = tf.tensor4d(buf, [rows.length, SIZE, SIZE, 3]);
          const ys = tf.tensor2d(rows.map((r) => split.labels[r]!), [rows.length, 1]);
          return { done: false, value: { xs, ys } };
        },
      };
    },
  } as unknown as FitDataset;
}

env.verbose = false;
await tf.setBackend('wasm');
await tf.ready();
const t0 = performance.now();
const [train, validation] = [await load('train'), await load('validation')];
const decodeS = (performance.now() - t0) / 1000;
console.log(`decoded ${train.labels.length} + ${validation.labels.length} images in ${decodeS.toFixed(1)} s (not charged below)`);

const model = await plainTutorialModel(MODEL);

const rng = new Random(1);
const trainOrder = () => rng.shuffle(train.labels.map((_, i) => i));
const valOrder = () => validation.labels.map((_, i) => i);
const epochs: { epoch: number; seconds: number; loss: number; acc: number; valLoss: number; valAcc: number }[] = [];
let epochStart = performance.now();
const start = performance.now();
await model.fitDataset(dataset(train, trainOrder), {
  epochs: EPOCHS,
  validationData: dataset(validation, valOrder),
  verbose: 0,
  callbacks: {
    onEpochBegin: async () => {
      epochStart = performance.now();
    },
    onEpochEnd: async (epoch, logs) => {
      const e = { epoch: epoch + 1, seconds: (performance.now() - epochStart) / 1000, loss: logs!.loss!, acc: logs!.acc ?? logs!.accuracy!, valLoss: logs!.val_loss!, valAcc: logs!.val_acc ?? logs!.val_accuracy! };
      epochs.push(e);
      console.log(`epoch ${e.epoch}: ${e.seconds.toFixed(0)} s, loss ${e.loss.toFixed(4)}, acc ${e.acc.toFixed(4)}, val_loss ${e.valLoss.toFixed(4)}, val_acc ${e.valAcc.toFixed(4)}`);
    },
  },
});
const wallS = (performance.now() - start) / 1000;
const result = {
  command: 'npm run bench:plain',
  date: new Date().toISOString(),
  batch: BATCH,
  epochsRun: epochs.length,
  trainImages: train.labels.length,
  validationImages: validation.labels.length,
  decodeS,
  fitWallS: wallS,
  finalValAccuracy: epochs.at(-1)?.valAcc,
  epochs,
  peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
};
console.log(`plain model.fitDataset: ${wallS.toFixed(0)} s for ${epochs.length} epochs (decoding excluded), final val_acc ${result.finalValAccuracy?.toFixed(4)}, peak RSS ${result.peakRssMB} MB`);
fs.mkdirSync(path.join(here, 'results'), { recursive: true });
fs.writeFileSync(path.join(here, 'results', 'plain-full.json'), JSON.stringify(result, null, 2));
