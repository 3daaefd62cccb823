import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// Registers every gradient of tfjs-core as a side effect, and provides the layers of the model tests.
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmTrainingKernels } from '../../src/train/wasm-kernels';

const MISSING = ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'];
const TOL = 1e-5;

let projectBackend = '';
let missingBefore: string[] = [];
let registeredFirst: string[] = [];
/** Worst relative cpu/wasm difference seen, reported at the end. */
let worst = 0;

beforeAll(async () => {
  projectBackend = tf.getBackend();
  missingBefore = MISSING.filter((k) => tf.getKernel(k, 'wasm') == null);
  registeredFirst = registerWasmTrainingKernels();
  await use('wasm');
});

afterAll(async () => {
  console.info(`wasm-kernels: worst relative difference wasm vs cpu = ${worst.toExponential(2)} (tolerance ${TOL})`);
  await use(projectBackend);
});

async function use(name: string): Promise<void> {
  await tf.setBackend(name);
  await tf.ready();
  if (tf.getBackend() !== name) throw new Error(`could not switch to the ${name} backend (got ${tf.getBackend()})`);
}

/** Deterministic pseudo-random values in [-0.5, 0.5). */
function values(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 4294967296 - 0.5;
  }
  return v;
}

function input<R extends tf.Rank>(shape: number[], seed: number): tf.Tensor<R> {
  return tf.tensor<tf.Rank>(values(shape.reduce((a, b) => a * b, 1), seed), shape) as unknown as tf.Tensor<R>;
}

/** max |a - b| / max |a| (a = the cpu reference). */
function relErr(a: Float32Array, b: Float32Array): number {
  expect(b.length).toBe(a.length);
  let m = 0;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]!));
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
  }
  return m === 0 ? d : d / m;
}

/**
 * Runs `f` on cpu then on wasm (each under tidy), asserts that on wasm neither tensors nor backend buffers leak,
 * and returns the worst relative difference over the outputs.
 */
async function compare(f: () => tf.Tensor[]): Promise<number> {
  const results: Float32Array[][] = [];
  for (const b of ['cpu', 'wasm']) {
    await use(b);
    const tensorsBefore = tf.memory().numTensors;
    const buffersBefore = tf.engine().backend.numDataIds();
    const outs = tf.tidy(f);
    results.push(outs.map((o) => o.dataSync() as Float32Array));
    tf.dispose(outs);
    if (b === 'wasm') {
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect(tf.engine().backend.numDataIds()).toBe(buffersBefore);
    }
  }
  const [cpu, wasm] = results as [Float32Array[], Float32Array[]];
  const err = Math.max(...cpu.map((c, i) => relErr(c, wasm[i]!)));
  worst = Math.max(worst, err);
  return err;
}

describe('registerWasmTrainingKernels', () => {
  it('registers exactly the missing kernels, once', () => {
    expect(missingBefore).toEqual(MISSING); // tfjs-backend-wasm 4.22 lacks all three
    expect(registeredFirst).toEqual(missingBefore);
    for (const k of MISSING) expect(tf.getKernel(k, 'wasm')).toBeDefined();
    expect(registerWasmTrainingKernels()).toEqual([]);
  });

  it('never replaces an existing kernel', () => {
    const ours = tf.getKernel('Conv2DBackpropFilter', 'wasm')!;
    const sentinel: tf.KernelFunc = () => {
      throw new Error('sentinel');
    };
    tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
    tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: sentinel });
    try {
      expect(registerWasmTrainingKernels()).toEqual([]);
      expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')!.kernelFunc).toBe(sentinel);
    } finally {
      tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
      tf.registerKernel(ours);
    }
  });
});

