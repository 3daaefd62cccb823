/**
 * The `tfjs-transfer` CLI, run as a child process (`node --import tsx src/cli/main.ts ...`) on a tiny folder of
 * real cats and dogs with the 0.35 MobileNetV2 at 96 px: exit codes, `--json` documents, messages, `--help`.
 */
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATS_DOGS, MODEL_035, hasShared, listImages } from '../helpers/real-data';
import { FINE_TUNE_DEFAULTS, TRANSFER_LEARN_DEFAULTS } from '../../src/transfer-learn';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const BACKEND = process.env.TFJS_TRANSFER_TEST_BACKEND ?? 'wasm';
const work = mkdtempSync(join(tmpdir(), 'tt-cli-'));
const train = join(work, 'train');
const evalDir = join(work, 'eval');
const other = join(work, 'other');
const modelDir = join(work, 'model');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args], { cwd: REPO, env: { ...process.env, TFJS_TRANSFER_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill();
      fail(new Error(`CLI ${args.join(' ')} timed out; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      ok({ code, stdout, stderr });
    });
  });
}

function copy(split: 'train' | 'validation', cls: 'cats' | 'dogs', n: number, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of listImages(join(CATS_DOGS, split, cls), n)) cpSync(f, join(to, basename(f)));
}

beforeAll(() => {
  if (!hasShared) return;
  for (const cls of ['cats', 'dogs'] as const) {
    copy('train', cls, 8, join(train, cls));
    copy('validation', cls, 3, join(evalDir, cls));
  }
  copy('validation', 'cats', 2, join(other, 'birds'));
  copy('validation', 'dogs', 2, join(other, 'fish'));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('usage', () => {
  it('--help on every command, exit 0, documents exit codes', async () => {
    const all = [['--help'], ['train', '--help'], ['evaluate', '--help'], ['predict', '-h'], ['examine', '--help'], ['export', '--help']];
    const runs = await Promise.all(all.map((args) => cli(args)));
    for (const [i, args] of all.entries()) {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^Usage: tfjs-transfer/);
      expect(r.stdout).toContain('Exit codes');
    }
  });

  it('usage errors exit 2 with a pointer to --help', async () => {
    const cases: [string[], RegExp][] = [
      [[], /Usage: tfjs-transfer/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['train'], /train takes one folder/],
      [['train', 'x', '--epochs', 'many'], /--epochs must be an integer/],
      [['train', 'x', '--bogus'], /Unknown option '--bogus'/],
      [['train', 'x', '--fit', 'stretch'], /--fit must be one of squash, centerCrop, pad, got "stretch"/],
      [['evaluate', 'model-only'], /evaluate takes <model> <dir>/],
      [['predict', 'm', 'a.jpg', '--backend', 'gpu'], /--backend must be one of tensorflow, wasm, cpu/],
      [['predict', 'm', 'a.jpg', '--tta', 'mirror'], /--tta must be one of none, flip, got "mirror"/],
      [['evaluate', 'm', 'dir', '--tta', 'yes'], /--tta must be one of none, flip, got "yes"/],
      [['export', 'm', '--format', 'tflite'], /--format must be one of onnx/],
      [['export', 'https://example.com/m/model.json'], /--out <file> is required when the model is a URL/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout + r.stderr).toMatch(message);
      if (args.length) expect(r.stderr).toMatch(/See 'tfjs-transfer/);
    }
  });
});

describe.skipIf(!hasShared)('train, evaluate, predict, examine', () => {
  it('train --json: trains, saves, prints one JSON document; logs and plain progress lines on stderr', async () => {
    const r = await cli(['train', train, '--backbone', MODEL_035, '--size', '96', '--epochs', '3', '--seed', '1', '--out', modelDir, '--json', '--backend', BACKEND], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(typeof doc.accuracy).toBe('number');
    expect(doc.classes).toEqual(['cats', 'dogs']);
    expect(doc.model).toBe(modelDir);
    expect(doc.evaluation.confusionMatrix).toHaveLength(2);
    expect(doc.history.epochs).toBeGreaterThan(0);
    expect(existsSync(join(modelDir, 'model.json'))).toBe(true);
    expect(r.stderr).toMatch(/epoch 1\/3 - loss/);
    expect(r.stderr).toMatch(/extract: \d+\/\d+ \(100%/); // plain lines when piped, no \r bar
    expect(r.stderr).not.toContain('\r');
  });

  it('evaluate --json prints the evaluate() result with accuracy at the top level', async () => {
    const r = await cli(['evaluate', modelDir, evalDir, '--json', '--backend', BACKEND]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ count: 6, classes: ['cats', 'dogs'] });
    expect(doc.accuracy).toBeGreaterThanOrEqual(0);
    expect(Object.keys(doc)).toEqual(expect.arrayContaining(['loss', 'perClass', 'macroF1', 'confusionMatrix', 'misclassified']));
    const text = await cli(['evaluate', modelDir, evalDir, '--backend', BACKEND, '--quiet']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/accuracy [\d.]+ \(\d+\/6\)/);
    expect(text.stdout).toContain('confusion matrix');
    expect(text.stderr).toBe('');
  });

  it('evaluate --unknown <dir>: the unknown detector on every image under dir (subfolders too), text and --json', async () => {
    const r = await cli(['evaluate', modelDir, evalDir, '--unknown', other, '--json', '--backend', BACKEND]);
    expect(r.code, r.stderr).toBe(0);
    const u = JSON.parse(r.stdout).unknown;
    expect(u).toMatchObject({ otherImages: 4 });
    expect(u.accepted).toBeGreaterThanOrEqual(0);
    expect(u.otherAccepted + u.otherRejected).toBeCloseTo(1, 12);
    expect(typeof u.rocAuc).toBe('number');
    const text = await cli(['evaluate', modelDir, evalDir, '--unknown', other, '--backend', BACKEND, '--quiet']);
    expect(text.stdout).toMatch(/unknown detector: accepts [\d.]+% of these images/);
    expect(text.stdout).toMatch(/unknown images: 4, refused [\d.]+%, accepted [\d.]+%, ROC AUC [\d.]+/);
    const empty = join(work, 'unknown-empty');
    mkdirSync(empty, { recursive: true });
    const none = await cli(['evaluate', modelDir, evalDir, '--unknown', empty, '--backend', BACKEND]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--unknown .*unknown-empty holds no image files/);
  });

  it('evaluate on a folder of other classes: a clear message, exit 1', async () => {
    const r = await cli(['evaluate', modelDir, other, '--backend', BACKEND]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/trained on the classes \[cats, dogs\], but .* has the class folders \[birds, fish\]/);
    expect(r.stdout).toBe('');
  });

  it('predict: lines, --json, and a failing image makes exit 1', async () => {
    const images = [...listImages(join(evalDir, 'cats'), 1), ...listImages(join(evalDir, 'dogs'), 1)];
    const text = await cli(['predict', modelDir, ...images, '--backend', BACKEND]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    // "unknown" with the closest class when the model's unknown detector refuses the image.
    expect(lines[0]).toMatch(/^.*cat\.\d+\.jpg\t((cats|dogs)\t[01]\.\d{4}|unknown\t[01]\.\d{4}\tclosest: (cats|dogs))$/);
    const json = await cli(['predict', modelDir, ...images, join(work, 'missing.jpg'), '--json', '--backend', BACKEND]);
    expect(json.code).toBe(1);
    const doc = JSON.parse(json.stdout);
    expect(doc.classes).toEqual(['cats', 'dogs']);
    expect(doc.predictions).toHaveLength(3);
    expect(doc.predictions[0]).toMatchObject({ file: images[0], label: lines[0]!.split('\t')[1] });
    expect(doc.predictions[2]).toEqual({ file: join(work, 'missing.jpg'), error: 'no such file' });
    expect(json.stderr).toMatch(/missing\.jpg: no such file/);
    // --tta flip: the mean of the image's and its mirror image's probabilities, not the image's alone.
    const flipped = await cli(['predict', modelDir, images[0]!, '--json', '--tta', 'flip', '--backend', BACKEND]);
    expect(flipped.code, flipped.stderr).toBe(0);
    const f = JSON.parse(flipped.stdout).predictions[0];
    expect(f.probability).not.toBe(doc.predictions[0].probability);
    expect(f.probabilities.cats + f.probabilities.dogs).toBeCloseTo(1, 5);
  });

  it('missing folder, missing model, unreadable model: exit 1 with the reason', async () => {
    const bad = join(work, 'bad-model');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'model.json'), '{ this is not json');
    const cases: [string[], RegExp][] = [
      [['train', join(work, 'nowhere'), '--backend', BACKEND], /the training folder ".*nowhere" does not exist/],
      [['examine', join(work, 'nowhere')], /does not exist/],
      [['predict', join(work, 'no-model'), 'x.jpg', '--backend', BACKEND], /No model at .*no-model/],
      [['evaluate', bad, evalDir, '--backend', BACKEND], /bad-model/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/^error: /m);
    }
  });

  it('examine: text report and --json', async () => {
    const text = await cli(['examine', train]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Classes \(2\): cats, dogs/);
    const json = await cli(['examine', train, '--json', '--quiet']);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc.classes).toEqual(['cats', 'dogs']);
    expect(doc.splits[0].counts).toEqual([8, 8]);
  });
});

/** The early-stopping invariant of a history: all epochs run, or stopped `patience` epochs after the best one. */
function expectEarlyStopping(h: { epochs: number; valLoss: number[]; bestEpoch: number; stoppedEarly: boolean }, maxEpochs: number, patience: number): void {
  expect(h.valLoss).toHaveLength(h.epochs);
  expect(h.valLoss[h.bestEpoch]).toBe(Math.min(...h.valLoss));
  if (h.stoppedEarly) expect(h.epochs).toBe(h.bestEpoch + patience + 1);
  else expect(h.epochs).toBe(maxEpochs);
}

// The defaults do not depend on the backend, and two full default trainings (20 head epochs, then 10 fine-tuning
// epochs) take minutes on the cpu backend: this block runs on wasm only.
describe.skipIf(!hasShared || BACKEND === 'cpu')('train without training flags: the documented defaults, printed and in --json', () => {
  it('no flags: 20 epochs at Adam 1e-3, early stopping on val loss (patience 5, best weights restored); --fine-tune: its defaults', async () => {
    const out = join(work, 'defaults-model');
    const outFt = join(work, 'defaults-ft-model');
    const [r, ft] = await Promise.all([
      cli(['train', train, '--backbone', MODEL_035, '--size', '96', '--out', out, '--json', '--backend', BACKEND], 120_000),
      cli(['train', train, '--backbone', MODEL_035, '--size', '96', '--fine-tune', '--out', outFt, '--json', '--backend', BACKEND], 240_000),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    const d = TRANSFER_LEARN_DEFAULTS;
    expect(doc.settings).toMatchObject({
      backbone: MODEL_035,
      inputSize: [96, 96],
      epochs: d.epochs,
      learningRate: d.learningRate,
      optimizer: 'adam',
      batchSize: 32,
      earlyStopping: { ...d.earlyStopping },
      validation: { split: d.validationSplit },
      fit: d.fit,
      seedRandom: true,
      fineTune: false,
      out,
    });
    expect(Number.isInteger(doc.settings.seed)).toBe(true);
    expectEarlyStopping(doc.history, d.epochs, d.earlyStopping.patience!);
    // Best weights restored: the final evaluation (same validation images) has the best epoch's accuracy, and a
    // loss no higher than its (the default calibration then fits a temperature minimising that loss; a temperature
    // changes no predicted class).
    expect(doc.evaluation.accuracy).toBeCloseTo(doc.history.valAccuracy[doc.history.bestEpoch], 6);
    expect(doc.evaluation.loss).toBeLessThanOrEqual(doc.history.valLoss[doc.history.bestEpoch] + 1e-6);
    // The same settings, readable, on stderr before training starts.
    const block = r.stderr.slice(r.stderr.indexOf('tfjs-transfer: settings'));
    expect(r.stderr.indexOf('tfjs-transfer: settings')).toBeLessThan(r.stderr.indexOf('extract:'));
    expect(block).toMatch(/epochs +20\n/);
    expect(block).toMatch(/learning rate +0\.001 \(adam\)/);
    expect(block).toMatch(/early stopping +on valLoss, patience 5, best weights restored/);
    expect(block).toMatch(/validation +20% of each class held out/);
    expect(block).toMatch(/resize +centerCrop \(photos of another aspect ratio\)/);
    expect(block).toContain(`seed            ${doc.settings.seed} (random`);
    expect(r.stderr).toMatch(/epoch 1\/20 - loss/);

    expect(ft.code, ft.stderr).toBe(0);
    const fdoc = JSON.parse(ft.stdout);
    expect(fdoc.settings.fineTune).toEqual({
      trainableFrom: 'block_11_expand',
      epochs: FINE_TUNE_DEFAULTS.epochs,
      learningRate: d.learningRate / FINE_TUNE_DEFAULTS.learningRateDivisor,
    });
    expect(fdoc.settings.epochs).toBe(d.epochs);
    expectEarlyStopping(fdoc.fineTuneHistory, FINE_TUNE_DEFAULTS.epochs, d.earlyStopping.patience!);
    expect(ft.stderr).toMatch(/fine-tuning +from block_11_expand, 10 epochs at 0\.0001/);
  }, 300_000);
});

describe.skipIf(!hasShared)('train checks its arguments before the slow work', () => {
  it('--fine-tune-from nosuchlayer, --out a file, --out under a file, --out unwritable: usage error (2) before extraction', async () => {
    const file = join(work, 'a-file');
    writeFileSync(file, 'not a folder');
    const locked = join(work, 'locked');
    mkdirSync(locked, { recursive: true });
    chmodSync(locked, 0o555);
    const isRoot = process.getuid?.() === 0; // root writes anywhere: a 0555 folder is writable for it
    const base = ['train', train, '--backbone', MODEL_035, '--size', '96', '--backend', BACKEND];
    const cases: [string[], RegExp][] = [
      [[...base, '--fine-tune', '--fine-tune-from', 'nosuchlayer', '--out', join(work, 'ft-never')], /--fine-tune-from: the backbone .* has no layer "nosuchlayer"\. Layers to start from: .*block_16_expand/],
      [[...base, '--fine-tune', '--fine-tune-from', '100000', '--out', join(work, 'ft-never')], /--fine-tune-from 100000 is out of range/],
      [[...base, '--out', file], /--out ".*a-file" is a file, not a folder; nothing was trained/],
      [[...base, '--out', join(file, 'model')], /--out ".*a-file\/model" cannot be created: ".*a-file" is a file/],
      ...(isRoot ? [] : [[[...base, '--out', join(locked, 'model')], /cannot be created: ".*locked" is not writable \(EACCES\)/] as [string[], RegExp]]),
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    chmodSync(locked, 0o755);
    for (const [i, [args, message]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/See 'tfjs-transfer train --help'/);
      expect(r.stderr).not.toMatch(/extract:|epoch 1/);
    }
    expect(existsSync(join(work, 'ft-never'))).toBe(false);
  });

  it('an empty data folder, or a class folder without images: "no class folders" before the (default) backbone loads', async () => {
    const empty = join(work, 'empty-data');
    mkdirSync(empty, { recursive: true });
    const noImages = join(work, 'no-images');
    mkdirSync(join(noImages, 'cats'), { recursive: true });
    mkdirSync(join(noImages, 'dogs'), { recursive: true });
    for (const f of listImages(join(train, 'cats'), 2)) cpSync(f, join(noImages, 'cats', basename(f)));
    writeFileSync(join(noImages, 'dogs', 'README.txt'), 'no images here');
    const [a, b] = await Promise.all([cli(['train', empty, '--backend', BACKEND, '--out', join(work, 'never-a')]), cli(['train', noImages, '--backend', BACKEND, '--out', join(work, 'never-b')])]);
    expect(a.code, a.stderr).toBe(1);
    expect(a.stderr).toMatch(/the training folder ".*empty-data" has no class folders\. Put each class's images in its own folder/);
    expect(a.stderr).not.toMatch(/NETWORK|fetch|download|loading mobilenet/i);
    expect(b.code, b.stderr).toBe(1);
    expect(b.stderr).toMatch(/the class folder "dogs" of ".*no-images" has no image files/);
  });
});

describe.skipIf(!hasShared)('--json failures and predict on a folder', () => {
  it('--json with an error prints one { error: { code, message, exitCode } } document on stdout', async () => {
    const [usage, runtime, data] = await Promise.all([
      cli(['train', train, '--epochs', 'many', '--json']),
      cli(['predict', join(work, 'no-model'), 'x.jpg', '--json', '--backend', BACKEND]),
      cli(['train', join(work, 'nowhere'), '--json', '--backend', BACKEND]),
    ]);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout)).toEqual({ error: { code: 'USAGE', message: expect.stringMatching(/^--epochs must be an integer .*\nSee 'tfjs-transfer train --help'\.$/s), exitCode: 2 } });
    expect(runtime.code).toBe(1);
    const doc = JSON.parse(runtime.stdout);
    expect(doc.error).toMatchObject({ exitCode: 1, message: expect.stringMatching(/^No model at .*no-model/) });
    expect(typeof doc.error.code).toBe('string');
    expect(data.code).toBe(1);
    expect(JSON.parse(data.stdout).error).toMatchObject({ code: 'INVALID_ARGUMENT', exitCode: 1, message: expect.stringMatching(/does not exist/) });
  });

  it('predict on a folder predicts its image files, sorted; a folder without images is an error entry', async () => {
    const folder = join(work, 'to-predict');
    mkdirSync(join(folder, 'sub'), { recursive: true });
    for (const f of [...listImages(join(evalDir, 'dogs'), 2), ...listImages(join(evalDir, 'cats'), 1)]) cpSync(f, join(folder, basename(f)));
    writeFileSync(join(folder, 'notes.txt'), 'not an image');
    const noImages = join(work, 'predict-empty');
    mkdirSync(noImages, { recursive: true });
    const r = await cli(['predict', modelDir, folder, noImages, '--json', '--backend', BACKEND]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    const expected = readdirSync(folder).filter((n) => n.endsWith('.jpg')).sort().map((n) => join(folder, n));
    expect(doc.predictions.map((p: { file: string }) => p.file)).toEqual([...expected, noImages]);
    expect(doc.predictions.slice(0, 3).every((p: { label?: string }) => p.label === 'cats' || p.label === 'dogs')).toBe(true);
    expect(doc.predictions[3].error).toMatch(/a folder with no image files/);
    expect(r.stderr).not.toContain('EISDIR');
  });
});
