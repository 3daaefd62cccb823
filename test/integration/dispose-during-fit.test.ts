/**
 * Issue 17 item 8: `dispose()` while `fit` trains gave a raw TypeError ("reading 'backend'") or "Layer ... is
 * already disposed" and leaked tensors. Now fit stops before its next batch, rejects with ABORTED, and the model
 * is freed when fit ends; nothing leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attachHead, fit, freeze, loadBackbone, TransferError } from '../../src/index';
import { stripes, tinyBackbone } from '../helpers/tiny';

describe('dispose() during fit', () => {
  it('stops training, rejects with ABORTED, frees the model and leaks no tensor (dispose from a timer)', async () => {
    const base = tf.memory().numTensors;
    const data = stripes(32, 32, 3);
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['a', 'b'], seed: 1 });
    let batches = 0;
    let disposedAt = -1;
    const timer = setTimeout(() => {
      disposedAt = batches;
      model.dispose();
    }, 50);
    const run = fit(model, data, { epochs: 100_000, batchSize: 2, seed: 1, verbose: false, callbacks: { onBatchEnd: () => void batches++ } });
    const error = await run.then(() => undefined, (e: unknown) => e);
    clearTimeout(timer);
    expect(error).toBeInstanceOf(TransferError);
    expect((error as TransferError).code).toBe('ABORTED');
    expect((error as Error).message).toMatch(/disposed while it was training/);
    expect(disposedAt).toBeGreaterThanOrEqual(0);
    expect(batches - disposedAt).toBeLessThanOrEqual(1); // stopped before the next batch
    expect(model.isDisposed).toBe(true);
    expect(model.isTraining).toBe(false);
    data.xs.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('dispose() when no fit runs frees at once, as before', async () => {
    const base = tf.memory().numTensors;
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['a', 'b'], seed: 1 });
    model.dispose();
    expect(model.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(base);
  });
});
