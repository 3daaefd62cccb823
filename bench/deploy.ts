/**
 * Deploy benchmark: `npm run bench:deploy` (= `node --import tsx bench/deploy.ts`), `npm run bench:deploy -- --quick`
 * (40 images per class and split).
 *
 * On cats vs dogs (../shared/data/cats_and_dogs_filtered_200px) and flowers (../shared/data/flower_photos, 5
 * classes), each with its own train / validation folders, with the shared MobileNetV2 1.0 at 224:
 * trains a head with `transferLearn` (seed 1, its defaults), then saves it as float32, float16 and uint8 and
 * reports for each the artefact's size on disk, its ratio to float32, the validation accuracy of the model as
 * loaded back from it and the change from float32 in points, and its unknown detector (how its prototypes are
 * stored, its bytes, the share of the validation images it accepts); then the head-only artefact (`backbone: 'reference'`):
 * its size, the time `loadModel` takes to load it (the backbone found again by its path and checked by its hash)
 * against the whole float32 artefact, and the largest probability difference after reload.
 *
 * The `onnx` row: `exportOnnx` of a head trained on the same data (50 images per class; the export does not depend
 * on how good the head is), through `runOnnxBench` (bench/onnx.ts): the file's size, the largest probability
 * difference from tfjs over the validation images, and onnxruntime-node images/s against tfjs wasm, interleaved
 * rounds, medians.
 *
 * Prints a table and writes bench/results/deploy.json. Needs ../shared and sharp.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { env, evaluate, imageFolder, loadModel, save, transferLearn, type LabelledData, type TransferModel, type WeightQuantization } from '../src/node/index';
import { runOnnxBench, type OnnxBenchResult } from './onnx';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHARED = process.env.TFJS_TRANSFER_SHARED ?? path.resolve(here, '../../shared');
const MODEL = path.join(SHARED, 'models/mobilenet_v2_1.0_224/model.json');
const quick = process.argv.includes('--quick');
const PER_CLASS = quick ? 40 : Infinity;
const SEED = 1;

env.verbose = false;
await tf.setBackend('wasm');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-bench-deploy-'));

interface DataSet {
  name: string;
  dir: string;
}
const DATASETS: DataSet[] = [
  { name: 'cats vs dogs', dir: path.join(SHARED, 'data/cats_and_dogs_filtered_200px') },
  { name: 'flowers', dir: path.join(SHARED, 'data/flower_photos') },
];

const IMAGE = /\.(jpe?g|png|webp|gif|bmp)$/i;

/** The folder itself, or (with --quick) a copy made of links to its first PER_CLASS images of each class folder. */
function subset(dir: string, name: string): string {
  if (!Number.isFinite(PER_CLASS)) return dir;
  const out = path.join(tmp, `data-${name.replace(/\W+/g, '-')}`);
  const walk = (from: string, to: string) => {
    const entries = fs.readdirSync(from, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    const images = entries.filter((e) => e.isFile() && IMAGE.test(e.name)).slice(0, PER_CLASS);
    if (images.length) fs.mkdirSync(to, { recursive: true });
    for (const e of images) fs.symlinkSync(path.join(from, e.name), path.join(to, e.name));
    for (const e of entries) if (e.isDirectory()) walk(path.join(from, e.name), path.join(to, e.name));
  };
  walk(dir, out);
  return out;
}

const folderBytes = (dir: string) => fs.readdirSync(dir).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);

async function probabilitiesOf(model: TransferModel, xs: tf.Tensor4D): Promise<Float32Array> {
  const p = model.predictProbabilities(xs);
  try {
    return (await p.data()) as Float32Array;
  } finally {
    p.dispose();
  }
}

/** The first `n` validation images, as one tensor (for the head-only probability check). */
async function firstImages(data: LabelledData, n: number): Promise<tf.Tensor4D> {
  const parts: tf.Tensor4D[] = [];
  let have = 0;
  for await (const b of (data as { batches(o: { batchSize: number }): AsyncIterable<{ xs: tf.Tensor4D; ys: unknown }> }).batches({ batchSize: 32 })) {
    parts.push(b.xs);
    if (b.ys instanceof tf.Tensor) b.ys.dispose();
    have += b.xs.shape[0];
    if (have >= n) break;
  }
  const all = tf.concat(parts, 0);
  tf.dispose(parts);
  const out = tf.slice(all, [0, 0, 0, 0], [Math.min(n, have), -1, -1, -1]) as tf.Tensor4D;
  all.dispose();
  return out;
}

/** The ONNX row of one data set (see the header). */
async function onnxColumns(dataDir: string): Promise<OnnxBenchResult> {
  return runOnnxBench({ dataDir, ...(quick ? { validationImages: 80, trainPerClass: 20, speedImages: 64 } : {}) });
}

interface DetectorColumns {
  encoding: string;
  bytes: number;
  validationAccepted: number | undefined;
}
const detectorCell = (d: DetectorColumns | null) =>
  d ? `${d.encoding}, ${(d.bytes / 1e3).toFixed(0)} KB, ${d.validationAccepted === undefined ? '-' : `${(100 * d.validationAccepted).toFixed(1)}%`}` : 'none';

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

