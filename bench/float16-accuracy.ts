/**
 * Float16 against float32 activation storage on real data: `node --import tsx bench/float16-accuracy.ts [--epochs 3]
 * [--cut block_16_expand] [--json out.json]`. Fine-tunes MobileNetV2 1.0 with a fresh head from `cut` on cats vs
 * dogs (../shared/data/cats_and_dogs_filtered_200px: 2000 train, 1000 validation) on wasm, flip augmentation, the
 * same seed both ways, and prints each run's validation accuracy and loss per epoch. Both runs share one disk cache
 * (in a temp folder, deleted afterwards), so the second run reads the same float32 activations the first extracted
 * and only the in-fit storage differs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { attachHead, createDiskCache, env, fit, freeze, imageFolder, loadBackbone, type ActivationStorage } from '../src/node/index';
import { findShared } from '../examples/cats-vs-dogs/locate';

const { values } = parseArgs({ options: { epochs: { type: 'string' }, cut: { type: 'string' }, json: { type: 'string' }, seed: { type: 'string' } } });
const epochs = Number(values.epochs ?? 3);
const cut = values.cut ?? 'block_16_expand';
const seed = Number(values.seed ?? 7);
const shared = findShared();
if (!shared) throw new Error('needs ../shared');
await tf.setBackend('wasm');
if (tf.getBackend() !== 'wasm') throw new Error('the wasm backend did not initialise');
env.verbose = true;
const dir = mkdtempSync(path.join(os.tmpdir(), 'tfjs-transfer-f16-'));
const results: Record<string, unknown> = { cut, epochs, seed, date: new Date().toISOString(), loadavgAtStart: os.loadavg() };
try {
  const cache = createDiskCache(dir);
  const folder = await imageFolder(path.join(shared, 'data/cats_and_dogs_filtered_200px'), { size: [224, 224] });
  for (const storage of ['float32', 'float16'] as ActivationStorage[]) {
    const backbone = await loadBackbone(path.join(shared, 'models/mobilenet_v2_1.0_224/model.json'));
    const model = attachHead(freeze(backbone), { classes: folder.classes, seed });
    freeze(model, { trainableFrom: cut });
    const t0 = Date.now();
    const h = await fit(model, folder.train, {
      epochs, seed, batchSize: 32, validationData: folder.validation, cache, activationStorage: storage, unknown: false,
      augment: { flip: true, rotation: 0, zoom: 0, translation: 0, brightness: 0, contrast: 0 },
    });
    results[storage] = { valAccuracy: h.valAccuracy, valLoss: h.valLoss, loss: h.loss, seconds: (Date.now() - t0) / 1000 };
    console.log(`${storage}: valAccuracy ${h.valAccuracy.map((a) => a.toFixed(4)).join(', ')}; valLoss ${h.valLoss.map((a) => a.toFixed(4)).join(', ')}`);
    model.dispose();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(results, null, 2));
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
process.exit(0); // the worker pool keeps the process alive
