/**
 * The `tfjs-transfer` CLI, run as a child process (`node --import tsx src/cli/main.ts ...`) on a tiny folder of
 * real cats and dogs with the 0.35 MobileNetV2 at 96 px: exit codes, `--json` documents, messages, `--help`.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATS_DOGS, MODEL_035, hasShared, listImages } from '../helpers/real-data';

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
    const all = [['--help'], ['train', '--help'], ['evaluate', '--help'], ['predict', '-h'], ['examine', '--help']];
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
      [['evaluate', 'model-only'], /evaluate takes <model> <dir>/],
      [['predict', 'm', 'a.jpg', '--backend', 'gpu'], /--backend must be one of tensorflow, wasm, cpu/],
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
    expect(lines[0]).toMatch(/^.*cat\.\d+\.jpg\t(cats|dogs)\t[01]\.\d{4}$/);
    const json = await cli(['predict', modelDir, ...images, join(work, 'missing.jpg'), '--json', '--backend', BACKEND]);
    expect(json.code).toBe(1);
    const doc = JSON.parse(json.stdout);
    expect(doc.classes).toEqual(['cats', 'dogs']);
    expect(doc.predictions).toHaveLength(3);
    expect(doc.predictions[0]).toMatchObject({ file: images[0], label: lines[0]!.split('\t')[1] });
    expect(doc.predictions[2]).toEqual({ file: join(work, 'missing.jpg'), error: 'no such file' });
    expect(json.stderr).toMatch(/missing\.jpg: no such file/);
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
