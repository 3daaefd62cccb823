/**
 * Translates a tfjs-layers model into an ONNX graph, step by step of its folded program (`backbone/fold.ts`):
 * BatchNormalization is already folded into the convolutions there, and conv + ReLU6 are one step. Layers the
 * folded program runs through `layer.apply` (dropout, flatten, dense with sigmoid / softmax, the library's
 * preprocessing layer) are translated here by class; any other layer is refused with a `TransferError` that
 * names it.
 *
 * Layout: the graph's input is NHWC (as in tfjs) and is transposed once to NCHW, ONNX's layout for Conv and
 * pooling; every rank-4 value inside the graph is NCHW, and `Flatten` transposes back first so that the flattened
 * order is tfjs' (h, w, c).
 * @internal
 * @module
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import type { FoldInspection, FoldStep } from '../backbone/fold';
import { TransferError } from '../errors';
import type { OnnxGraph } from './graph';

type Layer = tfl.layers.Layer;
type ConfigDict = ReturnType<Layer['getConfig']>;

/** A value of the graph: its name and rank (rank-4 values are NCHW). */
interface Value {
  name: string;
  rank: number;
}

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

/** Layer classes that are the identity at inference. */
const INFERENCE_IDENTITY = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']);

/** What the exporter translates, for error messages. */
export const SUPPORTED_LAYERS =
  'Conv2D, DepthwiseConv2D, BatchNormalization, ReLU (ReLU6), Activation, Add, ZeroPadding2D, Rescaling, ' +
  'GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Dropout, Dense and the library\'s preprocessing layer';

/** SELU's constants as tfjs-core uses them (`tf.selu`). */
const SELU_SCALE_ALPHA = 1.7580993408473768;
const SELU_SCALE = 1.0507009873554805;

/** `data` of shape `shape` with its axes permuted (`out.shape[i] = shape[perm[i]]`). */
export function permute(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i]!;
  }
  const stride = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < rank; i++) src += index[i]! * stride[i]!;
    out[o] = data[src]!;
    for (let i = rank - 1; i >= 0; i--) {
      if (++index[i]! < outShape[i]!) break;
      index[i] = 0;
    }
  }
  return out;
}

function activationOf(config: ConfigDict): string {
  const a = config.activation;
  if (a == null) return 'linear';
  if (typeof a === 'string') return a.toLowerCase();
  const cls = (a as { className?: unknown }).className;
  return typeof cls === 'string' ? cls.toLowerCase() : String(a);
}

function unsupported(layer: Layer, why?: string): TransferError {
  return new TransferError(
    'NOT_SUPPORTED',
    `exportOnnx: layer "${layer.name}" (class ${layer.getClassName()}) cannot be exported to ONNX${why ? `: ${why}` : ''}. ` +
      `The exporter translates ${SUPPORTED_LAYERS}.`,
  );
}

/**
 * ONNX padding of a conv step. tfjs' `same` pads the extra row / column at the end: ONNX's `SAME_UPPER`, which
 * onnxruntime does not take with dilations; a dilated conv has stride 1 (Keras refuses both), so its padding does
 * not depend on the input size and is written out.
 */
function convPadding(step: Extract<FoldStep, { op: 'conv2d' | 'depthwiseConv2d' }>, kh: number, kw: number, base: string): Record<string, { string: string } | { ints: number[] }> {
  if (step.pad === 'valid') return { pads: { ints: [0, 0, 0, 0] } };
  const [dh, dw] = step.dilations;
  if (dh === 1 && dw === 1) return { auto_pad: { string: 'SAME_UPPER' } };
  if (step.strides[0] !== 1 || step.strides[1] !== 1) throw new Error(`exportOnnx: "${base}" has both strides and dilations above 1.`);
  const total = [(kh - 1) * dh, (kw - 1) * dw] as const;
  const before = total.map((t) => Math.floor(t / 2));
  return { pads: { ints: [before[0]!, before[1]!, total[0] - before[0]!, total[1] - before[1]!] } };
}

