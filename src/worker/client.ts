/**
 * `createTransferWorker`: the page end of the Web Worker helper. Each method posts one typed request to the
 * worker ({@link serveTransferWorker}) and resolves with its answer; progress and epochs arrive as they happen;
 * errors thrown in the worker are re-thrown here as `TransferError`s with the worker's message.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { TransferError, check } from '../errors';
import type { Evaluation } from '../evaluate/metrics';
import type { Explanation } from '../evaluate/explain';
import type { Heatmap } from '../evaluate/heatmap';
import type { PredictArgs, Prediction } from '../evaluate/predict';
import type { ExplainArgs } from '../evaluate/explain';
import type { SaveArgs, SaveReport } from '../io/model-io';
import type { FitHistory } from '../train/history';
import type { TransferLearnResult } from '../transfer-learn';
import {
  fromWireError,
  type TransferWorkerPort,
  type WorkerEvaluateOptions,
  type WorkerFitArgs,
  type WorkerImage,
  type WorkerImages,
  type WorkerRequest,
  type WorkerResponse,
  type WorkerTrainListeners,
  type WorkerTransferLearnArgs,
} from './protocol';
import type { RemoteModelInfo } from './serve';

/**
 * Options of {@link createTransferWorker}.
 * @category Web Worker
 */
export interface CreateTransferWorkerArgs {
  /**
   * Given to the worker's `setup` (see {@link ServeTransferWorkerArgs.setup}), e.g. `{ backend: 'webgl' }`:
   * anything structured-cloneable.
   * @defaultValue `undefined`
   */
  config?: unknown;
}

/** What {@link TransferWorker.ready} resolves with. @category Web Worker */
export interface TransferWorkerInfo {
  /** `tf.getBackend()` in the worker after `setup`. */
  backend: string;
  /** What the worker's `setup` returned. */
  info: unknown;
}

/** A heatmap as it crosses from the worker: a {@link Heatmap} without its `upsample` method (use `upsampleHeatmap`). @category Web Worker */
export type WorkerHeatmap = Omit<Heatmap, 'upsample'>;

/** One image explained in the worker: an {@link Explanation} whose heatmaps lost their method. @category Web Worker */
export type WorkerExplanation = Omit<Explanation, 'heatmap' | 'heatmaps'> & {
  /** The predicted class's heatmap (`heatmaps[0]`). */
  heatmap: WorkerHeatmap;
  /** One per class explained, the predicted one first. */
  heatmaps: WorkerHeatmap[];
};

/** What {@link TransferWorker.fit} resolves with. @category Web Worker */
export interface WorkerFitResult {
  /** The trained model, held in the worker (call `dispose()` when done). */
  model: RemoteModel;
  /** The epochs run (the validation activations stay in the worker and are freed). */
  history: FitHistory;
  /** The evaluation on the validation data, when there was some and `evaluate` was not `false`. */
  evaluation?: Evaluation;
  /** Whether `stopSignal` ended training early. */
  stopped: boolean;
}

/** What {@link TransferWorker.transferLearn} resolves with: `transferLearn`'s result, its model held in the worker. @category Web Worker */
export type WorkerTransferLearnResult = Omit<TransferLearnResult, 'model'> & {
  /** The trained model, held in the worker (call `dispose()` when done). */
  model: RemoteModel;
};

/** What {@link RemoteModel.save} resolves with. @category Web Worker */
export interface WorkerSaveResult {
  /** The saved files as tfjs artefacts (`weightData` moved from the worker, not copied). */
  artifacts: tf.io.ModelArtifacts;
  /** `save`'s report (quantization, weight bytes). */
  report: SaveReport;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  op: string;
  listeners?: WorkerTrainListeners;
}

/** Turns a listener's exception into a console error: a page bug must not break the worker conversation. */
function safely(f: () => void): void {
  try {
    f();
  } catch (e) {
    console.error('tfjs-transfer worker listener:', e);
  }
}

