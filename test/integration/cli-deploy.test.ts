/**
 * The CLI's deploy options, as a child process on a tiny folder of real cats and dogs with the 0.35 MobileNetV2 at
 * 96 px: `train --quantize` (checked on the validation split, the check in --json), `train --head-only`, `info`
 * (text and --json), and their usage errors.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATS_DOGS, MODEL_035, hasShared, listImages } from '../helpers/real-data';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const BACKEND = process.env.TFJS_TRANSFER_TEST_BACKEND ?? 'wasm';
const work = mkdtempSync(join(tmpdir(), 'tt-cli-deploy-'));
const data = join(work, 'data');

function cli(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
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

/** Bytes of the artefact in `dir`: model.json and its weight shards (not the report.html train writes beside them). */
const folderBytes = (dir: string) => readdirSync(dir).filter((f) => f === 'model.json' || f.endsWith('.bin')).reduce((a, f) => a + statSync(join(dir, f)).size, 0);

beforeAll(() => {
  if (!hasShared) return;
  for (const cls of ['cats', 'dogs'] as const) {
    mkdirSync(join(data, cls), { recursive: true });
    for (const f of listImages(join(CATS_DOGS, 'train', cls), 10)) cpSync(f, join(data, cls, basename(f)));
  }
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('usage', () => {
  it('bad --quantize, --max-accuracy-drop without --quantize, --head-only with --fine-tune, info without a model: exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['train', 'x', '--quantize', 'int4'], /--quantize must be one of float32, float16, uint8/],
      [['train', 'x', '--max-accuracy-drop', '0.1'], /--max-accuracy-drop needs --quantize/],
      [['train', 'x', '--head-only', '--fine-tune'], /Drop --fine-tune or --head-only/],
      [['info'], /info takes one <model>/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    runs.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
    });
    const help = await cli(['info', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: tfjs-transfer info/);
  });
});

describe.skipIf(!hasShared)('train --quantize / --head-only, info', () => {
  it('train --quantize uint8 --json: the check on the validation split is in the document and the card; info prints the card', async () => {
    const out = join(work, 'q');
    const r = await cli(['train', data, '--backbone', MODEL_035, '--size', '96', '--epochs', '2', '--seed', '1', '--quantize', 'uint8', '--max-accuracy-drop', '1', '--out', out, '--json', '--backend', BACKEND]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.saved.artefact).toMatchObject({ quantization: 'uint8', backbone: 'embedded' });
    expect(doc.saved.artefact.quantizedWeights).toBeGreaterThan(30);
    expect(doc.saved.verification).toMatchObject({ images: 4, maxAccuracyDrop: 1 });
    const info = await cli(['info', out, '--json']);
    expect(info.code, info.stderr).toBe(0);
    const { card } = JSON.parse(info.stdout);
    expect(card.classes).toEqual(['cats', 'dogs']);
    expect(card.training[0].imagesPerClass).toEqual({ cats: 8, dogs: 8 });
    expect(card.evaluation.count).toBe(4);
    expect(card.artefact.verification.images).toBe(4);
    const text = await cli(['info', out]);
    expect(text.stdout).toMatch(/artefact: +whole model, uint8/);
    expect(text.stdout).toMatch(/training 1: +cats 8, dogs 8; 4 validation/);
  });

  it('train --head-only: a few KB, and predict loads the backbone again from its path', async () => {
    const out = join(work, 'h');
    const r = await cli(['train', data, '--backbone', MODEL_035, '--size', '96', '--epochs', '2', '--seed', '1', '--head-only', '--out', out, '--backend', BACKEND, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/saved to .* \(head only, float32/);
    expect(folderBytes(out)).toBeLessThan(20_000);
    expect(readdirSync(out)).toContain('report.html'); // beside the artefact, not part of it
    const p = await cli(['predict', out, listImages(join(data, 'cats'), 1)[0]!, '--backend', BACKEND, '--json']);
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout).predictions[0].label).toMatch(/cats|dogs/);
  });
});
