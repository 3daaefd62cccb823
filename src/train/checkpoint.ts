/**
 * Checkpoints of {@link fit}: after every `every` epochs, the whole training state (trainable weights, optimizer
 * state, epoch, history, early-stopping state with its best-weights snapshot, RNG state) is written as one file, so a
 * run killed at any moment resumes from its last completed checkpoint and ends bit-identical to an uninterrupted
 * run with the same seed on the same backend.
 *
 * This module is browser-safe: it never imports Node built-ins. Storage goes through a {@link CheckpointStore};
 * `tfjs-transfer/node` provides a file store (`fileCheckpointStore`, written atomically) and installs it as
 * `env.checkpointStore`, which opens `checkpoint: { directory: 'path' }`.
 *
 * File layout (little-endian): the 8 bytes `TFJSTCK1`, a uint32 header length, the UTF-8 JSON header, then the
 * tensors' raw bytes one after another. The header holds the SHA-256 of the tensor bytes.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { env } from '../env';
import { TransferError, check } from '../errors';
import type { CheckpointStore } from '../services';
import { sha256Hex } from '../util/hash';

/** What {@link CheckpointArgs.onSave} receives after each checkpoint is written. @category Step 4: Train */
export interface CheckpointInfo {
  /** Epochs completed when the checkpoint was taken (1-based count). */
  epoch: number;
  /** Size of the checkpoint, in bytes. */
  bytes: number;
  /** Milliseconds spent writing it. */
  ms: number;
  /** Where it was written. */
  location: string;
}

/** The `checkpoint` option of `fit`. @category Step 4: Train */
export interface CheckpointArgs {
  /**
   * A folder (Node, with `tfjs-transfer/node` imported; the file `checkpoint.tfjst` is written inside it,
   * atomically) or any {@link CheckpointStore}.
   */
  directory: string | CheckpointStore;
  /** Checkpoint every this many epochs (the last epoch and an early stop are always checkpointed). @defaultValue 1 */
  every?: number;
  /**
   * Continue from the checkpoint found there, if any, skipping the epochs it completed. A checkpoint written by a
   * different run (other data, model, or options) is refused with an error that names the differences. `false`
   * starts over and overwrites it.
   * @defaultValue `true`
   */
  resume?: boolean;
  /** Called after each checkpoint is written. @defaultValue none */
  onSave?: (info: CheckpointInfo) => void | Promise<void>;
}

/**
 * Version of the checkpoint layout. 2: the payload checksum and the label hashes of the fingerprint are SHA-256
 * (were 32-bit FNV-1a in 1).
 * @category Step 4: Train
 */
export const CHECKPOINT_FORMAT_VERSION = 2;
/** The file name of the Node file store inside its folder. */
export const CHECKPOINT_FILE_NAME = 'checkpoint.tfjst';
const MAGIC = 'TFJSTCK1';
/** Largest header accepted when reading (64 MiB): protects against a damaged length field. */
const MAX_HEADER_BYTES = 64 * 1024 ** 2;

/** What identifies a run: a checkpoint is resumed only by a run with the same values. @internal */
export type RunFingerprint = Record<string, unknown>;

