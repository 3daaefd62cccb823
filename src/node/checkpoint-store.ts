/**
 * The Node checkpoint store of `fit`: one file, `checkpoint.tfjst`, in a folder, replaced atomically (temporary file,
 * fsync, rename) by {@link atomicWriteFile}, so a crash, a SIGKILL or a full disk while writing leaves the previous
 * checkpoint intact. `tfjs-transfer/node` installs it as `env.checkpointStore`, which opens
 * `fit(..., { checkpoint: { directory: 'path' } })`.
 * @module
 */
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import { TransferError } from '../errors.js';
import type { CheckpointStore } from '../services';
import { CHECKPOINT_FILE_NAME } from '../train/checkpoint.js';
import { atomicWriteFile, removeStaleTemporaries, type FaultPlan } from './file-io.js';

/**
 * Options of {@link fileCheckpointStore}.
 * @category Node
 */
export interface FileCheckpointStoreArgs {
  /**
   * File name inside the folder.
   * @defaultValue `checkpoint.tfjst`
   */
  fileName?: string;
  /** Fault injection for tests (see `atomicWriteFile`). @internal */
  __faults?: FaultPlan;
}

/**
 * A {@link CheckpointStore} writing `<directory>/checkpoint.tfjst` atomically. Temporary files left behind by a
 * process killed mid-write are removed when the checkpoint is next read.
 *
 * @param directory The folder (created when the first checkpoint is written).
 * @param options File name (default `checkpoint.tfjst`).
 * @returns The store; pass it as `checkpoint.directory`, or pass the folder path itself (same store).
 *
 * @example
 * ```ts
 * import { fit, fileCheckpointStore } from 'tfjs-transfer/node';
 * await fit(model, data, { epochs: 50, seed: 1, checkpoint: { directory: fileCheckpointStore('runs/cats') } });
 * // same as: checkpoint: { directory: 'runs/cats' }
 * ```
 * @category Node
 */
export function fileCheckpointStore(directory: string, options: FileCheckpointStoreArgs = {}): CheckpointStore {
  if (typeof directory !== 'string' || directory.length === 0) {
    throw new TransferError('INVALID_ARGUMENT', `fileCheckpointStore: directory must be a folder path, got ${JSON.stringify(directory)}.`);
  }
  const fileName = options.fileName ?? CHECKPOINT_FILE_NAME;
  if (typeof fileName !== 'string' || fileName.length === 0 || /[\\/]/.test(fileName) || fileName === '.' || fileName === '..') {
    throw new TransferError('INVALID_ARGUMENT', `fileCheckpointStore: fileName must be a plain file name, got ${JSON.stringify(fileName)}.`);
  }
  const dir = nodePath.resolve(directory);
  const file = nodePath.join(dir, fileName);
  return {
    location: file,
    async read() {
      await removeStaleTemporaries(dir, fileName);
      let stats;
      try {
        stats = await fsp.stat(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new TransferError('MODEL_LOAD_FAILED', `Could not read the checkpoint ${file}: ${(error as Error).message}.`, { cause: error });
      }
      if (!stats.isFile()) throw new TransferError('MODEL_LOAD_FAILED', `The checkpoint path ${file} exists and is not a file; remove it or choose another folder.`);
      const buffer = await fsp.readFile(file);
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    },
    async write(bytes: Uint8Array) {
      await atomicWriteFile(file, bytes, { __faults: options.__faults });
    },
    async clear() {
      await fsp.rm(file, { force: true });
    },
  };
}
