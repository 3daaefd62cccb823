/**
 * Step 1 of the workflow: look at the data before training. Browser-safe.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dataset, SkippedImage } from '../data/dataset';
import { toClassIndices } from '../data/labels';
import { env } from '../env';
import { check } from '../errors';
import type { ImageDataset, TensorData } from '../types';

/**
 * Something `examine` accepts as one split.
 * @category Step 1: Examine
 */
export type ExaminableSplit = Dataset | ImageDataset | TensorData;

/**
 * Data with separate splits, e.g. what `imageFolder` returns.
 * @category Step 1: Examine
 */
export interface ExaminableSplits {
  /** The training images. */
  train: ExaminableSplit;
  /** The validation images, if any. */
  validation?: ExaminableSplit;
  /**
   * Files left out while loading (as `imageFolder` returns them).
   * @defaultValue the datasets' own `skipped`
   */
  skipped?: readonly SkippedImage[];
  /**
   * Notices from loading (as `imageFolder` returns them).
   * @defaultValue none
   */
  warnings?: readonly string[];
}

/**
 * Options of {@link examine}.
 * @category Step 1: Examine
 */
export interface ExamineArgs {
  /**
   * Warn when the largest class has more than this many times the images of the smallest.
   * @defaultValue `1.5` ({@link EXAMINE_DEFAULTS})
   */
  imbalanceThreshold?: number;
  /**
   * Print the report through `env.logger`.
   * @defaultValue `env.verbose`
   */
  verbose?: boolean;
  /**
   * How many duplicates and skipped files the printed report lists before "... and N more".
   * @defaultValue `10` ({@link EXAMINE_DEFAULTS})
   */
  maxListed?: number;
}

/**
 * Per-split facts in an {@link ExamineReport}.
 * @category Step 1: Examine
 */
export interface SplitReport {
  /** `'train'`, `'validation'`, or the dataset's name. */
  name: string;
  /** Number of images. */
  total: number;
  /** Images per class, in class order. */
  counts: number[];
  /** Largest class count divided by the smallest (`Infinity` if a class has no images). */
  imbalanceRatio: number;
}

/**
 * Minimum, median and maximum of a quantity.
 * @category Step 1: Examine
 */
export interface Stats {
  /** The smallest value. */
  min: number;
  /** The middle value (the mean of the two middle values for an even count). */
  median: number;
  /** The largest value. */
  max: number;
}

/**
 * A pair of identical images (same content hash) found in both training and validation.
 * @category Step 1: Examine
 */
export interface DuplicatePair {
  /** The shared content key. */
  key: string;
  /** Where the image is in the training data (a file path). */
  train: string;
  /** Where the same image is in the validation data (a file path). */
  validation: string;
}

/**
 * One copy of an image in a {@link DuplicateGroup}.
 * @category Step 1: Examine
 */
export interface DuplicateImage {
  /** The split it is in (`'train'`, `'validation'`, or the dataset's name). */
  split: string;
  /** Where it is (a file path). */
  source: string;
  /** Its class. */
  label: string;
}

/**
 * Images with the same content (content hash), whatever their file names.
 * @category Step 1: Examine
 */
export interface DuplicateGroup {
  /** The shared content key. */
  key: string;
  /** Every copy, in split then data order. */
  images: DuplicateImage[];
  /** The distinct classes of the copies (more than one: the same image is labelled two ways). */
  classes: string[];
}

/**
 * What {@link examine} found.
 * @category Step 1: Examine
 */
