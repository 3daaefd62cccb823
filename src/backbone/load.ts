/**
 * `loadBackbone`: step 3a, the pretrained model and its weights, from any source.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as tfc from '@tensorflow/tfjs-converter';
import { env, log } from '../env';
import { TransferError, check, throwIfAborted } from '../errors';
import type { ImageSize, Preprocessing, ProgressCallback } from '../types';
import { Backbone, graphRunner, type BackboneFunction } from './backbone';
import { forceInferenceBatchNorm } from './batchnorm';
import { MOBILENET_V2_PREPROCESSING, backboneOfflineHint, resolveCatalogName, type CatalogEntry } from './catalog';
import { describeCandidates, layerOutput, rewire } from './graph';
import { downloadMonitor, urlLoadHandler, weightByteLength, type DownloadMonitor } from '../artifacts/download';
import { loadGraphModelSafely, loadLayersModelSafely, readModelArtifacts } from '../artifacts/load-layers';
import { disposeLayers } from '../util/dispose';
import { isHttpUrl, isLocalPath } from '../util/location';
import { NO_PREPROCESSING, preprocessingLayer, validatePreprocessing } from './preprocess';
import { findPretrainedClassifier } from './pretrained-classifier';

/**
 * Anything {@link loadBackbone} accepts.
 * @category Step 3: Compose
 */
export type BackboneSource =
  | string
  | URL
  | tf.io.IOHandler
  | tfl.LayersModel
  | tfc.GraphModel
  | BackboneFunction
  | Backbone;

/**
 * Options of {@link loadBackbone}.
 * @category Step 3: Compose
 */
export interface LoadBackboneArgs {
  /**
   * The layer (layers models) or graph node (graph models) whose output are the features: the "bottleneck".
   * A wrong name lists candidates.
   * @defaultValue `"out_relu"` for MobileNetV2 (the same cut as Keras `include_top=False`); for another layers
   * model, the last layer with a spatial (4-D) output; for a graph model, its output
   */
  featureLayer?: string;
  /**
   * Input size, one number (square) or `[height, width]`. Fully convolutional layers models (MobileNetV2) are
   * rebuilt to run at any size, e.g. 96, 128, 160 or 192; graph models with a fixed input size cannot change it.
   * @defaultValue the size the model declares (224 for the catalog's 224 models)
   */
  inputSize?: number | ImageSize;
  /**
   * How raw 0..255 pixels are mapped to the model's input. A function backbone receives preprocessed pixels.
   * @defaultValue the catalog's (MobileNetV2: [-1, 1]); for a layers model with a layer named like MobileNetV2's
   * `out_relu`, MobileNetV2's; otherwise none (`{ scale: 1, offset: 0 }`: the model receives raw pixels)
   */
  preprocessing?: Preprocessing;
  /**
   * A name for reports and cache identity.
   * @defaultValue the catalog name, file name or model name
   */
  name?: string;
  /**
   * For a function backbone: the shape of one image's features.
   * @defaultValue found by running one blank image
   */
  featureShape?: number[];
  /**
   * Whether a URL is a TF Hub handle (`model.json?tfjs-format=file` is appended).
   * @defaultValue detected from the URL (tfhub.dev, kaggle.com/models) or the catalog entry
   */
  fromTFHub?: boolean;
  /**
   * Download progress, in the one {@link Progress} shape: stage `'download'`, `done` of `total` bytes (`total`
   * grows as each weight shard's size becomes known), `file` the model's URL or path. The last report has
   * `done === total`.
   * @defaultValue none
   */
  onProgress?: ProgressCallback;
  /**
   * Stops the download: before each file, and inside a fetch that honours the signal.
   * @defaultValue none
   */
  signal?: AbortSignal;
  /**
   * For a `tf.LayersModel` or `tf.GraphModel` you pass in: let the backbone own it, so disposing the backbone (or a
   * `TransferModel` built on it) frees its weights. When false, a model you pass in stays yours, and you dispose
   * it when done. Models the library loads itself (names, URLs, paths, handlers) are always owned.
   * @defaultValue `false`
   */
  takeOwnership?: boolean;
}

function isIOHandler(x: unknown): x is tf.io.IOHandler {
  return typeof x === 'object' && x !== null && typeof (x as tf.io.IOHandler).load === 'function' && !(x instanceof tfl.LayersModel);
}

function isGraphModel(x: unknown): x is tfc.GraphModel {
  return x instanceof tfc.GraphModel || (typeof x === 'object' && x !== null && typeof (x as tfc.GraphModel).executeAsync === 'function' && 'modelSignature' in (x as object));
}

