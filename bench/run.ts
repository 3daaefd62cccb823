/**
 * Speed benchmark: `npm run bench` (= `node --import tsx bench/run.ts`), `npm run bench -- --quick`.
 *
 * (a) Feature extraction, images/s: stock `model.predict` vs the library's extraction path (`extractActivations`,
 *     as `fit` runs it: folded, in this thread and on the worker pool), per backend (cpu on a few images, it is
 *     ~1 img/s), in interleaved rounds; medians and per-round ratios.
 * (b) End to end, the Keras tutorial's settings (frozen MobileNetV2 1.0 + avg pool + dropout 0.2 + 1 sigmoid unit,
 *     Adam 1e-4, 10 epochs, batch 16 for both paths: the plain path aborts the wasm heap at the tutorial's 32): a
 *     plain tfjs `model.fit` on the composed model, timed on a subset for one epoch and extrapolated (a full run
 *     takes ~19 minutes here: `npm run bench:plain` does it), vs `transferLearn()` (cold: decode + extract + train
 *     + evaluate all 3000 images) and `fit()` again with the warm disk cache.
 * (c) Peak RSS and tf.memory().numTensors after each.
 *
 * Writes bench/results/latest.json. Needs ../shared (models and data) and sharp.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { env, loadBackbone, freeze, attachHead, fit, evaluate, transferLearn, imageFolder } from '../src/node/index';
import { extractActivations } from '../src/train/activations';
import { takeRows } from '../src/util/rows';
import { createExtractPool } from '../src/node/extract-pool';
import { createDiskCache } from '../src/node/disk-cache';
import { disposeLayers } from '../src/util/dispose';
import { batchSource, median, plainTutorialModel } from './common';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHARED = process.env.TFJS_TRANSFER_SHARED ?? path.resolve(here, '../../shared');
const MODEL = path.join(SHARED, 'models/mobilenet_v2_1.0_224/model.json');
const MODEL_035 = path.join(SHARED, 'models/mobilenet_v2_0.35_224_no_top/model.json');
const DATA = path.join(SHARED, 'data/cats_and_dogs_filtered_200px');
const quick = process.argv.includes('--quick');
const skipPlain = process.argv.includes('--no-plain');
const SIZE = 224;
const WASM_N = quick ? 64 : 256;
const CPU_N = quick ? 4 : 16;
const PLAIN_N = quick ? 64 : 256;
/** Interleaved rounds of each extraction measurement (medians are reported). */
const ROUNDS = quick ? 1 : 3;
/**
 * Batch size of both end-to-end paths. The Keras tutorial uses 32, but tfjs `model.fit` through the whole frozen
 * MobileNetV2 aborts the wasm module at 32 here (4 GiB heap), so both paths run at 16 for equal settings.
 */
const E2E_BATCH = 16;

env.verbose = false;
const results: Record<string, unknown> = {
  command: `npm run bench${quick ? ' -- --quick' : ''}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavgAtStart: os.loadavg() },
};
const rows: string[][] = [];

function memo(stage: string): { stage: string; peakRssMB: number; numTensors: number } {
  const m = { stage, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024), numTensors: tf.memory().numTensors };
  return m;
}

function files(split: string, cls: string): string[] {
  const dir = path.join(DATA, split, cls);
  return fs.readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort().map((f) => path.join(dir, f));
}

async function decode(list: string[]): Promise<tf.Tensor4D> {
  const per = SIZE * SIZE * 3;
  const buf = new Float32Array(list.length * per);
  await Promise.all(
    list.map(async (file, i) => {
      const data = await sharp(file).removeAlpha().resize(SIZE, SIZE, { fit: 'fill' }).raw().toBuffer();
      for (let j = 0; j < data.length; j++) buf[i * per + j] = data[j]!;
    }),
  );
  return tf.tensor4d(buf, [list.length, SIZE, SIZE, 3]);
}

const stage = (what: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${what}\n`);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, (performance.now() - t) / 1000];
}

/**
 * Extraction speed, images/s, on the same decoded images: stock `model.predict` against the library's own
 * extraction path (`extractActivations`, what `fit` and `evaluate` run: fold, then this thread or the worker pool
 * with batches pipelined), in ROUNDS interleaved rounds (stock, one thread, workers, stock, ...) so drift of the
 * machine's speed hits every path alike. Reports the median of each path and the median of the per-round ratios.
 */
