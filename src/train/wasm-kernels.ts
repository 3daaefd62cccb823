/**
 * Training kernels missing from the wasm backend of TensorFlow.js 4.22.
 *
 * `@tensorflow/tfjs-backend-wasm` 4.22 implements the forward convolutions and `Conv2DBackpropInput`, but not
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter` or `DepthwiseConv2dNativeBackpropInput`, so the
 * gradient of any convolution weight (and of anything below a depthwise convolution) throws on wasm. Every other
 * kernel on the gradient path of MobileNet-style layers (ReLU6 → `LessEqual`/`Step`/`Cast`/`Multiply`,
 * FusedBatchNorm → `Sub`/`Rsqrt`/`Tile`/`Sum`…, ZeroPadding → `Slice`, `Add`, `Mean`, bias → `Sum`) exists on wasm.
 *
 * `Conv2DBackpropFilter` and `DepthwiseConv2dNativeBackpropInput` compose the wasm backend's own kernels (XNNPACK
 * convolutions, matmul, transpose, pad) by calling their kernel functions directly, the way the wasm backend composes
 * its own kernels; `DepthwiseConv2dNativeBackpropFilter` is one pass over the wasm heap (`wasm-heap-kernels.ts`,
 * SIMD where available). This module imports only `@tensorflow/tfjs-core`, never imports or selects a backend, and
 * is safe in browsers.
 * @module
 */
