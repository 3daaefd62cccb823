/**
 * Pixel preprocessing as a tensor op and as a (serializable) layer, so a composed model takes raw pixels.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { check } from '../errors';
import type { Preprocessing } from '../types';

/**
 * The identity preprocessing: the model receives raw 0..255 pixels.
 * @category Step 3: Compose
 */
export const NO_PREPROCESSING: Preprocessing = { scale: 1, offset: 0 };

function isTriple(v: unknown): v is readonly [number, number, number] {
  return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
}

/** Throws a clear error unless `p` is a valid {@link Preprocessing}. @internal */
export function validatePreprocessing(p: Preprocessing, where: string): void {
  check(p != null && typeof p === 'object', `${where}: preprocessing must be an object { scale, offset }, got ${String(p)}.`);
  for (const key of ['scale', 'offset'] as const) {
    const v = p[key];
    check(
      (typeof v === 'number' && Number.isFinite(v)) || isTriple(v),
      `${where}: preprocessing.${key} must be a finite number or three numbers (R, G, B), got ${JSON.stringify(v)}.`,
    );
  }
}

/**
 * Applies `preprocessing` to raw pixels (`x * scale + offset`). Does not dispose `images`.
 *
 * @example
 * ```ts
 * const y = applyPreprocessing(tf.fill([1, 2, 2, 3], 255), { scale: 1 / 127.5, offset: -1 }); // all 1
 * ```
 * @category Step 3: Compose
 */
export function applyPreprocessing<T extends tf.Tensor>(images: T, preprocessing: Preprocessing): T {
  return tf.tidy(() => {
    const x = images.dtype === 'float32' ? images : tf.cast(images, 'float32');
    const scale = typeof preprocessing.scale === 'number' ? tf.scalar(preprocessing.scale) : tf.tensor1d([...preprocessing.scale]);
    const offset = typeof preprocessing.offset === 'number' ? tf.scalar(preprocessing.offset) : tf.tensor1d([...preprocessing.offset]);
    return tf.add(tf.mul(x, scale), offset) as T;
  });
}

interface ChannelAffineConfig extends tf.serialization.ConfigDict {
  scale: number[];
  offset: number[];
}

/**
 * `x * scale + offset` with one scale and offset per channel. Registered as `TfjsTransfer>ChannelAffine`;
 * only used when preprocessing is per channel (a scalar one uses the stock `Rescaling` layer).
 * @internal
 */
export class ChannelAffine extends tfl.layers.Layer {
  static className = 'TfjsTransfer>ChannelAffine';
  private readonly scale: number[];
  private readonly offset: number[];

  constructor(args: { scale: number[]; offset: number[]; name?: string }) {
    super({ name: args.name });
    this.scale = args.scale;
    this.offset = args.offset;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    return applyPreprocessing(x, { scale: this.scale as unknown as [number, number, number], offset: this.offset as unknown as [number, number, number] });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: ChannelAffineConfig = { scale: this.scale, offset: this.offset };
    return { ...super.getConfig(), ...config };
  }
}

let registered = false;
/** Registers the library's custom layers with tfjs serialization (idempotent). @internal */
export function registerCustomLayers(): void {
  if (registered) return;
  tf.serialization.registerClass(ChannelAffine);
  registered = true;
}

/** A layer applying `preprocessing` to raw pixels. @internal */
export function preprocessingLayer(preprocessing: Preprocessing, name = 'tt_preprocess'): tfl.layers.Layer {
  const { scale, offset } = preprocessing;
  if (typeof scale === 'number' && typeof offset === 'number') return tfl.layers.rescaling({ scale, offset, name });
  registerCustomLayers();
  const triple = (v: number | readonly number[]) => (typeof v === 'number' ? [v, v, v] : [...v]);
  return new ChannelAffine({ scale: triple(scale), offset: triple(offset), name });
}
