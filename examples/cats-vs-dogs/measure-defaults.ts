/**
 * Measures head-training settings on cached MobileNetV2 features (cats vs dogs), for docs/accuracy.md.
 *
 *   node --import tsx examples/cats-vs-dogs/measure-defaults.ts [--seeds 3] [--fine-tune-bench]
 *
 * Features are extracted once (an in-memory activation store keyed by image content); every setting then trains
 * a fresh head with the library's own `fit`, and is scored on the validation split (the one early stopping
 * watches) and on the independent full-resolution set, which no setting ever sees.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { attachHead, env, fit, freeze, imageFolder, loadBackbone, type ActivationStore, type FitArgs } from '../../src/node/index';
import { freezeBoundaryOf } from '../../src/train/boundary';
import { scoreActivations } from '../../src/train/epoch-loop';
import { extractActivations } from '../../src/train/activations';
import { toLabelledSource } from '../../src/train/source';
import { findShared } from './locate';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '3' }, settings: { type: 'string' } } });
await tf.setBackend('wasm');
await tf.ready();
const shared = findShared();
if (!shared) throw new Error('needs ../shared');
const modelPath = join(shared, 'models/mobilenet_v2_1.0_224/model.json');
const data = await imageFolder(join(shared, 'data/cats_and_dogs_filtered_200px'), { size: [224, 224] });
const fullres = await imageFolder(join(shared, 'data/cats_vs_dogs_fullres'), { size: [224, 224], validationSplit: 0 });

const memory = new Map<string, Float32Array[]>();
const store: ActivationStore = { get: async (k) => memory.get(k), set: async (k, v) => void memory.set(k, v) };
const backbone = freeze(await loadBackbone(modelPath));

interface Setting { name: string; args: FitArgs }
const ES = { monitor: 'valLoss', patience: 5, restoreBestWeights: true } as const;
const SETTINGS: Setting[] = [
  { name: 'Adam 1e-4 x 10 (tutorial)', args: { learningRate: 1e-4, epochs: 10 } },
  { name: 'Adam 1e-4 x 50, ES p5', args: { learningRate: 1e-4, epochs: 50, earlyStopping: ES } },
  { name: 'Adam 1e-3 x 10', args: { learningRate: 1e-3, epochs: 10 } },
  { name: 'Adam 1e-3 x 20', args: { learningRate: 1e-3, epochs: 20 } },
  { name: 'Adam 1e-3 x 20, ES p5', args: { learningRate: 1e-3, epochs: 20, earlyStopping: ES } },
  { name: 'Adam 1e-3 x 50, ES p5', args: { learningRate: 1e-3, epochs: 50, earlyStopping: ES } },
  { name: 'Adam 3e-3 x 20, ES p5', args: { learningRate: 3e-3, epochs: 20, earlyStopping: ES } },
];
const only = values.settings?.split(',').map(Number);
const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i + 1);

env.verbose = false;
let fullActs: Awaited<ReturnType<typeof extractActivations>> | undefined;
const t0 = Date.now();
const rows: string[] = [];
for (const [si, setting] of SETTINGS.entries()) {
  if (only && !only.includes(si)) continue;
  const res: { val: number; valLoss: number; full: number; epochs: number; ms: number }[] = [];
  for (const seed of seeds) {
    const model = attachHead(backbone, { classes: data.classes, seed });
    const history = await fit(model, data.train, { ...setting.args, seed, validationData: data.validation, cache: store, verbose: false });
    const split = freezeBoundaryOf(model);
    if (!fullActs) {
      fullActs = await extractActivations(split.extractor, split.shapes, toLabelledSource(fullres.train, model.classes, [224, 224], 'fullres'), { batchSize: 32, views: [] });
      console.error(`features extracted in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
    }
    const full = await scoreActivations(split.top, fullActs, 2, 64);
    const best = history.bestEpoch;
    const finalVal = history.stoppedEarly || setting.args.earlyStopping ? history.valAccuracy[best]! : history.valAccuracy.at(-1)!;
    const finalLoss = setting.args.earlyStopping ? history.valLoss[best]! : history.valLoss.at(-1)!;
    res.push({ val: finalVal, valLoss: finalLoss, full: full.accuracy, epochs: history.epochs, ms: history.timing.trainMs });
    console.error(`${setting.name} seed ${seed}: val ${finalVal.toFixed(4)} (loss ${finalLoss.toFixed(4)}) fullres ${full.accuracy.toFixed(4)} epochs ${history.epochs} best ${best + 1} train ${(history.timing.trainMs / 1000).toFixed(1)}s`);
    model.headLayers.forEach((name) => model.model.getLayer(name).dispose());
  }
  const mean = (f: (r: (typeof res)[number]) => number) => res.reduce((a, r) => a + f(r), 0) / res.length;
  const range = (f: (r: (typeof res)[number]) => number) => `${Math.min(...res.map(f)).toFixed(3)}-${Math.max(...res.map(f)).toFixed(3)}`;
  rows.push(
    `| ${setting.name} | ${mean((r) => r.val).toFixed(4)} (${range((r) => r.val)}) | ${mean((r) => r.valLoss).toFixed(4)} | ${mean((r) => r.full).toFixed(4)} (${range((r) => r.full)}) | ${res.map((r) => r.epochs).join(', ')} | ${(mean((r) => r.ms) / 1000).toFixed(1)} |`,
  );
}
console.log('| setting | val accuracy, mean (range) | val loss | fullres accuracy, mean (range) | epochs run | train s |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log(`\nseeds ${seeds.join(', ')}; backend ${tf.getBackend()}; total ${((Date.now() - t0) / 1000).toFixed(0)}s`);
