/**
 * The one-pass Adam update (`src/train/fused-adam.ts`) against tfjs-core's own `AdamOptimizer.applyGradients`:
 * the same weights, moments and iteration count to the last bit, step after step, mixed with plain steps, and
 * nothing left behind.
 * On wasm the fused kernel runs (SIMD, and the JavaScript loop with SIMD off); on cpu the optimizer's own method.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { applyGradients } from '../../src/train/fused-adam';
import { FUSED_ADAM } from '../../src/train/wasm-heap-kernels';
import { registerWasmTrainingKernels } from '../../src/train/wasm-kernels';
import { simdSwitch } from '../../src/train/wasm-simd';

/** Shapes with lane counts that are and are not multiples of 4 (SIMD groups and the JavaScript rest). */
const SHAPES = [[3, 3, 5, 7], [35], [4], [1], [16, 9]];

function variables(tag: string): tf.Variable[] {
  return tf.tidy(() => SHAPES.map((s, i) => tf.variable(tf.randomNormal(s, 0, 1, 'float32', 10 + i), true, `fused_adam_${tag}_${i}`)));
}

/** Gradients for `vars` at step `step` (the same for every run: seeds from 1, as tfjs draws afresh for seed 0). */
function gradients(vars: tf.Variable[], step: number): tf.NamedTensorMap {
  return tf.tidy(() => {
    const out: tf.NamedTensorMap = {};
    vars.forEach((v, i) => (out[v.name] = tf.mul(tf.randomNormal(v.shape, 0, 1, 'float32', 1 + 100 * step + i), 10 ** (i - 2))));
    return out;
  });
}

async function state(o: tf.Optimizer, vars: tf.Variable[]): Promise<number[][]> {
  const weights = await o.getWeights();
  const out = [...vars.map((v) => Array.from(v.dataSync())), ...weights.map((w) => Array.from(w.tensor.dataSync()))];
  weights[0]!.tensor.dispose(); // the iteration count, a new scalar (the rest are the optimizer's own variables)
  return out;
}

/** Runs `steps` updates on fresh variables: `fused` picks, per step, whether the fused path is asked for. */
async function run(tag: string, steps: number, fused: (step: number) => boolean, make: () => tf.Optimizer = () => tf.train.adam(0.01)) {
  const vars = variables(tag);
  const o = make();
  for (let s = 0; s < steps; s++) {
    const g = gradients(vars, s);
    if (fused(s)) applyGradients(o, g);
    else o.applyGradients(g);
    tf.dispose(Object.values(g));
  }
  const out = { values: await state(o, vars), iterations: o.iterations };
  o.dispose();
  tf.dispose(vars);
  return out;
}

describe('fused Adam update', () => {
  it('gives what tfjs-core\'s Adam gives: weights, moments, iterations; mixed with its own steps; no tensor left', async () => {
    registerWasmTrainingKernels();
    if (tf.getBackend() === 'wasm') expect(tf.getKernel(FUSED_ADAM, 'wasm')).toBeDefined();
    const before = tf.memory().numTensors;
    const stock = await run('stock', 6, () => false);
    const fused = await run('fused', 6, () => true);
    const mixed = await run('mixed', 6, (s) => s % 2 === 0);
    simdSwitch.enabled = false;
    const plain = await run('plain', 6, () => true);
    simdSwitch.enabled = true;
    // The same float32 operations in the same order: equal to the last bit, on SIMD and in the JavaScript loop.
    for (const other of [fused, mixed, plain]) {
      expect(other.iterations).toBe(stock.iterations);
      expect(other.values).toEqual(stock.values);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('leaves a subclass of AdamOptimizer, and other optimizers, to their own applyGradients', async () => {
    class Clipped extends tf.AdamOptimizer {
      calls = 0;
      override applyGradients(g: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
        this.calls++;
        super.applyGradients(g);
      }
    }
    const vars = variables('sub');
    const sub = new Clipped(0.01, 0.9, 0.999);
    const sgd = tf.train.sgd(0.1);
    const spy = { calls: 0 };
    const own = sgd.applyGradients.bind(sgd);
    sgd.applyGradients = (g) => (spy.calls++, own(g));
    const g = gradients(vars, 0);
    applyGradients(sub, g);
    applyGradients(sgd, g);
    expect(sub.calls).toBe(1);
    expect(spy.calls).toBe(1);
    tf.dispose(Object.values(g));
    sub.dispose();
    sgd.dispose();
    tf.dispose(vars);
  });
});
