/**
 * A tiny, valid TensorFlow.js **graph model** written by hand: the same files `tensorflowjs_converter` produces
 * for a TF Hub image feature vector (a `model.json` with `format: "graph-model"` and a GraphDef node list, plus a
 * binary weights file), small enough to build in a test. It stands in for a real TF Hub feature vector, which
 * needs the network.
 *
 * The graph: `images` (Placeholder, float32 `[-1, -1, -1, 3]`, pixels in [0, 1] like TF Hub image models)
 * → `conv` (Conv2D 3x3, stride 2, SAME, `filters` channels) + `bias` (BiasAdd) → `relu` (Relu6)
 * → `feature_vector` (Mean over height and width): `[n, filters]`, like a TF Hub feature vector.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The files of a graph model: what `tf.io.fromMemory` or a `model.json` on disk holds. */
export interface GraphModelFiles {
  /** The parsed `model.json`. */
  modelJson: Record<string, unknown>;
  /** The concatenated weights (`weights.bin`). */
  weights: Uint8Array;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const dims = (shape: number[]) => ({ dim: shape.map((size) => ({ size: String(size) })) });

/** Builds the model's files with deterministic weights (a seeded LCG), `filters` output features. */
export function tinyGraphModel(filters = 16, seed = 1): GraphModelFiles {
  let state = seed >>> 0 || 1;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const kernel = Float32Array.from({ length: 3 * 3 * 3 * filters }, () => next() * 0.5);
  const bias = Float32Array.from({ length: filters }, () => next() * 0.1);
  const axes = Int32Array.from([1, 2]);
  const float = { type: 'DT_FLOAT' };
  const node = [
    { name: 'images', op: 'Placeholder', attr: { dtype: float, shape: { shape: dims([-1, -1, -1, 3]) } } },
    { name: 'conv/kernel', op: 'Const', attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims([3, 3, 3, filters]) } } } },
    { name: 'conv/bias', op: 'Const', attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims([filters]) } } } },
    { name: 'pool/axes', op: 'Const', attr: { dtype: { type: 'DT_INT32' }, value: { tensor: { dtype: 'DT_INT32', tensorShape: dims([2]) } } } },
    {
      name: 'conv',
      op: 'Conv2D',
      input: ['images', 'conv/kernel'],
      attr: {
        T: float,
        strides: { list: { i: ['1', '2', '2', '1'] } },
        padding: { s: b64('SAME') },
        data_format: { s: b64('NHWC') },
        dilations: { list: { i: ['1', '1', '1', '1'] } },
      },
    },
    { name: 'bias', op: 'BiasAdd', input: ['conv', 'conv/bias'], attr: { T: float, data_format: { s: b64('NHWC') } } },
    { name: 'relu', op: 'Relu6', input: ['bias'], attr: { T: float } },
    { name: 'feature_vector', op: 'Mean', input: ['relu', 'pool/axes'], attr: { T: float, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } } },
  ];
  const weights = new Uint8Array(kernel.byteLength + bias.byteLength + axes.byteLength);
  weights.set(new Uint8Array(kernel.buffer), 0);
  weights.set(new Uint8Array(bias.buffer), kernel.byteLength);
  weights.set(new Uint8Array(axes.buffer), kernel.byteLength + bias.byteLength);
  const modelJson = {
    format: 'graph-model',
    generatedBy: 'hand-written (tfjs-transfer examples)',
    convertedBy: null,
    modelTopology: { node, library: {}, versions: { producer: 1 } },
    weightsManifest: [
      {
        paths: ['weights.bin'],
        weights: [
          { name: 'conv/kernel', shape: [3, 3, 3, filters], dtype: 'float32' },
          { name: 'conv/bias', shape: [filters], dtype: 'float32' },
          { name: 'pool/axes', shape: [2], dtype: 'int32' },
        ],
      },
    ],
  };
  return { modelJson, weights };
}

/** Writes the model into `dir` (`model.json` + `weights.bin`) and returns the `model.json` path. */
export async function writeTinyGraphModel(dir: string, filters = 16, seed = 1): Promise<string> {
  const { modelJson, weights } = tinyGraphModel(filters, seed);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'weights.bin'), weights);
  await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
  return join(dir, 'model.json');
}