/** The images as a list, refusing tensors (structured cloning would turn them into empty objects). */
function postable(images: WorkerImage | readonly WorkerImage[], what: string): WorkerImage[] {
  const list = Array.isArray(images) ? [...(images as readonly WorkerImage[])] : [images as WorkerImage];
  list.forEach((image, i) => {
    if (image instanceof tf.Tensor || typeof (image as { dataSync?: unknown })?.dataSync === 'function') {
      throw new TransferError('INVALID_ARGUMENT', `RemoteModel.${what}: image ${i} is a tensor, which cannot be posted to the worker; send a Blob, an ImageBitmap, ImageData or { data, width, height } pixels.`);
    }
  });
  return list;
}

/**
 * A model trained or loaded in the worker. Its methods run there; `dispose()` frees it (explicit release: the
 * worker cannot know when the page drops this object).
 * @category Web Worker
 */
export class RemoteModel {
  /** Its id in the worker. */
  readonly id: number;
  /** The class names, in output order. */
  readonly classes: readonly string[];
  /** `[height, width, 3]` of its input. */
  readonly inputShape: readonly [number, number, number];
  /** The backbone's name. */
  readonly backbone: string;
  /** Whether it has an unknown detector (predictions then carry `unknown`). */
  readonly unknownDetector: boolean;
  #worker: TransferWorker;
  #disposed = false;

  /** @internal */
  constructor(worker: TransferWorker, info: RemoteModelInfo) {
    this.#worker = worker;
    this.id = info.id;
    this.classes = info.classes;
    this.inputShape = info.inputShape;
    this.backbone = info.backbone;
    this.unknownDetector = info.unknownDetector;
  }

  /** Whether {@link RemoteModel.dispose} was called. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  #check(what: string): void {
    if (this.#disposed) throw new TransferError('INVALID_ARGUMENT', `RemoteModel.${what}: the model was disposed; train or load another.`);
  }

  /**
   * `predict` in the worker.
   * @param images One image or several (see {@link WorkerImage}).
   * @param args `predict`'s options. @defaultValue batch size 32
   * @example
   * ```ts
   * const [p] = await model.predict(fileInput.files[0]);
   * console.log(p.label, p.probability, p.unknown);
   * ```
   */
  async predict(images: WorkerImage | readonly WorkerImage[], args: Omit<PredictArgs, 'signal'> = {}): Promise<Prediction[]> {
    this.#check('predict');
    return this.#worker.request('predict', { model: this.id, images: postable(images, 'predict'), args }) as Promise<Prediction[]>;
  }

  /**
   * `explain` in the worker: the prediction and a heatmap per image, to draw with `drawHeatmap` on the page.
   * @param images One image or several.
   * @param args `explain`'s options. @defaultValue method `'auto'`, the predicted class only
   * @example
   * ```ts
   * const [e] = await model.explain(blob);
   * drawHeatmap(canvas, await createImageBitmap(blob), e.heatmap);
   * ```
   */
  async explain(images: WorkerImage | readonly WorkerImage[], args: Omit<ExplainArgs, 'signal'> = {}): Promise<WorkerExplanation[]> {
    this.#check('explain');
    return this.#worker.request('explain', { model: this.id, images: postable(images, 'explain'), args }) as Promise<WorkerExplanation[]>;
  }

  /**
   * `evaluate` in the worker.
   * @param data The labelled images.
   * @param args `evaluate`'s cloneable options. @defaultValue `evaluate`'s
   * @example
   * ```ts
   * const ev = await model.evaluate({ classes: ['cat', 'dog'], images: [{ image: blob, label: 'cat' }] });
   * console.log(ev.accuracy);
   * ```
   */
  async evaluate(data: WorkerImages, args: WorkerEvaluateOptions = {}): Promise<Evaluation> {
    this.#check('evaluate');
    return this.#worker.request('evaluate', { model: this.id, data, args }) as Promise<Evaluation>;
  }