function normaliseSize(size: number | ImageSize | undefined, where: string): ImageSize | undefined {
  if (size === undefined) return undefined;
  const pair: ImageSize = typeof size === 'number' ? [size, size] : size;
  check(
    Array.isArray(pair) && pair.length === 2 && pair.every((v) => Number.isInteger(v) && v >= 8 && v <= 4096),
    `${where}: inputSize must be an integer from 8 to 4096 or [height, width], got ${JSON.stringify(size)}.`,
  );
  return pair;
}

/** Loads model artefacts (layers or graph) through a handler, then builds the right model. */
async function loadAnyModel(loader: Loader, args: LoadBackboneArgs): Promise<tfl.LayersModel | tfc.GraphModel> {
  const { handler, where, monitor } = loader;
  const artifacts = await readModelArtifacts(handler, where, loader.offlineHint);
  throwIfAborted(args.signal, 'Loading the backbone');
  monitor.finish(weightByteLength(artifacts));
  const topology = artifacts.modelTopology as Record<string, unknown> | undefined;
  if (!topology || typeof topology !== 'object') {
    throw new TransferError('MODEL_INVALID', `${where}: model.json has no modelTopology; it is not a TF.js model.`);
  }
  const isGraph = artifacts.format === 'graph-model' || Array.isArray((topology as { node?: unknown }).node);
  const memory = tf.io.fromMemory(artifacts);
  return isGraph ? loadGraphModelSafely(memory, where) : loadLayersModelSafely(memory, where);
}

/** A handler for a model's files, where they are, and the monitor that reports their download. */
interface Loader {
  handler: tf.io.IOHandler;
  where: string;
  monitor: DownloadMonitor;
  /** What to do when the download fails on the network (URLs only). */
  offlineHint?: string;
}

function monitorFor(file: string, args: LoadBackboneArgs): DownloadMonitor {
  return downloadMonitor({ fetch: env.fetch, onProgress: args.onProgress, signal: args.signal, file, what: 'Loading the backbone' });
}

function loaderFor(source: string, args: LoadBackboneArgs, entry: CatalogEntry | undefined): Loader {
  if (isLocalPath(source)) {
    if (!env.fileSystem) {
      throw new TransferError(
        'NODE_ONLY',
        `"${source}" is not a catalog name (e.g. "mobilenet_v2_1.0_224") nor a URL, so it was taken as a local path, ` +
          `and this environment has no file access. In Node, import from ` +
          `'tfjs-transfer/node' (it installs the file loader); in the browser, pass a URL or a tf.io.IOHandler ` +
          `(e.g. tf.io.browserFiles).`,
      );
    }
    return { handler: env.fileSystem.loader(source), where: source, monitor: monitorFor(source, args) };
  }
  if (isHttpUrl(source) && !env.allowRemoteModels) {
    throw new TransferError(
      'NETWORK',
      `Remote models are disabled (env.allowRemoteModels = false); cannot load ${source}. Pass a local path (a ` +
        "model.json or its folder) or a handler as the backbone (loadBackbone, transferLearn's backbone option, the CLI's --backbone).",
    );
  }
  const fromTFHub = args.fromTFHub ?? entry?.fromTFHub ?? /tfhub\.dev|kaggle\.com\/models/.test(source);
  let url = source;
  if (fromTFHub && !url.endsWith('model.json') && !url.includes('tfjs-format=file')) url = `${url.replace(/\/$/, '')}/model.json?tfjs-format=file`;
  const monitor = monitorFor(url, args);
  const handler = urlLoadHandler(url, monitor);
  if (!handler) throw new TransferError('UNKNOWN_BACKBONE', `No TF.js IO handler accepts "${url}".`);
  return { handler, where: url, monitor, offlineHint: isHttpUrl(url) ? backboneOfflineHint(url, entry) : undefined };
}

