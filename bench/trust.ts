/**
 * `npm run bench:trust`: how far the models `transferLearn` hands back can be trusted on photos they never saw
 * (issue 13). For cats vs dogs and for flowers, each trained with no settings (only the backbone's path, as this
 * machine is offline, and a seed so that runs repeat):
 * - validation accuracy; for cats vs dogs also the full-size photos and `cats_vs_dogs_elsewhere`;
 * - accuracy after fine-tuning (`fineTune: true`, its defaults), unless `--skip-fine-tune`;
 * - every evaluation again with flip test-time augmentation (`tta: 'flip'`): accuracy, ECE and time against none;
 * - the calibration error before and after calibration (`eceBefore`, and `eceAfter` 5-fold cross-validated on
 *   the validation images), and after calibration on images it never saw (full-size, elsewhere);
 * - unknown detection both ways: the cats-vs-dogs model against all flower photos and the non-cat, non-dog photos
 *   of `../shared/images`; the flowers model against every cat and dog photo (the 3000 of
 *   `cats_and_dogs_filtered_200px`, full-size, elsewhere, and those of `../shared/images`): ROC AUC, the share of other photos accepted at the default threshold, the share of
 *   validation (and elsewhere, full-size) accepted, the accuracy on the accepted validation images, and the bytes
 *   the detector adds to the saved model.
 * Prints a table and writes `bench/results/trust-<time>.json`.
 *
 * Usage: npm run bench:trust [-- --seed 1 --skip-fine-tune --task cd|fl|both --backend wasm --size 224]
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { env, evaluate, fromImages, imageFolder, transferLearn, type Evaluation, type ImageDataset, type ResizeFit, type TransferLearnResult } from '../src/node/index';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    'skip-fine-tune': { type: 'boolean', default: false },
    task: { type: 'string', default: 'both' },
    backend: { type: 'string', default: 'wasm' },
    size: { type: 'string' },
  },
});
await tf.setBackend(values.backend!);
if (tf.getBackend() !== values.backend) throw new Error(`backend ${values.backend} did not initialise`);
env.verbose = false;

const SHARED = resolve(import.meta.dirname, '../../shared');
const BACKBONE = join(SHARED, 'models/mobilenet_v2_1.0_224');
const DATA = join(SHARED, 'data');
const seed = Number(values.seed);
/** `--size <px>`: the backbone's input size (a setting, so no longer "no settings"); default: transferLearn's (256 for this MobileNetV2). */
const size = values.size === undefined ? undefined : Number(values.size);
const backboneOptions = size === undefined ? undefined : { inputSize: size };
/** The input size the models were trained at (transferLearn's choice when `--size` is not given). */
let trainedSize: number | undefined;
const CAT_DOG_IMAGES = ['cat', 'cat_720p', 'dog_test_0', 'dog_train_0', 'pets'];

/** The files of ../shared/images whose name (without extension) is or is not in `names`. */
function sharedImages(keep: (name: string) => boolean): string[] {
  const dir = join(SHARED, 'images');
  return readdirSync(dir)
    .filter((f) => /\.(jpe?g|png)$/i.test(f) && keep(f.replace(/\.[^.]+$/, '')))
    .sort()
    .map((f) => join(dir, f));
}

/** All images of several datasets and files, labels ignored. */
async function others(folders: string[], files: string[], fit: ResizeFit): Promise<ImageDataset> {
  const items: { image: string; label: string }[] = files.map((image) => ({ image, label: 'other' }));
  for (const folder of folders) {
    const f = await imageFolder(folder, { validationSplit: 0, progressBar: false });
    for (const part of [f.train, f.validation]) {
      if (!part) continue;
      for (const source of (part as unknown as { sources: string[] }).sources) items.push({ image: source, label: 'other' });
    }
  }
  return fromImages(items, { name: 'other photos', fit });
}

