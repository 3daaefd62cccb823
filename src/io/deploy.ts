/**
 * What `save` needs to deploy a model small: which weights are quantized (and which stay float32, and why), the
 * identity of a backbone (SHA-256 of its weights) for head-only artefacts, and the accuracy check of a quantized
 * save.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../backbone/backbone';
import { TransferError } from '../errors';
import { evaluate } from '../evaluate/evaluate';
import type { QuantizationCheck, TransferModel } from '../transfer-model';
import type { LabelledData } from '../types';
import { sha256Hex, type Hashable } from '../util/hash';
import type { RowEncoding } from '../util/packed-rows';
import type { WeightQuantization } from '../artifacts/quantize';

/**
 * Weights with fewer values than this stay float32 when saving quantized: they weigh nothing (the largest of
 * MobileNetV2's is 3 KB) and some matter a lot (MobileNetV2's first convolution, 864 values, sees raw pixels).
 * @internal
 */
export const QUANTIZE_MIN_VALUES = 1024;

/**
 * Why a weight stays float32 in a quantized save, or `undefined` to quantize it. Kept float32:
 * - the head's weights (`headLayers`): the decision layer, whose every error moves a probability directly, and
 *   a few kilobytes only (5 KB for two classes on MobileNetV2);
 * - vectors (biases, BatchNorm gamma / beta / moving mean / variance): a per-channel offset or scale quantized to
 *   256 levels shifts whole feature maps, and they are under 1% of the bytes;
 * - tensors under {@link QUANTIZE_MIN_VALUES} values.
 * Everything else (convolution, depthwise and dense kernels of the backbone: 99% of the bytes) is quantized.
 * @internal
 */
export function keepFloat32Reason(spec: tf.io.WeightsManifestEntry, headLayers: ReadonlySet<string>): string | undefined {
  const layer = spec.name.split('/')[0] ?? '';
  if (headLayers.has(layer)) return 'head layer';
  if (spec.shape.length < 2) return 'vector (bias or normalization)';
  const size = spec.shape.reduce((a, d) => a * d, 1);
  if (size < QUANTIZE_MIN_VALUES) return `small (${size} values)`;
  return undefined;
}

/**
 * How a save with `quantize` stores the unknown detector's prototypes: each step of weight quantization halves
 * them too (float32 artefact: float16 prototypes as fitted; float16: 8-bit codes; uint8: 4-bit codes), so the
 * detector does not undo what quantizing the weights saved. What it costs the detector is measured by
 * `npm run bench:deploy` and, with `verify`, by every save (`QuantizationCheck.unknownAcceptedAfter`).
 * @internal
 */
export function detectorEncodingFor(quantize: WeightQuantization): RowEncoding {
  return quantize === 'uint8' ? 'uint4' : quantize === 'float16' ? 'uint8' : 'float16';
}

/**
 * SHA-256 of a layers backbone's weights: every weight of every pretrained layer, in layer order, with its layer
 * name, index and shape. The same file gives the same hash at any input size and on any backend (the values are
 * the float32 numbers tfjs decoded). `undefined` for graph and function backbones.
 * @internal
 */
export async function backboneWeightsHash(backbone: Backbone): Promise<string | undefined> {
  if (backbone.kind !== 'layers') return undefined;
  const parts: Hashable[] = [];
  for (const layer of backbone.layers) {
    const weights = layer.weights;
    for (let i = 0; i < weights.length; i++) {
      const value = weights[i]!.read();
      parts.push(`${layer.name}#${i}[${value.shape.join(',')}]${value.dtype}`, (await value.data()) as Float32Array);
    }
  }
  return sha256Hex('tfjs-transfer backbone weights v1', ...parts);
}

/** Refuses a head-only save of a model whose backbone was trained: the published backbone is not the one the head needs. @internal */
export function checkBackboneUntouched(model: TransferModel, where: string): void {
  const names = new Set(model.backbone.layers.map((l) => l.name));
  const trained = model.trainingRuns.flatMap((r) => r.trainedLayers).filter((n) => names.has(n));
  const unfrozen = model.backbone.kind === 'layers' && !model.backbone.isFullyFrozen;
  if (trained.length > 0 || unfrozen) {
    throw new TransferError(
      'INVALID_ARGUMENT',
      `save: backbone: 'reference' writes the head only, but this model's backbone ${trained.length > 0 ? `was fine-tuned (layers ${trained.slice(0, 3).join(', ')}${trained.length > 3 ? ', ...' : ''} were trained)` : 'has unfrozen layers'}, ` +
        `so the published "${model.backbone.name}" is no longer the backbone the head was trained on. Nothing was written to ${where}. Save it with its backbone (the default, backbone: 'embed').`,
    );
  }
}

/** Accuracy of `model` on `data` (and the share its unknown detector accepts), without recording it as the model's evaluation. */
async function accuracyOf(model: TransferModel, data: LabelledData, signal: AbortSignal | undefined): Promise<{ accuracy: number; count: number; accepted: number | undefined }> {
  const previous = model.evaluation;
  try {
    const e = await evaluate(model, data, { signal, maxMisclassified: 0 });
    return { accuracy: e.accuracy, count: e.count, accepted: e.unknown?.accepted };
  } finally {
    model.setEvaluation(previous);
  }
}

/**
 * Evaluates `model` and the model `reload` builds from the quantized artefacts on `data`, and refuses (a
 * `ACCURACY_DROP` TransferError) when accuracy falls by more than `maxAccuracyDrop`. The reloaded model is freed.
 * @internal
 */
export async function verifyQuantized(
  model: TransferModel,
  reload: () => Promise<TransferModel>,
  data: LabelledData,
  bound: { maxAccuracyDrop: number; dtype: string; where: string; signal: AbortSignal | undefined },
): Promise<QuantizationCheck> {
  const before = await accuracyOf(model, data, bound.signal);
  const quantized = await reload();
  let after: { accuracy: number; count: number; accepted: number | undefined };
  try {
    after = await accuracyOf(quantized, data, bound.signal);
  } finally {
    quantized.dispose();
  }
  const drop = before.accuracy - after.accuracy;
  const check: QuantizationCheck = {
    images: before.count, accuracyBefore: before.accuracy, accuracyAfter: after.accuracy, drop, maxAccuracyDrop: bound.maxAccuracyDrop,
    ...(before.accepted !== undefined && after.accepted !== undefined ? { unknownAcceptedBefore: before.accepted, unknownAcceptedAfter: after.accepted } : {}),
  };
  // A tiny tolerance, so a drop equal to the bound (e.g. exactly one image) is not refused by rounding.
  if (drop > bound.maxAccuracyDrop + 1e-12) {
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    throw new TransferError(
      'ACCURACY_DROP',
      `save: with ${bound.dtype} weights the accuracy on the ${before.count} verify images falls from ${pct(before.accuracy)} to ${pct(after.accuracy)} ` +
        `(${(100 * drop).toFixed(2)} points), more than maxAccuracyDrop ${(100 * bound.maxAccuracyDrop).toFixed(2)} points. Nothing was written to ${bound.where}. ` +
        `Save with quantize: 'float16' (or 'float32'), or raise maxAccuracyDrop if the loss is acceptable.`,
    );
  }
  return check;
}