/** The model behind a source that is not a function or a Backbone: loaded (names, URLs, paths, handlers) or given. */
async function modelOf(
  source: BackboneSource,
  args: LoadBackboneArgs,
): Promise<{ model: tfl.LayersModel | tfc.GraphModel; where: string; entry?: CatalogEntry }> {
  if (typeof source === 'string' || source instanceof URL) {
    const text = source.toString();
    const entry = resolveCatalogName(text);
    if (entry && !env.allowRemoteModels) {
      throw new TransferError(
        'NETWORK',
        `Catalog backbone "${text}" would be downloaded from ${entry.url}, but env.allowRemoteModels is false. ` +
          `Pass the local path of a downloaded copy (its model.json or the folder holding it) as the backbone instead: ` +
          `loadBackbone('./models/${entry.name}'), transferLearn(data, { backbone: './models/${entry.name}' }), or --backbone ./models/${entry.name}.`,
      );
    }
    const loader = loaderFor(entry ? entry.url : text, args, entry);
    if (entry) log(`tfjs-transfer: loading ${entry.name} from ${entry.url}`);
    return { model: await loadAnyModel(loader, args), where: loader.where, entry };
  }
  if (source instanceof tfl.LayersModel) return { model: source, where: `LayersModel "${source.name}"` };
  if (isGraphModel(source)) return { model: source, where: 'GraphModel' };
  if (isIOHandler(source)) {
    const loader = { handler: source, where: 'IOHandler', monitor: monitorFor('IOHandler', args) };
    return { model: await loadAnyModel(loader, args), where: loader.where };
  }
  throw new TransferError(
    'INVALID_ARGUMENT',
    `loadBackbone: unsupported source ${Object.prototype.toString.call(source)}. Pass a catalog name, a URL or path, an IOHandler, a tf.LayersModel, a tf.GraphModel or a function.`,
  );
}

/** What the builders of a backbone need besides the model. */
interface BuildContext {
  args: LoadBackboneArgs;
  inputSize: ImageSize | undefined;
  entry: CatalogEntry | undefined;
  name: string;
  where: string;
  /** Whether the backbone owns the model (loaded by the library, or `takeOwnership`). */
  owned: boolean;
  /** The size a MobileNetV2 layers model declaring 224 runs at when `inputSize` is not given ({@link loadTrainingBackbone}). */
  mobileNetV2Size: ImageSize | undefined;
}

/**
 * Loads a pretrained backbone: step 3 of the workflow, before {@link freeze} and {@link attachHead}.
 *
 * `source` may be:
 * - a catalog name: `"mobilenet_v2"` or `"mobilenet_v2_<alpha>_<size>"` with alpha 0.35, 0.5, 0.75, 1.0 (sizes 96,
 *   128, 160, 192, 224) or 1.3, 1.4 (224), resolved to Google's published TF.js models (see `resolveCatalogName`);
 * - a URL (`https://.../model.json`, `indexeddb://...`), a local path or `file://` URL (Node: import from
 *   `tfjs-transfer/node`), to a layers model **or** a graph model;
 * - a `tf.io.IOHandler`;
 * - a loaded `tf.LayersModel` or `tf.GraphModel`, or a function from preprocessed images to features.
 *
 * The backbone takes raw pixels (0..255) and applies its preprocessing itself. It is not frozen yet: call
 * {@link freeze}. BatchNormalization layers always run in inference mode (see the fine-tuning guide).
 *
 * @example
 * ```ts
 * import { loadBackbone } from 'tfjs-transfer';
 * const backbone = await loadBackbone('mobilenet_v2_1.0_224');             // official weights
 * const small = await loadBackbone('./models/mobilenet/model.json', { inputSize: 160 }); // Node path
 * const custom = await loadBackbone(myLayersModel, { featureLayer: 'conv5_block3_out' });
 * ```
 * @category Step 3: Compose
 */
export async function loadBackbone(source: BackboneSource, args: LoadBackboneArgs = {}): Promise<Backbone> {
  return load(source, args, undefined);
}

/**
 * {@link loadBackbone} as `transferLearn` and the CLI's `train` use it: a MobileNetV2 layers model (one with an
 * `out_relu` layer, cut there) that declares a 224 input runs at `mobileNetV2Size` unless `args.inputSize` is
 * given; any other backbone runs at its declared size, as with `loadBackbone`.
 * @internal
 */
export async function loadTrainingBackbone(source: BackboneSource, args: LoadBackboneArgs, mobileNetV2Size: number): Promise<Backbone> {
  return load(source, args, [mobileNetV2Size, mobileNetV2Size]);
}

