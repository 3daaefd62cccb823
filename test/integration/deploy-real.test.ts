/**
 * Deploying a model on the real MobileNetV2 0.35 (../shared/models): the head-only artefact of a cats-vs-dogs
 * model is under 20 KB and predicts identically after reload (the backbone found again by its path and checked by
 * its hash); uint8 and float16 artefacts are smaller and predict nearly the same. (The 0.35 model keeps its
 * BatchNorm layers, whose many small vectors stay float32, so its ratios are above the 1.0 model's 26% / 50%,
 * measured by `npm run bench:deploy`.)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { attachHead, env, fit, freeze, loadBackbone, loadModel, save } from '../../src/node/index';
import { CATS_DOGS, MODEL_035, decodeImages, hasShared, listImages } from '../helpers/real-data';

env.verbose = false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-deploy-real-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const folderBytes = (dir: string) => fs.readdirSync(dir).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);

describe.skipIf(!hasShared)('deploy on MobileNetV2 0.35', () => {
  it('head-only: under 20 KB, identical predictions after reload; quantized: smaller, nearly the same', async () => {
    const files = [...listImages(path.join(CATS_DOGS, 'train', 'cats'), 4), ...listImages(path.join(CATS_DOGS, 'train', 'dogs'), 4)];
    const xs = await decodeImages(files, 96); // 96 px keeps it quick on the cpu backend too
    const model = attachHead(freeze(await loadBackbone(MODEL_035, { inputSize: 96 })), { classes: ['cats', 'dogs'], seed: 1 });
    await fit(model, { xs, ys: files.map((f) => (f.includes('/cats/') ? 0 : 1)) }, { epochs: 3, seed: 1, learningRate: 1e-3 });
    const p = model.predictProbabilities(xs);
    const before = Array.from(await p.data());
    p.dispose();

    const head = path.join(tmp, 'head');
    await save(model, head, { backbone: 'reference' });
    expect(folderBytes(head)).toBeLessThan(20_000);
    const reloaded = await loadModel(head);
    const q = reloaded.predictProbabilities(xs);
    expect(Array.from(await q.data())).toEqual(before);
    q.dispose();
    expect(reloaded.card.backbone.source).toBe(model.backbone.source);
    expect(reloaded.inputShape).toEqual([96, 96, 3]);
    reloaded.dispose();

    const sizes: Record<string, number> = {};
    for (const quantize of ['float32', 'float16', 'uint8'] as const) {
      const dir = path.join(tmp, quantize);
      await save(model, dir, { quantize });
      sizes[quantize] = folderBytes(dir);
      const loaded = await loadModel(dir);
      const r = loaded.predictProbabilities(xs);
      const after = Array.from(await r.data());
      r.dispose();
      loaded.dispose();
      const worst = Math.max(...after.map((v, i) => Math.abs(v - before[i]!)));
      expect(worst, quantize).toBeLessThan(quantize === 'uint8' ? 0.15 : quantize === 'float16' ? 2e-3 : 1e-6);
    }
    expect(sizes.float16! / sizes.float32!).toBeLessThanOrEqual(0.6);
    expect(sizes.uint8! / sizes.float32!).toBeLessThanOrEqual(0.36);
    xs.dispose();
    model.dispose();
  }, 300_000);
});