export interface ExamineReport {
  /** Class names. */
  classes: string[];
  /** Counts per split. */
  splits: SplitReport[];
  /** Image widths and heights over all splits, when the sizes are known (from headers or tensor shapes). */
  sizes?: {
    /** How many images have a known size. */
    count: number;
    /** Widths in pixels. */
    width: Stats;
    /** Heights in pixels. */
    height: Stats;
  };
  /** Images per format (`jpeg`, `png`, `tensor`, ...), when known. */
  formats?: Record<string, number>;
  /**
   * Images present in both training and validation (by content hash), which inflate validation scores.
   * `undefined` when the data has no content keys (tensors, browser images).
   */
  duplicates?: DuplicatePair[];
  /**
   * The same image (by content hash) under more than one class, e.g. a cat photo copied into `dogs/`, in any
   * splits: a mislabelled copy teaches the model both labels. `undefined` without content keys.
   */
  crossClassDuplicates?: DuplicateGroup[];
  /**
   * The same image (by content hash) more than once in one class of one split: the copies count double in
   * training (or evaluation). `undefined` without content keys.
   */
  withinClassDuplicates?: DuplicateGroup[];
  /** Files that could not be used, with the reason for each (hidden and system files excluded). */
  skipped: SkippedImage[];
  /** How many hidden or system files (`.DS_Store`, `Thumbs.db`, ...) were ignored. */
  ignored: number;
  /** Things to look at: imbalance, duplicates, skipped files, missing classes, tiny images. */
  warnings: string[];
}

function isSplits(data: unknown): data is ExaminableSplits {
  return typeof data === 'object' && data !== null && 'train' in data && !('batches' in data) && !('xs' in data);
}

function isTensorData(data: ExaminableSplit): data is TensorData {
  return 'xs' in data && data.xs instanceof tf.Tensor;
}

function asDataset(data: ExaminableSplit): Dataset | undefined {
  return 'sources' in data && 'skipped' in data ? (data as Dataset) : undefined;
}

function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { min: sorted[0] as number, median, max: sorted[sorted.length - 1] as number };
}

/**
 * The defaults of {@link examine}'s options.
 * @category Step 1: Examine
 */
export const EXAMINE_DEFAULTS = Object.freeze({
  /** Warn when the largest class has more than this many times the images of the smallest. */
  imbalanceThreshold: 1.5,
  /** Duplicates and skipped files the printed report lists before "... and N more". */
  maxListed: 10,
});

/** What the per-split pass collects over all splits. */
interface Tally {
  classes: string[] | undefined;
  splits: SplitReport[];
  widths: number[];
  heights: number[];
  formats: Record<string, number>;
  sizeKnown: boolean;
  warnings: string[];
  skipped: Set<SkippedImage>;
}

function namedSplits(data: ExaminableSplits | ExaminableSplit): { name: string; data: ExaminableSplit }[] {
  if (isSplits(data)) {
    return [{ name: 'train', data: data.train }, ...(data.validation ? [{ name: 'validation', data: data.validation }] : [])];
  }
  return [{ name: asDataset(data)?.name ?? 'data', data }];
}

/** Labels and class names of tensor data; records its sizes and format. */
function tallyTensors(t: Tally, name: string, split: TensorData): { labels: ArrayLike<number>; classes: string[] } {
  const r = toClassIndices(split.ys, { classes: t.classes, expectedLength: split.xs.shape[0], what: `examine: ${name} ys` });
  const width = split.ys instanceof tf.Tensor && split.ys.rank === 2 ? (split.ys.shape[1] as number) : Math.max(-1, ...r.indices) + 1;
  const classes = r.classes ?? t.classes ?? Array.from({ length: width }, (_, i) => String(i));
  const [n, h, w] = split.xs.shape;
  for (let i = 0; i < n; i++) {
    t.widths.push(w);
    t.heights.push(h);
  }
  t.formats.tensor = (t.formats.tensor ?? 0) + n;
  return { labels: r.indices, classes };
}

/** Labels and class names of a dataset; records its sizes, formats and skipped files. */
function tallyDataset(t: Tally, split: Dataset | ImageDataset): { labels: ArrayLike<number>; classes: string[] } {
  const ds = asDataset(split);
  for (const s of ds?.skipped ?? []) t.skipped.add(s);
  if (ds?.info) {
    for (const item of ds.info) {
      if (item?.width && item.height) {
        t.widths.push(item.width);
        t.heights.push(item.height);
      } else t.sizeKnown = false;
      if (item?.format) t.formats[item.format] = (t.formats[item.format] ?? 0) + 1;
    }
  } else if (ds?.imageSize) {
    for (let i = 0; i < split.size; i++) {
      t.widths.push(ds.imageSize[1]);
      t.heights.push(ds.imageSize[0]);
    }
  } else t.sizeKnown = false;
  return { labels: split.labels, classes: [...split.classes] };
}