interface TaskResult {
  task: string;
  validation: { accuracy: number; ece: number };
  tests: Record<string, { accuracy: number; ece: number; unknownAccepted: number | undefined }>;
  /** The same evaluations with flip test-time augmentation (`tta: 'flip'`), and the time of each against none. */
  flip: Record<string, { accuracy: number; ece: number; seconds: number; plainSeconds: number }>;
  calibration: TransferLearnResult['calibration'];
  fineTuned?: { validationAccuracy: number; tests: Record<string, number> };
  unknown: { otherImages: number; rocAuc: number | undefined; otherAccepted: number | undefined; validationAccepted: number; acceptedAccuracy: number | undefined; bytes: number; threshold: number };
  seconds: number;
}

async function runTask(task: 'cd' | 'fl'): Promise<TaskResult> {
  const t0 = Date.now();
  const data = join(DATA, task === 'cd' ? 'cats_and_dogs_filtered_200px' : 'flower_photos');
  const testFolders: Record<string, string> = task === 'cd' ? { fullres: join(DATA, 'cats_vs_dogs_fullres'), elsewhere: join(DATA, 'cats_vs_dogs_elsewhere') } : {};
  const result = await transferLearn({ data, backbone: BACKBONE, backboneOptions, seed });
  trainedSize = result.model.inputShape[0];
  const { model } = result;
  // Every test set is fitted to the input the way the model's training images were (model.resizeFit).
  const fit = model.resizeFit;
  const other =
    task === 'cd'
      ? await others([join(DATA, 'flower_photos')], sharedImages((n) => !CAT_DOG_IMAGES.includes(n)), fit)
      : await others([join(DATA, 'cats_and_dogs_filtered_200px'), join(DATA, 'cats_vs_dogs_fullres'), join(DATA, 'cats_vs_dogs_elsewhere')], sharedImages((n) => CAT_DOG_IMAGES.includes(n)), fit);
  try {
    const folder = await imageFolder(data, { progressBar: false, fit });
    const validation = folder.validation!;
    const withOthers: Evaluation = await evaluate(model, validation, { unknown: other });
    const tests: TaskResult['tests'] = {};
    const flip: TaskResult['flip'] = {};
    const timed = async (d: ImageDataset, tta: 'none' | 'flip') => {
      const s0 = Date.now();
      const e = await evaluate(model, d, { tta });
      return { e, seconds: (Date.now() - s0) / 1000 };
    };
    const sets: [string, ImageDataset][] = [['validation', validation]];
    for (const [name, dir] of Object.entries(testFolders)) {
      sets.push([name, (await imageFolder(dir, { validationSplit: 0, classes: model.classes, progressBar: false, fit })).train]);
    }
    for (const [name, d] of sets) {
      const plain = await timed(d, 'none');
      const flipped = await timed(d, 'flip');
      if (name !== 'validation') tests[name] = { accuracy: plain.e.accuracy, ece: plain.e.ece, unknownAccepted: plain.e.unknown?.accepted };
      flip[name] = { accuracy: flipped.e.accuracy, ece: flipped.e.ece, seconds: flipped.seconds, plainSeconds: plain.seconds };
    }
    const u = withOthers.unknown!;
    const out: TaskResult = {
      task,
      validation: { accuracy: withOthers.accuracy, ece: withOthers.ece },
      tests,
      flip,
      calibration: result.calibration,
      unknown: {
        otherImages: u.otherImages, rocAuc: u.rocAuc, otherAccepted: u.otherAccepted, validationAccepted: u.accepted, acceptedAccuracy: u.acceptedAccuracy,
        bytes: model.unknownDetector!.bytes, threshold: u.threshold,
      },
      seconds: 0,
    };
    if (!values['skip-fine-tune']) {
      const ft = await transferLearn({ data, backbone: BACKBONE, backboneOptions, seed, fineTune: true, examine: false });
      try {
        const fineTests: Record<string, number> = {};
        for (const [name, dir] of Object.entries(testFolders)) {
          const f = await imageFolder(dir, { validationSplit: 0, classes: ft.model.classes, progressBar: false, fit: ft.model.resizeFit });
          fineTests[name] = (await evaluate(ft.model, f.train)).accuracy;
        }
        out.fineTuned = { validationAccuracy: ft.evaluation.accuracy, tests: fineTests };
      } finally {
        ft.model.dispose();
      }
    }
    out.seconds = (Date.now() - t0) / 1000;
    return out;
  } finally {
    model.dispose();
  }
}

