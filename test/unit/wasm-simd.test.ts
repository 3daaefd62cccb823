/**
 * The SIMD module: its embedded bytes are the compilation of src/train/wasm-simd.wat, and the kernels that use it
 * give the results of the plain JavaScript loops (and of the cpu backend: wasm-kernels.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
// Registers every gradient of tfjs-core as a side effect.
import '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { WASM_SIMD_BASE64 } from '../../src/train/wasm-simd-module';
import { simdKernelsOf, simdSwitch } from '../../src/train/wasm-simd';
import { registerWasmTrainingKernels } from '../../src/train/wasm-kernels';
import { moduleSource, wasmSimdBytes } from '../helpers/build-wasm-simd';
import { readFileSync } from 'node:fs';
import { MODULE } from '../helpers/build-wasm-simd';

describe('wasm SIMD kernels', () => {
  it('the embedded module is the compiled .wat (run `npm run build:wasm-simd` after editing it)', async () => {
    const bytes = await wasmSimdBytes();
    expect(Buffer.from(WASM_SIMD_BASE64, 'base64').equals(Buffer.from(bytes))).toBe(true);
    expect(readFileSync(MODULE, 'utf8')).toBe(moduleSource(bytes));
  });

  it('instantiate on the wasm backend, and give what the JavaScript loops give (odd lane counts included)', async () => {
    const previous = tf.getBackend();
    await tf.setBackend('wasm');
    await tf.ready();
    registerWasmTrainingKernels();
    try {
      expect(simdKernelsOf(tf.backend())).toBeDefined();
      const run = () =>
        tf.tidy(() => {
          const x = tf.randomUniform([3, 9, 9, 12], -2, 8, 'float32', 1);
          const dy = tf.randomNormal([3, 9, 9, 12], 0, 1, 'float32', 2);
          const xs = tf.randomUniform([7, 5], -2, 8, 'float32', 3); // 35 lanes: 32 in SIMD, 3 in JavaScript
          const dys = tf.randomNormal([7, 5], 0, 1, 'float32', 4);
          const w = tf.randomNormal([3, 3, 12, 1], 0, 1, 'float32', 5);
          const dw = tf.grad((f: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, 'same'), tf.slice(dy, [0, 0, 0, 0], [3, 5, 5, 12]))))(w);
          const g6 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.clipByValue(tf.relu(t), 0, 6), dys)))(xs);
          return [dw, g6].map((t) => Array.from(t.dataSync()));
        });
      const simd = run();
      simdSwitch.enabled = false;
      const plain = run();
      simdSwitch.enabled = true;
      expect(simd[1]).toEqual(plain[1]); // a selection: exact
      simd[0]!.forEach((v, i) => expect(Math.abs(v - plain[0]![i]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(plain[0]![i]!))));
    } finally {
      simdSwitch.enabled = true;
      await tf.setBackend(previous);
    }
  });
});
