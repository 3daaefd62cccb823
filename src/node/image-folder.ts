/**
 * Image folders in the layout Keras' `image_dataset_from_directory` uses, streamed through the pipeline.
 * @module
 */
import type { Dirent } from 'node:fs';
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { AugmentArgs } from '../data/augment';
import { type Dataset, type ImageInfo, type SkippedImage, createDataset, limiter } from '../data/dataset';
import { checkClassNames } from '../data/labels';
import { RESIZE_FITS, type ResizeFit } from '../data/resize';
import { splitDataset } from '../data/split';
import { env } from '../env';
import { TransferError, check, throwIfAborted } from '../errors';
import type { ImageSize, ProgressCallback } from '../types';
import {
  DEFAULT_MAX_PIXELS,
  type ImageFormat,
  SUPPORTED_FORMATS,
  decodeImage,
  defaultConcurrency,
  mayBeTruncated,
  readImageHeader,
} from './decode';
import { contentHash } from './hash';
import { type ProgressArgs, createProgress } from './progress';

/**
 * Options for {@link imageFolder}.
 * @category Step 2: Pipeline
 */
export interface ImageFolderArgs {
  /**
   * Class names, in label order; each must be a folder. Folders not listed are left out (and named in
   * `warnings`). Default: every class folder's name, sorted (like Keras).
   */
  classes?: readonly string[];
  /**
   * `'classes'`: `dir/<class>/*`; `'split'`: `dir/train/<class>/*` and `dir/validation/<class>/*` (`val/` and
   * `valid/` are also accepted). Default `'auto'`: `'split'` when `dir` has a `train` folder and a validation
   * folder, else `'classes'`.
   */
  layout?: 'auto' | 'classes' | 'split';
  /**
   * With the `'classes'` layout, the fraction of each class held out for validation (seeded, stratified); `0` for
   * none. Ignored with the `'split'` layout, whose folders decide. Default `0.2`.
   */
  validationSplit?: number;
  /**
   * Seed of the validation split.
   * @defaultValue `0`
   */
  seed?: number;
  /**
   * Size batches are resized to, `[height, width]` (the backbone's input size); `batches({ size })` overrides it.
   * Default: none, so `batches()` needs `size` unless every image has the same size.
   */
  size?: ImageSize;
  /**
   * How a different aspect ratio is fitted into `size`.
   * @defaultValue `'squash'` (like Keras)
   */
  fit?: ResizeFit;
  /**
   * Images decoded at once (sharp runs them on libuv's thread pool; measured faster here than a pool of
   * worker_threads). `1` decodes on one core. Default: 2 per core, at most `UV_THREADPOOL_SIZE` (4).
   */
  concurrency?: number;
  /**
   * Stops the scan (listing, reading and hashing every file) within one file; `imageFolder` then rejects with an
   * `AbortError` (`code: 'ABORTED'`). To stop streaming batches later, pass a signal to `batches()`.
   * @defaultValue none
   */
  signal?: AbortSignal;
  /**
   * Batches decoded ahead of the consumer; memory holds at most `(prefetch + 1) * batchSize` images.
   * @defaultValue `2`
   */
  prefetch?: number;
  /**
   * Refuse images above this many pixels, read from the header before decoding.
   * @defaultValue 50 000 000
   */
  maxPixels?: number;
  /**
   * Formats accepted (by content, not extension).
   * @defaultValue all of `'jpeg'`, `'png'`, `'webp'`, `'gif'`, `'bmp'`
   */
  formats?: readonly ImageFormat[];
  /**
   * Also look in folders nested inside class folders (Keras does).
   * @defaultValue `true`
   */
  recursive?: boolean;
  /**
   * Follow symbolic links (loops are detected and skipped).
   * @defaultValue `true`
   */
  followSymlinks?: boolean;
  /**
   * Decode every image completely while scanning, so corrupt files are found before training. Default `false`:
   * only the header is read, plus a full decode of files whose end marker is missing (likely truncated); other
   * files that fail later are skipped and recorded when batches run.
   */
  verify?: boolean;
  /**
   * Make any unreadable, unsupported or misplaced file an error (hidden and system files such as `.DS_Store` and
   * `Thumbs.db` are still just ignored). Default `false`: skip it, count it, and list it in `skipped`.
   */
  strict?: boolean;
  /**
   * What to do with a class left with no usable training image. Default `false`: when every file of a class was
   * skipped (unreadable, corrupt, unsupported), `imageFolder` throws `EMPTY_DATA` naming the class, its folder and
   * why its files were skipped (a class folder with no files at all is a warning, and `fit` refuses it). `true`:
   * leave every class without a usable training image out of `classes` (labels are renumbered), with a warning.
   * @defaultValue `false`
   */
  dropEmptyClasses?: boolean;
  /**
   * Augmentation used by `batches({ augment: true })`.
   * @defaultValue the {@link AugmentArgs} defaults
   */
  augment?: AugmentArgs;
  /**
   * Called as the scan advances.
   * @defaultValue none
   */
  onProgress?: ProgressCallback;
  /**
   * Log notices (warnings, the number of skipped files) through `env.logger`, and allow the scan's progress bar.
   * @defaultValue `env.verbose`
   */
  verbose?: boolean;
  /**
   * Draw a progress bar on stderr while scanning.
   * @defaultValue `verbose` and stderr is a terminal (TTY)
   */
  progressBar?: boolean;
  /**
   * Called for each file skipped while batches run (it is also logged and added to `skipped`).
   * @defaultValue none
   */
  onSkip?: (skipped: SkippedImage) => void;
}

