/**
 * Training kernels for the wasm backend written as single JavaScript passes over the wasm heap.
 *
 * Profiling one fine-tuning step of MobileNetV2 from `block_11_expand` on wasm 4.22 (`npm run bench:fine-tune`,
 * "profile") showed that after the convolutions, most of the time went to work that is cheap in itself but that
 * wasm 4.22 does in many passes or with copies:
 *
 * - the ReLU6 gradient (`clipByValue`'s: `GreaterEqual`, `LessEqual`, `LogicalAnd`, `ZerosLike`, `Select`; five
 *   passes and four temporaries over every activation) and ReLU's (`Step`, `Multiply`);
 * - `Identity`, which the engine runs on every tensor it saves for the backward pass, and which wasm 4.22
 *   implements as a full copy (the cpu backend shares the buffer);
 * - `Sum` over leading axes (every bias gradient), which wasm 4.22 does by transposing the whole input first;
 * - the depthwise filter gradient, composed from XNNPACK calls with a 14×14 "filter", at ~7x XNNPACK's usual cost
 *   per tap.
 *
 * Each kernel here reads its inputs and writes its output in place on the heap (`typedArrayFromHeap`), one pass,
 * no temporaries. Accumulations are in float64. They are used for float32 only; every other case goes to the
 * kernel they wrap. This module imports only `@tensorflow/tfjs-core` and never selects a backend.
 * @internal
 * @module
 */
import { backend_util, engine, getGradient, getKernel, registerGradient, registerKernel, unregisterKernel, util } from '@tensorflow/tfjs-core';
import type { DataId, DataType, GradConfig, KernelConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { simdKernelsOf, type SimdKernels } from './wasm-simd';

const WASM = 'wasm';

/** The part of the wasm backend these kernels use (all public methods of `BackendWasm` in 4.x). */
interface HeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  incRef(dataId: DataId): void;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

function isHeapBackend(b: unknown): b is HeapBackend {
  const o = b as Partial<HeapBackend> | null;
  return o != null && typeof o.makeOutput === 'function' && typeof o.typedArrayFromHeap === 'function' && typeof o.incRef === 'function';
}

/** A float32 output of `shape`, and its heap view, taken after every allocation (a heap growth detaches views). */
function output(backend: HeapBackend, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, 'float32');
}

function f32(backend: HeapBackend, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** The kernel of the fused activation gradients below. */
export const MASKED_GRADIENT = 'TfjsTransferMaskedGradient';

/**
 * `MASKED_GRADIENT`: dx = dy where x passes the activation, else 0, in one pass. `mode: 'clip'` is the gradient of
 * `clipByValue(x, min, max)` (passes when min ≤ x ≤ max; NaN gives 0, as tfjs-core's `where` formula does);
 * `mode: 'relu'` the gradient of `relu` (passes when x > 0; NaN gives NaN, as `dy · step(x)` does).
 */
const maskedGradient: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const { mode, min, max } = attrs as unknown as { mode: 'clip' | 'relu'; min: number; max: number };
  const b = backend as unknown as HeapBackend;
  const out = output(b, [...dy.shape]);
  const o = f32(b, out);
  const g = f32(b, dy);
  const v = f32(b, x);
  const n = o.length;
  // The SIMD kernels take whole groups of 4 lanes; the rest (and everything without SIMD) runs below.
  const simd = simdKernelsOf(backend);
  const done = simd ? n - (n % 4) : 0;
  if (simd && done > 0) {
    if (mode === 'clip') simd.clip_grad(g.byteOffset, v.byteOffset, o.byteOffset, done, min, max);
    else simd.relu_grad(g.byteOffset, v.byteOffset, o.byteOffset, done);
  }
  // Selected through the bits (dy's bits AND an all-ones or all-zeros mask): exact, and without the branch a
  // half-passing activation would mispredict (measured 3x slower with the branch).
  const ou = new Uint32Array(o.buffer, o.byteOffset, o.length);
  const gu = new Uint32Array(g.buffer, g.byteOffset, g.length);
  if (mode === 'clip') {
    for (let i = done; i < n; i++) {
      const xi = v[i]!;
      ou[i] = gu[i]! & -(+(xi >= min) & +(xi <= max));
    }
  } else {
    for (let i = done; i < n; i++) {
      const xi = v[i]!;
      ou[i] = gu[i]! & -+(xi > 0);
      if (xi !== xi) o[i] = NaN;
    }
  }
  return out;
};

/** Runs {@link MASKED_GRADIENT}; its own gradient (for second derivatives) masks the same way. */
function masked(dy: Tensor, x: Tensor, attrs: { mode: 'clip' | 'relu'; min: number; max: number }): Tensor {
  return engine().runKernel(MASKED_GRADIENT, { dy, x }, attrs as unknown as NamedAttrMap) as Tensor;
}

