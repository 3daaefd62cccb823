/**
 * The library's own model file I/O for Node: a loader that reads a TensorFlow.js `model.json` and its shards strictly
 * from the model's folder, validating everything before allocating, and a saver that writes `model.json` +
 * `weights.bin` atomically. Needs Node built-ins only (no `@tensorflow/tfjs-node`).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { FileSystemAdapter } from '../services';
import { log } from '../env.js';
import { TransferError } from '../errors.js';
import { checkWeightData, validateModelArtifacts, type ValidateModelArgs as ValidateModelOptions } from '../artifacts/validate.js';

/**
 * The file name of the weights the saver writes (one shard).
 * @category Node
 */
export const WEIGHTS_FILE_NAME = 'weights.bin';
/**
 * The file name of the model the saver writes and the loader looks for inside a folder.
 * @category Node
 */
export const MODEL_FILE_NAME = 'model.json';
/** Largest `model.json` the loader reads: 512 MiB (graph models with large topologies stay far below). */
const MAX_MODEL_JSON_BYTES = 512 * 1024 ** 2;
/** Bytes per write call. */
const WRITE_CHUNK = 8 * 1024 ** 2;

/**
 * The steps of a save, for fault injection in tests. @internal
 */
export type SaveStep =
  | 'mkdir'
  | 'write-model-json'
  | 'write-weights'
  | 'write-file'
  | 'fsync'
  | 'carry-over'
  | 'rename-backup'
  | 'rename-into-place'
  | 'remove-backup';

/**
 * Faults to inject into saves, so tests can check atomicity without mocking `fs`. @internal
 */
export interface FaultPlan {
  /** Fail once this many bytes have been written by one save (the bytes before it are written). */
  failAfterBytes?: number;
  /** Fail when this step starts. */
  failAtStep?: SaveStep;
  /**
   * The `code` of the simulated system error.
   * @defaultValue `"ENOSPC"`
   */
  code?: string;
}

/**
 * Options of {@link createNodeFileSystem}.
 * @category Node
 */
export interface NodeFileSystemArgs extends Pick<ValidateModelOptions, 'maxTotalBytes'> {
  /** Fault injection for tests. @internal */
  __faults?: FaultPlan;
}

/**
 * Options of {@link atomicWriteFile}.
 * @category Node
 */
export interface AtomicWriteArgs {
  /**
   * File mode of a newly created file.
   * @defaultValue `0o644`
   */
  mode?: number;
  /** Fault injection for tests. @internal */
  __faults?: FaultPlan;
}

function systemError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const messages: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EIO: 'i/o error',
    EACCES: 'permission denied',
  };
  const error: NodeJS.ErrnoException = new Error(`${code}: ${messages[code] ?? 'simulated failure'}, ${syscall} '${path}'`);
  error.code = code;
  error.syscall = syscall;
  error.path = path;
  return error;
}

/** Counts written bytes and raises the planned faults. */
class Faults {
  private written = 0;
  constructor(private readonly plan: FaultPlan | undefined) {}

  step(step: SaveStep, path: string): void {
    if (this.plan?.failAtStep === step) throw systemError(this.plan.code ?? 'ENOSPC', step, path);
  }

  /** How many of `length` bytes may be written before the planned failure. */
  allowance(length: number): number {
    const limit = this.plan?.failAfterBytes;
    return limit === undefined ? length : Math.max(0, Math.min(length, limit - this.written));
  }

  count(bytes: number, path: string): void {
    this.written += bytes;
    const limit = this.plan?.failAfterBytes;
    if (limit !== undefined && this.written >= limit) throw systemError(this.plan?.code ?? 'ENOSPC', 'write', path);
  }
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string'
    ? (error as { code: string }).code
    : undefined;
}

/** A short human reason for a file-system error. */
function reasonOf(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'ENOSPC':
      return `the disk is full (${message}); free some space and save again`;
    case 'EDQUOT':
      return `the disk quota is exhausted (${message})`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${message}); check the folder's permissions`;
    case 'EROFS':
      return `the file system is read-only (${message})`;
    default:
      return message;
  }
}

/** Whether `child` is `parent` or lies below it (both absolute, normalised). */
function isInside(parent: string, child: string): boolean {
  const rel = nodePath.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !nodePath.isAbsolute(rel));
}

