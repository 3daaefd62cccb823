/**
 * The plain path both benchmarks time: the Keras tutorial's model built directly in tfjs-layers, the backbone
 * frozen by `trainable = false` and nothing else of this library (no caching, no folding, no worker threads).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadBackbone } from '../src/node/index';

/**
 * Frozen MobileNetV2 (from `modelPath`, cut at `out_relu`, preprocessing included) + GlobalAveragePooling +
 * Dropout 0.2 + Dense(1, sigmoid), compiled with Adam 1e-4 and binary cross-entropy, as in the Keras tutorial.
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