  /**
   * `save` in the worker, into memory; the artefacts come back (weights transferred, not copied) and, when
   * `destination` is given, are written on the page: a tfjs URL (`downloads://name`, `indexeddb://name`) or an
   * `IOHandler`.
   * @param destination Where the page writes them. @defaultValue none (only returned)
   * @param args `save`'s options (quantize, backbone). @defaultValue float32, backbone embedded
   * @example
   * ```ts
   * const { report } = await model.save('downloads://my-classifier', { quantize: 'float16' });
   * console.log(report.artefact.weightBytes);
   * ```
   */
  async save(destination?: string | tf.io.IOHandler, args: Omit<SaveArgs, 'signal' | 'verify'> = {}): Promise<WorkerSaveResult> {
    this.#check('save');
    const handler = typeof destination === 'string' ? tf.io.getSaveHandlers(destination)[0] : destination;
    if (destination !== undefined && typeof handler?.save !== 'function') {
      throw new TransferError('INVALID_ARGUMENT', `RemoteModel.save: no tfjs save handler for ${String(destination)}; use downloads://, indexeddb:// or an IOHandler.`);
    }
    const result = (await this.#worker.request('save', { model: this.id, args })) as WorkerSaveResult;
    if (handler?.save) await handler.save(result.artifacts);
    return result;
  }

  /**
   * Frees the model in the worker. Calling it twice is harmless.
   * @example
   * ```ts
   * await model.dispose();
   * ```
   */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    if (!this.#worker.isTerminated) await this.#worker.request('dispose', { model: this.id });
  }
}

/**
 * The page end of a worker running {@link serveTransferWorker}; made by {@link createTransferWorker}.
 * @category Web Worker
 */
export class TransferWorker {
  /** Resolves once the worker's `setup` ran (with the backend it selected); rejects when `setup` threw. */
  readonly ready: Promise<TransferWorkerInfo>;
  #port: TransferWorkerPort;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #terminated = false;
  #hello: Promise<void>;
  /** Every request but init waits for this one promise, so requests reach the worker in the order they were made. */
  #gate: Promise<unknown>;
  #helloResolve: () => void = () => undefined;
  #onMessage = (event: { data?: unknown }) => this.#receive(event.data as WorkerResponse);
  #onError = (event: { message?: string }) => this.#fail(`the worker failed${event?.message ? `: ${event.message}` : ' (its script did not load, or threw)'}`);

  /** @internal */
  constructor(port: TransferWorkerPort, args: CreateTransferWorkerArgs) {
    this.#port = port;
    this.#hello = new Promise<void>((resolve) => (this.#helloResolve = resolve));
    port.addEventListener('message', this.#onMessage);
    port.addEventListener('error', this.#onError);
    port.addEventListener('messageerror', this.#onError);
    port.start?.();
    this.ready = this.request('init', { config: args.config }) as Promise<TransferWorkerInfo>;
    this.ready.catch(() => undefined);
    this.#gate = this.#hello.then(() => this.ready);
  }

  /** Whether {@link TransferWorker.terminate} (or `dispose`) was called, or the worker failed. */
  get isTerminated(): boolean {
    return this.#terminated;
  }

  /** Calls still waiting for an answer. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Posts one request once the worker said hello (init) or is ready (everything else). @internal */
  request(op: WorkerRequest['op'], body: Record<string, unknown>, listeners?: WorkerTrainListeners, id = this.#nextId++): Promise<unknown> {
    if (this.#terminated) return Promise.reject(new TransferError('WORKER_FAILED', `TransferWorker: "${op}" after the worker was terminated; create another.`));
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, op, listeners });
      (op === 'init' ? this.#hello : this.#gate).then(
        () => this.#send({ id, op, ...body } as WorkerRequest, id),
        (e: unknown) => this.#settle(id, undefined, e),
      );
    });
  }

  #send(message: WorkerRequest, id: number): void {
    if (this.#terminated || !this.#pending.has(id)) return;
    try {
      this.#port.postMessage(message, []);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      this.#settle(id, undefined, new TransferError('INVALID_ARGUMENT', `TransferWorker.${message.op}: the request cannot be posted to the worker (${why}); send Blobs, ImageBitmaps, ImageData or URLs, not tensors or elements.`));
    }
  }

  #settle(id: number, value: unknown, error?: unknown): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    if (error !== undefined) p.reject(error);
    else p.resolve(value);
  }