describe('wasm convolution gradients equal the cpu ones', () => {
  // [size, kernel, stride, padding, inChannels, outChannels or channel multiplier]
  const cases: Array<[number, number, number, 'same' | 'valid', number, number]> = [
    [7, 3, 1, 'same', 3, 5],
    [7, 3, 2, 'same', 4, 6],
    [14, 3, 2, 'same', 5, 4],
    [15, 3, 2, 'valid', 3, 6],
    [15, 3, 1, 'valid', 6, 3],
    [14, 1, 1, 'same', 8, 16],
    [14, 1, 1, 'valid', 16, 8],
    [15, 1, 2, 'valid', 4, 8],
    [9, 5, 2, 'same', 2, 3],
  ];

  it.each(cases)('conv2d %i k%i s%i %s %i->%i', async (size, k, s, pad, ci, co) => {
    const err = await compare(() => {
      const x = input<tf.Rank.R4>([2, size, size, ci], 1);
      const w = input<tf.Rank.R4>([k, k, ci, co], 2);
      const dy = input<tf.Rank.R4>(tf.conv2d(x, w, s, pad).shape, 3);
      const loss = (...t: tf.Tensor[]): tf.Tensor => tf.sum(tf.mul(tf.conv2d(t[0] as tf.Tensor4D, t[1] as tf.Tensor4D, s, pad), dy));
      return tf.grads(loss)([x, w]);
    });
    expect(err).toBeLessThan(TOL);
  });

  it.each(cases.map(([size, k, s, pad, c, co]) => [size, k, s, pad, c, co > c ? 2 : 1] as const))(
    'depthwiseConv2d %i k%i s%i %s c%i multiplier %i',
    async (size, k, s, pad, c, m) => {
      const err = await compare(() => {
        const x = input<tf.Rank.R4>([2, size, size, c], 4);
        const w = input<tf.Rank.R4>([k, k, c, m], 5);
        const dy = input<tf.Rank.R4>(tf.depthwiseConv2d(x, w, s, pad).shape, 6);
        const loss = (...t: tf.Tensor[]): tf.Tensor =>
          tf.sum(tf.mul(tf.depthwiseConv2d(t[0] as tf.Tensor4D, t[1] as tf.Tensor4D, s, pad), dy));
        return tf.grads(loss)([x, w]);
      });
      expect(err).toBeLessThan(TOL);
    },
  );

  it('fused conv2d / depthwise (bias + relu6) and numeric, explicit and ceil-rounded paddings', async () => {
    const err = await compare(() => {
      const x = input<tf.Rank.R4>([2, 15, 15, 4], 7);
      const w = input<tf.Rank.R4>([3, 3, 4, 6], 8);
      const dw = input<tf.Rank.R4>([3, 3, 6, 1], 9);
      const b1 = input<tf.Rank.R1>([6], 10);
      const f = (xx: tf.Tensor4D, ww: tf.Tensor4D, dd: tf.Tensor4D, bb: tf.Tensor1D): tf.Scalar => {
        const y = tf.fused.conv2d({ x: xx, filter: ww, strides: 2, pad: 'same', bias: bb, activation: 'relu6' });
        const z = tf.fused.depthwiseConv2d({ x: y, filter: dd, strides: 1, pad: 'same', bias: bb, activation: 'relu6' });
        return tf.sum(tf.square(z));
      };
      const g1 = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([x, w, dw, b1]);
      // Kernel-level configurations the layers never produce.
      const run = (name: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor =>
        tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
      const dy1 = input([2, 8, 8, 6], 11);
      const explicit = [[0, 0], [2, 0], [1, 3], [0, 0]]; // -> 8 x 9 outputs at stride 2
      const outs = [
        run('Conv2DBackpropFilter', { x, dy: input([2, 9, 9, 6], 12) }, { strides: 2, pad: 2, dataFormat: 'NHWC', filterShape: [3, 3, 4, 6] }),
        run('Conv2DBackpropFilter', { x, dy: input([2, 6, 6, 6], 13) }, { strides: 3, pad: 1, dataFormat: 'NHWC', dimRoundingMode: 'ceil', filterShape: [3, 3, 4, 6] }),
        run('Conv2DBackpropFilter', { x, dy: input([2, 8, 9, 6], 14) }, { strides: 2, pad: explicit, dataFormat: 'NHWC', filterShape: [3, 3, 4, 6] }),
        run('Conv2DBackpropFilter', { x: tf.transpose(x, [0, 3, 1, 2]), dy: tf.transpose(dy1, [0, 3, 1, 2]) }, { strides: 2, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 4, 6] }),
        run('DepthwiseConv2dNativeBackpropFilter', { x, dy: input([2, 9, 9, 8], 15) }, { strides: 2, pad: 2, dilations: 1, filterShape: [3, 3, 4, 2] }),
        run('DepthwiseConv2dNativeBackpropFilter', { x, dy: input([2, 8, 9, 4], 16) }, { strides: 2, pad: explicit, dilations: 1, filterShape: [3, 3, 4, 1] }),
        run('DepthwiseConv2dNativeBackpropInput', { dy: input([2, 9, 9, 8], 17), filter: input([3, 3, 4, 2], 18) }, { strides: 2, pad: 2, dilations: 1, inputShape: [2, 15, 15, 4] }),
        run('DepthwiseConv2dNativeBackpropInput', { dy: input([2, 8, 9, 4], 19), filter: input([3, 3, 4, 1], 20) }, { strides: 2, pad: explicit, dilations: 1, inputShape: [2, 15, 15, 4] }),
        run('DepthwiseConv2dNativeBackpropInput', { dy: input([2, 6, 6, 4], 21), filter: input([3, 3, 4, 1], 22) }, { strides: 3, pad: 1, dilations: 1, dimRoundingMode: 'ceil', inputShape: [2, 15, 15, 4] }),
      ];
      return [...g1, ...outs];
    });
    expect(err).toBeLessThan(TOL);
  });
});