const results: Record<string, unknown> = {
  command: `npm run bench:deploy${quick ? ' -- --quick' : ''}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavgAtStart: os.loadavg() },
  backend: tf.getBackend(),
  backbone: MODEL,
  datasets: [] as unknown[],
};
const table: string[] = [];

try {
  for (const ds of DATASETS) {
    const dir = subset(ds.dir, ds.name);
    console.error(`[bench:deploy] ${ds.name}: training (${dir})`);
    const trained = await timed(() => transferLearn({ data: dir, backbone: MODEL, seed: SEED, verbose: false }));
    const { model } = trained.value;
    const [h, w] = model.inputShape;
    const validation = (await imageFolder(dir, { size: [h, w], seed: SEED, validationSplit: 0.2, fit: model.resizeFit, verbose: false })).validation!;
    const rows: Record<string, unknown>[] = [];
    let float32Bytes = 0;
    let float32Accuracy = 0;
    for (const quantize of ['float32', 'float16', 'uint8'] as WeightQuantization[]) {
      const out = path.join(tmp, `${ds.name.replace(/\W+/g, '-')}-${quantize}`);
      await save(model, out, { quantize });
      const bytes = folderBytes(out);
      const loaded = await timed(() => loadModel(out));
      console.error(`[bench:deploy] ${ds.name}: evaluating the ${quantize} artefact`);
      const e = await evaluate(loaded.value, validation);
      const u = loaded.value.unknownDetector;
      const detector = u ? { encoding: u.method === 'prototypes' ? u.prototypeEncoding : 'uint4 classifier', bytes: u.bytes, validationAccepted: e.unknown?.accepted } : null;
      loaded.value.dispose();
      if (quantize === 'float32') {
        float32Bytes = bytes;
        float32Accuracy = e.accuracy;
      }
      rows.push({ quantize, bytes, ratio: bytes / float32Bytes, accuracy: e.accuracy, pointsVsFloat32: 100 * (e.accuracy - float32Accuracy), images: e.count, loadMs: loaded.ms, detector });
    }
    const headDir = path.join(tmp, `${ds.name.replace(/\W+/g, '-')}-head`);
    await save(model, headDir, { backbone: 'reference' });
    const headLoad = await timed(() => loadModel(headDir));
    const xs = await firstImages(validation, 64);
    const a = await probabilitiesOf(model, xs);
    const b = await probabilitiesOf(headLoad.value, xs);
    headLoad.value.dispose();
    xs.dispose();
    const maxDiff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
    const headOnly = { bytes: folderBytes(headDir), loadMs: headLoad.ms, maxProbabilityDifference: maxDiff, imagesCompared: a.length / model.numClasses };
    const onnx = await onnxColumns(ds.dir);
    results.datasets = [...(results.datasets as unknown[]), { name: ds.name, classes: model.classes, trainSeconds: trained.ms / 1000, artefacts: rows, headOnly, onnx: onnx ?? null }];
    for (const r of rows) {
      table.push(
        `| ${ds.name} | ${r.quantize} | ${((r.bytes as number) / 1e6).toFixed(2)} MB | ${(100 * (r.ratio as number)).toFixed(1)}% | ` +
          `${(100 * (r.accuracy as number)).toFixed(2)}% (${r.images}) | ${(r.pointsVsFloat32 as number) >= 0 ? '+' : ''}${(r.pointsVsFloat32 as number).toFixed(2)} | ${(r.loadMs as number).toFixed(0)} ms | ${detectorCell(r.detector as DetectorColumns | null)} |`,
      );
    }
    table.push(`| ${ds.name} | head only | ${(headOnly.bytes / 1e3).toFixed(1)} KB | ${((100 * headOnly.bytes) / float32Bytes).toFixed(2)}% | identical: max diff ${maxDiff.toExponential(1)} over ${headOnly.imagesCompared} | | ${headOnly.loadMs.toFixed(0)} ms | none (default) |`);
    const ips = onnx.imagesPerSecond;
    table.push(
      `| ${ds.name} | onnx | ${(onnx.onnxBytes / 1e6).toFixed(2)} MB | ${((100 * onnx.onnxBytes) / float32Bytes).toFixed(1)}% | ` +
        `max probability difference from tfjs ${onnx.maxAbsDiff.toExponential(1)} over ${onnx.images} (${onnx.imagesOver1e4} above 1e-4) | | ` +
        `onnxruntime ${ips.medianOnnxruntime.toFixed(1)} images/s vs tfjs wasm ${ips.medianTfjsWasm.toFixed(1)}: ${ips.ratio.toFixed(2)}x (1 thread: ${ips.ratioOneThread.toFixed(2)}x) | |`,
    );
    model.dispose();
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

console.log(`Deploy: MobileNetV2 1.0 (${MODEL}), backend ${tf.getBackend()}, ${quick ? '--quick (40 images per class and split)' : 'all images'}`);
console.log('| data | artefact | size | vs float32 | validation accuracy (images) | points vs float32 | loadModel | unknown detector: prototypes, bytes, validation accepted |');
console.log('|---|---|---|---|---|---|---|---|');
for (const row of table) console.log(row);
const outDir = path.join(here, 'results');
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, 'deploy.json'), JSON.stringify(results, null, 2));
console.log(`wrote ${path.join(outDir, 'deploy.json')}`);