/**
 * What {@link imageFolder} found.
 * @category Step 2: Pipeline
 */
export interface ImageFolder {
  /** Training images (all images, with the `'classes'` layout and `validationSplit: 0`). */
  train: Dataset;
  /** Validation images: the validation folder, or the held-out split. */
  validation: Dataset | undefined;
  /** Class names; label `i` means `classes[i]`. */
  classes: readonly string[];
  /**
   * Every file left out with the reason, from the scan and, later, from batches (it grows while batches run).
   * Hidden and system files are listed with `ignored: true`.
   */
  skipped: readonly SkippedImage[];
  /** Things worth a look that are not errors: empty class folders, a single class, folders left out. */
  warnings: readonly string[];
  /** The folder, as an absolute path. */
  root: string;
  /** The layout that was used. */
  layout: 'classes' | 'split';
}

const SYSTEM_FILES = new Set(['thumbs.db', 'desktop.ini', 'ehthumbs.db', '.ds_store', 'icon\r']);
const SYSTEM_DIRS = new Set(['__macosx', '@eadir', '$recycle.bin', 'system volume information']);
const TRAIN_DIRS = ['train'];
const IMAGE_EXTENSION = /\.(jpe?g|jfif|png|webp|gif|bmp|tiff?|heic|heif|avif)$/i;
const VALIDATION_DIRS = ['validation', 'val', 'valid'];

function isIgnoredName(name: string, isDir: boolean): boolean {
  const lower = name.toLowerCase();
  return name.startsWith('.') || (isDir ? SYSTEM_DIRS.has(lower) : SYSTEM_FILES.has(lower));
}

interface Candidate {
  path: string;
  label: number;
}

interface ScannedImage extends Candidate {
  key: string;
  info: ImageInfo;
}

/**
 * Lists an image folder and returns streaming datasets over it. Labels come from folder names (`dir/<class>/*`,
 * or `dir/train/<class>` + `dir/validation/<class>`). Only headers are read up front (format, size, content hash,
 * pixel limit); pixels are decoded batch by batch with sharp, using every core, so memory stays bounded however
 * large the folder. Files that cannot be used are skipped and listed (or, with `strict`, are an error).
 *
 * @param dir The folder.
 * @example
 * ```ts
 * import { imageFolder } from 'tfjs-transfer/node';
 * const { train, validation, classes, skipped } = await imageFolder('photos', { size: [224, 224] });
 * for await (const { xs, ys } of train.batches({ batchSize: 32, shuffle: true, augment: true })) {
 *   // ... xs: raw 0..255 pixels [32, 224, 224, 3]; dispose xs and ys when done
 * }
 * ```
 * @category Step 2: Pipeline
 */