describe('MobileNetV2-style layers train on wasm like on cpu', () => {
  /** ZeroPadding2D, Conv2D, BatchNormalization, ReLU(6), DepthwiseConv2D (stride 1 and 2), 1x1 Conv2D, Add. */
  function block(): tfl.LayersModel {
    const inp = tfl.input({ shape: [15, 15, 3] });
    const padded = tfl.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }).apply(inp) as tfl.SymbolicTensor;
    let y = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(padded);
    y = tfl.layers.batchNormalization().apply(y);
    const a = tfl.layers.reLU({ maxValue: 6 }).apply(y) as tfl.SymbolicTensor; // [8, 8, 8]
    let z = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false }).apply(a);
    z = tfl.layers.batchNormalization().apply(z);
    z = tfl.layers.reLU({ maxValue: 6 }).apply(z);
    z = tfl.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false }).apply(z);
    z = tfl.layers.batchNormalization().apply(z);
    let s = tfl.layers.add().apply([a, z as tfl.SymbolicTensor]);
    s = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2 }).apply(s);
    s = tfl.layers.conv2d({ filters: 12, kernelSize: 1, activation: 'relu6' }).apply(s);
    s = tfl.layers.globalAveragePooling2d({}).apply(s);
    const out = tfl.layers.dense({ units: 3, activation: 'softmax' }).apply(s) as tfl.SymbolicTensor;
    return tfl.model({ inputs: inp, outputs: out });
  }

  /**
   * Seeded starting weights: the same on every run, so that the comparison does not depend on a random
   * initialisation (an unseeded glorot draw made 3 steps at lr 0.5 amplify float differences past the
   * tolerance in about one run in ten). BatchNorm starts as the identity, as tfjs-layers initialises it.
   */
  let initial: Float32Array[] = [];
  function startingWeights(m: tfl.LayersModel): Float32Array[] {
    return m.weights.map((w, i) => {
      const n = w.shape.reduce((a: number, b) => a * (b ?? 1), 1);
      if (/gamma|moving_variance/.test(w.name)) return new Float32Array(n).fill(1);
      if (/beta|moving_mean|bias/.test(w.name)) return new Float32Array(n);
      return values(n, 1000 + i).map((v) => v * 0.6);
    });
  }
  function build(): tfl.LayersModel {
    const m = block();
    if (initial.length === 0) initial = startingWeights(m);
    m.setWeights(m.getWeights().map((w, i) => tf.tensor(initial[i]!, w.shape)));
    return m;
  }

  it('gradients of all trainable weights (training-mode BatchNorm) match', async () => {
    const err = await compare(() => {
      const model = build();
      const x = input<tf.Rank.R4>([4, 15, 15, 3], 30);
      const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
      const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
      const { grads } = tf.variableGrads(() => {
        const p = model.apply(x, { training: true }) as tf.Tensor;
        return tf.mean(tfl.metrics.categoricalCrossentropy(labels, p)) as tf.Scalar;
      }, vars);
      const out = vars.map((v) => grads[v.name]!);
      model.layers.forEach((l) => l.dispose());
      return out;
    });
    expect(err).toBeLessThan(TOL);
  });

  it('3 SGD steps give the same weights', async () => {
    const weights: Float32Array[][] = [];
    for (const b of ['cpu', 'wasm']) {
      await use(b);
      const model = build();
      model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
      const x = input<tf.Rank.R4>([6, 15, 15, 3], 31);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1, 0, 2], 'int32'), 3);
      await model.fit(x, y, { epochs: 3, batchSize: 6, shuffle: false, verbose: 0 });
      weights.push(model.getWeights().map((w) => w.dataSync().slice() as Float32Array));
      tf.dispose([x, y]);
      model.layers.forEach((l) => l.dispose());
    }
    const [cpu, wasm] = weights as [Float32Array[], Float32Array[]];
    expect(cpu.length).toBe(wasm.length);
    // The weights moved, and identically on both backends.
    expect(Math.max(...cpu.map((w, i) => relErr(initial[i]!, w)))).toBeGreaterThan(1e-3);
    const err = Math.max(...cpu.map((w, i) => relErr(w, wasm[i]!)));
    worst = Math.max(worst, err);
    expect(err).toBeLessThan(TOL);
  });
});

