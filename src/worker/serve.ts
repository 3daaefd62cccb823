/**
 * `serveTransferWorker`: the worker end of the Web Worker helper. It answers {@link createTransferWorker}'s
 * requests by running the library in the worker's thread (training, extraction, prediction, heatmaps, saving),
 * keeps the trained models there, and posts progress, epochs and results back. It never selects a backend: the
 * worker script does that, in `setup`.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadBackbone } from '../backbone/load';
import { fromImages, type Dataset } from '../data/dataset';
import { TransferError, check } from '../errors';
import { evaluate } from '../evaluate/evaluate';
import { explain } from '../evaluate/explain';
import { predict } from '../evaluate/predict';
import { freeze } from '../freeze';
import { attachHead } from '../head';
import { loadModel, save } from '../io/model-io';
import type { ActivationStore } from '../train/activations';
import type { FitCallback } from '../train/callbacks';
import { fit } from '../train/fit';
import type { FitHistory } from '../train/history';
import { transferLearn } from '../transfer-learn';
import type { TransferModel } from '../transfer-model';
import type { Progress } from '../types';
import {
  toWireError,
  type FitRequestBody,
  type TransferLearnRequestBody,
  type TransferWorkerPort,
  type WorkerEvent,
  type WorkerImages,
  type WorkerRequest,
  type WorkerResponse,
} from './protocol';

/**
 * Options of {@link serveTransferWorker}.
 * @category Web Worker
 */
export interface ServeTransferWorkerArgs {
  /** Where requests come from and answers go. @defaultValue `globalThis` (the worker's own scope, `self`) */
  port?: TransferWorkerPort;
  /**
   * Runs once, before any other request, with the `config` the page gave {@link createTransferWorker}: register and
   * select the backend here (`await tf.setBackend(config.backend)`), set `env`, open caches. What it returns
   * (structured-cloneable) reaches the page in `ready.info`; when it throws, `ready` rejects with its message.
   * @defaultValue none (the worker keeps tfjs' default backend)
   */
  setup?: (config: unknown) => unknown;
  /**
   * The persistent activation cache of training calls (`fit`'s `cache`), e.g. `createIndexedDBCache()`: IndexedDB
   * works in workers. A call uses it unless it passes `cache: false`.
   * @defaultValue none
   */
  cache?: ActivationStore;
}

/**
 * What {@link serveTransferWorker} returns: the worker end, for the worker script.
 * @category Web Worker
 */
export interface TransferWorkerServer {
  /** How many trained or loaded models the worker holds (each freed by `RemoteModel.dispose()`). */
  readonly models: number;
  /**
   * Aborts every running call, e.g. after a WebGL context loss: each is answered at once (the page's promise
   * rejects with an `AbortError` naming `reason`) without waiting for the call to notice, since a lost GPU context
   * may never answer a pending read; a model such a call still produces is disposed.
   */
  abortAll(reason: string): void;
  /** Stops answering, aborts running calls and frees every model. */
  close(): void;
}

/** The model as the page sees it. @internal */
export interface RemoteModelInfo {
  id: number;
  classes: string[];
  inputShape: [number, number, number];
  backbone: string;
  unknownDetector: boolean;
}

interface Run {
  controller: AbortController;
  /** Answered by abortAll already: what the call still produces is dropped. */
  answered: boolean;
  training: boolean;
  model: TransferModel | undefined;
  stopped: boolean;
}

interface ServerState {
  port: TransferWorkerPort;
  args: ServeTransferWorkerArgs;
  models: Map<number, TransferModel>;
  nextModel: number;
  runs: Map<number, Run>;
  initialised: boolean;
  closed: boolean;
  /** Calls answered early by abortAll: their own answer, when it comes, is not posted. */
  answered: Set<number>;
}

interface Answer {
  value: unknown;
  transfer?: ArrayBuffer[];
}

