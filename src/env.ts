/**
 * The library's environment: where pretrained models come from, how they are fetched, and (in Node) how local
 * files are read and written. One documented object, in the spirit of transformers.js' `env`.
 * @module
 */
import type { ActivationSpill, CheckpointStore, FileSystemAdapter, ParallelExtractor, ParallelTrainer } from './services';

/**
 * The environment object type; see {@link env}.
 * @category Environment
 */
export interface Environment {
  /**
   * Base URL of the catalog's pretrained models. Catalog names such as `"mobilenet_v2_1.0_224"` resolve below it.
   * Default `"https://storage.googleapis.com/teachable-machine-models/"` (Teachable Machine's Keras MobileNetV2
   * no-top layers models, every alpha 0.35-1.4 at 224). Point it at a mirror or a local server to work offline.
   */
  modelHost: string;
  /** Whether catalog names and URLs may be fetched over the network. Default `true`. */
  allowRemoteModels: boolean;
  /** The `fetch` used for remote models. Default: the platform's `globalThis.fetch`. */
  fetch: typeof globalThis.fetch | undefined;
  /**
   * Local file access, for paths and `file://` URLs. Default: none in the browser; installed by importing
   * `tfjs-transfer/node`.
   */
  fileSystem: FileSystemAdapter | undefined;
  /** Print progress and notices (`console.info`). Default `true`. Use `logger` to redirect. */
  verbose: boolean;
  /** Where notices go when `verbose` is on. Default `console.info`. */
  logger: (message: string) => void;
  /**
   * Runs frozen-backbone feature extraction (in `fit`) on several threads, each with its own tfjs backend.
   * Default: none in the browser; in Node, importing `tfjs-transfer/node` installs a pool of worker threads
   * (`createExtractPool`) that takes jobs when the current backend is `wasm` (single-threaded in Node) or `cpu`.
   * Set to `undefined` to always extract in the calling thread.
   */
  parallelExtractor: ParallelExtractor | undefined;
  /**
   * Runs the gradient steps of fine-tuning (in `fit`) on several threads, data-parallel: each thread computes the
   * gradients of its share of a batch, this thread adds them and applies the optimizer. Default: none in the
   * browser; in Node, importing `tfjs-transfer/node` installs the same worker pool as `parallelExtractor`, which
   * takes jobs when the backend is `wasm` and the boundary is a feature map (fine-tuning below the head; training
   * the head alone is too cheap per step to pay for the messages). Set to `undefined` to train in the calling thread.
   */
  parallelTrainer: ParallelTrainer | undefined;
  /**
   * Opens the checkpoint store of a folder path, for `fit(..., { checkpoint: { directory: 'path' } })`. Default:
   * none in the browser (pass a `CheckpointStore` object instead); in Node, importing `tfjs-transfer/node`
   * installs one that writes `<directory>/checkpoint.tfjst` atomically.
   */
  checkpointStore: ((directory: string) => CheckpointStore) | undefined;
  /**
   * Scratch files for cached activations larger than `fit`'s memory budget (`FitArgs.activationStorage`,
   * `activationMemoryBudget`). Default: none in the browser (activations stay in memory); in Node, importing
   * `tfjs-transfer/node` installs one that writes an already-unlinked temp file (`createActivationSpill`).
   */
  activationSpill: ActivationSpill | undefined;
}

/**
 * The library's one environment object: where models come from, how they are fetched, what is logged, and the
 * platform services (`fileSystem`, `checkpointStore`, `parallelExtractor`, `parallelTrainer`). Change its fields before loading models.
 *
 * Importing the main entry changes nothing. Importing `tfjs-transfer/node` performs one install, documented here and
 * nowhere else: it calls `installNodeServices()`, which fills whichever of `fileSystem` (the Node file loader and
 * atomic saver, `imageFolder`, sharp decoding), `checkpointStore` (atomic checkpoint files), `parallelExtractor` and
 * `parallelTrainer` (one pool of worker threads, `createExtractPool`, for both) and `activationSpill` (scratch files
 * for large activation caches, `createActivationSpill`) are still `undefined`; slots the application set first are kept.
 *
 * @category Environment
 *
 * @example
 * ```ts
 * import { env } from 'tfjs-transfer';
 * env.modelHost = 'https://my-mirror.example.com/models/';
 * env.verbose = false;
 * ```
 */
export const env: Environment = {
  modelHost: 'https://storage.googleapis.com/teachable-machine-models/',
  allowRemoteModels: true,
  fetch: typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) : undefined,
  fileSystem: undefined,
  verbose: true,
  logger: (message: string) => console.info(message),
  parallelExtractor: undefined,
  parallelTrainer: undefined,
  checkpointStore: undefined,
  activationSpill: undefined,
};

/** Logs `message` through `env.logger` when `env.verbose` is on. @internal */
export function log(message: string): void {
  if (env.verbose) env.logger(message);
}