/** A tensor of a checkpoint. @internal */
export interface StoredTensor {
  name: string;
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** The state of `fit` that a checkpoint holds, besides the tensors. @internal */
export interface CheckpointState {
  /** Epochs completed. */
  epoch: number;
  /** Batches run so far (the index passed to `onBatchEnd`). */
  batchCounter: number;
  seed: number;
  rngState: number;
  best: number | undefined;
  sinceBest: number;
  stoppedEarly: boolean;
  history: {
    loss: number[];
    accuracy: number[];
    valLoss: number[];
    valAccuracy: number[];
    bestEpoch: number;
    initial?: { valLoss: number; valAccuracy: number };
    trainMs: number;
    warnings?: string[];
  };
  /** Backend that wrote it (resuming on another one is allowed but not bit-identical). */
  backend: string;
}

/** A decoded checkpoint. @internal */
export interface Checkpoint {
  state: CheckpointState;
  fingerprint: RunFingerprint;
  /** Trainable weights, in the order of the top model's trainable weights. */
  weights: StoredTensor[];
  /** The optimizer's `getWeights()` (iteration count first). */
  optimizer: StoredTensor[];
  /** Extra optimizer state not in `getWeights()` (Adam's accumulated beta powers), by field name. */
  optimizerExtra: StoredTensor[];
  /** The best-weights snapshot of early stopping, if any. */
  best: StoredTensor[] | undefined;
}

interface HeaderTensor {
  group: 'weights' | 'optimizer' | 'optimizerExtra' | 'best';
  name: string;
  dtype: 'float32' | 'int32';
  shape: number[];
  offset: number;
  bytes: number;
}

interface Header {
  format: number;
  writtenBy: 'tfjs-transfer';
  state: CheckpointState;
  fingerprint: RunFingerprint;
  tensors: HeaderTensor[];
  payloadBytes: number;
  payloadHash: string;
}

/** A hash of numbers (labels, class weights) for fingerprints: count, then SHA-256 of their float64 bytes. @internal */
export async function hashNumbers(values: ArrayLike<number>): Promise<string> {
  const f = Float64Array.from(values as ArrayLike<number>);
  return `${values.length}:${await sha256Hex(new Uint8Array(f.buffer))}`;
}

/** Serialises a checkpoint to bytes. @internal */
export async function encodeCheckpoint(ckpt: Checkpoint): Promise<Uint8Array> {
  const tensors: HeaderTensor[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  const add = (group: HeaderTensor['group'], list: StoredTensor[] | undefined) => {
    for (const t of list ?? []) {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      tensors.push({ group, name: t.name, dtype: t.dtype, shape: t.shape, offset, bytes: bytes.byteLength });
      parts.push(bytes);
      offset += bytes.byteLength;
    }
  };
  add('weights', ckpt.weights);
  add('optimizer', ckpt.optimizer);
  add('optimizerExtra', ckpt.optimizerExtra);
  add('best', ckpt.best);
  const payload = new Uint8Array(offset);
  let at = 0;
  for (const p of parts) {
    payload.set(p, at);
    at += p.byteLength;
  }
  const header: Header = {
    format: CHECKPOINT_FORMAT_VERSION,
    writtenBy: 'tfjs-transfer',
    state: ckpt.state,
    fingerprint: ckpt.fingerprint,
    tensors,
    payloadBytes: payload.byteLength,
    payloadHash: await sha256Hex(payload),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + 4 + json.byteLength + payload.byteLength);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.byteLength, true);
  out.set(json, 12);
  out.set(payload, 12 + json.byteLength);
  return out;
}

/** Parses checkpoint bytes, checking every size and the checksum. Throws `MODEL_INVALID` naming `location`. @internal */
export async function decodeCheckpoint(bytes: Uint8Array, location: string): Promise<Checkpoint> {
  const bad = (why: string): never => {
    throw new TransferError(
      'MODEL_INVALID',
      `The checkpoint at ${location} is unreadable: ${why}. Delete it to start over, or pass checkpoint.resume: false to overwrite it.`,
    );
  };
  if (!(bytes instanceof Uint8Array)) bad('the store returned no bytes');
  if (bytes.byteLength < 12) bad(`it is ${bytes.byteLength} bytes long, too short for a checkpoint`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== MAGIC) bad(`it does not start with ${MAGIC} (not a tfjs-transfer checkpoint)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getUint32(8, true);
  if (headerBytes > MAX_HEADER_BYTES || 12 + headerBytes > bytes.byteLength) bad(`its header length ${headerBytes} exceeds the file`);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + headerBytes))) as Header;
  } catch (error) {
    return bad(`its header is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof header !== 'object' || header === null) bad('its header is not an object');
  if (header.format !== CHECKPOINT_FORMAT_VERSION) bad(`format ${String(header.format)} is not supported (expected ${CHECKPOINT_FORMAT_VERSION})`);
  if (typeof header.state !== 'object' || header.state === null || !Array.isArray(header.tensors)) bad('its header lacks the training state');
  const payload = bytes.subarray(12 + headerBytes);
  if (payload.byteLength !== header.payloadBytes) bad(`the tensor data is ${payload.byteLength} bytes, the header says ${header.payloadBytes}`);
  if ((await sha256Hex(payload)) !== header.payloadHash) bad('the tensor data does not match its checksum (the file is damaged)');
  const out: Checkpoint = { state: header.state, fingerprint: header.fingerprint ?? {}, weights: [], optimizer: [], optimizerExtra: [], best: undefined };
  for (const t of header.tensors) {
    const ok =
      t && (t.dtype === 'float32' || t.dtype === 'int32') && Array.isArray(t.shape) && t.shape.every((d) => Number.isInteger(d) && d >= 0) &&
      Number.isInteger(t.offset) && Number.isInteger(t.bytes) && t.offset >= 0 && t.offset + t.bytes <= payload.byteLength &&
      t.bytes === 4 * t.shape.reduce((a, b) => a * b, 1);
    if (!ok) bad(`tensor ${JSON.stringify(t?.name)} has an invalid entry`);
    const copy = payload.slice(t.offset, t.offset + t.bytes);
    const data = t.dtype === 'int32' ? new Int32Array(copy.buffer) : new Float32Array(copy.buffer);
    const stored: StoredTensor = { name: String(t.name), dtype: t.dtype, shape: t.shape, data };
    if (t.group === 'best') (out.best ??= []).push(stored);
    else if (t.group === 'weights' || t.group === 'optimizer' || t.group === 'optimizerExtra') out[t.group].push(stored);
    else bad(`tensor ${JSON.stringify(t.name)} has an unknown group`);
  }
  return out;
}

/** Copies a tensor's values out of the backend. @internal */
export async function storeTensor(name: string, t: tf.Tensor): Promise<StoredTensor> {
  const dtype = t.dtype === 'int32' ? 'int32' : 'float32';
  const values = await t.data();
  const data = dtype === 'int32' ? Int32Array.from(values as Int32Array) : Float32Array.from(values as Float32Array);
  return { name, dtype, shape: [...t.shape], data };
}

/** A tensor from stored values. @internal */
export function toTensor(t: StoredTensor): tf.Tensor {
  return tf.tensor(t.data, t.shape, t.dtype);
}

interface OptimizerInternals {
  accBeta1?: unknown;
  accBeta2?: unknown;
}

const EXTRA_FIELDS = ['accBeta1', 'accBeta2'] as const;

/**
 * The optimizer's full state: `getWeights()` plus fields that `setWeights` would otherwise recompute with a
 * different rounding (Adam's running beta powers), so a resumed run stays bit-identical. @internal
 */
export async function captureOptimizer(optimizer: tf.Optimizer): Promise<{ weights: StoredTensor[]; extra: StoredTensor[] }> {
  const named = await optimizer.getWeights();
  const weights: StoredTensor[] = [];
  for (const { name, tensor } of named) {
    weights.push(await storeTensor(name, tensor));
    if (!(tensor instanceof tf.Variable)) tensor.dispose();
  }
  const extra: StoredTensor[] = [];
  const internals = optimizer as unknown as OptimizerInternals;
  for (const field of EXTRA_FIELDS) {
    const v = internals[field];
    if (v instanceof tf.Variable && !v.isDisposed) extra.push(await storeTensor(field, v));
  }
  return { weights, extra };
}

/** Restores what {@link captureOptimizer} captured, freeing the state it replaces. @internal */
export async function restoreOptimizer(optimizer: tf.Optimizer, weights: StoredTensor[], extra: StoredTensor[]): Promise<void> {
  const previous = await optimizer.getWeights();
  const tensors = weights.map(toTensor);
  try {
    await optimizer.setWeights(weights.map((w, i) => ({ name: w.name, tensor: tensors[i]! })));
  } finally {
    tf.dispose(tensors); // setWeights copies them into new variables
  }
  // setWeights replaces the state variables without freeing the old ones.
  for (const { tensor } of previous) tensor.dispose();
  const internals = optimizer as unknown as OptimizerInternals;
  for (const e of extra) {
    const v = internals[e.name as (typeof EXTRA_FIELDS)[number]];
    if (v instanceof tf.Variable && !v.isDisposed) {
      const t = toTensor(e);
      v.assign(t);
      t.dispose();
    }
  }
}

/** The differences between two fingerprints, as `key: checkpoint value -> this run's value` lines. @internal */
export function fingerprintDifferences(saved: RunFingerprint, current: RunFingerprint): string[] {
  const out: string[] = [];
  for (const key of Object.keys(current)) {
    if (!(key in saved)) continue; // a field checked in a later phase, or added by a newer version
    const a = JSON.stringify(saved[key]);
    const b = JSON.stringify(current[key]);
    if (a !== b) out.push(`${key}: ${short(a)} in the checkpoint, ${short(b)} now`);
  }
  return out;
}

function short(s: string | undefined): string {
  if (s === undefined) return 'unset';
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * A checkpoint store in memory (the checkpoint lives as long as the store object): for tests, or to keep the
 * last good state of a run in the browser. Writes are atomic (a reference swap).
 *
 * @param location Names the store in messages. Default `"memory"`.
 * @category Step 4: Train
 * @example
 * ```ts
 * const store = memoryCheckpointStore();
 * await fit(model, data, { epochs: 10, seed: 1, checkpoint: { directory: store } });
 * ```
 */
export function memoryCheckpointStore(location = 'memory'): CheckpointStore & {
  /** The last checkpoint written, as bytes (undefined before the first). */
  bytes: Uint8Array | undefined;
} {
  return {
    location,
    bytes: undefined,
    async read() {
      return this.bytes?.slice();
    },
    async write(bytes: Uint8Array) {
      this.bytes = bytes.slice();
    },
    async clear() {
      this.bytes = undefined;
    },
  };
}

/** A validated checkpoint option with its store. @internal */
export interface CheckpointSession {
  store: CheckpointStore;
  every: number;
  resume: boolean;
  onSave?: CheckpointArgs['onSave'];
  /** The checkpoint found in the store (only when `resume`). */
  found: Checkpoint | undefined;
}

/**
 * Validates `args`, resolves the store and reads an existing checkpoint (when resuming). @internal
 */
export async function openCheckpoint(args: CheckpointArgs, where: string): Promise<CheckpointSession> {
  check(typeof args === 'object' && args !== null, `${where}: checkpoint must be an object such as { directory: 'checkpoints/run1' }.`);
  const every = args.every ?? 1;
  check(Number.isInteger(every) && every >= 1, `${where}: checkpoint.every must be a positive integer (epochs), got ${JSON.stringify(args.every)}.`);
  check(args.resume === undefined || typeof args.resume === 'boolean', `${where}: checkpoint.resume must be true or false, got ${JSON.stringify(args.resume)}.`);
  check(args.onSave === undefined || typeof args.onSave === 'function', `${where}: checkpoint.onSave must be a function.`);
  let store: CheckpointStore;
  const dir = args.directory;
  if (typeof dir === 'string') {
    check(dir.length > 0, `${where}: checkpoint.directory is an empty string; give a folder path.`);
    const openStore = env.checkpointStore;
    if (!openStore) {
      throw new TransferError(
        'NODE_ONLY',
        `${where}: checkpoint.directory "${dir}" is a path, and this environment has no file access. In Node import from ` +
          `'tfjs-transfer/node'; elsewhere pass a CheckpointStore (e.g. memoryCheckpointStore()).`,
      );
    }
    store = openStore(dir);
  } else {
    check(
      typeof dir === 'object' && dir !== null && typeof dir.read === 'function' && typeof dir.write === 'function',
      `${where}: checkpoint.directory must be a folder path or a CheckpointStore with read() and write(), got ${Object.prototype.toString.call(dir)}.`,
    );
    store = dir;
  }
  const resume = args.resume ?? true;
  let found: Checkpoint | undefined;
  if (resume) {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await store.read();
    } catch (error) {
      if (error instanceof TransferError) throw error;
      throw new TransferError('MODEL_LOAD_FAILED', `${where}: could not read the checkpoint at ${store.location}: ${error instanceof Error ? error.message : String(error)}.`, { cause: error });
    }
    if (bytes !== undefined) found = await decodeCheckpoint(bytes, store.location);
  }
  return { store, every, resume, onSave: args.onSave, found };
}

/**
 * Throws when `found` was written by another run: names each difference and what to do. @internal
 */
export function checkFingerprint(session: CheckpointSession, current: RunFingerprint, where: string): void {
  const found = session.found;
  if (!found) return;
  const diffs = fingerprintDifferences(found.fingerprint, current);
  if (diffs.length > 0) {
    throw new TransferError(
      'INVALID_ARGUMENT',
      `${where}: the checkpoint at ${session.store.location} belongs to another run (${diffs.join('; ')}). ` +
        'Use another checkpoint directory, delete this checkpoint, or pass checkpoint.resume: false to start over and overwrite it.',
    );
  }
}

/** Writes `ckpt` through the session's store; a failure is `SAVE_FAILED` and says the previous checkpoint is intact. @internal */
export async function writeCheckpoint(session: CheckpointSession, ckpt: Checkpoint, where: string): Promise<CheckpointInfo> {
  const t0 = Date.now();
  const bytes = await encodeCheckpoint(ckpt);
  try {
    await session.store.write(bytes);
  } catch (error) {
    if (error instanceof TransferError) {
      throw new TransferError('SAVE_FAILED', `${where}: checkpoint after epoch ${ckpt.state.epoch} failed: ${error.message}`, { cause: error });
    }
    throw new TransferError(
      'SAVE_FAILED',
      `${where}: checkpoint after epoch ${ckpt.state.epoch} could not be written to ${session.store.location}: ` +
        `${error instanceof Error ? error.message : String(error)}. The previous checkpoint, if any, is intact; training stopped.`,
      { cause: error },
    );
  }
  const info: CheckpointInfo = { epoch: ckpt.state.epoch, bytes: bytes.byteLength, ms: Date.now() - t0, location: session.store.location };
  await session.onSave?.(info);
  return info;
}
