/**
 * The check that every class of the model has at least one training image, made once the labels of the extracted
 * activations are known (images that failed to decode during extraction are gone by then), before the first epoch.
 * @internal
 * @module
 */
import { TransferError } from '../errors';

/**
 * Throws `EMPTY_DATA` when a class of `classes` has no row in `labels` (the training activations' labels), naming
 * the classes concerned and the count of every class. A head trained without any image of a class learns nothing
 * about it, and its accuracy then varies from run to run.
 *
 * @param labels Label of each training row (after any validation split).
 * @param classes The model's class names; label `i` is `classes[i]`.
 * @param where Prefix of the message.
 * @internal
 */
export function checkEveryClassHasImages(labels: ArrayLike<number>, classes: readonly string[], where = 'fit'): void {
  const counts = new Array<number>(classes.length).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label >= 0 && label < counts.length) counts[label]!++;
  }
  const missing = classes.filter((_, i) => counts[i] === 0);
  if (missing.length === 0) return;
  throw new TransferError(
    'EMPTY_DATA',
    `${where}: no training image of class${missing.length > 1 ? 'es' : ''} ${missing.map((c) => `"${c}"`).join(', ')} ` +
      `(training images per class: ${classes.map((c, i) => `${c} ${counts[i]}`).join(', ')}); training did not start. ` +
      'Images that failed to decode were skipped (see the dataset\'s `skipped` list). Add readable images of every ' +
      'class, or build the model without the classes you have no images of.',
  );
}
