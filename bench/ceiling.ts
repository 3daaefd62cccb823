/**
 * What two cores can give for extraction on wasm, whatever the library does: `npm run bench:ceiling`.
 *
 * In each of ROUNDS (default 3) interleaved rounds: stock `model.predict` for scale, the library's own path on its
 * worker pool, the folded frozen backbone (the library's compiled program) on one thread in one process, then in
 * two processes at once (one per core, nothing shared: the best any pool of workers could do). All on the same
 * random 224x224 batches of 32. Prints medians, ranges and the median of the per-round ratios to stock.
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
import { batchSource, median } from './common';

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
  const rounds = Number(process.env.ROUNDS ?? 3);
  const { model, batches } = await setup();
  const shapes = [model.outputs[0]!.shape.slice(1) as number[]];
  const pool = createExtractPool({ minImages: 0 });
  (model.predict(batches[0]!) as tf.Tensor).dispose();
  env.parallelExtractor = pool;
  await extractActivations(model, shapes, batchSource(batches.slice(0, 1)), { batchSize: BATCH, views: [] }); // start the workers
  env.parallelExtractor = undefined;
  const perRound = { stock: [] as number[], solo: [] as number[], pair: [] as number[], pool: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    for (const x of batches) {
      const o = model.predict(x) as tf.Tensor;
      o.dataSync();
      o.dispose();
    }
    perRound.stock.push((BATCH * BATCHES) / ((performance.now() - t0) / 1000));
    env.parallelExtractor = pool;
    t0 = performance.now();
    await extractActivations(model, shapes, batchSource(batches), { batchSize: BATCH, views: [] });
    perRound.pool.push((BATCH * BATCHES) / ((performance.now() - t0) / 1000));
    env.parallelExtractor = undefined;
    perRound.solo.push(await child());
    const pair = await Promise.all([child(), child()]);
    perRound.pair.push(pair[0]! + pair[1]!);
    process.stderr.write(`round ${r + 1}: stock ${perRound.stock[r]!.toFixed(1)}, pool ${perRound.pool[r]!.toFixed(1)}, one process ${perRound.solo[r]!.toFixed(1)}, two processes ${perRound.pair[r]!.toFixed(1)} img/s\n`);
  }
  await pool.dispose();
  const line = (what: string, xs: number[]) =>
    `${what.padEnd(44)} ${median(xs).toFixed(1).padStart(6)} img/s (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})  ${median(xs.map((v, i) => v / perRound.stock[i]!)).toFixed(2)}x stock`;
  console.log(`model: ${MODEL}; ${rounds} interleaved rounds, medians (range), median of per-round ratios`);
  console.log(line('stock model.predict, this thread', perRound.stock));
  console.log(line('folded, one process alone', perRound.solo));
  console.log(line('folded, two processes at once (sum)', perRound.pair));
  console.log(line(`library path, ${pool.size} workers`, perRound.pool));
}

if (process.argv.includes('--child')) console.log(`CHILD ${await foldedOneThread()}`);
else await main();
