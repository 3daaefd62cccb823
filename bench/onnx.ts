/**
 * ONNX export benchmark: `npm run bench:onnx` (= `node --import tsx bench/onnx.ts`), `-- --quick` for a short run.
 *
 * On cats vs dogs with MobileNetV2 1.0 at 224 (uint8-quantized kernels in the manifest, BN already folded) and a
 * default head (avg pool, dropout 0.2, one sigmoid unit) trained briefly on a few training images:
 * - the ONNX file's size (and the tfjs float32 weights' size, for scale);
 * - the largest absolute probability difference between onnxruntime-node and tfjs (`predictProbabilities`, wasm)
 *   over every validation image (1000; `--quick`: 200), and how many images exceed 1e-4;
 * - inference images/s of onnxruntime-node (default threads: all cores; and on one thread) and of tfjs wasm (the
 *   library's folded path, one thread in Node) on the same images, same batch size, in interleaved rounds; medians
 *   and the ratios.  On a loaded machine the one-thread ratio is the steadier one.
 *
 * `runOnnxBench()` is exported for a combined deploy benchmark to call; run directly it prints a table and writes
 * bench/results/onnx.json. Needs ../shared (model and data) and sharp.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { attachHead, env, fit, freeze, loadBackbone, type TransferModel } from '../src/node/index';
import { exportOnnx } from '../src/onnx/index';
import { median } from './common';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHARED = process.env.TFJS_TRANSFER_SHARED ?? path.resolve(here, '../../shared');
const SIZE = 224;

/** Options of {@link runOnnxBench}. */
export interface OnnxBenchArgs {
  /** model.json of the backbone. Default: MobileNetV2 1.0 from ../shared. */
  modelPath?: string;
  /** Dataset folder with train/ and validation/ class subfolders. Default: cats_and_dogs_filtered_200px. */
  dataDir?: string;
  /** Validation images compared (all when undefined). */
  validationImages?: number;
  /** Training images per class for the quick head. Default 50. */
  trainPerClass?: number;
  /** Images in the speed measurement. Default 128. */
  speedImages?: number;
  /** Interleaved rounds of the speed measurement. Default 3. */
  rounds?: number;
  /** Batch size of both runtimes. Default 32. */
  batchSize?: number;
}

/** What {@link runOnnxBench} measures. */
export interface OnnxBenchResult {
  onnxBytes: number;
  tfjsFloat32WeightBytes: number;
  images: number;
  maxAbsDiff: number;
  imagesOver1e4: number;
  imagesPerSecond: {
    onnxruntime: number[];
    onnxruntimeOneThread: number[];
    tfjsWasm: number[];
    medianOnnxruntime: number;
    medianOnnxruntimeOneThread: number;
    medianTfjsWasm: number;
    /** Median onnxruntime (default threads) / median tfjs wasm: the target's ratio. */
    ratio: number;
    /** Median onnxruntime on one thread / median tfjs wasm (one thread in Node): per-core, less sensitive to load. */
    ratioOneThread: number;
  };
  settings: Required<OnnxBenchArgs> & { ortThreads: string; tfjsBackend: string };
  loadavg: { start: number[]; end: number[] };
}

function listFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => path.join(dir, f));
}

async function decode(files: string[]): Promise<Float32Array> {
  const out = new Float32Array(files.length * SIZE * SIZE * 3);
  await Promise.all(
    files.map(async (file, i) => {
      const data = await sharp(file).rotate().removeAlpha().toColourspace('srgb').resize(SIZE, SIZE, { fit: 'fill' }).raw().toBuffer();
      out.set(data, i * SIZE * SIZE * 3);
    }),
  );
  return out;
}

/** Class-labelled files of `split`: cats (0) then dogs (1), or the classes in folder order. */
function labelled(dataDir: string, split: string, perClass?: number): { files: string[]; labels: number[]; classes: string[] } {
  const classes = fs.readdirSync(path.join(dataDir, split)).filter((d) => fs.statSync(path.join(dataDir, split, d)).isDirectory()).sort();
  const files: string[] = [];
  const labels: number[] = [];
  classes.forEach((c, i) => {
    const list = listFiles(path.join(dataDir, split, c)).slice(0, perClass);
    files.push(...list);
    labels.push(...list.map(() => i));
  });
  return { files, labels, classes };
}

