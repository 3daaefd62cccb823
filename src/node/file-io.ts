/**
 * The library's own model file I/O for Node: a loader that reads a TensorFlow.js `model.json` and its shards strictly
 * from the model's folder, validating everything before allocating, and a saver that replaces `model.json` and its
 * content-named shard (`weights-<sha256 prefix>.bin`) in place, atomically for readers (see docs/reliability.md,
 * "Saves"). Needs Node built-ins only (no `@tensorflow/tfjs-node`).
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
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
 * The file name of the one shard earlier versions of the saver wrote. The saver now names its shard after its
 * content (`weights-<16 hex digits of its sha256>.bin`), so that replacing a model never rewrites a file a reader may be
 * reading; a `weights.bin` of an earlier save is removed when the model is replaced.
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
  | 'rename-shard'
  | 'rename-into-place'
  | 'remove-old-shards';

/**
 * Faults to inject into saves, so tests can check atomicity without mocking `fs`. @internal
 */
export interface FaultPlan {
  /** Fail once this many bytes have been written by one save (the bytes before it are written). */
  failAfterBytes?: number;
  /** Fail when this step starts. */
  failAtStep?: SaveStep;
  /** Hang forever when this step starts (a test then kills the process mid-save). */
  hangAtStep?: SaveStep;
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

  async step(step: SaveStep, path: string): Promise<void> {
    if (this.plan?.failAtStep === step) throw systemError(this.plan.code ?? 'ENOSPC', step, path);
    if (this.plan?.hangAtStep === step) await new Promise<never>(() => undefined);
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
    await faults.step('fsync', path);
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
 * Temporary files of this file that a killed writer left (`.NAME.<pid>-<hex>.tmp`, writer not running) are removed.
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
    await faults.step('mkdir', dir);
    await fsp.mkdir(dir, { recursive: true });
    await removeStaleTemporaries(dir, nodePath.basename(target));
    await faults.step('write-file', temp);
    await writeFileDurably(temp, [toBytes(data)], faults, options.mode);
    await faults.step('rename-into-place', target);
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

/** Raised when a shard went missing because a save replaced model.json while it was being loaded. */
class ModelReplaced extends Error {
  constructor(readonly original: unknown) {
    super('the model was replaced while it was being loaded');
  }
}

/** Whether `error` (or its cause) is a file-not-found error. */
function isMissingFile(error: unknown): boolean {
  return errorCode(error) === 'ENOENT' || errorCode((error as { cause?: unknown } | null)?.cause) === 'ENOENT';
}

/** How many times a load restarts when a concurrent save replaced the model under it. */
const LOAD_ATTEMPTS = 5;

/**
 * Loads, restarting when a save replaced model.json while its shards were being read (the save deletes the previous
 * model's shards once the new model.json is in place). A save that an older version left half done (a
 * `.NAME.bak-*` folder and no model at the path) is restored first.
 */
async function loadWithRetry(pathOrFileUrl: string, options: NodeFileSystemArgs): Promise<tf.io.ModelArtifacts> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await loadModelArtifacts(pathOrFileUrl, options);
    } catch (error) {
      if (error instanceof ModelReplaced) {
        if (attempt >= LOAD_ATTEMPTS) throw error.original;
        await new Promise((resolve) => setTimeout(resolve, 5 * attempt));
        continue;
      }
      const folder = attempt === 1 && error instanceof TransferError && /^No model at |has no model\.json/.test(error.message) ? oldLayoutFolder(pathOrFileUrl) : undefined;
      if (folder && (await settleOldLayoutLeftovers(folder))) continue;
      throw error;
    }
  }
}

