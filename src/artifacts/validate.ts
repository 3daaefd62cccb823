/**
 * Validation of model artefacts (`model.json` and its weight shards) before any weight is fetched or allocated.
 * Browser-safe: depends on `@tensorflow/tfjs-core` types only.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import { TransferError } from '../errors.js';

/**
 * Largest total weight size a model file may declare by default (2 GiB); larger models are refused before loading.
 * @category Advanced
 */
export const DEFAULT_MAX_WEIGHT_BYTES = 2 * 1024 ** 3;

/**
 * The model formats tfjs can load.
 * @internal
 */
export type ModelFormat = 'layers-model' | 'graph-model';

/** Defaults of {@link ValidateModelArgs}. @internal */
export const VALIDATE_MODEL_DEFAULTS = Object.freeze({ maxTotalBytes: DEFAULT_MAX_WEIGHT_BYTES, allowUrlPaths: false, allowMissingWeights: false });

/**
 * Options of {@link validateModelArtifacts}.
 * @category Advanced
 */
export interface ValidateModelArgs {
  /**
   * Refuse models whose weights add up to more than this many bytes (after accounting for quantization, i.e. the
   * size on disk); about 4x the largest image backbone in common use.
   * @defaultValue {@link DEFAULT_MAX_WEIGHT_BYTES} (2 GiB)
   */
  maxTotalBytes?: number;
  /**
   * Whether shard paths may be absolute URLs (`https://...`). A model loaded from disk must keep its shards beside
   * its `model.json`. Set it only when loading over HTTP from a host you trust to redirect shards.
   * @defaultValue `false`
   */
  allowUrlPaths?: boolean;
  /**
   * Whether a `model.json` without `weightsManifest` (topology only) is accepted; every model this library loads
   * carries weights.
   * @defaultValue `false`
   */
  allowMissingWeights?: boolean;
}

/**
 * One weight group of a validated manifest.
 * @internal
 */
export interface ValidatedWeightGroup {
  /** The group's shard paths, relative to the folder of `model.json`, in order. */
  paths: string[];
  /** Bytes the group's shards must hold together (a lower bound when `exact` is false). */
  bytes: number;
  /** `false` when the group holds `string` weights, whose encoded length cannot be known from the manifest. */
  exact: boolean;
}

/**
 * What {@link validateModelArtifacts} found.
 * @internal
 */
export interface ValidatedModelArtifacts {
  /** `"layers-model"` or `"graph-model"` (inferred from the topology when `model.json` has no `format`). */
  format: ModelFormat;
  /** Bytes of every weight together, as stored (quantized weights count their quantized size). */
  totalBytes: number;
  /** `false` when some weight is a `string` tensor (then `totalBytes` is a lower bound). */
  exact: boolean;
  /** The manifest's groups, in order. */
  groups: ValidatedWeightGroup[];
  /** Every weight spec, in manifest order (what `ModelArtifacts.weightSpecs` holds). */
  weightSpecs: tf.io.WeightsManifestEntry[];
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const QUANTIZED_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };
/** Each encoded string is preceded by a 4-byte length. */
const STRING_LENGTH_BYTES = 4;