describe('Conv2DBackpropInput: fast 1x1 path on wasm', () => {
  const run = (inputs: tf.NamedTensorMap, attrs: object): tf.Tensor =>
    tf.engine().runKernel('Conv2DBackpropInput', inputs, attrs as tf.NamedAttrMap) as tf.Tensor;

  it('is installed once, wrapping the original kernel', () => {
    const wrapped = tf.getKernel('Conv2DBackpropInput', 'wasm')!.kernelFunc;
    registerWasmTrainingKernels();
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')!.kernelFunc).toBe(wrapped);
  });

  // [n, h, w, inC, outC, strides, pad]: the first four take the matmul path, the rest are delegated.
  const cases: Array<[number, number, number, number, number, number, 'same' | 'valid' | number]> = [
    [3, 14, 14, 96, 576, 1, 'same'],
    [2, 7, 5, 160, 32, 1, 'valid'],
    [1, 1, 1, 8, 4, 1, 0],
    [4, 9, 9, 24, 144, 1, 'same'],
    [2, 9, 9, 6, 4, 2, 'valid'], // stride 2: the original kernel
    [2, 9, 9, 6, 4, 1, 1], // padded: the original kernel
  ];
  it.each(cases)('1x1 dx [%i, %i, %i, %i] from %i channels, stride %i, pad %s equals cpu', async (n, h, w, ci, co, s, pad) => {
    const err = await compare(() => {
      const x = input<tf.Rank.R4>([n, h, w, ci], 40);
      const f = input<tf.Rank.R4>([1, 1, ci, co], 41);
      const dy = input<tf.Rank.R4>(tf.conv2d(x, f, s, pad as 'same').shape, 42);
      return [run({ dy, filter: f }, { strides: s, pad, dataFormat: 'NHWC', inputShape: x.shape })];
    });
    expect(err).toBeLessThan(TOL);
  });

  it('3x3 and NCHW still run the original kernel and agree with cpu', async () => {
    const err = await compare(() => {
      const x = input<tf.Rank.R4>([2, 8, 8, 4], 43);
      const f = input<tf.Rank.R4>([3, 3, 4, 5], 44);
      const dy = input<tf.Rank.R4>([2, 8, 8, 5], 45);
      return [run({ dy, filter: f }, { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: x.shape })];
    });
    expect(err).toBeLessThan(TOL);
  });

  // The speed itself (tens of times the original kernel) is measured by bench/wasm-kernels.ts ("wasm dx" of the
  // 1x1 layers); a wall-clock bound here would fail on a loaded machine. What the test pins is the work done:
  // the expand layer's input gradient at batch 32 is one matrix product, not a call of the original kernel.
  it('runs an expand layer at batch 32 as one matrix product [6272, 576] x [576, 96] (the fast path)', async () => {
    await use('wasm');
    const dy = input<tf.Rank.R4>([32, 14, 14, 576], 46);
    const f = input<tf.Rank.R4>([1, 1, 96, 576], 47);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [32, 14, 14, 96] };
    const matmul = tf.getKernel('BatchMatMul', 'wasm')!;
    const calls: number[][][] = [];
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({
      ...matmul,
      kernelFunc: (args) => {
        calls.push([args.inputs.a!.shape, args.inputs.b!.shape]);
        return matmul.kernelFunc(args);
      },
    });
    try {
      const r = run({ dy, filter: f }, attrs);
      expect(r.shape).toEqual([32, 14, 14, 96]);
      r.dispose();
      expect(calls).toEqual([[[32 * 14 * 14, 576], [576, 96]]]);
      calls.length = 0;
      // A 3x3 filter is not a matrix product: it still runs the original kernel, which calls no BatchMatMul.
      const small = input<tf.Rank.R4>([2, 6, 6, 8], 48);
      const g = input<tf.Rank.R4>([3, 3, 4, 8], 49);
      run({ dy: small, filter: g }, { ...attrs, inputShape: [2, 6, 6, 4] }).dispose();
      tf.dispose([small, g]);
      expect(calls).toEqual([]);
    } finally {
      tf.unregisterKernel('BatchMatMul', 'wasm');
      tf.registerKernel(matmul);
      tf.dispose([dy, f]);
    }
  });
});

