/**
 * Giving the event loop a turn during training (tfjs-layers' `yieldEvery`): on cpu and wasm a tensor's `data()`
 * resolves as a microtask, so without this a long `fit` starves timers, abort signals from timers, and rendering.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type { YieldEvery } from './fit-args';

/** The interval of `'auto'`, as in tfjs-layers. */
export const AUTO_YIELD_MS = 125;

/** Yields on a schedule: call `batchEnd()` after every batch and `epochEnd()` after every epoch. @internal */
export interface Yielder {
  batchEnd(): Promise<void>;
  epochEnd(): Promise<void>;
}

/** A {@link Yielder} for `schedule`. `tf.nextFrame()` is `requestAnimationFrame` in browsers, `setImmediate` in Node. @internal */
export function createYielder(schedule: YieldEvery, nextFrame: () => Promise<void> = () => tf.nextFrame()): Yielder {
  const interval = schedule === 'auto' ? AUTO_YIELD_MS : typeof schedule === 'number' ? schedule : undefined;
  let last = Date.now();
  const turn = async () => {
    await nextFrame();
    last = Date.now();
  };
  return {
    async batchEnd() {
      if (schedule === 'batch' || (interval !== undefined && Date.now() - last >= interval)) await turn();
    },
    async epochEnd() {
      if (schedule === 'epoch') await turn();
    },
  };
}