export async function imageFolder(dir: string, options: ImageFolderArgs = {}): Promise<ImageFolder> {
  check(typeof dir === 'string' && dir.length > 0, 'imageFolder: pass the path of a folder of class folders.');
  const root = resolve(dir);
  validateOptions(options);
  throwIfAborted(options.signal, 'imageFolder');
  await checkIsFolder(root);
  const verbose = options.verbose ?? env.verbose;
  const ctx: ScanContext = { options, skipped: [], visited: new Set() };
  const warnings: string[] = [];
  const rootEntries = await readdir(root, { withFileTypes: true });
  const shape = findLayout(ctx, root, rootEntries);
  const classDirs = await findClassDirs(ctx, root, rootEntries, shape.splitRoots);
  let classes = chooseClasses(root, classDirs, options.classes, warnings);
  if (shape.layout === 'split') {
    for (const d of classDirs) for (const c of classes) if (!d.classes.has(c)) warnings.push(`class "${c}" has no folder in ${d.split}`);
  }
  const candidates = await findCandidates(ctx, root, shape.splitRoots, classDirs, classes);
  const progressBar = options.progressBar ?? (verbose && Boolean(process.stderr.isTTY));
  const found = await scanCandidates(ctx, candidates, classes, { onProgress: options.onProgress, bar: progressBar });
  const { scanned, classes: kept } = checkEmptyClasses(ctx, shape, classDirs, found, classes, warnings);
  classes = kept;
  checkScan(ctx, root, scanned, classes, shape.layout, warnings);
  if (verbose) {
    for (const w of warnings) env.logger(`tfjs-transfer: imageFolder: ${w}`);
    const problems = ctx.skipped.filter((s) => !s.ignored).length;
    if (problems > 0) env.logger(`tfjs-transfer: imageFolder: skipped ${problems} file(s) in ${root}; see \`skipped\` (or examine()).`);
  }
  const { train, validation } = makeSplits(ctx, root, shape, scanned, classes);
  return { train, validation, classes, skipped: ctx.skipped, warnings, root, layout: shape.layout };
}

async function checkIsFolder(root: string): Promise<void> {
  let rootStat;
  try {
    rootStat = await stat(root);
  } catch (error) {
    throw new TransferError(
      'INVALID_ARGUMENT',
      `imageFolder: cannot open "${root}" (${(error as NodeJS.ErrnoException).code ?? String(error)}); check the path.`,
      { cause: error },
    );
  }
  check(rootStat.isDirectory(), `imageFolder: "${root}" is a file, not a folder; pass the folder of class folders.`);
}

/** The folder's layout and the roots of its splits. */
interface Layout {
  layout: 'classes' | 'split';
  /** `train` folder's name, with the split layout. */
  trainName?: string;
  splitRoots: { name: string; path: string }[];
}

/** Decides the layout; with the split layout, records what beside `train/` and `validation/` is not read. */
function findLayout(ctx: ScanContext, root: string, rootEntries: Dirent[]): Layout {
  const dirNames = new Set(rootEntries.filter((e) => isDirLike(e)).map((e) => e.name));
  const trainName = TRAIN_DIRS.find((n) => dirNames.has(n));
  const validationName = VALIDATION_DIRS.find((n) => dirNames.has(n));
  const wanted = ctx.options.layout;
  const layout = wanted === 'split' || (wanted !== 'classes' && trainName !== undefined && validationName !== undefined) ? 'split' : 'classes';
  if (layout === 'classes') return { layout, splitRoots: [{ name: 'all', path: root }] };
  check(
    trainName !== undefined && validationName !== undefined,
    `imageFolder: layout 'split' needs "${root}/train" and "${root}/validation" folders; found ` +
      `${[...dirNames].join(', ') || 'no folders'}.`,
  );
  for (const e of rootEntries) {
    if (e.name === trainName || e.name === validationName) continue;
    recordSkip(ctx, join(root, e.name), `not used: with the train/validation layout only "${trainName}" and ` +
      `"${validationName}" are read`, isIgnoredName(e.name, isDirLike(e)) || (!isDirLike(e) && !IMAGE_EXTENSION.test(e.name)));
  }
  return {
    layout,
    trainName,
    splitRoots: [
      { name: 'train', path: join(root, trainName as string) },
      { name: 'validation', path: join(root, validationName as string) },
    ],
  };
}

interface ClassDirs {
  split: string;
  path: string;
  classes: Map<string, string>;
}

