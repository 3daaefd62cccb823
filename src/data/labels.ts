/**
 * Normalising the label forms users have ({@link Labels}) into class indices.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { TransferError, check } from '../errors';
import type { Labels } from '../types';

/**
 * Options for {@link toClassIndices}.
 * @category Step 2: Pipeline
 */
export interface ToClassIndicesArgs {
  /**
   * Class names; label `i` means `classes[i]`. Required to resolve string labels unless `inferClasses` is on,
   * and used to check that numeric labels are in range. Default: none (numeric labels are only checked to be
   * non-negative integers, string labels need `inferClasses`).
   */
  classes?: readonly string[];
  /**
   * Expected number of labels (e.g. the number of images); a different count is an error.
   * @defaultValue not checked
   */
  expectedLength?: number;
  /**
   * When labels are strings and `classes` is not given, take the sorted distinct names as the classes.
   * Default `true`.
   */
  inferClasses?: boolean;
  /**
   * Names the labels in error messages, e.g. `"fromTensors(ys)"`.
   * @defaultValue `"labels"`
   */
  what?: string;
}

/**
 * Result of {@link toClassIndices}.
 * @category Step 2: Pipeline
 */
export interface ClassIndices {
  /** Class index of each label. */
  indices: Int32Array;
  /** Class names: the given `classes`, the inferred ones, or `undefined` for numeric labels without classes. */
  classes: string[] | undefined;
}

function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}

/**
 * Converts labels in any supported form — class indices (`number[]`, typed array, 1-D tensor), class names
 * (`string[]`) or one-hot rows (`[n, numClasses]` tensor) — into int32 class indices, checking every value.
 * Tensors passed in are read, never disposed.
 *
 * @example
 * ```ts
 * const { indices } = toClassIndices(['cat', 'dog', 'cat'], { classes: ['cat', 'dog'] }); // Int32Array [0, 1, 0]
 * const { indices: i2, classes } = toClassIndices(['dog', 'cat']); // [1, 0], classes ['cat', 'dog']
 * ```
 * @category Step 2: Pipeline
 */
export function toClassIndices(labels: Labels, options: ToClassIndicesArgs = {}): ClassIndices {
  const what = options.what ?? 'labels';
  check(options.classes == null || Array.isArray(options.classes), `${what}: classes must be an array of class names, got ${typeof options.classes}.`); // reliability
  const given = options.classes ? [...options.classes] : undefined;
  if (given) checkClassNames(given, `${what}: classes`);
  let indices: Int32Array;
  let classes = given;
  if (isTensor(labels)) {
    indices = tensorIndices(labels, given, what);
  } else if (isStringArray(labels)) {
    if (!classes) {
      check(options.inferClasses ?? true, `${what}: string labels need the class names; pass \`classes\` (e.g. ['cat', 'dog']).`);
      classes = [...new Set(labels)].sort();
    }
    indices = nameIndices(labels, classes, what);
  } else {
    check(
      labels != null && typeof (labels as ArrayLike<number>).length === 'number',
      `${what}: expected class indices, class names, or a one-hot tensor, got ${describe(labels)}.`,
    );
    indices = checkNumeric(labels as ArrayLike<number>, given?.length, what);
  }
  if (options.expectedLength !== undefined) {
    check(
      indices.length === options.expectedLength,
      `${what}: got ${indices.length} labels for ${options.expectedLength} images; give exactly one label per image.`,
    );
  }
  return { indices, classes };
}

/** Class indices of a 1-D index tensor or a 2-D one-hot tensor (each row must sum to 1). */
function tensorIndices(labels: tf.Tensor, given: string[] | undefined, what: string): Int32Array {
  check(labels.dtype !== 'string', `${what}: a string tensor is not supported; pass a string[] of class names instead.`);
  if (labels.rank !== 2) {
    check(
      labels.rank === 1,
      `${what}: expected a 1-D tensor of class indices or a 2-D one-hot tensor, got shape [${labels.shape.join(', ')}].`,
    );
    return checkNumeric(labels.dataSync(), given?.length, what);
  }
  const [n, k] = labels.shape as [number, number];
  if (given) {
    check(
      k === given.length,
      `${what}: one-hot labels have ${k} columns but there are ${given.length} classes (${given.join(', ')}); ` +
        `give one column per class.`,
    );
  }
  const values = labels.dataSync();
  const indices = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const v = values[i * k + j] as number;
      sum += v;
      if (v > (values[i * k + best] as number)) best = j;
    }
    check(Math.abs(sum - 1) < 1e-3, `${what}: row ${i} of the one-hot labels sums to ${sum}, not 1; pass one-hot rows or class indices.`);
    indices[i] = best;
  }
  if (!given) checkNumeric(indices, k, what);
  return indices;
}

/** Class indices of class names; a name not in `classes` is an error. */
function nameIndices(labels: readonly string[], classes: readonly string[], what: string): Int32Array {
  const lookup = new Map(classes.map((name, i) => [name, i] as const));
  const indices = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const name = labels[i] as string;
    const index = lookup.get(name);
    if (index === undefined) {
      throw new TransferError(
        'CLASS_MISMATCH',
        `${what}[${i}] is "${name}", which is not one of the classes (${classes.join(', ')}); ` +
          `fix the label or add "${name}" to \`classes\`.`,
      );
    }
    indices[i] = index;
  }
  return indices;
}

function isStringArray(x: unknown): x is readonly string[] {
  return Array.isArray(x) && x.length > 0 && x.every((v) => typeof v === 'string');
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return `an array of ${typeof x[0]}`;
  return typeof x;
}

function checkNumeric(values: ArrayLike<number>, numClasses: number | undefined, what: string): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    check(
      typeof v === 'number' && Number.isInteger(v) && v >= 0,
      `${what}[${i}] is ${String(v)}; class indices must be non-negative integers (or pass class names).`,
    );
    if (numClasses !== undefined && v >= numClasses) {
      throw new TransferError(
        'CLASS_MISMATCH',
        `${what}[${i}] is ${v}, out of range for ${numClasses} classes (valid: 0..${numClasses - 1}); ` +
          `fix the label or pass the full list of classes.`,
      );
    }
    out[i] = v;
  }
  return out;
}

/** Checks class names are non-empty and distinct. @internal */
export function checkClassNames(classes: readonly string[], what: string): void {
  check(classes.length > 0, `${what}: the list of classes is empty; give at least one class name.`);
  const seen = new Set<string>();
  for (const name of classes) {
    check(typeof name === 'string' && name.length > 0, `${what}: class names must be non-empty strings.`);
    check(!seen.has(name), `${what}: class "${name}" appears twice; class names must be distinct.`);
    seen.add(name);
  }
}