function invalid(where: string, message: string): TransferError {
  return new TransferError('MODEL_INVALID', `Invalid model at ${where}: ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof ArrayBuffer);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/**
 * Checks one shard path: a non-empty relative path with no `..` segment, no absolute path, no drive letter, no
 * NUL byte and (unless `allowUrl`) no URL scheme. Returns a reason when the path is refused. @internal
 */
export function shardPathProblem(path: string, allowUrl: boolean): string | undefined {
  if (path.length === 0) return 'is empty';
  if (path.includes('\0')) return 'contains a NUL byte';
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(path);
  if (scheme && scheme[1].length > 1) {
    if (allowUrl && /^https?:\/\//i.test(path)) return undefined;
    return `is a URL (scheme "${scheme[1]}:"); shards must be files beside model.json`;
  }
  if (path.startsWith('/') || path.startsWith('\\')) return 'is an absolute path; shards must be relative to model.json';
  if (/^[a-zA-Z]:/.test(path)) return 'is an absolute Windows path; shards must be relative to model.json';
  if (path.split(/[\\/]/).some((segment) => segment === '..')) {
    return 'contains ".." and would point outside the folder of model.json';
  }
  return undefined;
}

/** The format of a `model.json`: its `format` field, or inferred from the topology. */
function formatOf(json: Record<string, unknown>, where: string): ModelFormat {
  const topology = json.modelTopology;
  if (topology === undefined || topology === null) {
    throw invalid(where, '"modelTopology" is missing. A TensorFlow.js model.json has "modelTopology" and "weightsManifest"; this file may be a weights manifest or metadata file instead.');
  }
  if (!isPlainObject(topology)) {
    throw invalid(where, `"modelTopology" must be an object, found ${describe(topology)}.`);
  }
  let format: ModelFormat;
  if (json.format === undefined || json.format === null) {
    if (Array.isArray(topology.node)) format = 'graph-model';
    else if (isPlainObject(topology.model_config) || typeof topology.class_name === 'string') format = 'layers-model';
    else {
      throw invalid(where, '"format" is missing and "modelTopology" is neither a Keras model config (class_name/config) nor a TensorFlow graph (node list).');
    }
  } else if (json.format === 'layers-model' || json.format === 'graph-model') {
    format = json.format;
  } else {
    throw invalid(where, `"format" is ${describe(json.format)}; expected "layers-model" or "graph-model".`);
  }
  for (const key of ['userDefinedMetadata', 'signature', 'modelInitializer', 'trainingConfig'] as const) {
    const value = json[key];
    if (value !== undefined && value !== null && !isPlainObject(value)) {
      throw invalid(where, `"${key}" must be an object when present, found ${describe(value)}.`);
    }
  }
  return format;
}

/** What the manifest checks accumulate across groups. */
interface ManifestState {
  where: string;
  maxTotalBytes: number;
  allowUrlPaths: boolean;
  /** Weight name -> where it was first seen. */
  names: Map<string, string>;
  seenPaths: Set<string>;
  weightSpecs: tf.io.WeightsManifestEntry[];
  totalBytes: number;
}

/** Checks a group's shard paths. */
function checkShardPaths(state: ManifestState, paths: unknown[], at: string): void {
  const { where } = state;
  paths.forEach((p: unknown, i) => {
    if (typeof p !== 'string') throw invalid(where, `${at}.paths[${i}] must be a string, found ${describe(p)}.`);
    const problem = shardPathProblem(p, state.allowUrlPaths);
    if (problem) throw invalid(where, `${at}.paths[${i}] ${JSON.stringify(p)} ${problem}. Refusing to read it.`);
    if (state.seenPaths.has(p)) throw invalid(where, `${at}.paths[${i}] ${JSON.stringify(p)} is listed twice in the manifest.`);
    state.seenPaths.add(p);
  });
}

/** The number of values of a weight `shape`, checking each dimension. */
function shapeSize(shape: unknown, label: string, where: string): number {
  if (!Array.isArray(shape)) throw invalid(where, `${label}.shape must be an array of dimensions, found ${describe(shape)}.`);
  let size = 1;
  shape.forEach((d: unknown, k) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw invalid(where, `${label}.shape[${k}] is ${describe(d)}; dimensions must be non-negative integers (shape ${JSON.stringify(shape)}).`);
    }
    size *= d;
  });
  return size;
}

/** Bytes one value of a quantized weight takes on disk, checking the quantization against the weight's dtype. */
function quantizedBytes(quantization: unknown, dtype: string, label: string, where: string): number {
  if (!isPlainObject(quantization)) {
    throw invalid(where, `${label}.quantization must be an object { dtype, scale, min }, found ${describe(quantization)}.`);
  }
  const qdtype = quantization.dtype;
  if (typeof qdtype !== 'string' || !(qdtype in QUANTIZED_BYTES)) {
    throw invalid(where, `${label}.quantization.dtype is ${describe(qdtype)}; expected uint8, uint16 or float16.`);
  }
  if (qdtype === 'float16') {
    if (dtype !== 'float32') throw invalid(where, `${label}: float16 quantization applies to float32 weights only, this one is ${dtype}.`);
  } else {
    if (dtype !== 'float32' && dtype !== 'int32') {
      throw invalid(where, `${label}: ${qdtype} quantization applies to float32 or int32 weights only, this one is ${dtype}.`);
    }
    for (const key of ['scale', 'min'] as const) {
      const v = quantization[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw invalid(where, `${label}.quantization.${key} is ${describe(v)}; ${qdtype} quantization needs finite "scale" and "min" numbers.`);
      }
    }
  }
  const original = quantization.original_dtype;
  if (original !== undefined && original !== dtype) {
    throw invalid(where, `${label}.quantization.original_dtype is ${describe(original)} but the weight's dtype is ${dtype}.`);
  }
  return QUANTIZED_BYTES[qdtype]!;
}

