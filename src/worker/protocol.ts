/**
 * The message protocol between {@link createTransferWorker} (the page) and {@link serveTransferWorker} (the
 * worker): typed requests with an id, answered by one `result` or `error`, with `event`s (progress, epochs,
 * batches) in between. Everything in a message is structured-cloneable; nothing here touches tfjs.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import { TransferError, type TransferErrorCode } from '../errors';
import type { LabelledImage } from '../data/dataset';
import type { EvaluateArgs } from '../evaluate/evaluate';
import type { ExplainArgs } from '../evaluate/explain';
import type { PredictArgs } from '../evaluate/predict';
import type { LoadBackboneArgs } from '../backbone/load';
import type { FreezeArgs } from '../freeze';
import type { AttachHeadArgs } from '../head';
import type { BatchLogs, EpochLogs, FitArgs } from '../train/fit';
import type { SaveArgs } from '../io/model-io';
import type { TransferLearnArgs } from '../transfer-learn';
import type { Progress } from '../types';

/**
 * Either end of the conversation: a browser `Worker` (on the page), the worker's own global scope `self` (inside
 * the worker), a `MessagePort`, or anything with the same three methods (Node's `worker_threads` ports are ones).
 * Declared structurally so that the published types compile without the DOM lib.
 * @category Web Worker
 */
export interface TransferWorkerPort {
  /** Sends one message; `transfer` lists the `ArrayBuffer`s whose ownership moves with it. */
  postMessage(message: unknown, transfer: ArrayBuffer[]): void;
  /** Listens for `message` events (and `error` / `messageerror` where the port has them). */
  addEventListener(type: string, listener: (event: { data?: unknown; message?: string }) => void): void;
  /** Stops listening. */
  removeEventListener(type: string, listener: (event: { data?: unknown; message?: string }) => void): void;
  /** `MessagePort.start()`: called when present (a port's messages wait until then). */
  start?: () => void;
  /** `Worker.terminate()`: called by {@link TransferWorker.terminate} when present. */
  terminate?: () => void;
  /** `MessagePort.close()`: called by {@link TransferWorker.terminate} when there is no `terminate`. */
  close?: () => void;
}

/**
 * One labelled image sent to the worker: as {@link LabelledImage}, with an image that survives `postMessage`: a
 * `Blob` / `File`, an `ImageBitmap`, `ImageData` or `{ data, width, height }` pixels, or a URL string (fetched by
 * the worker). Tensors and DOM elements cannot cross; decode them on the page first.
 * @category Web Worker
 */
export type WorkerLabelledImage = Omit<LabelledImage, 'image'> & {
  /** The image (see {@link WorkerImage}). */
  image: WorkerImage;
};

/** An image that can be posted to the worker (see {@link WorkerLabelledImage}). @category Web Worker */
export type WorkerImage = Exclude<LabelledImage['image'], tf.Tensor>;

/**
 * A data set sent to the worker, which builds it with `fromImages(images, { classes, name })`.
 * @category Web Worker
 */
export interface WorkerImages {
  /** The class names, in index order. */
  classes: readonly string[];
  /** The images and their labels (names or indices into `classes`). */
  images: readonly WorkerLabelledImage[];
  /** Names the data set in messages. @defaultValue `"images"` */
  name?: string;
}

/** What the page is told while a training call runs. @internal */
export type WorkerEvent =
  | { event: 'progress'; progress: Progress }
  | { event: 'trainBegin' }
  | { event: 'batchEnd'; batch: number; logs: BatchLogs }
  | { event: 'epochEnd'; epoch: number; logs: EpochLogs };

/** The structured-cloneable part of `fit`'s options. @category Web Worker */
export type WorkerFitOptions = Omit<FitArgs, 'signal' | 'onProgress' | 'callbacks' | 'cache' | 'validationData' | 'checkpoint' | 'optimizer'> & {
  /** The optimizer, by name. @defaultValue `'adam'` (as `fit`) */
  optimizer?: 'adam' | 'sgd' | 'rmsprop';
};