/** The class folders of each split; anything else at that level is recorded as skipped. */
async function findClassDirs(ctx: ScanContext, root: string, rootEntries: Dirent[], splitRoots: Layout['splitRoots']): Promise<ClassDirs[]> {
  const classDirs: ClassDirs[] = [];
  for (const split of splitRoots) {
    const entries = split.path === root ? rootEntries : await readdir(split.path, { withFileTypes: true });
    const classes = new Map<string, string>();
    for (const e of entries) {
      const path = join(split.path, e.name);
      if (isIgnoredName(e.name, isDirLike(e))) {
        recordSkip(ctx, path, 'hidden or system file', true);
      } else if (await isDirectory(path, e)) {
        classes.set(e.name, path);
      } else if (IMAGE_EXTENSION.test(e.name)) {
        recordSkip(ctx, path, `image outside any class folder; move it into a class folder (${displayPath(split.path)}/<class>/)`);
      } else {
        recordSkip(ctx, path, 'not in a class folder and not an image (e.g. a README or checksum file)', true);
      }
    }
    classDirs.push({ split: split.name, path: split.path, classes });
  }
  return classDirs;
}

/** The class names in label order: `wanted` (each must have a folder), else every folder's name, sorted. */
function chooseClasses(root: string, classDirs: ClassDirs[], wanted: readonly string[] | undefined, warnings: string[]): string[] {
  const found = [...new Set(classDirs.flatMap((d) => [...d.classes.keys()]))].sort();
  const classes = wanted ? [...wanted] : found;
  if (wanted) {
    const missing = classes.filter((c) => !found.includes(c));
    if (missing.length > 0) {
      throw new TransferError(
        'CLASS_MISMATCH',
        `imageFolder: no folder for class${missing.length > 1 ? 'es' : ''} ${missing.map((c) => `"${c}"`).join(', ')} ` +
          `in "${root}" (found: ${found.join(', ') || 'none'}); fix \`classes\` or add the folders.`,
      );
    }
    const extra = found.filter((c) => !classes.includes(c));
    if (extra.length > 0) warnings.push(`folders not in \`classes\` were left out: ${extra.join(', ')}`);
  }
  if (classes.length === 0) {
    throw new TransferError(
      'EMPTY_DATA',
      `imageFolder: "${root}" has no class folders; put each class's images in its own folder ` +
        `(${root}/<class>/image.jpg).`,
    );
  }
  return classes;
}

/** Every file under the class folders, per split. Folders of the layout itself are reserved, so a link back to one is a loop. */
async function findCandidates(
  ctx: ScanContext,
  root: string,
  splitRoots: Layout['splitRoots'],
  classDirs: ClassDirs[],
  classes: readonly string[],
): Promise<Map<string, Candidate[]>> {
  for (const path of [root, ...splitRoots.map((r) => r.path), ...classDirs.flatMap((d) => [...d.classes.values()])]) {
    try {
      ctx.visited.add(await realpath(path));
    } catch {
      // unreadable class folders are reported by walk()
    }
  }
  const candidates = new Map<string, Candidate[]>(splitRoots.map((s) => [s.name, []]));
  for (const d of classDirs) {
    for (const [name, path] of d.classes) {
      const label = classes.indexOf(name);
      if (label < 0) continue;
      await walk(ctx, path, name, (file) => candidates.get(d.split)?.push({ path: file, label }), true);
    }
  }
  return candidates;
}

/** Scans each file (read, hash, sniff, header, pixel limit), reporting progress; keeps the usable ones. */
async function scanCandidates(
  ctx: ScanContext,
  candidates: Map<string, Candidate[]>,
  classes: readonly string[],
  progressArgs: ProgressArgs,
): Promise<Map<string, ScannedImage[]>> {
  const total = [...candidates.values()].reduce((sum, list) => sum + list.length, 0);
  const progress = createProgress('scan', total, progressArgs);
  const limit = limiter(Math.max(4, (ctx.options.concurrency ?? defaultConcurrency()) * 2));
  const scanned = new Map<string, ScannedImage[]>();
  for (const [split, list] of candidates) {
    const results = await Promise.all(
      list.map((c) =>
        limit(async () => {
          throwIfAborted(ctx.options.signal, 'imageFolder');
          const r = await scanFile(ctx, c, classes);
          progress.tick();
          return r;
        }),
      ),
    );
    scanned.set(split, results.filter((r): r is ScannedImage => r !== undefined));
  }
  progress.finish();
  return scanned;
}

/**
 * A class with no usable training image (every file of its folder skipped) is refused with `EMPTY_DATA`, naming
 * the class, its folder and why the files were skipped; with `dropEmptyClasses` every class without a usable
 * training image is left out instead (labels renumbered, its other images recorded as skipped), with a warning.
 * A folder with every class unusable is left to `checkScan`'s "no usable images".
 */