/** Writes all of `data` to `handle`, honouring the fault plan. */
async function writeAll(handle: FileHandle, data: Uint8Array, faults: Faults, path: string): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) {
    const wanted = Math.min(WRITE_CHUNK, data.byteLength - offset);
    const allowed = faults.allowance(wanted);
    if (allowed > 0) {
      const { bytesWritten } = await handle.write(data, offset, allowed);
      offset += bytesWritten;
      faults.count(bytesWritten, path);
    } else {
      faults.count(0, path);
    }
  }
}

/** Creates `path` exclusively, writes the chunks, fsyncs and closes it. */
async function writeFileDurably(
  path: string,
  chunks: readonly Uint8Array[],
  faults: Faults,
  mode = 0o644,
): Promise<void> {
  const handle = await fsp.open(path, 'wx', mode);
  try {
    for (const chunk of chunks) await writeAll(handle, chunk, faults, path);
    faults.step('fsync', path);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs a directory so renames in it are durable; a no-op where directories cannot be opened (Windows). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Not supported on this platform or file system: the rename is still atomic, only its durability is weaker.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function toBytes(data: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof data === 'string') return new TextEncoder().encode(data);
  if (data instanceof Uint8Array) return data;
  return new Uint8Array(data);
}

function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Writes a file atomically: the data goes to a temporary file beside `path` (same folder, so same file system),
 * which is fsynced and then renamed over `path`. Readers see either the old file or the complete new one, never a
 * partial write; a crash or a full disk leaves the previous file intact. The parent folder is created if missing.
 *
 * @param path The file to write.
 * @param data Its content: a string (written as UTF-8), bytes or an ArrayBuffer.
 * @param options File mode (default `0o644`).
 * @throws TransferError `SAVE_FAILED` naming the file and the reason; the previous file is then unchanged.
 *
 * @example
 * ```ts
 * import { atomicWriteFile } from 'tfjs-transfer/node';
 * await atomicWriteFile('checkpoints/state.json', JSON.stringify({ epoch: 3 }));
 * ```
 * @category Node
 */
export async function atomicWriteFile(
  path: string,
  data: string | Uint8Array | ArrayBuffer,
  options: AtomicWriteArgs = {},
): Promise<void> {
  const target = nodePath.resolve(path);
  const dir = nodePath.dirname(target);
  const temp = nodePath.join(dir, `.${nodePath.basename(target)}.${uniqueSuffix()}.tmp`);
  const faults = new Faults(options.__faults);
  let existed = false;
  try {
    existed = await fsp
      .stat(target)
      .then(() => true)
      .catch(() => false);
    faults.step('mkdir', dir);
    await fsp.mkdir(dir, { recursive: true });
    faults.step('write-file', temp);
    await writeFileDurably(temp, [toBytes(data)], faults, options.mode);
    faults.step('rename-into-place', target);
    await fsp.rename(temp, target);
  } catch (error) {
    await fsp.rm(temp, { force: true }).catch(() => undefined);
    throw new TransferError(
      'SAVE_FAILED',
      `Could not write ${target}: ${reasonOf(error)}. ` +
        (existed ? `The previous ${nodePath.basename(target)} is intact.` : 'Nothing was written.'),
      { cause: error },
    );
  }
  await syncDirectory(dir);
}

// ------------------------------------------------------------------------------------------------------------------
// Loading

function loadFailed(message: string, cause?: unknown): TransferError {
  return new TransferError('MODEL_LOAD_FAILED', message, cause === undefined ? undefined : { cause });
}

/** Resolves a path or `file://` URL to an absolute `model.json` path. */
async function locateModelJson(pathOrFileUrl: string): Promise<string> {
  let path = pathOrFileUrl;
  if (/^file:/i.test(path)) {
    try {
      path = fileURLToPath(path);
    } catch (error) {
      throw new TransferError(
        'INVALID_ARGUMENT',
        `${pathOrFileUrl} is not a usable file:// URL (${error instanceof Error ? error.message : String(error)}). ` +
          'Use file:///absolute/path/model.json or a plain path.',
        { cause: error },
      );
    }
  } else if (/^[a-zA-Z][a-zA-Z0-9+.-]+:\/\//.test(path)) {
    throw new TransferError(
      'INVALID_ARGUMENT',
      `${pathOrFileUrl} is a URL, not a local path. The file loader reads local files only; load remote models by URL ` +
        'through the library (env.allowRemoteModels) instead.',
    );
  }
  const absolute = nodePath.resolve(path);
  let stats;
  try {
    stats = await fsp.stat(absolute);
  } catch (error) {
    throw loadFailed(
      `No model at ${absolute}: ${errorCode(error) === 'ENOENT' ? 'the path does not exist' : reasonOf(error)}. ` +
        `Expected a ${MODEL_FILE_NAME} file, or a folder that contains one (with its weight shards beside it).`,
      error,
    );
  }
  if (!stats.isDirectory()) return absolute;
  const inside = nodePath.join(absolute, MODEL_FILE_NAME);
  try {
    await fsp.access(inside);
  } catch (error) {
    throw loadFailed(
      `The folder ${absolute} has no ${MODEL_FILE_NAME}. Expected a TensorFlow.js model saved there ` +
        `(${MODEL_FILE_NAME} + weight shards), or pass the path of the model's .json file itself.`,
      error,
    );
  }
  return inside;
}

interface Shard {
  /** The path as listed in the manifest. */
  listed: string;
  /** Its real absolute path. */
  real: string;
  size: number;
}

/** Resolves a manifest path inside `root` (the real folder of model.json), refusing anything that escapes it. */
async function resolveShard(root: string, listed: string, modelJson: string): Promise<Shard> {
  const candidate = nodePath.resolve(root, listed);
  if (!isInside(root, candidate)) {
    throw new TransferError(
      'MODEL_INVALID',
      `Invalid model at ${modelJson}: shard path ${JSON.stringify(listed)} points outside the model's folder ${root}. Refusing to read it.`,
    );
  }
  let real: string;
  try {
    real = await fsp.realpath(candidate);
  } catch (error) {
    throw loadFailed(
      `Missing weight shard for ${modelJson}: ${candidate} ` +
        `(${errorCode(error) === 'ENOENT' ? 'no such file' : reasonOf(error)}). ` +
        `The manifest lists ${JSON.stringify(listed)}; copy every file of the model, not only ${nodePath.basename(modelJson)}.`,
      error,
    );
  }
  if (!isInside(root, real)) {
    throw new TransferError(
      'MODEL_INVALID',
      `Invalid model at ${modelJson}: shard ${JSON.stringify(listed)} is a link to ${real}, outside the model's folder ${root}. ` +
        'Refusing to read it; copy the shard into the folder instead of linking it.',
    );
  }
  const stats = await fsp.stat(real);
  if (!stats.isFile()) {
    throw loadFailed(`Weight shard ${candidate} of ${modelJson} is not a regular file. Expected the shard's binary data.`);
  }
  return { listed, real, size: stats.size };
}

/** Reads exactly `shard.size` bytes of a shard into `target` at `offset`. */
async function readShard(shard: Shard, target: Uint8Array, offset: number, modelJson: string): Promise<void> {
  const handle = await fsp.open(shard.real, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
  try {
    const stats = await handle.stat();
    if (stats.size !== shard.size) {
      throw loadFailed(`Weight shard ${shard.real} of ${modelJson} changed while it was being read (size ${shard.size} -> ${stats.size}). Try again.`);
    }
    let done = 0;
    while (done < shard.size) {
      const { bytesRead } = await handle.read(target, offset + done, shard.size - done, done);
      if (bytesRead === 0) {
        checkWeightData(shard.size, done, shard.real);
      }
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

async function loadModelArtifacts(pathOrFileUrl: string, options: NodeFileSystemArgs): Promise<tf.io.ModelArtifacts> {
  const modelJson = await locateModelJson(pathOrFileUrl);
  let text: string;
  try {
    const stats = await fsp.stat(modelJson);
    if (stats.size > MAX_MODEL_JSON_BYTES) {
      throw new TransferError(
        'MODEL_INVALID',
        `Invalid model at ${modelJson}: the file is ${stats.size} bytes, more than the ${MAX_MODEL_JSON_BYTES} a model.json may have. ` +
          'Is it really a TensorFlow.js model.json?',
      );
    }
    text = await fsp.readFile(modelJson, 'utf8');
  } catch (error) {
    if (error instanceof TransferError) throw error;
    throw loadFailed(`Could not read ${modelJson}: ${reasonOf(error)}.`, error);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TransferError(
      'MODEL_INVALID',
      `Invalid model at ${modelJson}: not valid JSON (${error instanceof Error ? error.message : String(error)}). ` +
        'The file may be truncated or not a model.json; copy or download it again.',
      { cause: error },
    );
  }
  const validated = validateModelArtifacts(json, modelJson, { maxTotalBytes: options.maxTotalBytes });

  // Resolve and size every shard before reading any of them.
  const root = await fsp.realpath(nodePath.dirname(modelJson));
  const groups: Shard[][] = [];
  for (const group of validated.groups) {
    const shards: Shard[] = [];
    for (const listed of group.paths) shards.push(await resolveShard(root, listed, modelJson));
    const actual = shards.reduce((sum, s) => sum + s.size, 0);
    const names = shards.map((s) => s.real).join(', ') || '(no shard)';
    checkWeightData(group.bytes, actual, names, group.exact);
    groups.push(shards);
  }

  const total = groups.flat().reduce((sum, s) => sum + s.size, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const shard of groups.flat()) {
    try {
      await readShard(shard, weightData, offset, modelJson);
    } catch (error) {
      if (error instanceof TransferError) throw error;
      throw loadFailed(`Could not read weight shard ${shard.real} of ${modelJson}: ${reasonOf(error)}.`, error);
    }
    offset += shard.size;
  }

  const modelJSON = json as tf.io.ModelJSON;
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: modelJSON.modelTopology,
    format: modelJSON.format ?? validated.format,
    generatedBy: modelJSON.generatedBy,
    convertedBy: modelJSON.convertedBy,
    weightSpecs: validated.weightSpecs,
    weightData: weightData.buffer,
  };
  if (modelJSON.trainingConfig != null) artifacts.trainingConfig = modelJSON.trainingConfig;
  if (modelJSON.signature != null) artifacts.signature = modelJSON.signature;
  if (modelJSON.userDefinedMetadata != null) artifacts.userDefinedMetadata = modelJSON.userDefinedMetadata;
  if (modelJSON.modelInitializer != null) artifacts.modelInitializer = modelJSON.modelInitializer;
  if (modelJSON.initializerSignature != null) artifacts.initializerSignature = modelJSON.initializerSignature;
  return artifacts;
}

// ------------------------------------------------------------------------------------------------------------------
// Saving

/** The files of the model previously saved in `dir` (model.json and the shards its manifest lists). */
async function ownFilesOf(dir: string): Promise<Set<string>> {
  const own = new Set([MODEL_FILE_NAME, WEIGHTS_FILE_NAME]);
  try {
    const json: unknown = JSON.parse(await fsp.readFile(nodePath.join(dir, MODEL_FILE_NAME), 'utf8'));
    const manifest = (json as { weightsManifest?: unknown }).weightsManifest;
    if (Array.isArray(manifest)) {
      for (const group of manifest) {
        const paths = (group as { paths?: unknown })?.paths;
        if (Array.isArray(paths)) for (const p of paths) if (typeof p === 'string' && !/[\\/]/.test(p)) own.add(p);
      }
    }
  } catch {
    // No readable previous model.json: only the standard names are the model's own.
  }
  return own;
}

/**
 * Puts the other files of the existing folder (e.g. `metadata.json` written beside the model) into the new one:
 * hard links where possible, copies otherwise.
 */
async function carryOver(from: string, to: string, faults: Faults): Promise<void> {
  const own = await ownFilesOf(from);
  for (const entry of await fsp.readdir(from, { withFileTypes: true })) {
    if (own.has(entry.name)) continue;
    const source = nodePath.join(from, entry.name);
    const dest = nodePath.join(to, entry.name);
    faults.step('carry-over', source);
    if (entry.isFile()) {
      await fsp.link(source, dest).catch(() => fsp.copyFile(source, dest, fsConstants.COPYFILE_EXCL));
    } else {
      await fsp.cp(source, dest, { recursive: true, errorOnExist: true, force: false, verbatimSymlinks: true });
    }
  }
}

function weightBuffers(weightData: tf.io.WeightData | undefined): ArrayBuffer[] {
  if (weightData == null) return [];
  return Array.isArray(weightData) ? weightData : [weightData];
}

/** The model.json of `artifacts`, its weights in one `weights.bin`. */
function modelJsonOf(artifacts: tf.io.ModelArtifacts & { modelTopology: object }): tf.io.ModelJSON {
  const modelJSON: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [WEIGHTS_FILE_NAME], weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.trainingConfig != null) modelJSON.trainingConfig = artifacts.trainingConfig;
  if (artifacts.signature != null) modelJSON.signature = artifacts.signature;
  if (artifacts.userDefinedMetadata != null) modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
  if (artifacts.modelInitializer != null) modelJSON.modelInitializer = artifacts.modelInitializer;
  if (artifacts.initializerSignature != null) modelJSON.initializerSignature = artifacts.initializerSignature;
  return modelJSON;
}

/** One save in progress: where it goes, what was there, and how a failure is worded. */
interface SaveTarget {
  target: string;
  existing: Stats | undefined;
  faults: Faults;
  fail: (reason: string, cause?: unknown) => TransferError;
}

/**
 * Writes model.json and weights.bin into a temporary sibling folder, carries the old folder's other files over,
 * then swaps it into place (the old folder renamed to a backup first). On failure the temporary folder is removed
 * and the backup renamed back.
 * @returns The backup of the previous folder, to remove once the save succeeded.
 */
async function writeAndSwap(t: SaveTarget, modelJSON: tf.io.ModelJSON, buffers: ArrayBuffer[]): Promise<string | undefined> {
  const { target, existing, faults } = t;
  const parent = nodePath.dirname(target);
  const base = nodePath.basename(target);
  let temp: string | undefined;
  let backup: string | undefined;
  let swapped = false;
  try {
    faults.step('mkdir', parent);
    await fsp.mkdir(parent, { recursive: true });
    temp = await fsp.mkdtemp(nodePath.join(parent, `.${base}.tmp-`));
    faults.step('write-model-json', nodePath.join(temp, MODEL_FILE_NAME));
    await writeFileDurably(nodePath.join(temp, MODEL_FILE_NAME), [toBytes(JSON.stringify(modelJSON))], faults);
    faults.step('write-weights', nodePath.join(temp, WEIGHTS_FILE_NAME));
    await writeFileDurably(nodePath.join(temp, WEIGHTS_FILE_NAME), buffers.map((b) => new Uint8Array(b)), faults);
    if (existing) await carryOver(target, temp, faults);
    await syncDirectory(temp);
    if (existing) {
      backup = nodePath.join(parent, `.${base}.bak-${uniqueSuffix()}`);
      faults.step('rename-backup', target);
      await fsp.rename(target, backup);
    }
    faults.step('rename-into-place', target);
    await fsp.rename(temp, target);
    swapped = true;
    temp = undefined;
    await syncDirectory(parent);
    return backup;
  } catch (error) {
    if (temp) await fsp.rm(temp, { recursive: true, force: true }).catch(() => undefined);
    let restored = true;
    if (backup && !swapped) {
      restored = await fsp
        .rename(backup, target)
        .then(() => true)
        .catch(async () => (await fsp.lstat(target).catch(() => undefined)) !== undefined);
    }
    if (!restored) {
      throw new TransferError(
        'SAVE_FAILED',
        `Could not save the model to ${target}: ${reasonOf(error)}. The previous model was moved to ${backup} and could not be ` +
          `moved back; rename ${backup} to ${target} to restore it.`,
        { cause: error },
      );
    }
    throw t.fail(reasonOf(error), error);
  }
}

async function saveModelArtifacts(
  directory: string,
  artifacts: tf.io.ModelArtifacts,
  options: NodeFileSystemArgs,
): Promise<tf.io.SaveResult> {
  let target = nodePath.resolve(directory);
  // Saving through a symlinked folder replaces the real folder, not the link.
  target = await fsp.realpath(target).catch(() => target);
  const modelJsonPath = nodePath.join(target, MODEL_FILE_NAME);
  const faults = new Faults(options.__faults);

  const existing = await fsp.lstat(target).catch(() => undefined);
  const intact = existing ? `The previous model at ${target} is intact.` : `Nothing was written to ${target}.`;
  const fail = (reason: string, cause?: unknown): TransferError =>
    new TransferError('SAVE_FAILED', `Could not save the model to ${target}: ${reason}. ${intact}`, cause === undefined ? undefined : { cause });

  if (existing && !existing.isDirectory()) {
    throw fail('the path exists and is not a folder; choose a folder path (model.json and weights.bin go inside it)');
  }
  const topology = artifacts.modelTopology;
  if (topology instanceof ArrayBuffer) {
    throw new TransferError('NOT_SUPPORTED', `Could not save the model to ${target}: binary (GraphDef) topologies cannot be saved as model.json. ${intact}`);
  }
  if (topology == null) {
    throw new TransferError('INVALID_ARGUMENT', `Could not save the model to ${target}: the artifacts have no modelTopology. ${intact}`);
  }
  const buffers = weightBuffers(artifacts.weightData);
  const modelJSON = modelJsonOf({ ...artifacts, modelTopology: topology });
  // Refuse to write what the loader would refuse to read.
  try {
    const validated = validateModelArtifacts(modelJSON, modelJsonPath, { maxTotalBytes: options.maxTotalBytes });
    const weightBytes = buffers.reduce((sum, b) => sum + b.byteLength, 0);
    checkWeightData(validated.totalBytes, weightBytes, `the weight data being saved to ${target}`, validated.exact);
  } catch (error) {
    throw fail(`the artifacts are inconsistent (${error instanceof Error ? error.message : String(error)})`, error);
  }

  const backup = await writeAndSwap({ target, existing, faults, fail }, modelJSON, buffers);
  if (backup) {
    try {
      faults.step('remove-backup', backup);
      await fsp.rm(backup, { recursive: true, force: true });
    } catch (error) {
      log(`tfjs-transfer: saved the model to ${target}, but could not remove the previous copy at ${backup} (${reasonOf(error)}); delete it by hand.`);
    }
  }
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

/**
 * Creates a {@link FileSystemAdapter} for Node. {@link nodeFileSystem} is the default instance; create your own to
 * change the size limit.
 *
 * @param options `maxTotalBytes`: largest total weight size loaded or saved (default 2 GiB, see
 *   `DEFAULT_MAX_WEIGHT_BYTES`).
 * @returns An adapter whose `loader(path)` reads a model and `saver(dir)` writes one atomically.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { createNodeFileSystem } from 'tfjs-transfer/node';
 * const fs = createNodeFileSystem({ maxTotalBytes: 4 * 1024 ** 3 });
 * const model = await tfl.loadLayersModel(fs.loader('models/big/model.json'));
 * ```
 * @category Node
 */
export function createNodeFileSystem(options: NodeFileSystemArgs = {}): FileSystemAdapter {
  return {
    loader(pathOrFileUrl: string): tf.io.IOHandler {
      if (typeof pathOrFileUrl !== 'string' || pathOrFileUrl.length === 0) {
        throw new TransferError('INVALID_ARGUMENT', `loader(path) needs a path or file:// URL of a model.json or its folder, got ${String(pathOrFileUrl)}.`);
      }
      return { load: () => loadModelArtifacts(pathOrFileUrl, options) };
    },
    saver(directory: string): tf.io.IOHandler {
      if (typeof directory !== 'string' || directory.length === 0) {
        throw new TransferError('INVALID_ARGUMENT', `saver(directory) needs a folder path, got ${String(directory)}.`);
      }
      return { save: (artifacts: tf.io.ModelArtifacts) => saveModelArtifacts(directory, artifacts, options) };
    },
  };
}

/**
 * The library's Node file access: `loader(path)` reads a `model.json` (a path, its folder, or a `file://` URL) and
 * its shards strictly from the model's folder, validating sizes before reading; `saver(dir)` writes `model.json` +
 * `weights.bin` atomically (a failed save leaves the previous model intact). Default weight size limit 2 GiB.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { nodeFileSystem } from 'tfjs-transfer/node';
 * const model = await tfl.loadLayersModel(nodeFileSystem.loader('models/mobilenet/model.json'));
 * await model.save(nodeFileSystem.saver('out/my-model'));
 * ```
 * @category Node
 */
export const nodeFileSystem: FileSystemAdapter = createNodeFileSystem();