  #receive(message: WorkerResponse): void {
    if (typeof message !== 'object' || message === null) return;
    if (message.kind === 'hello') return this.#helloResolve();
    const p = this.#pending.get((message as { id: number }).id);
    if (!p) return;
    if (message.kind === 'result') return this.#settle(message.id, message.value);
    if (message.kind === 'error') return this.#settle(message.id, undefined, fromWireError(message.error, p.op));
    if (message.kind !== 'event' || !p.listeners) return;
    const l = p.listeners;
    if (message.event === 'progress') safely(() => l.onProgress?.(message.progress));
    else if (message.event === 'trainBegin') safely(() => l.onTrainBegin?.());
    else if (message.event === 'batchEnd') safely(() => l.onBatchEnd?.(message.batch, message.logs));
    else if (message.event === 'epochEnd') safely(() => l.onEpochEnd?.(message.epoch, message.logs));
  }

  #fail(why: string): void {
    const error = new TransferError('WORKER_FAILED', `TransferWorker: ${why}.`);
    for (const id of [...this.#pending.keys()]) this.#settle(id, undefined, error);
  }

  /** Runs a training request with its signals and listeners. */
  #train(op: 'fit' | 'transferLearn', args: WorkerFitArgs | WorkerTransferLearnArgs): Promise<Record<string, unknown>> {
    const { onProgress, onTrainBegin, onBatchEnd, onEpochEnd, signal, ...body } = args as WorkerFitArgs;
    const stopSignal = (args as WorkerFitArgs).stopSignal;
    delete (body as { stopSignal?: unknown }).stopSignal;
    if (signal?.aborted) return Promise.reject(new TransferError('ABORTED', `TransferWorker.${op} was aborted before it started.`));
    const id = this.#nextId++;
    const onAbort = () => void this.request('abort', { target: id, reason: String(signal?.reason instanceof Error ? signal.reason.message : (signal?.reason ?? 'aborted')) }).catch(() => undefined);
    const onStop = () => void this.request('stop', { target: id }).catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    stopSignal?.addEventListener('abort', onStop, { once: true });
    const done = this.request(op, { body }, { onProgress, onTrainBegin, onBatchEnd, onEpochEnd }, id);
    if (stopSignal?.aborted) onStop();
    return (done as Promise<Record<string, unknown>>).finally(() => {
      signal?.removeEventListener('abort', onAbort);
      stopSignal?.removeEventListener('abort', onStop);
    });
  }

  /**
   * Loads a backbone, freezes it, attaches a head and trains it in the worker (`loadBackbone`, `freeze`,
   * `attachHead`, `fit`), then evaluates it on the validation images. `onProgress` / `onEpochEnd` hear what
   * happens; `signal` aborts; `stopSignal` ends training after the current batch and keeps the model.
   * @param args See {@link WorkerFitArgs}. @defaultValue `fit`'s defaults for every training option
   * @example
   * ```ts
   * const stop = new AbortController();
   * const { model, history, evaluation } = await worker.fit({
   *   backbone: 'mobilenet_v2_0.35_224', backboneOptions: { inputSize: 160 },
   *   data: { classes: ['cat', 'dog'], images: files.map((f, i) => ({ image: f, label: labels[i] })) },
   *   validationData: heldOut, fit: { epochs: 20, learningRate: 1e-3, seed: 42 },
   *   onEpochEnd: (epoch, logs) => chart.add(epoch, logs), stopSignal: stop.signal,
   * });
   * ```
   */
  async fit(args: WorkerFitArgs): Promise<WorkerFitResult> {
    check(args != null && typeof args === 'object', 'TransferWorker.fit: args must be an object.');
    const value = await this.#train('fit', args);
    return { ...(value as unknown as WorkerFitResult), model: new RemoteModel(this, value.model as RemoteModelInfo) };
  }

  /**
   * `transferLearn` in the worker (examine, pipeline, compose, fit, calibrate, evaluate). `signal` aborts it.
   * @param args See {@link WorkerTransferLearnArgs}. @defaultValue `transferLearn`'s defaults
   * @example
   * ```ts
   * const { model, evaluation } = await worker.transferLearn({
   *   data: { classes: ['cat', 'dog'], images }, backbone: 'mobilenet_v2_1.0_224', options: { epochs: 10 },
   *   onProgress: (p) => (bar.value = p.done / p.total),
   * });
   * ```
   */
  async transferLearn(args: WorkerTransferLearnArgs): Promise<WorkerTransferLearnResult> {
    check(args != null && typeof args === 'object', 'TransferWorker.transferLearn: args must be an object.');
    const value = await this.#train('transferLearn', args);
    return { ...(value as unknown as WorkerTransferLearnResult), model: new RemoteModel(this, value.model as RemoteModelInfo) };
  }

  /**
   * Loads a saved model into the worker: a URL (fetched there) or a tfjs `IOHandler` read on the page (e.g.
   * `tf.io.browserFiles([json, weights])`), whose artefacts are then moved to the worker.
   * @example
   * ```ts
   * const model = await worker.loadModel(tf.io.browserFiles([jsonFile, weightsFile]));
   * ```
   */
  async loadModel(source: string | tf.io.IOHandler): Promise<RemoteModel> {
    check(typeof source === 'string' || typeof source?.load === 'function', 'TransferWorker.loadModel: pass a URL or a tfjs IOHandler with load().');
    const artifacts = typeof source === 'string' ? source : await source.load!();
    const info = (await this.request('load', { artifacts })) as RemoteModelInfo;
    return new RemoteModel(this, info);
  }

  /**
   * The worker's `tf.memory()` counts: tests check that `numTensors` returns to its baseline.
   * @example
   * ```ts
   * const { numTensors } = await worker.memory();
   * ```
   */
  async memory(): Promise<{
    /** Tensors alive in the worker. */
    numTensors: number;
    /** Bytes they hold. */
    numBytes: number;
  }> {
    return (await this.request('memory', {})) as { numTensors: number; numBytes: number };
  }

  /**
   * Ends the worker now: calls still running reject with a `TransferError` (`WORKER_FAILED`), and the worker is
   * terminated (`Worker.terminate()`, or `close()` for a port). Its models are gone with it.
   * @example
   * ```ts
   * worker.terminate();
   * ```
   */
  terminate(): void {
    if (this.#terminated) return;
    this.#fail('the worker was terminated');
    this.#terminated = true;
    this.#port.removeEventListener('message', this.#onMessage);
    this.#port.removeEventListener('error', this.#onError);
    this.#port.removeEventListener('messageerror', this.#onError);
    if (this.#port.terminate) this.#port.terminate();
    else this.#port.close?.();
  }
}

/**
 * Starts the page end of a worker that runs {@link serveTransferWorker}: training, feature extraction,
 * prediction, heatmaps and saving then run off the page's main thread. The worker script selects the backend (the
 * library never does); `config` tells it which. Free models with `dispose()` and the worker with `terminate()`.
 *
 * @param worker A `Worker` (or a `MessagePort`) whose script calls {@link serveTransferWorker}.
 * @param args See {@link CreateTransferWorkerArgs}. @defaultValue no config
 * @category Web Worker
 * @example
 * ```ts
 * import { createTransferWorker, drawHeatmap } from 'tfjs-transfer';
 * const worker = createTransferWorker(new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }), {
 *   config: { backend: 'webgl' },
 * });
 * console.log((await worker.ready).backend);
 * const { model } = await worker.fit({ backbone: 'mobilenet_v2_0.35_224', data, fit: { epochs: 10 } });
 * const [e] = await model.explain(blob);
 * drawHeatmap(canvas, await createImageBitmap(blob), e.heatmap);
 * await model.dispose();
 * worker.terminate();
 * ```
 */
export function createTransferWorker(worker: TransferWorkerPort, args: CreateTransferWorkerArgs = {}): TransferWorker {
  check(
    worker != null && typeof worker.postMessage === 'function' && typeof worker.addEventListener === 'function',
    'createTransferWorker: pass a Worker (or a MessagePort) whose script calls serveTransferWorker().',
  );
  check(args != null && typeof args === 'object', 'createTransferWorker: args must be an object.');
  return new TransferWorker(worker, args);
}
