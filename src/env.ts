/**
 * The library's environment: where pretrained models come from, how they are fetched, and (in Node) how local
 * files are read and written. One documented object, in the spirit of transformers.js' `env`.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ImageDataset } from './types';
import type { ParallelExtractor } from './train/activations';

/**
 * File access for local paths. The browser has none; `tfjs-transfer/node` installs one when it is imported.
 * Implementations must never read outside the folder of the `model.json` they were given.
 */
export interface FileSystemAdapter {
  /** An IOHandler that loads a `model.json` (and its weight shards) from a local path or `file://` URL. */
  loader(path: string): tf.io.IOHandler;
  /**
   * An IOHandler that saves a model into `directory` (created if missing) as `model.json` + `weights.bin`,
   * atomically: a crash or a full disk leaves any previous model there intact.
   */
  saver(directory: string): tf.io.IOHandler;
  /**
   * Opens an image folder as training (and validation) datasets, for `transferLearn({ data: path })`.
   * Installed by `tfjs-transfer/node` (its `imageFolder`).
   */
  openImageFolder?: (
    dir: string,
    options: { size: readonly [number, number]; seed: number; validationSplit: number },
  ) => Promise<{
    /** Training images. */
    train: ImageDataset;
    /** Validation images (the folder's validation split, or the held-out fraction). */
    validation?: ImageDataset;
    /** Class names, from the folder names. */
    classes: readonly string[];
  }>;
}

/** The environment object type; see {@link env}. */
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
}

/**
 * The library's one environment object. Change its fields before loading models.
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
};

/** Logs `message` through `env.logger` when `env.verbose` is on. @internal */
export function log(message: string): void {
  if (env.verbose) env.logger(message);
}