function checkEmptyClasses(
  ctx: ScanContext,
  shape: Layout,
  classDirs: ClassDirs[],
  scanned: Map<string, ScannedImage[]>,
  classes: string[],
  warnings: string[],
): { scanned: Map<string, ScannedImage[]>; classes: string[] } {
  const trainSplit = shape.layout === 'split' ? 'train' : 'all';
  const trainDirs = classDirs.find((d) => d.split === trainSplit)?.classes ?? new Map<string, string>();
  const usable = classes.map((_, i) => (scanned.get(trainSplit) ?? []).filter((s) => s.label === i).length);
  if (usable.every((n) => n === 0)) return { scanned, classes };
  const empty = classes.map((c, i) => ({ c, i })).filter(({ i }) => usable[i] === 0);
  if (empty.length === 0) return { scanned, classes };
  const skippedOf = (c: string): SkippedImage[] => {
    const folder = trainDirs.get(c);
    return ctx.skipped.filter((s) => !s.ignored && s.label === c && (folder === undefined || s.source === folder || s.source.startsWith(folder + sep)));
  };
  const describe = (c: string): string => {
    const skipped = skippedOf(c);
    const folder = displayPath(trainDirs.get(c) ?? c);
    if (skipped.length === 0) return `class "${c}" has no files in ${folder}`;
    return `class "${c}" has no usable image in ${folder}: all ${skipped.length} file(s) were skipped (${summariseReasons(skipped)})`;
  };
  if (!ctx.options.dropEmptyClasses) {
    const unreadable = empty.filter(({ c }) => skippedOf(c).length > 0);
    if (unreadable.length > 0) {
      throw new TransferError(
        'EMPTY_DATA',
        `imageFolder: ${unreadable.map(({ c }) => describe(c)).join('; ')}. A classifier cannot learn a class it has no ` +
          'image of: fix or replace those files, remove the folder, or pass `dropEmptyClasses: true` to leave the class out.',
      );
    }
    return { scanned, classes };
  }
  for (const { c } of empty) warnings.push(`${describe(c)}; left out (dropEmptyClasses)`);
  const keptLabels = classes.map((_, i) => i).filter((i) => usable[i]! > 0);
  const renumber = new Map(keptLabels.map((old, i) => [old, i]));
  const out = new Map<string, ScannedImage[]>();
  for (const [split, list] of scanned) {
    const kept: ScannedImage[] = [];
    for (const image of list) {
      const label = renumber.get(image.label);
      if (label !== undefined) kept.push({ ...image, label });
      else recordSkip(ctx, image.path, `class "${classes[image.label]}" left out: it has no usable training image (dropEmptyClasses)`, false, classes[image.label]);
    }
    out.set(split, kept);
  }
  return { scanned: out, classes: keptLabels.map((i) => classes[i]!) };
}

