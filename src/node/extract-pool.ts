/**
 * Feature extraction on every core: a pool of `worker_threads`, each with its own tfjs-core and wasm (or cpu)
 * backend, running the folded frozen backbone on slices of each batch. The wasm backend is single-threaded in
 * Node, so without workers `fit` uses one core.
 *
 * `tfjs-transfer/node` installs a pool into `env.parallelExtractor`; `fit` hands it the folded frozen prefix
 * (weights as ArrayBuffers) and batches of raw pixels, and gets the boundary activations back.
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { log } from '../env';
import { TransferError } from '../errors';
import type { ParallelExtractor, ParallelRun, ParallelTrainer, ParallelTraining, PortableProgram, PortableTop, TrainingJob } from '../services';
import type { WorkerRequest, WorkerResponse } from './extract-worker';
import { PooledTraining } from './pooled-training';
import type { TrainEval, TrainEvalResult, TrainStep, TrainStepResult } from './train-shard';

/**
 * Options of {@link createExtractPool}.
 * @category Node
 */
export interface ExtractPoolArgs {
  /**
   * Worker threads.
   * @defaultValue the number of cores (`os.availableParallelism()`), at least 1
   */
  workers?: number;
  /**
   * Backends for which the pool takes jobs (the workers run the caller's backend). Default `['wasm']`: in Node,
   * wasm runs on one thread, so workers bring the other cores in. `cpu` works too but is ~30x slower than wasm
   * anyway; `tensorflow` (tfjs-node) already uses every core and is never handed to workers.
   */
  backends?: readonly string[];
  /**
   * Smallest job (images x views) worth starting workers for; smaller jobs run in the calling thread.
   * @defaultValue 64
   */
  minImages?: number;
  /**
   * Largest piece of a batch a worker runs at once. Batches are cut into pieces of at most this many images and
   * each idle worker takes the next piece, so a worker slowed down by anything else on the machine does not hold
   * the others back. Default 8 (throughput of MobileNetV2 on wasm is the same from 4 to 32 images per call).
   */
  chunkImages?: number;
  /**
   * Backends for which the pool takes data-parallel training jobs (`env.parallelTrainer`). Default `['wasm']`.
   * Jobs are taken only when the freeze boundary is a feature map (fine-tuning below the head: a step of
   * MobileNetV2 from `block_16_expand` takes ~0.5 s on wasm, so two workers pay for their messages); training the
   * head alone on pooled features takes milliseconds per step and stays in the calling thread.
   */
  trainingBackends?: readonly string[];
}

/**
 * A pool of extraction workers; see {@link createExtractPool}.
 * @category Node
 */
export interface ExtractPool extends ParallelExtractor, ParallelTrainer {
  /** Number of worker threads. */
  readonly size: number;
  /** Whether the workers are up (they start on the first job). */
  readonly started: boolean;
  /** Terminates the workers (resolves once they are gone); a later job starts new ones. Safe to call twice. */
  dispose(): Promise<void>;
}

interface Pending {
  resolve: (outputs: Float32Array[]) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Resolves replies that are not job results (ready, loaded). */
  waiters: ((msg: WorkerResponse) => void)[];
  /** Whether a piece of a batch is running on this worker. */
  running: boolean;
}

/** A piece of a batch waiting for a worker: the message that runs it. */
type Piece = Extract<WorkerRequest, { type: 'run' }>;

/** Where the worker script is: beside this module in src (tsx, vitest) and dist, or in dist/node from a chunk. */
function workerScript(): { url: URL; typescript: boolean } {
  const base =
    typeof import.meta !== 'undefined' && typeof import.meta.url === 'string'
      ? import.meta.url
      : typeof __filename === 'string'
        ? pathToFileURL(__filename).href
        : pathToFileURL(process.cwd() + '/').href;
  const ext = base.endsWith('.ts') ? ['ts'] : base.endsWith('.cjs') ? ['cjs', 'js'] : ['js', 'cjs'];
  const candidates = ext.flatMap((e) => [`./extract-worker.${e}`, `./node/extract-worker.${e}`, `../node/extract-worker.${e}`]);
  for (const c of candidates) {
    const url = new URL(c, base);
    if (existsSync(fileURLToPath(url))) return { url, typescript: c.endsWith('.ts') };
  }
  throw new TransferError('NOT_SUPPORTED', `The extraction worker script was not found beside ${base} (looked for ${candidates.join(', ')}).`);
}

/**
 * Running from TypeScript sources (tests, `node --import tsx`): the worker registers tsx itself, since loader
 * hooks of the parent thread do not reach worker threads in Node 20.
 */
