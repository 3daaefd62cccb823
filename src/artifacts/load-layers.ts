/**
 * Loading layers and graph models through any IOHandler, with tfjs's internal errors turned into
 * {@link TransferError}s that say which file, which layer or op, and what to do. Browser-safe.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as tfconv from '@tensorflow/tfjs-converter';
import { TransferError } from '../errors.js';
import { weightByteLength } from './download.js';
import { checkWeightData, checkWeightSpecs } from './validate.js';

/** Whether a Keras class name is known to tfjs's serialization registry (built-in or registered custom layer). */
function isRegistered(className: string): boolean {
  const map = tf.serialization.SerializationMap.getMap().classNameMap;
  return Object.prototype.hasOwnProperty.call(map, className);
}

/** Walks a Keras topology and returns the first layer whose class is not registered, if any. */
function findUnknownLayer(topology: unknown): { className: string; name: string } | undefined {
  if (typeof topology !== 'object' || topology === null) return undefined;
  const root = (topology as { model_config?: unknown }).model_config ?? topology;
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    const config = (node as { config?: unknown }).config;
    const layers =
      typeof config === 'object' && config !== null
        ? (config as { layers?: unknown }).layers
        : undefined;
    const list = Array.isArray(layers) ? layers : Array.isArray(config) ? config : [];
    for (const layer of list) {
      if (typeof layer !== 'object' || layer === null) continue;
      const className = (layer as { class_name?: unknown }).class_name;
      if (typeof className === 'string' && !isRegistered(className)) {
        const name = (layer as { name?: unknown; config?: { name?: unknown } }).name ?? (layer as { config?: { name?: unknown } }).config?.name;
        return { className, name: typeof name === 'string' ? name : '?' };
      }
      stack.push(layer);
      // Wrappers (TimeDistributed, Bidirectional) nest their layer under config.layer.
      const inner = (layer as { config?: { layer?: unknown } }).config?.layer;
      if (inner) stack.push({ config: { layers: [inner] } });
    }
  }
  return undefined;
}

function unknownLayerError(className: string, layerName: string, where: string): TransferError {
  return new TransferError(
    'MODEL_INVALID',
    `Cannot load the model at ${where}: ${layerName === '?' ? 'a layer' : `layer "${layerName}"`} has class "${className}", which TensorFlow.js does not know. ` +
      `If it is a custom layer, implement it in JavaScript and register it before loading ` +
      `(class ${className} extends tf.layers.Layer { static className = '${className}'; ... }; ` +
      `tf.serialization.registerClass(${className})); if it is a Keras layer tfjs lacks, replace it before exporting.`,
  );
}

/** Turns a tfjs error message into a TransferError; `undefined` for errors that are not about the model file. */
function translate(error: unknown, where: string, kind: 'layers' | 'graph'): TransferError | undefined {
  if (error instanceof TransferError) return error;
  const message = error instanceof Error ? error.message : String(error);
  let m = /Unknown (layer|initializer|regularizer|constraint|activation|loss|metric|optimizer|object)[^:]*: ([^.\s]+)/.exec(message);
  if (m) {
    if (m[1] === 'layer') return unknownLayerError(m[2], '?', where);
    return new TransferError(
      'MODEL_INVALID',
      `Cannot load the model at ${where}: unknown ${m[1]} "${m[2]}". Register it with tf.serialization.registerClass ` +
        `before loading, or re-export the model with a ${m[1]} TensorFlow.js provides. (tfjs said: ${message.split('\n')[0]})`,
      { cause: error },
    );
  }
  m = /Tensorflow Op is not supported: (\S+)/i.exec(message);
  if (m) {
    return new TransferError(
      'MODEL_INVALID',
      `Cannot load the graph model at ${where}: it uses the TensorFlow op "${m[1]}", which TensorFlow.js does not support. ` +
        'Re-convert the model without that op, or register a custom op with tf.registerOp.',
      { cause: error },
    );
  }
  if (/weights are not set|has no target variable|Shape mismatch|weight.*(mismatch|expected)|Provided weight data/i.test(message)) {
    return new TransferError(
      'MODEL_INVALID',
      `Cannot load the model at ${where}: its weights do not match its topology (${message.split('\n')[0]}). ` +
        'model.json and its weight shards must come from the same export; copy or export the model again.',
      { cause: error },
    );
  }
  if (kind === 'layers' && /class_name|className|Improper config|model_config|inbound_nodes|not a valid/i.test(message)) {
    return new TransferError(
      'MODEL_INVALID',
      `Cannot load the layers model at ${where}: its topology is not a valid Keras model config (${message.split('\n')[0]}). ` +
        'Check that it is a TensorFlow.js layers model (format "layers-model"); graph models load with loadGraphModelSafely.',
      { cause: error },
    );
  }
  return undefined;
}

