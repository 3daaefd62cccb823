/**
 * Seeded, stratified train/validation splits.
 * @module
 */
import { check } from '../errors';
import { Random } from '../util/random';
import type { Dataset } from './dataset';

/**
 * Options for {@link splitDataset}.
 * @category Step 2: Pipeline
 */
export interface SplitArgs {
  /**
   * Fraction of the images (of each class, when stratified) that go to validation, in (0, 1).
   * @defaultValue `0.2`
   */
  validationSplit?: number;
  /**
   * Seed of the random choice; the same seed gives the same split.
   * @defaultValue `0`
   */
  seed?: number;
  /**
   * Split every class separately so both parts keep the class proportions (each class with at least 2 images
   * gets at least one validation image and keeps at least one training image). Default `true`.
   */
  stratify?: boolean;
}

/**
 * The two parts of a {@link splitDataset}.
 * @category Step 2: Pipeline
 */
export interface DatasetSplit {
  /** The images kept for training. */
  train: Dataset;
  /** The images held out for validation (`validationSplit` of each class when stratified). */
  validation: Dataset;
}

/**
 * Seeded split of positions `0..labels.length-1` into training and validation, stratified by label when asked:
 * each class gives `round(size * fraction)` of its images to validation, at least one and never all of a class
 * with two or more. Both lists come back in ascending order. @internal
 */
export function splitIndices(labels: ArrayLike<number>, fraction: number, random: Random, stratify = true): { train: number[]; validation: number[] } {
  const n = labels.length;
  const validation: number[] = [];
  if (stratify) {
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const list = byClass.get(labels[i]!) ?? [];
      list.push(i);
      byClass.set(labels[i]!, list);
    }
    for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
      const members = random.shuffle(byClass.get(label) as number[]);
      let take = Math.round(members.length * fraction);
      if (members.length >= 2) take = Math.min(members.length - 1, Math.max(1, take));
      validation.push(...members.slice(0, take));
    }
  } else {
    const order = random.shuffle(Array.from({ length: n }, (_, i) => i));
    validation.push(...order.slice(0, Math.min(n - 1, Math.max(1, Math.round(n * fraction)))));
  }
  const inValidation = new Set(validation);
  const train = Array.from({ length: n }, (_, i) => i).filter((i) => !inValidation.has(i));
  return { train, validation: validation.sort((a, b) => a - b) };
}

/**
 * Splits a dataset into training and validation parts, seeded and (by default) stratified by class. Both parts
 * keep the original order of their images. Nothing is decoded.
 *
 * @example
 * ```ts
 * const { train, validation } = splitDataset(all, { validationSplit: 0.2, seed: 1 });
 * ```
 * @category Step 2: Pipeline
 */
export function splitDataset(dataset: Dataset, options: SplitArgs = {}): DatasetSplit {
  const fraction = options.validationSplit ?? 0.2;
  check(
    typeof fraction === 'number' && fraction > 0 && fraction < 1,
    `splitDataset: validationSplit must be a fraction strictly between 0 and 1, got ${String(fraction)}.`,
  );
  check(dataset.size >= 2, `splitDataset: "${dataset.name}" has ${dataset.size} image(s); a split needs at least 2.`);
  const { train, validation } = splitIndices(dataset.labels, fraction, new Random(options.seed ?? 0), options.stratify ?? true);
  return { train: dataset.subset(train, 'train'), validation: dataset.subset(validation, 'validation') };
}