/**
 * Checks one weight spec, records its clean copy in `state.weightSpecs`, and returns its size in bytes (a lower
 * bound when `exact` is false). `groupBytes`: bytes of the group's earlier weights, for the total limit.
 */
function checkWeightSpec(state: ManifestState, spec: unknown, wat: string, groupBytes: number): { bytes: number; exact: boolean } {
  const { where, names } = state;
  if (!isPlainObject(spec)) throw invalid(where, `${wat} must be an object { name, shape, dtype }, found ${describe(spec)}.`);
  const { name, shape, dtype, quantization, group: weightGroup } = spec;
  if (typeof name !== 'string' || name.length === 0) {
    throw invalid(where, `${wat}.name must be a non-empty string, found ${describe(name)}.`);
  }
  const label = `${wat} ("${name}")`;
  const previous = names.get(name);
  if (previous !== undefined) {
    throw invalid(where, `${label}: duplicate weight name, already used by ${previous}. Each weight must have a unique name; re-export the model.`);
  }
  names.set(name, wat);
  const size = shapeSize(shape, label, where);
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES || dtype === 'string')) {
    throw invalid(where, `${label}.dtype is ${describe(dtype)}; expected one of float32, int32, bool, string, complex64.`);
  }
  if (weightGroup !== undefined && weightGroup !== 'model' && weightGroup !== 'optimizer') {
    throw invalid(where, `${label}.group is ${describe(weightGroup)}; expected "model" or "optimizer".`);
  }
  const quantized = quantization !== undefined && quantization !== null;
  const exact = quantized || dtype !== 'string';
  const bytesPerValue = quantized ? quantizedBytes(quantization, dtype, label, where) : dtype === 'string' ? STRING_LENGTH_BYTES : DTYPE_BYTES[dtype]!;
  const bytes = size * bytesPerValue;
  if (!Number.isSafeInteger(bytes) || state.totalBytes + groupBytes + bytes > state.maxTotalBytes) {
    throw invalid(
      where,
      `${label} with shape ${JSON.stringify(shape)} (${dtype}${quantization ? `, quantized` : ''}) needs ${Number.isFinite(bytes) ? formatBytes(bytes) : 'an unrepresentable number of bytes'}, ` +
        `bringing the weights to more than the limit of ${formatBytes(state.maxTotalBytes)}. ` +
        'The manifest is corrupt, or the model is too large: raise the limit (maxTotalBytes) only if you trust this file.',
    );
  }
  const clean: tf.io.WeightsManifestEntry = { name, shape: shape as number[], dtype: dtype as tf.io.WeightsManifestEntry['dtype'] };
  if (weightGroup !== undefined) clean.group = weightGroup;
  if (quantized) clean.quantization = quantization as NonNullable<tf.io.WeightsManifestEntry['quantization']>;
  state.weightSpecs.push(clean);
  return { bytes, exact };
}

