/**
 * Stage 3 of {@link fit}: the activations at the freeze boundary, from the persistent cache (only the misses are
 * decoded), from the worker pool, or from the folded prefix in this thread (see `extractActivations`); then the
 * validation split, and the check that every activation is finite.
 * @internal
 * @module
 */
import { augmentImages } from '../data/augment';
import { splitIndices } from '../data/split';
import { env } from '../env';
import { TransferError } from '../errors';
import type { TransferModel } from '../transfer-model';
import type { LabelledData } from '../types';
import { Random } from '../util/random';
import { extractActivations, subsetActivations, type Activations, type ExtractionArgs } from './activations';
import type { FreezeBoundary } from './boundary';
import { extractCachedFirst } from './cached-first';
import type { TrainingData } from './epoch-loop';
import type { ResolvedFitArgs } from './fit-args';
import type { FitSources } from './fit-sources';
import { extractorIdentity } from './identity';
import type { Yielder } from './yield';
import { checkEveryClassHasImages } from './class-coverage';
import { planStorage, type StoragePlan } from './storage-policy';

/** What the activations stage produced. @internal */
export interface FitActivations extends TrainingData {
  /** The training activations of the first epoch. */
  train: Activations;
  /** Rows of the data kept for training (with a validation split), in data order. */
  trainRows: number[] | undefined;
  /** Where the training rows are: `'memory'` or the spill file's path. */
  where: string;
  /** Frees the training rows (closes and deletes a spill file); validation rows stay (in memory, maybe kept). */
  dispose(): void;
}

interface Context {
  model: TransferModel;
  data: LabelledData;
  split: FreezeBoundary;
  sources: FitSources;
  args: ResolvedFitArgs;
  seed: number;
  rng: Random;
  yielder: Yielder;
}

/** Where the rows go (see `storage-policy.ts`): the training rows in the disk cache's folder when there is one. */
function storagePlan(ctx: Context): StoragePlan {
  const { args, sources, split } = ctx;
  const dir = (args.cache as { dir?: unknown } | undefined)?.dir;
  return planStorage({
    storage: args.activationStorage,
    budget: args.activationMemoryBudget,
    shapes: split.shapes,
    trainImages: sources.train.size,
    views: Math.max(1, sources.views.length),
    validationImages: args.validationData && sources.validation ? sources.validation.size : 0,
    directory: typeof dir === 'string' ? dir : undefined,
  });
}

/** @internal */
export async function obtainActivations(ctx: Context): Promise<FitActivations> {
  const { model, data, split, sources, args, seed, rng } = ctx;
  const store = args.cache && sources.cacheable ? { store: args.cache, identity: await extractorIdentity(split, model) } : undefined;
  const plan = storagePlan(ctx);
  const augment = args.augment;
  const trainArgs: ExtractionArgs = {
    batchSize: args.extractBatchSize,
    views: sources.views,
    signal: args.signal,
    onProgress: args.onProgress,
    store,
    yielder: ctx.yielder,
    storage: plan.train,
    transform: sources.augmentUpFront ? (x) => augmentImages(x, augment!, rng) : undefined,
  };
  let train =
    (store && (await extractCachedFirst(split.extractor, split.shapes, data, sources.trainSubset, { ...trainArgs, store }))) ||
    (await extractActivations(split.extractor, split.shapes, sources.train, trainArgs));
  // The training rows now held (spilled or in memory), freed on every way out: the current epoch's fresh rows too.
  let current: Activations = train;
  const first = (): Activations => train;
  try {
    const rest = await validationAndChecks(ctx, plan, train, store);
    train = rest.train;
    current = train;
    // Fine-tuning: no epoch extracts again, and the training steps want the workers' memory (see ParallelExtractor.dispose).
    if (sources.cacheable && split.shapes.some((s) => s.length > 1)) await env.parallelExtractor?.dispose?.();
    const activationsFor = async (epoch: number): Promise<Activations> => {
      if (sources.cacheable || (sources.augmentUpFront && epoch === 0)) return first();
      // Fresh random augmentation each epoch: re-run the frozen prefix (the previous epoch's rows are freed).
      if (current !== train) current.dispose();
      current = await freshActivations(ctx, plan, rest.trainRows);
      return current;
    };
    return {
      train, trainRows: rest.trainRows, validation: rest.validation, views: Math.max(1, sources.views.length), activationsFor, where: train.where,
      dispose: () => {
        if (current !== train) current.dispose();
        train.dispose();
      },
    };
  } catch (error) {
    train.dispose();
    throw error;
  }
}

