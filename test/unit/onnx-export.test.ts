/**
 * `exportOnnx` (tfjs-transfer/onnx): the exported file, run by onnxruntime-node, gives the probabilities
 * `predictProbabilities` gives (max abs difference 1e-4), on small synthetic models that use every layer kind the
 * exporter translates (odd, non-square sizes, stride 2, same and valid padding, depth multipliers 1 and 2, BN folded
 * and not, every head) and on the real MobileNetV2 0.35 (with BatchNormalization layers) with a default head.
 * Also: unsupported layers are named, the file is written atomically in Node, and the main entry never reaches
 * protobufjs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { build } from 'esbuild';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { attachHead, env, freeze, loadBackbone, type AttachHeadArgs, type Preprocessing, type TransferModel } from '../../src/node/index';
import { exportOnnx } from '../../src/onnx/index';
import protobuf from 'protobufjs/light.js';
import { permute } from '../../src/onnx/convert';
import { ONNX_SCHEMA } from '../../src/onnx/schema';
import { decodeImages, hasShared, listImages, MODEL_035, CATS_DOGS } from '../helpers/real-data';

env.verbose = false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-onnx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Sym = tfl.SymbolicTensor;

/** A backbone with every layer kind of MobileNetV2 and a few more, at an odd, non-square size. */
function syntheticBackbone(height = 29, width = 23, seed = 3): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.glorotUniform({ seed: seed * 100 + s });
  const input = tfl.input({ shape: [height, width, 3], name: 'input_1' });
  const apply = (layer: tfl.layers.Layer, x: Sym | Sym[]) => layer.apply(x) as Sym;
  // Conv with its own bias and relu, then BN + ReLU6 (folded into it only when the conv is linear).
  let x = apply(tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'c1', kernelInitializer: init(1), biasInitializer: 'ones' }), input);
  x = apply(tfl.layers.batchNormalization({ name: 'c1_bn' }), x);
  x = apply(tfl.layers.reLU({ maxValue: 6, name: 'c1_relu6' }), x);
  // Asymmetric zero padding + stride-2 valid depthwise (MobileNetV2's downsampling blocks), BN folded, plain ReLU.
  x = apply(tfl.layers.zeroPadding2d({ padding: [[1, 0], [0, 1]], name: 'pad' }), x);
  x = apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'dw1', depthwiseInitializer: init(2) }), x);
  x = apply(tfl.layers.batchNormalization({ name: 'dw1_bn' }), x);
  x = apply(tfl.layers.reLU({ name: 'dw1_relu' }), x);
  const skip = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, name: 'expand', kernelInitializer: init(3) }), x);
  // Depth multiplier 2 with a bias, stride 1 same, then a linear projection with a dilated 3x3 kernel.
  let y = apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', name: 'dw2', depthwiseInitializer: init(4), biasInitializer: tfl.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed }) }), skip);
  y = apply(tfl.layers.reLU({ maxValue: 6, name: 'dw2_relu6' }), y);
  y = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 3, dilationRate: 2, padding: 'same', useBias: false, name: 'project', kernelInitializer: init(5) }), y);
  x = apply(tfl.layers.add({ name: 'add' }), [skip, y]);
  // A BatchNormalization after an add: not foldable, exported as a per-channel affine.
  x = apply(tfl.layers.batchNormalization({ name: 'add_bn' }), x);
  x = apply(tfl.layers.activation({ activation: 'relu6', name: 'out_relu' }), x);
  const model = tfl.model({ inputs: input, outputs: x, name: 'synthetic' });
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    // gamma, beta, moving mean, moving variance: a small variance amplifies, so activations do not fade.
    const ranges: [number, number][] = [[0.8, 1.5], [-0.3, 0.3], [-0.2, 0.2], [0.02, 0.2]];
    const values = layer.getWeights().map((w, i) => tf.randomUniform(w.shape, ranges[i]![0], ranges[i]![1], 'float32', seed + i));
    layer.setWeights(values);
    tf.dispose(values);
  }
  return model;
}