const maskedGradientGrad: GradConfig = {
  kernelName: MASKED_GRADIENT,
  inputsToSave: ['x'],
  gradFunc: (ddx, saved, attrs) => {
    const [x] = saved as [Tensor];
    const a = attrs as unknown as { mode: 'clip' | 'relu'; min: number; max: number };
    return { dy: () => masked(ddx as Tensor, x, a), x: () => engine().runKernel('ZerosLike', { x }) as Tensor };
  },
};

/** Whether the fused path serves this gradient: wasm is the active backend and the inputs are float32. */
function fusedHere(...ts: Tensor[]): boolean {
  return engine().backendName === WASM && getKernel(MASKED_GRADIENT, WASM) != null && ts.every((t) => t.dtype === 'float32');
}

/**
 * Gradients of `ClipByValue` and `Relu` that run {@link MASKED_GRADIENT} on wasm and the original formula on
 * every other backend (the gradient registry is global; the kernel exists on wasm only).
 */
function fusedActivationGradients(): GradConfig[] {
  const clip = getGradient('ClipByValue');
  const relu = getGradient('Relu');
  const out: GradConfig[] = [];
  if (clip != null && !FUSED_GRADIENTS.has(clip.gradFunc)) {
    out.push({
      ...clip,
      gradFunc: (dy, saved, attrs) => {
        const [x] = saved as [Tensor];
        if (!fusedHere(dy as Tensor, x)) return clip.gradFunc(dy, saved, attrs);
        const { clipValueMin, clipValueMax } = attrs as unknown as { clipValueMin: number; clipValueMax: number };
        return { x: () => masked(dy as Tensor, x, { mode: 'clip', min: clipValueMin, max: clipValueMax }) };
      },
    });
  }
  if (relu != null && !FUSED_GRADIENTS.has(relu.gradFunc)) {
    out.push({
      ...relu,
      gradFunc: (dy, saved, attrs) => {
        const [x] = saved as [Tensor];
        if (!fusedHere(dy as Tensor, x)) return relu.gradFunc(dy, saved, attrs);
        return { x: () => masked(dy as Tensor, x, { mode: 'relu', min: 0, max: 0 }) };
      },
    });
  }
  for (const g of out) FUSED_GRADIENTS.add(g.gradFunc);
  if (clip != null && out.some((g) => g.kernelName === 'ClipByValue')) ORIGINALS.gradients.push(clip);
  if (relu != null && out.some((g) => g.kernelName === 'Relu')) ORIGINALS.gradients.push(relu);
  return out;
}

/** Gradient functions installed here, so that wrapping happens once. */
const FUSED_GRADIENTS = new WeakSet<GradConfig['gradFunc']>();

/**
 * `Identity` that shares the input's buffer (a reference count, as `Reshape` does and as the cpu backend's
 * `Identity` does) instead of copying it. Tensors are immutable and a variable's `assign` replaces its buffer, so
 * a shared buffer is never written through.
 */
function sharingIdentity(original: KernelFunc): KernelFunc {
  return (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    if (x.dtype === 'string' || !isHeapBackend(args.backend)) return original(args);
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

/**
 * `Sum` over the leading axes of a float32 tensor (e.g. a bias gradient: NHWC summed over N, H, W) as column sums in
 * one pass; everything else goes to the original kernel (which handles trailing axes without a transpose).
 */
function leadingAxesSum(original: KernelFunc): KernelFunc {
  return (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const axes = util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const k = axes.length;
    const leading = k > 0 && k < x.shape.length && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32' || !isHeapBackend(args.backend)) return original(args);
    const b = args.backend;
    const cols = util.sizeFromShape(x.shape.slice(k));
    const rows = util.sizeFromShape(x.shape.slice(0, k));
    const shape = keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
    const out = output(b, shape);
    const simd = cols % 4 === 0 ? simdKernelsOf(b) : undefined;
    if (simd) {
      // Blocks of rows summed in float32 by SIMD into the output, each block added into float64 totals here.
      const acc = new Float64Array(cols);
      const block = f32(b, out);
      const v = f32(b, x);
      for (let r = 0; r < rows; r += SUM_BLOCK) {
        block.fill(0);
        simd.col_sum(v.byteOffset + r * cols * 4, block.byteOffset, Math.min(SUM_BLOCK, rows - r), cols);
        for (let c = 0; c < cols; c++) acc[c]! += block[c]!;
      }
      block.set(acc);
      return out;
    }
    const o = f32(b, out);
    const v = f32(b, x);
    const acc = new Float64Array(cols);
    for (let r = 0, base = 0; r < rows; r++, base += cols) for (let c = 0; c < cols; c++) acc[c]! += v[base + c]!;
    o.set(acc);
    return out;
  };
}

/** Rows per float32 block of the SIMD column sums (then added in float64). */
const SUM_BLOCK = 196;

interface DepthwiseFilterAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/**
 * `DepthwiseConv2dNativeBackpropFilter` (NHWC, float32, any stride, padding, dilation and channel multiplier) as one
 * pass: dW[kh,kw,c,m] = Σ_{n,y,x} x[n, y·sh + kh·dh − top, x·sw + kw·dw − left, c] · dy[n, y, x, c·M + m], the
 * innermost loop running along the channels, contiguous in both operands.
 */
export const depthwiseFilterGradient: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as DepthwiseFilterAttrs;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    true,
  );
  const b = backend as unknown as HeapBackend;
  const out = output(b, [...a.filterShape]);
  const m = a.filterShape[3];
  const simd = m === 1 && info.inChannels % 4 === 0 ? simdKernelsOf(backend) : undefined;
  if (simd) {
    // One image at a time into a float32 scratch on the heap, added into float64 totals here.
    const scratch = output(b, [info.filterHeight * info.filterWidth * info.inChannels]);
    try {
      f32(b, out).set(depthwiseFilterSumsSimd(simd, info, f32(b, scratch), f32(b, x), f32(b, dy)));
    } finally {
      b.disposeData(scratch.dataId);
    }
    return out;
  }
  f32(b, out).set(depthwiseFilterSums(info, m, f32(b, x), f32(b, dy)));
  return out;
};