/**
 * Serves the library to the page from inside a Web Worker (or any {@link TransferWorkerPort}): the worker script
 * calls it once. The page talks to it with {@link createTransferWorker}. Training, feature extraction, prediction,
 * heatmaps and saving then run in the worker's thread, so the page never freezes.
 *
 * The backend stays the application's: register its package in the worker script and select it in `setup`.
 *
 * @category Web Worker
 * @example
 * ```ts
 * // worker.ts, started by the page with new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-webgl';
 * import { createIndexedDBCache, serveTransferWorker } from 'tfjs-transfer';
 *
 * serveTransferWorker({
 *   setup: async (config) => {
 *     await tf.setBackend((config as { backend: string }).backend);
 *     return { backend: tf.getBackend() };
 *   },
 *   cache: createIndexedDBCache(),
 * });
 * ```
 */
export function serveTransferWorker(args: ServeTransferWorkerArgs = {}): TransferWorkerServer {
  check(args != null && typeof args === 'object', 'serveTransferWorker: args must be an object.');
  const port = args.port ?? (globalThis as unknown as TransferWorkerPort);
  check(
    typeof port?.postMessage === 'function' && typeof port.addEventListener === 'function',
    'serveTransferWorker: no port: call it inside a Web Worker script, or pass args.port (a MessagePort).',
  );
  check(args.setup === undefined || typeof args.setup === 'function', 'serveTransferWorker: setup must be a function (config) => ...');
  const state: ServerState = { port, args, models: new Map(), nextModel: 1, runs: new Map(), initialised: false, closed: false, answered: new Set() };
  const onMessage = (event: { data?: unknown }) => void handle(state, event.data);
  port.addEventListener('message', onMessage);
  port.start?.();
  post(state, { kind: 'hello' });
  return {
    get models() {
      return state.models.size;
    },
    abortAll: (reason) => abortAll(state, reason),
    close: () => {
      if (state.closed) return;
      state.closed = true;
      port.removeEventListener('message', onMessage);
      abortAll(state, 'the transfer worker was closed');
      for (const model of state.models.values()) model.dispose();
      state.models.clear();
    },
  };
}

function abortAll(state: ServerState, reason: string): void {
  for (const [id, run] of state.runs) {
    run.controller.abort(new Error(reason));
    if (run.answered) continue;
    run.answered = true;
    state.answered.add(id);
    post(state, { kind: 'error', id, error: toWireError(new TransferError('ABORTED', `The call was aborted: ${reason}.`)) });
  }
}

/** Registers a run's model, unless the run was already answered by {@link abortAll}. */
function registerRun(state: ServerState, run: Run, model: TransferModel): RemoteModelInfo {
  if (run.answered) {
    model.dispose();
    throw new TransferError('ABORTED', 'The call was aborted.');
  }
  return register(state, model);
}

function post(state: ServerState, message: WorkerResponse, transfer: ArrayBuffer[] = []): void {
  if (!state.closed || message.kind !== 'event') state.port.postMessage(message, transfer);
}

function isRequest(data: unknown): data is WorkerRequest {
  const r = data as WorkerRequest | null;
  return typeof r === 'object' && r !== null && typeof r.id === 'number' && typeof r.op === 'string';
}

/** One request: answered by exactly one `result` or `error` (stop and abort are answered at once). */
async function handle(state: ServerState, data: unknown): Promise<void> {
  if (state.closed || !isRequest(data)) return; // not ours
  const id = data.id;
  try {
    const { value, transfer } = await answer(state, data);
    if (state.answered.delete(id)) return;
    try {
      post(state, { kind: 'result', id, value }, transfer);
    } catch (e) {
      throw new TransferError('WORKER_FAILED', `the answer to "${data.op}" could not be posted to the page: ${e instanceof Error ? e.message : String(e)}`);
    }
  } catch (e) {
    if (!state.answered.delete(id)) post(state, { kind: 'error', id, error: toWireError(e) });
  }
}