/** Names of the variables currently registered with the engine. */
function variableNames(): Set<string> {
  return new Set(Object.keys(tf.engine().state.registeredVariables));
}

/** Disposes variables registered since `before` (what a failed model construction leaves behind). */
function disposeNewVariables(before: Set<string>): void {
  const registered = tf.engine().state.registeredVariables;
  for (const name of Object.keys(registered)) {
    if (!before.has(name)) registered[name].dispose();
  }
}

/**
 * Layer classes of tfjs-layers whose weights are always floating point (kernels, biases, BatchNorm statistics,
 * embeddings, recurrent kernels): a manifest that declares one of their weights with another dtype is damaged.
 */
const FLOAT_WEIGHT_CLASSES = new Set([
  'Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'Conv3DTranspose', 'DepthwiseConv2D', 'SeparableConv2D',
  'Dense', 'BatchNormalization', 'LayerNormalization', 'Embedding', 'PReLU', 'SimpleRNN', 'GRU', 'LSTM', 'ConvLSTM2D',
]);

/** Layer name -> class name for every layer of a Keras topology (nested models and wrappers included). */
function layerClasses(topology: unknown): Map<string, string> {
  const classes = new Map<string, string>();
  if (typeof topology !== 'object' || topology === null) return classes;
  const stack: unknown[] = [(topology as { model_config?: unknown }).model_config ?? topology];
  while (stack.length > 0) {
    const node = stack.pop() as { config?: unknown } | null;
    if (typeof node !== 'object' || node === null) continue;
    const config = node.config;
    const layers = typeof config === 'object' && config !== null ? (config as { layers?: unknown }).layers : undefined;
    const list = Array.isArray(layers) ? layers : Array.isArray(config) ? config : [];
    for (const layer of list as { class_name?: unknown; name?: unknown; config?: { name?: unknown; layer?: unknown } }[]) {
      if (typeof layer !== 'object' || layer === null) continue;
      const name = layer.name ?? layer.config?.name;
      if (typeof name === 'string' && typeof layer.class_name === 'string') classes.set(name, layer.class_name);
      stack.push(layer);
      if (layer.config?.layer) stack.push({ config: { layers: [layer.config.layer] } });
    }
  }
  return classes;
}

function mismatchError(where: string, detail: string): TransferError {
  return new TransferError(
    'MODEL_INVALID',
    `Cannot load the model at ${where}: its weights do not match its topology (${detail}). ` +
      'model.json and its weight shards must come from the same export; copy or export the model again.',
  );
}

/**
 * Checks that the weight specs are well formed and the weight data holds the bytes they describe, so decoding
 * cannot stop half-way (leaving the tensors decoded so far). Returns the specs, or `undefined` without weight data.
 */
function checkWeightsBeforeDecode(artifacts: tf.io.ModelArtifacts, where: string): tf.io.WeightsManifestEntry[] | undefined {
  const { weightData, weightSpecs } = artifacts;
  if (weightData == null) return undefined;
  if (weightSpecs == null) throw new TransferError('MODEL_INVALID', `Cannot load the model at ${where}: it has weight data but no weight specs (the weightsManifest is missing); copy or export the model again.`);
  const { bytes, exact } = checkWeightSpecs(weightSpecs, where);
  checkWeightData(bytes, weightByteLength(artifacts), where, exact);
  return weightSpecs;
}

/**
 * Everything that can be checked before any tensor exists: layer classes are registered, the weight specs are
 * well formed, the weight data holds the bytes they describe (decoding cannot stop half-way), and weights of
 * built-in layers are declared float32.
 */
function checkBeforeBuild(artifacts: tf.io.ModelArtifacts, where: string): void {
  const unknown = findUnknownLayer(artifacts.modelTopology);
  if (unknown) throw unknownLayerError(unknown.className, unknown.name, where);
  const weightSpecs = checkWeightsBeforeDecode(artifacts, where);
  if (!weightSpecs) return;
  const classes = layerClasses(artifacts.modelTopology);
  for (const spec of weightSpecs) {
    if (spec.group === 'optimizer' || spec.dtype === 'float32') continue;
    const layer = spec.name.split('/')[0]!;
    const className = classes.get(layer);
    if (className !== undefined && FLOAT_WEIGHT_CLASSES.has(className)) {
      throw mismatchError(where, `the weight "${spec.name}" is declared ${spec.dtype} in the manifest, but the weights of layer "${layer}" (${className}) are float32`);
    }
  }
}