/** The cloneable options of {@link evaluate} (no signal, kept activations or unknown images). @category Web Worker */
export type WorkerEvaluateOptions = Omit<EvaluateArgs, 'signal' | 'activations' | 'unknown'>;

/** What the page hears while a training call runs in the worker (see {@link WorkerFitArgs}). @category Web Worker */
export interface WorkerTrainListeners {
  /** Progress of loading, caching and extraction, as the library reports it ({@link Progress}). @defaultValue none */
  onProgress?: (progress: Progress) => void;
  /** Training begins (the features are extracted). @defaultValue none */
  onTrainBegin?: () => void;
  /** After every gradient step (only when `batchEvents` is on: one message per batch). @defaultValue none */
  onBatchEnd?: (batch: number, logs: BatchLogs) => void;
  /** After every epoch, with its loss and accuracy (validation too). @defaultValue none */
  onEpochEnd?: (epoch: number, logs: EpochLogs) => void;
  /** Post a message per batch for `onBatchEnd`. @defaultValue `false` */
  batchEvents?: boolean;
  /** Aborts the call in the worker; it rejects with an `AbortError` (`TransferError` code `ABORTED`). @defaultValue none */
  signal?: AbortSignal;
  /**
   * Use the activation cache the worker script gave {@link serveTransferWorker} (`cache`).
   * @defaultValue `true` when the worker has one
   */
  cache?: boolean;
}

/**
 * Options of {@link TransferWorker.fit}: `loadBackbone(backbone, backboneOptions)`, `freeze`, `attachHead`, `fit`
 * and (with validation data) `evaluate`, run in the worker. Every field except the listeners crosses by
 * `postMessage`.
 * @category Web Worker
 */
export interface WorkerFitArgs extends WorkerTrainListeners {
  /** The backbone: a catalog name or a model URL, loaded in the worker (`loadBackbone`). */
  backbone: string;
  /** Options of `loadBackbone` (input size, feature layer, preprocessing, name). @defaultValue none */
  backboneOptions?: Omit<LoadBackboneArgs, 'onProgress' | 'signal' | 'takeOwnership'>;
  /** Options of `freeze`. @defaultValue the whole backbone frozen */
  freeze?: FreezeArgs;
  /** Options of `attachHead` (the classes are the data's). @defaultValue `attachHead`'s defaults */
  head?: Omit<AttachHeadArgs, 'classes'>;
  /** The training images. */
  data: WorkerImages;
  /** Held-out images: `fit`'s `validationData`, then evaluated. @defaultValue none */
  validationData?: WorkerImages;
  /** Options of `fit` (epochs, batch size, learning rate, early stopping, seed, ...). @defaultValue `fit`'s defaults */
  fit?: WorkerFitOptions;
  /**
   * Evaluate the trained model on `validationData` (`evaluate`, reusing the activations `fit` computed).
   * @defaultValue `true` when there is validation data
   */
  evaluate?: boolean | WorkerEvaluateOptions;
  /**
   * Ends training after the current batch, as `model.stopTraining = true` does: the call then resolves with the
   * model as trained so far and `stopped: true`. Fired before the first epoch began (while loading or
   * extracting), it aborts instead: the call rejects with an `AbortError`.
   * @defaultValue none
   */
  stopSignal?: AbortSignal;
}

/** The `fit` request as it is posted. @internal */
export type FitRequestBody = Omit<WorkerFitArgs, 'onProgress' | 'onTrainBegin' | 'onBatchEnd' | 'onEpochEnd' | 'signal' | 'stopSignal'>;

/** The cloneable part of `transferLearn`'s options. @category Web Worker */
export type WorkerTransferLearnOptions = Omit<
  TransferLearnArgs,
  'data' | 'validationData' | 'backbone' | 'signal' | 'onProgress' | 'callbacks' | 'cache' | 'checkpoint' | 'optimizer'
>;

/**
 * Options of {@link TransferWorker.transferLearn}: `transferLearn` run in the worker.
 * @category Web Worker
 */