/** Noisy images, each with its own tint and contrast (so that their probabilities differ). */
function randomImages(n: number, height: number, width: number, seed = 11): tf.Tensor4D {
  return tf.tidy(() => {
    const tint = tf.randomUniform([n, 1, 1, 3], 0, 200, 'float32', seed + 1);
    const contrast = tf.randomUniform([n, 1, 1, 1], 0.1, 1, 'float32', seed + 2);
    const noise = tf.randomUniform([n, height, width, 3], 0, 255, 'float32', seed);
    return tf.round(tf.clipByValue(tf.add(tf.mul(noise, contrast), tf.mul(tint, tf.sub(1, contrast))), 0, 255)) as tf.Tensor4D;
  });
}

/** Runs `bytes` with onnxruntime-node on `images`; returns the output and its dims. */
async function runOnnx(bytes: Uint8Array, images: tf.Tensor4D): Promise<{ data: Float32Array; dims: readonly number[]; session: ort.InferenceSession }> {
  const session = await ort.InferenceSession.create(bytes);
  const feed = new ort.Tensor('float32', new Float32Array(await images.data()), images.shape);
  const result = await session.run({ [session.inputNames[0]!]: feed });
  const out = result[session.outputNames[0]!]!;
  return { data: out.data as Float32Array, dims: out.dims, session };
}

/** Max abs difference between the ONNX file's probabilities and `predictProbabilities`. */
async function compare(model: TransferModel, images: tf.Tensor4D): Promise<number> {
  const bytes = await exportOnnx(model);
  const { data, dims, session } = await runOnnx(bytes, images);
  const expected = model.predictProbabilities(images);
  const want = (await expected.data()) as Float32Array;
  expected.dispose();
  expect(dims).toEqual([images.shape[0], model.numClasses]);
  expect(session.inputNames).toEqual(['images']);
  expect(session.outputNames).toEqual(['probabilities']);
  await session.release();
  let max = 0;
  for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(want[i]! - data[i]!));
  // A meaningful comparison: the probabilities differ between images (not a saturated or constant output).
  const k = model.numClasses;
  const spread = Math.max(...Array.from({ length: k }, (_, c) => {
    const column = Array.from(want.filter((_, i) => i % k === c));
    return Math.max(...column) - Math.min(...column);
  }));
  expect(spread).toBeGreaterThan(1e-3);
  return max;
}

async function syntheticModel(head: Omit<AttachHeadArgs, 'classes'> & { classes: number | string[] }, preprocessing: Preprocessing, size: [number, number] = [29, 23]): Promise<TransferModel> {
  const backbone = freeze(await loadBackbone(syntheticBackbone(size[0], size[1]), { preprocessing, name: 'synthetic' }));
  const model = attachHead(backbone, { seed: 5, ...head });
  // Non-zero biases in the head too.
  for (const layer of model.head.layers) {
    if (layer.getClassName() !== 'Dense') continue;
    const [k, b] = layer.getWeights();
    const nb = tf.randomUniform(b!.shape, -0.5, 0.5, 'float32', 9);
    layer.setWeights([k!, nb]);
    nb.dispose();
  }
  return model;
}