/**
 * Compares the built model's weights with the specs tfjs would load into them (same name resolution as
 * `LayersModel.loadWeights`), so a wrong shape or dtype is refused before the weights are decoded. Names that match
 * nothing are left to `loadWeights`, which refuses them in strict mode.
 */
function weightMismatch(model: tfl.LayersModel, specs: readonly tf.io.WeightsManifestEntry[]): string | undefined {
  const byName = new Map<string, tfl.LayerVariable>();
  for (const layer of model.layers) for (const weight of layer.weights) byName.set(weight.originalName, weight);
  for (const spec of specs) {
    if (spec.group === 'optimizer') continue;
    const tokens = spec.name.split('/');
    const weight = byName.get(spec.name) ?? byName.get([...tokens.slice(0, -2), tokens[tokens.length - 1]].join('/'));
    if (!weight) continue;
    if (weight.shape.length !== spec.shape.length || !weight.shape.every((d, i) => d === spec.shape[i])) {
      return `the weight "${spec.name}" has shape [${spec.shape.join(',')}] in the manifest but [${weight.shape.join(',')}] in the model`;
    }
    if (weight.dtype !== spec.dtype) return `the weight "${spec.name}" is ${spec.dtype} in the manifest but ${weight.dtype} in the model`;
  }
  return undefined;
}

/** Decodes the weights and loads them into `model`; the decoded tensors are freed whatever happens. */
async function loadWeightsInto(model: tfl.LayersModel, artifacts: tf.io.ModelArtifacts, where: string, strict: boolean): Promise<void> {
  const specs = artifacts.weightSpecs!;
  if (strict) {
    const found = weightMismatch(model, specs);
    if (found !== undefined) throw mismatchError(where, found);
  }
  const decoded = tf.io.decodeWeights(artifacts.weightData!, specs);
  try {
    const modelWeights: tf.NamedTensorMap = {};
    const optimizerWeights: { name: string; tensor: tf.Tensor }[] = [];
    for (const spec of specs) {
      if (spec.group === 'optimizer') optimizerWeights.push({ name: spec.name, tensor: decoded[spec.name]! });
      else modelWeights[spec.name] = decoded[spec.name]!;
    }
    model.loadWeights(modelWeights, strict);
    if (model.optimizer != null && optimizerWeights.length > 0) await model.optimizer.setWeights(optimizerWeights);
  } finally {
    tf.dispose(Object.values(decoded));
  }
}

/**
 * Loads a TensorFlow.js layers model through `handler` (e.g. `nodeFileSystem.loader(path)` or `tf.io.http(url)`),
 * turning tfjs's internal errors into `TransferError('MODEL_INVALID')` that name the file and the offending layer.
 *
 * Nothing leaks when it fails: layer classes, weight specs, the size of the weight data and the dtypes of built-in
 * layers' weights are checked before any tensor is allocated; the model is then built (its variables exist), its
 * weights' shapes and dtypes are compared with the specs before the weights are decoded, and on any failure the
 * decoded weights and the partial model's variables are disposed.
 *
 * @param handler An IOHandler with `load`, or a URL tfjs's IO router understands.
 * @param where The model's location, quoted in error messages.
 * @param options tfjs load options (default `{ strict: true }`: weights must match the topology exactly).
 * @returns The model.
 * @throws TransferError `MODEL_INVALID` for unknown layer classes ("register the custom layer") or weights that do
 *   not match; errors already raised by the handler pass through unchanged.
 *
 * @example
 * ```ts
 * import { nodeFileSystem } from 'tfjs-transfer/node';
 * const path = 'models/mobilenet/model.json';
 * const model = await loadLayersModelSafely(nodeFileSystem.loader(path), path);
 * ```
 * @internal
 */