/** The validation rows (extracted, or split off the training rows, copied into memory), then the checks. */
async function validationAndChecks(
  ctx: Context,
  plan: StoragePlan,
  extracted: Activations,
  store: ExtractionArgs['store'],
): Promise<{ train: Activations; trainRows: number[] | undefined; validation: Activations | undefined }> {
  const { model, split, sources, args, seed } = ctx;
  let train = extracted;
  let validation: Activations | undefined;
  let trainRows: number[] | undefined;
  if (args.validationData && sources.validation) {
    const valArgs: ExtractionArgs = { batchSize: args.extractBatchSize, views: [], signal: args.signal, store, yielder: ctx.yielder, storage: plan.validation };
    validation =
      (store && (await extractCachedFirst(split.extractor, split.shapes, args.validationData, sources.validationSubset, { ...valArgs, store }))) ||
      (await extractActivations(split.extractor, split.shapes, sources.validation, valArgs));
  } else if (args.validationSplit) {
    const parts = splitIndices(train.labels, args.validationSplit, new Random(seed ^ 0x5bd1e995));
    if (parts.train.length === 0 || parts.validation.length === 0) {
      throw new TransferError('EMPTY_DATA', `fit: validationSplit ${args.validationSplit} of ${train.n} images leaves an empty split.`);
    }
    validation = subsetActivations(train, parts.validation, { views: [0], storage: plan.validation });
    train = subsetActivations(train, parts.train); // reads the extracted rows through an index map: no copy
    trainRows = parts.train;
  }
  if (train.n === 0) throw new TransferError('EMPTY_DATA', 'fit: no training images could be read.');
  checkEveryClassHasImages(train.labels, model.classes);
  // A NaN or infinite pixel gives NaN features, which the clipped cross-entropy would silently turn into a finite
  // loss with zero gradients: refuse them here, naming the images.
  checkFinite(train, trainRows, 'training');
  if (validation) checkFinite(validation, undefined, args.validationData ? 'validationData' : 'validation split');
  return { train, trainRows, validation };
}

/** This epoch's freshly augmented training rows (one view), in the training storage. */
async function freshActivations(ctx: Context, plan: StoragePlan, trainRows: number[] | undefined): Promise<Activations> {
  const { split, sources, args, rng } = ctx;
  const fresh = await extractActivations(split.extractor, split.shapes, sources.train, {
    batchSize: args.extractBatchSize,
    views: [],
    signal: args.signal,
    yielder: ctx.yielder,
    storage: plan.train,
    transform: (x) => augmentImages(x, args.augment!, rng),
  });
  const acts = trainRows ? subsetActivations(fresh, trainRows) : fresh;
  try {
    checkFinite(acts, trainRows, 'augmented training');
  } catch (error) {
    fresh.dispose();
    throw error;
  }
  return acts;
}

/** Throws NUMERICAL_FAULT when any cached activation is NaN or infinite, naming the first images concerned. @internal */
export function checkFinite(acts: Activations, rows: number[] | undefined, what: string): void {
  const bad: number[] = [];
  let example = 0;
  const sizes = acts.shapes.map((s) => s.reduce((a, b) => a * b, 1));
  for (let r = 0; r < acts.n; r++) {
    const value = firstNonFinite(acts, r, sizes);
    if (value === undefined) continue;
    if (bad.length === 0) example = value;
    bad.push(rows ? rows[r]! : r);
  }
  if (bad.length === 0) return;
  throw new TransferError(
    'NUMERICAL_FAULT',
    `fit: the frozen layers gave ${example} features for ${bad.length} of ${acts.n} ${what} images (indices ${bad.slice(0, 5).join(', ')}` +
      `${bad.length > 5 ? ', ...' : ''}, in data order); training did not start and no weight changed. ` +
      'Check those images for NaN or infinite pixel values (xs must be finite numbers in 0..255).',
  );
}

function firstNonFinite(acts: Activations, row: number, sizes: number[]): number | undefined {
  for (const perView of acts.rows) {
    for (let j = 0; j < perView.length; j++) {
      const buf = scratchOf(sizes[j]!);
      perView[j]!.read(row, buf, 0);
      for (let i = 0; i < buf.length; i++) if (!Number.isFinite(buf[i]!)) return buf[i]!;
    }
  }
  return undefined;
}

let scratch = new Float32Array(0);
/** A reused buffer of `size` values (checkFinite reads every row once). */
function scratchOf(size: number): Float32Array {
  if (scratch.length < size) scratch = new Float32Array(size);
  return scratch.subarray(0, size);
}