/** Emits the ONNX ops of one folded program into a graph. */
export class Converter {
  private readonly values: (Value | undefined)[];
  private readonly constants = new Map<number, string>();

  constructor(
    private readonly g: OnnxGraph,
    private readonly folded: FoldInspection,
  ) {
    this.values = new Array(folded.plan.numSlots);
  }

  /** Sets the model's input (`[n, h, w, c]` NHWC) and transposes it to NCHW. */
  input(name: string): void {
    this.values[0] = { name: this.g.node('Transpose', [name], 'input_nchw', { perm: { ints: TO_NCHW } }), rank: 4 };
  }

  /** Translates every step; returns the model's output value. */
  run(): Value {
    for (const step of this.folded.plan.steps) this.step(step);
    const out = this.values[this.folded.plan.outputs[0]!];
    if (!out) throw new Error('exportOnnx: the model output was not computed.');
    return out;
  }

  private v(slot: number): Value {
    const value = this.values[slot];
    if (!value) throw new Error(`exportOnnx: value ${slot} is used before it is computed.`);
    return value;
  }

  /** A scalar float constant, shared. */
  scalar(x: number): string {
    let name = this.constants.get(x);
    if (!name) {
      name = this.g.floats(`const_${String(x).replace(/[^0-9a-z]/gi, '_')}`, [], [x]);
      this.constants.set(x, name);
    }
    return name;
  }

  /** A per-channel constant broadcasting against a value of `rank` (channels on axis 1 of NCHW, last otherwise). */
  private channels(base: string, values: Float32Array | number[], rank: number): string {
    const n = values.length;
    return this.g.floats(base, rank === 4 ? [1, n, 1, 1] : [n], values);
  }

  private weight(index: number): { data: Float32Array; shape: number[] } {
    return { data: this.folded.weights[index]!, shape: this.folded.plan.weightShapes[index]! };
  }

  private step(step: FoldStep): void {
    const base = step.layers.at(-1) ?? step.op;
    if (step.op === 'layer') {
      const layer = this.folded.layers[step.layer]!;
      if (step.outs.length !== 1) throw unsupported(layer, `it has ${step.outs.length} outputs`);
      this.values[step.outs[0]!] = this.layer(layer, step.xs.map((s) => this.v(s)));
      return;
    }
    this.values[step.out] = this.op(step, base);
  }

  private op(step: Exclude<FoldStep, { op: 'layer' }>, base: string): Value {
    const g = this.g;
    switch (step.op) {
      case 'conv2d':
      case 'depthwiseConv2d':
        return this.conv(step, base);
      case 'affine': {
        const x = this.v(step.x);
        const mul = g.node('Mul', [x.name, this.channels(`${base}_scale`, this.weight(step.scale).data, x.rank)], `${base}_mul`);
        return { name: g.node('Add', [mul, this.channels(`${base}_shift`, this.weight(step.shift).data, x.rank)], base), rank: x.rank };
      }
      case 'rescale': {
        const x = this.v(step.x);
        const mul = g.node('Mul', [x.name, this.scalar(step.scale)], `${base}_mul`);
        return { name: g.node('Add', [mul, this.scalar(step.offset)], base), rank: x.rank };
      }
      case 'pad': {
        const [, [top, bottom], [left, right]] = step.paddings;
        const pads = g.ints(`${base}_pads`, [0, 0, top!, left!, 0, 0, bottom!, right!]);
        return { name: g.node('Pad', [this.v(step.x).name, pads], base, { mode: { string: 'constant' } }), rank: 4 };
      }
      case 'relu': {
        const x = this.v(step.x);
        const max = step.maxValue;
        return { name: max === undefined ? g.node('Relu', [x.name], base) : g.node('Clip', [x.name, this.scalar(0), this.scalar(max)], base), rank: x.rank };
      }
      case 'add': {
        const xs = step.xs.map((s) => this.v(s));
        const op = xs.length === 1 ? 'Identity' : xs.length === 2 ? 'Add' : 'Sum';
        return { name: g.node(op, xs.map((x) => x.name), base), rank: xs[0]!.rank };
      }
      case 'globalAvgPool':
      case 'globalMaxPool': {
        const pooled = g.node(step.op === 'globalAvgPool' ? 'GlobalAveragePool' : 'GlobalMaxPool', [this.v(step.x).name], step.keepDims ? base : `${base}_4d`);
        return step.keepDims ? { name: pooled, rank: 4 } : { name: g.node('Flatten', [pooled], base, { axis: { int: 1 } }), rank: 2 };
      }
      case 'dense':
        return this.dense(this.v(step.x), this.weight(step.kernel), step.bias === undefined ? undefined : this.weight(step.bias).data, step.activation, base);
    }
  }