async function load(source: BackboneSource, args: LoadBackboneArgs, mobileNetV2Size: ImageSize | undefined): Promise<Backbone> {
  check(source != null, 'loadBackbone: source is required: a catalog name such as "mobilenet_v2_1.0_224", a URL or path to a model.json, an IOHandler, a model or a function.');
  check(typeof args === 'object' && args !== null, 'loadBackbone: options must be an object.');
  if (args.preprocessing != null) validatePreprocessing(args.preprocessing, 'loadBackbone'); // reliability: was `if (options.preprocessing)`, so 0 / '' / false slipped through
  const inputSize = normaliseSize(args.inputSize, 'loadBackbone');
  throwIfAborted(args.signal, 'Loading the backbone');

  if (source instanceof Backbone) return source;

  if (typeof source === 'function' && !(source instanceof tfl.LayersModel)) {
    return fromFunction(source as BackboneFunction, args, inputSize);
  }

  const { model, where, entry } = await modelOf(source, args);
  const owned = typeof source === 'string' || source instanceof URL || isIOHandler(source) || args.takeOwnership === true;
  const name = args.name ?? entry?.name ?? (typeof source === 'string' ? source : source instanceof URL ? source.toString() : (model as { name?: string }).name ?? 'backbone');
  const ctx: BuildContext = { args, inputSize, entry, name, where, owned, mobileNetV2Size };
  try {
    if (model instanceof tfl.LayersModel) return fromLayersModel(model, ctx);
    return fromGraphModel(model, ctx);
  } catch (e) {
    if (owned) model.dispose();
    throw e;
  }
}

function defaultFeatureLayer(model: tfl.LayersModel): string {
  if (model.layers.some((l) => l.name === 'out_relu')) return 'out_relu';
  for (let i = model.layers.length - 1; i >= 0; i--) {
    const shape = model.layers[i]!.outputShape;
    if (Array.isArray(shape) && !Array.isArray(shape[0]) && shape.length === 4) return model.layers[i]!.name;
  }
  return model.layers[model.layers.length - 1]!.name;
}

/** The size a layers model runs at when the caller gives none: its declared one, or `mobileNetV2Size` (see {@link loadTrainingBackbone}). */
function layersModelSize(model: tfl.LayersModel, declared: readonly (number | null)[], featureLayer: string, ctx: BuildContext): ImageSize {
  const size: ImageSize = [declared[1] ?? ctx.entry?.inputSize ?? 224, declared[2] ?? ctx.entry?.inputSize ?? 224];
  const mobileNetV2 = featureLayer === 'out_relu' && model.layers.some((l) => l.name === 'out_relu');
  return ctx.mobileNetV2Size && mobileNetV2 && size[0] === 224 && size[1] === 224 ? ctx.mobileNetV2Size : size;
}

function fromLayersModel(model: tfl.LayersModel, ctx: BuildContext): Backbone {
  const { args, inputSize, entry, name, where, owned } = ctx;
  if (model.inputs.length !== 1) {
    throw new TransferError('NOT_SUPPORTED', `${where}: a backbone takes one image input; this model has ${model.inputs.length} inputs.`);
  }
  const declared = model.inputs[0]!.shape;
  if (declared.length !== 4 || (declared[3] !== 3 && declared[3] != null)) {
    throw new TransferError('NOT_SUPPORTED', `${where}: a backbone takes RGB images [n, h, w, 3]; this model's input is [${declared.map(String).join(', ')}].`);
  }
  const featureLayer = args.featureLayer ?? entry?.featureLayer ?? defaultFeatureLayer(model);
  const size: ImageSize = inputSize ?? layersModelSize(model, declared, featureLayer, ctx);
  const featureTensor = layerOutput(model, featureLayer, `loadBackbone(${where})`);
  const preprocessing =
    args.preprocessing ?? entry?.preprocessing ?? (model.layers.some((l) => l.name === 'out_relu') ? MOBILENET_V2_PREPROCESSING : NO_PREPROCESSING);

  const input = tfl.input({ shape: [size[0], size[1], 3], name: 'tt_image', dtype: 'float32' });
  const pre = preprocessingLayer(preprocessing).apply(input) as tfl.SymbolicTensor;
  let features: tfl.SymbolicTensor;
  try {
    [features] = rewire([featureTensor], new Map([[model.inputs[0]!, pre]])) as [tfl.SymbolicTensor];
  } catch (e) {
    if (e instanceof TransferError) throw e;
    throw new TransferError(
      'SHAPE_MISMATCH',
      `${where}: cannot run this model at input size ${size[0]}x${size[1]} up to "${featureLayer}": ` +
        `${e instanceof Error ? e.message : String(e)}. Use its declared size (${declared.slice(1, 3).join('x')}) or an ` +
        `earlier feature layer (${describeCandidates(model)})`,
      { cause: e },
    );
  }
  const cut = tfl.model({ inputs: input, outputs: features, name: `${model.name}_features` });
  forceInferenceBatchNorm(cut.layers);
  const featureShape = (features.shape.slice(1) as (number | null)[]).map((d, i) => {
    if (d == null) throw new TransferError('NOT_SUPPORTED', `${where}: feature layer "${featureLayer}" has an unknown dimension ${i + 1}.`);
    return d;
  });
  // The model's own classifier right above the features (e.g. the ImageNet top), copied for the unknown detector.
  const pretrainedClassifier = findPretrainedClassifier(model, featureTensor);
  // Layers of the original model outside the cut (e.g. the ImageNet top) belong to no one else when we loaded
  // the model ourselves: free them now. A model passed in by the caller is shared, not copied.
  if (owned) {
    const kept = new Set(cut.layers);
    disposeLayers(model.layers.filter((l) => !kept.has(l)));
  }
  return new Backbone({
    name,
    kind: 'layers',
    inputSize: size,
    featureShape,
    preprocessing,
    featureLayer,
    model: cut,
    source: entry?.url ?? where,
    ownsLayers: owned,
    borrowedFrom: owned ? undefined : model,
    pretrainedClassifier,
  });
}

