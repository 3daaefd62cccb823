/**
 * Rewiring tfjs-layers functional graphs: re-apply a model's own layers (sharing their weights) from new inputs,
 * up to chosen outputs. This one mechanism gives the feature cut (`out_relu`), a new input size (MobileNetV2 is
 * fully convolutional), a preprocessing layer in front, and the split at the freeze boundary.
 * @internal
 * @module
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { TransferError } from '../errors';

type SymbolicTensor = tfl.SymbolicTensor;
type Layer = tfl.layers.Layer;

/** The inbound node of a layer application, as tfjs-layers keeps it (not exported in its typings). */
interface InboundNode {
  inputTensors: SymbolicTensor[];
  outputTensors: SymbolicTensor[];
  callArgs?: Record<string, unknown>;
}

function inboundNode(t: SymbolicTensor): InboundNode {
  const layer = t.sourceLayer as unknown as { inboundNodes: InboundNode[] };
  const node = layer.inboundNodes[t.nodeIndex];
  if (!node) throw new TransferError('MODEL_INVALID', `Layer "${t.sourceLayer.name}" has no inbound node ${t.nodeIndex}.`);
  return node;
}

/**
 * True when `t` is the output of an InputLayer (a graph source).
 * @internal
 */
export function isInputTensor(t: SymbolicTensor): boolean {
  return t.sourceLayer.getClassName() === 'InputLayer';
}

/**
 * Re-applies the layers that compute `outputs` from the tensors already in `mapping` (old tensor → new tensor).
 * Layers are shared, not copied: the result trains and disposes the same weights.
 * @internal
 */
export function rewire(outputs: SymbolicTensor[], mapping: Map<SymbolicTensor, SymbolicTensor>): SymbolicTensor[] {
  const visit = (t: SymbolicTensor): SymbolicTensor => {
    const known = mapping.get(t);
    if (known) return known;
    if (isInputTensor(t)) {
      throw new TransferError(
        'MODEL_INVALID',
        `The model input "${t.sourceLayer.name}" is not connected to the new inputs; cannot rewire the graph.`,
      );
    }
    const node = inboundNode(t);
    const inputs = node.inputTensors.map(visit);
    const applied = t.sourceLayer.apply(inputs.length === 1 ? inputs[0]! : inputs, node.callArgs ?? {});
    const newOutputs = (Array.isArray(applied) ? applied : [applied]) as SymbolicTensor[];
    node.outputTensors.forEach((old, i) => mapping.set(old, newOutputs[i]!));
    const result = mapping.get(t);
    if (!result) throw new TransferError('MODEL_INVALID', `Could not rewire the output of layer "${t.sourceLayer.name}".`);
    return result;
  };
  return outputs.map(visit);
}

/**
 * The layers that compute `outputs` from the graph's inputs or from `stopAt`, in topological order.
 * @internal
 */
export function ancestorLayers(outputs: SymbolicTensor[], stopAt: Set<SymbolicTensor> = new Set()): Layer[] {
  const seen = new Set<Layer>();
  const order: Layer[] = [];
  const visit = (t: SymbolicTensor): void => {
    if (stopAt.has(t)) return;
    const layer = t.sourceLayer;
    if (seen.has(layer)) return;
    seen.add(layer);
    if (!isInputTensor(t)) inboundNode(t).inputTensors.forEach(visit);
    order.push(layer);
  };
  outputs.forEach(visit);
  return order;
}

/**
 * The (first) output tensor of a named layer, or an error listing candidate names.
 * @internal
 */
export function layerOutput(model: tfl.LayersModel, name: string, what: string): SymbolicTensor {
  const layer = model.layers.find((l) => l.name === name);
  if (!layer) {
    throw new TransferError(
      'LAYER_NOT_FOUND',
      `${what}: the model has no layer named "${name}". ${describeCandidates(model)}`,
    );
  }
  // `layer.output` throws once the layer has been applied again (a model cut twice, or shared by two models):
  // take the output of the layer's node that belongs to this model.
  const nodes = layer.inboundNodes.length;
  let index = 0;
  for (let i = 0; i < nodes; i++) {
    if (model.containerNodes.has(`${layer.name}_ib-${i}`)) {
      index = i;
      break;
    }
  }
  const out = layer.getOutputAt(index);
  return (Array.isArray(out) ? out[0] : out) as SymbolicTensor;
}

/**
 * "Candidates: ..." listing the layers whose outputs are 4-D feature maps, last ones first.
 * @internal
 */
export function describeCandidates(model: tfl.LayersModel): string {
  const names = model.layers
    .filter((l) => {
      const shape = l.outputShape;
      return Array.isArray(shape) && !Array.isArray(shape[0]) && (shape as unknown[]).length >= 2;
    })
    .map((l) => l.name)
    .reverse();
  const shown = names.slice(0, 12);
  return `Candidates (last first): ${shown.join(', ')}${names.length > shown.length ? `, ... (${names.length} in all)` : ''}.`;
}

/**
 * The input tensors of the layer application that produced `t` (none for graph inputs).
 * @internal
 */
export function nodeInputs(t: SymbolicTensor): SymbolicTensor[] {
  return isInputTensor(t) ? [] : inboundNode(t).inputTensors;
}

/**
 * Splits the graph computing `outputs` where `isFrozen(t)` stops holding: returns the frozen tensors consumed by
 * non-frozen layer applications (or that are outputs themselves), in discovery order.
 * @internal
 */
export function boundaryTensors(outputs: SymbolicTensor[], isFrozen: (t: SymbolicTensor) => boolean): SymbolicTensor[] {
  const boundary: SymbolicTensor[] = [];
  const seen = new Set<SymbolicTensor>();
  const visit = (t: SymbolicTensor): void => {
    if (seen.has(t)) return;
    seen.add(t);
    if (isFrozen(t)) {
      boundary.push(t);
      return;
    }
    nodeInputs(t).forEach(visit);
  };
  outputs.forEach(visit);
  return boundary;
}
