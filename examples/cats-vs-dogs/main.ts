/**
 * Cats vs dogs: the Keras transfer-learning tutorial (https://www.tensorflow.org/tutorials/images/transfer_learning)
 * in five steps with tfjs-transfer, on a 2-core machine without a GPU.
 *
 *   npm run example:cats-vs-dogs                 # the whole job, a few minutes
 *   npm run example:cats-vs-dogs -- --help       # flags (data, model, fine-tuning, backend, ...)
 *
 * 1. examine the data; 2. build the pipeline (an image folder, decoded in batches); 3. load MobileNetV2, freeze it,
 * attach a head (average pooling, dropout 0.2, one sigmoid unit); 4. train the head (features cached at the freeze
 * boundary, so an epoch costs a fraction of a second), then fine-tune the top of the backbone at a tenth of the
 * learning rate; 5. evaluate on the validation set and on full-size photos the model never saw. Then save the
 * model, reload it in a fresh process and check that it predicts the same on 8 photos (`RELOAD_PHOTOS`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import {
  TRANSFER_LEARN_DEFAULTS,
  attachHead,
  decodeImage,
  env,
  evaluate,
  examine,
  fit,
  freeze,
  imageFolder,
  loadBackbone,
  predict,
  save,
  type ActivationStore,
  type FitHistory,
} from '../../src/node/index';
import { selectBackend } from '../../src/cli/backend';
import { formatEvaluation } from '../../src/cli/format';
import { progressReporter } from '../../src/node/progress';
import { REPO, RELOAD_PHOTOS, locate } from './locate';

/** Fine-tuning of the main command: where the cut is and how long it trains (see docs/accuracy.md). */
/**
 * The default fine-tuning: the tutorial's cut (block_11_expand, 1.9 M parameters) at the tutorial's rate (1e-5: a
 * hundredth of the head's 1e-3; a tenth, 1e-4, overfits from this deep a cut: val loss 0.044 -> 0.070 after one
 * epoch), 5 epochs with early stopping: the budget meant to keep the whole job under 12 minutes on 2 cores (measured:
 * 926 s on a partly loaded machine, docs/accuracy.md).
 */
const FINE_TUNE = { from: 'block_11_expand', epochs: 5, learningRate: 1e-5 };
/** The tutorial's fine-tuning: from layer 100 of Keras' 155, i.e. inside block_11; 10 epochs. */
const TUTORIAL_FINE_TUNE = { from: 'block_11_expand', epochs: 10 };

const HELP = `Usage: npm run example:cats-vs-dogs -- [options]

Options:
  --data <dir>            data set with train/{cats,dogs} and validation/{cats,dogs}   (env TFJS_TRANSFER_DATA)
  --model <model.json>    MobileNetV2 1.0 224 layers model, path or URL               (env TFJS_TRANSFER_MODEL)
  --fullres <dir>         full-size photos {cats,dogs}/* to test on                   (env TFJS_TRANSFER_FULLRES)
  --cache <dir>           download cache (default ~/.cache/tfjs-transfer)              (env TFJS_TRANSFER_CACHE)
                          Without --data/--model: ../shared beside the repository, else download into the cache.
  --backend <name>        tensorflow | wasm | cpu (default: the fastest installed)
  --epochs <n>            head epochs (default ${TRANSFER_LEARN_DEFAULTS.epochs}, early stopping on val loss)
  --learning-rate <lr>    head learning rate (default ${TRANSFER_LEARN_DEFAULTS.learningRate})
  --fine-tune-from <l>    first layer to unfreeze (default ${FINE_TUNE.from})
  --fine-tune-epochs <n>  fine-tuning epochs (default ${FINE_TUNE.epochs}); 0 skips fine-tuning
                          (fine-tuning rate ${FINE_TUNE.learningRate}; a tenth of --learning-rate when that is given)
  --tutorial              the tutorial's exact settings: Adam 1e-4 x 10 epochs, then fine-tuning from
                          ${TUTORIAL_FINE_TUNE.from} for ${TUTORIAL_FINE_TUNE.epochs} epochs at 1e-5 (slow: see docs/accuracy.md)
  --size <px>             input size (default ${TRANSFER_LEARN_DEFAULTS.mobileNetV2InputSize}, transferLearn's for MobileNetV2; 224 is the model's own,
                          faster and less accurate: see docs/accuracy.md)
  --seed <n>              seed (default 42)
  --out <dir>             where to save the model (default: a new temporary folder)
  -h, --help`;

