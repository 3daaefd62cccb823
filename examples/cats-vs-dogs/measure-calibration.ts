/**
 * Measures calibration through the library, for docs/accuracy.md: the default head (as `transferLearn` trains it:
 * Adam 1e-3, up to 20 epochs, early stopping on validation loss, patience 5), then `calibrate` on the validation
 * images with the activations `fit` kept, as `transferLearn` does.
 *
 *   node --import tsx examples/cats-vs-dogs/measure-calibration.ts [--seeds 3] [--task cats|flowers] [--model 1.0|0.35] [--size 224]
 *   (`--size`: the backbone's input size and the images', in pixels; 256 is what transferLearn runs MobileNetV2 at)
 *
 * Features are extracted once (an in-memory activation store keyed by image content); each seed then trains a fresh
 * head with `fit`. Reported per seed: validation accuracy and ROC AUC, the expected calibration error (15 bins)
 * before calibrating, after calibrating measured by 5-fold cross-validation over the validation images (the honest
 * figure), and after calibrating measured on the same images the temperature was fitted on (optimistic, for
 * contrast), the temperature; for cats vs dogs also the ECE on `cats_vs_dogs_elsewhere` (never used to fit anything)
 * before and after; and the sampling floor of the ECE: the mean ECE of the calibrated probabilities against labels
 * drawn from those very probabilities (a perfectly calibrated model with the same confidences, on as many images),
 * over 50 draws: what finite data alone gives.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { attachHead, env, evaluate, fit, freeze, imageFolder, loadBackbone, type ActivationStore } from '../../src/node/index';
import { calibrate } from '../../src/evaluate';
import { metricsFromProbabilities, reliabilityOf } from '../../src/evaluate/metrics';
import { Random } from '../../src/util/random';
import { freezeBoundaryOf } from '../../src/train/boundary';
import { extractActivations, gatherBatch, type Activations } from '../../src/train/activations';
import { toLabelledSource } from '../../src/train/source';
import type { TransferModel } from '../../src/transfer-model';
import { findShared } from './locate';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '3' }, task: { type: 'string', default: 'cats' }, model: { type: 'string', default: '1.0' }, size: { type: 'string', default: '224' } } });
const size = Number(values.size);
if (!(Number.isInteger(size) && size >= 32)) throw new Error(`--size must be an integer of at least 32 pixels, got ${values.size}`);
await tf.setBackend('wasm');
await tf.ready();
const shared = findShared();
if (!shared) throw new Error('needs ../shared');
const modelDir = values.model === '0.35' ? 'mobilenet_v2_0.35_224_no_top' : 'mobilenet_v2_1.0_224';
const folder = values.task === 'flowers' ? 'flower_photos' : 'cats_and_dogs_filtered_200px';
const data = await imageFolder(join(shared, 'data', folder), { size: [size, size] });
const elsewhere = values.task === 'flowers' ? undefined : await imageFolder(join(shared, 'data/cats_vs_dogs_elsewhere'), { size: [size, size], validationSplit: 0 });

const memory = new Map<string, Float32Array[]>();
const store: ActivationStore = { get: async (k) => memory.get(k), set: async (k, v) => void memory.set(k, v) };
const backbone = freeze(await loadBackbone(join(shared, 'models', modelDir, 'model.json'), { inputSize: [size, size] }));
env.verbose = false;

/** The head's class probabilities `[n, k]` (two columns for a sigmoid head) on cached activations. */
async function probabilitiesOn(model: TransferModel, acts: Activations): Promise<Float32Array> {
  const split = freezeBoundaryOf(model);
  const p = tf.tidy(() => {
    const [inputs] = gatherBatch(acts, Array.from({ length: acts.n }, (_, i) => i), () => 0);
    const out = split.top.predict(inputs!) as tf.Tensor2D;
    return out.shape[1] === 1 ? tf.concat([tf.sub(1, out), out], 1) : out;
  });
  const probs = (await p.data()) as Float32Array;
  p.dispose();
  return probs;
}

/** ECE of the model's head on cached activations of data it never saw. */
async function eceOn(model: TransferModel, acts: Activations): Promise<number> {
  const probs = await probabilitiesOn(model, acts);
  return metricsFromProbabilities(probs, acts.labels, model.classes).ece;
}

/** Mean ECE of `acts`' probabilities under the model against labels drawn from them (50 seeded draws). */
async function eceFloor(model: TransferModel, acts: Activations): Promise<number> {
  const probs = await probabilitiesOn(model, acts);
  const k = model.numClasses;
  const rng = new Random(12345);
  let sum = 0;
  for (let d = 0; d < 50; d++) {
    const labels = new Int32Array(acts.n);
    for (let i = 0; i < acts.n; i++) {
      let u = rng.next();
      let c = 0;
      while (c < k - 1 && u >= probs[i * k + c]!) u -= probs[i * k + c++]!;
      labels[i] = c;
    }
    sum += reliabilityOf(probs, labels, k).ece;
  }
  return sum / 50;
}

const t0 = Date.now();
let elseActs: Activations | undefined;
const rows: string[] = [];
const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i + 1);
for (const seed of seeds) {
  const model = attachHead(backbone, { classes: data.classes, seed });
  const history = await fit(model, data.train, {
    learningRate: 1e-3, epochs: 20, earlyStopping: { monitor: 'valLoss', patience: 5, restoreBestWeights: true },
    seed, validationData: data.validation, cache: store, keepValidationActivations: true, verbose: false,
  });
  if (seed === 1) console.error(`features extracted and first head trained in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (elsewhere && !elseActs) {
    const split = freezeBoundaryOf(model);
    elseActs = await extractActivations(split.extractor, split.shapes, toLabelledSource(elsewhere.train, model.classes, [224, 224], 'elsewhere'), { batchSize: 32, views: [] });
  }
  const activations = history.validationActivations;
  const before = await evaluate(model, data.validation!, { activations });
  const elseBefore = elseActs ? await eceOn(model, elseActs) : undefined;
  const t1 = Date.now();
  const record = await calibrate(model, data.validation!, { activations });
  const calibrateMs = Date.now() - t1;
  const after = await evaluate(model, data.validation!, { activations });
  const floor = await eceFloor(model, await activations!.activationsFor(model, data.validation!, 'measure'));
  const elseAfter = elseActs ? await eceOn(model, elseActs) : undefined;
  activations?.dispose();
  const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(4));
  rows.push(`| ${seed} | ${history.epochs} | ${f(before.accuracy)} | ${f(before.rocAuc)} | ${f(record.eceBefore)} | ${f(record.eceAfter)} | ${f(after.ece)} | ${record.temperature.toFixed(3)} | ${f(elseBefore)} | ${f(elseAfter)} | ${after.accuracy === before.accuracy ? 'same' : f(after.accuracy)} | ${calibrateMs} | ${f(floor)} |`);
  console.error(rows.at(-1));
  model.headLayers.forEach((name) => model.model.getLayer(name).dispose());
}
console.log(`${values.task}, MobileNetV2 ${values.model} at ${size}, ${data.validation!.size} validation images${elseActs ? `, ${elseActs.n} elsewhere` : ''}`);
console.log('| seed | epochs | val accuracy | val ROC AUC | ECE before | ECE after (5-fold CV) | ECE after (same images) | T | elsewhere ECE before | elsewhere ECE after | accuracy after | calibrate ms | ECE floor (perfectly calibrated, same n) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log(`\nbackend ${tf.getBackend()}; total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
