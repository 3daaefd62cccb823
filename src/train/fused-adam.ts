/**
 * Adam's update in one pass on the wasm backend.
 *
 * tfjs-core's `AdamOptimizer.applyGradients` runs about fourteen kernels per weight (the two moments, their bias
 * corrections, the square root, the step, three assigns), each a full pass over the weight with a temporary: about
 * 28 ms for the 1.9 M trainable parameters above `block_11_expand` on this machine's wasm. On the data-parallel
 * path that time is spent on the calling thread while every worker waits for the new weights. Here the same
 * operations, in the same order and float32 roundings, run as one pass per weight (the {@link FUSED_ADAM} heap
 * kernel of `wasm-heap-kernels.ts`, registered with the others), writing the new weight and moments at once.
 *
 * The optimizer's own state is used and updated: its moment variables (created as tfjs creates them, same names),
 * its `accBeta1` / `accBeta2` and its iteration count, so `getWeights`, `setWeights`, checkpoints and a later plain
 * `applyGradients` carry on exactly. Only a plain `tf.AdamOptimizer` (not a subclass, which may change the update)
 * on the wasm backend takes this path; anything else, or a tfjs whose optimizer does not have the fields read
 * here, runs the optimizer's own `applyGradients`.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { engine, getKernel } from '@tensorflow/tfjs-core';
import type { NamedAttrMap } from '@tensorflow/tfjs-core';
import { FUSED_ADAM, type FusedAdamAttrs } from './wasm-heap-kernels';

const WASM = 'wasm';

/** Set `enabled` to `false` to run tfjs-core's own update (the benchmark's "before" profile). @internal */
export const fusedAdamSwitch = { enabled: true };

/** What this module reads and writes of a `tf.AdamOptimizer` (its private fields in tfjs-core 4.x). */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  accumulatedSecondMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  incrementIterations(): void;
}

function adamInternals(o: tf.Optimizer): AdamInternals | undefined {
  if (o.constructor !== tf.AdamOptimizer) return undefined;
  const a = o as unknown as Partial<AdamInternals>;
  const ok =
    typeof a.learningRate === 'number' && typeof a.beta1 === 'number' && typeof a.beta2 === 'number' && typeof a.epsilon === 'number' &&
    a.accBeta1 instanceof tf.Variable && a.accBeta2 instanceof tf.Variable &&
    Array.isArray(a.accumulatedFirstMoment) && Array.isArray(a.accumulatedSecondMoment) && typeof a.incrementIterations === 'function';
  return ok ? (a as AdamInternals) : undefined;
}

/**
 * `optimizer.applyGradients(grads)`, in one pass per weight when `optimizer` is a plain `tf.AdamOptimizer` on the
 * wasm backend (the same update to the last bit (tested), and the optimizer's state kept as its own method keeps it);
 * the optimizer's own method otherwise. `grads` maps variable names to gradients, as `applyGradients` takes them.
 * @internal
 */
export function applyGradients(optimizer: tf.Optimizer, grads: tf.NamedTensorMap): void {
  const adam = fusedAdamSwitch.enabled && tf.getBackend() === WASM ? adamInternals(optimizer) : undefined;
  const variables = engine().registeredVariables;
  const names = Object.keys(grads);
  const fusable = (name: string, i: number) => {
    const value = variables[name];
    const g = grads[name];
    // Moments restored by setWeights must match too (the kernel reads all four arrays with one length).
    const moments = [adam?.accumulatedFirstMoment[i]?.variable, adam?.accumulatedSecondMoment[i]?.variable];
    return (
      value != null && value.dtype === 'float32' && (g == null || (g.dtype === 'float32' && g.size === value.size)) &&
      moments.every((m) => m == null || (m.dtype === 'float32' && m.size === value.size))
    );
  };
  if (!adam || getKernel(FUSED_ADAM, WASM) == null || !names.every(fusable)) {
    optimizer.applyGradients(grads);
    return;
  }
  tf.tidy(() => {
    // As tfjs: 1 − accBeta in float32 (read once per step: two scalars).
    const [a1, a2] = [tf.sub(1, adam.accBeta1), tf.sub(1, adam.accBeta2)].map((t) => t.dataSync()[0]!);
    names.forEach((name, i) => {
      const value = variables[name]!;
      adam.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      adam.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      const gradient = grads[name];
      if (gradient == null) return;
      const m = adam.accumulatedFirstMoment[i]!.variable;
      const v = adam.accumulatedSecondMoment[i]!.variable;
      const attrs: FusedAdamAttrs = { beta1: adam.beta1, beta2: adam.beta2, a1: a1!, a2: a2!, epsilon: adam.epsilon, learningRate: adam.learningRate };
      const [w2, m2, v2] = engine().runKernel(FUSED_ADAM, { w: value, m, v, g: gradient }, attrs as unknown as NamedAttrMap) as tf.Tensor[];
      m.assign(m2!);
      v.assign(v2!);
      value.assign(w2!);
    });
    adam.accBeta1.assign(tf.mul(adam.accBeta1, adam.beta1));
    adam.accBeta2.assign(tf.mul(adam.accBeta2, adam.beta2));
  });
  adam.incrementIterations();
}
