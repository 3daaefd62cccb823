/**
 * Checkpoints of fit, in-process: resume is bit-identical for every optimizer and with early stopping; a checkpoint
 * write that fails at any step (full disk, I/O error, crash between write and rename) leaves the previous checkpoint
 * intact and says so; damaged or foreign checkpoints are refused with clear errors; nothing leaks.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachHead, env, fit, freeze, loadBackbone, TransferError, type FitArgs, type FitHistory } from '../../src/index';
import '../../src/node/index'; // installs the Node services: checkpoint: { directory: path } needs env.checkpointStore
import { fileCheckpointStore } from '../../src/node/checkpoint-store';
import type { SaveStep } from '../../src/node/file-io';
import { decodeCheckpoint, memoryCheckpointStore } from '../../src/train/checkpoint';
import type { CheckpointStore } from '../../src/services';
import { stripes, tinyBackbone, weightValues } from '../helpers/tiny';

env.verbose = false;
let tmp = '';
let baseline = 0;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tfjs-transfer-ckpt-'));
  baseline = tf.memory().numTensors;
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
  expect(tf.memory().numTensors).toBe(baseline);
});

const BASE: FitArgs = { epochs: 5, batchSize: 8, learningRate: 0.01, seed: 3, validationSplit: 0.25, verbose: false };

/** A fresh model (same initial weights every time) trained with `options`; returns history and all weights. */
async function train(options: FitArgs, n = 32): Promise<{ history?: FitHistory; error?: unknown; weights: Map<string, Float32Array> }> {
  const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5, hiddenUnits: [8], dropout: 0.25 });
  const data = stripes(n);
  try {
    const history = await fit(model, data, options);
    return { history, weights: weightValues(model.model.layers) };
  } catch (error) {
    return { error, weights: weightValues(model.model.layers) };
  } finally {
    data.xs.dispose();
    model.dispose();
  }
}

const numbers = (h: FitHistory) => ({ loss: h.loss, accuracy: h.accuracy, valLoss: h.valLoss, valAccuracy: h.valAccuracy, bestEpoch: h.bestEpoch, epochs: h.epochs, stoppedEarly: h.stoppedEarly });

/** A store that throws (like a crash) right after writing the checkpoint of epoch `crashAfter`. */
function crashingAfter(store: CheckpointStore, crashAfter: number): CheckpointStore {
  let writes = 0;
  return {
    location: store.location,
    read: () => store.read(),
    async write(bytes) {
      await store.write(bytes);
      if (++writes === crashAfter) throw new Error('simulated crash');
    },
  };
}

describe('resume is bit-identical', () => {
  const cases: [string, FitArgs][] = [
    ['adam + validationSplit + dropout', {}],
    ['sgd', { optimizer: 'sgd', learningRate: 0.05 }],
    ['rmsprop + flip augmentation', { optimizer: 'rmsprop', augment: { flip: true, rotation: 0, zoom: 0, translation: 0, brightness: 0, contrast: 0 } }],
    ['early stopping with restoreBestWeights', { epochs: 12, learningRate: 0.08, earlyStopping: { patience: 2, monitor: 'valLoss' } }],
    ['augmentation that re-extracts every epoch', { epochs: 3, augment: { rotation: 0.05, zoom: 0.1, translation: 0, brightness: 0.1, contrast: 0 } }],
    ['checkpoint every 2 epochs', { epochs: 5 }],
  ];
  for (const [name, extra] of cases) {
    it(name, async () => {
      const options = { ...BASE, ...extra };
      const every = name.startsWith('checkpoint every') ? 2 : 1;
      const reference = await train(options);
      expect(reference.error).toBeUndefined();
      const store = memoryCheckpointStore();
      const crashAt = every === 2 ? 1 : 2; // the first write of every:2 is after epoch 2
      const first = await train({ ...options, checkpoint: { directory: crashingAfter(store, crashAt), every } });
      expect(first.error).toBeInstanceOf(TransferError);
      expect((first.error as TransferError).code).toBe('SAVE_FAILED');
      const resumed = await train({ ...options, checkpoint: { directory: store, every } });
      expect(resumed.error).toBeUndefined();
      expect(resumed.history!.resumedEpochs).toBe(2);
      expect(numbers(resumed.history!)).toEqual(numbers(reference.history!));
      expect(resumed.history!.initial).toEqual(reference.history!.initial);
      expect(resumed.weights).toEqual(reference.weights);
    });
  }

  it('takes the seed from the checkpoint when the resumed call gives none', async () => {
    const store = memoryCheckpointStore();
    const { seed: _seed, ...unseeded } = BASE;
    await train({ ...unseeded, checkpoint: { directory: crashingAfter(store, 2) } });
    const saved = await decodeCheckpoint(store.bytes!, 'memory');
    const reference = await train({ ...BASE, seed: saved.state.seed });
    const resumed = await train({ ...unseeded, checkpoint: { directory: store } });
    expect(numbers(resumed.history!)).toEqual(numbers(reference.history!));
    expect(resumed.weights).toEqual(reference.weights);
  });
});