describe('one-pass heap kernels on wasm (fused activation gradients, Sum, Identity, depthwise filter)', () => {
  it('the ReLU6 and ReLU gradients (incl. x exactly at 0 and 6) equal the cpu ones', async () => {
    const err = await compare(() => {
      const base = values(2 * 5 * 5 * 7, 50);
      // Values across [-2, 8), and some exactly on the clip points.
      const xs = Float32Array.from(base, (v, i) => (i % 11 === 0 ? 0 : i % 13 === 0 ? 6 : v * 10 + 3));
      const x = tf.tensor4d(xs, [2, 5, 5, 7]);
      const dy = input<tf.Rank.R4>([2, 5, 5, 7], 51);
      const relu6 = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(tf.clipByValue(tf.relu(t), 0, 6), dy));
      const relu = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(tf.relu(t), dy));
      const clip = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(tf.clipByValue(t, -1, 2.5), dy));
      return [tf.grad(relu6)(x), tf.grad(relu)(x), tf.grad(clip)(x)];
    });
    expect(err).toBe(0);
  });

  it('a NaN input gives the cpu result too (0 through clipByValue, NaN through relu)', async () => {
    for (const b of ['cpu', 'wasm']) {
      await use(b);
      const [c, r] = tf.tidy(() => {
        const x = tf.tensor1d([NaN, 1, -1, 7]);
        return [tf.grad((t: tf.Tensor) => tf.sum(tf.clipByValue(t, 0, 6)))(x), tf.grad((t: tf.Tensor) => tf.sum(tf.relu(t)))(x)];
      });
      expect(Array.from(c!.dataSync())).toEqual([0, 1, 0, 0]);
      expect(Array.from(r!.dataSync())).toEqual([NaN, 1, 0, 1]);
      tf.dispose([c!, r!]);
    }
  });

  it('Sum over leading axes (the bias gradient), with and without keepDims, equals cpu; other axes too', async () => {
    const err = await compare(() => {
      const x = input<tf.Rank.R4>([3, 5, 7, 9], 52);
      // Channels in groups of 4 take the SIMD path (and more rows than one float32 block of 196).
      const y = input<tf.Rank.R4>([5, 9, 7, 12], 57);
      return [tf.sum(x, [0, 1, 2]), tf.sum(x, [0]), tf.sum(x, [0, 1], true), tf.sum(x, [1, 2]), tf.sum(x, -1), tf.sum(x), tf.sum(y, [0, 1, 2]), tf.sum(y, [0, 1, 2], true), tf.sum(y, [0])];
    });
    expect(err).toBeLessThan(TOL);
  });

  it('Identity shares the buffer instead of copying it (and a clone stays valid after the original is freed)', async () => {
    await use('wasm');
    const x = input<tf.Rank.R2>([4, 6], 53);
    const buffers = tf.engine().backend.numDataIds();
    const y = tf.clone(x);
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    const expected = Array.from(x.dataSync());
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual(expected);
    y.dispose();
  });

  it.each([
    [11, 3, 1, 'same', 5, 3, 1],
    [10, 3, 2, 'valid', 3, 3, 1],
    [7, 5, 1, 'valid', 4, 1, 1],
    [8, 3, 2, 'same', 6, 2, 1],
    // (tfjs-core has no depthwise gradient for dilations > 1 on any backend, so there is nothing to compare.)
  ] as const)('depthwise filter gradient %i k%i s%i %s c%i multiplier %i dilation %i equals cpu', async (size, k, s, pad, c, m, d) => {
    const err = await compare(() => {
      const x = input<tf.Rank.R4>([3, size, size, c], 54);
      const w = input<tf.Rank.R4>([k, k, c, m], 55);
      const conv = (a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D => tf.depthwiseConv2d(a, b, s, pad, 'NHWC', d);
      const dy = input<tf.Rank.R4>(conv(x, w).shape, 56);
      return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a as tf.Tensor4D, b as tf.Tensor4D), dy)))([x, w]);
    });
    expect(err).toBeLessThan(TOL);
  });
});