async function trainHead(args: Required<OnnxBenchArgs>): Promise<TransferModel> {
  const { files, labels, classes } = labelled(args.dataDir, 'train', args.trainPerClass);
  const backbone = freeze(await loadBackbone(args.modelPath, { inputSize: SIZE }));
  const model = attachHead(backbone, { classes, seed: 1 });
  const xs = tf.tensor4d(await decode(files), [files.length, SIZE, SIZE, 3]);
  await fit(model, { xs, ys: labels }, { epochs: 5, batchSize: 32, seed: 1, verbose: false, validationSplit: 0 });
  xs.dispose();
  return model;
}

async function ortProbabilities(session: ort.InferenceSession, pixels: Float32Array, n: number): Promise<Float32Array> {
  const result = await session.run({ images: new ort.Tensor('float32', pixels, [n, SIZE, SIZE, 3]) });
  return result.probabilities!.data as Float32Array;
}

/** Largest |onnxruntime - tfjs| over the validation images, in chunks of `batchSize` (decoded chunk by chunk). */
async function compareAll(model: TransferModel, session: ort.InferenceSession, files: string[], batchSize: number): Promise<{ max: number; over: number }> {
  let max = 0;
  let over = 0;
  for (let s = 0; s < files.length; s += batchSize) {
    const chunk = files.slice(s, s + batchSize);
    const pixels = await decode(chunk);
    const x = tf.tensor4d(pixels, [chunk.length, SIZE, SIZE, 3]);
    const p = model.predictProbabilities(x, { batchSize });
    const want = (await p.data()) as Float32Array;
    tf.dispose([x, p]);
    const got = await ortProbabilities(session, pixels, chunk.length);
    const k = model.numClasses;
    for (let i = 0; i < chunk.length; i++) {
      let d = 0;
      for (let c = 0; c < k; c++) d = Math.max(d, Math.abs(want[i * k + c]! - got[i * k + c]!));
      max = Math.max(max, d);
      if (d > 1e-4) over++;
    }
  }
  return { max, over };
}

/** images/s of the runtimes on the same images, interleaved rounds. */
async function speed(model: TransferModel, sessions: ort.InferenceSession[], pixels: Float32Array, n: number, batchSize: number, rounds: number): Promise<{ ortRuns: number[][]; tfRuns: number[] }> {
  const per = SIZE * SIZE * 3;
  const batches = Array.from({ length: Math.ceil(n / batchSize) }, (_, b) => {
    const m = Math.min(batchSize, n - b * batchSize);
    return { m, data: pixels.subarray(b * batchSize * per, (b * batchSize + m) * per) };
  });
  const tensors = batches.map((b) => tf.tensor4d(b.data, [b.m, SIZE, SIZE, 3]));
  // Warm up both (first-run allocations, wasm compilation, onnxruntime's graph optimisation is done at create).
  tf.dispose(model.predictProbabilities(tensors[0]!, { batchSize }));
  for (const session of sessions) await ortProbabilities(session, new Float32Array(batches[0]!.data), batches[0]!.m);
  const ortRuns: number[][] = sessions.map(() => []);
  const tfRuns: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [i, session] of sessions.entries()) {
      const t0 = performance.now();
      for (const b of batches) await ortProbabilities(session, new Float32Array(b.data), b.m);
      ortRuns[i]!.push(n / ((performance.now() - t0) / 1000));
    }
    const t = performance.now();
    for (const x of tensors) {
      const p = model.predictProbabilities(x, { batchSize });
      await p.data();
      p.dispose();
    }
    tfRuns.push(n / ((performance.now() - t) / 1000));
  }
  tf.dispose(tensors);
  return { ortRuns, tfRuns };
}

/**
 * Runs the ONNX benchmark on the current tfjs backend (set wasm first for the reference numbers) and returns its
 * measurements.
 */
