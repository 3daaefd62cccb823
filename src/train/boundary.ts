/**
 * The freeze boundary: split a composed model into the frozen prefix (run once per image, in inference mode, its
 * output cached) and the trainable top (trained on the cached activations).
 *
 * A layer belongs to the frozen prefix when it has no trainable weight, does not behave differently while
 * training (no dropout, noise or batch statistics), and all its inputs come from the prefix. With a fully frozen
 * MobileNetV2 and the default head the boundary is the pooled 1280-vector; when the backbone's top is unfrozen for
 * fine-tuning it is the activations entering the first trainable block (skip connections included).
 * @internal
 * @module
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { isTrainingDependent } from '../backbone/batchnorm';
import { boundaryTensors, isInputTensor, nodeInputs, rewire } from '../backbone/graph';
import type { TransferModel } from '../transfer-model';

type Layer = tfl.layers.Layer;

/** A split of a composed model at its freeze boundary. */
export interface FreezeBoundary {
  /** Raw pixels → the boundary activations (one output per boundary tensor). Inference only. */
  extractor: tfl.LayersModel;
  /** Boundary activations → probabilities: the part that trains. Shares layers with the composed model. */
  top: tfl.LayersModel;
  /** Shape of one image's activations per boundary tensor. */
  shapes: number[][];
  /** Names of the boundary tensors' layers (for logs and cache identity). */
  names: string[];
  /** Layers of the frozen prefix. */
  frozenLayers: Layer[];
  /** Release the sub-models (not the shared layers). */
  dispose(): void;
}

function hasTrainableWeights(layer: Layer): boolean {
  return layer.trainable && layer.trainableWeights.length > 0;
}

/** Finds the frozen prefix of `model.model` and splits it there. */
export function splitAtFreezeBoundary(model: TransferModel): FreezeBoundary {
  const composed = model.model;
  const memo = new Map<tfl.SymbolicTensor, boolean>();
  const frozenLayers = new Set<Layer>();
  const isFrozen = (t: tfl.SymbolicTensor): boolean => {
    const known = memo.get(t);
    if (known !== undefined) return known;
    let frozen: boolean;
    if (isInputTensor(t)) frozen = true;
    else if (hasTrainableWeights(t.sourceLayer) || isTrainingDependent(t.sourceLayer)) frozen = false;
    else frozen = nodeInputs(t).every(isFrozen);
    memo.set(t, frozen);
    if (frozen) frozenLayers.add(t.sourceLayer);
    return frozen;
  };
  const outputs = composed.outputs;
  const boundary = boundaryTensors(outputs, isFrozen);
  // Every frozen layer, including those below the boundary that the walk above stopped at.
  const collected = new Set<tfl.SymbolicTensor>();
  const collect = (t: tfl.SymbolicTensor): void => {
    if (collected.has(t)) return;
    collected.add(t);
    frozenLayers.add(t.sourceLayer);
    nodeInputs(t).forEach(collect);
  };
  boundary.forEach(collect);
  const extractor = tfl.model({ inputs: composed.inputs, outputs: boundary, name: 'tt_frozen_prefix' });
  const topInputs = boundary.map((t, i) => tfl.input({ shape: t.shape.slice(1) as number[], name: `tt_boundary_${i}` }));
  const mapping = new Map(boundary.map((t, i) => [t, topInputs[i]!] as const));
  const topOutputs = rewire(outputs, mapping);
  const top = tfl.model({ inputs: topInputs, outputs: topOutputs, name: 'tt_trainable_top' });
  return {
    extractor,
    top,
    shapes: boundary.map((t) => t.shape.slice(1) as number[]),
    names: boundary.map((t) => t.sourceLayer.name),
    frozenLayers: [...frozenLayers],
    dispose: () => {
      // The sub-models own no weights of their own; dropping the references is enough.
    },
  };
}

/** Which layers are trainable, as a string: changes whenever `freeze` moves the boundary. @internal */
export function freezeSignature(model: TransferModel): string {
  return model.model.layers.map((l) => (l.trainable ? '1' : '0')).join('');
}

/** The memo of {@link freezeBoundaryOf}: a derived value per model, dropped with the model. */
const boundaryMemo = new WeakMap<TransferModel, { signature: string; split: FreezeBoundary }>();

/** The model split at its current freeze boundary, memoised until `freeze` changes it. @internal */
export function freezeBoundaryOf(model: TransferModel): FreezeBoundary {
  const signature = freezeSignature(model);
  const hit = boundaryMemo.get(model);
  if (hit && hit.signature === signature) return hit.split;
  const split = splitAtFreezeBoundary(model);
  boundaryMemo.set(model, { signature, split });
  return split;
}