  private conv(step: Extract<FoldStep, { op: 'conv2d' | 'depthwiseConv2d' }>, base: string): Value {
    const { data, shape } = this.weight(step.kernel);
    const [kh, kw, inC, outOrMult] = shape as [number, number, number, number];
    let kernel: string;
    let group = 1;
    if (step.op === 'conv2d') {
      // tfjs [kh, kw, in, out] -> ONNX [out, in, kh, kw].
      kernel = this.g.floats(`${base}_kernel`, [outOrMult, inC, kh, kw], permute(data, shape, [3, 2, 0, 1]));
    } else {
      // Depthwise [kh, kw, in, mult] -> grouped conv [in * mult, 1, kh, kw]; output c * mult + m reads input c.
      kernel = this.g.floats(`${base}_kernel`, [inC * outOrMult, 1, kh, kw], permute(data, shape, [2, 3, 0, 1]));
      group = inC;
    }
    const inputs = [this.v(step.x).name, kernel];
    if (step.bias !== undefined) inputs.push(this.g.floats(`${base}_bias`, [this.weight(step.bias).shape[0]!], this.weight(step.bias).data));
    const conv = this.g.node('Conv', inputs, step.activation === 'linear' ? base : `${base}_conv`, {
      kernel_shape: { ints: [kh, kw] },
      strides: { ints: step.strides },
      dilations: { ints: step.dilations },
      group: { int: group },
      ...convPadding(step, kh, kw, base),
    });
    return { name: this.activation({ name: conv, rank: 4 }, step.activation, base), rank: 4 };
  }

  private dense(x: Value, kernel: { data: Float32Array; shape: number[] }, bias: Float32Array | undefined, activation: string, base: string, layer?: Layer): Value {
    if (x.rank !== 2) throw layer ? unsupported(layer, `its input has rank ${x.rank} (the exporter translates Dense on vectors)`) : new Error(`exportOnnx: dense on rank ${x.rank}`);
    const [inUnits, units] = kernel.shape as [number, number];
    const w = this.g.floats(`${base}_kernel`, [inUnits, units], kernel.data);
    const b = bias ? this.g.floats(`${base}_bias`, [units], bias) : undefined;
    const linear = activation === 'linear';
    const y = b ? this.g.node('Gemm', [x.name, w, b], linear ? base : `${base}_linear`) : this.g.node('MatMul', [x.name, w], linear ? base : `${base}_linear`);
    return { name: this.activation({ name: y, rank: 2 }, activation, base, layer), rank: 2 };
  }

