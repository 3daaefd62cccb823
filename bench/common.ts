/** Pieces the benchmarks share. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadBackbone } from '../src/node/index';
import type { LabelledSource } from '../src/train/source';

/**
 * The plain path both end-to-end benchmarks time, built directly in tfjs-layers as in the Keras tutorial: MobileNetV2
 * from `modelPath` (cut at `out_relu`, preprocessing included) frozen by `trainable = false`, then
 * GlobalAveragePooling + Dropout 0.2 + Dense(1, sigmoid), compiled with Adam 1e-4 and binary cross-entropy. Nothing
 * else of this library runs (no caching, no folding, no worker threads).
 */
export async function plainTutorialModel(modelPath: string): Promise<tfl.LayersModel> {
  const backbone = await loadBackbone(modelPath);
  const base = backbone.model!;
  base.layers.forEach((l) => (l.trainable = false));
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(base.outputs[0]!) as tfl.SymbolicTensor;
  const dropped = tfl.layers.dropout({ rate: 0.2 }).apply(pooled) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 1, activation: 'sigmoid' }).apply(dropped) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: base.inputs, outputs: out });
  model.compile({ optimizer: tf.train.adam(1e-4), loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  return model;
}

/** Median of `xs`. */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Pre-cut batches as the library's internal labelled source (each yielded batch is a clone the consumer frees). */
export function batchSource(batches: tf.Tensor4D[]): LabelledSource {
  const n = batches.reduce((a, b) => a + b.shape[0], 0);
  return {
    size: n,
    labels: new Int32Array(n),
    async *batches() {
      for (const b of batches) yield { xs: tf.clone(b), ys: new Int32Array(b.shape[0]), keys: undefined, sources: undefined };
    },
  };
}
