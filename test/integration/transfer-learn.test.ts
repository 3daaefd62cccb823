import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { attachHead, env, fit, freeze, loadBackbone, loadModel, memoryCheckpointStore, predict, save, transferLearn } from '../../src/node/index';
import { CATS_DOGS, hasShared, listImages, MODEL_035, SHARED } from '../helpers/real-data';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-learn-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('transferLearn', () => {
  it('runs the five steps on tensors: held-out split, accuracy before training, evaluation', async () => {
    const base = tf.memory().numTensors;
    const data = stripes(40);
    const logs: string[] = [];
    env.verbose = true;
    env.logger = (m) => logs.push(m);
    try {
      const result = await transferLearn({
        data: { xs: data.xs, ys: data.ys.map((y) => (y ? 'blue' : 'red')) },
        backbone: tinyBackbone(32),
        backboneOptions: { takeOwnership: true },
        head: { dropout: 0 },
        epochs: 30,
        batchSize: 8,
        learningRate: 0.05,
        seed: 3,
      });
      expect(result.classes).toEqual(['blue', 'red']);
      expect(result.initial).toBeDefined();
      expect(result.evaluation.count).toBe(8); // 20% of 40, stratified
      expect(result.evaluation.accuracy).toBeGreaterThanOrEqual(0.875);
      expect(result.report!.splits.map((s) => s.total)).toEqual([32, 8]);
      expect(logs.some((l) => /before training: val_loss/.test(l))).toBe(true);
      expect(logs.some((l) => /^epoch 1\/30/.test(l))).toBe(true);
      // Printed before the first epoch (was: after the last).
      expect(logs.findIndex((l) => /before training: val_loss/.test(l))).toBeLessThan(logs.findIndex((l) => /^epoch 1\/30/.test(l)));
      result.model.dispose();
    } finally {
      env.verbose = false;
      env.logger = (m) => console.info(m);
    }
    data.xs.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('an option given as undefined takes transferLearn\'s default (the CLI passes undefined for every flag not given)', async () => {
    const base = tf.memory().numTensors;
    const data = stripes(20);
    const ys = data.ys.map((y) => (y ? 'blue' : 'red'));
    const common = { data: { xs: data.xs, ys }, backbone: tinyBackbone(32), backboneOptions: { takeOwnership: true }, head: { dropout: 0 }, seed: 4, examine: false };
    const keys = ['validationData', 'validationSplit', 'classes', 'fineTune', 'calibrate', 'unknown', 'epochs', 'batchSize', 'learningRate', 'optimizer', 'earlyStopping',
      'classWeight', 'shuffle', 'augment', 'callbacks', 'signal', 'onProgress', 'verbose', 'cache', 'extractBatchSize', 'checkpoint',
      'gradientNormWarning', 'yieldEvery'];
    const omitted = await transferLearn({ ...common });
    const undef = await transferLearn({ ...Object.fromEntries(keys.map((k) => [k, undefined])), ...common, backbone: tinyBackbone(32) });
    const numbers = (r: typeof omitted) => ({ ...r.history, timing: undefined, accuracy: r.evaluation.accuracy, loss: r.evaluation.loss, calibration: r.calibration });
    expect(numbers(undef)).toEqual(numbers(omitted));
    // and these are transferLearn's defaults (20 epochs at 1e-3 with early stopping), not fit's (10 at 1e-4)
    expect(omitted.history.epochs === 20 || omitted.history.stoppedEarly).toBe(true);
    omitted.model.dispose();
    undef.model.dispose();
    data.xs.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('fine-tuning with a checkpoint folder gets its own checkpoint (a fine-tune subfolder) and resumes', async () => {
    const base = tf.memory().numTensors;
    const data = stripes(24);
    const ys = data.ys.map((y) => (y ? 'blue' : 'red'));
    const dir = path.join(tmp, 'ckpt-run');
    const run = () => transferLearn({
      data: { xs: data.xs, ys }, backbone: tinyBackbone(32), backboneOptions: { takeOwnership: true }, head: { dropout: 0 },
      seed: 2, examine: false, epochs: 3, batchSize: 8, fineTune: { trainableFrom: 'block_1_project', epochs: 2 }, checkpoint: { directory: dir },
    });
    const first = await run(); // was: "belongs to another run" when fine-tuning opened the head's checkpoint
    expect(fs.existsSync(path.join(dir, 'checkpoint.tfjst'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'fine-tune', 'checkpoint.tfjst'))).toBe(true);
    const again = await run(); // both phases resume from their complete checkpoints
    expect(again.history.resumedEpochs).toBe(first.history.epochs);
    expect(again.fineTuneHistory!.resumedEpochs).toBe(2);
    expect(again.fineTuneHistory!.loss).toEqual(first.fineTuneHistory!.loss);
    first.model.dispose();
    again.model.dispose();
    data.xs.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('fine-tuning with a CheckpointStore: none for fine-tuning unless fineTune.checkpoint is given (said in a log line)', async () => {
    const base = tf.memory().numTensors;
    const data = stripes(24);
    const ys = data.ys.map((y) => (y ? 'blue' : 'red'));
    const logs: string[] = [];
    const logger = env.logger;
    env.logger = (m) => logs.push(m);
    try {
      const head = memoryCheckpointStore('head');
      const tuned = memoryCheckpointStore('tuned');
      const common = {
        data: { xs: data.xs, ys }, backbone: tinyBackbone(32), backboneOptions: { takeOwnership: true }, head: { dropout: 0 },
        seed: 2, examine: false, epochs: 2, batchSize: 8, verbose: true, checkpoint: { directory: head },
      };
      const a = await transferLearn({ ...common, fineTune: { trainableFrom: 'block_1_project', epochs: 1 } });
      expect(logs.some((l) => /fine-tuning is not checkpointed/.test(l))).toBe(true);
      expect(head.bytes).toBeDefined();
      const b = await transferLearn({ ...common, backbone: tinyBackbone(32), fineTune: { trainableFrom: 'block_1_project', epochs: 1, checkpoint: { directory: tuned } } });
      expect(b.history.resumedEpochs).toBe(a.history.epochs);
      expect(tuned.bytes).toBeDefined();
      a.model.dispose();
      b.model.dispose();
    } finally {
      env.logger = logger;
      data.xs.dispose();
    }
    expect(tf.memory().numTensors).toBe(base);
  });

  it('calibrates on the validation data by default, after fine-tuning and before the evaluation; the log says T and the ECE before and after', async () => {
    const base = tf.memory().numTensors;
    const data = stripes(30);
    const ys = data.ys.map((y, i) => (i % 5 === 2 ? 1 - y : y) ? 'blue' : 'red'); // label noise: T inside its bounds
    const logs: string[] = [];
    env.verbose = true;
    env.logger = (m) => logs.push(m);
    try {
      const common = { data: { xs: data.xs, ys }, backboneOptions: { takeOwnership: true }, head: { dropout: 0 }, seed: 5, examine: false, epochs: 8, batchSize: 8 };
      const result = await transferLearn({ ...common, backbone: tinyBackbone(32), fineTune: { trainableFrom: 'block_1_project', epochs: 1 } });
      const record = result.calibration!;
      expect(record).toMatchObject({ method: 'temperature', images: 6, folds: 5 });
      expect(result.model.calibration).toEqual(record);
      const line = logs.find((l) => /calibrated on 6 validation images/.test(l))!;
      expect(line).toContain(`temperature ${record.temperature.toFixed(3)}`);
      expect(line).toMatch(new RegExp(`ECE ${record.eceBefore.toFixed(4)} before, ${record.eceAfter.toFixed(4)} after \\(5-fold cross-validated\\)`));
      // after fine-tuning, before the final evaluation
      const at = (re: RegExp) => logs.findIndex((l) => re.test(l));
      expect(at(/calibrated on/)).toBeGreaterThan(at(/^epoch 1\/1/));
      expect(at(/calibrated on/)).toBeLessThan(at(/validation accuracy .* ECE/));
      expect(result.evaluation.ece).toBeGreaterThanOrEqual(0);
      result.model.dispose();
      // calibrate: false, and no validation data: no calibration
      const off = await transferLearn({ ...common, backbone: tinyBackbone(32), calibrate: false });
      expect(off.calibration).toBeUndefined();
      expect(off.model.calibration).toBeUndefined();
      off.model.dispose();
      const none = await transferLearn({ ...common, backbone: tinyBackbone(32), validationSplit: 0 });
      expect(none.calibration).toBeUndefined();
      none.model.dispose();
    } finally {
      env.verbose = false;
      env.logger = (m) => console.info(m);
    }
    data.xs.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('TransferLearnArgs documents its own defaults (was: inherited FitArgs\' "Default 10" for epochs)', () => {
    const source = fs.readFileSync(new URL('../../src/transfer-learn.ts', import.meta.url), 'utf8');
    const args = source.slice(source.indexOf('export interface TransferLearnArgs'));
    expect(args.startsWith('export interface TransferLearnArgs {')).toBe(true); // no `extends FitArgs`
    const epochsDoc = /\/\*\*([^]*?)\*\/\s*epochs\?: number;/.exec(args)![1]!;
    expect(epochsDoc).toMatch(/TRANSFER_LEARN_DEFAULTS\}\.epochs \(20\)/);
    const rateDoc = /\/\*\*([^]*?)\*\/\s*learningRate\?: number;/.exec(args)![1]!;
    expect(rateDoc).toMatch(/1e-3/);
    const calibrateDoc = /\/\*\*([^]*?)\*\/\s*calibrate\?: boolean;/.exec(args)![1]!;
    expect(calibrateDoc).toMatch(/TRANSFER_LEARN_DEFAULTS\}\.calibrate \(true\)/);
  });

  it('rejects missing data and numeric labels without class names', async () => {
    await expect(transferLearn({} as never)).rejects.toThrow(/options.data is required/);
    const data = stripes(8);
    await expect(transferLearn({ data, backbone: tinyBackbone(32),
        backboneOptions: { takeOwnership: true }, examine: false })).rejects.toThrow(/labels are numeric; pass classes/);
    data.xs.dispose();
  });

  it.runIf(hasShared)('trains from an image folder path and saves a model that reloads identically', async () => {
    const root = path.join(tmp, 'photos');
    for (const cls of ['cats', 'dogs']) {
      fs.mkdirSync(path.join(root, cls), { recursive: true });
      for (const f of listImages(path.join(CATS_DOGS, 'train', cls), 12)) fs.symlinkSync(f, path.join(root, cls, path.basename(f)));
    }
    const base = tf.memory().numTensors;
    const result = await transferLearn({ data: root, backbone: MODEL_035, backboneOptions: { inputSize: 96 }, epochs: 5, seed: 1, validationSplit: 0.25, fineTune: { trainableFrom: 'block_16_expand', epochs: 1 } });
    expect(result.fineTuneHistory!.trained.layers).toContain('block_16_expand');
    expect(result.classes).toEqual(['cats', 'dogs']);
    expect(result.evaluation.count).toBe(6);
    const out = path.join(tmp, 'model');
    await save(result.model, out);
    const reloaded = await loadModel(out);
    const x = tf.randomUniform([3, 96, 96, 3], 0, 255, 'float32', 1) as tf.Tensor4D;
    const a = await predict(result.model, x);
    const b = await predict(reloaded, x);
    expect(b).toEqual(a);
    x.dispose();
    reloaded.dispose();
    result.model.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });
});

describe.runIf(hasShared)('flowers (5 classes)', () => {
  it('trains, fine-tunes and calibrates from a folder; evaluate gives one-vs-rest ROC AUC per class and its macro mean', async () => {
    const flowers = path.join(SHARED, 'data/flower_photos');
    const root = path.join(tmp, 'flowers');
    const classes = fs.readdirSync(path.join(flowers, 'train')).filter((c) => !c.startsWith('.')).sort();
    expect(classes).toHaveLength(5);
    for (const split of ['train', 'validation']) {
      for (const cls of classes) {
        fs.mkdirSync(path.join(root, split, cls), { recursive: true });
        for (const f of listImages(path.join(flowers, split, cls), split === 'train' ? 6 : 3)) fs.symlinkSync(f, path.join(root, split, cls, path.basename(f)));
      }
    }
    const base = tf.memory().numTensors;
    const result = await transferLearn({ data: root, backbone: MODEL_035, backboneOptions: { inputSize: 96 }, epochs: 5, seed: 1, examine: false, fineTune: { trainableFrom: 'block_16_expand', epochs: 1 } });
    expect(result.classes).toEqual(classes);
    expect(result.model.resizeFit).toBe('centerCrop'); // the default for a folder, recorded by fit
    const ev = result.evaluation;
    expect(ev.count).toBe(15);
    expect(ev.perClass.every((c) => c.rocAuc !== undefined && c.rocAuc >= 0 && c.rocAuc <= 1)).toBe(true);
    expect(ev.rocAuc).toBeCloseTo(ev.perClass.reduce((a, c) => a + c.rocAuc!, 0) / 5, 12);
    expect(ev.reliability.bins).toHaveLength(15);
    expect(ev.reliability.bins.reduce((a, b) => a + b.count, 0)).toBe(15);
    expect(result.calibration).toMatchObject({ method: 'temperature', images: 15, folds: 5 });
    result.model.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });
});

describe('function backbones', () => {
  it('train, and save their head only; loadModel asks for the backbone and then predicts identically', async () => {
    const base = tf.memory().numTensors;
    const fn = (x: tf.Tensor4D) => tf.mean(x, [1, 2]);
    const backbone = freeze(await loadBackbone(fn, { inputSize: 16, preprocessing: { scale: 1 / 255, offset: 0 }, name: 'mean-colour' }));
    const model = attachHead(backbone, { classes: ['red', 'blue'], seed: 1, dropout: 0 });
    const data = stripes(24, 16);
    await fit(model, data, { epochs: 40, batchSize: 8, learningRate: 0.1, seed: 1, verbose: false });
    const dir = path.join(tmp, 'fn-model');
    await save(model, dir);
    await expect(loadModel(dir)).rejects.toThrow(/holds only the head .*"mean-colour".*pass that backbone/);
    const reloaded = await loadModel(dir, { backbone: fn });
    const a = await predict(model, data.xs);
    const b = await predict(reloaded, data.xs);
    expect(b.map((p) => p.label)).toEqual(a.map((p) => p.label));
    expect(a.filter((p, i) => p.index === data.ys[i]).length / a.length).toBeGreaterThan(0.9);
    reloaded.dispose();
    model.dispose();
    data.xs.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });
});