export interface WorkerTransferLearnArgs extends WorkerTrainListeners {
  /** The images: one set (a validation split is held out) or `{ train, validation }`. */
  data:
    | WorkerImages
    | {
        /** The training images. */
        train: WorkerImages;
        /** The validation images. @defaultValue a `validationSplit` of `train` */
        validation?: WorkerImages;
      };
  /** Validation images. @defaultValue `data.validation`, else a `validationSplit` of the data */
  validationData?: WorkerImages;
  /** The backbone: a catalog name or a model URL. @defaultValue `transferLearn`'s (`"mobilenet_v2_1.0_224"`) */
  backbone?: string;
  /** The other options of `transferLearn` (epochs, fine-tuning, calibration, ...). @defaultValue `transferLearn`'s */
  options?: WorkerTransferLearnOptions;
}

/** The `transferLearn` request as it is posted. @internal */
export type TransferLearnRequestBody = Omit<WorkerTransferLearnArgs, 'onProgress' | 'onTrainBegin' | 'onBatchEnd' | 'onEpochEnd' | 'signal'>;

/** Every request the page sends; `id` pairs it with its answer. @internal */
export type WorkerRequest = { id: number } & (
  | { op: 'init'; config: unknown }
  | { op: 'fit'; body: FitRequestBody }
  | { op: 'transferLearn'; body: TransferLearnRequestBody }
  | { op: 'stop'; target: number }
  | { op: 'abort'; target: number; reason: string }
  | { op: 'predict'; model: number; images: WorkerImage[]; args: Omit<PredictArgs, 'signal'> }
  | { op: 'explain'; model: number; images: WorkerImage[]; args: Omit<ExplainArgs, 'signal'> }
  | { op: 'evaluate'; model: number; data: WorkerImages; args: WorkerEvaluateOptions }
  | { op: 'save'; model: number; args: Omit<SaveArgs, 'signal' | 'verify'> }
  | { op: 'load'; artifacts: unknown }
  | { op: 'dispose'; model: number }
  | { op: 'memory' }
);

/** The operations, by name. @internal */
export type WorkerOp = WorkerRequest['op'];

/** An error as it crosses: its name, message and (for a `TransferError`) code. @internal */
export interface WireError {
  name: string;
  message: string;
  code?: string;
}

/** Every message the worker sends. @internal */
export type WorkerResponse =
  | { kind: 'hello' }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: WireError }
  | ({ kind: 'event'; id: number } & WorkerEvent);

const CODES: ReadonlySet<string> = new Set<TransferErrorCode>([
  'INVALID_ARGUMENT', 'UNKNOWN_BACKBONE', 'LAYER_NOT_FOUND', 'SHAPE_MISMATCH', 'CLASS_MISMATCH', 'EMPTY_DATA',
  'MODEL_LOAD_FAILED', 'MODEL_INVALID', 'SAVE_FAILED', 'NOT_SUPPORTED', 'NETWORK', 'IMAGE_DECODE_FAILED',
  'NUMERICAL_FAULT', 'ABORTED', 'NODE_ONLY', 'ACCURACY_DROP', 'BACKBONE_MISMATCH', 'WORKER_FAILED',
]);

/** An error thrown in the worker, as it is posted. @internal */
export function toWireError(e: unknown): WireError {
  if (e instanceof TransferError) return { name: e.name, message: e.message, code: e.code };
  if (e instanceof Error) return { name: e.name, message: e.message, ...(e.name === 'AbortError' ? { code: 'ABORTED' } : {}) };
  return { name: 'Error', message: String(e) };
}

/**
 * The error re-thrown on the page: a `TransferError` with the worker's message and code (`ABORTED` keeps the name
 * `AbortError`); an error that was not a `TransferError` in the worker gets the code `WORKER_FAILED`. @internal
 */
export function fromWireError(e: WireError, op: string): TransferError {
  const code = (e.code && CODES.has(e.code) ? e.code : 'WORKER_FAILED') as TransferErrorCode;
  const prefix = code === 'WORKER_FAILED' && e.name && e.name !== 'Error' ? `${e.name}: ` : '';
  return new TransferError(code, `${prefix}${e.message}`, { cause: { worker: e, op } });
}