/** The folder an old-layout backup would be restored to, for a plain path (not a file:// URL of a .json file). */
function oldLayoutFolder(pathOrFileUrl: string): string | undefined {
  if (/^[a-zA-Z][a-zA-Z0-9+.-]+:/.test(pathOrFileUrl) && !/^[a-zA-Z]:[\\/]/.test(pathOrFileUrl)) {
    if (!/^file:/i.test(pathOrFileUrl)) return undefined;
    try {
      pathOrFileUrl = fileURLToPath(pathOrFileUrl);
    } catch {
      return undefined;
    }
  }
  const absolute = nodePath.resolve(pathOrFileUrl);
  return nodePath.basename(absolute) === MODEL_FILE_NAME ? nodePath.dirname(absolute) : absolute;
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

  try {
    return await readWeights(json as tf.io.ModelJSON, validated, modelJson);
  } catch (error) {
    // A save may have replaced model.json (and removed the shards it listed) since it was read: start again.
    // A missing shard also counts: saving model A, B, then A again brings back the very model.json text first read.
    const now = await fsp.readFile(modelJson, 'utf8').catch(() => undefined);
    if (now !== undefined && (now !== text || isMissingFile(error))) throw new ModelReplaced(error);
    throw error;
  }
}

/** Resolves, sizes and reads every shard of a validated model.json into the artifacts. */
async function readWeights(
  modelJSON: tf.io.ModelJSON,
  validated: ReturnType<typeof validateModelArtifacts>,
  modelJson: string,
): Promise<tf.io.ModelArtifacts> {
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

/** The shard paths listed by a parsed model.json (plain file names only: the saver never writes elsewhere). */
function shardNamesOf(json: unknown): Set<string> {
  const names = new Set<string>();
  const manifest = (json as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (Array.isArray(manifest)) {
    for (const group of manifest) {
      const paths = (group as { paths?: unknown })?.paths;
      if (Array.isArray(paths)) for (const p of paths) if (typeof p === 'string' && !/[\\/]/.test(p) && p !== '.' && p !== '..') names.add(p);
    }
  }
  return names;
}

/** The shards of the model previously saved in `dir` (those its model.json lists), or `undefined` with no model. */
async function previousShards(dir: string): Promise<Set<string> | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(nodePath.join(dir, MODEL_FILE_NAME), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return shardNamesOf(JSON.parse(text));
  } catch {
    return new Set(); // an unreadable model.json: its shards are unknown, remove none of them
  }
}

function weightBuffers(weightData: tf.io.WeightData | undefined): ArrayBuffer[] {
  if (weightData == null) return [];
  return Array.isArray(weightData) ? weightData : [weightData];
}

/** The content-derived shard name: `weights-<first 16 hex digits of the sha256 of the weight bytes>.bin`. */
function shardNameOf(buffers: readonly ArrayBuffer[]): string {
  const hash = createHash('sha256');
  for (const b of buffers) hash.update(new Uint8Array(b));
  return `weights-${hash.digest('hex').slice(0, 16)}.bin`;
}

/** The model.json of `artifacts`, its weights in the one shard `shardName`. */
function modelJsonOf(artifacts: tf.io.ModelArtifacts & { modelTopology: object }, shardName: string): tf.io.ModelJSON {
  const modelJSON: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [shardName], weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.trainingConfig != null) modelJSON.trainingConfig = artifacts.trainingConfig;
  if (artifacts.signature != null) modelJSON.signature = artifacts.signature;
  if (artifacts.userDefinedMetadata != null) modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
  if (artifacts.modelInitializer != null) modelJSON.modelInitializer = artifacts.modelInitializer;
  if (artifacts.initializerSignature != null) modelJSON.initializerSignature = artifacts.initializerSignature;
  return modelJSON;
}

/** How long a temporary file of a live process (or of another machine sharing the folder) is left alone. */
const STALE_AFTER_MS = 15 * 60 * 1000;
/** Old-layout `.NAME.tmp-*` folders carry no pid: they are removed once this old (this version never creates them). */
const OLD_LAYOUT_STALE_AFTER_MS = 60 * 1000;