/** Checks one group of the manifest (its paths and weights) and returns what it must hold. */
function checkGroup(state: ManifestState, group: unknown, g: number): ValidatedWeightGroup {
  const { where } = state;
  const at = `weightsManifest[${g}]`;
  if (!isPlainObject(group)) throw invalid(where, `${at} must be an object with "paths" and "weights", found ${describe(group)}.`);
  const { paths, weights } = group;
  if (!Array.isArray(paths)) throw invalid(where, `${at}.paths must be an array of file names, found ${describe(paths)}.`);
  if (!Array.isArray(weights)) throw invalid(where, `${at}.weights must be an array of weight specs, found ${describe(weights)}.`);
  checkShardPaths(state, paths, at);
  let bytes = 0;
  let exact = true;
  weights.forEach((spec: unknown, w) => {
    const found = checkWeightSpec(state, spec, `${at}.weights[${w}]`, bytes);
    bytes += found.bytes;
    exact &&= found.exact;
  });
  if (bytes > 0 && paths.length === 0) {
    throw invalid(where, `${at} describes ${formatBytes(bytes)} of weights but lists no shard paths.`);
  }
  state.totalBytes += bytes;
  return { paths: paths as string[], bytes, exact };
}

/**
 * Checks a parsed `model.json` before any weight is fetched or allocated: format, topology, and every entry of the
 * weights manifest (shard paths, weight names, shapes, dtypes, quantization). Computes the byte size each weight
 * group's shards must have, and refuses absurd totals and duplicate weight names.
 *
 * Shard paths must be relative, without `..`, absolute paths or URL schemes (URLs only with `allowUrlPaths`).
 * Sizes: float32/int32 4 bytes per value, bool 1, complex64 8; quantized weights 1 (uint8) or 2 (uint16, float16);
 * string weights at least 4 bytes per value (their size is then a lower bound, `exact: false`).
 *
 * @param json The parsed content of `model.json`.
 * @param where Where it came from (a path or URL), quoted in error messages.
 * @param args Limits; default total limit {@link DEFAULT_MAX_WEIGHT_BYTES} (2 GiB), no URL shard paths,
 *   weights required.
 * @returns The format, total weight bytes, per-group expected bytes and the flattened weight specs.
 * @throws TransferError `MODEL_INVALID` naming the file and the offending entry.
 *
 * @example
 * ```ts
 * const json = JSON.parse(await (await fetch(url)).text());
 * const { format, totalBytes, groups } = validateModelArtifacts(json, url);
 * console.log(`${format}: ${groups.length} group(s), ${totalBytes} bytes of weights`);
 * ```
 * @internal
 */
export function validateModelArtifacts(
  json: unknown,
  where: string,
  args: ValidateModelArgs = {},
): ValidatedModelArtifacts {
  const maxTotalBytes = args.maxTotalBytes ?? VALIDATE_MODEL_DEFAULTS.maxTotalBytes;
  if (!(typeof maxTotalBytes === 'number' && maxTotalBytes >= 0)) {
    throw new TransferError('INVALID_ARGUMENT', `maxTotalBytes must be a non-negative number, got ${String(maxTotalBytes)}.`);
  }
  if (!isPlainObject(json)) {
    throw invalid(where, `model.json must hold a JSON object, found ${describe(json)}. Check that the file is a TensorFlow.js model.json.`);
  }
  const format = formatOf(json, where);
  const manifest = json.weightsManifest;
  if (manifest === undefined || manifest === null) {
    if (args.allowMissingWeights ?? VALIDATE_MODEL_DEFAULTS.allowMissingWeights) return { format, totalBytes: 0, exact: true, groups: [], weightSpecs: [] };
    throw invalid(where, '"weightsManifest" is missing: the file describes a topology without weights. Save the model with its weights (model.save) or point at the complete model.json.');
  }
  if (!Array.isArray(manifest)) {
    throw invalid(where, `"weightsManifest" must be an array of groups ({ paths, weights }), found ${describe(manifest)}.`);
  }
  const state: ManifestState = {
    where,
    maxTotalBytes,
    allowUrlPaths: (args.allowUrlPaths ?? VALIDATE_MODEL_DEFAULTS.allowUrlPaths) === true,
    names: new Map(),
    seenPaths: new Set(),
    weightSpecs: [],
    totalBytes: 0,
  };
  const groups = manifest.map((group: unknown, g) => checkGroup(state, group, g));
  return { format, totalBytes: state.totalBytes, exact: groups.every((g) => g.exact), groups, weightSpecs: state.weightSpecs };
}

