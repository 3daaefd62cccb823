/**
 * Stage 2 of {@link fit}: the sources. The training and validation data become labelled sources at the model's
 * input size, every batch checked for NaN / infinite pixels; augmentation decides the cached views.
 * @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { log } from '../env';
import { TransferError } from '../errors';
import type { TransferModel } from '../transfer-model';
import type { ImageDataset, LabelledData } from '../types';
import { flipViews, type ViewTransform } from './activations';
import type { ResolvedFitArgs } from './fit-args';
import { toLabelledSource, type LabelledSource } from './source';

/** What the activations stage reads. @internal */
export interface FitSources {
  train: LabelledSource;
  /** A subset of the training data as a source (for the persistent cache's misses). */
  trainSubset: (subset: ImageDataset) => LabelledSource;
  validation: LabelledSource | undefined;
  validationSubset: (subset: ImageDataset) => LabelledSource;
  /** Cached views per image: `[]` (as is) or `[identity, mirror]` for flip augmentation. */
  views: ViewTransform[];
  /** Whether the augmentation (if any) can be cached: flip only. */
  cacheable: boolean;
  /**
   * Augmentation that cannot be cached re-runs the frozen prefix every epoch; without a validation split to carve
   * out of clean activations, the first extraction is already epoch 1's augmented one (same random draws in the
   * same order as extracting at the start of epoch 1).
   */
  augmentUpFront: boolean;
}

/** @internal */
export function buildSources(model: TransferModel, data: LabelledData, args: ResolvedFitArgs): FitSources {
  const size = [model.inputShape[0], model.inputShape[1]] as const;
  const aug = args.augment;
  const cacheable = !aug || (aug.flip && aug.rotation === 0 && aug.zoom === 0 && aug.translation === 0 && aug.brightness === 0 && aug.contrast === 0);
  if (aug && !cacheable) log('tfjs-transfer: augmentation beyond flipping cannot be cached; the frozen backbone runs every epoch.');
  const trainSubset = (d: LabelledData) => finitePixels(toLabelledSource(d, model.classes, size, 'fit'), 'training');
  const validationSubset = (d: LabelledData) => finitePixels(toLabelledSource(d, model.classes, size, 'fit: validationData'), 'validationData');
  return {
    train: trainSubset(data),
    trainSubset,
    validation: args.validationData ? validationSubset(args.validationData) : undefined,
    validationSubset,
    views: aug && cacheable ? flipViews() : [],
    cacheable,
    augmentUpFront: !cacheable && !args.validationSplit,
  };
}

/**
 * `source` with every batch checked for NaN / infinite pixels (one sum per batch). Needed because some kernels
 * (wasm's clip / relu6) turn NaN into 0, so a NaN image would otherwise train silently as another picture.
 * @internal
 */
export function finitePixels(source: LabelledSource, what: string): LabelledSource {
  return {
    size: source.size,
    labels: source.labels,
    batches(batchSize, signal) {
      return {
        async *[Symbol.asyncIterator]() {
          let offset = 0;
          for await (const batch of source.batches(batchSize, signal)) {
            const total = tf.tidy(() => tf.sum(batch.xs));
            const ok = Number.isFinite((await total.data())[0]!);
            total.dispose();
            if (!ok) await refuse(batch, offset, what);
            offset += batch.xs.shape[0];
            yield batch;
          }
        },
      };
    },
  };
}

async function refuse(batch: { xs: tf.Tensor4D; sources?: string[] }, offset: number, what: string): Promise<never> {
  const perImage = tf.tidy(() => tf.sum(batch.xs, [1, 2, 3]));
  const sums = await perImage.data();
  perImage.dispose();
  batch.xs.dispose();
  const bad = Array.from(sums, (v, i) => (Number.isFinite(v) ? -1 : i)).filter((i) => i >= 0);
  const names = bad.slice(0, 3).map((i) => batch.sources?.[i] ?? `image ${offset + i}`);
  throw new TransferError(
    'NUMERICAL_FAULT',
    `fit: ${bad.length === 1 ? 'a' : bad.length} ${what} image${bad.length === 1 ? ' has' : 's have'} NaN or infinite pixel values ` +
      `(${names.join(', ')}${bad.length > 3 ? ', ...' : ''}; indices in data order); training did not start and no weight changed. ` +
      'Pixels must be finite numbers in 0..255.',
  );
}