/** Whether process `pid` runs on this machine (EPERM: it runs, under another user). @internal */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

/** The writer pid in a temporary name `.<file>.<pid>-<hex>.tmp`, or `undefined` if `name` is not one. */
function writerPid(name: string, prefix: string): number | undefined {
  if (!name.startsWith(prefix) || !name.endsWith('.tmp')) return undefined;
  const match = /^(\d+)-[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length));
  return match ? Number(match[1]) : undefined;
}

/**
 * Removes the temporary files `.<file>.<pid>-<hex>.tmp` in `dir` that a killed writer left behind: those whose
 * writer is not running, and any older than 15 minutes (a writer on another machine). `file` limits the removal to
 * one file's temporaries (`undefined`: every file's). Never throws. @internal
 */
export async function removeStaleTemporaries(dir: string, file?: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const any = file === undefined ? /^\.(.+)\.\d+-[0-9a-f]+\.tmp$/.exec(name) : null;
    const pid = writerPid(name, any ? `.${any[1]}.` : `.${file ?? ''}.`);
    if (pid === undefined || pid === process.pid) continue; // not a temporary, or one of a save of ours in progress
    const path = nodePath.join(dir, name);
    if (isAlive(pid)) {
      const stats = await fsp.lstat(path).catch(() => undefined);
      if (!stats || Date.now() - stats.mtimeMs < STALE_AFTER_MS) continue;
    }
    await fsp.rm(path, { recursive: true, force: true }).then(() => removed.push(name), () => undefined);
  }
  return removed;
}

/**
 * Restores or removes what the earlier folder-swap saver left beside `target` when it was killed: a `.NAME.bak-*`
 * backup is moved back when `target` has no model.json (the kill fell between its two renames) and removed when
 * `target` has one; `.NAME.tmp-*` folders older than a minute are removed. Never throws.
 * @returns Whether a backup was restored.
 */
async function settleOldLayoutLeftovers(target: string): Promise<boolean> {
  const parent = nodePath.dirname(target);
  const base = nodePath.basename(target);
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return false;
  }
  const backups: { path: string; mtime: number }[] = [];
  for (const name of names) {
    const path = nodePath.join(parent, name);
    if (name.startsWith(`.${base}.tmp-`)) {
      const stats = await fsp.lstat(path).catch(() => undefined);
      if (stats && Date.now() - stats.mtimeMs > OLD_LAYOUT_STALE_AFTER_MS) await fsp.rm(path, { recursive: true, force: true }).catch(() => undefined);
    } else if (name.startsWith(`.${base}.bak-`)) {
      const pid = Number(name.slice(base.length + 6).split('-')[0]);
      if (pid === process.pid || isAlive(pid)) continue; // an old-version save in progress
      const stats = await fsp.stat(nodePath.join(path, MODEL_FILE_NAME)).catch(() => undefined);
      if (stats) backups.push({ path, mtime: stats.mtimeMs });
    }
  }
  if (backups.length === 0) return false;
  backups.sort((x, y) => y.mtime - x.mtime);
  let restored = false;
  const hasModel = await fsp.stat(nodePath.join(target, MODEL_FILE_NAME)).then(() => true, () => false);
  if (!hasModel) {
    const newest = backups.shift()!.path;
    const exists = await fsp.lstat(target).then((s) => s.isDirectory(), () => undefined);
    try {
      if (exists === undefined) {
        await fsp.rename(newest, target);
      } else if (exists) {
        for (const name of await fsp.readdir(newest)) {
          const dest = nodePath.join(target, name);
          if (!(await fsp.lstat(dest).then(() => true, () => false))) await fsp.rename(nodePath.join(newest, name), dest);
        }
        await fsp.rm(newest, { recursive: true, force: true });
      }
      restored = exists !== false;
      if (restored) log(`tfjs-transfer: restored the model at ${target} from the backup ${newest} an interrupted save left.`);
    } catch (error) {
      log(`tfjs-transfer: could not restore the model at ${target} from ${newest} (${reasonOf(error)}); rename it by hand.`);
      return false;
    }
  }
  for (const backup of backups) await fsp.rm(backup.path, { recursive: true, force: true }).catch(() => undefined);
  return restored;
}

