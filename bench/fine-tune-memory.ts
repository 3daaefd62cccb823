/**
 * Memory benchmark of fine-tuning over many images (issue 14): `node --import tsx bench/fine-tune-memory.ts
 * [--images 20000] [--cut block_11_expand] [--storage auto] [--json out.json]`.
 *
 * Makes `images` photos by seeded random square crops (half to all of the short side) and horizontal flips of the
 * cats-vs-dogs training photos in ../shared, written at 224x224 into a temp folder (deleted afterwards, also on
 * error or Ctrl-C), then, as a user would through the Node entry (so the worker pool extracts): `imageFolder`,
 * MobileNetV2 1.0 with a fresh head, `freeze(model, { trainableFrom: cut })`, and one epoch of `fit` on wasm with flip
 * augmentation (2 cached views). A worker thread samples the process's RSS every 0.5 s (it keeps sampling while a
 * training step blocks the main thread); the main thread samples `tf.memory().numTensors` between steps. Reports peak
 * RSS (sampled, and the kernel's `maxRSS`), RSS over time, the throughput of the first and last tenth of the
 * training steps, and an estimate of the peak with float32 storage (the measured peak plus what float32 rows would
 * have added in memory; running it at 20 000 images would need about 3 GB more).
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { attachHead, env, fit, freeze, imageFolder, loadBackbone, type ActivationStorage } from '../src/node/index';
import { findShared } from '../examples/cats-vs-dogs/locate';
import { Random } from '../src/util/random';
import { median } from './common';

/** Options of {@link runMemoryBench}. */
export interface MemoryBenchArgs {
  /** Images to make and train on. @defaultValue 20000 */
  images?: number;
  /** First trainable layer. @defaultValue `'block_11_expand'` */
  cut?: string;
  /** `fit`'s activationStorage. @defaultValue `'auto'` */
  storage?: ActivationStorage;
  /** Images per step. @defaultValue 32 */
  batchSize?: number;
  /** Seed of the crops and of `fit`. @defaultValue 1 */
  seed?: number;
  /** The shared folder. @defaultValue `findShared()` */
  shared?: string;
  /** Progress lines. @defaultValue console.log */
  say?: (line: string) => void;
}

/** What {@link runMemoryBench} measured (JSON-able). */
export interface MemoryBenchResult {
  images: number;
  cut: string;
  storage: string;
  boundary: { layers: string[]; shapes: number[][] };
  makeImagesSeconds: number;
  extractSeconds: number;
  trainSeconds: number;
  steps: number;
  peakRssMB: number;
  maxRssMB: number;
  rssBeforeFitMB: number;
  rssOverTime: { seconds: number; rssMB: number; stage: string }[];
  numTensors: { before: number; peakDuring: number; after: number };
  throughput: { firstTenthImagesPerSecond: number; lastTenthImagesPerSecond: number; ratio: number };
  /**
   * Every tenth of the steps in order: images/s, and the median time inside a step (onBatchBegin to onBatchEnd)
   * and between steps (the previous step's end to this one's begin), in ms: a steady decline, or noise?
   */
  tenths: { imagesPerSecond: number; stepMs: number; gapMs: number }[];
  float32Estimate: { cacheMB: number; peakRssMB: number };
  log: string[];
  loadavg: { start: number[]; end: number[] };
}

const MB = 2 ** 20;
/** The temp folder of the run under way, removed on Ctrl-C too. */
let liveDir: string | undefined;
const here = path.dirname(fileURLToPath(import.meta.url));