describe('atomic checkpoint files', () => {
  const faults: { step?: SaveStep; failAfterBytes?: number; code: string }[] = [
    { failAfterBytes: 100, code: 'ENOSPC' }, // disk full in the middle of the file
    { failAfterBytes: 0, code: 'ENOSPC' },
    { step: 'write-file', code: 'EACCES' },
    { step: 'fsync', code: 'EIO' },
    { step: 'rename-into-place', code: 'EIO' }, // "crash" after the data is written, before the rename
    { step: 'mkdir', code: 'EROFS' },
  ];
  for (const fault of faults) {
    it(`keeps the previous checkpoint when writing fails (${fault.step ?? `after ${fault.failAfterBytes} bytes`}, ${fault.code})`, async () => {
      const dir = join(tmp, 'run');
      const good = fileCheckpointStore(dir);
      const failing = fileCheckpointStore(dir, { __faults: { failAtStep: fault.step, failAfterBytes: fault.failAfterBytes, code: fault.code } });
      let writes = 0;
      const store: CheckpointStore = { location: good.location, read: () => good.read(), write: (b) => (++writes <= 2 ? good.write(b) : failing.write(b)) };
      const run = await train({ ...BASE, checkpoint: { directory: store } });
      const error = run.error as TransferError;
      expect(error).toBeInstanceOf(TransferError);
      expect(error.code).toBe('SAVE_FAILED');
      expect(error.message).toMatch(/after epoch 3/);
      expect(error.message).toMatch(/previous checkpoint.*intact|previous checkpoint\.tfjst is intact/i);
      expect(error.message).toContain(fault.code);
      // The file on disk is the complete checkpoint of epoch 2, and no temporary file is left.
      expect((await readdir(dir)).sort()).toEqual(['checkpoint.tfjst']);
      expect((await decodeCheckpoint(new Uint8Array(await readFile(join(dir, 'checkpoint.tfjst'))), 'x')).state.epoch).toBe(2);
      // And it resumes to the uninterrupted result.
      const reference = await train(BASE);
      const resumed = await train({ ...BASE, checkpoint: { directory: dir } });
      expect(resumed.history!.resumedEpochs).toBe(2);
      expect(numbers(resumed.history!)).toEqual(numbers(reference.history!));
      expect(resumed.weights).toEqual(reference.weights);
    });
  }

  it('ignores and removes a partial temporary file left by a killed writer', async () => {
    const dir = join(tmp, 'run');
    await train({ ...BASE, epochs: 2, checkpoint: { directory: dir } });
    const bytes = await readFile(join(dir, 'checkpoint.tfjst'));
    await writeFile(join(dir, '.checkpoint.tfjst.999999999-deadbeef.tmp'), bytes.subarray(0, 50));
    const resumed = await train({ ...BASE, epochs: 3, checkpoint: { directory: dir } });
    expect(resumed.history!.resumedEpochs).toBe(2);
    expect(await readdir(dir)).toEqual(['checkpoint.tfjst']);
  });
});

describe('refusing checkpoints that do not fit', () => {
  it('names the options that differ from the checkpointed run', async () => {
    const store = memoryCheckpointStore();
    await train({ ...BASE, epochs: 2, checkpoint: { directory: store } });
    const other = await train({ ...BASE, batchSize: 4, learningRate: 0.02, checkpoint: { directory: store } });
    expect(other.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((other.error as Error).message).toMatch(/belongs to another run.*batchSize: 8 in the checkpoint, 4 now.*learningRate: 0.01 in the checkpoint, 0.02 now.*resume: false/s);
    const moreData = await train({ ...BASE, checkpoint: { directory: store } }, 36);
    expect((moreData.error as Error).message).toMatch(/images: 32 in the checkpoint, 36 now/);
    const fewer = await train({ ...BASE, epochs: 1, checkpoint: { directory: store } });
    expect((fewer.error as Error).message).toMatch(/2 epochs done, more than epochs: 1/);
    // resume: false starts over and overwrites it.
    const fresh = await train({ ...BASE, epochs: 1, batchSize: 4, checkpoint: { directory: store, resume: false } });
    expect(fresh.history!.resumedEpochs).toBe(0);
    expect((await decodeCheckpoint(store.bytes!, 'm')).state.epoch).toBe(1);
  });

  it('refuses damaged checkpoints with MODEL_INVALID and says what to do', async () => {
    const store = memoryCheckpointStore();
    await train({ ...BASE, epochs: 1, checkpoint: { directory: store } });
    const good = store.bytes!;
    const damaged: [string, Uint8Array, RegExp][] = [
      ['flipped payload byte', (() => { const b = good.slice(); b[b.length - 3]! ^= 0xff; return b; })(), /checksum/],
      ['truncated', good.slice(0, good.length - 10), /tensor data is \d+ bytes/],
      ['header cut', good.slice(0, 40), /header length/],
      ['not a checkpoint', new TextEncoder().encode('{"hello": "world"} and more bytes'), /does not start with TFJSTCK1/],
      ['empty', new Uint8Array(0), /too short/],
    ];
    for (const [name, bytes, reason] of damaged) {
      store.bytes = bytes;
      const run = await train({ ...BASE, checkpoint: { directory: store } });
      expect(run.error, name).toMatchObject({ code: 'MODEL_INVALID' });
      expect((run.error as Error).message, name).toMatch(reason);
      expect((run.error as Error).message, name).toMatch(/resume: false/);
    }
  });

  it('validates the checkpoint option', async () => {
    const bad: [unknown, RegExp][] = [
      [{ directory: '' }, /empty string/],
      [{ directory: 42 }, /folder path or a CheckpointStore/],
      [{ directory: memoryCheckpointStore(), every: 0 }, /every must be a positive integer/],
      [{ directory: memoryCheckpointStore(), resume: 'yes' }, /resume must be true or false/],
      ['runs/a', /checkpoint must be an object/],
    ];
    for (const [checkpoint, message] of bad) {
      const run = await train({ ...BASE, checkpoint: checkpoint as FitArgs['checkpoint'] });
      expect(run.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((run.error as Error).message).toMatch(message);
    }
  });
});
