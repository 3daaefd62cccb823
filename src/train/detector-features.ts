/**
 * The feature vectors the unknown detector works on: the backbone's features, pooled the way the head pools them
 * (global average by default, max for a max-pooled head, average for a flattening head, as they are for vector
 * features). Obtained from what is at hand: the activations cached at the freeze boundary (no backbone pass when
 * the boundary is the pooled vector, the default) or raw images.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { nodeInputs, rewire } from '../backbone/graph';
import type { TransferModel } from '../transfer-model';
import type { LabelledVectors } from '../unknown-detector';
import { gatherBatch, type Activations } from './activations';
import type { FreezeBoundary } from './boundary';

/** Backbone features `[n, ...featureShape]` → detector vectors `[n, d]`, as the head pools them. @internal */
export function poolForDetector(features: tf.Tensor, pooling: TransferModel['headSpec']['pooling']): tf.Tensor2D {
  return tf.tidy(() => {
    if (features.rank === 4) return (pooling === 'max' ? tf.max(features, [1, 2]) : tf.mean(features, [1, 2])) as tf.Tensor2D;
    return tf.reshape(features, [features.shape[0], -1]) as tf.Tensor2D;
  });
}

/** The backbone's feature tensor in the composed graph (the input of the head's first layer), and the pooled one. */
function headTensors(model: TransferModel): { features: tfl.SymbolicTensor; pooled: tfl.SymbolicTensor | undefined } {
  const head = new Set(model.headLayers);
  let t = model.model.outputs[0]!;
  let pooled: tfl.SymbolicTensor | undefined;
  while (head.has(t.sourceLayer.name)) {
    if (t.sourceLayer.name === model.headLayers[0]) pooled = t;
    const inputs = nodeInputs(t);
    if (inputs.length !== 1) break;
    t = inputs[0]!;
  }
  return { features: t, pooled };
}

/** Runs `fn` on row batches of `acts` (view 0) and stacks the `[b, d]` results. */
async function batched(acts: Activations, rows: number[], batchSize: number, fn: (inputs: tf.Tensor[]) => tf.Tensor2D): Promise<{ values: Float32Array; dim: number }> {
  let out: Float32Array | undefined;
  let dim = 0;
  for (let s = 0; s < rows.length; s += batchSize) {
    const idx = rows.slice(s, s + batchSize);
    const v = tf.tidy(() => fn(gatherBatch(acts, idx, () => 0)));
    try {
      dim = v.shape[1];
      out ??= new Float32Array(rows.length * dim);
      out.set(await v.data(), s * dim);
    } finally {
      v.dispose();
    }
  }
  return { values: out ?? new Float32Array(0), dim };
}

/**
 * Detector vectors of the images whose boundary activations are `acts` (rows `rows`, default all), with their
 * labels. When the boundary is below the backbone's features (a fine-tuned backbone), the trainable top runs
 * up to the features, in inference mode. @internal
 */
export async function detectorVectorsFromActivations(model: TransferModel, split: FreezeBoundary, acts: Activations, rows?: number[], batchSize = 64): Promise<LabelledVectors> {
  const which = rows ?? Array.from({ length: acts.n }, (_, i) => i);
  const labels = Int32Array.from(which, (r) => acts.labels[r]!);
  const pooling = model.headSpec.pooling;
  const boundary = split.extractor.outputs;
  const { features, pooled } = headTensors(model);
  const at = (t: tfl.SymbolicTensor | undefined) => (t ? boundary.indexOf(t) : -1);
  let fn: (inputs: tf.Tensor[]) => tf.Tensor2D;
  if ((pooling === 'avg' || pooling === 'max') && at(pooled) >= 0) {
    const i = at(pooled);
    fn = (inputs) => inputs[i] as tf.Tensor2D;
  } else if (pooling === 'flatten' && at(pooled) >= 0) {
    const i = at(pooled);
    const [h, w, c] = model.backbone.featureShape as [number, number, number];
    fn = (inputs) => tf.mean(tf.reshape(inputs[i]!, [-1, h * w, c]), 1) as tf.Tensor2D;
  } else if (at(features) >= 0) {
    const i = at(features);
    fn = (inputs) => poolForDetector(inputs[i]!, pooling);
  } else {
    const mapping = new Map(boundary.map((t, i) => [t, split.top.inputs[i]!] as const));
    const [f] = rewire([features], mapping);
    const upToFeatures = tfl.model({ inputs: split.top.inputs, outputs: f!, name: 'tt_detector_features' });
    fn = (inputs) => poolForDetector(upToFeatures.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: false }) as tf.Tensor, pooling);
  }
  const { values, dim } = await batched(acts, which, batchSize, fn);
  return { values, labels, n: which.length, dim };
}
