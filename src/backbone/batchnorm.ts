/**
 * BatchNormalization layers of a backbone always run in inference mode.
 *
 * tfjs-layers 4.22's BatchNormalization normalises with batch statistics and overwrites its moving mean/variance
 * whenever it is called with `training: true`, whatever `trainable` says. Keras (TF2) instead runs a
 * non-trainable BN in inference mode, and the Keras fine-tuning guide keeps every BN of the base in inference mode
 * even when the base is unfrozen. We do the same, per layer instance: the layer's `call` ignores `training`.
 * Its gamma/beta still train when the layer is trainable; its moving statistics never change.
 * @internal
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

const PATCHED = Symbol.for('tfjs-transfer.inferenceOnly');

type Callable = tfl.layers.Layer & {
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
  [PATCHED]?: boolean;
};

/**
 * Whether a layer's output depends on `training` (it is stochastic or updates state while training).
 * @internal
 */
export function isTrainingDependent(layer: tfl.layers.Layer): boolean {
  if ((layer as Callable)[PATCHED]) return false;
  const cls = layer.getClassName();
  return (
    cls === 'BatchNormalization' ||
    /Dropout|GaussianNoise|^Random/.test(cls)
  );
}

/**
 * Makes every BatchNormalization layer in `layers` run in inference mode (idempotent). Returns how many.
 * @internal
 */
export function forceInferenceBatchNorm(layers: readonly tfl.layers.Layer[]): number {
  let n = 0;
  for (const layer of layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const l = layer as Callable;
    if (l[PATCHED]) continue;
    const original = l.call.bind(l);
    l.call = (inputs, kwargs) => original(inputs, { ...kwargs, training: false });
    l[PATCHED] = true;
    n++;
  }
  return n;
}
