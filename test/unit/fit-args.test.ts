/**
 * The stages of fit, one by one: argument resolution against FIT_DEFAULTS, and the built-in early-stopping and
 * numerical-guard callbacks on a hand-made state.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attachHead, freeze, loadBackbone } from '../../src/index';
import { earlyStopping, restoreBestWeights } from '../../src/train/callbacks/early-stopping';
import { numericalGuard } from '../../src/train/callbacks/numerical-guard';
import { EARLY_STOPPING_DEFAULTS, FIT_DEFAULTS, resolveFitArgs } from '../../src/train/fit-args';
import { snapshot, type FitState } from '../../src/train/fit-state';
import { emptyHistory } from '../../src/train/history';
import { tinyBackbone } from '../helpers/tiny';

async function model() {
  return attachHead(freeze(await loadBackbone(tinyBackbone(16), { takeOwnership: true })), { classes: ['l', 'r'], seed: 1 });
}

describe('resolveFitArgs', () => {
  it('fills every default from the frozen FIT_DEFAULTS, skipping undefined and null', async () => {
    const m = await model();
    expect(Object.isFrozen(FIT_DEFAULTS)).toBe(true);
    expect(Object.isFrozen(EARLY_STOPPING_DEFAULTS)).toBe(true);
    const r = resolveFitArgs(m, { epochs: undefined, batchSize: null as never, earlyStopping: { patience: undefined }, callbacks: { onEpochEnd: () => undefined } });
    expect(r).toMatchObject({ epochs: 10, batchSize: 32, extractBatchSize: 32, learningRate: 1e-4, optimizer: 'adam', shuffle: true, yieldEvery: 'auto', gradientNormWarning: 1000, keepValidationActivations: false });
    expect(r.earlyStopping).toEqual({ monitor: undefined, patience: 3, minDelta: 0, restoreBestWeights: true });
    expect(r.callbacks).toHaveLength(1);
    expect(resolveFitArgs(m, { callbacks: [{}, {}] }).callbacks).toHaveLength(2);
    expect(resolveFitArgs(m, { batchSize: 8 }).extractBatchSize).toBe(8);
    expect(() => resolveFitArgs(m, { yieldEvery: 'sometimes' as never })).toThrow(/yieldEvery must be/);
    expect(() => resolveFitArgs(m, { callbacks: [{ onBatchEnd: 1 as never }] })).toThrow(/callbacks\[0\]\.onBatchEnd must be a function/);
    m.dispose();
  });
});

function fakeState(vars: tf.Variable[], overrides: Partial<FitState['args']> = {}): FitState {
  const history = emptyHistory({ layers: [], parameters: 0 }, { layers: [], shapes: [] });
  const stopper = { stopTraining: false };
  return {
    model: stopper as never, split: {} as never, seed: 1, rng: {} as never, vars, optimizer: {} as never, history, t0: 0, extractMs: 0,
    args: { epochs: 10, learningRate: 0.1, givenOptimizer: false, gradientNormWarning: 1000, earlyStopping: undefined, ...overrides } as FitState['args'],
    monitor: 'loss', startEpoch: 0, batchCounter: 0, best: undefined, sinceBest: 0, startWeights: snapshot(vars), bestWeights: undefined,
  };
}

describe('built-in callbacks', () => {
  it('early stopping: tracks the best epoch, stops after patience, restores the best weights at the end', async () => {
    const v = tf.variable(tf.scalar(1));
    const state = fakeState([v], { earlyStopping: { monitor: 'loss', patience: 2, minDelta: 0, restoreBestWeights: true } });
    const cb = earlyStopping(state, () => undefined);
    const losses = [1, 0.5, 0.6, 0.7, 0.4];
    for (let e = 0; e < losses.length && !(state.model as { stopTraining: boolean }).stopTraining; e++) {
      v.assign(tf.scalar(e));
      state.history.epochs = e + 1;
      await cb.onEpochEnd!(e, { loss: losses[e]!, accuracy: 0 });
    }
    expect(state.history.bestEpoch).toBe(1);
    expect(state.history.stoppedEarly).toBe(true);
    expect(state.history.epochs).toBe(4);
    restoreBestWeights(state);
    expect(v.dataSync()[0]).toBe(1); // the weights of epoch 1
    tf.dispose([v, ...state.startWeights.values, ...(state.bestWeights?.values ?? [])]);
  });

  it('numerical guard: a NaN loss restores the weights from before and throws NUMERICAL_FAULT naming epoch and batch', async () => {
    const v = tf.variable(tf.scalar(3));
    const state = fakeState([v]);
    const guard = numericalGuard(state);
    guard.onEpochBegin!(0);
    guard.onBatchEnd!(0, { loss: 0.5, accuracy: 1, size: 4, gradientNorm: 1 });
    v.assign(tf.scalar(7));
    expect(() => guard.onBatchEnd!(1, { loss: NaN, accuracy: 0, size: 4, gradientNorm: 1 })).toThrow(/loss became NaN at epoch 1, batch 2.*before this fit were restored\. Lower the learning rate \(now 0\.1\)/);
    expect(v.dataSync()[0]).toBe(3);
    tf.dispose([v, ...state.startWeights.values]);
  });
});
