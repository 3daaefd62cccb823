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
import type { ParallelExtractor, ParallelRun, PortableProgram } from '../services';
import type { WorkerRequest, WorkerResponse } from './extract-worker';

/** Options of {@link createExtractPool}. */
export interface ExtractPoolArgs {
  /** Worker threads. Default: the number of cores (`os.availableParallelism()`), at least 1. */
  workers?: number;
  /**
   * Backends for which the pool takes jobs (the workers run the caller's backend). Default `['wasm']`: in Node,
   * wasm runs on one thread, so workers bring the other cores in. `cpu` works too but is ~30x slower than wasm
   * anyway; `tensorflow` (tfjs-node) already uses every core and is never handed to workers.
   */
  backends?: readonly string[];
  /** Smallest job (images x views) worth starting workers for; smaller jobs run in the calling thread. Default 64. */
  minImages?: number;
  /**
   * Largest piece of a batch a worker runs at once. Batches are cut into pieces of at most this many images and
   * each idle worker takes the next piece, so a worker slowed down by anything else on the machine does not hold
   * the others back. Default 8 (throughput of MobileNetV2 on wasm is the same from 4 to 32 images per call).
   */
  chunkImages?: number;
}

/** A pool of extraction workers; see {@link createExtractPool}. */
export interface ExtractPool extends ParallelExtractor {
  /** Number of worker threads. */
  readonly size: number;
  /** Whether the workers are up (they start on the first job). */
  readonly started: boolean;
  /** Terminates the workers; a later job starts new ones. */
  close(): Promise<void>;
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
 * `minImages`, or the workers cannot start, e.g. `@tensorflow/tfjs-backend-wasm` (an optional peer dependency the
 * workers import) is missing: a notice is logged once through `env.logger`.
 *
 * @example
 * ```ts
 * import { env, createExtractPool } from 'tfjs-transfer/node';
 * env.parallelExtractor = createExtractPool({ workers: 4 });   // default: one per core
 * env.parallelExtractor = undefined;                           // always extract in this thread
 * ```
 */
export function createExtractPool(options: ExtractPoolArgs = {}): ExtractPool {
  const size = Math.max(1, Math.floor(options.workers ?? coreCount()));
  const backends = new Set(options.backends ?? ['wasm']);
  const minImages = options.minImages ?? 64;
  const chunkImages = Math.max(1, Math.floor(options.chunkImages ?? 8));
  let slots: Slot[] | undefined;
  let starting: Promise<Slot[] | undefined> | undefined;
  let startedBackend: string | undefined;
  let failed: string | undefined;
  let nextId = 1;
  let nextJob = 1;
  let active = 0;
  const pending = new Map<number, Pending>();
  /** Pieces of batches not yet handed to a worker, oldest first. */
  const queue: Piece[] = [];

  /** Hands queued pieces to idle workers. */
  const dispatch = (): void => {
    const live = slots;
    if (!live) return;
    for (const slot of live) {
      if (slot.running) continue;
      const piece = queue.shift();
      if (!piece) return;
      slot.running = true;
      slot.worker.postMessage(piece, [piece.pixels.buffer as ArrayBuffer]);
    }
  };

  const setRef = (on: boolean): void => slots?.forEach((s) => (on ? s.worker.ref() : s.worker.unref()));

  const fail = (message: string): void => {
    for (const p of pending.values()) p.reject(new TransferError('NOT_SUPPORTED', `Feature extraction on a worker thread failed: ${message}`));
    pending.clear();
    queue.length = 0;
    const dead = slots;
    slots = undefined;
    starting = undefined;
    failed = message;
    dead?.forEach((s) => void s.worker.terminate());
  };

  const spawn = (backend: string): Slot => {
    const script = workerScript();
    // The worker's stdout is shared with the process, not piped: a piped stdout keeps the event loop alive even
    // when the worker is unref'd (measured: the process hung after fit). The worker itself sends console output
    // to stderr, so the parent's stdout (e.g. the CLI's --json) stays clean.
    const worker = new Worker(script.typescript ? typescriptBootstrap(script.url) : script.url, { stdout: false, stderr: false });
    const slot: Slot = { worker, waiters: [], running: false };
    worker.on('message', (msg: WorkerResponse) => {
      if (msg.type === 'result') {
        const p = pending.get(msg.job);
        pending.delete(msg.job);
        slot.running = false;
        dispatch();
        p?.resolve(msg.outputs);
      } else if (msg.type === 'error' && msg.job !== undefined) {
        const p = pending.get(msg.job);
        pending.delete(msg.job);
        slot.running = false;
        dispatch();
        p?.reject(new TransferError('NOT_SUPPORTED', `Feature extraction on a worker thread failed: ${msg.message}`));
      } else {
        slot.waiters.shift()?.(msg);
      }
    });
    worker.on('error', (e) => fail(e instanceof Error ? e.message : String(e)));
    worker.on('exit', (code) => {
      if (slots?.includes(slot)) fail(`a worker exited (code ${code}).`);
    });
    const init: WorkerRequest = { type: 'init', backend };
    worker.postMessage(init);
    return slot;
  };

  /** Keeps the workers referenced (the process alive) while anything waits for them. */
  const busy = async <T>(work: () => Promise<T>): Promise<T> => {
    active++;
    setRef(true);
    try {
      return await work();
    } finally {
      active--;
      if (active === 0) setRef(false);
    }
  };

  const request = (slot: Slot, msg: WorkerRequest): Promise<WorkerResponse> =>
    new Promise((resolve) => {
      slot.waiters.push(resolve);
      slot.worker.postMessage(msg);
    });

  const start = (backend: string): Promise<Slot[] | undefined> => {
    if (slots && startedBackend === backend) return Promise.resolve(slots);
    if (starting && startedBackend === backend) return starting;
    startedBackend = backend;
    starting = (async () => {
      if (slots) await Promise.all(slots.map((s) => s.worker.terminate()));
      const created: Slot[] = [];
      try {
        for (let i = 0; i < size; i++) created.push(spawn(backend));
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
        created.forEach((s) => {
          s.worker.removeAllListeners('exit');
          s.worker.on('exit', (code) => {
            if (slots?.includes(s)) fail(`a worker exited (code ${code}).`);
          });
          s.worker.unref();
        });
        slots = created;
        return created;
      } catch (e) {
        created.forEach((s) => void s.worker.terminate());
        failed = e instanceof Error ? e.message : String(e);
        log(`tfjs-transfer: feature extraction stays on the main thread: worker threads could not start (${failed}).`);
        starting = undefined;
        return undefined;
      }
    })();
    return starting;
  };

  const pool: ExtractPool = {
    get size() {
      return size;
    },
    get started() {
      return slots !== undefined;
    },
    async open(plan, job): Promise<ParallelRun | undefined> {
      if (!backends.has(job.backend) || job.images < minImages || failed !== undefined) return undefined;
      const serialized: PortableProgram | undefined = plan();
      if (!serialized) return undefined;
      const workers = await start(job.backend);
      if (!workers) return undefined;
      const id = nextId++;
      const loaded = await busy(() => Promise.all(workers.map((s) => request(s, { type: 'load', id, serialized }))));
      const bad = loaded.find((r) => r.type !== 'loaded');
      if (bad) {
        workers.forEach((s) => s.worker.postMessage({ type: 'unload', id } satisfies WorkerRequest));
        throw new TransferError('NOT_SUPPORTED', `Loading the backbone into a worker failed: ${bad.type === 'error' ? bad.message : bad.type}`);
      }
      let released = false;
      return {
        async run(pixels, shape) {
          if (released) throw new TransferError('INVALID_ARGUMENT', 'This extraction job was released.');
          const live = slots;
          if (!live) throw new TransferError('NOT_SUPPORTED', `Feature extraction on worker threads stopped: ${failed ?? 'the pool was closed'}.`);
          const [n, h, w, c] = shape;
          const per = h * w * c;
          const size = Math.min(chunkImages, Math.ceil(n / live.length));
          const pieces: Promise<Float32Array[]>[] = [];
          return busy(async () => {
            for (let start = 0; start < n; start += size) {
              const count = Math.min(size, n - start);
              const part = pixels.slice(start * per, (start + count) * per);
              const jobId = nextJob++;
              pieces.push(new Promise<Float32Array[]>((resolve, reject) => pending.set(jobId, { resolve, reject })));
              queue.push({ type: 'run', job: jobId, id, pixels: part, shape: [count, h, w, c] });
            }
            dispatch();
            const results = await Promise.all(pieces);
            if (results.length === 1) return results[0]!;
            return results[0]!.map((_, j) => {
              const total = results.reduce((a, r) => a + r[j]!.length, 0);
              const out = new Float32Array(total);
              let offset = 0;
              for (const r of results) {
                out.set(r[j]!, offset);
                offset += r[j]!.length;
              }
              return out;
            });
          });
        },
        dispose() {
          if (released) return;
          released = true;
          slots?.forEach((s) => s.worker.postMessage({ type: 'unload', id } satisfies WorkerRequest));
        },
      };
    },
    async close() {
      const live = slots;
      slots = undefined;
      for (const p of pending.values()) p.reject(new TransferError('NOT_SUPPORTED', 'Feature extraction on worker threads stopped: the pool was closed.'));
      pending.clear();
      queue.length = 0;
      starting = undefined;
      startedBackend = undefined;
      failed = undefined;
      if (live) await Promise.all(live.map((s) => s.worker.terminate()));
    },
  };
  return pool;
}

/**
 * Old name of {@link ExtractPoolArgs}, kept only so `src/node/index.ts` compiles until its export line names `ExtractPoolArgs`.
 * @deprecated Use {@link ExtractPoolArgs}.
 * @internal
 */
export type ExtractPoolOptions = ExtractPoolArgs;
