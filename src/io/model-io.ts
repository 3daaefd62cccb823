/**
 * `save` and `loadModel`: one artefact holding the whole model, its class names and its preprocessing,
 * reloadable in Node and in the browser with identical predictions.
 * @module
 */
import type { ResizeFit } from '../data/resize';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Backbone, ExternalBackboneLayer } from '../backbone/backbone';
import { forceInferenceBatchNorm } from '../backbone/batchnorm';
import { rewire } from '../backbone/graph';
import { loadBackbone, type BackboneSource } from '../backbone/load';
import { registerCustomLayers } from '../backbone/preprocess';
import { env } from '../env';
import { TransferError, check } from '../errors';
import { freeze } from '../freeze';
import { TransferModel, type ArtefactRecord, type Calibration, type HeadSpec, type ModelCard, type QuantizationCheck } from '../transfer-model';
import type { BackboneKind } from '../backbone/backbone';
import { unknownDetectorFromRecord, type UnknownDetector } from '../unknown-detector';
import type { Preprocessing, ProgressCallback } from '../types';
import { isHttpUrl, isLocalPath } from '../util/location';
import { downloadMonitor, urlLoadHandler, weightByteLength, type DownloadMonitor } from '../artifacts/download';
import { loadLayersModelSafely, readModelArtifacts } from '../artifacts/load-layers';
import { throwIfAborted } from '../errors';
import { QUANTIZATIONS, quantizeArtifacts, type WeightQuantization } from '../artifacts/quantize';
import { resolveCatalogName } from '../backbone/catalog';
import type { LabelledData } from '../types';
import { withDefaults } from '../util/args';
import { cardToWrite, readCard } from './card';
import { backboneWeightsHash, detectorEncodingFor, checkBackboneUntouched, keepFloat32Reason, verifyQuantized } from './deploy';

/**
 * Version of the metadata layout written by {@link save}.
 * @category Save and load
 */
export const ARTIFACT_FORMAT_VERSION = 1;

/**
 * What {@link save} stores in `model.json`'s `userDefinedMetadata.tfjsTransfer`.
 * @category Save and load
 */
export interface TransferMetadata {
  /** Layout version of the saved files (1 in this release). */
  formatVersion: number;
  /** Class names, in output order. */
  classes: string[];
  /** Input shape of one image `[h, w, 3]`; the model takes raw pixels in 0..255. */
  inputShape: [number, number, 3];
  /** Preprocessing the model applies itself (informational: it is a layer of the model). */
  preprocessing: Preprocessing;
  /** `full`: backbone + head; `head`: the head only (graph and function backbones cannot be serialized). */
  contents: 'full' | 'head';
  /** The backbone: name, where it came from, the feature layer, its frozen layer count. */
  backbone: {
    /** The backbone's name, e.g. `"mobilenet_v2_1.0_224"`. */
    name: string;
    /** Where its weights came from (catalog URL, path, `"LayersModel"`, ...). */
    source: string;
    /** `layers`, `graph` or `function` (a {@link BackboneKind}). */
    kind: string;
    /** The layer the features are taken at (layers backbones). */
    featureLayer?: string;
    /** Shape of one image's features, e.g. `[7, 7, 1280]`. */
    featureShape: number[];
    /** How many backbone layers, from the bottom, were frozen when the model was saved. */
    frozenLayerCount: number;
    /** SHA-256 of the backbone's weights (layers backbones; written since model cards). */
    weightsSha256?: string;
    /** The catalog name the backbone was loaded by, when it came from the catalog (head-only artefacts load it so). */
    catalogName?: string;
  };
  /** How the head was built. */
  head: HeadSpec & {
    /** Names of the head's layers inside the saved model. */
    layers: string[];
  };
  /** Library version that wrote it. */
  writtenBy: string;
  /** How the probabilities were calibrated, when they were ({@link calibrate}). */
  calibration?: Calibration;
  /** How the training images were fitted to the input (`TransferModel.resizeFit`); absent in files before 0.2.0: squash. */
  resizeFit?: ResizeFit;
  /**
   * The unknown detector (per-class prototypes in float16, base64), when the model has one
   * (`model.unknownDetector`). Its layout is internal to the library; {@link loadModel} checks it.
   */
  unknown?: object;
  /** The model card ({@link ModelCard}); absent in files written before model cards. */
  card?: ModelCard;
}

