/**
 * Weight quantization of saved model artefacts, in the weight-manifest format stock `tf.loadLayersModel` reads
 * (tfjs-core's `decodeWeights` dequantizes on load): `quantization: { dtype: 'uint8', scale, min }` (value =
 * q * scale + min, one affine grid per tensor) or `quantization: { dtype: 'float16' }` (IEEE 754 half precision).
 * Pure functions on `ModelArtifacts`: browser-safe, no backend.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { TransferError } from '../errors';
import { toHalfBits } from '../util/float16';

/**
 * How weights are stored: `float32` (as trained), `float16` (half the size, ~3 significant digits) or `uint8`
 * (a quarter of the size, 256 levels per tensor).
 * @category Save and load
 */
export type WeightQuantization = 'float32' | 'float16' | 'uint8';

/** The quantization dtypes {@link quantizeArtifacts} writes. @internal */
export const QUANTIZATIONS: readonly WeightQuantization[] = ['float32', 'float16', 'uint8'];

/** What {@link quantizeArtifacts} did. @internal */
export interface QuantizeOutcome {
  /** The artefacts with re-encoded weight data and specs. */
  artifacts: tf.io.ModelArtifacts;
  /** Names of the weights stored quantized. */
  quantized: string[];
  /** Names of the weights kept in float32 (and why, by name). */
  kept: { name: string; reason: string }[];
  /** Bytes of weight data before and after. */
  bytesBefore: number;
  /** Bytes of weight data after. */
  bytesAfter: number;
}

/**
 * The grid a tensor already lies on, when it holds at most 256 distinct values evenly spaced (a weight dequantized
 * from uint8, like the shared MobileNetV2 1.0 converted from a quantized TFLite model): re-quantizing on that grid
 * is lossless, where any other grid would move every weight by up to half a step, the same way for all the weights
 * near zero (a systematic shift that non-negative ReLU activations add up).
 */
function existingGrid(values: Float32Array): { scale: number; min: number } | undefined {
  const distinct = new Set<number>();
  for (const v of values) {
    distinct.add(v);
    if (distinct.size > 256) return undefined;
  }
  const sorted = Float64Array.from(distinct).sort();
  if (sorted.length < 2) return undefined;
  let step = Infinity;
  for (let i = 1; i < sorted.length; i++) step = Math.min(step, sorted[i]! - sorted[i - 1]!);
  const min = sorted[0]!;
  const levels = Math.round((sorted[sorted.length - 1]! - min) / step);
  if (levels > 255) return undefined;
  const scale = (sorted[sorted.length - 1]! - min) / levels;
  for (const u of sorted) {
    const q = (u - min) / scale;
    if (Math.abs(q - Math.round(q)) > 1e-3) return undefined;
  }
  return { scale, min };
}

/**
 * One weight's values as uint8: on the grid they already lie on, if any; otherwise on the tensor's min / max
 * range widened to hold 0 and nudged so that 0 is a level (as the TF.js converter and TFLite quantize), so
 * zero weights stay exactly zero.
 */
function toUint8(values: Float32Array): { bytes: Uint8Array; scale: number; min: number } {
  let grid = existingGrid(values);
  if (!grid) {
    let lo = 0;
    let hi = 0;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const scale = hi > lo ? (hi - lo) / 255 : 1;
    const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
    grid = { scale, min: -zeroPoint * scale };
  }
  const { scale, min } = grid;
  const bytes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) bytes[i] = Math.min(255, Math.max(0, Math.round((values[i]! - min) / scale)));
  return { bytes, scale, min };
}

function toFloat16(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]!);
  return new Uint8Array(out.buffer);
}

function weightBytes(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const buffer = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
  return new Uint8Array(buffer);
}

/**
 * Re-encodes the float32 weights of `artifacts` that `shouldQuantize` accepts as `dtype` (`float16` or `uint8`),
 * leaving the others (and every weight already quantized or not float32) as they are. Returns new artefacts; the
 * input is not changed. With `float32` nothing is re-encoded.
 * @internal
 */
export function quantizeArtifacts(
  artifacts: tf.io.ModelArtifacts,
  dtype: WeightQuantization,
  keepReason: (spec: tf.io.WeightsManifestEntry) => string | undefined,
): QuantizeOutcome {
  const specs = artifacts.weightSpecs ?? [];
  const data = weightBytes(artifacts.weightData);
  const parts: Uint8Array[] = [];
  const outSpecs: tf.io.WeightsManifestEntry[] = [];
  const quantized: string[] = [];
  const kept: { name: string; reason: string }[] = [];
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, d) => a * d, 1);
    const bytesPerValue = spec.quantization ? (spec.quantization.dtype === 'uint8' ? 1 : 2) : spec.dtype === 'bool' ? 1 : spec.dtype === 'complex64' ? 8 : 4;
    if (spec.dtype === 'string') throw new TransferError('NOT_SUPPORTED', `save: weight "${spec.name}" holds strings; only numeric weights can be saved quantized.`);
    const raw = data.subarray(offset, offset + size * bytesPerValue);
    offset += size * bytesPerValue;
    const reason = dtype === 'float32' ? 'float32 asked' : spec.quantization ? 'already quantized' : spec.dtype !== 'float32' ? `${spec.dtype} weight` : keepReason(spec);
    if (reason !== undefined) {
      parts.push(raw);
      outSpecs.push({ ...spec });
      kept.push({ name: spec.name, reason });
      continue;
    }
    const values = new Float32Array(raw.slice().buffer);
    if (dtype === 'float16') {
      parts.push(toFloat16(values));
      outSpecs.push({ ...spec, quantization: { dtype: 'float16' } });
    } else {
      const q = toUint8(values);
      parts.push(q.bytes);
      outSpecs.push({ ...spec, quantization: { dtype: 'uint8', scale: q.scale, min: q.min } });
    }
    quantized.push(spec.name);
  }
  if (offset !== data.byteLength) {
    throw new TransferError('SAVE_FAILED', `save: the serialized weights hold ${data.byteLength} bytes but their specs describe ${offset}; cannot quantize them.`);
  }
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return { artifacts: { ...artifacts, weightSpecs: outSpecs, weightData: out.buffer }, quantized, kept, bytesBefore: data.byteLength, bytesAfter: total };
}