  /** The ops of a Keras activation applied to `x`; returns the output name (`x` itself for `linear`). */
  activation(x: Value, name: string, base: string, layer?: Layer): string {
    const g = this.g;
    switch (name) {
      case 'linear':
        return x.name;
      case 'relu':
        return g.node('Relu', [x.name], base);
      case 'relu6':
        return g.node('Clip', [x.name, this.scalar(0), this.scalar(6)], base);
      case 'sigmoid':
        return g.node('Sigmoid', [x.name], base);
      case 'softmax':
        // tfjs' softmax runs over the last axis: channels, which are axis 1 of an NCHW value.
        return g.node('Softmax', [x.name], base, { axis: { int: x.rank === 4 ? 1 : -1 } });
      case 'tanh':
        return g.node('Tanh', [x.name], base);
      case 'elu':
        return g.node('Elu', [x.name], base, { alpha: { float: 1 } });
      case 'selu':
        return g.node('Selu', [x.name], base, { alpha: { float: SELU_SCALE_ALPHA / SELU_SCALE }, gamma: { float: SELU_SCALE } });
      case 'softplus':
        return g.node('Softplus', [x.name], base);
      case 'softsign':
        return g.node('Softsign', [x.name], base);
      case 'swish':
        return g.node('Mul', [x.name, g.node('Sigmoid', [x.name], `${base}_sigmoid`)], base);
      case 'gelu': {
        // 0.5 * x * (1 + erf(x / sqrt(2))), as tfjs-layers' gelu.
        const erf = g.node('Erf', [g.node('Mul', [x.name, this.scalar(Math.SQRT1_2)], `${base}_scaled`)], `${base}_erf`);
        const cdf = g.node('Mul', [g.node('Add', [erf, this.scalar(1)], `${base}_plus1`), this.scalar(0.5)], `${base}_cdf`);
        return g.node('Mul', [x.name, cdf], base);
      }
      default:
        if (layer) throw unsupported(layer, `activation "${name}" has no ONNX translation here`);
        throw new Error(`exportOnnx: activation "${name}" has no ONNX translation.`);
    }
  }

  /** A layer the folded program runs through `layer.apply`, by class. */
  private layer(layer: Layer, xs: Value[]): Value {
    const cls = layer.getClassName();
    const config = layer.getConfig();
    const x = xs[0]!;
    const base = layer.name;
    if (xs.length !== 1) throw unsupported(layer, `it takes ${xs.length} inputs`);
    if (INFERENCE_IDENTITY.has(cls)) return { name: this.g.node('Identity', [x.name], base), rank: x.rank };
    if (cls === 'Flatten') {
      if (x.rank <= 2) return { name: this.g.node('Identity', [x.name], base), rank: x.rank };
      const nhwc = x.rank === 4 ? this.g.node('Transpose', [x.name], `${base}_nhwc`, { perm: { ints: TO_NHWC } }) : x.name;
      return { name: this.g.node('Flatten', [nhwc], base, { axis: { int: 1 } }), rank: 2 };
    }
    if (cls === 'Activation') return { name: this.activation(x, activationOf(config), base, layer), rank: x.rank };
    if (cls === 'Softmax') {
      const axis = config.axis as number | number[] | undefined;
      if (!(axis === undefined || axis === -1 || (Array.isArray(axis) && axis.length === 1 && axis[0] === -1))) throw unsupported(layer, `softmax over axis ${JSON.stringify(axis)}`);
      return { name: this.activation(x, 'softmax', base, layer), rank: x.rank };
    }
    if (cls === 'Dense') {
      const [kernel, bias] = layer.getWeights();
      const k = { data: new Float32Array(kernel!.dataSync() as Float32Array), shape: kernel!.shape.slice() };
      const b = config.useBias && bias ? new Float32Array(bias.dataSync() as Float32Array) : undefined;
      return this.dense(x, k, b, activationOf(config), base, layer);
    }
    if (cls === 'TfjsTransfer>ChannelAffine') {
      const scale = config.scale as number[];
      const offset = config.offset as number[];
      const mul = this.g.node('Mul', [x.name, this.channels(`${base}_scale`, scale, x.rank)], `${base}_mul`);
      return { name: this.g.node('Add', [mul, this.channels(`${base}_offset`, offset, x.rank)], base), rank: x.rank };
    }
    if (cls === 'Conv2D' || cls === 'DepthwiseConv2D') throw unsupported(layer, `activation "${activationOf(config)}", groups or data format not translated`);
    throw unsupported(layer);
  }
}
