/**
 * Backend selection, inside the worker. The library never picks a backend: the application imports and sets one.
 * The page asks for one with `?backend=` (tensors cannot move between backends once models are built) and passes
 * the choice to the worker's `setup`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import loadWebGPU from 'virtual:webgpu-backend';

export type BackendName = 'webgl' | 'wasm' | 'cpu' | 'webgpu';

/** The backends this page can offer in this browser. */
export function offeredBackends(): BackendName[] {
  const list: BackendName[] = ['webgl', 'wasm', 'cpu'];
  if (loadWebGPU && 'gpu' in navigator) list.push('webgpu');
  return list;
}

/**
 * Installs `name` and checks it really is active (`tf.setBackend` quietly keeps the old one on failure).
 * `base` is the page's URL: the wasm binaries are served by the page itself, never from a CDN.
 */
export async function useBackend(name: BackendName, base: string): Promise<string> {
  if (name === 'wasm') setWasmPaths(new URL('wasm/', base).href);
  if (name === 'webgpu') {
    if (!loadWebGPU) throw new Error('the webgpu backend is not installed (npm i -D @tensorflow/tfjs-backend-webgpu)');
    if (!('gpu' in navigator)) throw new Error('this browser has no WebGPU (navigator.gpu)');
    await loadWebGPU();
  }
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) {
    throw new Error(`the ${name} backend could not start in this browser (active: ${tf.getBackend() ?? 'none'})`);
  }
  const details: string[] = [];
  if (name === 'wasm') {
    const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? `${navigator.hardwareConcurrency} threads` : '1 thread';
    details.push(tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'SIMD' : 'no SIMD', threads);
  }
  if (name === 'webgl') details.push(`WebGL ${tf.env().getNumber('WEBGL_VERSION')}`);
  return details.length ? `${name} (${details.join(', ')})` : name;
}

/** The WebGL rendering context of the webgl backend (an OffscreenCanvas's, in the worker), when it is active. */
export function webglContext(): WebGLRenderingContext | WebGL2RenderingContext | undefined {
  if (tf.getBackend() !== 'webgl') return undefined;
  const backend = tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext | WebGL2RenderingContext } };
  return backend.gpgpu?.gl;
}
