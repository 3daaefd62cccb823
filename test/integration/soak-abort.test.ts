/**
 * Cancellation: an AbortSignal stops fit (in feature extraction and in training), evaluate and imageFolder batches
 * within one batch, rejects with an AbortError (code ABORTED), and leaves no tensor behind. Repeated, so a leak per
 * abort would show.
 */
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attachHead, env, evaluate, fit, freeze, fromTensors, loadBackbone, type TransferModel } from '../../src/index';
import { imageFolder } from '../../src/node/image-folder';
import { stripes, tinyBackbone, weightValues } from '../helpers/tiny';

const FULLRES = resolve(__dirname, '../../../shared/data/cats_vs_dogs_fullres');
const REPEAT = 5;
env.verbose = false;
let baseline = 0;
let model: TransferModel;
let data: { xs: tf.Tensor4D; ys: number[] };
let tmp = '';
beforeAll(async () => {
  model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['cats', 'dogs'], seed: 5, hiddenUnits: [8] });
  data = stripes(40);
  tmp = await mkdtemp(join(tmpdir(), 'tfjs-transfer-abort-'));
  for (const cls of ['cats', 'dogs']) {
    await mkdir(join(tmp, cls));
    for (let i = 1; i <= 12; i++) await copyFile(join(FULLRES, cls, `${cls.slice(0, 3)}.${4000 + i}.jpg`), join(tmp, cls, `${i}.jpg`));
  }
});
afterAll(async () => {
  data.xs.dispose();
  model.dispose();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  baseline = tf.memory().numTensors;
});
afterEach(() => {
  expect(tf.memory().numTensors).toBe(baseline);
});

const aborted = { name: 'AbortError', code: 'ABORTED' };

describe('AbortSignal', () => {
  it('stops fit during feature extraction, before any weight changes', async () => {
    const before = weightValues(model.model.layers);
    for (let i = 0; i < REPEAT; i++) {
      const controller = new AbortController();
      let progressAfterAbort = 0;
      const run = fit(model, fromTensors(data.xs, data.ys.map((y) => (y ? 'dogs' : 'cats'))), {
        epochs: 2, batchSize: 4, verbose: false, signal: controller.signal,
        onProgress: (p) => {
          if (controller.signal.aborted) progressAfterAbort++;
          if (p.stage === 'extract' && p.done >= 8) controller.abort('user');
        },
      });
      await expect(run).rejects.toMatchObject(aborted);
      expect(progressAfterAbort).toBeLessThanOrEqual(1); // within one batch
    }
    expect(weightValues(model.model.layers)).toEqual(before);
  });

  it('stops fit during training within one batch', async () => {
    for (let i = 0; i < REPEAT; i++) {
      const controller = new AbortController();
      let batchesAfterAbort = 0;
      const run = fit(model, data, {
        epochs: 5, batchSize: 4, verbose: false, signal: controller.signal, seed: i,
        callbacks: { onBatchEnd: (b) => { if (controller.signal.aborted) batchesAfterAbort++; if (b === 3 + i) controller.abort(); } },
      });
      await expect(run).rejects.toMatchObject(aborted);
      expect(batchesAfterAbort).toBe(0);
    }
  });

  it('stops evaluate within one batch', async () => {
    for (let i = 0; i < REPEAT; i++) {
      const controller = new AbortController();
      let served = 0;
      let servedAfterAbort = 0;
      const inner = fromTensors(data.xs, data.ys.map((y) => (y ? 'dogs' : 'cats')));
      const counting = {
        classes: inner.classes, size: inner.size, labels: inner.labels,
        batches: (o?: Parameters<typeof inner.batches>[0]) => ({
          async *[Symbol.asyncIterator]() {
            for await (const b of inner.batches(o)) {
              if (controller.signal.aborted) servedAfterAbort++;
              if (++served === 2) controller.abort('stop');
              yield b;
            }
          },
        }),
      };
      await expect(evaluate(model, counting, { batchSize: 4, signal: controller.signal })).rejects.toMatchObject(aborted);
      expect(servedAfterAbort).toBeLessThanOrEqual(1);
    }
  });

  it('an already-aborted signal rejects at once', async () => {
    const signal = AbortSignal.abort('early');
    await expect(fit(model, data, { signal, verbose: false })).rejects.toMatchObject(aborted);
    await expect(evaluate(model, data, { signal })).rejects.toMatchObject(aborted);
  });

  it('stops imageFolder batches within one batch and disposes prefetched ones', async () => {
    const folder = await imageFolder(tmp, { size: [32, 32], validationSplit: 0, progressBar: false });
    for (let i = 0; i < REPEAT; i++) {
      const controller = new AbortController();
      let got = 0;
      const consume = async () => {
        for await (const batch of folder.train.batches({ batchSize: 4, signal: controller.signal, prefetch: 3 })) {
          got++;
          tf.dispose([batch.xs, batch.ys]);
          if (got === 2) controller.abort('enough');
        }
      };
      await expect(consume()).rejects.toMatchObject(aborted);
      expect(got).toBe(2);
    }
    // And fit over the folder, aborted during extraction (decoding runs ahead of it).
    const controller = new AbortController();
    const run = fit(model, folder.train, {
      epochs: 1, batchSize: 4, verbose: false, signal: controller.signal,
      onProgress: (p) => { if (p.done >= 4) controller.abort(); },
    });
    await expect(run).rejects.toMatchObject(aborted);
  });
});