const tasks = values.task === 'both' ? (['cd', 'fl'] as const) : [values.task as 'cd' | 'fl'];
const results: TaskResult[] = [];
for (const t of tasks) results.push(await runTask(t));

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
const f4 = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(4));
console.log(`\nbench:trust (MobileNetV2 1.0 at ${trainedSize}, ${tf.getBackend()}, seed ${seed}, transferLearn with no settings${size ? ` but inputSize ${size}` : ''})\n`);
console.log('| model | validation acc. | full-size acc. | elsewhere acc. | fine-tuned val. (elsewhere) | ECE val. before / after (CV) | ECE full-size / elsewhere |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  const ft = r.fineTuned ? `${f4(r.fineTuned.validationAccuracy)}${r.fineTuned.tests.elsewhere !== undefined ? ` (${f4(r.fineTuned.tests.elsewhere)})` : ''}` : 'skipped';
  console.log(
    `| ${r.task === 'cd' ? 'cats vs dogs' : 'flowers'} | ${f4(r.validation.accuracy)} | ${f4(r.tests.fullres?.accuracy)} | ${f4(r.tests.elsewhere?.accuracy)} | ${ft} | ` +
      `${f4(r.calibration?.eceBefore)} / ${f4(r.calibration?.eceAfter)} | ${f4(r.tests.fullres?.ece)} / ${f4(r.tests.elsewhere?.ece)} |`,
  );
}
console.log('\n| model | other photos | ROC AUC | other accepted | validation accepted | full-size accepted | elsewhere accepted | accuracy on accepted | bytes |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  const u = r.unknown;
  console.log(
    `| ${r.task === 'cd' ? 'cats vs dogs' : 'flowers'} | ${u.otherImages} | ${f4(u.rocAuc)} | ${pct(u.otherAccepted)} | ${pct(u.validationAccepted)} | ` +
      `${pct(r.tests.fullres?.unknownAccepted)} | ${pct(r.tests.elsewhere?.unknownAccepted)} | ${f4(u.acceptedAccuracy)} | ${u.bytes} |`,
  );
}
console.log("\n| model | data | accuracy, tta none -> 'flip' | ECE, none -> 'flip' | evaluate s, none -> 'flip' |");
console.log('| --- | --- | --- | --- | --- |');
for (const r of results) {
  for (const [name, f] of Object.entries(r.flip)) {
    const none = name === 'validation' ? r.validation : r.tests[name]!;
    console.log(
      `| ${r.task === 'cd' ? 'cats vs dogs' : 'flowers'} | ${name} | ${f4(none.accuracy)} -> ${f4(f.accuracy)} (${f.accuracy >= none.accuracy ? '+' : ''}${(100 * (f.accuracy - none.accuracy)).toFixed(1)} points) | ` +
        `${f4(none.ece)} -> ${f4(f.ece)} | ${f.plainSeconds.toFixed(1)} -> ${f.seconds.toFixed(1)} (${(f.seconds / f.plainSeconds).toFixed(2)}x) |`,
    );
  }
}
mkdirSync(resolve(import.meta.dirname, 'results'), { recursive: true });
const file = resolve(import.meta.dirname, `results/trust-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ backend: tf.getBackend(), seed, inputSize: trainedSize, results }, null, 2));
console.log(`\nwritten ${file}`);