/**
 * Checks a flat list of weight specs (what `ModelArtifacts.weightSpecs` holds, e.g. from an IOHandler that is not
 * the library's file loader) as {@link validateModelArtifacts} checks a manifest: names, shapes, dtypes,
 * quantization and the size limit. Returns the bytes the weight data must hold.
 *
 * @param specs The weight specs.
 * @param where Where they came from, quoted in error messages.
 * @param args Limits (only `maxTotalBytes` applies); default 2 GiB.
 * @returns `bytes` the weight data must hold (a lower bound when `exact` is false: string weights).
 * @throws TransferError `MODEL_INVALID` naming the offending spec.
 *
 * @example
 * ```ts
 * const { bytes, exact } = checkWeightSpecs(artifacts.weightSpecs, 'IOHandler');
 * checkWeightData(bytes, weightByteLength(artifacts), 'IOHandler', exact);
 * ```
 * @internal
 */
export function checkWeightSpecs(specs: unknown, where: string, args: ValidateModelArgs = {}): { bytes: number; exact: boolean } {
  if (!Array.isArray(specs)) throw invalid(where, `the weight specs must be an array of { name, shape, dtype }, found ${describe(specs)}.`);
  const state: ManifestState = {
    where,
    maxTotalBytes: args.maxTotalBytes ?? VALIDATE_MODEL_DEFAULTS.maxTotalBytes,
    allowUrlPaths: false,
    names: new Map(),
    seenPaths: new Set(),
    weightSpecs: [],
    totalBytes: 0,
  };
  let bytes = 0;
  let exact = true;
  specs.forEach((spec: unknown, w) => {
    const found = checkWeightSpec(state, spec, `weightSpecs[${w}]`, bytes);
    bytes += found.bytes;
    exact &&= found.exact;
  });
  return { bytes, exact };
}

/**
 * Checks that weight data has the size its manifest promises: refuses truncated data (an interrupted download or
 * copy) and overlong data (shards of another model).
 *
 * @param expectedBytes Bytes the manifest describes (a {@link ValidatedWeightGroup}'s `bytes` or the total).
 * @param actualBytes Bytes found.
 * @param where The file(s) concerned, quoted in the error message.
 * @param exact Whether `expectedBytes` is exact. Default `true`; pass the group's `exact` (false when it holds
 *   string weights, whose size is only a lower bound).
 * @throws TransferError `MODEL_INVALID` when the sizes differ.
 *
 * @example
 * ```ts
 * const { groups } = validateModelArtifacts(json, 'model.json');
 * checkWeightData(groups[0].bytes, shard.byteLength, 'group1-shard1of1.bin', groups[0].exact);
 * ```
 * @internal
 */
export function checkWeightData(expectedBytes: number, actualBytes: number, where: string, exact = true): void {
  if (actualBytes < expectedBytes) {
    throw new TransferError(
      'MODEL_INVALID',
      `Truncated weights at ${where}: the manifest describes ${expectedBytes} bytes${exact ? '' : ' or more'} but only ${actualBytes} ` +
        `(${expectedBytes - actualBytes} missing) are there. The file was probably cut short by an interrupted download, copy or save; ` +
        'copy or download the model again.',
    );
  }
  if (exact && actualBytes > expectedBytes) {
    throw new TransferError(
      'MODEL_INVALID',
      `Weights at ${where} are longer than their manifest: expected ${expectedBytes} bytes, found ${actualBytes} ` +
        `(${actualBytes - expectedBytes} extra). The shard files do not belong to this model.json (mixed-up versions?); ` +
        'keep model.json and its shards from the same export.',
    );
  }
}
