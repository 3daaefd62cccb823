/**
 * tfjs-transfer for Node: everything of the main entry, plus file access. Importing this module installs the
 * library's own file loader into `env.fileSystem` (local paths and `file://` URLs for models, image folders for
 * `transferLearn({ data: path })`); it never requires `@tensorflow/tfjs-node`.
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
import { env } from '../env';
import { nodeFileSystem } from './file-io';
import { createExtractPool } from './extract-pool';
import { imageFolder } from './image-folder';

export * from '../index';
export { imageFolder, type ImageFolder, type ImageFolderOptions } from './image-folder';
export { nodeFileSystem, createNodeFileSystem, atomicWriteFile, type NodeFileSystemOptions, type AtomicWriteOptions } from './file-io';
export { decodeImage, decodeBmp, readImageHeader, sniffFormat, SUPPORTED_FORMATS, DEFAULT_MAX_PIXELS, type DecodeOptions, type DecodedImage, type ImageFormat, type ImageHeader } from './decode';
export { contentHash, hashFile, CONTENT_HASH_LENGTH } from './hash';
export { fileCheckpointStore, type FileCheckpointStoreOptions } from './checkpoint-store';
export { createExtractPool, type ExtractPool, type ExtractPoolOptions } from './extract-pool';
export { createDiskCache, DISK_CACHE_VERSION, type DiskCache } from './disk-cache';

/**
 * Installs the Node file loader into `env.fileSystem` (done once on import; call again after replacing it).
 *
 * @example
 * ```ts
 * import { env, installNodeFileSystem } from 'tfjs-transfer/node';
 * env.fileSystem = undefined;   // e.g. a test removed it
 * installNodeFileSystem();      // local paths work again
 * ```
 */
export function installNodeFileSystem(): void {
  env.fileSystem = {
    ...nodeFileSystem,
    openImageFolder: async (dir, options) => {
      const folder = await imageFolder(dir, {
        size: [options.size[0], options.size[1]],
        seed: options.seed,
        validationSplit: options.validationSplit,
      });
      return folder;
    },
  };
}

if (!env.fileSystem) installNodeFileSystem();
if (!env.parallelExtractor) env.parallelExtractor = createExtractPool();
