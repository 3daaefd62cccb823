/**
 * tfjs-transfer for Node: everything of the main entry, plus file access. Importing this module runs
 * {@link installNodeServices} once (its only side effect: it fills the empty platform slots of `env`); it never
 * requires `@tensorflow/tfjs-node`.
 *
 * @example
 * ```ts
 * import '@tensorflow/tfjs-backend-wasm';            // or tfjs-node, or cpu: the application's choice
 * import * as tf from '@tensorflow/tfjs-core';
 * import { transferLearn, save } from 'tfjs-transfer/node';
 * await tf.setBackend('wasm');
 * const { model } = await transferLearn({ data: './photos' });
 * await save(model, './my-model');
 * ```
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { env } from '../env';
import { TransferError } from '../errors';
import { decodeImage } from './decode';
import { nodeFileSystem } from './file-io';
import { createExtractPool } from './extract-pool';
import { imageFolder } from './image-folder';
import { fileCheckpointStore } from './checkpoint-store';
import { createActivationSpill } from './spill';

export * from '../index';
export { imageFolder, type ImageFolder, type ImageFolderArgs } from './image-folder';
export { decodeImage, type DecodeArgs, type DecodedImage, type ImageFormat } from './decode';
export { createExtractPool, type ExtractPool, type ExtractPoolArgs } from './extract-pool';
export { createDiskCache, type DiskCache } from './disk-cache';
export { createActivationSpill, type ActivationSpillArgs } from './spill';
export { heatmapPng, type HeatmapPngArgs, type HeatmapPngImage } from './heatmap-png';
export { buildReport, writeReport, REPORT_DEFAULTS, type BuildReportArgs, type WriteReportArgs, type WriteReportResult } from './report';

/**
 * Options of {@link installNodeServices}.
 * @category Node
 */
export interface InstallNodeServicesArgs {
  /**
   * Overwrite slots of `env` the application already set, instead of filling only the empty ones.
   * @defaultValue `false`
   */
  replace?: boolean;
}

/**
 * Installs the Node platform services into {@link env}, filling only the slots that are still `undefined`:
 * `env.fileSystem` (local paths and `file://` URLs for models, atomic saves, image folders for
 * `transferLearn({ data: path })`, image files for `predict`), `env.checkpointStore` (atomic checkpoint files, for
 * `checkpoint: { directory: 'path' }`), `env.parallelExtractor` and `env.parallelTrainer` (one worker-thread pool,
 * `createExtractPool()`, for both) and `env.activationSpill` (scratch files for activation caches over `fit`'s
 * memory budget, `createActivationSpill()`).
 *
 * Importing `tfjs-transfer/node` calls it once; that is the entry's only side effect. Call it again after clearing a
 * slot, or pass `{ replace: true }` to overwrite slots the application set.
 *
 * @category Node
 * @example
 * ```ts
 * import { env, installNodeServices } from 'tfjs-transfer/node';
 * env.fileSystem = undefined;   // e.g. a test removed it
 * installNodeServices();        // local paths work again
 * ```
 */
export function installNodeServices(args: InstallNodeServicesArgs = {}): void {
  const replace = args?.replace ?? false;
  if (replace || !env.fileSystem) {
    env.fileSystem = {
      ...nodeFileSystem,
      openImageFolder: async (dir, settings) =>
        imageFolder(dir, { size: [settings.size[0], settings.size[1]], seed: settings.seed, validationSplit: settings.validationSplit, fit: settings.fit }),
      decodeImageFile,
    };
  }
  if (replace || !env.checkpointStore) env.checkpointStore = (directory) => fileCheckpointStore(directory);
  if (replace || !env.parallelExtractor || !env.parallelTrainer) {
    // One pool of worker threads serves both: extraction and training never overlap within a fit.
    const pool = createExtractPool();
    if (replace || !env.parallelExtractor) env.parallelExtractor = pool;
    if (replace || !env.parallelTrainer) env.parallelTrainer = pool;
  }
  if (replace || !env.activationSpill) env.activationSpill = createActivationSpill();
}

/** One local image file as raw RGB pixels `[h, w, 3]`, float32 0..255 (sharp), for `predict(model, path)`. */
async function decodeImageFile(path: string): Promise<tf.Tensor3D> {
  const file = /^file:\/\//i.test(path) ? fileURLToPath(path) : path;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new TransferError('INVALID_ARGUMENT', `cannot read the image file ${file}: ${error instanceof Error ? error.message : String(error)}.`, { cause: error });
  }
  const image = await decodeImage(bytes);
  return tf.tensor3d(Float32Array.from(image.data), [image.height, image.width, 3], 'float32');
}

installNodeServices();
