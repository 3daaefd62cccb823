/**
 * The identity of a frozen prefix: what keys the persistent activation caches and validates kept activations.
 * @internal
 * @module
 */
import type { TransferModel } from '../transfer-model';
import { sha256Hex } from '../util/hash';
import type { FreezeBoundary } from './boundary';

/**
 * A string that changes whenever the frozen prefix would compute different activations: backbone identity, input
 * size, preprocessing, boundary layers, and the SHA-256 of every weight of the prefix. `v2-` + 64 hex characters
 * (v1 was a 32-bit FNV-1a, so caches written by 0.1 are simply not found). @internal
 */
export async function extractorIdentity(split: FreezeBoundary, model: TransferModel): Promise<string> {
  const parts: Uint8Array[] = [];
  for (const layer of split.frozenLayers) {
    for (const w of layer.getWeights()) {
      const data = await w.data();
      parts.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  const desc = JSON.stringify({
    b: model.backbone.name,
    src: model.backbone.source,
    s: model.inputShape,
    p: model.backbone.preprocessing,
    n: split.names,
    sh: split.shapes,
  });
  return `v2-${await sha256Hex(desc, ...parts)}`;
}