/** {@link depthwiseFilterSums} for a channel multiplier of 1 and channels in groups of 4, with the SIMD kernel. */
function depthwiseFilterSumsSimd(simd: SimdKernels, info: backend_util.Conv2DInfo, scratch: Float32Array, xv: Float32Array, gv: Float32Array): Float64Array {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const acc = new Float64Array(scratch.length);
  for (let i = 0; i < n; i++) {
    scratch.fill(0);
    simd.dw_filter_image(
      xv.byteOffset + i * h * w * c * 4, gv.byteOffset + i * oh * ow * c * 4, scratch.byteOffset,
      h, w, c, oh, ow, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth,
      info.dilationHeight, info.dilationWidth, info.padInfo.top, info.padInfo.left,
    );
    for (let j = 0; j < acc.length; j++) acc[j]! += scratch[j]!;
  }
  return acc;
}

/** The sums of {@link depthwiseFilterGradient}, in float64. */
function depthwiseFilterSums(info: backend_util.Conv2DInfo, m: number, xv: Float32Array, gv: Float32Array): Float64Array {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const cm = c * m;
  const acc = new Float64Array(fh * fw * cm);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let kh = 0; kh < fh; kh++) {
        const iy = y * sh + kh * dh - top;
        if (iy < 0 || iy >= h) continue;
        for (let xo = 0; xo < ow; xo++) {
          const gBase = ((b * oh + y) * ow + xo) * cm;
          for (let kw = 0; kw < fw; kw++) {
            const ix = xo * sw + kw * dw - left;
            if (ix < 0 || ix >= w) continue;
            const xBase = ((b * h + iy) * w + ix) * c;
            const aBase = (kh * fw + kw) * cm;
            if (m === 1) {
              // Unrolled by 4 (measured 1.3x faster than the plain loop in V8).
              let ch = 0;
              for (; ch + 3 < c; ch += 4) {
                acc[aBase + ch]! += xv[xBase + ch]! * gv[gBase + ch]!;
                acc[aBase + ch + 1]! += xv[xBase + ch + 1]! * gv[gBase + ch + 1]!;
                acc[aBase + ch + 2]! += xv[xBase + ch + 2]! * gv[gBase + ch + 2]!;
                acc[aBase + ch + 3]! += xv[xBase + ch + 3]! * gv[gBase + ch + 3]!;
              }
              for (; ch < c; ch++) acc[aBase + ch]! += xv[xBase + ch]! * gv[gBase + ch]!;
            } else {
              for (let ch = 0; ch < c; ch++) {
                const xi = xv[xBase + ch]!;
                for (let q = 0; q < m; q++) acc[aBase + ch * m + q]! += xi * gv[gBase + ch * m + q]!;
              }
            }
          }
        }
      }
    }
  }
  return acc;
}

/** The kernel of one fused Adam update (outputs: weight, first moment, second moment). @internal */
export const FUSED_ADAM = 'TfjsTransferAdamUpdate';

/** The attributes of {@link FUSED_ADAM}. @internal */
export interface FusedAdamAttrs {
  beta1: number;
  beta2: number;
  /** 1 − β1^t and 1 − β2^t, as the optimizer's float32 `sub(1, accBeta)` gives them. */
  a1: number;
  a2: number;
  epsilon: number;
  learningRate: number;
}