async function extractionBench(backend: 'wasm' | 'cpu', n: number, modelPath = MODEL, label = ''): Promise<void> {
  stage(`extraction on ${backend}${label ? ` (${label})` : ''}, ${n} images, ${ROUNDS} rounds`);
  await tf.setBackend(backend);
  await tf.ready();
  if (tf.getBackend() !== backend) throw new Error(`backend ${backend} did not initialise`);
  const backbone = await loadBackbone(modelPath);
  const model = backbone.model!;
  const shapes = [model.outputs[0]!.shape.slice(1) as number[]];
  const trainFiles = [...files('train', 'cats').slice(0, n / 2), ...files('train', 'dogs').slice(0, n / 2)];
  const xs = await decode(trainFiles);
  const batch = Math.min(32, n);
  // Cut into batches once, before any timing: every path gets the same batch tensors.
  const batches: tf.Tensor4D[] = [];
  for (let s = 0; s < n; s += batch) batches.push(takeRows(xs, s, Math.min(batch, n - s)));
  const pool = createExtractPool({ backends: ['wasm', 'cpu'], minImages: 0 });
  const stock = async () => {
    for (const x of batches) {
      const o = model.predict(x, { batchSize: batch }) as tf.Tensor;
      await o.data();
      o.dispose();
    }
  };
  const library = async (workers: boolean) => {
    env.parallelExtractor = workers ? pool : undefined;
    try {
      await extractActivations(model, shapes, batchSource(batches), { batchSize: batch, views: [] });
    } finally {
      env.parallelExtractor = undefined;
    }
  };
  // Warm-up, not timed: kernel set-up (XNNPACK operators) in this thread, worker start-up.
  const warm = takeRows(xs, 0, Math.min(4, n));
  (model.predict(warm) as tf.Tensor).dispose();
  await extractActivations(model, shapes, batchSource([warm]), { batchSize: 4, views: [] });
  const [, startup] = await timed(async () => {
    env.parallelExtractor = pool;
    try {
      await extractActivations(model, shapes, batchSource([warm]), { batchSize: 4, views: [] });
    } finally {
      env.parallelExtractor = undefined;
    }
  });
  warm.dispose();
  const speeds = { stock: [] as number[], one: [] as number[], all: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    stage(`round ${r + 1}: stock`);
    speeds.stock.push(n / (await timed(stock))[1]);
    stage(`round ${r + 1}: library, one thread`);
    speeds.one.push(n / (await timed(() => library(false)))[1]);
    stage(`round ${r + 1}: library, ${pool.size} workers`);
    speeds.all.push(n / (await timed(() => library(true)))[1]);
  }
  await pool.dispose();
  tf.dispose([xs, ...batches]);
  backbone.dispose();
  const ratio = (path: number[]) => median(path.map((v, i) => v / speeds.stock[i]!));
  const spread = (path: number[]) => `${Math.min(...path).toFixed(1)}-${Math.max(...path).toFixed(1)}`;
  const r = {
    images: n,
    batch,
    rounds: ROUNDS,
    perRound: speeds,
    stockImgPerS: median(speeds.stock),
    foldedOneThreadImgPerS: median(speeds.one),
    foldedWorkersImgPerS: median(speeds.all),
    workers: pool.size,
    workerStartupS: startup,
    speedupOneThread: ratio(speeds.one),
    speedupAllCores: ratio(speeds.all),
    memory: memo(`extract-${backend}`),
  };
  results[`extract_${backend}${label ? `_${label.replace(/\W+/g, '_')}` : ''}`] = r;
  const range = ROUNDS > 1;
  rows.push([`extract ${backend}${label ? ` ${label}` : ''} (${n} img${range ? ` x ${ROUNDS}` : ''})`, 'stock model.predict', `${r.stockImgPerS.toFixed(1)} img/s${range ? ` (${spread(speeds.stock)})` : ''}`, '1.00x', '', `${r.memory.peakRssMB} MB`, `${r.memory.numTensors}`]);
  rows.push(['', 'library, 1 thread (folded)', `${r.foldedOneThreadImgPerS.toFixed(1)} img/s${range ? ` (${spread(speeds.one)})` : ''}`, `${r.speedupOneThread.toFixed(2)}x`, '', '', '']);
  rows.push(['', `library, ${pool.size} workers (folded)`, `${r.foldedWorkersImgPerS.toFixed(1)} img/s${range ? ` (${spread(speeds.all)})` : ''}`, `${r.speedupAllCores.toFixed(2)}x`, '', '', '']);
}