import { backend_util, getKernel, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import type { DataId, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { TransferError } from '../errors';
import { depthwiseFilterGradient, registerWasmHeapKernels } from './wasm-heap-kernels';

const WASM = 'wasm';

/** The part of the wasm backend object the kernels below use. */
interface BackendLike {
  disposeData(dataId: DataId, force?: boolean): boolean;
}

type Pair = [number, number];

/** Calls the wasm backend's kernel `name` directly and returns its (single) output. */
function run(name: string, backend: BackendLike, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  const kernel = getKernel(name, WASM);
  if (kernel == null) {
    throw new TransferError(
      'NOT_SUPPORTED',
      `The wasm backend has no '${name}' kernel, which the wasm training kernels of tfjs-transfer need. ` +
        'Use @tensorflow/tfjs-backend-wasm 4.22 or another backend.',
    );
  }
  const out = kernel.kernelFunc({ inputs, backend, attrs });
  return Array.isArray(out) ? (out[0] as TensorInfo) : out;
}

/**
 * Tracks intermediates of one kernel call so that each is freed exactly once. Reshape outputs share their input's
 * data with a reference count, so every TensorInfo a kernel returned is released separately.
 */
class Scope {
  private readonly temps: TensorInfo[] = [];
  constructor(readonly backend: BackendLike) {}

  /** Runs a kernel and remembers its output as an intermediate. */
  op(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    const out = run(name, this.backend, inputs, attrs);
    this.temps.push(out);
    return out;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.op('Reshape', { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.op('Transpose', { x }, { perm });
  }

  /**
   * Pads (positive amounts, with zeros) and crops (negative amounts) the two spatial axes of an NHWC tensor.
   * Returns `x` itself when nothing changes.
   */
  padOrCrop(x: TensorInfo, rows: Pair, cols: Pair): TensorInfo {
    const [n, h, w, c] = x.shape as [number, number, number, number];
    let out = x;
    const pads: Pair[] = [
      [0, 0],
      [Math.max(0, rows[0]), Math.max(0, rows[1])],
      [Math.max(0, cols[0]), Math.max(0, cols[1])],
      [0, 0],
    ];
    if (pads.some(([a, b]) => a > 0 || b > 0)) {
      out = this.op('PadV2', { x: out }, { paddings: pads, constantValue: 0 });
    }
    if (Math.min(rows[0], rows[1], cols[0], cols[1]) < 0) {
      const begin = [0, Math.max(0, -rows[0]), Math.max(0, -cols[0]), 0];
      const size = [n, h + rows[0] + rows[1], w + cols[0] + cols[1], c];
      out = this.op('Slice', { x: out }, { begin, size });
    }
    return out;
  }

  /** Frees every intermediate except `keep` (the kernel's result), which is returned. */
  finish(keep: TensorInfo): TensorInfo {
    for (const t of this.temps) if (t !== keep) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
    return keep;
  }

  /** Frees every intermediate (on error). */
  dispose(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }
}

/** Runs `body` with a fresh {@link Scope}, freeing intermediates on success and on error. */
function withScope(backend: BackendLike, body: (s: Scope) => TensorInfo): TensorInfo {
  const s = new Scope(backend);
  try {
    return s.finish(body(s));
  } catch (e) {
    s.dispose();
    throw e;
  }
}

function checkFloat32(kernelName: string, ...xs: TensorInfo[]): void {
  for (const x of xs) {
    if (x.dtype !== 'float32') {
      throw new TransferError('NOT_SUPPORTED', `${kernelName} on wasm (tfjs-transfer) supports float32 only, got ${x.dtype}.`);
    }
  }
}

/**
 * `Conv2DBackpropFilter`: dW[kh,kw,i,o] = Σ_{n,y,x} xPad[n, y·sh + kh, x·sw + kw, i] · dy[n, y, x, o].
 *
 * - 1×1, stride 1, no padding: one matrix product of the pixel-major matrices. The operand with fewer channels is
 *   transposed (the cheaper copy) and becomes the left-hand side, because wasm `BatchMatMul` with `transposeA`
 *   takes a slow path (~12x slower). Measured at [6272, 96] and [6272, 576]: 30 ms against 54 ms for transposing
 *   the wider operand instead.
 * - otherwise the correlation is itself a convolution (as in TensorFlow): with the batch moved to the channel axis,
 *   `Conv2D(x → [inC, H, W, N], dy → filter [oh, ow, N, outC], dilation = stride)` gives `[inC, fh, fw, outC]`.
 */
const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as {
    strides: number | Pair;
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  checkFloat32('Conv2DBackpropFilter', x, dy);
  const dataFormat = backend_util.convertConv2DDataFormat(a.dataFormat ?? 'NHWC');
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    dataFormat,
  );
  return withScope(backend as BackendLike, (s) => {
    let xs = x;
    let dys = dy;
    if (dataFormat === 'channelsFirst') {
      xs = s.transpose(x, [0, 2, 3, 1]);
      dys = s.transpose(dy, [0, 2, 3, 1]);
    }
    const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
    const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
    const { filterHeight: fh, filterWidth: fw, dilationHeight: dh, dilationWidth: dw, padInfo } = info;
    const p = n * oh * ow;
    if (fh === 1 && fw === 1 && sh === 1 && sw === 1 && oh === h && ow === w && padInfo.top === 0 && padInfo.left === 0) {
      const x2 = s.reshape(xs, [p, ci]);
      const dy2 = s.reshape(dys, [p, co]);
      if (ci <= co) {
        const xT = s.transpose(x2, [1, 0]); // [ci, p]
        const prod = s.op('BatchMatMul', { a: xT, b: dy2 }, { transposeA: false, transposeB: false }); // [ci, co]
        return s.reshape(prod, [1, 1, ci, co]);
      }
      const dyT = s.transpose(dy2, [1, 0]); // [co, p]
      const prod = s.op('BatchMatMul', { a: dyT, b: x2 }, { transposeA: false, transposeB: false }); // [co, ci]
      return s.reshape(s.transpose(prod, [1, 0]), [1, 1, ci, co]);
    }
    // The rows/cols of the padded input that the forward op reads: exactly (o - 1)·s + (f - 1)·d + 1.
    const needH = (oh - 1) * sh + (fh - 1) * dh + 1;
    const needW = (ow - 1) * sw + (fw - 1) * dw + 1;
    const xp = s.padOrCrop(xs, [padInfo.top, needH - h - padInfo.top], [padInfo.left, needW - w - padInfo.left]);
    const xT = s.transpose(xp, [3, 1, 2, 0]); // [ci, needH, needW, n]
    const dyT = s.transpose(dys, [1, 2, 0, 3]); // [oh, ow, n, co]
    const r = s.op(
      'Conv2D',
      { x: xT, filter: dyT },
      { strides: [dh, dw], pad: 'valid', dataFormat: 'NHWC', dilations: [sh, sw] },
    ); // [ci, fh, fw, co]
    return s.transpose(r, [1, 2, 0, 3]);
  });
};

interface DepthwiseAttrs {
  strides: number | Pair;
  dilations: number | Pair;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

type Shape4 = [number, number, number, number];

/** The geometry of a depthwise convolution of an `inputShape` image by a `filterShape` filter. */
function depthwiseInfo(inputShape: Shape4, filterShape: Shape4, a: DepthwiseAttrs): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(inputShape, filterShape, a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
}

/**
 * `DepthwiseConv2dNativeBackpropInput`: the transposed depthwise convolution. dy is zero-upsampled by the stride
 * (reshape to `[N, oh, 1, ow, 1, C·M]`, pad the unit axes to the stride, reshape back), padded by
 * `effectiveFilter - 1 - pad` (cropped where that is negative), and convolved at stride 1 by the forward
 * `DepthwiseConv2dNative` with the spatially flipped filter reshaped to `[fh, fw, C·M, 1]`; for a channel
 * multiplier M > 1 the M outputs of each input channel are then summed.
 */
const depthwiseBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as DepthwiseAttrs & { inputShape: [number, number, number, number] };
  checkFloat32('DepthwiseConv2dNativeBackpropInput', dy, filter);
  const info = depthwiseInfo(a.inputShape, filter.shape as Shape4, a);
  return withScope(backend as BackendLike, (s) => {
    const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outChannels: cm } = info;
    const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
    const { filterHeight: fh, filterWidth: fw, dilationHeight: dh, dilationWidth: dw, padInfo } = info;
    const m = cm / c;
    let u = dy;
    if (sh > 1 || sw > 1) {
      const u6 = s.reshape(dy, [n, oh, 1, ow, 1, cm]);
      const padded = s.op(
        'PadV2',
        { x: u6 },
        { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 },
      );
      u = s.reshape(padded, [n, oh * sh, ow * sw, cm]);
    }
    const effH = (fh - 1) * dh + 1;
    const effW = (fw - 1) * dw + 1;
    const top = effH - 1 - padInfo.top;
    const left = effW - 1 - padInfo.left;
    const up = s.padOrCrop(u, [top, h + effH - 1 - top - oh * sh], [left, w + effW - 1 - left - ow * sw]);
    const flipped = s.op('Reverse', { x: s.reshape(filter, [fh, fw, cm, 1]) }, { dims: [0, 1] });
    const r = s.op(
      'DepthwiseConv2dNative',
      { x: up, filter: flipped },
      { strides: [1, 1], pad: 'valid', dilations: [dh, dw] },
    ); // [n, h, w, c·m]
    if (m === 1) return r;
    return s.op('Sum', { x: s.reshape(r, [n, h, w, c, m]) }, { axis: [4], keepDims: false });
  });
};

/** Kernel functions installed by {@link wrapConv2DBackpropInput}, so that wrapping happens once. */
const FAST_BACKPROP_INPUT = new WeakSet<KernelFunc>();

function isUnitStride(strides: number | Pair | undefined): boolean {
  return strides === undefined || strides === 1 || (Array.isArray(strides) && strides[0] === 1 && strides[1] === 1);
}

function isZeroPad(pad: unknown): boolean {
  // For a 1x1 filter at stride 1, 'same' pads nothing.
  if (pad === 'valid' || pad === 'same' || pad === 0) return true;
  return Array.isArray(pad) && pad.every((p) => Array.isArray(p) && p.every((v) => v === 0));
}

/**
 * Wraps the wasm backend's own `Conv2DBackpropInput` with a fast path for 1×1, stride-1, unpadded NHWC float32
 * convolutions (every expand and project convolution of MobileNetV2): dx = dy · Wᵀ, one matrix product of the
 * pixel-major `[N·H·W, outC]` gradient with the transposed `[outC, inC]` filter. For MobileNetV2's 14×14 576→96
 * projection at batch 32 this measured 74 ms against 1063 ms for wasm 4.22's own kernel on the same (loaded)
 * machine (bench/wasm-kernels.ts: ~140-290 ms unloaded). Every other configuration is delegated to the original
 * kernel function.
 */
function wrapConv2DBackpropInput(original: KernelFunc): KernelFunc {
  const wrapped: KernelFunc = (args) => {
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = args.attrs as unknown as { strides?: number | Pair; pad?: unknown; dataFormat?: string; inputShape: number[] };
    const [fh, fw, ci, co] = filter.shape as [number, number, number, number];
    const fast =
      fh === 1 &&
      fw === 1 &&
      dy.dtype === 'float32' &&
      filter.dtype === 'float32' &&
      (a.dataFormat === undefined || a.dataFormat === 'NHWC') &&
      isUnitStride(a.strides) &&
      isZeroPad(a.pad) &&
      dy.shape.length === 4 &&
      a.inputShape?.length === 4 &&
      dy.shape[1] === a.inputShape[1] &&
      dy.shape[2] === a.inputShape[2] &&
      dy.shape[3] === co &&
      a.inputShape[3] === ci;
    if (!fast) return original(args);
    return withScope(args.backend as BackendLike, (s) => {
      const [n, h, w] = dy.shape as [number, number, number, number];
      const dy2 = s.reshape(dy, [n * h * w, co]);
      // wasm BatchMatMul with transposeB takes a slow path (~13x slower measured); transpose the small filter instead.
      const wT = s.transpose(s.reshape(filter, [ci, co]), [1, 0]); // [co, ci]
      const dx = s.op('BatchMatMul', { a: dy2, b: wT }, { transposeA: false, transposeB: false }); // [p, ci]
      return s.reshape(dx, [n, h, w, ci]);
    });
  };
  FAST_BACKPROP_INPUT.add(wrapped);
  return wrapped;
}

/** What each kernel of this module needs from the wasm backend. */
const KERNELS: ReadonlyArray<{ name: string; func: KernelFunc; needs: readonly string[] }> = [
  {
    name: 'Conv2DBackpropFilter',
    func: conv2DBackpropFilter,
    needs: ['Reshape', 'Transpose', 'PadV2', 'Slice', 'BatchMatMul', 'Conv2D'],
  },
  {
    name: 'DepthwiseConv2dNativeBackpropFilter',
    func: depthwiseFilterGradient,
    needs: ['Identity'],
  },
  {
    name: 'DepthwiseConv2dNativeBackpropInput',
    func: depthwiseBackpropInput,
    needs: ['Reshape', 'Transpose', 'PadV2', 'Slice', 'Sum', 'Reverse', 'DepthwiseConv2dNative'],
  },
];

/**
 * Registers, for the `'wasm'` backend, the convolution gradient kernels that `@tensorflow/tfjs-backend-wasm` 4.22
 * lacks (`Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter`, `DepthwiseConv2dNativeBackpropInput`), so
 * that fine-tuning convolution and depthwise-convolution layers works on wasm. The kernels compose the wasm
 * backend's own kernels (XNNPACK convolutions, matmul, transpose, pad) and match the cpu backend's gradients to
 * float32 rounding.
 *
 * Only kernels that are missing are registered: an existing kernel (for instance from a later wasm backend) is
 * never replaced. Nothing is registered while the wasm backend's own kernels are not registered (the wasm
 * package was not imported), so this is safe to call in any environment; it does not import, select or
 * initialise a backend. Idempotent: a second call registers nothing. Training in tfjs-transfer calls it
 * automatically when `tf.getBackend() === 'wasm'`.
 *
 * The kernels support float32 and the NHWC layout (`Conv2DBackpropFilter` also NCHW), any stride, padding
 * (`'same'`, `'valid'`, a number, explicit), dilation and channel multiplier.
 *
 * It also wraps the wasm backend's existing `Conv2DBackpropInput` (once) with a fast path for 1×1, stride-1,
 * unpadded convolutions, dx = dy · Wᵀ as one matrix product, which is tens of times faster than wasm 4.22's own
 * kernel for MobileNetV2's expand and project layers; every other configuration still runs the original kernel.
 * The wrap is not listed in the return value (no kernel was missing).
 *
 * It also installs, once, the one-pass kernels of `wasm-heap-kernels.ts`: a buffer-sharing `Identity` (wasm 4.22
 * copies), a `Sum` over leading axes without the transpose (bias gradients), and fused gradients of `relu` and
 * `clipByValue` (ReLU6), registered as gradient functions that run the fused kernel on wasm and tfjs-core's own
 * formula on every other backend. The heavy loops run as SIMD WebAssembly on the backend's memory where the engine
 * supports SIMD, as plain JavaScript elsewhere; results equal the cpu backend's within 1e-5 relative.
 *
 * @returns The kernel names newly registered by this call (empty when there was nothing to do).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { registerWasmTrainingKernels } from 'tfjs-transfer';
 *
 * await tf.setBackend('wasm');
 * registerWasmTrainingKernels(); // ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', …]
 * const x = tf.randomNormal<tf.Rank.R4>([2, 14, 14, 8]);
 * const w = tf.variable(tf.randomNormal<tf.Rank.R4>([3, 3, 8, 16]));
 * const { grads } = tf.variableGrads(() => tf.conv2d(x, w, 1, 'same').square().mean());
 * ```
 */
export function registerWasmTrainingKernels(): string[] {
  const registered: string[] = [];
  for (const k of KERNELS) {
    if (getKernel(k.name, WASM) != null) continue;
    if (!k.needs.every((dep) => getKernel(dep, WASM) != null)) continue;
    registerKernel({ kernelName: k.name, backendName: WASM, kernelFunc: k.func });
    registered.push(k.name);
  }
  const backpropInput = getKernel('Conv2DBackpropInput', WASM);
  if (backpropInput != null && !FAST_BACKPROP_INPUT.has(backpropInput.kernelFunc) && ['Reshape', 'Transpose', 'BatchMatMul'].every((dep) => getKernel(dep, WASM) != null)) {
    unregisterKernel('Conv2DBackpropInput', WASM);
    registerKernel({ ...backpropInput, kernelFunc: wrapConv2DBackpropInput(backpropInput.kernelFunc) });
  }
  registerWasmHeapKernels();
  return registered;
}
