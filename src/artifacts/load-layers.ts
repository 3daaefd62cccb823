/**
 * Loading layers and graph models through any IOHandler, with tfjs's internal errors turned into
 * {@link TransferError}s that say which file, which layer or op, and what to do. Browser-safe.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as tfconv from '@tensorflow/tfjs-converter';
import { TransferError } from '../errors.js';

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
 * Compares the variables the model under construction created (registered since `before`) with the weight specs,
 * and returns a description of a certain mismatch: a model weight with no variable of that name, or none of its
 * shape. tfjs would throw the same after decoding every weight, leaking the decoded tensors; checking first avoids
 * the leak. Returns `undefined` when no variable exists yet (the model is not built) or nothing is certainly wrong.
 */
function weightMismatch(before: Set<string>, specs: readonly tf.io.WeightsManifestEntry[]): string | undefined {
  const registered = tf.engine().state.registeredVariables;
  const fresh = Object.keys(registered).filter((name) => !before.has(name));
  if (fresh.length === 0) return undefined;
  const shapesByName = new Map<string, number[][]>();
  for (const name of fresh) {
    // tfjs makes variable names unique by appending _N to the layer's original weight name.
    for (const candidate of new Set([name, name.replace(/_\d+$/, '')])) {
      const list = shapesByName.get(candidate) ?? [];
      list.push(registered[name].shape);
      shapesByName.set(candidate, list);
    }
  }
  for (const spec of specs) {
    if (spec.group === 'optimizer') continue;
    const shapes = shapesByName.get(spec.name);
    if (!shapes) return `the weight "${spec.name}" in the manifest matches no weight of the model`;
    if (!shapes.some((shape) => shape.length === spec.shape.length && shape.every((d, i) => d === spec.shape[i]))) {
      return `the weight "${spec.name}" has shape [${spec.shape.join(',')}] in the manifest but [${shapes[0].join(',')}] in the model`;
    }
  }
  return undefined;
}

function mismatchError(where: string, detail: string): TransferError {
  return new TransferError(
    'MODEL_INVALID',
    `Cannot load the model at ${where}: its weights do not match its topology (${detail}). ` +
      'model.json and its weight shards must come from the same export; copy or export the model again.',
  );
}

/**
 * Loads a TensorFlow.js layers model through `handler` (e.g. `nodeFileSystem.loader(path)` or `tf.io.http(url)`),
 * checking its layer classes before any weight is allocated and turning tfjs's internal errors into
 * `TransferError('MODEL_INVALID')` that name the file and the offending layer. On failure, variables created by the
 * partial model are disposed.
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
  const base = typeof handler === 'string' ? handler : checkedHandler(handler, where);
  let before = variableNames();
  const strict = options.strict !== false;
  const checked: tf.io.IOHandler | string =
    typeof base === 'string'
      ? base
      : {
          load: async () => {
            const artifacts = await base.load!();
            const unknown = findUnknownLayer(artifacts.modelTopology);
            if (unknown) throw unknownLayerError(unknown.className, unknown.name, where);
            before = variableNames();
            const { weightData, weightSpecs } = artifacts;
            if (!strict || weightData == null || weightSpecs == null) return artifacts;
            // tfjs reads weightData once before building the model and again before decoding the weights into
            // tensors; by then the model's variables exist and can be compared with the specs, so a mismatch is
            // reported before the decoded weights are allocated (tfjs would leak them when it throws).
            let verdict: string | null | undefined;
            const guarded: tf.io.ModelArtifacts = { ...artifacts };
            Object.defineProperty(guarded, 'weightData', {
              enumerable: true,
              configurable: true,
              get() {
                if (verdict === undefined) {
                  const found = weightMismatch(before, weightSpecs);
                  if (found !== undefined) verdict = found;
                  else if (Object.keys(tf.engine().state.registeredVariables).length > before.size) verdict = null;
                }
                if (typeof verdict === 'string') throw mismatchError(where, verdict);
                return weightData;
              },
            });
            return guarded;
          },
        };
  try {
    return await tfl.loadLayersModel(checked, options);
  } catch (error) {
    disposeNewVariables(before);
    throw translate(error, where, 'layers') ?? wrapUnknown(error, where);
  }
}

/**
 * Loads a TensorFlow.js graph model (converted SavedModel) through `handler`, turning tfjs's internal errors
 * (unsupported ops, mismatched weights) into `TransferError('MODEL_INVALID')` naming the file.
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
  const checked = typeof handler === 'string' ? handler : checkedHandler(handler, where);
  try {
    return await tfconv.loadGraphModel(checked, options);
  } catch (error) {
    throw translate(error, where, 'graph') ?? wrapUnknown(error, where);
  }
}

/**
 * Reads a model's artefacts (`model.json` and weights) through `handler`, turning failures into errors that say
 * whether the network or the file is at fault and what to do. @internal
 */
export async function readModelArtifacts(handler: tf.io.IOHandler, where: string): Promise<tf.io.ModelArtifacts> {
  const load = checkedHandler(handler, where).load!;
  try {
    return await load.call(handler);
  } catch (e) {
    if (e instanceof TransferError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    const network = /fetch|network|ENOTFOUND|ECONNREFUSED|getaddrinfo|Failed to fetch|404|403/i.test(message);
    throw new TransferError(
      network ? 'NETWORK' : 'MODEL_LOAD_FAILED',
      `Could not load the model from ${where}: ${message}` +
        (network ? ' Check the network, or download the model once and pass its local path (or set env.modelHost to a mirror).' : ''),
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