describe('exportOnnx: synthetic models, every layer kind', () => {
  const cases: [string, Omit<AttachHeadArgs, 'classes'> & { classes: number | string[] }, Preprocessing][] = [
    ['two classes, sigmoid head (two columns), per-channel preprocessing', { classes: ['cat', 'dog'] }, { scale: [1 / 58, 1 / 57, 1 / 57.5], offset: [-2.1, -2.0, -1.8] }],
    ['softmax, max pooling, hidden relu6 and gelu layers', { classes: 3, pooling: 'max', hiddenUnits: [7], hiddenActivation: 'gelu' }, { scale: 1 / 127.5, offset: -1 }],
    ['softmax, flatten (NHWC order), hidden swish layers', { classes: 4, pooling: 'flatten', hiddenUnits: [9, 5], hiddenActivation: 'swish', dropout: 0.5 }, { scale: 1 / 255, offset: 0 }],
    ['two classes, no dropout, hidden tanh / elu / selu', { classes: 2, hiddenUnits: [6], hiddenActivation: 'selu', dropout: 0 }, { scale: 1, offset: 0 }],
  ];
  it.each(cases)('%s: same probabilities as tfjs (<= 1e-4)', async (_, head, preprocessing) => {
    const model = await syntheticModel(head, preprocessing);
    const images = randomImages(5, 29, 23);
    const base = tf.memory().numTensors;
    const diff = await compare(model, images);
    expect(tf.memory().numTensors).toBe(base);
    expect(diff).toBeLessThanOrEqual(1e-4);
    images.dispose();
    model.dispose();
  });

  it('the batch size is free (1 and 7 images through the same file)', async () => {
    const model = await syntheticModel({ classes: 3 }, { scale: 1 / 127.5, offset: -1 }, [16, 16]);
    const bytes = await exportOnnx(model);
    for (const n of [1, 7]) {
      const images = randomImages(n, 16, 16, n);
      const { dims, session } = await runOnnx(bytes, images);
      expect(dims).toEqual([n, 3]);
      await session.release();
      images.dispose();
    }
    model.dispose();
  });

  it.each([13, 17, 21])('opset %i runs in onnxruntime with the same probabilities', async (opset) => {
    const model = await syntheticModel({ classes: 3, hiddenUnits: [4] }, { scale: 1 / 127.5, offset: -1 }, [16, 16]);
    const images = randomImages(3, 16, 16, opset);
    const { data, session } = await runOnnx(await exportOnnx(model, undefined, { opset }), images);
    const want = model.predictProbabilities(images);
    const expected = await want.data();
    expect(Math.max(...Array.from(expected, (v, i) => Math.abs(v - data[i]!)))).toBeLessThanOrEqual(1e-4);
    await session.release();
    tf.dispose([images, want]);
    model.dispose();
  });

  it('stores the class names and the input contract in the metadata', async () => {
    const model = await syntheticModel({ classes: ['a b', 'c"d', 'e'] }, { scale: 1, offset: 0 }, [16, 16]);
    const bytes = await exportOnnx(model, undefined, { inputName: 'pixels', outputName: 'p' });
    const modelProto = protobuf.Root.fromJSON(ONNX_SCHEMA as unknown as protobuf.INamespace).lookupType('onnx.ModelProto');
    const decoded = modelProto.toObject(modelProto.decode(bytes)) as { metadata_props: { key: string; value: string }[]; producer_name: string };
    const meta = Object.fromEntries(decoded.metadata_props.map((e) => [e.key, e.value]));
    expect(JSON.parse(meta.classes!)).toEqual(['a b', 'c"d', 'e']);
    expect(meta.input).toMatch(/pixels: float32 \[batch, 16, 16, 3\], raw RGB pixels 0\.\.255/);
    expect(decoded.producer_name).toBe('tfjs-transfer');
    const session = await ort.InferenceSession.create(bytes);
    expect(session.inputNames).toEqual(['pixels']);
    expect(session.outputNames).toEqual(['p']);
    const inputs = (session as unknown as { inputMetadata?: { name: string; shape?: unknown[] }[] }).inputMetadata;
    if (inputs) expect(inputs[0]!.shape?.slice(1)).toEqual([16, 16, 3]);
    await session.release();
    model.dispose();
  });

  it('writes the file atomically in Node (no temporary file left) and returns the same bytes', async () => {
    const model = await syntheticModel({ classes: 2 }, { scale: 1, offset: 0 }, [16, 16]);
    const file = path.join(tmp, 'sub', 'model.onnx');
    const bytes = await exportOnnx(model, file);
    expect(Buffer.compare(fs.readFileSync(file), bytes)).toBe(0);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['model.onnx']);
    // A file:// URL too, replacing the previous file.
    await exportOnnx(model, pathToFileURL(file).href, { outputName: 'p' });
    expect(Buffer.compare(fs.readFileSync(file), bytes)).not.toBe(0);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['model.onnx']);
    model.dispose();
  });
});

