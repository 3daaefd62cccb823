/**
 * Which storage `fit` gives its cached activations (`FitArgs.activationStorage`, `activationMemoryBudget`): float32
 * for pooled (rank-1) boundaries, float16 for spatial ones, and the training rows spilled to a scratch file when
 * their estimated size exceeds the memory budget and the platform has an `env.activationSpill` (Node).
 * @internal
 * @module
 */
import { env, log } from '../env';
import { TransferError } from '../errors';
import { BYTES_PER_VALUE, rowStorage, type RowEncoding, type RowStorage } from './row-store';

/**
 * How `fit` keeps the activations cached at the freeze boundary: `'auto'` (float32 for a pooled, rank-1 boundary;
 * float16 for a spatial one; the training rows in a scratch file when they would exceed `activationMemoryBudget`
 * and the platform can spill, as Node can), `'float32'` (in memory, exact), `'float16'` (in memory, half the
 * bytes), `'disk'` (the training rows always in a scratch file, encoded as `'auto'` would).
 * @category Step 4: Train
 */
export type ActivationStorage = 'auto' | 'float32' | 'float16' | 'disk';

/** The storage choices. @internal */
export const ACTIVATION_STORAGES: readonly ActivationStorage[] = Object.freeze(['auto', 'float32', 'float16', 'disk']);

/** What the plan needs to know. @internal */
export interface StorageNeeds {
  storage: ActivationStorage;
  /** Bytes of training activations kept in memory before they spill (`'auto'`). */
  budget: number;
  /** Boundary output shapes (without the batch axis). */
  shapes: number[][];
  /** Training images and their cached views. */
  trainImages: number;
  views: number;
  /** Validation images extracted separately (0 for none or a split of the training rows). */
  validationImages: number;
  /** Folder of the scratch file (the disk cache's), or `undefined` for the OS temp folder. */
  directory: string | undefined;
}

/** The storage of the training rows and of the validation rows (always in memory). @internal */
export interface StoragePlan {
  train: RowStorage;
  validation: RowStorage;
  /** Estimated bytes of the training rows (as encoded). */
  trainBytes: number;
}

/** The encoding of each boundary output under `storage`. @internal */
export function encodingsFor(storage: ActivationStorage, shapes: number[][]): RowEncoding[] {
  if (storage === 'float32') return shapes.map(() => 'float32');
  if (storage === 'float16') return shapes.map(() => 'float16');
  return shapes.map((s) => (s.length <= 1 ? 'float32' : 'float16'));
}

/** Chooses where the rows go; throws `NOT_SUPPORTED` for `'disk'` without an `env.activationSpill`. @internal */
export function planStorage(needs: StorageNeeds): StoragePlan {
  const encodings = encodingsFor(needs.storage, needs.shapes);
  const rowBytes = needs.shapes.reduce((a, s, j) => a + s.reduce((x, y) => x * y, 1) * BYTES_PER_VALUE[encodings[j]!], 0);
  const trainBytes = rowBytes * needs.trainImages * needs.views;
  const inMemory = rowStorage(encodings);
  const spillService = env.activationSpill;
  const spill = spillService ? { service: spillService, directory: needs.directory } : undefined;
  if (needs.storage === 'disk') {
    if (!spill) {
      throw new TransferError(
        'NOT_SUPPORTED',
        "fit: activationStorage 'disk' needs a place for scratch files (env.activationSpill), which this platform lacks: import 'tfjs-transfer/node' in Node, or use 'auto', 'float16' or 'float32'.",
      );
    }
    return { train: rowStorage(encodings, spill), validation: inMemory, trainBytes };
  }
  const total = trainBytes + rowBytes * needs.validationImages;
  if (needs.storage === 'auto' && total > needs.budget) {
    if (spill) return { train: rowStorage(encodings, spill), validation: inMemory, trainBytes };
    log(
      `tfjs-transfer: the cached activations take about ${mb(total)} MB, more than activationMemoryBudget (${mb(needs.budget)} MB), ` +
        'and this platform cannot spill them to disk: they stay in memory.',
    );
  }
  return { train: inMemory, validation: inMemory, trainBytes };
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
