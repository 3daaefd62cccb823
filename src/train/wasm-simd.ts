/**
 * The SIMD kernels of `wasm-simd.wat`, instantiated on the wasm backend's own memory (one instance per memory), so
 * they work on tensors in place. `undefined` where they cannot run (no SIMD, a backend whose memory is not
 * reachable): the callers then use their plain JavaScript loops, which compute the same sums.
 * @internal
 * @module
 */
import { WASM_SIMD_BASE64 } from './wasm-simd-module';

/** The module's exports; pointers are byte offsets into the backend's memory. @internal */
export interface SimdKernels {
  dw_filter_image(
    x: number, g: number, acc: number, h: number, w: number, c: number, oh: number, ow: number,
    fh: number, fw: number, sh: number, sw: number, dh: number, dw: number, top: number, left: number,
  ): void;
  clip_grad(g: number, x: number, o: number, n: number, min: number, max: number): void;
  relu_grad(g: number, x: number, o: number, n: number): void;
  col_sum(x: number, acc: number, rows: number, cols: number): void;
  adam(
    w: number, m: number, v: number, g: number, ow: number, om: number, ov: number, n: number,
    b1: number, c1: number, b2: number, c2: number, a1: number, a2: number, eps: number, nlr: number,
  ): void;
}

const instances = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

/** Set to `false` to run the plain JavaScript loops (for the benchmark's comparison). @internal */
export const simdSwitch = { enabled: true };

function bytes(): Uint8Array<ArrayBuffer> {
  const s = atob(WASM_SIMD_BASE64);
  const out = new Uint8Array(new ArrayBuffer(s.length));
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The SIMD kernels on `backend`'s memory, or `undefined`. @internal */
export function simdKernelsOf(backend: unknown): SimdKernels | undefined {
  if (!simdSwitch.enabled) return undefined;
  const memory = (backend as { wasm?: { asm?: { memory?: unknown } } } | null)?.wasm?.asm?.memory;
  if (typeof WebAssembly === 'undefined' || !(memory instanceof WebAssembly.Memory)) return undefined;
  const known = instances.get(memory);
  if (known !== undefined) return known ?? undefined;
  let kernels: SimdKernels | null = null;
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes()), { env: { memory } });
    kernels = instance.exports as unknown as SimdKernels;
  } catch {
    kernels = null; // no SIMD in this engine: the JavaScript loops run instead
  }
  instances.set(memory, kernels);
  return kernels ?? undefined;
}