async function answer(state: ServerState, req: WorkerRequest): Promise<Answer> {
  if (req.op === 'init') {
    check(!state.initialised, 'serveTransferWorker: init was sent twice; one createTransferWorker per worker.');
    const info = await state.args.setup?.(req.config);
    state.initialised = true;
    return { value: { backend: tf.getBackend(), info } };
  }
  check(state.initialised, `serveTransferWorker: "${req.op}" before init; create the page end with createTransferWorker.`);
  switch (req.op) {
    case 'stop':
      return { value: stopRun(state, req.target) };
    case 'abort':
      state.runs.get(req.target)?.controller.abort(new Error(req.reason));
      return { value: true };
    case 'fit':
      return runFit(state, req.id, req.body);
    case 'transferLearn':
      return runTransferLearn(state, req.id, req.body);
    case 'memory': {
      const { numTensors, numBytes } = tf.memory();
      return { value: { numTensors, numBytes } };
    }
    case 'load':
      return { value: register(state, await loadModel(typeof req.artifacts === 'string' ? req.artifacts : tf.io.fromMemory(req.artifacts as tf.io.ModelArtifacts))) };
    default:
      return modelRequest(state, req);
  }
}

/** The requests about one model held here. */
async function modelRequest(state: ServerState, req: WorkerRequest): Promise<Answer> {
  const model = state.models.get((req as { model: number }).model);
  if (!model) throw new TransferError('INVALID_ARGUMENT', `transfer worker: model ${(req as { model: number }).model} does not exist here (disposed?).`);
  switch (req.op) {
    case 'predict':
      return { value: await predict(model, req.images, req.args) };
    case 'explain':
      return { value: await explain(model, req.images, req.args) };
    case 'evaluate':
      return { value: await evaluate(model, datasetOf(req.data), req.args) };
    case 'save':
      return saveModel(model, req.args);
    case 'dispose':
      state.models.delete(req.model);
      model.dispose();
      return { value: true };
    default:
      throw new TransferError('INVALID_ARGUMENT', `transfer worker: unknown request "${req.op}".`);
  }
}

/** The model's artefacts, captured by a save handler (the page writes them); their weight buffers are transferred. */
async function saveModel(model: TransferModel, args: Parameters<typeof save>[2]): Promise<Answer> {
  let captured: tf.io.ModelArtifacts | undefined;
  const handler = tf.io.withSaveHandler(async (artifacts) => {
    captured = artifacts;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  });
  const report = await save(model, handler, args);
  const weights = captured?.weightData;
  const transfer = weights === undefined ? [] : Array.isArray(weights) ? weights : [weights as ArrayBuffer];
  return { value: { artifacts: captured, report }, transfer };
}

function register(state: ServerState, model: TransferModel): RemoteModelInfo {
  const id = state.nextModel++;
  state.models.set(id, model);
  return { id, classes: [...model.classes], inputShape: [...model.inputShape] as [number, number, number], backbone: model.backbone.name, unknownDetector: model.unknownDetector !== undefined };
}

function datasetOf(data: WorkerImages): Dataset {
  check(data != null && Array.isArray(data.images) && Array.isArray(data.classes), 'transfer worker: images must be { classes: [...], images: [{ image, label }, ...] }.');
  return fromImages(data.images, { classes: data.classes, name: data.name });
}

function event(state: ServerState, id: number, e: WorkerEvent): void {
  post(state, { kind: 'event', id, ...e });
}

/** The callbacks and progress reporter that tell the page what a training call is doing. */
function listenersOf(state: ServerState, id: number, run: Run, batchEvents: boolean | undefined) {
  const callbacks: FitCallback = {
    onTrainBegin: () => {
      run.training = true;
      event(state, id, { event: 'trainBegin' });
    },
    onEpochEnd: (epoch, logs) => event(state, id, { event: 'epochEnd', epoch, logs: { ...logs } }),
    ...(batchEvents ? { onBatchEnd: (batch: number, logs: Parameters<NonNullable<FitCallback['onBatchEnd']>>[1]) => event(state, id, { event: 'batchEnd', batch, logs: { ...logs } }) } : {}),
  };
  return { callbacks, onProgress: (progress: Progress) => event(state, id, { event: 'progress', progress: { ...progress } }) };
}

