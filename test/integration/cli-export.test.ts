/**
 * `tfjs-transfer export <model> --format onnx`: run in-process through `main` on a small saved model; the file it
 * writes runs in onnxruntime-node with the probabilities of the saved model. (Help and usage errors of `export` are
 * in cli.test.ts, with the other commands'.)
 */
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import { defaultOut } from '../../src/cli/export';
import { attachHead, env, freeze, loadBackbone, loadModel, save } from '../../src/node/index';
import { tinyBackbone } from '../helpers/tiny';

const work = mkdtempSync(join(tmpdir(), 'tt-cli-export-'));
const modelDir = join(work, 'my-model');
const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? 'wasm';

function collector(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = collector();
  const err = collector();
  const code = await main(args, { out: out.stream, err: err.stream });
  return { code, stdout: out.text(), stderr: err.text() };
}

beforeAll(async () => {
  env.verbose = false;
  const backbone = freeze(await loadBackbone(tinyBackbone(24), { preprocessing: { scale: 1 / 127.5, offset: -1 }, name: 'tiny' }));
  const model = attachHead(backbone, { classes: ['cat', 'dog', 'bird'], seed: 3 });
  await save(model, modelDir);
  model.dispose();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('tfjs-transfer export', () => {
  it('--format onnx --json: writes the file, prints one document; onnxruntime gives the saved model\'s probabilities', async () => {
    const out = join(work, 'out', 'model.onnx');
    const r = await run(['export', modelDir, '--format', 'onnx', '--out', out, '--json', '--backend', backend]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { out: string; bytes: number; classes: string[]; format: string; inputShape: unknown[] };
    expect(doc).toMatchObject({ out, format: 'onnx', classes: ['cat', 'dog', 'bird'], inputShape: [null, 24, 24, 3] });
    expect(existsSync(out)).toBe(true);
    expect(r.stderr).toMatch(/wrote .*model\.onnx \(ONNX/);
    const session = await ort.InferenceSession.create(out);
    const images = tf.randomUniform([3, 24, 24, 3], 0, 255, 'float32', 4) as tf.Tensor4D;
    const result = await session.run({ images: new ort.Tensor('float32', new Float32Array(await images.data()), [3, 24, 24, 3]) });
    const got = result.probabilities!.data as Float32Array;
    const model = await loadModel(modelDir);
    const want = model.predictProbabilities(images);
    const expected = await want.data();
    for (let i = 0; i < expected.length; i++) expect(Math.abs(expected[i]! - got[i]!)).toBeLessThanOrEqual(1e-4);
    tf.dispose([images, want]);
    model.dispose();
    await session.release();
  });

  it('defaults: --format onnx, --out <model folder>.onnx beside the folder; prints the path', async () => {
    const r = await run(['export', join(modelDir, 'model.json'), '--quiet', '--backend', backend]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(join(work, 'my-model.onnx'));
    expect(readdirSync(work).filter((f) => f.endsWith('.onnx'))).toEqual(['my-model.onnx']);
    expect(r.stderr).toBe('');
    expect(defaultOut('a/b/')).toBe(join(process.cwd(), 'a', 'b.onnx'));
    expect(defaultOut('https://x.org/m/model.json')).toBeUndefined();
  });

  it('a missing model: exit 1 with the reason', async () => {
    const r = await run(['export', join(work, 'nope'), '--backend', backend, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nope/);
  });
});