describe('exportOnnx: refusals', () => {
  it('names an unsupported layer and its class', async () => {
    const input = tfl.input({ shape: [12, 12, 3] });
    let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, name: 'conv' }).apply(input) as Sym;
    x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'my_pool' }).apply(x) as Sym;
    const backbone = freeze(await loadBackbone(tfl.model({ inputs: input, outputs: x }), { preprocessing: { scale: 1, offset: 0 } }));
    const model = attachHead(backbone, { classes: 2, seed: 1 });
    const base = tf.memory().numTensors;
    await expect(exportOnnx(model)).rejects.toMatchObject({ code: 'NOT_SUPPORTED', message: expect.stringMatching(/layer "my_pool" \(class MaxPooling2D\)/) });
    expect(tf.memory().numTensors).toBe(base);
    model.dispose();
  });

  it.each([
    ['an activation it has no translation for', () => tfl.layers.activation({ activation: 'hardSigmoid', name: 'odd_act' }), /layer "odd_act" \(class Activation\) cannot be exported to ONNX: activation "hardsigmoid"/],
    ['a conv with an activation it does not fuse', () => tfl.layers.conv2d({ filters: 2, kernelSize: 1, activation: 'sigmoid', name: 'odd_conv' }), /layer "odd_conv" \(class Conv2D\)/],
  ] as const)('refuses %s, naming the layer', async (_, make, message) => {
    const input = tfl.input({ shape: [8, 8, 3] });
    let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, name: 'conv' }).apply(input) as Sym;
    x = make().apply(x) as Sym;
    const backbone = freeze(await loadBackbone(tfl.model({ inputs: input, outputs: x }), { preprocessing: { scale: 1, offset: 0 } }));
    const model = attachHead(backbone, { classes: 3, seed: 1 });
    await expect(exportOnnx(model)).rejects.toMatchObject({ code: 'NOT_SUPPORTED', message: expect.stringMatching(message) });
    model.dispose();
  });

  it('refuses a function backbone (nothing to translate), naming it', async () => {
    const fn = (x: tf.Tensor4D) => tf.mean(x, [1, 2]);
    const backbone = await loadBackbone(fn, { inputSize: 16, preprocessing: { scale: 1 / 255, offset: 0 }, name: 'mean-colour' });
    const model = attachHead(backbone, { classes: 2, seed: 1 });
    await expect(exportOnnx(model)).rejects.toMatchObject({ code: 'NOT_SUPPORTED', message: expect.stringMatching(/backbone "mean-colour" is a function model; only layers backbones/) });
    model.dispose();
  });

  it('checks its arguments and refuses a disposed model', async () => {
    const model = await syntheticModel({ classes: 2 }, { scale: 1, offset: 0 }, [16, 16]);
    await expect(exportOnnx(model, undefined, { opset: 7 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(exportOnnx(model, undefined, { inputName: 'a b' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(exportOnnx(model, 'https://example.com/m.onnx')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const controller = new AbortController();
    controller.abort();
    await expect(exportOnnx(model, path.join(tmp, 'aborted.onnx'), { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(fs.existsSync(path.join(tmp, 'aborted.onnx'))).toBe(false);
    const saved = env.fileSystem;
    env.fileSystem = undefined;
    try {
      await expect(exportOnnx(model, path.join(tmp, 'x.onnx'))).rejects.toMatchObject({ code: 'NODE_ONLY' });
    } finally {
      env.fileSystem = saved;
    }
    model.dispose();
    await expect(exportOnnx(model)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(exportOnnx({} as TransferModel)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('exportOnnx: helpers and bundles', () => {
  it('permute moves axes like tf.transpose', () => {
    const shape = [2, 3, 4, 5];
    const t = tf.reshape(tf.range(0, 120), shape);
    for (const perm of [[3, 2, 0, 1], [2, 3, 0, 1], [0, 3, 1, 2]]) {
      const want = tf.transpose(t, perm);
      expect(Array.from(permute(new Float32Array(t.dataSync()), shape, perm))).toEqual(Array.from(want.dataSync()));
      want.dispose();
    }
    t.dispose();
  });

  it('the main entry never reaches protobufjs or the ONNX code; the onnx entry bundles for the browser', async () => {
    const reached = async (entry: string): Promise<string[]> => {
      const seen: string[] = [];
      await build({
        entryPoints: [entry],
        bundle: true,
        write: false,
        platform: 'browser',
        format: 'esm',
        logLevel: 'silent',
        external: ['@tensorflow/*'],
        plugins: [
          {
            name: 'record',
            setup(b) {
              b.onResolve({ filter: /protobufjs|\/onnx\// }, (args) => {
                seen.push(args.path);
                return undefined;
              });
            },
          },
        ],
      });
      return seen;
    };
    expect(await reached('src/index.ts')).toEqual([]);
    expect((await reached('src/onnx/index.ts')).some((p) => p.startsWith('protobufjs'))).toBe(true);
    const tsup = fs.readFileSync('tsup.config.ts', 'utf8');
    expect(tsup).toContain("'onnx/index': 'src/onnx/index.ts'");
  });

  it('the CLI loads protobufjs only when the export command runs (a separate chunk, imported dynamically)', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-cli-chunks-'));
    try {
      // As tsup builds the CLI (splitting, dependencies external): which externals does main.js reach statically?
      const { metafile } = await build({
        entryPoints: { main: 'src/cli/main.ts' }, bundle: true, splitting: true, outdir: out, platform: 'node', format: 'esm',
        logLevel: 'silent', metafile: true, external: ['@tensorflow/*', 'sharp', 'protobufjs', 'protobufjs/*', 'vega', 'vega-lite'],
      });
      const outputs = metafile.outputs;
      const key = (p: string) => Object.keys(outputs).find((k) => k.endsWith(p.replace(/^\.\//, '')))!;
      const staticExternals = new Set<string>();
      const visit = (file: string, seen = new Set<string>()) => {
        if (seen.has(file)) return;
        seen.add(file);
        for (const i of outputs[file]!.imports) {
          if (i.kind !== 'import-statement') continue;
          if (i.external) staticExternals.add(i.path);
          else visit(key(i.path), seen);
        }
      };
      visit(Object.keys(outputs).find((k) => k.endsWith('main.js'))!);
      expect([...staticExternals].filter((p) => p.startsWith('protobufjs'))).toEqual([]);
      const dynamic = Object.values(outputs).flatMap((o) => o.imports.filter((i) => i.external && i.path.startsWith('protobufjs')));
      expect(dynamic.length).toBeGreaterThan(0); // the export chunk still has it
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});

describe.runIf(hasShared)('exportOnnx: the real MobileNetV2 0.35 (BatchNormalization layers folded at export)', () => {
  it('a default head: same probabilities as tfjs on photos (<= 1e-4)', async () => {
    const size = process.env.TFJS_TRANSFER_TEST_BACKEND === 'cpu' ? 96 : 160;
    const backbone = freeze(await loadBackbone(MODEL_035, { inputSize: size }));
    const model = attachHead(backbone, { classes: ['cat', 'dog'], seed: 1 });
    const files = [...listImages(path.join(CATS_DOGS, 'validation/cats'), 2), ...listImages(path.join(CATS_DOGS, 'validation/dogs'), 2)];
    const images = await decodeImages(files, size);
    const diff = await compare(model, images);
    expect(diff).toBeLessThanOrEqual(1e-4);
    // Every BatchNormalization is folded into its conv: 52 convs, and one Mul (the preprocessing), no BN op.
    const modelProto = protobuf.Root.fromJSON(ONNX_SCHEMA as unknown as protobuf.INamespace).lookupType('onnx.ModelProto');
    const graph = (modelProto.toObject(modelProto.decode(await exportOnnx(model))) as { graph: { node: { op_type: string }[] } }).graph;
    const ops = new Map<string, number>();
    for (const n of graph.node) ops.set(n.op_type, (ops.get(n.op_type) ?? 0) + 1);
    expect(backbone.layers.filter((l) => l.getClassName() === 'BatchNormalization').length).toBe(52);
    expect({ Conv: ops.get('Conv'), Mul: ops.get('Mul'), BatchNormalization: ops.get('BatchNormalization') }).toEqual({ Conv: 52, Mul: 1, BatchNormalization: undefined });
    images.dispose();
    model.dispose();
  });
});