export async function runOnnxBench(options: OnnxBenchArgs = {}): Promise<OnnxBenchResult> {
  const args: Required<OnnxBenchArgs> = {
    modelPath: options.modelPath ?? path.join(SHARED, 'models/mobilenet_v2_1.0_224/model.json'),
    dataDir: options.dataDir ?? path.join(SHARED, 'data/cats_and_dogs_filtered_200px'),
    validationImages: options.validationImages ?? Number.POSITIVE_INFINITY,
    trainPerClass: options.trainPerClass ?? 50,
    speedImages: options.speedImages ?? 128,
    rounds: options.rounds ?? 3,
    batchSize: options.batchSize ?? 32,
  };
  const start = os.loadavg();
  const model = await trainHead(args);
  try {
    const bytes = await exportOnnx(model, undefined, { verbose: false });
    const tfjsFloat32WeightBytes = model.model.weights.reduce((sum, w) => sum + (w.shape as number[]).reduce((a, b) => a * b, 1) * 4, 0);
    const session = await ort.InferenceSession.create(bytes);
    const { files } = labelled(args.dataDir, 'validation');
    const validation = files.slice(0, Number.isFinite(args.validationImages) ? args.validationImages : undefined);
    const { max, over } = await compareAll(model, session, validation, args.batchSize);
    const speedFiles = validation.filter((_, i) => i % Math.max(1, Math.floor(validation.length / args.speedImages)) === 0).slice(0, args.speedImages);
    const oneThread = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const { ortRuns, tfRuns } = await speed(model, [session, oneThread], await decode(speedFiles), speedFiles.length, args.batchSize, args.rounds);
    await session.release();
    await oneThread.release();
    const medianOnnxruntime = median(ortRuns[0]!);
    const medianOnnxruntimeOneThread = median(ortRuns[1]!);
    const medianTfjsWasm = median(tfRuns);
    return {
      onnxBytes: bytes.length,
      tfjsFloat32WeightBytes,
      images: validation.length,
      maxAbsDiff: max,
      imagesOver1e4: over,
      imagesPerSecond: {
        onnxruntime: ortRuns[0]!,
        onnxruntimeOneThread: ortRuns[1]!,
        tfjsWasm: tfRuns,
        medianOnnxruntime,
        medianOnnxruntimeOneThread,
        medianTfjsWasm,
        ratio: medianOnnxruntime / medianTfjsWasm,
        ratioOneThread: medianOnnxruntimeOneThread / medianTfjsWasm,
      },
      settings: { ...args, ortThreads: 'onnxruntime default (intra-op threads = cores)', tfjsBackend: tf.getBackend() },
      loadavg: { start, end: os.loadavg() },
    };
  } finally {
    model.dispose();
  }
}

async function mainBench(): Promise<void> {
  const quick = process.argv.includes('--quick');
  env.verbose = false;
  await tf.setBackend('wasm');
  await tf.ready();
  if (tf.getBackend() !== 'wasm') throw new Error(`bench:onnx: wanted the wasm backend, got ${tf.getBackend()}`);
  const r = await runOnnxBench(quick ? { validationImages: 200, trainPerClass: 20, speedImages: 64, rounds: 3 } : {});
  const ips = r.imagesPerSecond;
  const rows = [
    ['ONNX file', `${(r.onnxBytes / 1e6).toFixed(2)} MB (tfjs float32 weights ${(r.tfjsFloat32WeightBytes / 1e6).toFixed(2)} MB)`],
    ['max |p_onnx - p_tfjs|', `${r.maxAbsDiff.toExponential(2)} over ${r.images} validation images (${r.imagesOver1e4} above 1e-4; target 0)`],
    ['onnxruntime-node', `${ips.medianOnnxruntime.toFixed(1)} images/s (rounds ${ips.onnxruntime.map((v) => v.toFixed(1)).join(', ')})`],
    ['onnxruntime-node 1 thread', `${ips.medianOnnxruntimeOneThread.toFixed(1)} images/s (rounds ${ips.onnxruntimeOneThread.map((v) => v.toFixed(1)).join(', ')})`],
    ['tfjs wasm (folded)', `${ips.medianTfjsWasm.toFixed(1)} images/s (rounds ${ips.tfjsWasm.map((v) => v.toFixed(1)).join(', ')})`],
    ['ratio', `${ips.ratio.toFixed(2)}x (target >= 2.5x); one thread each: ${ips.ratioOneThread.toFixed(2)}x`],
    ['load average', `${r.loadavg.start.map((v) => v.toFixed(2)).join(' ')} at start, ${r.loadavg.end.map((v) => v.toFixed(2)).join(' ')} at end (${os.cpus().length} cores)`],
  ];
  const width = Math.max(...rows.map(([k]) => k!.length));
  for (const [k, v] of rows) console.log(`${k!.padEnd(width)}  ${v}`);
  const outDir = path.join(here, 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const doc = { command: `npm run bench:onnx${quick ? ' -- --quick' : ''}`, date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, ...r };
  fs.writeFileSync(path.join(outDir, 'onnx.json'), `${JSON.stringify(doc, (_, v) => (v === Number.POSITIVE_INFINITY ? 'all' : v), 2)}\n`);
  console.log(`wrote ${path.join(outDir, 'onnx.json')}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  mainBench().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
