/**
 * `npm run bench:yield`: what yielding to the event loop costs `fit` (issue 17: "keep the event loop responsive
 * during training ... cheaply: measure the cost").
 *
 * The head of the default model (pooling, dropout 0.2, one sigmoid unit) trains on cached 1280-float features of
 * 2000 images, batch 32 (63 steps an epoch, the cats-vs-dogs head's shape): the part of `fit` that yields. The
 * backbone is a fixed random projection of 8x8 images, so extraction is negligible and every millisecond measured
 * is the epoch loop. Three schedules run in interleaved rounds: `yieldEvery: 'never'` (the baseline), `'auto'`
 * (the default: at most every 125 ms) and `'batch'` (after every step). Reports medians, ranges and the per-round
 * ratio to the baseline; also how often a 5 ms interval timer got to run during each fit (0 means the event loop
 * starved).
 *
 * Usage: npm run bench:yield [-- --rounds 5 --epochs 10 --backend wasm]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { attachHead, env, fit, freeze, loadBackbone, type YieldEvery } from '../src/node/index';
import { median } from './common';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, epochs: { type: 'string', default: '10' }, backend: { type: 'string', default: 'wasm' } } });
const rounds = Number(values.rounds);
const epochs = Number(values.epochs);
await tf.setBackend(values.backend!);
if (tf.getBackend() !== values.backend) throw new Error(`backend ${values.backend} did not initialise`);
env.verbose = false;
env.parallelExtractor = undefined; // the 8x8 projection is cheaper in this thread than on workers

const N = 2000;
const projection = tf.tidy(() => tf.randomNormal([8 * 8 * 3, 1280], 0, 0.05, 'float32', 7));
const backbone = freeze(
  await loadBackbone((x: tf.Tensor4D) => tf.tidy(() => tf.reshape(tf.relu(tf.matMul(tf.reshape(x, [x.shape[0], 192]), projection)), [x.shape[0], 1, 1, 1280])), {
    inputSize: [8, 8],
    featureShape: [1, 1, 1280],
    name: 'projection',
  }),
);
const labels = Array.from({ length: N }, (_, i) => i % 2);
const xs = tf.tidy(() => tf.add(tf.mul(tf.randomUniform([N, 8, 8, 3], 0, 200, 'float32', 3), 1), tf.reshape(tf.tensor1d(labels.map((y) => y * 40)), [N, 1, 1, 1])) as tf.Tensor4D);

async function once(yieldEvery: YieldEvery): Promise<{ ms: number; ticks: number }> {
  const model = attachHead(backbone, { classes: ['a', 'b'], seed: 1 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const t0 = performance.now();
  const history = await fit(model, { xs, ys: labels }, { epochs, batchSize: 32, learningRate: 1e-3, seed: 1, yieldEvery, verbose: false });
  const ms = performance.now() - t0 - history.timing.extractMs;
  clearInterval(timer);
  // The backbone is shared by every round: free only the head's weights.
  model.head.dispose();
  return { ms, ticks };
}

const schedules: YieldEvery[] = ['never', 'auto', 'batch'];
const times = new Map<YieldEvery, number[]>(schedules.map((s) => [s, []]));
const ticks = new Map<YieldEvery, number[]>(schedules.map((s) => [s, []]));
const ratios = new Map<YieldEvery, number[]>(schedules.map((s) => [s, []]));
await once('never'); // warm-up
for (let r = 0; r < rounds; r++) {
  const round = new Map<YieldEvery, number>();
  for (const s of schedules) {
    const res = await once(s);
    times.get(s)!.push(res.ms);
    ticks.get(s)!.push(res.ticks);
    round.set(s, res.ms);
  }
  for (const s of schedules) ratios.get(s)!.push(round.get(s)! / round.get('never')!);
  console.error(`[bench:yield] round ${r + 1}/${rounds}: ${schedules.map((s) => `${s} ${round.get(s)!.toFixed(0)} ms`).join(', ')}`);
}
console.log(`fit on cached features: ${N} images x ${epochs} epochs, batch 32, backend ${tf.getBackend()}, ${rounds} interleaved rounds`);
console.log('| yieldEvery | training time, median (range) | vs never, median per-round ratio | 5 ms timer ticks during fit, median |');
console.log('|---|---|---|---|');
for (const s of schedules) {
  const t = times.get(s)!;
  console.log(`| ${s} | ${median(t).toFixed(0)} ms (${Math.min(...t).toFixed(0)}-${Math.max(...t).toFixed(0)}) | ${median(ratios.get(s)!).toFixed(3)}x | ${median(ticks.get(s)!)} |`);
}
xs.dispose();
projection.dispose();
backbone.dispose();