/** One save in progress: where it goes, what was there, and how a failure is worded. */
interface SaveTarget {
  target: string;
  faults: Faults;
  fail: (reason: string, cause?: unknown) => TransferError;
}

/**
 * Writes the new shard and model.json into `target` in place, so a reader always sees a complete model:
 * the shard (a new, content-derived name; the old shards untouched) is written to a temporary file, fsynced and
 * renamed; then model.json is replaced the same way (rename over, atomic on POSIX) and the folder fsynced. On
 * failure everything this save created is removed and the previous files are as they were.
 */
async function writeInPlace(t: SaveTarget, modelJSON: tf.io.ModelJSON, shardName: string, buffers: ArrayBuffer[]): Promise<void> {
  const { target, faults } = t;
  const shard = nodePath.join(target, shardName);
  const modelJson = nodePath.join(target, MODEL_FILE_NAME);
  const shardTemp = nodePath.join(target, `.${shardName}.${uniqueSuffix()}.tmp`);
  const jsonTemp = nodePath.join(target, `.${MODEL_FILE_NAME}.${uniqueSuffix()}.tmp`);
  let createdDir: string | undefined;
  let shardExisted = true;
  try {
    await faults.step('mkdir', target);
    // New folders get the process's default mode (0o777 & ~umask); an existing folder keeps its own.
    createdDir = await fsp.mkdir(target, { recursive: true });
    shardExisted = await fsp.lstat(shard).then(() => true, () => false);
    await faults.step('write-weights', shardTemp);
    await writeFileDurably(shardTemp, buffers.map((b) => new Uint8Array(b)), faults);
    await faults.step('rename-shard', shard);
    await fsp.rename(shardTemp, shard);
    await faults.step('write-model-json', jsonTemp);
    await writeFileDurably(jsonTemp, [toBytes(JSON.stringify(modelJSON))], faults);
    await syncDirectory(target);
    await faults.step('rename-into-place', modelJson);
    await fsp.rename(jsonTemp, modelJson);
  } catch (error) {
    await fsp.rm(shardTemp, { force: true }).catch(() => undefined);
    await fsp.rm(jsonTemp, { force: true }).catch(() => undefined);
    if (!shardExisted) await fsp.rm(shard, { force: true }).catch(() => undefined);
    if (createdDir) await fsp.rm(createdDir, { recursive: true, force: true }).catch(() => undefined);
    throw t.fail(reasonOf(error), error);
  }
  await syncDirectory(target);
  if (createdDir) await syncDirectory(nodePath.dirname(createdDir));
}

/**
 * Removes the shards the new model no longer uses: those the previous model.json listed, and content-named
 * `weights-<hex>.bin` files no model.json lists (left by a save killed before its model.json was replaced).
 * A reader that read the previous model.json just before may race this; the loader then retries with the new one.
 */
async function removeOldShards(target: string, keep: string, previous: Set<string> | undefined, faults: Faults): Promise<void> {
  const doomed = new Set(previous ?? []);
  for (const name of await fsp.readdir(target).catch(() => [] as string[])) {
    if (/^weights-[0-9a-f]{16}\.bin$/.test(name)) doomed.add(name);
  }
  doomed.delete(keep);
  doomed.delete(MODEL_FILE_NAME);
  try {
    for (const name of doomed) {
      await faults.step('remove-old-shards', nodePath.join(target, name));
      await fsp.rm(nodePath.join(target, name), { force: true });
    }
  } catch (error) {
    log(`tfjs-transfer: saved the model to ${target}, but could not remove the previous model's shards (${reasonOf(error)}); they are unused, delete them by hand.`);
  }
}

