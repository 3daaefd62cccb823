/**
 * The guides' examples (examples/guides/*.ts), run on small data so the suite proves every guide's code works:
 * the 0.35 MobileNetV2 at 96 px on a few images from ../shared, or tiny models built here. On the cpu project
 * only the cheapest run (cpu is ~30x slower than wasm on convolutions).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { attachHead, env, fit, freeze, fromTensors, loadBackbone, save } from '../../src/node/index';
import { CATS_DOGS, MODEL_035, hasShared } from '../helpers/real-data';
import { stripes, tinyBackbone } from '../helpers/tiny';
import { main as backends } from '../../examples/guides/backends';
import { main as customBackbone } from '../../examples/guides/custom-backbone';
import { startService } from '../../examples/guides/deploy-service';
import { main as fineTuning } from '../../examples/guides/fine-tuning';
import { main as gettingStarted } from '../../examples/guides/getting-started';
import { main as offline } from '../../examples/guides/offline-and-caching';
import { main as yourOwnImages } from '../../examples/guides/your-own-images';

const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? tf.getBackend();
const full = backend !== 'cpu';
const withShared = full && hasShared ? test : test.skip;

let verbose: boolean;
beforeAll(() => {
  verbose = env.verbose;
  env.verbose = false;
});
afterAll(() => {
  env.verbose = verbose;
});

/** Runs `fn` and checks that it leaves no tensor behind. */
async function noLeak<T>(fn: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await fn();
  expect(tf.memory().numTensors).toBe(before);
  return result;
}

describe('guide examples', () => {
  test('your own images: bad files are skipped with reasons, the report finds the leak and the empty class', async () => {
    const result = await noLeak(() => yourOwnImages({ verbose: false, size: 32 }));
    expect(result.classes).toEqual(['bird', 'cat', 'dog']);
    expect(result.counts).toEqual({ train: 14, validation: 6 });
    expect(result.decoded).toBe(14);
    const reasons = result.skipped.filter((s) => !s.ignored).map((s) => s.source.split('/').pop());
    expect(reasons.sort()).toEqual(['cut-off.jpg', 'not-a-photo.jpg', 'notes.txt']);
    expect(result.skipped.filter((s) => s.ignored).length).toBeGreaterThanOrEqual(1);
    expect(result.report.duplicates).toHaveLength(1);
    expect(result.report.warnings.some((w) => /bird/.test(w))).toBe(true);
  });

  test('custom backbone: a layers model, a hand-written graph model (path and IOHandler) and a function', async () => {
    const result = await noLeak(() => customBackbone({ verbose: false, size: full ? 48 : 24, epochs: full ? 30 : 20 }));
    expect(result.layers.featureShape).toHaveLength(3);
    expect(result.graph.featureShape).toEqual([16]);
    expect(result.graphFromHandler.featureShape).toHaveLength(3);
    expect(result.function.featureShape).toEqual([192]);
    for (const key of ['layers', 'graph', 'graphFromHandler', 'function'] as const) expect(result[key].accuracy).toBeGreaterThanOrEqual(0.75);
    expect(result.graphReloadSame).toBe(true);
  });

  test('deploy: the HTTP service loads a saved model and classifies a POSTed image', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tt-deploy-'));
    try {
      const data = stripes(16, 32);
      const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true, name: 'tiny' })), { classes: ['red', 'blue'], seed: 1 });
      await fit(model, fromTensors(data.xs, data.ys.map((y) => (y ? 'blue' : 'red')), { classes: ['red', 'blue'] }), { epochs: 20, learningRate: 1e-2, seed: 1, verbose: false });
      await save(model, join(dir, 'model'));
      model.dispose();
      data.xs.dispose();

      const service = await startService({ model: join(dir, 'model'), port: 0, host: '127.0.0.1' });
      try {
        expect(service.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        const health = await (await fetch(`${service.url}/health`)).json();
        expect(health).toMatchObject({ status: 'ok', classes: ['red', 'blue'], inputShape: [32, 32, 3] });

        const red = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 90, b: 70 } } }).jpeg().toBuffer();
        const response = await fetch(`${service.url}/predict`, { method: 'POST', body: red, headers: { 'content-type': 'image/jpeg' } });
        expect(response.status).toBe(200);
        const body = (await response.json()) as { label: string; probability: number; probabilities: Record<string, number> };
        expect(['red', 'blue']).toContain(body.label);
        expect(body.probability).toBeGreaterThanOrEqual(0.5);
        expect(body.probabilities.red! + body.probabilities.blue!).toBeCloseTo(1, 5);

        const bad = await fetch(`${service.url}/predict`, { method: 'POST', body: 'not an image' });
        expect(bad.status).toBe(400);
        expect(((await bad.json()) as { error: string }).error).toMatch(/image/i);
        expect((await fetch(`${service.url}/nothing`)).status).toBe(404);
      } finally {
        await service.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('backends: measures extraction and head training on the current backend', async () => {
    const results = await noLeak(async () => {
      const model = tinyBackbone(32); // the caller's model stays the caller's: dispose it when done
      try {
        return await backends({ backends: [tf.getBackend()], model, inputSize: 32, images: 8, batchSize: 8 });
      } finally {
        model.dispose();
      }
    });
    expect(results).toHaveLength(1);
    expect(results[0]!.backend).toBe(tf.getBackend());
    expect(results[0]!.imagesPerSecond).toBeGreaterThan(0);
  });

  withShared('getting started: the five steps, then transferLearn(), on a few real images', async () => {
    const result = await noLeak(() => gettingStarted({ backbone: MODEL_035, inputSize: 96, perClass: 4, epochs: 2, verbose: false, data: CATS_DOGS }));
    expect(result.stepByStep).toBeGreaterThanOrEqual(0);
    expect(result.oneCall).toBeGreaterThanOrEqual(0);
    expect(result.reloaded.sameAsOriginal).toBe(true);
  });

  withShared('fine-tuning: the top block trains, BatchNorm statistics do not move', async () => {
    const result = await noLeak(() => fineTuning({ backbone: MODEL_035, inputSize: 96, perClass: 4, headEpochs: 2, fineTuneEpochs: 1, verbose: false, data: CATS_DOGS }));
    expect(result.trained.layers).toContain('block_16_expand');
    expect(result.trained.layers).not.toContain('block_15_expand');
    expect(result.boundary).toEqual(['block_15_add']);
    expect(result.batchNormUnchanged).toBe(true);
  });

  withShared('offline and caching: refused without network, loaded through a mirror, then from a disk cache', async () => {
    const result = await noLeak(() => offline({ inputSize: 96, verbose: false }));
    expect(result.refusedWith).toBe('NETWORK');
    expect(result.mirrored).toEqual([3, 3, 1280]);
    expect(result.cachedFiles).toContain('model.json');
    expect(result.fromCache).toEqual([3, 3, 1280]);
  });
});
