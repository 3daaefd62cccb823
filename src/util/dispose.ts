/**
 * Disposing layers shared between several functional models.
 *
 * tfjs-layers counts one reference per symbolic application of a layer and frees its weights when the count
 * reaches zero. The library re-applies layers to build sub-models (feature cut, freeze boundary), so counts no
 * longer match model ownership; the library tracks ownership itself and frees weights explicitly.
 * @internal
 * @module
 */
import type * as tfl from '@tensorflow/tfjs-layers';

interface RefCounted {
  _refCount: number | null;
  built: boolean;
}

/** Frees the weights of each layer (once; already-disposed layers are skipped). */
export function disposeLayers(layers: Iterable<tfl.layers.Layer>): number {
  let n = 0;
  for (const layer of layers) {
    const l = layer as unknown as RefCounted;
    if (!l.built || l._refCount === 0 || l._refCount === null) continue;
    l._refCount = 1;
    n += layer.dispose().numDisposedVariables;
  }
  return n;
}

/**
 * Gives layers borrowed from a caller's model back to it: if the caller already disposed their model, free the
 * layers now; otherwise reset each layer's count to the caller's single reference, so their `dispose()` frees them.
 */
export function releaseBorrowedLayers(layers: Iterable<tfl.layers.Layer>, owner: tfl.LayersModel): void {
  const ownerDisposed = (owner as unknown as RefCounted)._refCount === 0;
  if (ownerDisposed) {
    disposeLayers(layers);
    return;
  }
  for (const layer of layers) {
    const l = layer as unknown as RefCounted;
    if (l.built && l._refCount !== null && l._refCount > 1) l._refCount = 1;
  }
}