/** The plain path: tfjs model.fit on the composed model (frozen backbone + head), one epoch on a subset. */
async function plainBench(batchSize: number): Promise<{ epochS: number; perImageS: number; valAccuracy: number; extrapolatedS: number; batchSize: number }> {
  stage('plain model.fit');
  await tf.setBackend('wasm');
  const model = await plainTutorialModel(MODEL);
  const half = PLAIN_N / 2;
  const xs = await decode([...files('train', 'cats').slice(0, half), ...files('train', 'dogs').slice(0, half)]);
  const ys = tf.tensor2d(Array.from({ length: PLAIN_N }, (_, i) => (i < half ? 0 : 1)), [PLAIN_N, 1]);
  const vhalf = Math.min(half, 64);
  const vx = await decode([...files('validation', 'cats').slice(0, vhalf), ...files('validation', 'dogs').slice(0, vhalf)]);
  const vy = tf.tensor2d(Array.from({ length: 2 * vhalf }, (_, i) => (i < vhalf ? 0 : 1)), [2 * vhalf, 1]);
  const [, epochS] = await timed(async () => {
    await model.fit(xs, ys, { epochs: 1, batchSize, shuffle: true, verbose: 0 });
  });
  const [evalOut, evalS] = await timed(async () => model.evaluate(vx, vy, { batchSize }) as tf.Scalar[]);
  const valAccuracy = (await evalOut[1]!.data())[0]!;
  tf.dispose([...evalOut, xs, ys, vx, vy]);
  disposeLayers(model.layers);
  const perImageS = epochS / PLAIN_N;
  const perValImageS = evalS / (2 * vhalf);
  // Keras' model.fit(train, validation_data=validation) for 10 epochs: 10 x (2000 train steps + 1000 val forward).
  const extrapolatedS = 10 * (2000 * perImageS + 1000 * perValImageS);
  return { epochS, perImageS, valAccuracy, extrapolatedS, batchSize };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  await extractionBench('wasm', WASM_N);
  // The Keras MobileNetV2 as users usually load it (BatchNorm layers, e.g. the catalog's no-top models).
  await extractionBench('wasm', WASM_N, MODEL_035, '0.35 with BN');
  await extractionBench('cpu', CPU_N);

  // (b) End to end with the library, on wasm with the worker pool (as `tfjs-transfer/node` installs it).
  await tf.setBackend('wasm');
  await tf.ready();
  const pool = createExtractPool();
  env.parallelExtractor = pool;
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-transfer-bench-cache-'));
  const cache = createDiskCache(cacheDir);
  let e2e: Record<string, unknown>;
  let warm: Record<string, unknown>;
  try {
    stage('transferLearn cold');
    const [result, coldS] = await timed(() =>
      transferLearn({
        data: DATA,
        backbone: MODEL,
        epochs: 10,
        learningRate: 1e-4,
        batchSize: E2E_BATCH,
        earlyStopping: false,
        seed: 1,
        verbose: false,
        cache,
        head: { dropout: 0.2 },
      }),
    );
    e2e = {
      wallS: coldS,
      extractS: result.history.timing.extractMs / 1000,
      trainS: result.history.timing.trainMs / 1000,
      valAccuracy: result.evaluation.accuracy,
      images: 3000,
      memory: memo('transferLearn-cold'),
    };
    result.model.dispose();

    stage('fit warm');
    // Warm: a new model on the same backbone, another learning rate, the disk cache filled by the run above.
    const folder = await imageFolder(DATA, { size: [SIZE, SIZE] });
    const backbone = freeze(await loadBackbone(MODEL));
    const model = attachHead(backbone, { classes: folder.classes, seed: 2, dropout: 0.2 });
    const [history, warmFitS] = await timed(() =>
      fit(model, folder.train, { epochs: 10, learningRate: 1e-4, batchSize: E2E_BATCH, seed: 2, verbose: false, cache, validationData: folder.validation }),
    );
    warm = {
      fitWallS: warmFitS,
      extractS: history.timing.extractMs / 1000,
      trainS: history.timing.trainMs / 1000,
      valAccuracy: history.valAccuracy.at(-1),
      cacheHits: cache.stats.hits,
      memory: memo('fit-warm-cache'),
    };
    model.dispose();
  } finally {
    env.parallelExtractor = undefined;
    await pool.dispose();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
  results.transferLearnCold = e2e;
  results.fitWarmCache = warm;

  let plain: (Awaited<ReturnType<typeof plainBench>> & { memory: { peakRssMB: number; numTensors: number } }) | undefined;
  if (!skipPlain) {
    // In a child process: tfjs-layers' model.fit through the whole frozen MobileNetV2 on wasm can abort the wasm
    // module (4 GiB heap); then retry with a smaller batch.
    const failures: string[] = [];
    for (const batchSize of [E2E_BATCH, 8]) {
      stage(`plain model.fit, batch ${batchSize} (child process)`);
      const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--plain-child', String(batchSize), ...(quick ? ['--quick'] : [])], { encoding: 'utf8', maxBuffer: 1 << 26 });
      const line = child.stdout.split('\n').find((l) => l.startsWith('PLAIN '));
      if (child.status === 0 && line) {
        plain = JSON.parse(line.slice(6));
        break;
      }
      failures.push(`batch ${batchSize}: exit ${child.status}, ${(child.stderr.match(/RuntimeError[^\n]*|Aborted[^\n]*|Error[^\n]*/) ?? ['?'])[0]}`);
    }
    results.plain = {
      ...plain,
      failures,
      subsetImages: PLAIN_N,
      note: `1 epoch on ${PLAIN_N} train images, timed and extrapolated to 10 epochs x (2000 train + 1000 validation) images; valAccuracy is after that one subset epoch (on 128 validation images), not after 10 epochs`,
    };
  }
  const base = plain?.extrapolatedS;
  const ratio = (s: number) => (base ? `${(base / s).toFixed(1)}x` : 'n/a');
  const e = e2e as { wallS: number; valAccuracy: number; memory: { peakRssMB: number; numTensors: number }; extractS: number; trainS: number };
  const w = warm as { fitWallS: number; valAccuracy: number; memory: { peakRssMB: number; numTensors: number } };
  if (plain) rows.push(['end to end, 10 epochs', `plain model.fit, batch ${plain.batchSize} (extrapolated from ${PLAIN_N} img)`, `${plain.extrapolatedS.toFixed(0)} s`, '1.0x', `${plain.valAccuracy.toFixed(3)} (1 subset epoch)`, `${plain.memory.peakRssMB} MB (child)`, `${plain.memory.numTensors}`]);
  rows.push(['end to end, 10 epochs', 'transferLearn() cold: decode+extract+train+evaluate 3000 img', `${e.wallS.toFixed(1)} s`, ratio(e.wallS), e.valAccuracy.toFixed(3), `${e.memory.peakRssMB} MB`, `${e.memory.numTensors}`]);
  rows.push(['', 'fit() again, warm disk cache', `${w.fitWallS.toFixed(1)} s`, ratio(w.fitWallS), (w.valAccuracy ?? NaN).toFixed(3), `${w.memory.peakRssMB} MB`, `${w.memory.numTensors}`]);
  results.totalS = (performance.now() - t0) / 1000;
  results.machine = { ...(results.machine as object), loadavgAtEnd: os.loadavg() };

  const header = ['what', 'path', 'speed / time', 'vs stock', 'val acc', 'peak RSS', 'tensors'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join(' | ')} |`;
  console.log([line(header), `|${widths.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
  const outDir = path.join(here, 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify({ ...results, table: rows }, null, 2));
  console.log(`\nwrote ${path.join(outDir, 'latest.json')} (${(results.totalS as number).toFixed(0)} s total)`);
}

const childAt = process.argv.indexOf('--plain-child');
if (childAt >= 0) {
  await tf.setBackend('wasm');
  await tf.ready();
  const r = await plainBench(Number(process.argv[childAt + 1]));
  console.log(`PLAIN ${JSON.stringify({ ...r, memory: memo('plain-model.fit') })}`);
} else {
  await main();
}