/**
 * Anything {@link save} accepts as a destination.
 * @category Save and load
 */
export type SaveDestination = string | tf.io.IOHandler;

/**
 * Anything {@link loadModel} accepts.
 * @category Save and load
 */
export type ModelSource = string | URL | tf.io.IOHandler;

const LIBRARY = 'tfjs-transfer';

function saveHandler(destination: SaveDestination): { handler: tf.io.IOHandler; where: string } {
  if (typeof destination !== 'string') {
    check(typeof destination === 'object' && destination !== null && typeof destination.save === 'function', 'save: destination must be a path, a URL (indexeddb://, localstorage://, downloads://, http(s)://) or a tf.io.IOHandler with save().');
    return { handler: destination, where: 'IOHandler' };
  }
  check(destination.length > 0, 'save: destination is an empty string.');
  if (isLocalPath(destination)) {
    if (!env.fileSystem) {
      throw new TransferError('NODE_ONLY', `save: "${destination}" looks like a local path, and this environment has no file access. In Node import from 'tfjs-transfer/node'; in the browser use indexeddb://name or downloads://name.`);
    }
    return { handler: env.fileSystem.saver(destination.replace(/^file:\/\//, '')), where: destination };
  }
  const handlers = tf.io.getSaveHandlers(destination);
  const handler = handlers[0];
  if (!handler) throw new TransferError('INVALID_ARGUMENT', `save: no TF.js IO handler can save to "${destination}". Use a path (Node), indexeddb://, localstorage://, downloads:// or http(s)://.`);
  return { handler, where: destination };
}

function metadataOf(model: TransferModel, contents: 'full' | 'head', weightsSha256: string | undefined, detector: UnknownDetector | undefined): TransferMetadata {
  const b = model.backbone;
  const entry = catalogEntryOf(b.name, b.source);
  return {
    formatVersion: ARTIFACT_FORMAT_VERSION,
    classes: [...model.classes],
    inputShape: [...model.inputShape],
    preprocessing: b.preprocessing,
    contents,
    backbone: {
      name: b.name, source: b.source, kind: b.kind, featureLayer: b.featureLayer, featureShape: b.featureShape, frozenLayerCount: b.frozenLayerCount,
      weightsSha256, catalogName: entry,
    },
    head: { ...model.headSpec, layers: [...model.headLayers] },
    writtenBy: LIBRARY,
    calibration: model.calibration,
    resizeFit: model.resizeFit,
    unknown: detector?.record,
  };
}

/** The catalog name of a backbone loaded from the catalog (its name resolves and its source is the entry's URL). */
function catalogEntryOf(name: string, source: string): string | undefined {
  try {
    const entry = resolveCatalogName(name);
    return entry && entry.url === source ? entry.name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What is wrong with `classes` for a model whose output is `output` (1 sigmoid unit = 2 classes, n softmax units =
 * n classes), or `undefined` when they fit. `field` names where the classes come from, in the message.
 */
function classesProblem(classes: unknown, output: tfl.SymbolicTensor | undefined, field: string): string | undefined {
  if (!Array.isArray(classes)) {
    return `${field} must be a list of distinct non-empty strings (one per output, in output order), found ${classes === null ? 'null' : typeof classes === 'string' ? `the string ${JSON.stringify(classes)}` : typeof classes}`;
  }
  const seen = new Map<string, number>();
  for (let i = 0; i < classes.length; i++) {
    const c: unknown = classes[i];
    if (typeof c !== 'string' || c.length === 0) return `${field}[${i}] is ${JSON.stringify(c) ?? String(c)}; class names must be non-empty strings`;
    const first = seen.get(c);
    if (first !== undefined) return `${field} names the class "${c}" twice (items ${first} and ${i}); class names must be distinct`;
    seen.set(c, i);
  }
  const units = output?.shape[output.shape.length - 1];
  if (typeof units !== 'number') return undefined;
  const expected = units === 1 ? 2 : units;
  if (classes.length === expected) return undefined;
  const layer = output?.sourceLayer?.name;
  const kind = units === 1 ? '1 sigmoid unit, which means 2 classes' : `${units} softmax units, which means ${units} classes`;
  return `${field} holds ${classes.length} class names (${JSON.stringify(classes.slice(0, 5))}${classes.length > 5 ? '...' : ''}), but the output layer${layer ? ` "${layer}"` : ''} has ${kind}`;
}

/**
 * Defaults of {@link save}'s options.
 * @category Save and load
 */
export const SAVE_DEFAULTS = Object.freeze({
  /** Weights stored as trained. */
  quantize: 'float32' as WeightQuantization,
  /** The backbone's weights are in the artefact. */
  backbone: 'embed' as 'embed' | 'reference',
  /** At most one point of accuracy (0.01) lost to quantization on the `verify` images. */
  maxAccuracyDrop: 0.01,
});

/**
 * Options of {@link save}. An option given as `undefined` or `null` takes its default ({@link SAVE_DEFAULTS}).
 * @category Save and load
 */
export interface SaveArgs {
  /**
   * How the backbone's weights are stored, in the weight-manifest quantization stock `tf.loadLayersModel`
   * dequantizes on load (so the file still loads in any tfjs app): `float32` as trained; `float16` about half
   * the size; `uint8` (one min / max grid of 256 levels per tensor) about a quarter. The head, biases,
   * normalization parameters and tensors under 1024 values always stay float32: they are under 1% of the bytes,
   * and the head and the per-channel vectors are where quantizing costs accuracy. Pass `verify` to measure it.
   * The unknown detector shrinks with the weights: its prototypes (float16 as fitted) are stored as 8-bit codes
   * with `float16` and 4-bit codes with `uint8` (`model.unknownDetector.prototypeEncoding`; `verify` also reports
   * the share of its images the detector accepts before and after).
   * @defaultValue {@link SAVE_DEFAULTS}.quantize (`'float32'`)
   */
  quantize?: WeightQuantization;
  /**
   * Labelled images (e.g. the validation split) to check a quantized save on: the model is evaluated before
   * quantizing and as the quantized file loads, the result is in {@link SaveReport.verification} and in the
   * model card, and nothing is written when accuracy falls by more than `maxAccuracyDrop`. Runs only when some
   * weight is quantized (not for float32, nor for a head-only artefact, whose head stays float32). The images run
   * through the model twice: pass the validation split, not the training set.
   * @defaultValue none (no check)
   */
  verify?: LabelledData;
  /**
   * The largest fall of accuracy (a fraction: 0.01 is one percentage point) that `verify` accepts; a bigger fall
   * is an `ACCURACY_DROP` TransferError and nothing is written.
   * @defaultValue {@link SAVE_DEFAULTS}.maxAccuracyDrop (0.01)
   */
  maxAccuracyDrop?: number;
  /**
   * `embed`: the artefact holds the whole model. `reference`: it holds the head only (a few kilobytes) and a
   * reference to the backbone (its catalog name or source, input size, preprocessing and the SHA-256 of its
   * weights), which {@link loadModel} loads again and checks. A fine-tuned backbone cannot be referenced.
   * Graph and function backbones are always referenced (they cannot be serialized).
   * @defaultValue {@link SAVE_DEFAULTS}.backbone (`'embed'`)
   */
  backbone?: 'embed' | 'reference';
  /**
   * Keep the model's unknown detector (`model.unknownDetector`, about 220 KB for two classes on MobileNetV2 in a
   * float32 artefact, 110 KB with `quantize: 'float16'`, 56 KB with `'uint8'`) in
   * the artefact, so that the loaded model still marks images of none of the classes `unknown`. A head-only
   * artefact leaves it out unless asked: it would be twenty times the head's size.
   * @defaultValue `true` for a whole model, `false` with `backbone: 'reference'` (and for graph or function backbones)
   */
  unknownDetector?: boolean;
  /**
   * Stops the save before anything is written: checked at the start and again after the model is serialized,
   * right before the destination is written (a path is then written atomically, so an abort never leaves half a
   * model).
   * @defaultValue none
   */
  signal?: AbortSignal;
}

/**
 * What {@link save} returns: tfjs' `SaveResult` and how the artefact stores the model.
 * @category Save and load
 */
export interface SaveReport extends tf.io.SaveResult {
  /** The artefact record written into the model card (quantization, weights kept float32, bytes, backbone). */
  artefact: ArtefactRecord;
  /** The accuracy check, when `verify` was given: before, after, the drop and the bound. */
  verification?: QuantizationCheck;
}

function resolveSaveArgs(args: SaveArgs | undefined) {
  check(args == null || typeof args === 'object', 'save: options must be an object such as { quantize: "uint8" }.');
  const options = withDefaults(args ?? {}, SAVE_DEFAULTS);
  check(QUANTIZATIONS.includes(options.quantize), `save: quantize must be one of ${QUANTIZATIONS.join(', ')}, got ${JSON.stringify(options.quantize)}.`);
  check(options.backbone === 'embed' || options.backbone === 'reference', `save: backbone must be 'embed' or 'reference', got ${JSON.stringify(options.backbone)}.`);
  check(options.unknownDetector == null || typeof options.unknownDetector === 'boolean', `save: unknownDetector must be true or false, got ${JSON.stringify(options.unknownDetector)}.`);
  const bound = options.maxAccuracyDrop;
  check(typeof bound === 'number' && bound >= 0 && bound <= 1, `save: maxAccuracyDrop must be a fraction from 0 to 1 (0.01 is one point of accuracy), got ${JSON.stringify(bound)}.`);
  return options;
}

/**
 * Saves the model with its class names, preprocessing and model card as one TF.js layers model: `model.json` +
 * one weight shard (`weights-<hash>.bin` in Node). In Node a path is written atomically (a crash or full disk
 * leaves the previous model intact); in the browser use `indexeddb://name`, `localstorage://name` or
 * `downloads://name`.
 *
 * - `quantize: 'float16' | 'uint8'` stores the backbone's weights in half or a quarter of the bytes (see
 *   {@link SaveArgs.quantize}); with `verify` the accuracy change is measured and bounded.
 * - `backbone: 'reference'` writes the head only and a checked reference to the backbone. Models on graph or
 *   function backbones always save their head only; pass the backbone again to {@link loadModel}.
 *
 * The artefact is a standard layers model: `tf.loadLayersModel` loads it too (raw pixels in, probabilities out;
 * the head alone for head-only artefacts); {@link loadModel} also restores class names, the structure and the card.
 *
 * @throws TransferError `ABORTED` (an `AbortError`) when `args.signal` fires before the write; `ACCURACY_DROP`
 *   when `verify` finds a bigger fall than `maxAccuracyDrop`; `SAVE_FAILED` when writing fails. Nothing is written
 *   when it throws.
 * @category Save and load
 *
 * @example
 * ```ts
 * await save(model, './cats-vs-dogs');                                  // Node: float32, whole model
 * await save(model, 'indexeddb://cats-vs-dogs');                        // browser
 * const r = await save(model, './small', { quantize: 'uint8', verify: validation, maxAccuracyDrop: 0.005 });
 * console.log(r.verification?.drop, r.artefact.weightBytes);
 * await save(model, './head-only', { backbone: 'reference' });          // a few KB; loadModel fetches the backbone
 * ```
 */
export async function save(model: TransferModel, destination: SaveDestination, args: SaveArgs = {}): Promise<SaveReport> {
  check(model instanceof TransferModel, `save: expected a TransferModel, got ${Object.prototype.toString.call(model)}.`);
  model.assertUsable('save');
  const options = resolveSaveArgs(args);
  const signal = options.signal ?? undefined;
  throwIfAborted(signal, 'Saving the model');
  const { handler, where } = saveHandler(destination);
  const contents = model.isSerializable && options.backbone === 'embed' ? 'full' : 'head';
  if (options.backbone === 'reference') checkBackboneUntouched(model, where);
  const target = contents === 'full' ? model.model : model.head;
  const problem = classesProblem(model.classes, target.outputs[0], 'the model\'s classes');
  if (problem) {
    throw new TransferError('INVALID_ARGUMENT', `save: ${problem}. Nothing was written to ${where}. Build the model with attachHead({ classes }) so that the names match the output.`);
  }
  const weightsSha256 = await backboneWeightsHash(model.backbone);
  const keepDetector = options.unknownDetector ?? contents === 'full';
  const detector = keepDetector ? model.detector?.reencoded(detectorEncodingFor(options.quantize)) : undefined;
  const meta = metadataOf(model, contents, weightsSha256, detector);
  let report: { artefact: ArtefactRecord; verification?: QuantizationCheck } | undefined;
  // Serializing the weights can take a while; the last chance to stop is right before the destination is written.
  const guarded: tf.io.IOHandler = {
    save: async (artifacts) => {
      throwIfAborted(signal, 'Saving the model');
      const headLayers = new Set(model.headLayers);
      const q = quantizeArtifacts(artifacts, options.quantize, (spec) => keepFloat32Reason(spec, headLayers));
      const verification =
        options.verify != null && q.quantized.length > 0
          ? await verifyQuantized(model, () => fromArtifacts(q.artifacts, {}, 'the quantized model'), options.verify, {
              maxAccuracyDrop: options.maxAccuracyDrop, dtype: options.quantize, where, signal,
            })
          : undefined;
      throwIfAborted(signal, 'Saving the model');
      const artefact: Omit<ArtefactRecord, 'library' | 'savedAt'> = {
        backbone: contents === 'full' ? 'embedded' : 'reference',
        quantization: options.quantize,
        quantizedWeights: q.quantized.length,
        float32Weights: q.kept.length,
        weightBytes: q.bytesAfter,
        ...(verification ? { verification } : {}),
      };
      const card = cardToWrite(model, artefact, weightsSha256);
      if (detector) card.unknownDetector = detector.summary();
      else delete card.unknownDetector;
      report = { artefact: card.artefact!, ...(verification ? { verification } : {}) };
      const written = { ...q.artifacts, userDefinedMetadata: { tfjsTransfer: JSON.parse(JSON.stringify({ ...meta, card })) as object } };
      return handler.save!(written);
    },
  };
  target.setUserDefinedMetadata({ tfjsTransfer: JSON.parse(JSON.stringify(meta)) as object });
  try {
    const result = await target.save(guarded);
    return { ...result, ...report! };
  } catch (e) {
    if (e instanceof TransferError) throw e;
    throw new TransferError('SAVE_FAILED', `save: writing the model to ${where} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/**
 * Options of {@link loadModel}.
 * @category Save and load
 */
export interface LoadModelArgs {
  /**
   * The backbone, for artefacts that hold the head only (models trained on graph or function backbones).
   * @defaultValue none (the artefact must be complete)
   */
  backbone?: BackboneSource;
  /**
   * Download progress, in the one {@link Progress} shape: stage `'download'`, `done` of `total` bytes, `file` the
   * model's URL or path (and then the backbone's, for a head-only artefact). The last report of each file has
   * `done === total`.
   * @defaultValue none
   */
  onProgress?: ProgressCallback;
  /**
   * Stops the load: before each file, and inside a fetch that honours the signal.
   * @defaultValue none
   */
  signal?: AbortSignal;
}

function loadHandler(source: ModelSource, args: LoadModelArgs): { handler: tf.io.IOHandler; where: string; monitor: DownloadMonitor } {
  const monitorFor = (file: string): DownloadMonitor =>
    downloadMonitor({ fetch: env.fetch, onProgress: args.onProgress, signal: args.signal, file, what: 'Loading the model' });
  if (typeof source === 'object' && !(source instanceof URL)) {
    check(source !== null && typeof source.load === 'function', 'loadModel: source must be a path, a URL or a tf.io.IOHandler with load().');
    return { handler: source, where: 'IOHandler', monitor: monitorFor('IOHandler') };
  }
  const text = source.toString();
  const monitor = monitorFor(text);
  if (isLocalPath(text)) {
    if (!env.fileSystem) {
      throw new TransferError('NODE_ONLY', `loadModel: "${text}" looks like a local path, and this environment has no file access. In Node import from 'tfjs-transfer/node'; in the browser use a URL, indexeddb://name or tf.io.browserFiles.`);
    }
    return { handler: env.fileSystem.loader(text), where: text, monitor };
  }
  if (isHttpUrl(text) && !env.allowRemoteModels) {
    throw new TransferError(
      'NETWORK',
      `loadModel: remote models are disabled (env.allowRemoteModels = false); cannot load ${text}. Pass a local path ` +
        '(Node), an indexeddb:// URL or a tf.io.IOHandler instead, or set env.allowRemoteModels = true.',
    );
  }
  const handler = urlLoadHandler(text, monitor);
  if (!handler) throw new TransferError('MODEL_LOAD_FAILED', `loadModel: no TF.js IO handler can load "${text}".`);
  return { handler, where: text, monitor };
}

function readMetadata(model: tfl.LayersModel, where: string): TransferMetadata {
  const meta = (model.getUserDefinedMetadata() as { tfjsTransfer?: TransferMetadata } | undefined)?.tfjsTransfer;
  if (!meta || typeof meta !== 'object' || !('classes' in meta)) {
    throw new TransferError(
      'MODEL_INVALID',
      `loadModel: ${where} is a TF.js layers model but was not saved by tfjs-transfer (no class names in its metadata). ` +
        `Load it with loadBackbone() to use it as a backbone, or with tf.loadLayersModel().`,
    );
  }
  if (meta.formatVersion > ARTIFACT_FORMAT_VERSION) {
    throw new TransferError('MODEL_INVALID', `loadModel: ${where} was written in format ${meta.formatVersion}, newer than this version of tfjs-transfer reads (${ARTIFACT_FORMAT_VERSION}). Upgrade tfjs-transfer.`);
  }
  const problem = classesProblem(meta.classes, model.outputs[0], 'userDefinedMetadata.tfjsTransfer.classes');
  if (problem) {
    throw new TransferError(
      'MODEL_INVALID',
      `loadModel: ${where}: ${problem}. The model.json was edited or damaged: restore the class names (one per output, ` +
        'in the order the model was trained with), or train and save the model again.',
    );
  }
  return meta;
}

/**
 * Loads a model saved by {@link save}: from a path or `file://` URL (Node), an `http(s)://` URL,
 * `indexeddb://`, `localstorage://`, or any `tf.io.IOHandler` (e.g. `tf.io.browserFiles([json, weights])`).
 * The result predicts exactly as the saved model did, and can be evaluated, fine-tuned and saved again.
 *
 * @example
 * ```ts
 * const model = await loadModel('./cats-vs-dogs');
 * const [p] = await predict(model, image);
 * ```
 * @category Save and load
 */
export async function loadModel(source: ModelSource, args: LoadModelArgs = {}): Promise<TransferModel> {
  check(source != null, 'loadModel: source is required: a path, a URL or a tf.io.IOHandler.');
  const options = args ?? {};
  throwIfAborted(options.signal, 'Loading the model');
  registerCustomLayers();
  const { handler, where, monitor } = loadHandler(source, options);
  const artifacts = await readModelArtifacts(handler, where);
  throwIfAborted(options.signal, 'Loading the model');
  monitor.finish(weightByteLength(artifacts));
  return fromArtifacts(artifacts, options, where);
}

/** A TransferModel from read (and validated) artefacts: complete ones split, head-only ones given their backbone. */
async function fromArtifacts(artifacts: tf.io.ModelArtifacts, options: LoadModelArgs, where: string): Promise<TransferModel> {
  const loaded = await loadLayersModelSafely(tf.io.fromMemory(artifacts), where);
  let meta: TransferMetadata;
  let detector: UnknownDetector | undefined;
  let card: ReturnType<typeof readCard>;
  try {
    meta = readMetadata(loaded, where);
    detector = unknownDetectorFromRecord(meta.unknown, meta.classes.length, `loadModel: ${where}`);
    card = readCard(meta, { bytes: weightByteLength(artifacts), specs: artifacts.weightSpecs ?? [] });
  } catch (e) {
    loaded.dispose();
    throw e;
  }
  if (meta.contents === 'head') return attachSavedHead(loaded, meta, card, options, where, detector);
  try {
    return splitLoaded(loaded, meta, card, where, detector);
  } catch (e) {
    loaded.dispose();
    throw e;
  }
}

/** What a TransferModel built from a file takes from its metadata and card. */
function savedState(meta: TransferMetadata, card: ReturnType<typeof readCard>) {
  return {
    classes: meta.classes,
    headSpec: meta.head,
    headLayers: meta.head.layers,
    calibration: meta.calibration,
    trainingRuns: card.trainingRuns,
    evaluation: card.evaluation,
    artefact: card.artefact,
    backboneWeightsSha256: card.weightsSha256 ?? (typeof meta.backbone.weightsSha256 === 'string' ? meta.backbone.weightsSha256 : undefined),
    resizeFit: meta.resizeFit,
  };
}

/** A complete artefact as a TransferModel: its backbone cut at the feature layer, its head rewired. */
function splitLoaded(loaded: tfl.LayersModel, meta: TransferMetadata, card: ReturnType<typeof readCard>, where: string, unknown: UnknownDetector | undefined): TransferModel {
  const featureLayer = meta.backbone.featureLayer;
  const layer = loaded.layers.find((l) => l.name === featureLayer);
  if (!featureLayer || !layer) {
    throw new TransferError('MODEL_INVALID', `loadModel: ${where} names feature layer "${featureLayer}", which the model does not have; the file is damaged or was edited.`);
  }
  const features = layer.output as tfl.SymbolicTensor;
  const backboneModel = tfl.model({ inputs: loaded.inputs, outputs: features, name: `${meta.backbone.name}_features` });
  forceInferenceBatchNorm(backboneModel.layers);
  const backbone = new Backbone({
    name: meta.backbone.name,
    kind: 'layers',
    inputSize: [meta.inputShape[0], meta.inputShape[1]],
    featureShape: meta.backbone.featureShape,
    preprocessing: meta.preprocessing,
    featureLayer,
    model: backboneModel,
    source: meta.backbone.source,
  });
  const featureInput = tfl.input({ shape: meta.backbone.featureShape, name: 'tt_features' });
  const [headOut] = rewire(loaded.outputs, new Map([[features, featureInput]]));
  const head = tfl.model({ inputs: featureInput, outputs: headOut!, name: 'tt_head' });
  const model = new TransferModel({ backbone, model: loaded, head, ...savedState(meta, card), unknown });
  freeze(model, { trainableFrom: Math.min(meta.backbone.frozenLayerCount, backbone.layers.length) });
  return model;
}

/** Where a head-only artefact's backbone comes from: the caller's, else its catalog name, else its source. */
function referencedBackbone(meta: TransferMetadata, options: LoadModelArgs, where: string): BackboneSource {
  if (options.backbone) return options.backbone;
  const b = meta.backbone;
  const hashed = b.kind === 'layers' && typeof b.weightsSha256 === 'string';
  if (hashed && typeof b.catalogName === 'string') return b.catalogName;
  if (hashed && typeof b.source === 'string' && b.source.length > 0 && b.source !== 'LayersModel' && b.source !== 'IOHandler' && !b.source.startsWith('LayersModel ')) return b.source;
  throw new TransferError(
    'INVALID_ARGUMENT',
    `loadModel: ${where} holds only the head of a model trained on the ${b.kind} backbone "${b.name}" (${b.source}); ` +
      `pass that backbone: loadModel(source, { backbone: ... }).`,
  );
}

/** Refuses a backbone whose weights are not the ones the head was trained on. */
async function checkReferencedHash(backbone: Backbone, meta: TransferMetadata, where: string): Promise<void> {
  const expected = meta.backbone.weightsSha256;
  if (typeof expected !== 'string' || backbone.kind !== 'layers') return;
  const found = await backboneWeightsHash(backbone);
  if (found !== expected) {
    throw new TransferError(
      'BACKBONE_MISMATCH',
      `loadModel: ${where} holds a head trained on backbone "${meta.backbone.name}" (${meta.backbone.source}) whose weights have SHA-256 ${expected.slice(0, 16)}..., ` +
        `but the backbone found (${backbone.name}, ${backbone.source}) has ${found?.slice(0, 16)}...: other weights, so the head's predictions would be wrong. ` +
        'Pass the backbone the model was trained with: loadModel(source, { backbone: ... }).',
    );
  }
}

async function attachSavedHead(head: tfl.LayersModel, meta: TransferMetadata, card: ReturnType<typeof readCard>, options: LoadModelArgs, where: string, unknown: UnknownDetector | undefined): Promise<TransferModel> {
  let source: BackboneSource;
  try {
    source = referencedBackbone(meta, options, where);
  } catch (e) {
    head.dispose();
    throw e;
  }
  const { signal, onProgress } = options;
  let backbone: Backbone | undefined;
  try {
    backbone = await loadBackbone(source, {
      inputSize: [meta.inputShape[0], meta.inputShape[1]], preprocessing: meta.preprocessing, signal, onProgress,
      ...(meta.backbone.kind === 'layers' && meta.backbone.featureLayer ? { featureLayer: meta.backbone.featureLayer } : {}),
      ...(source === options.backbone ? {} : { name: meta.backbone.name }),
    });
    const same = backbone.featureShape.length === meta.backbone.featureShape.length && backbone.featureShape.every((d, i) => d === meta.backbone.featureShape[i]);
    if (!same) {
      throw new TransferError('SHAPE_MISMATCH', `loadModel: the given backbone gives features [${backbone.featureShape.join(', ')}], but the saved head takes [${meta.backbone.featureShape.join(', ')}] (trained on "${meta.backbone.name}").`);
    }
    await checkReferencedHash(backbone, meta, where);
    const composed = composeWithHead(backbone, head);
    const model = new TransferModel({ backbone, model: composed, head, ...savedState(meta, card), unknown });
    if (backbone.model) freeze(model, { trainableFrom: backbone.layers.length });
    return model;
  } catch (e) {
    head.dispose();
    // A Backbone passed in stays the caller's; one loaded here (from a name, path, URL, handler or model) is freed
    // (a model passed in without takeOwnership is only borrowed, so its weights stay).
    if (backbone && backbone !== options.backbone) backbone.dispose();
    throw e;
  }
}

/** Raw pixels -> probabilities: a layers backbone's own graph (saveable whole again), else the backbone as one layer. */
function composeWithHead(backbone: Backbone, head: tfl.LayersModel): tfl.LayersModel {
  if (backbone.model) {
    const [out] = rewire(head.outputs, new Map([[head.inputs[0]!, backbone.model.outputs[0]!]]));
    return tfl.model({ inputs: backbone.model.inputs, outputs: out!, name: 'tt_transfer_model' });
  }
  const image = tfl.input({ shape: backbone.inputShape, name: 'tt_image' });
  const features = new ExternalBackboneLayer(backbone).apply(image) as tfl.SymbolicTensor;
  const [out] = rewire(head.outputs, new Map([[head.inputs[0]!, features]]));
  return tfl.model({ inputs: image, outputs: out!, name: 'tt_transfer_model' });
}