/** Writes `n` seeded crops/flips of the training photos into `dir/<class>/`. */
async function makeImages(shared: string, dir: string, n: number, seed: number, say: (l: string) => void): Promise<void> {
  const train = path.join(shared, 'data/cats_and_dogs_filtered_200px/train');
  const classes = readdirSync(train).filter((c) => !c.startsWith('.')).sort();
  const photos = classes.flatMap((c) => readdirSync(path.join(train, c)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => ({ c, file: path.join(train, c, f) })));
  for (const c of classes) mkdirSync(path.join(dir, c), { recursive: true });
  const rng = new Random(seed);
  const jobs = Array.from({ length: n }, (_, i) => ({ i, photo: photos[rng.int(photos.length)]!, scale: 0.5 + 0.5 * rng.next(), fx: rng.next(), fy: rng.next(), flip: rng.next() < 0.5 }));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const img = sharp(job.photo.file);
      const { width = 0, height = 0 } = await img.metadata();
      const side = Math.max(16, Math.floor(Math.min(width, height) * job.scale));
      const left = Math.floor((width - side) * job.fx);
      const top = Math.floor((height - side) * job.fy);
      let pipeline = sharp(job.photo.file).extract({ left, top, width: side, height: side }).resize(224, 224);
      if (job.flip) pipeline = pipeline.flop();
      await pipeline.jpeg({ quality: 90 }).toFile(path.join(dir, job.photo.c, `img_${job.i}.jpg`));
      if ((job.i + 1) % 5000 === 0) say(`made ${job.i + 1} images`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** A worker thread that samples the process's RSS every `ms` (it runs while the main thread is busy). */
function rssSampler(ms: number): { stop(): Promise<{ t: number; rss: number }[]> } {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const samples = [];
    const t0 = Date.now();
    const timer = setInterval(() => samples.push({ t: Date.now() - t0, rss: process.memoryUsage.rss() }), ${ms});
    parentPort.on('message', () => { clearInterval(timer); parentPort.postMessage(samples); });`;
  const worker = new Worker(code, { eval: true });
  let stopped: Promise<{ t: number; rss: number }[]> | undefined;
  return {
    stop: () =>
      (stopped ??= new Promise((resolve) => {
        worker.once('message', (s: { t: number; rss: number }[]) => {
          void worker.terminate();
          resolve(s);
        });
        worker.postMessage('stop');
      })),
  };
}

/** Images/s of steps `[from, to)`, wall clock from the first one's start to the last one's end. */
function throughputOf(steps: { begin: number; end: number; size: number }[], from: number, to: number): number {
  const part = steps.slice(from, to);
  const images = part.reduce((a, s) => a + s.size, 0);
  return images / ((part.at(-1)!.end - part[0]!.begin) / 1000);
}

/** Each tenth of the steps: its throughput, median step time and median gap before a step. */
function tenthsOf(steps: { begin: number; end: number; size: number }[]): MemoryBenchResult['tenths'] {
  const k = Math.max(1, Math.floor(steps.length / 10));
  const out: MemoryBenchResult['tenths'] = [];
  for (let t = 0; t < 10 && t * k < steps.length; t++) {
    const from = t * k;
    const to = t === 9 ? steps.length : Math.min(steps.length, from + k);
    const part = steps.slice(from, to);
    out.push({
      imagesPerSecond: +throughputOf(steps, from, to).toFixed(2),
      stepMs: Math.round(median(part.map((s) => s.end - s.begin))),
      gapMs: from + part.length > 1 ? Math.round(median(part.flatMap((s, i) => (from + i > 0 ? [s.begin - steps[from + i - 1]!.end] : [])))) : 0,
    });
  }
  return out;
}

/** Runs the benchmark (see the module comment). */
export async function runMemoryBench(opts: MemoryBenchArgs = {}): Promise<MemoryBenchResult> {
  const n = opts.images ?? 20000;
  const cut = opts.cut ?? 'block_11_expand';
  const storage = opts.storage ?? 'auto';
  const batchSize = opts.batchSize ?? 32;
  const seed = opts.seed ?? 1;
  const say = opts.say ?? ((l: string) => console.log(l));
  const shared = opts.shared ?? findShared() ?? path.resolve(here, '../../shared');
  const loadStart = os.loadavg();
  await tf.setBackend('wasm');
  if (tf.getBackend() !== 'wasm') throw new Error('the wasm backend did not initialise');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tfjs-transfer-membench-'));
  liveDir = dir;
  const sampler = rssSampler(500);
  const t0 = Date.now();
  const marks: { t: number; stage: string }[] = [{ t: 0, stage: 'make images' }];
  const mark = (stage: string): void => void marks.push({ t: Date.now() - t0, stage });
  const log: string[] = [];
  let tensorsPeak = 0;
  try {
    await makeImages(shared, dir, n, seed, say);
    const makeImagesSeconds = (Date.now() - t0) / 1000;
    mark('load');
    const folder = await imageFolder(dir, { size: [224, 224], validationSplit: 0 });
    const backbone = await loadBackbone(path.join(shared, 'models/mobilenet_v2_1.0_224/model.json'));
    const model = attachHead(freeze(backbone), { classes: folder.classes, seed });
    freeze(model, { trainableFrom: cut });
    const tensorsBefore = tf.memory().numTensors;
    const rssBeforeFit = process.memoryUsage.rss();
    const steps: { begin: number; end: number; size: number }[] = [];
    let begin = 0;
    let trainStart = 0;
    mark('extract');
    const logger = env.logger;
    env.logger = (m) => {
      log.push(m);
      say(m);
    };
    let history;
    try {
      history = await fit(model, folder.train, {
        epochs: 1, batchSize, seed, learningRate: 1e-5, activationStorage: storage, verbose: true,
        onProgress: (p) => {
          if (p.stage === 'extract' && (p.done % 2000 < batchSize || p.done === p.total)) {
            say(`extracted ${p.done}/${p.total}: rss ${(process.memoryUsage.rss() / MB).toFixed(0)} MB (max so far ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB), at ${((Date.now() - t0) / 1000).toFixed(0)} s`);
          }
        },
        augment: { flip: true, rotation: 0, zoom: 0, translation: 0, brightness: 0, contrast: 0 },
        callbacks: {
          onTrainBegin: () => {
            trainStart = Date.now();
            mark('train');
          },
          onBatchBegin: () => void (begin = Date.now()),
          onBatchEnd: (_b, logs) => {
            steps.push({ begin, end: Date.now(), size: logs.size });
            tensorsPeak = Math.max(tensorsPeak, tf.memory().numTensors);
            if (steps.length % 25 === 0) {
              const k = Math.min(25, steps.length);
              say(
                `step ${steps.length}: last ${k} steps ${throughputOf(steps, steps.length - k, steps.length).toFixed(2)} images/s, rss ${(process.memoryUsage.rss() / MB).toFixed(0)} MB ` +
                  `(max so far ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB), tensors ${tf.memory().numTensors}, at ${((Date.now() - t0) / 1000).toFixed(0)} s`,
              );
            }
          },
        },
      });
    } finally {
      env.logger = logger;
    }
    mark('done');
    const trainSeconds = (Date.now() - trainStart) / 1000;
    model.dispose();
    const tensorsAfter = tf.memory().numTensors;
    const samples = await sampler.stop();
    const k = Math.max(1, Math.floor(steps.length / 10));
    const first = throughputOf(steps, 0, k);
    const last = throughputOf(steps, steps.length - k, steps.length);
    const shapes = history.boundary.shapes;
    const f32Bytes = shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1) * 4, 0) * n * 2;
    const peak = Math.max(...samples.map((s) => s.rss));
    const stageAt = (t: number): string => [...marks].reverse().find((m) => m.t <= t)?.stage ?? '';
    const every = Math.max(1, Math.floor(samples.length / 12));
    return {
      images: n, cut, storage,
      boundary: { layers: history.boundary.layers, shapes },
      makeImagesSeconds,
      extractSeconds: (history.timing?.extractMs ?? 0) / 1000,
      trainSeconds,
      steps: steps.length,
      peakRssMB: Math.round(peak / MB),
      maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      rssBeforeFitMB: Math.round(rssBeforeFit / MB),
      rssOverTime: samples.filter((_, i) => i % every === 0 || i === samples.length - 1).map((s) => ({ seconds: Math.round(s.t / 1000), rssMB: Math.round(s.rss / MB), stage: stageAt(s.t) })),
      numTensors: { before: tensorsBefore, peakDuring: tensorsPeak, after: tensorsAfter },
      throughput: { firstTenthImagesPerSecond: +first.toFixed(2), lastTenthImagesPerSecond: +last.toFixed(2), ratio: +(last / first).toFixed(3) },
      tenths: tenthsOf(steps),
      float32Estimate: { cacheMB: Math.round(f32Bytes / MB), peakRssMB: Math.round((peak + (storage === 'float32' ? 0 : f32Bytes)) / MB) },
      log,
      loadavg: { start: loadStart, end: os.loadavg() },
    };
  } finally {
    await sampler.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    liveDir = undefined;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { images: { type: 'string' }, cut: { type: 'string' }, storage: { type: 'string' }, json: { type: 'string' }, batch: { type: 'string' } } });
  env.verbose = true;
  const result = await runMemoryBench({
    images: values.images ? Number(values.images) : undefined,
    cut: values.cut,
    storage: values.storage as ActivationStorage | undefined,
    batchSize: values.batch ? Number(values.batch) : undefined,
  });
  const { log: _log, ...shown } = result;
  console.log(JSON.stringify(shown, null, 2));
  if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
  process.exit(0); // the worker pool keeps the process alive
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      if (liveDir) rmSync(liveDir, { recursive: true, force: true }); // process.exit runs no finally block
      process.exit(code);
    });
  }
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