/** Counts one split's classes and warns about missing classes and imbalance. */
function tallySplit(t: Tally, name: string, split: ExaminableSplit, threshold: number): void {
  const { labels, classes: splitClasses } = isTensorData(split) ? tallyTensors(t, name, split) : tallyDataset(t, split);
  if (!t.classes) t.classes = splitClasses;
  else if (splitClasses.join('\u0000') !== t.classes.join('\u0000')) {
    t.warnings.push(`${name} has different classes (${splitClasses.join(', ')}) from train (${t.classes.join(', ')})`);
  }
  const classes = t.classes;
  const counts = new Array<number>(classes.length).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i] as number;
    if (l < counts.length) counts[l] = (counts[l] as number) + 1;
  }
  const max = Math.max(...counts);
  const min = Math.min(...counts);
  const ratio = counts.length === 0 ? 1 : min === 0 ? (max === 0 ? 1 : Infinity) : max / min;
  t.splits.push({ name, total: labels.length, counts, imbalanceRatio: ratio });
  counts.forEach((c, i) => {
    if (c === 0) t.warnings.push(`class "${classes[i]}" has no images in ${name}`);
  });
  if (ratio > threshold && Number.isFinite(ratio)) {
    t.warnings.push(
      `${name} is imbalanced: "${classes[counts.indexOf(max)]}" has ${max} images, "${classes[counts.indexOf(min)]}" ${min} ` +
        `(ratio ${ratio.toFixed(1)} > ${threshold}); consider class weights, more data, or resampling`,
    );
  }
}

/** Validation images whose content key is also in training; `undefined` without content keys. */
function findDuplicates(train: Dataset | undefined, validation: Dataset | undefined): DuplicatePair[] | undefined {
  if (!train?.keys || !validation?.keys) return undefined;
  const trainByKey = new Map<string, string>();
  train.keys.forEach((k, i) => trainByKey.set(k, train.sources[i] as string));
  const duplicates: DuplicatePair[] = [];
  validation.keys.forEach((k, i) => {
    const t = trainByKey.get(k);
    if (t !== undefined) duplicates.push({ key: k, train: t, validation: validation.sources[i] as string });
  });
  return duplicates;
}

/**
 * Groups of images with the same content over every split: those under more than one class, and those repeated
 * within one class of one split (a copy in train and one in validation of the same class is a leak, reported by
 * `findDuplicates`). `undefined` when a split has no content keys.
 */
function findContentDuplicates(
  splits: { name: string; data: ExaminableSplit }[],
): { crossClass: DuplicateGroup[]; withinClass: DuplicateGroup[] } | undefined {
  const byKey = new Map<string, DuplicateImage[]>();
  for (const { name, data } of splits) {
    const ds = asDataset(data);
    if (!ds?.keys) return undefined;
    ds.keys.forEach((key, i) => {
      const image: DuplicateImage = { split: name, source: ds.sources[i] as string, label: ds.classes[ds.labels[i] as number] ?? String(ds.labels[i]) };
      const list = byKey.get(key);
      if (list) list.push(image);
      else byKey.set(key, [image]);
    });
  }
  const crossClass: DuplicateGroup[] = [];
  const withinClass: DuplicateGroup[] = [];
  for (const [key, images] of byKey) {
    if (images.length < 2) continue;
    const classes = [...new Set(images.map((im) => im.label))];
    if (classes.length > 1) crossClass.push({ key, images, classes });
    else if (new Set(images.map((im) => im.split)).size < images.length) withinClass.push({ key, images, classes });
  }
  return { crossClass, withinClass };
}