function fromGraphModel(model: tfc.GraphModel, ctx: BuildContext): Backbone {
  const { args, inputSize, entry, name, where, owned } = ctx;
  const inputs = model.inputs;
  if (inputs.length !== 1) throw new TransferError('NOT_SUPPORTED', `${where}: a backbone takes one image input; this graph model has ${inputs.length}.`);
  const shape = inputs[0]!.shape ?? [-1, -1, -1, 3];
  const fixedH = shape[1] != null && shape[1] > 0 ? shape[1] : undefined;
  const fixedW = shape[2] != null && shape[2] > 0 ? shape[2] : undefined;
  const size: ImageSize = inputSize ?? [fixedH ?? entry?.inputSize ?? 224, fixedW ?? entry?.inputSize ?? 224];
  if ((fixedH && fixedH !== size[0]) || (fixedW && fixedW !== size[1])) {
    throw new TransferError('SHAPE_MISMATCH', `${where}: this graph model has a fixed input size ${fixedH}x${fixedW}; it cannot run at ${size[0]}x${size[1]}.`);
  }
  const node = args.featureLayer ?? (entry?.featureLayer || undefined);
  const run = graphRunner(model, node);
  const preprocessing = args.preprocessing ?? entry?.preprocessing ?? NO_PREPROCESSING;
  const featureShape = args.featureShape ?? probeFeatureShape(run, size, preprocessing, where);
  return new Backbone({
    name,
    kind: 'graph',
    inputSize: size,
    featureShape,
    preprocessing,
    featureLayer: node,
    run,
    source: entry?.url ?? where,
    release: owned ? () => model.dispose() : undefined,
  });
}

function probeFeatureShape(run: (x: tf.Tensor4D) => tf.Tensor, size: ImageSize, preprocessing: Preprocessing, where: string): number[] {
  try {
    return tf.tidy(() => {
      const out = run(tf.add(tf.zeros([1, size[0], size[1], 3]), tf.scalar(128 * (typeof preprocessing.scale === 'number' ? preprocessing.scale : 1))) as tf.Tensor4D);
      if (!(out instanceof tf.Tensor)) throw new Error(`returned ${typeof out}, not a tf.Tensor`);
      if (out.shape[0] !== 1) throw new Error(`returned a batch of ${out.shape[0]} for 1 image`);
      return out.shape.slice(1);
    });
  } catch (e) {
    if (e instanceof TransferError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    // A graph model's ops are only looked up when it first runs: an op tfjs lacks is a problem of the model file.
    const op = /Unknown op '([^']+)'/.exec(message)?.[1];
    if (op) {
      throw new TransferError(
        'MODEL_INVALID',
        `${where}: the graph model uses the TensorFlow op "${op}", which TensorFlow.js does not support. Re-convert the ` +
          'model without that op, or register an implementation with tf.registerOp() before loading it.',
        { cause: e },
      );
    }
    throw new TransferError('INVALID_ARGUMENT', `${where}: running the backbone on one ${size[0]}x${size[1]} image failed: ${message}`, { cause: e });
  }
}

function fromFunction(fn: BackboneFunction, args: LoadBackboneArgs, inputSize: ImageSize | undefined): Backbone {
  const size: ImageSize = inputSize ?? [224, 224];
  const preprocessing = args.preprocessing ?? NO_PREPROCESSING;
  const featureShape = args.featureShape ?? probeFeatureShape(fn, size, preprocessing, 'loadBackbone(function)');
  return new Backbone({
    name: args.name ?? (fn.name || 'function'),
    kind: 'function',
    inputSize: size,
    featureShape,
    preprocessing,
    run: fn,
    source: 'function',
  });
}