/** `stop`: after the current batch once training began, else an abort. */
function stopRun(state: ServerState, target: number): boolean {
  const run = state.runs.get(target);
  if (!run) return false;
  if (run.training && run.model) {
    run.stopped = true;
    run.model.stopTraining = true;
  } else {
    run.controller.abort(new Error('stopped before training began'));
  }
  return true;
}

/** A history without its kept activations (they stay in the worker, and are disposed). */
function plainHistory(history: FitHistory): FitHistory {
  const { validationActivations, ...rest } = history;
  validationActivations?.dispose();
  return rest;
}

function cacheOf(state: ServerState, wanted: boolean | undefined): ActivationStore | undefined {
  return wanted === false ? undefined : state.args.cache;
}

async function runFit(state: ServerState, id: number, body: FitRequestBody): Promise<Answer> {
  check(body != null && typeof body.backbone === 'string', 'TransferWorker.fit: backbone must be a catalog name or a model URL.');
  const run: Run = { controller: new AbortController(), answered: false, training: false, model: undefined, stopped: false };
  state.runs.set(id, run);
  const { signal } = run.controller;
  const { callbacks, onProgress } = listenersOf(state, id, run, body.batchEvents);
  try {
    const data = datasetOf(body.data);
    const validation = body.validationData ? datasetOf(body.validationData) : undefined;
    const backbone = await loadBackbone(body.backbone, { ...body.backboneOptions, signal, onProgress });
    let model: TransferModel;
    try {
      model = attachHead(freeze(backbone, body.freeze ?? {}), { ...body.head, classes: data.classes });
    } catch (e) {
      backbone.dispose();
      throw e;
    }
    run.model = model;
    try {
      const evaluateArgs = validation && body.evaluate !== false ? (typeof body.evaluate === 'object' ? body.evaluate : {}) : undefined;
      const history = await fit(model, data, {
        ...body.fit, validationData: validation, keepValidationActivations: evaluateArgs !== undefined,
        signal, onProgress, callbacks, cache: cacheOf(state, body.cache),
      });
      const kept = history.validationActivations;
      const evaluation = evaluateArgs && validation ? await evaluate(model, validation, { ...evaluateArgs, activations: kept, signal }).finally(() => kept?.dispose()) : undefined;
      return { value: { model: registerRun(state, run, model), history: plainHistory(history), evaluation, stopped: run.stopped } };
    } catch (e) {
      model.dispose();
      throw e;
    }
  } finally {
    state.runs.delete(id);
  }
}

async function runTransferLearn(state: ServerState, id: number, body: TransferLearnRequestBody): Promise<Answer> {
  check(body != null && body.data != null, 'TransferWorker.transferLearn: data is required.');
  const run: Run = { controller: new AbortController(), answered: false, training: false, model: undefined, stopped: false };
  state.runs.set(id, run);
  const { callbacks, onProgress } = listenersOf(state, id, run, body.batchEvents);
  try {
    const data = 'images' in body.data ? datasetOf(body.data) : { train: datasetOf(body.data.train), ...(body.data.validation ? { validation: datasetOf(body.data.validation) } : {}) };
    const result = await transferLearn({
      ...body.options, data, backbone: body.backbone, validationData: body.validationData ? datasetOf(body.validationData) : undefined,
      signal: run.controller.signal, onProgress, callbacks, cache: cacheOf(state, body.cache),
    });
    const value = {
      ...result,
      model: registerRun(state, run, result.model),
      history: plainHistory(result.history),
      ...(result.fineTuneHistory ? { fineTuneHistory: plainHistory(result.fineTuneHistory) } : {}),
    };
    return { value };
  } finally {
    state.runs.delete(id);
  }
}