export async function loadLayersModelSafely(
  handler: tf.io.IOHandler | string,
  where: string,
  options: tf.io.LoadOptions = {},
): Promise<tfl.LayersModel> {
  const base = typeof handler === 'string' ? tf.io.getLoadHandlers(handler, options)[0] : checkedHandler(handler, where);
  if (!base) throw new TransferError('MODEL_LOAD_FAILED', `Cannot load the model at ${where}: no TF.js IO handler accepts "${String(handler)}".`);
  const strict = options.strict !== false;
  const before = variableNames();
  let model: tfl.LayersModel | undefined;
  try {
    const artifacts = await base.load!();
    checkBeforeBuild(artifacts, where);
    // tfjs decodes the weights itself after building the model, and leaks them when loading fails. It reads
    // weightData first to choose fast weight initialisation (the weights will be overwritten): that read sees the
    // data, later reads see none, so tfjs only builds, and the weights are loaded here, freed on any failure.
    let reads = 0;
    const shell: tf.io.ModelArtifacts = { ...artifacts };
    Object.defineProperty(shell, 'weightData', { enumerable: true, get: () => (reads++ === 0 ? artifacts.weightData : undefined) });
    model = await tfl.loadLayersModel({ load: async () => shell }, options);
    if (artifacts.weightData != null) await loadWeightsInto(model, artifacts, where, strict);
    return model;
  } catch (error) {
    model?.dispose();
    disposeNewVariables(before);
    throw translate(error, where, 'layers') ?? wrapUnknown(error, where);
  }
}

/**
 * Loads a TensorFlow.js graph model (converted SavedModel) through `handler`, turning tfjs's internal errors
 * (unsupported ops, mismatched weights) into `TransferError('MODEL_INVALID')` naming the file. The weight data's
 * size is checked before decoding, and the decoded weights are freed when building the graph fails.
 *
 * @param handler An IOHandler with `load`, or a URL tfjs's IO router understands.
 * @param where The model's location, quoted in error messages.
 * @param options tfjs load options (default `{}`).
 * @returns The model.
 * @throws TransferError `MODEL_INVALID` or `MODEL_LOAD_FAILED`.
 *
 * @example
 * ```ts
 * const model = await loadGraphModelSafely(nodeFileSystem.loader('models/detector'), 'models/detector');
 * ```
 * @internal
 */
export async function loadGraphModelSafely(
  handler: tf.io.IOHandler | string,
  where: string,
  options: tf.io.LoadOptions = {},
): Promise<tfconv.GraphModel> {
  const base = typeof handler === 'string' ? handler : checkedHandler(handler, where);
  const checked: tf.io.IOHandler | string =
    typeof base === 'string'
      ? base
      : {
          load: async () => {
            const artifacts = await base.load!();
            checkWeightsBeforeDecode(artifacts, where);
            return artifacts;
          },
        };
  // The weights tfjs decodes, kept to free them when building the graph fails afterwards (an unsupported op).
  let decoded: tf.NamedTensorMap | undefined;
  const tfio = { ...tf.io, decodeWeights: (...a: Parameters<typeof tf.io.decodeWeights>) => (decoded = tf.io.decodeWeights(...a)) };
  try {
    return await tfconv.loadGraphModel(checked, options, tfio);
  } catch (error) {
    if (decoded) tf.dispose(Object.values(decoded));
    throw translate(error, where, 'graph') ?? wrapUnknown(error, where);
  }
}

/**
 * Reads a model's artefacts (`model.json` and weights) through `handler`, turning failures into errors that say
 * whether the network or the file is at fault and what to do. `networkHint` replaces the default advice given
 * for a network failure (e.g. how to use a local copy of a backbone). @internal
 */
export async function readModelArtifacts(handler: tf.io.IOHandler, where: string, networkHint?: string): Promise<tf.io.ModelArtifacts> {
  const load = checkedHandler(handler, where).load!;
  try {
    return await load.call(handler);
  } catch (e) {
    if (e instanceof TransferError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    const network = /fetch|network|ENOTFOUND|ECONNREFUSED|getaddrinfo|Failed to fetch|404|403/i.test(message);
    throw new TransferError(
      network ? 'NETWORK' : 'MODEL_LOAD_FAILED',
      `Could not load the model from ${where}: ${message.replace(/[.\s]*$/, '')}.` +
        (network ? ` ${networkHint ?? 'Check the network, or download the model once and pass its local path (a model.json or its folder) instead of the URL.'}` : ''),
      { cause: e },
    );
  }
}

function checkedHandler(handler: tf.io.IOHandler, where: string): tf.io.IOHandler {
  if (typeof handler !== 'object' || handler === null || typeof handler.load !== 'function') {
    throw new TransferError(
      'INVALID_ARGUMENT',
      `Cannot load the model at ${where}: the handler has no load() method. Pass a loader such as nodeFileSystem.loader(path) or tf.io.http(url).`,
    );
  }
  return handler;
}

function wrapUnknown(error: unknown, where: string): TransferError {
  const message = error instanceof Error ? error.message : String(error);
  return new TransferError(
    'MODEL_LOAD_FAILED',
    `Could not load the model at ${where}: ${message.split('\n')[0]}`,
    { cause: error },
  );
}