async function saveModelArtifacts(
  directory: string,
  artifacts: tf.io.ModelArtifacts,
  options: NodeFileSystemArgs,
): Promise<tf.io.SaveResult> {
  let target = nodePath.resolve(directory);
  // Saving through a symlinked folder replaces the real folder's content, not the link.
  target = await fsp.realpath(target).catch(() => target);
  const modelJsonPath = nodePath.join(target, MODEL_FILE_NAME);
  const faults = new Faults(options.__faults);

  const existing = await fsp.lstat(target).catch(() => undefined);
  const failWith = (intact: string) => (reason: string, cause?: unknown): TransferError =>
    new TransferError('SAVE_FAILED', `Could not save the model to ${target}: ${reason}. ${intact}`, cause === undefined ? undefined : { cause });
  const early = failWith(existing ? `Nothing in ${target} was changed.` : `Nothing was written to ${target}.`);

  if (existing && !existing.isDirectory()) {
    throw early('the path exists and is not a folder; choose a folder path (model.json and its weights go inside it)');
  }
  const topology = artifacts.modelTopology;
  if (topology instanceof ArrayBuffer) {
    throw new TransferError('NOT_SUPPORTED', `Could not save the model to ${target}: binary (GraphDef) topologies cannot be saved as model.json.`);
  }
  if (topology == null) {
    throw new TransferError('INVALID_ARGUMENT', `Could not save the model to ${target}: the artifacts have no modelTopology.`);
  }
  const buffers = weightBuffers(artifacts.weightData);
  const shardName = shardNameOf(buffers);
  const modelJSON = modelJsonOf({ ...artifacts, modelTopology: topology }, shardName);
  // Refuse to write what the loader would refuse to read.
  try {
    const validated = validateModelArtifacts(modelJSON, modelJsonPath, { maxTotalBytes: options.maxTotalBytes });
    const weightBytes = buffers.reduce((sum, b) => sum + b.byteLength, 0);
    checkWeightData(validated.totalBytes, weightBytes, `the weight data being saved to ${target}`, validated.exact);
  } catch (error) {
    throw early(`the artifacts are inconsistent (${error instanceof Error ? error.message : String(error)})`, error);
  }

  await settleOldLayoutLeftovers(target);
  await removeStaleTemporaries(target);
  const previous = await previousShards(target);
  const fail = failWith(
    previous !== undefined
      ? `The previous model at ${target} is intact.`
      : existing
        ? `There was no model at ${target} before; nothing of it was changed.`
        : `Nothing was written to ${target}.`,
  );
  await writeInPlace({ target, faults, fail }, modelJSON, shardName, buffers);
  await removeOldShards(target, shardName, previous, faults);
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
      return { load: () => loadWithRetry(pathOrFileUrl, options) };
    },
    saver(directory: string): tf.io.IOHandler {
      if (typeof directory !== 'string' || directory.length === 0) {
        throw new TransferError('INVALID_ARGUMENT', `saver(directory) needs a folder path, got ${String(directory)}.`);
      }
      return { save: (artifacts: tf.io.ModelArtifacts) => saveModelArtifacts(directory, artifacts, options) };
    },
    writeFile: (path: string, bytes: Uint8Array) => atomicWriteFile(/^file:\/\//i.test(path) ? fileURLToPath(path) : path, bytes),
  };
}

/**
 * The library's Node file access: `loader(path)` reads a `model.json` (a path, its folder, or a `file://` URL) and
 * its shards strictly from the model's folder, validating sizes before reading; `saver(dir)` writes `model.json` +
 * one content-named shard `weights-<sha256 prefix>.bin` in place: a reader loading the folder meanwhile gets the old or
 * the new model, whole; a failed or killed save leaves the previous model intact; the folder itself is never renamed
 * (mount points work) and keeps its mode. Default weight size limit 2 GiB.
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