const { values: flags } = parseArgs({
  options: {
    data: { type: 'string' },
    model: { type: 'string' },
    fullres: { type: 'string' },
    cache: { type: 'string' },
    backend: { type: 'string' },
    epochs: { type: 'string' },
    'learning-rate': { type: 'string' },
    'fine-tune-from': { type: 'string' },
    'fine-tune-epochs': { type: 'string' },
    tutorial: { type: 'boolean' },
    size: { type: 'string' },
    seed: { type: 'string', default: '42' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;
const say = (message: string) => console.log(message);
/** Where the time goes: each section's start, for the summary. */
const phases: { title: string; at: number }[] = [];
const section = (title: string) => {
  phases.push({ title, at: Date.now() });
  say(`\n== ${title} [${elapsed()}]`);
};
env.logger = say;
const progress = progressReporter(process.stderr);

const seed = Number(flags.seed);
/** The input size and the resize rule: `transferLearn`'s defaults (MobileNetV2 at 256, photos centre-cropped). */
const size = flags.size !== undefined ? Number(flags.size) : TRANSFER_LEARN_DEFAULTS.mobileNetV2InputSize;
if (!Number.isInteger(size) || size < 32 || size > 1024) {
  console.error(`cats-vs-dogs: --size must be a whole number of pixels from 32 to 1024, got ${flags.size}`);
  process.exit(1);
}
const resize = { size: [size, size] as [number, number], fit: TRANSFER_LEARN_DEFAULTS.fit };
const head = flags.tutorial
  ? { learningRate: 1e-4, epochs: 10, earlyStopping: false as const }
  : { learningRate: TRANSFER_LEARN_DEFAULTS.learningRate, epochs: TRANSFER_LEARN_DEFAULTS.epochs, earlyStopping: { ...TRANSFER_LEARN_DEFAULTS.earlyStopping } };
if (flags.epochs) head.epochs = Number(flags.epochs);
if (flags['learning-rate']) head.learningRate = Number(flags['learning-rate']);
const fineTune = {
  from: flags['fine-tune-from'] ?? (flags.tutorial ? TUTORIAL_FINE_TUNE.from : FINE_TUNE.from),
  epochs: flags['fine-tune-epochs'] !== undefined ? Number(flags['fine-tune-epochs']) : flags.tutorial ? TUTORIAL_FINE_TUNE.epochs : FINE_TUNE.epochs,
  learningRate: flags.tutorial ? 1e-5 : flags['learning-rate'] ? head.learningRate / 10 : FINE_TUNE.learningRate,
};

// An error escaping a top-level await would reach tfjs-backend-wasm's uncaught-exception handler, which prints its
// whole minified source (~30 KB) before the message and exits 7. Every failure of the job ends here instead: the
// message (with its hint: flags, environment variables, what to download) and exit code 1.
process.prependListener('uncaughtException', fail);
process.prependListener('unhandledRejection', fail);
function fail(error: unknown): never {
  console.error(`\ncats-vs-dogs: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

const backendName = await selectBackend(flags.backend);
say(`tfjs-transfer cats vs dogs - backend ${backendName}`);
const where = await locate({ data: flags.data, model: flags.model, fullres: flags.fullres, cacheDir: flags.cache, onProgress: progress, note: say });
say(`data:    ${where.data}  (from ${where.origin.data})`);
say(`model:   ${where.model}  (from ${where.origin.model})`);
say(`fullres: ${where.fullres ?? '-'}  (from ${where.origin.fullres})`);

// Steps 1 and 2: the pipeline (an image folder, read lazily and decoded in batches) and a look at it.
section('1-2. Examine the data');
const data = await imageFolder(where.data, { ...resize, onProgress: progress, progressBar: false });
examine(data);
const validation = data.validation;
if (!validation) throw new Error(`${where.data} has no validation folder`);

// Step 3: the backbone, frozen, with the tutorial's head.
section('3. Compose: MobileNetV2 (frozen) + average pooling + dropout 0.2 + one sigmoid unit');
const backbone = freeze(await loadBackbone(where.model, { inputSize: size }));
const model = attachHead(backbone, { classes: data.classes, dropout: 0.2, seed });
say(`backbone ${backbone.name} at ${size}x${size} (photos ${resize.fit}): ${backbone.layers.length} layers, features [${backbone.featureShape.join(', ')}]`);

// Step 4a: feature extraction. The frozen backbone runs once per image; its pooled features are cached (here
// also in an in-memory store, so the "before training" pass and the training pass share one extraction).
section(`4a. Train the head: Adam ${head.learningRate}, up to ${head.epochs} epochs${head.earlyStopping ? `, early stopping on val loss (patience ${head.earlyStopping.patience}, best weights restored)` : ''}`);
const memory = new Map<string, Float32Array[]>();
const cache: ActivationStore = { get: async (k) => memory.get(k), set: async (k, v) => void memory.set(k, v) };
const before = await fit(model, data.train, { epochs: 0, validationData: validation, cache, seed, onProgress: progress, verbose: false });
say(`before training: val_loss ${before.initial!.valLoss.toFixed(4)} - val_accuracy ${before.initial!.valAccuracy.toFixed(4)}`);
const headHistory = await fit(model, data.train, { ...head, validationData: validation, cache, seed });
const afterHead = bestOf(headHistory);
say(`after feature extraction: val_loss ${afterHead.loss.toFixed(4)} - val_accuracy ${afterHead.accuracy.toFixed(4)} (${(headHistory.timing.trainMs / 1000).toFixed(1)}s of training)`);

// Step 4b: fine-tuning. Unfreeze the backbone's top (frozen layers stay bit-identical, BatchNorm statistics
// included); the activations entering the unfrozen part are cached, so only the top is recomputed.
let fineHistory: FitHistory | undefined;
if (fineTune.epochs > 0) {
  section(`4b. Fine-tune from ${fineTune.from}: Adam ${fineTune.learningRate}, ${fineTune.epochs} epochs, early stopping on val loss`);
  freeze(model, { trainableFrom: fineTune.from });
  fineHistory = await fit(model, data.train, {
    learningRate: fineTune.learningRate,
    epochs: fineTune.epochs,
    validationData: validation,
    earlyStopping: { monitor: 'valLoss', patience: 3, restoreBestWeights: true },
    seed,
    onProgress: progress,
  });
  const ft = bestOf(fineHistory);
  say(
    `after fine-tuning: val_loss ${ft.loss.toFixed(4)} - val_accuracy ${ft.accuracy.toFixed(4)}; trained ${fineHistory.trained.parameters} parameters ` +
      `in ${fineHistory.trained.layers.length} layers; ${(fineHistory.timing.extractMs / 1000).toFixed(0)}s caching, ${(fineHistory.timing.trainMs / 1000).toFixed(0)}s training`,
  );
}

// Step 5: evaluate.
section('5. Evaluate');
const valEval = await evaluate(model, validation);
say(formatEvaluation(valEval, 'validation'));
let fullEval: Awaited<ReturnType<typeof evaluate>> | undefined;
if (where.fullres) {
  const fullres = await imageFolder(where.fullres, { ...resize, validationSplit: 0, classes: data.classes, progressBar: false });
  fullEval = await evaluate(model, fullres.train);
  say(formatEvaluation(fullEval, `full-size photos (${relative(REPO, where.fullres)}, never seen in training)`));
}

// Save, reload in a fresh process, compare predictions.
section('Save, reload in a fresh process, predict');
const out = flags.out ?? mkdtempSync(join(tmpdir(), 'cats-vs-dogs-model-'));
await save(model, out);
say(`saved to ${out}`);
const here: { file: string; label: string; probability: number; unknown?: boolean }[] = [];
for (const file of where.photos) {
  const img = await decodeImage(await readFile(file));
  const x = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
  const [p] = await predict(model, x);
  x.dispose();
  here.push({ file, label: p!.label, probability: p!.probability, unknown: p!.unknown });
}
const cli = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'predict', out, ...where.photos, '--json', '--quiet', '--backend', backendName], {
  cwd: REPO,
  encoding: 'utf8',
});
if (cli.status !== 0) throw new Error(`the fresh process failed (exit ${cli.status}): ${cli.stderr}`);
const fresh = (JSON.parse(cli.stdout) as { predictions: { file: string; label: string; probability: number; unknown?: boolean }[] }).predictions;
let same = 0;
let maxDiff = 0;
for (const [i, p] of here.entries()) {
  const q = fresh[i];
  const diff = q ? Math.abs(q.probability - p.probability) : Infinity;
  maxDiff = Math.max(maxDiff, diff);
  const agree = q !== undefined && q.label === p.label && q.unknown === p.unknown && diff < 1e-4;
  if (agree) same++;
  // "unknown": the model's unknown detector finds the photo looks like neither cats nor dogs (label = the closest).
  const shown = (x: { label: string; probability: number; unknown?: boolean }) => `${x.unknown ? `unknown (closest ${x.label})` : x.label} ${x.probability.toFixed(4)}`;
  say(`  ${relative(REPO, p.file).padEnd(58)} here ${shown(p)}   fresh process ${q ? shown(q) : 'missing'}  ${agree ? 'same' : 'DIFFERENT'}`);
}
const reloadCheck = `${same}/${here.length} predictions identical (same label and unknown flag, probability within 1e-4; largest difference ${maxDiff.toExponential(1)})`;
say(`fresh process: ${reloadCheck}`);
if (here.length < RELOAD_PHOTOS) say(`  (only ${here.length} photos found; the check is meant for ${RELOAD_PHOTOS})`);
model.dispose();

section('Summary');
say(`validation accuracy after feature extraction: ${afterHead.accuracy.toFixed(4)} (best epoch ${headHistory.bestEpoch + 1} of ${headHistory.epochs})`);
if (fineHistory) say(`validation accuracy after fine-tuning from ${fineTune.from}: ${bestOf(fineHistory).accuracy.toFixed(4)}`);
say(`validation accuracy (evaluate): ${valEval.accuracy.toFixed(4)}`);
if (fullEval) say(`full-size photos accuracy: ${fullEval.accuracy.toFixed(4)} (${fullEval.count} photos)`);
say(`reloaded in a fresh process: ${reloadCheck}`);
say(`backend ${backendName}; total ${elapsed()}`);
say('where the time went:');
phases.forEach((p, i) => {
  const end = phases[i + 1]?.at ?? Date.now();
  say(`  ${((end - p.at) / 1000).toFixed(0).padStart(5)} s  ${p.title.split(':')[0]}`);
});
if (fineHistory) {
  say(`  (fine-tuning: ${(fineHistory.timing.extractMs / 1000).toFixed(0)} s caching the ${fineTune.from} boundary, ${(fineHistory.timing.trainMs / 1000).toFixed(0)} s for ${fineHistory.epochs} epochs, validation included)`);
}
process.exitCode = same === here.length && here.length > 0 ? 0 : 1;

/** Validation loss and accuracy of the epoch whose weights the model keeps. */
function bestOf(h: FitHistory): { loss: number; accuracy: number } {
  const i = h.bestEpoch >= 0 ? h.bestEpoch : h.epochs - 1;
  return { loss: h.valLoss[i]!, accuracy: h.valAccuracy[i]! };
}