/** "3 x corrupt or truncated jpeg (...), 1 x empty file (0 bytes)", the most common reasons first. */
function summariseReasons(skipped: readonly SkippedImage[]): string {
  const counts = new Map<string, number>();
  for (const s of skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  const sorted = [...counts].sort((a, b) => b[1] - a[1]);
  const shown = sorted.slice(0, 3).map(([reason, n]) => `${n} x ${reason}`);
  return shown.join(', ') + (sorted.length > 3 ? `, and ${sorted.length - 3} other reason(s)` : '');
}

/** Refuses an unusable folder (and, with `strict`, any skipped file or warning); adds the per-class warnings. */
function checkScan(
  ctx: ScanContext,
  root: string,
  scanned: Map<string, ScannedImage[]>,
  classes: readonly string[],
  layout: Layout['layout'],
  warnings: string[],
): void {
  const { options } = ctx;
  const problems = ctx.skipped.filter((s) => !s.ignored);
  if (options.strict && problems.length > 0) {
    throw new TransferError(
      'IMAGE_DECODE_FAILED',
      `imageFolder: ${problems.length} file(s) in "${root}" cannot be used (strict mode):\n` +
        problems.slice(0, 10).map((s) => `  ${s.source}: ${s.reason}`).join('\n') +
        (problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : '') +
        `\nFix or remove them, or leave \`strict\` off to skip them.`,
    );
  }
  if ([...scanned.values()].every((list) => list.length === 0)) {
    throw new TransferError(
      'EMPTY_DATA',
      `imageFolder: no usable images in "${root}" (${problems.length} file(s) skipped` +
        `${problems.length > 0 ? `, e.g.:\n${problems.slice(-5).map((p) => `  ${p.source}: ${p.reason}`).join('\n')}\n` : ''}` +
        `); supported formats: ${(options.formats ?? SUPPORTED_FORMATS).join(', ')}.`,
    );
  }
  for (const split of scanned.keys()) {
    const counts = classes.map((_, i) => (scanned.get(split) ?? []).filter((s) => s.label === i).length);
    classes.forEach((c, i) => {
      if (counts[i] === 0) warnings.push(`class "${c}" has no usable images${layout === 'split' ? ` in ${split}` : ''}`);
    });
  }
  if (classes.length === 1) {
    warnings.push(`only one class ("${classes[0]}"): a classifier needs at least two class folders`);
  }
  if (options.strict && warnings.length > 0) {
    throw new TransferError('EMPTY_DATA', `imageFolder: "${root}" (strict mode): ${warnings.join('; ')}.`);
  }
}

/** The streaming datasets over the scanned images: the split folders, or a seeded split of everything. */
function makeSplits(
  ctx: ScanContext,
  root: string,
  shape: Layout,
  scanned: Map<string, ScannedImage[]>,
  classes: readonly string[],
): { train: Dataset; validation: Dataset | undefined } {
  const { options } = ctx;
  const makeDataset = (images: ScannedImage[], name: string): Dataset =>
    createDataset({
      name,
      classes,
      labels: images.map((s) => s.label),
      sources: images.map((s) => s.path),
      keys: images.map((s) => s.key),
      info: images.map((s) => s.info),
      imageSize: options.size,
      fit: options.fit,
      augment: options.augment,
      concurrency: options.concurrency ?? defaultConcurrency(),
      prefetch: options.prefetch,
      strict: options.strict,
      onSkip: options.onSkip,
      skipped: ctx.skipped,
      load: async (i, request) => {
        const image = images[i] as ScannedImage;
        const bytes = await readFile(image.path);
        return decodeImage(bytes, { size: request.size, fit: request.fit, maxPixels: options.maxPixels });
      },
    });
  if (shape.layout === 'split') {
    const train = makeDataset(scanned.get('train') ?? [], 'train');
    const v = scanned.get('validation') ?? [];
    check(train.size > 0, `imageFolder: "${join(root, shape.trainName as string)}" has no usable images.`);
    return { train, validation: v.length > 0 ? makeDataset(v, 'validation') : undefined };
  }
  const everything = makeDataset(scanned.get('all') ?? [], 'all');
  const fraction = options.validationSplit ?? 0.2;
  if (fraction > 0 && everything.size >= 2) return splitDataset(everything, { validationSplit: fraction, seed: options.seed ?? 0 });
  return { train: everything.subset(Array.from({ length: everything.size }, (_, i) => i), 'train'), validation: undefined };
}

function validateOptions(o: ImageFolderArgs): void {
  if (o.classes) checkClassNames(o.classes, 'imageFolder: classes');
  check(
    o.layout === undefined || ['auto', 'classes', 'split'].includes(o.layout),
    `imageFolder: layout must be 'auto', 'classes' or 'split', got '${String(o.layout)}'.`,
  );
  const fraction = o.validationSplit;
  check(
    fraction === undefined || (typeof fraction === 'number' && fraction >= 0 && fraction < 1),
    `imageFolder: validationSplit must be a fraction in [0, 1), got ${String(fraction)}.`,
  );
  check(
    o.fit === undefined || RESIZE_FITS.includes(o.fit),
    `imageFolder: fit must be one of ${RESIZE_FITS.join(', ')}, got '${String(o.fit)}'.`,
  );
  check(o.signal == null || typeof o.signal.aborted === 'boolean', 'imageFolder: signal must be an AbortSignal.');
  check(
    o.concurrency === undefined || (Number.isInteger(o.concurrency) && o.concurrency > 0),
    `imageFolder: concurrency must be a positive integer, got ${String(o.concurrency)}.`,
  );
  check(
    o.maxPixels === undefined || (typeof o.maxPixels === 'number' && o.maxPixels > 0),
    `imageFolder: maxPixels must be a positive number, got ${String(o.maxPixels)}.`,
  );
  for (const f of o.formats ?? []) {
    check(
      SUPPORTED_FORMATS.includes(f),
      `imageFolder: format '${String(f)}' is not supported (supported: ${SUPPORTED_FORMATS.join(', ')}).`,
    );
  }
  if (o.size) {
    check(
      o.size.length === 2 && o.size.every((v) => Number.isInteger(v) && v > 0),
      `imageFolder: size must be [height, width] in positive integers, got [${o.size.join(', ')}].`,
    );
  }
}

interface ScanContext {
  options: ImageFolderArgs;
  skipped: SkippedImage[];
  /** Real paths of folders already walked (symlink loop and duplicate detection). */
  visited: Set<string>;
}

function recordSkip(ctx: ScanContext, source: string, reason: string, ignored = false, label?: string): void {
  const entry: SkippedImage = { source, reason, stage: 'scan' };
  if (label !== undefined) entry.label = label;
  if (ignored) entry.ignored = true;
  ctx.skipped.push(entry);
}

function isDirLike(e: Dirent): boolean {
  return e.isDirectory() || e.isSymbolicLink();
}

async function isDirectory(path: string, e: Dirent): Promise<boolean> {
  if (e.isDirectory()) return true;
  if (!e.isSymbolicLink()) return false;
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function walk(
  ctx: ScanContext,
  dir: string,
  label: string,
  add: (file: string) => void,
  isClassFolder: boolean,
): Promise<void> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (error) {
    recordSkip(ctx, dir, `cannot open folder (${(error as NodeJS.ErrnoException).code ?? String(error)})`, false, label);
    return;
  }
  if (!isClassFolder) {
    if (ctx.visited.has(real)) {
      recordSkip(ctx, dir, `symlink loop: it leads back to ${real}, which is already read`, false, label);
      return;
    }
    ctx.visited.add(real);
  }
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    recordSkip(ctx, dir, `cannot list folder (${(error as NodeJS.ErrnoException).code ?? String(error)})`, false, label);
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      if (ctx.options.followSymlinks === false) {
        recordSkip(ctx, path, 'symbolic link not followed (followSymlinks: false)', false, label);
        continue;
      }
      try {
        const s = await stat(path);
        isDir = s.isDirectory();
        isFile = s.isFile();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        recordSkip(
          ctx,
          path,
          code === 'ELOOP'
            ? 'symlink loop: the link points (eventually) to itself'
            : code === 'ENOENT'
              ? 'broken symbolic link: its target does not exist'
              : `cannot follow symbolic link (${code ?? String(error)})`,
          false,
          label,
        );
        continue;
      }
    }
    if (isIgnoredName(e.name, isDir)) {
      recordSkip(ctx, path, 'hidden or system file', true, label);
    } else if (isDir) {
      if (ctx.options.recursive === false) {
        recordSkip(ctx, path, 'folder inside a class folder (set `recursive: true` to include it)', false, label);
      } else {
        await walk(ctx, path, label, add, false);
      }
    } else if (isFile) {
      add(path);
    } else {
      recordSkip(ctx, path, 'not a regular file (a device, socket or pipe)', false, label);
    }
  }
}

async function scanFile(ctx: ScanContext, c: Candidate, classes: readonly string[]): Promise<ScannedImage | undefined> {
  const label = classes[c.label];
  let bytes: Buffer;
  try {
    bytes = await readFile(c.path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    recordSkip(ctx, c.path, `cannot read file (${code === 'EISDIR' ? 'it is a folder' : (code ?? String(error))})`, false, label);
    return undefined;
  }
  const maxPixels = ctx.options.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    const header = await readImageHeader(bytes, { maxPixels });
    const formats = ctx.options.formats ?? SUPPORTED_FORMATS;
    if (!formats.includes(header.format)) {
      recordSkip(ctx, c.path, `format '${header.format}' is not in \`formats\` (${formats.join(', ')})`, false, label);
      return undefined;
    }
    if (ctx.options.verify || mayBeTruncated(bytes, header.format)) {
      await decodeImage(bytes, { maxPixels, size: [8, 8] });
    }
    return {
      ...c,
      key: contentHash(bytes),
      info: { width: header.width, height: header.height, format: header.format, bytes: bytes.length },
    };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    recordSkip(ctx, c.path, reason, basename(c.path).startsWith('.'), label);
    return undefined;
  }
}

function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
}