/**
 * {@link FUSED_ADAM}: one Adam update of a float32 weight `w` with moments `m`, `v` and gradient `g` (the operations
 * and float32 roundings of tfjs-core's `AdamOptimizer`, `adam` in `wasm-simd.wat`), as three new outputs.
 */
const fusedAdamKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { w, m, v, g } = inputs as { w: TensorInfo; m: TensorInfo; v: TensorInfo; g: TensorInfo };
  const a = attrs as unknown as FusedAdamAttrs;
  const b = backend as unknown as HeapBackend;
  const outs = [output(b, [...w.shape]), output(b, [...w.shape]), output(b, [...w.shape])];
  // Views after every allocation: a heap growth detaches the earlier ones.
  const [ow, om, ov] = outs.map((t) => f32(b, t)) as [Float32Array, Float32Array, Float32Array];
  const [wv, mv, vv, gv] = [w, m, v, g].map((t) => f32(b, t)) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const f = Math.fround;
  const b1 = f(a.beta1);
  const c1 = f(1 - a.beta1);
  const b2 = f(a.beta2);
  const c2 = f(1 - a.beta2);
  const a1 = f(a.a1);
  const a2 = f(a.a2);
  const eps = f(a.epsilon);
  const nlr = f(-a.learningRate);
  const n = ow.length;
  const simd = simdKernelsOf(backend);
  const done = simd ? n - (n % 4) : 0;
  if (simd && done > 0) {
    simd.adam(wv.byteOffset, mv.byteOffset, vv.byteOffset, gv.byteOffset, ow.byteOffset, om.byteOffset, ov.byteOffset, done, b1, c1, b2, c2, a1, a2, eps, nlr);
  }
  for (let i = done; i < n; i++) {
    const gi = gv[i]!;
    const mi = f(f(mv[i]! * b1) + f(gi * c1));
    const vi = f(f(vv[i]! * b2) + f(f(gi * gi) * c2));
    om[i] = mi;
    ov[i] = vi;
    ow[i] = f(f(f(f(mi / a1) / f(f(Math.sqrt(f(vi / a2))) + eps)) * nlr) + wv[i]!);
  }
  return outs;
};

/** Kernel functions installed by {@link registerWasmHeapKernels}, so that wrapping happens once. */
const INSTALLED = new WeakSet<KernelFunc>();

/** What {@link registerWasmHeapKernels} replaced, for {@link unregisterWasmHeapKernels}. */
const ORIGINALS: { kernels: KernelConfig[]; gradients: GradConfig[] } = { kernels: [], gradients: [] };

function wrap(name: string, make: (original: KernelFunc) => KernelFunc): boolean {
  const k = getKernel(name, WASM);
  if (k == null || INSTALLED.has(k.kernelFunc)) return false;
  ORIGINALS.kernels.push(k);
  const func = make(k.kernelFunc);
  INSTALLED.add(func);
  unregisterKernel(name, WASM);
  registerKernel({ ...k, kernelFunc: func });
  return true;
}

/**
 * Installs the kernels of this module for `'wasm'` (once; later calls do nothing): the fused activation gradients,
 * the one-pass Adam update ({@link FUSED_ADAM}), the buffer-sharing `Identity` and the one-pass leading-axes `Sum`
 * ({@link depthwiseFilterGradient} is registered
 * with the other missing kernels by `registerWasmTrainingKernels`). Nothing happens while the wasm backend's
 * kernels are not registered.
 * @internal
 */
export function registerWasmHeapKernels(): void {
  if (getKernel('Identity', WASM) == null) return;
  if (getKernel(MASKED_GRADIENT, WASM) == null) {
    registerKernel({ kernelName: MASKED_GRADIENT, backendName: WASM, kernelFunc: maskedGradient });
    registerGradient(maskedGradientGrad);
  }
  for (const g of fusedActivationGradients()) registerGradient(g);
  if (getKernel(FUSED_ADAM, WASM) == null) registerKernel({ kernelName: FUSED_ADAM, backendName: WASM, kernelFunc: fusedAdamKernel });
  wrap('Identity', sharingIdentity);
  wrap('Sum', leadingAxesSum);
}

/**
 * Puts back the kernels and gradients {@link registerWasmHeapKernels} replaced (the fused-gradient kernel stays
 * registered, unused). For the benchmark's "before" profile; training never calls it.
 * @internal
 */
export function unregisterWasmHeapKernels(): void {
  for (const k of ORIGINALS.kernels) {
    unregisterKernel(k.kernelName, WASM);
    registerKernel(k);
  }
  for (const g of ORIGINALS.gradients) registerGradient(g);
  ORIGINALS.kernels.length = 0;
  ORIGINALS.gradients.length = 0;
}
