/** Small models built in tests: a MobileNetV2-shaped network (conv, BN, ReLU6, depthwise, residual add). */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageDataset } from '../../src/types';

/**
 * A tiny fully convolutional backbone with BatchNorm and a residual block, declared at `size`; with
 * `batchNorm: false` the same without its BatchNorm layers (as a backbone whose BatchNorm is folded, like the shared
 * MobileNetV2 1.0).
 */
export function tinyBackbone(size = 32, seed = 1, topUnits?: number, { batchNorm = true }: { batchNorm?: boolean } = {}): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.glorotUniform({ seed: seed * 100 + s });
  const bn = (name: string) => ({ apply: (t: tfl.SymbolicTensor) => (batchNorm ? tfl.layers.batchNormalization({ name }).apply(t) : t) });
  const input = tfl.input({ shape: [size, size, 3], name: 'input_1' });
  let x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1', kernelInitializer: init(1) }).apply(input) as tfl.SymbolicTensor;
  x = bn('bn_Conv1').apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6, name: 'Conv1_relu' }).apply(x) as tfl.SymbolicTensor;
  const skip = x;
  let y = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, name: 'block_1_depthwise', depthwiseInitializer: init(2) }).apply(x) as tfl.SymbolicTensor;
  y = bn('block_1_depthwise_BN').apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.reLU({ maxValue: 6, name: 'block_1_depthwise_relu' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, name: 'block_1_project', kernelInitializer: init(3) }).apply(y) as tfl.SymbolicTensor;
  y = bn('block_1_project_BN').apply(y) as tfl.SymbolicTensor;
  x = tfl.layers.add({ name: 'block_1_add' }).apply([skip, y]) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false, name: 'Conv_1', kernelInitializer: init(4) }).apply(x) as tfl.SymbolicTensor;
  x = bn('Conv_1_bn').apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6, name: 'out_relu' }).apply(x) as tfl.SymbolicTensor;
  if (topUnits) {
    // A pretrained-style classifier on top, as Keras' MobileNetV2 with include_top: pooling, then a softmax dense layer.
    x = tfl.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.dense({ units: topUnits, activation: 'softmax', name: 'predictions', kernelInitializer: init(5), biasInitializer: 'zeros' }).apply(x) as tfl.SymbolicTensor;
  }
  const model = tfl.model({ inputs: input, outputs: x, name: 'tiny_mobilenet' });
  // Non-trivial BN statistics, so inference and training modes differ.
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const weights = layer.getWeights();
    const values = weights.map((w, i) => tf.tidy(() => (i === 2 ? tf.randomUniform(w.shape, -0.5, 0.5, 'float32', seed + i) : i === 3 ? tf.randomUniform(w.shape, 0.5, 2, 'float32', seed + i) : tf.randomUniform(w.shape, 0.8, 1.2, 'float32', seed + i))));
    layer.setWeights(values);
    tf.dispose(values);
  }
  return model;
}

/** Synthetic two-class images: class 0 reddish, class 1 bluish, with strong per-pixel noise. */
export function stripes(n: number, size = 32, seed = 7): { xs: tf.Tensor4D; ys: number[] } {
  const ys = Array.from({ length: n }, (_, i) => i % 2);
  const xs = tf.tidy(() => {
    const red = tf.tensor1d([170, 110, 90]);
    const blue = tf.tensor1d([90, 110, 170]);
    const base = tf.stack(ys.map((y) => tf.tile(tf.reshape(y === 0 ? red : blue, [1, 1, 3]), [size, size, 1])));
    const noise = tf.randomUniform([n, size, size, 3], -60, 60, 'float32', seed);
    return tf.clipByValue(tf.add(base, noise), 0, 255) as tf.Tensor4D;
  });
  return { xs, ys };
}

/** All weights of the given layers, copied to plain arrays, keyed `layer#index` (tfjs renames variables). */
export function weightValues(layers: tfl.layers.Layer[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const l of layers) l.weights.forEach((w, i) => out.set(`${l.name}#${i}`, Float32Array.from(w.read().dataSync() as Float32Array)));
  return out;
}

/**
 * An ImageDataset over a tensor of images with content keys (what imageFolder provides from file hashes), for the
 * persistent-cache tests. Batches are slices of `xs` (the consumer disposes them).
 */
export function keyedDataset(xs: tf.Tensor4D, labels: number[], keys: string[], classes: readonly string[]): ImageDataset {
  return {
    classes,
    size: labels.length,
    labels,
    async *batches(options = {}) {
      const b = options.batchSize ?? 32;
      for (let s = 0; s < labels.length; s += b) {
        const n = Math.min(b, labels.length - s);
        yield { xs: tf.slice(xs, [s, 0, 0, 0], [n, -1, -1, -1]), ys: tf.tensor1d(labels.slice(s, s + n), 'int32'), keys: keys.slice(s, s + n) };
      }
    },
  };
}
