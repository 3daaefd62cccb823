/**
 * fit as stages and callbacks: the six hooks in order, one callback or a list, model.stopTraining, yielding to
 * the event loop (an abort from a timer stops training), a second concurrent fit refused, options that are
 * `undefined` take their defaults, early stopping said only when it stopped early, the validation activations
 * handed to evaluate explicitly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachHead, env, evaluate, fit, freeze, loadBackbone, predict, type FitArgs, type TransferModel } from '../../src/index';
import type { FitCallback } from '../../src/train/callbacks';
import { createYielder } from '../../src/train/yield';
import { withDefaults } from '../../src/util/args';
import { stripes, tinyBackbone, weightValues } from '../helpers/tiny';

env.verbose = false;
let baseline = 0;
beforeEach(() => {
  baseline = tf.memory().numTensors;
});
afterEach(() => {
  expect(tf.memory().numTensors).toBe(baseline);
});

async function tinyModel(): Promise<TransferModel> {
  return attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5, hiddenUnits: [8], dropout: 0.2 });
}

async function withModel<T>(fn: (model: TransferModel, data: ReturnType<typeof stripes>) => Promise<T>, n = 24): Promise<T> {
  const model = await tinyModel();
  const data = stripes(n);
  try {
    return await fn(model, data);
  } finally {
    data.xs.dispose();
    model.dispose();
  }
}

describe('callbacks', () => {
  it('runs the six hooks in tfjs-layers order, for one callback or a list', async () => {
    const events: string[] = [];
    const recorder = (tag: string): FitCallback => ({
      onTrainBegin: () => void events.push(`${tag}:trainBegin`),
      onEpochBegin: (e) => void events.push(`${tag}:epochBegin ${e}`),
      onBatchBegin: (b) => void events.push(`${tag}:batchBegin ${b}`),
      onBatchEnd: (b) => void events.push(`${tag}:batchEnd ${b}`),
      onEpochEnd: (e) => void events.push(`${tag}:epochEnd ${e}`),
      onTrainEnd: () => void events.push(`${tag}:trainEnd`),
    });
    await withModel(async (model, data) => {
      await fit(model, data, { epochs: 2, batchSize: 12, seed: 1, callbacks: recorder('a') });
      expect(events).toEqual([
        'a:trainBegin',
        'a:epochBegin 0', 'a:batchBegin 0', 'a:batchEnd 0', 'a:batchBegin 1', 'a:batchEnd 1', 'a:epochEnd 0',
        'a:epochBegin 1', 'a:batchBegin 2', 'a:batchEnd 2', 'a:batchBegin 3', 'a:batchEnd 3', 'a:epochEnd 1',
        'a:trainEnd',
      ]);
      events.length = 0;
      await fit(model, data, { epochs: 1, batchSize: 24, seed: 1, callbacks: [recorder('a'), recorder('b')] });
      expect(events.slice(0, 4)).toEqual(['a:trainBegin', 'b:trainBegin', 'a:epochBegin 0', 'b:epochBegin 0']);
    });
  });

  it('model.stopTraining set by a callback ends training after that batch, without an error', async () => {
    await withModel(async (model, data) => {
      const history = await fit(model, data, {
        epochs: 10, batchSize: 6, seed: 1,
        callbacks: { onBatchEnd: (b) => { if (b === 5) model.stopTraining = true; } },
      });
      expect(history.epochs).toBe(2); // batches 0-3 are epoch 1, 4-5 epoch 2
      expect(history.stoppedEarly).toBe(false);
      expect(model.stopTraining).toBe(false); // reset for the next fit
    });
  });
});

describe('the event loop', () => {
  it('an abort from a timer (not a callback) stops fit promptly with an AbortError; no tensor leaks', async () => {
    await withModel(async (model, data) => {
      const controller = new AbortController();
      const t0 = Date.now();
      setTimeout(() => controller.abort(), 50);
      const run = fit(model, data, { epochs: 100000, batchSize: 4, seed: 1, signal: controller.signal });
      await expect(run).rejects.toMatchObject({ name: 'AbortError' });
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(model.isTraining).toBe(false);
    });
  });

  it('yieldEvery: batch and epoch schedules give the event loop a turn; never does not', async () => {
    let turns = 0;
    const frame = async () => void turns++;
    const batch = createYielder('batch', frame);
    await batch.batchEnd();
    await batch.batchEnd();
    await batch.epochEnd();
    expect(turns).toBe(2);
    turns = 0;
    const epoch = createYielder('epoch', frame);
    await epoch.batchEnd();
    await epoch.epochEnd();
    expect(turns).toBe(1);
    turns = 0;
    const never = createYielder('never', frame);
    await never.batchEnd();
    await never.epochEnd();
    expect(turns).toBe(0);
    const auto = createYielder('auto', frame);
    await auto.batchEnd(); // less than 125 ms since it was made
    expect(turns).toBe(0);
    const zero = createYielder(0, frame);
    await zero.batchEnd();
    expect(turns).toBe(1);
  });

  it('refuses a second concurrent fit of the same model with a clear TransferError', async () => {
    await withModel(async (model, data) => {
      const first = fit(model, data, { epochs: 3, batchSize: 8, seed: 1 });
      await expect(fit(model, data, { epochs: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/already training/) });
      await first;
      await fit(model, data, { epochs: 1, seed: 1 }); // fine once the first has finished
    });
  });
});

describe('options that are undefined take their defaults', () => {
  const FIT_KEYS: (keyof FitArgs)[] = [
    'epochs', 'batchSize', 'learningRate', 'optimizer', 'validationData', 'validationSplit', 'classWeight', 'seed', 'shuffle', 'augment',
    'earlyStopping', 'callbacks', 'signal', 'onProgress', 'verbose', 'cache', 'extractBatchSize', 'checkpoint', 'gradientNormWarning',
    'yieldEvery', 'keepValidationActivations', 'unknown', 'activationStorage', 'activationMemoryBudget',
  ];
  it('fit, evaluate and predict give the same results with every option undefined as with none', async () => {
    const allUndefined = Object.fromEntries(FIT_KEYS.map((k) => [k, undefined])) as FitArgs;
    const run = (options: FitArgs, evalOptions: object, predictOptions: object) =>
      withModel(async (model, data) => {
        const history = await fit(model, data, { ...options, seed: 3, epochs: 2 });
        const evaluation = await evaluate(model, data, evalOptions);
        const predictions = await predict(model, data.xs, predictOptions);
        return { history: { ...history, timing: undefined }, evaluation, predictions, weights: weightValues(model.model.layers) };
      });
    const omitted = await run({}, {}, {});
    const undef = await run(
      { ...allUndefined, seed: undefined },
      {
        batchSize: undefined, maxMisclassified: undefined, maxTopLosses: undefined, maxConfusedPairs: undefined, boundaryImages: undefined,
        explain: undefined, signal: undefined, activations: undefined, unknown: undefined, tta: undefined,
      },
      { batchSize: undefined, signal: undefined, tta: undefined },
    );
    expect(undef).toEqual(omitted);
    // null also means the default, as in tfjs-layers.
    const nulls = await run({ batchSize: null, learningRate: null } as never, { batchSize: null } as never, { batchSize: null } as never);
    expect(nulls).toEqual(omitted);
  });

  it('withDefaults skips undefined and null and changes neither argument', () => {
    const defaults = Object.freeze({ a: 1, b: 2 });
    const args = { a: undefined, b: null, c: 3 };
    expect(withDefaults(args, defaults)).toEqual({ a: 1, b: 2, c: 3 });
    expect(args).toEqual({ a: undefined, b: null, c: 3 });
  });
});

describe('logs', () => {
  it('"before training" comes before epoch 1; early stopping is said (and stoppedEarly true) only when it stopped before the last epoch', async () => {
    const logs: string[] = [];
    const logger = env.logger;
    env.logger = (m) => logs.push(m);
    try {
      await withModel(async (model, data) => {
        // patience 0: out of patience at the first epoch without improvement; with epochs: 1, that is the last one.
        const h1 = await fit(model, data, { epochs: 1, batchSize: 8, seed: 1, validationSplit: 0.25, earlyStopping: { patience: 0 }, verbose: true, learningRate: 1e-9 });
        const before = logs.findIndex((l) => /before training: val_loss/.test(l));
        const epoch1 = logs.findIndex((l) => /^epoch 1\/1/.test(l));
        expect(before).toBeGreaterThanOrEqual(0);
        expect(before).toBeLessThan(epoch1);
        expect(h1.stoppedEarly).toBe(false);
        logs.length = 0;
        // A learning rate so small nothing improves by minDelta: stops after epoch 2 of 20.
        const h2 = await fit(model, data, { epochs: 20, batchSize: 8, seed: 1, validationSplit: 0.25, earlyStopping: { patience: 1, minDelta: 10 }, verbose: true });
        expect(h2.epochs).toBe(2);
        expect(h2.stoppedEarly).toBe(true);
        expect(logs.filter((l) => /early stopping after epoch 2 of 20/.test(l))).toHaveLength(1);
        logs.length = 0;
        // All epochs ran although patience ran out on the last one: not an early stop.
        const h3 = await fit(model, data, { epochs: 2, batchSize: 8, seed: 1, validationSplit: 0.25, earlyStopping: { patience: 1, minDelta: 10 }, verbose: true });
        expect(h3.epochs).toBe(2);
        expect(h3.stoppedEarly).toBe(false);
        expect(logs.some((l) => /early stopping/.test(l))).toBe(false);
      });
    } finally {
      env.logger = logger;
    }
  });
});

describe('validation activations handed to evaluate', () => {
  it('are kept only when asked, give the same evaluation, and are refused for other data or after freeze', async () => {
    await withModel(async (model, data) => {
      const val = stripes(8, 32, 11);
      try {
        const plain = await fit(model, data, { epochs: 1, seed: 1, validationData: val });
        expect(plain.validationActivations).toBeUndefined();
        const kept = await fit(model, data, { epochs: 1, seed: 1, validationData: val, keepValidationActivations: true });
        const handle = kept.validationActivations!;
        expect(handle.count).toBe(8);
        const fresh = await evaluate(model, val);
        const reused = await evaluate(model, val, { activations: handle });
        expect(reused).toEqual(fresh);
        await expect(evaluate(model, data, { activations: handle })).rejects.toThrow(/other data/);
        freeze(model, { trainableFrom: 'block_1_project' });
        await expect(evaluate(model, val, { activations: handle })).rejects.toThrow(/freeze boundary/);
        handle.dispose();
        await expect(evaluate(model, val, { activations: handle })).rejects.toThrow(/disposed/);
      } finally {
        val.xs.dispose();
      }
    });
  });
});