/** The warnings about content duplicates (see {@link findContentDuplicates}). */
function contentDuplicateWarnings(found: { crossClass: DuplicateGroup[]; withinClass: DuplicateGroup[] }): string[] {
  const warnings: string[] = [];
  const { crossClass, withinClass } = found;
  if (crossClass.length > 0) {
    const first = crossClass[0]!;
    warnings.push(
      `${crossClass.length} image(s) appear under more than one class (same content), e.g. ${first.images.map((im) => `${im.source} (${im.label})`).join(' == ')}: ` +
        'a mislabelled copy teaches the model both labels; keep only the copy in the right class',
    );
  }
  if (withinClass.length > 0) {
    const extra = withinClass.reduce((n, g) => n + g.images.length - new Set(g.images.map((im) => im.split)).size, 0);
    warnings.push(
      `${extra} duplicate image(s) within a class (same content, ${withinClass.length} group(s)), e.g. ${withinClass[0]!.images.map((im) => im.source).join(' == ')}: ` +
        'the copies count more than once; delete them',
    );
  }
  return warnings;
}

/** Whether {@link examine} prints: `verbose` when given, else `env.verbose`. */
function shouldPrint(args: ExamineArgs): boolean {
  return args.verbose ?? env.verbose;
}

/**
 * Looks at labelled images the way a careful practitioner does before training: classes and counts per split,
 * class imbalance, image sizes, formats, duplicates by content hash (between training and validation, under more
 * than one class, and within a class), and the files that could not be read with the reason for each. Reads only labels and headers: nothing is decoded.
 * Prints the report (through `env.logger`) when `verbose`, which defaults to `env.verbose`.
 *
 * @category Step 1: Examine
 * @param data A dataset, tensors, or `{ train, validation }` (e.g. what `imageFolder` returns).
 * @example
 * ```ts
 * const data = await imageFolder('photos');
 * const report = examine(data); // prints classes, counts, sizes, duplicates, skipped files
 * if (report.duplicates?.length) console.warn('validation overlaps training');
 * ```
 */
export function examine(data: ExaminableSplits | ExaminableSplit, options: ExamineArgs = {}): ExamineReport {
  check(data != null && typeof data === 'object', 'examine: pass a dataset, { xs, ys } tensors, or { train, validation }.');
  check(options.verbose == null || typeof options.verbose === 'boolean', `examine: verbose must be true or false, got ${JSON.stringify(options.verbose)}.`);
  const threshold = options.imbalanceThreshold ?? EXAMINE_DEFAULTS.imbalanceThreshold;
  check(threshold >= 1, `examine: imbalanceThreshold must be at least 1, got ${threshold}.`);
  const splits = namedSplits(data);
  const t: Tally = {
    classes: undefined,
    splits: [],
    widths: [],
    heights: [],
    formats: {},
    sizeKnown: true,
    warnings: [...(isSplits(data) ? (data.warnings ?? []) : [])],
    skipped: new Set<SkippedImage>(isSplits(data) ? (data.skipped ?? []) : []),
  };
  for (const { name, data: split } of splits) tallySplit(t, name, split, threshold);
  const { classes, warnings } = t;
  if (classes && classes.length === 1) warnings.push(`only one class ("${classes[0]}"): a classifier needs two or more`);

  const duplicates = findDuplicates(asDataset(splits[0]!.data), splits[1] ? asDataset(splits[1].data) : undefined);
  if (duplicates && duplicates.length > 0) {
    warnings.push(
      `${duplicates.length} validation image(s) also appear in train (same content); they make validation ` +
        `scores look better than they are: remove them from one side`,
    );
  }
  const content = findContentDuplicates(splits);
  if (content) warnings.push(...contentDuplicateWarnings(content));
  const allSkipped = [...t.skipped];
  const skipped = allSkipped.filter((s) => !s.ignored);
  if (skipped.length > 0) warnings.push(`${skipped.length} file(s) could not be used; see the list of skipped files`);

  const report: ExamineReport = { classes: classes ?? [], splits: t.splits, skipped, ignored: allSkipped.length - skipped.length, warnings };
  if (t.sizeKnown && t.widths.length > 0) {
    report.sizes = { count: t.widths.length, width: stats(t.widths), height: stats(t.heights) };
    const small = t.widths.filter((w, i) => Math.min(w, t.heights[i] as number) < 32).length;
    if (small > 0) warnings.push(`${small} image(s) are smaller than 32 pixels on a side`);
  }
  if (Object.keys(t.formats).length > 0) report.formats = t.formats;
  if (duplicates) report.duplicates = duplicates;
  if (content) {
    report.crossClassDuplicates = content.crossClass;
    report.withinClassDuplicates = content.withinClass;
  }
  if (shouldPrint(options)) env.logger(formatReport(report, { maxListed: options.maxListed }));
  return report;
}

