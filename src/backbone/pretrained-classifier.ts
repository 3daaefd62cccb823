/**
 * The backbone's own pretrained classifier (e.g. MobileNetV2's 1000-class ImageNet top), when the loaded model has
 * one right above the feature layer: global average pooling (and dropout) then a softmax dense layer. The unknown
 * detector's `pretrainedClasses` method uses it; nothing else does.
 * @internal
 * @module
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { nodeInputs } from './graph';

/** The weights of a pretrained softmax classifier on the pooled features. @internal */
export interface PretrainedClassifier {
  /** Length of the pooled feature vector it takes (the feature layer's channels). */
  dim: number;
  /** Number of classes it scores (1000 for ImageNet). */
  units: number;
  /** `[units, dim]` row-major: row `j` is class `j`'s weights (the dense kernel, transposed). */
  weights: Float32Array;
  /** `[units]`. */
  bias: Float32Array;
  /** The dense layer's name, for logs (`"predictions"` for Keras' MobileNetV2). */
  layer: string;
}

type Layer = tfl.layers.Layer;

/** Layers that pass pooled features through unchanged at inference. */
const PASS_THROUGH = new Set(['Dropout', 'SpatialDropout1D', 'GaussianDropout', 'GaussianNoise', 'AlphaDropout']);

function className(layer: Layer): string {
  return layer.getClassName();
}

function activationOf(layer: Layer): string | undefined {
  const a = (layer.getConfig() as { activation?: unknown }).activation;
  return typeof a === 'string' ? a : undefined;
}

/**
 * The softmax classifier that `model`'s only output computes from `features` through global average pooling, or
 * `undefined` when the model ends otherwise (no top, several outputs, another head, a different pooling). Reads the
 * weights (a copy): call it before the layers outside the cut are disposed. @internal
 */
export function findPretrainedClassifier(model: tfl.LayersModel, features: tfl.SymbolicTensor): PretrainedClassifier | undefined {
  if (model.outputs.length !== 1) return undefined;
  let t = model.outputs[0]!;
  let softmaxSeen = false;
  if (className(t.sourceLayer) === 'Activation' && activationOf(t.sourceLayer) === 'softmax') {
    softmaxSeen = true;
    const inputs = nodeInputs(t);
    if (inputs.length !== 1) return undefined;
    t = inputs[0]!;
  }
  const dense = t.sourceLayer;
  if (className(dense) !== 'Dense') return undefined;
  const act = activationOf(dense);
  if (!(softmaxSeen ? act === 'linear' || act === undefined : act === 'softmax')) return undefined;
  const below = nodeInputs(t);
  if (below.length !== 1) return undefined;
  t = below[0]!;
  while (PASS_THROUGH.has(className(t.sourceLayer))) {
    const inputs = nodeInputs(t);
    if (inputs.length !== 1) return undefined;
    t = inputs[0]!;
  }
  if (className(t.sourceLayer) !== 'GlobalAveragePooling2D') return undefined;
  const pooled = nodeInputs(t);
  if (pooled.length !== 1 || pooled[0] !== features) return undefined;
  const dim = features.shape[features.shape.length - 1];
  const weights = dense.getWeights();
  if (weights.length !== 2 || dim == null) return undefined;
  const [kernel, bias] = weights as [ReturnType<Layer['getWeights']>[0], ReturnType<Layer['getWeights']>[0]];
  if (kernel.rank !== 2 || kernel.shape[0] !== dim || bias.rank !== 1 || bias.shape[0] !== kernel.shape[1]) return undefined;
  const units = kernel.shape[1]!;
  const k = kernel.dataSync() as Float32Array;
  const transposed = new Float32Array(units * dim);
  for (let d = 0; d < dim; d++) for (let j = 0; j < units; j++) transposed[j * dim + d] = k[d * units + j]!;
  return { dim, units, weights: transposed, bias: Float32Array.from(bias.dataSync()), layer: dense.name };
}