function typescriptBootstrap(script: URL): URL {
  let api: string;
  try {
    api = pathToFileURL(createRequire(script).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  } catch {
    throw new TransferError('NOT_SUPPORTED', 'Running the extraction worker from TypeScript sources needs the tsx package.');
  }
  const code = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(script.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

function coreCount(): number {
  try {
    return Math.max(1, availableParallelism());
  } catch {
    return Math.max(1, cpus().length);
  }
}

/**
 * Creates a pool of worker threads for feature extraction. Workers start on the first job and are `unref`'d while
 * idle (they never keep the process alive). Each job gets the folded frozen backbone (a copy of its weights per
 * worker); each batch is cut into pieces of at most `chunkImages` images, and each idle worker takes the next
 * piece, so the pool runs as fast as its workers together even when one of them is slowed down.
 *
 * Falls back (the job runs in the calling thread) when the backend is not in `backends`, the job is smaller than
 * `minImages`, or the workers cannot start, e.g. `@tensorflow/tfjs-backend-wasm` (which the workers import; the
 * application installs it) is missing: a notice is logged once through `env.logger`.
 *
 * @example
 * ```ts
 * import { env, createExtractPool } from 'tfjs-transfer/node';
 * env.parallelExtractor = createExtractPool({ workers: 4 });   // default: one per core
 * env.parallelExtractor = undefined;                           // always extract in this thread
 * ```
 * @category Node
 */
export function createExtractPool(options: ExtractPoolArgs = {}): ExtractPool {
  return new WorkerPool({
    size: Math.max(1, Math.floor(options.workers ?? coreCount())),
    backends: new Set(options.backends ?? ['wasm']),
    minImages: options.minImages ?? 64,
    chunkImages: Math.max(1, Math.floor(options.chunkImages ?? 8)),
    trainingBackends: new Set(options.trainingBackends ?? ['wasm']),
  });
}

/** {@link ExtractPoolArgs}, resolved. */
interface PoolSettings {
  size: number;
  backends: Set<string>;
  minImages: number;
  chunkImages: number;
  trainingBackends: Set<string>;
}

function stopped(reason: string): TransferError {
  return new TransferError('NOT_SUPPORTED', `Feature extraction on worker threads stopped: ${reason}.`);
}

/** Concatenates each output's pieces, in order. */
function joinPieces(results: Float32Array[][]): Float32Array[] {
  if (results.length === 1) return results[0]!;
  return results[0]!.map((_, j) => {
    const out = new Float32Array(results.reduce((a, r) => a + r[j]!.length, 0));
    let offset = 0;
    for (const r of results) {
      out.set(r[j]!, offset);
      offset += r[j]!.length;
    }
    return out;
  });
}

/** The pool behind {@link createExtractPool}: worker slots, a queue of pieces, and the replies they wait for. */
class WorkerPool implements ExtractPool {
  private slots: Slot[] | undefined;
  private starting: Promise<Slot[] | undefined> | undefined;
  private startedBackend: string | undefined;
  private failed: string | undefined;
  private nextId = 1;
  private nextJob = 1;
  private active = 0;
  private readonly pending = new Map<number, Pending>();
  /** Training shards waiting for their worker's gradients. */
  private readonly steps = new Map<number, { resolve: (r: TrainStepResult | TrainEvalResult) => void; reject: (e: Error) => void }>();
  /** Pieces of batches not yet handed to a worker, oldest first. */
  private readonly queue: Piece[] = [];

  constructor(private readonly settings: PoolSettings) {}

  get size(): number {
    return this.settings.size;
  }

  get started(): boolean {
    return this.slots !== undefined;
  }

  /** Hands queued pieces to idle workers. */
  private dispatch(): void {
    const live = this.slots;
    if (!live) return;
    for (const slot of live) {
      if (slot.running) continue;
      const piece = this.queue.shift();
      if (!piece) return;
      slot.running = true;
      slot.worker.postMessage(piece, [piece.pixels.buffer as ArrayBuffer]);
    }
  }

  private setRef(on: boolean): void {
    this.slots?.forEach((s) => (on ? s.worker.ref() : s.worker.unref()));
  }

  private fail(message: string): void {
    for (const p of this.pending.values()) p.reject(new TransferError('NOT_SUPPORTED', `Feature extraction on a worker thread failed: ${message}`));
    this.pending.clear();
    for (const p of this.steps.values()) p.reject(new TransferError('NOT_SUPPORTED', `Training on a worker thread failed: ${message}`));
    this.steps.clear();
    this.queue.length = 0;
    const dead = this.slots;
    this.slots = undefined;
    this.starting = undefined;
    this.failed = message;
    dead?.forEach((s) => void s.worker.terminate());
  }

  /** A piece finished (or failed) on `slot`: free the slot, start the next piece, settle the piece's promise. */
  private settle(slot: Slot, job: number, settle: (p: Pending | undefined) => void): void {
    const p = this.pending.get(job);
    this.pending.delete(job);
    slot.running = false;
    this.dispatch();
    settle(p);
  }

  private spawn(backend: string): Slot {
    const script = workerScript();
    // The worker's stdout is shared with the process, not piped: a piped stdout keeps the event loop alive even
    // when the worker is unref'd (measured: the process hung after fit). The worker itself sends console output
    // to stderr, so the parent's stdout (e.g. the CLI's --json) stays clean.
    const worker = new Worker(script.typescript ? typescriptBootstrap(script.url) : script.url, { stdout: false, stderr: false });
    const slot: Slot = { worker, waiters: [], running: false };
    worker.on('message', (msg: WorkerResponse) => {
      if (msg.type === 'result') this.settle(slot, msg.job, (p) => p?.resolve(msg.outputs));
      else if (msg.type === 'train-result' || msg.type === 'eval-result') this.settleStep(msg.job, (p) => p.resolve(msg));
      else if (msg.type === 'error' && msg.job !== undefined && this.steps.has(msg.job)) {
        this.settleStep(msg.job, (p) => p.reject(new TransferError('NOT_SUPPORTED', `A training step on a worker thread failed: ${msg.message}`)));
      } else if (msg.type === 'error' && msg.job !== undefined) {
        this.settle(slot, msg.job, (p) => p?.reject(new TransferError('NOT_SUPPORTED', `Feature extraction on a worker thread failed: ${msg.message}`)));
      } else slot.waiters.shift()?.(msg);
    });
    worker.on('error', (e) => this.fail(e instanceof Error ? e.message : String(e)));
    worker.on('exit', (code) => {
      if (this.slots?.includes(slot)) this.fail(`a worker exited (code ${code}).`);
    });
    worker.postMessage({ type: 'init', backend } satisfies WorkerRequest);
    return slot;
  }

  /** Keeps the workers referenced (the process alive) while anything waits for them. */
  private async busy<T>(work: () => Promise<T>): Promise<T> {
    this.active++;
    this.setRef(true);
    try {
      return await work();
    } finally {
      this.active--;
      if (this.active === 0) this.setRef(false);
    }
  }

  private request(slot: Slot, msg: WorkerRequest): Promise<WorkerResponse> {
    return new Promise((resolve) => {
      slot.waiters.push(resolve);
      slot.worker.postMessage(msg);
    });
  }

  private start(backend: string): Promise<Slot[] | undefined> {
    if (this.slots && this.startedBackend === backend) return Promise.resolve(this.slots);
    if (this.starting && this.startedBackend === backend) return this.starting;
    this.startedBackend = backend;
    this.starting = this.startWorkers(backend);
    return this.starting;
  }

  /** Starts `size` workers on `backend` and waits for each to be ready; on failure, logs once and falls back. */
  private async startWorkers(backend: string): Promise<Slot[] | undefined> {
    if (this.slots) await Promise.all(this.slots.map((s) => s.worker.terminate()));
    const created: Slot[] = [];
    try {
      for (let i = 0; i < this.settings.size; i++) created.push(this.spawn(backend));
      const replies = await Promise.all(
        created.map(
          (s) =>
            new Promise<WorkerResponse>((resolve, reject) => {
              s.waiters.push(resolve);
              s.worker.once('error', reject);
              s.worker.once('exit', (code) => reject(new Error(`the worker exited during start-up (code ${code})`)));
            }),
        ),
      );
      const bad = replies.find((r) => r.type !== 'ready');
      if (bad) throw new Error(bad.type === 'error' ? bad.message : `unexpected reply ${bad.type}`);
      for (const s of created) {
        s.worker.removeAllListeners('exit');
        s.worker.on('exit', (code) => {
          if (this.slots?.includes(s)) this.fail(`a worker exited (code ${code}).`);
        });
        s.worker.unref();
      }
      this.slots = created;
      return created;
    } catch (e) {
      created.forEach((s) => void s.worker.terminate());
      this.failed = e instanceof Error ? e.message : String(e);
      log(`tfjs-transfer: feature extraction stays on the main thread: worker threads could not start (${this.failed}).`);
      this.starting = undefined;
      return undefined;
    }
  }

  async open(plan: () => PortableProgram | undefined, job: { backend: string; images: number }): Promise<ParallelRun | undefined> {
    if (!this.settings.backends.has(job.backend) || job.images < this.settings.minImages || this.failed !== undefined) return undefined;
    const serialized = plan();
    if (!serialized) return undefined;
    const workers = await this.start(job.backend);
    if (!workers) return undefined;
    const id = this.nextId++;
    const loaded = await this.busy(() => Promise.all(workers.map((s) => this.request(s, { type: 'load', id, serialized }))));
    const bad = loaded.find((r) => r.type !== 'loaded');
    if (bad) {
      workers.forEach((s) => s.worker.postMessage({ type: 'unload', id } satisfies WorkerRequest));
      throw new TransferError('NOT_SUPPORTED', `Loading the backbone into a worker failed: ${bad.type === 'error' ? bad.message : bad.type}`);
    }
    let released = false;
    return {
      run: (pixels, shape) => {
        if (released) return Promise.reject(new TransferError('INVALID_ARGUMENT', 'This extraction job was released.'));
        return this.run(id, pixels, shape);
      },
      dispose: () => {
        if (released) return;
        released = true;
        this.slots?.forEach((s) => s.worker.postMessage({ type: 'unload', id } satisfies WorkerRequest));
      },
    };
  }

  /** Cuts a batch into pieces of at most `chunkImages` images, queues them, and joins the workers' results. */
  private async run(id: number, pixels: Float32Array, shape: [number, number, number, number]): Promise<Float32Array[]> {
    const live = this.slots;
    if (!live) throw stopped(this.failed ?? 'the pool was disposed');
    const [n, h, w, c] = shape;
    const per = h * w * c;
    const size = Math.min(this.settings.chunkImages, Math.ceil(n / live.length));
    const pieces: Promise<Float32Array[]>[] = [];
    return this.busy(async () => {
      for (let start = 0; start < n; start += size) {
        const count = Math.min(size, n - start);
        const jobId = this.nextJob++;
        pieces.push(new Promise<Float32Array[]>((resolve, reject) => this.pending.set(jobId, { resolve, reject })));
        this.queue.push({ type: 'run', job: jobId, id, pixels: pixels.slice(start * per, (start + count) * per), shape: [count, h, w, c] });
      }
      this.dispatch();
      return joinPieces(await Promise.all(pieces));
    });
  }

  private settleStep(job: number, settle: (p: { resolve: (r: TrainStepResult | TrainEvalResult) => void; reject: (e: Error) => void }) => void): void {
    const p = this.steps.get(job);
    this.steps.delete(job);
    if (p) settle(p);
  }

  async openTraining(top: () => PortableTop, job: TrainingJob): Promise<ParallelTraining | undefined> {
    const spatial = job.boundaryShapes.some((s) => s.length >= 3);
    if (!this.settings.trainingBackends.has(job.backend) || !spatial || this.settings.size < 2 || job.batchSize < 2 || this.failed !== undefined) return undefined;
    const workers = await this.start(job.backend);
    if (!workers) return undefined;
    const portable = top();
    const id = this.nextId++;
    // The shared buffers hold the trainable weights only (their gradients come back); the rest of the top's
    // weights travel once, with the topology.
    const total = job.parameters;
    const buffers = { weights: new SharedArrayBuffer(total * 4), gradients: new SharedArrayBuffer(workers.length * total * 4), sync: new SharedArrayBuffer(8) };
    const loaded = await this.busy(() => Promise.all(workers.map((s) => this.request(s, { type: 'train-load', id, top: portable, ...buffers }))));
    const bad = loaded.find((r) => r.type !== 'loaded');
    if (bad) {
      workers.forEach((s) => s.worker.postMessage({ type: 'train-unload', id } satisfies WorkerRequest));
      throw new TransferError('NOT_SUPPORTED', `Loading the trainable top into a worker failed: ${bad.type === 'error' ? bad.message : bad.type}`);
    }
    return new PooledTraining(id, workers.length, buffers, {
      step: (slot, msg) => this.postStep(slot, msg),
      release: () => this.slots?.forEach((s) => s.worker.postMessage({ type: 'train-unload', id } satisfies WorkerRequest)),
      busy: (work) => this.busy(work),
      nextJobId: () => this.nextJob++,
    });
  }

  /** Sends one shard to worker `slot` and resolves with its gradients (a step) or its scores (an evaluation). */
  private postStep<M extends TrainStep | TrainEval>(slot: number, msg: M): Promise<M extends TrainStep ? TrainStepResult : TrainEvalResult> {
    type R = M extends TrainStep ? TrainStepResult : TrainEvalResult;
    const live = this.slots;
    if (!live || !live[slot]) return Promise.reject(stopped(this.failed ?? 'the pool was disposed'));
    return new Promise<R>((resolve, reject) => {
      this.steps.set(msg.job, { resolve: (r) => resolve(r as R), reject });
      live[slot]!.worker.postMessage(msg, msg.inputs.map((a) => a.buffer as ArrayBuffer));
    });
  }

  async dispose(): Promise<void> {
    const live = this.slots;
    this.slots = undefined;
    for (const p of this.pending.values()) p.reject(stopped('the pool was disposed'));
    this.pending.clear();
    for (const p of this.steps.values()) p.reject(stopped('the pool was disposed'));
    this.steps.clear();
    this.queue.length = 0;
    this.starting = undefined;
    this.startedBackend = undefined;
    this.failed = undefined;
    if (live) await Promise.all(live.map((s) => s.worker.terminate()));
  }
}