/**
 * Renders an {@link ExamineReport} as readable text (what `examine` prints).
 *
 * @example
 * ```ts
 * const text = formatReport(examine(data, { verbose: false }));
 * ```
 * @category Step 1: Examine
 */
export function formatReport(report: ExamineReport, options: { maxListed?: number } = {}): string {
  const maxListed = options.maxListed ?? EXAMINE_DEFAULTS.maxListed;
  const lines: string[] = [];
  const classes = report.classes;
  lines.push(`Classes (${classes.length}): ${classes.join(', ')}`);
  const nameWidth = Math.max(5, ...classes.map((c) => c.length));
  const header = ['class'.padEnd(nameWidth), ...report.splits.map((s) => s.name.padStart(10))].join('  ');
  lines.push(header);
  classes.forEach((c, i) => {
    lines.push([c.padEnd(nameWidth), ...report.splits.map((s) => String(s.counts[i] ?? 0).padStart(10))].join('  '));
  });
  lines.push(['total'.padEnd(nameWidth), ...report.splits.map((s) => String(s.total).padStart(10))].join('  '));
  lines.push(
    `Imbalance (largest / smallest class): ${report.splits
      .map((s) => `${s.name} ${Number.isFinite(s.imbalanceRatio) ? s.imbalanceRatio.toFixed(2) : 'inf'}`)
      .join(', ')}`,
  );
  if (report.sizes) {
    const { width, height, count } = report.sizes;
    lines.push(
      `Image sizes (${count}): width min ${width.min} / median ${width.median} / max ${width.max}, ` +
        `height min ${height.min} / median ${height.median} / max ${height.max}`,
    );
  } else {
    lines.push('Image sizes: unknown (not read from headers)');
  }
  if (report.formats) {
    lines.push(`Formats: ${Object.entries(report.formats).map(([f, n]) => `${f} ${n}`).join(', ')}`);
  }
  if (report.duplicates) {
    lines.push(`Duplicates across train and validation: ${report.duplicates.length}`);
    for (const d of report.duplicates.slice(0, maxListed)) lines.push(`  ${d.train} == ${d.validation}`);
    if (report.duplicates.length > maxListed) lines.push(`  ... and ${report.duplicates.length - maxListed} more`);
  }
  for (const [title, groups] of [
    ['Same image in more than one class', report.crossClassDuplicates],
    ['Duplicates within a class', report.withinClassDuplicates],
  ] as const) {
    if (!groups || groups.length === 0) continue;
    lines.push(`${title}: ${groups.length}`);
    for (const g of groups.slice(0, maxListed)) lines.push(`  ${g.images.map((im) => `${im.source} (${im.label}, ${im.split})`).join(' == ')}`);
    if (groups.length > maxListed) lines.push(`  ... and ${groups.length - maxListed} more`);
  }
  lines.push(
    `Skipped files: ${report.skipped.length}${report.ignored ? ` (plus ${report.ignored} hidden/system/other files ignored)` : ''}`,
  );
  for (const s of report.skipped.slice(0, maxListed)) lines.push(`  ${s.source}: ${s.reason}`);
  if (report.skipped.length > maxListed) lines.push(`  ... and ${report.skipped.length - maxListed} more`);
  if (report.warnings.length > 0) {
    lines.push('Warnings:');
    for (const w of report.warnings) lines.push(`  - ${w}`);
  }
  return lines.join('\n');
}
