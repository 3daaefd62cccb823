/**
 * What two cores can give for extraction on wasm, whatever the library does: `npm run bench:ceiling`.
 *
 * Runs the folded frozen backbone (the library's compiled program) on one thread in one process, then in two
 * processes at once (one per core, nothing shared: the best any pool of workers could do), then the library's own
 * path on its worker pool, and stock `model.predict` for scale. All on the same random 224x224 batches of 32.
 *
 * Usage: node --import tsx bench/ceiling.ts [model.json] (default: ../shared/models/mobilenet_v2_1.0_224).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { env, loadBackbone } from '../src/node/index';
import { foldModel } from '../src/backbone/fold';
import { extractActivations } from '../src/train/activations';
import { createExtractPool } from '../src/node/extract-pool';
import type { LabelledSource } from '../src/train/source';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHARED = process.env.TFJS_TRANSFER_SHARED ?? path.resolve(here, '../../shared');
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const MODEL = args[0] ?? path.join(SHARED, 'models/mobilenet_v2_1.0_224/model.json');
const BATCH = 32;
const BATCHES = 6;

async function setup(): Promise<{ model: import('@tensorflow/tfjs-layers').LayersModel; batches: tf.Tensor4D[] }> {
  env.verbose = false;
  await tf.setBackend('wasm');
  await tf.ready();
  const backbone = await loadBackbone(MODEL);
  const batches = Array.from({ length: BATCHES }, (_, i) => tf.randomUniform([BATCH, 224, 224, 3], 0, 255, 'float32', i + 1) as tf.Tensor4D);
  return { model: backbone.model!, batches };
}

/** Images/s of the folded program on this thread (after one warm-up batch). */
async function foldedOneThread(): Promise<number> {
  const { model, batches } = await setup();
  const folded = foldModel(model);
  folded.predict(batches[0]!).forEach((t) => t.dispose());
  const t0 = performance.now();
  for (const x of batches) folded.predict(x).forEach((t) => (t.dataSync(), t.dispose()));
  return (BATCH * BATCHES) / ((performance.now() - t0) / 1000);
}

function child(): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), MODEL, '--child'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      const m = /CHILD ([\d.]+)/.exec(out);
      if (code === 0 && m) resolve(Number(m[1]));
      else reject(new Error(`child exited ${code}: ${out}`));
    });
  });
}

async function main(): Promise<void> {
  const solo = await child();
  const pair = await Promise.all([child(), child()]);
  const { model, batches } = await setup();
  const shapes = [model.outputs[0]!.shape.slice(1) as number[]];
  const source = (list: tf.Tensor4D[]): LabelledSource => ({
    size: BATCH * list.length,
    labels: new Int32Array(BATCH * list.length),
    async *batches() {
      for (const b of list) yield { xs: tf.clone(b), ys: new Int32Array(BATCH), keys: undefined, sources: undefined };
    },
  });
  (model.predict(batches[0]!) as tf.Tensor).dispose();
  let t0 = performance.now();
  for (const x of batches) {
    const o = model.predict(x) as tf.Tensor;
    o.dataSync();
    o.dispose();
  }
  const stock = (BATCH * BATCHES) / ((performance.now() - t0) / 1000);
  const pool = createExtractPool({ minImages: 0 });
  env.parallelExtractor = pool;
  await extractActivations(model, shapes, source(batches.slice(0, 1)), { batchSize: BATCH, views: [] }); // start the workers
  t0 = performance.now();
  await extractActivations(model, shapes, source(batches), { batchSize: BATCH, views: [] });
  const pooled = (BATCH * BATCHES) / ((performance.now() - t0) / 1000);
  env.parallelExtractor = undefined;
  await pool.close();
  const f = (v: number) => `${v.toFixed(1)} img/s (${(v / stock).toFixed(2)}x stock)`;
  console.log(`model: ${MODEL}`);
  console.log(`stock model.predict, this thread:           ${f(stock)}`);
  console.log(`folded, one process alone:                  ${f(solo)}`);
  console.log(`folded, two processes at once (sum):        ${f(pair[0]! + pair[1]!)}  [${pair.map((p) => p.toFixed(1)).join(' + ')}]`);
  console.log(`library path, ${pool.size} workers:                   ${f(pooled)}`);
}

if (process.argv.includes('--child')) console.log(`CHILD ${await foldedOneThread()}`);
else await main();
