/**
 * Backend selection. The library never picks a backend: the application imports and sets one. Here the choice
 * comes from `?backend=` in the URL, because tensors cannot move between backends once models are built.
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

/** Installs `name` and checks it really is active (`tf.setBackend` quietly keeps the old one on failure). */
export async function useBackend(name: BackendName): Promise<string> {
  if (name === 'wasm') {
    // The binaries are served by the page itself (copied from node_modules at build time), never from a CDN.
    setWasmPaths(new URL('wasm/', document.baseURI).href);
  }
  if (name === 'webgpu') {
    if (!loadWebGPU) throw new Error('the webgpu backend is not installed (npm i -D @tensorflow/tfjs-backend-webgpu)');
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

/** The WebGL rendering context of the webgl backend, when it is active. */
export function webglContext(): WebGLRenderingContext | WebGL2RenderingContext | undefined {
  if (tf.getBackend() !== 'webgl') return undefined;
  const backend = tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext | WebGL2RenderingContext } };
  return backend.gpgpu?.gl;
}
