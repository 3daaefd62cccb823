/** fit's refusal of a class with no training image (the helper fit-activations calls once labels are known). */
import { describe, expect, it } from 'vitest';
import { TransferError } from '../../src/errors';
import { checkEveryClassHasImages } from '../../src/train/class-coverage';

describe('checkEveryClassHasImages', () => {
  it('passes when every class has a training row', () => {
    expect(() => checkEveryClassHasImages(Int32Array.from([0, 1, 2, 1]), ['a', 'b', 'c'])).not.toThrow();
  });
  it('refuses with EMPTY_DATA naming the missing classes and the counts', () => {
    let error: unknown;
    try {
      checkEveryClassHasImages(Int32Array.from([0, 0, 2]), ['cat', 'dog', 'bird']);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TransferError);
    expect((error as TransferError).code).toBe('EMPTY_DATA');
    expect((error as Error).message).toMatch(/no training image of class "dog" \(training images per class: cat 2, dog 0, bird 1\); training did not start/);
  });
  it('names every missing class', () => {
    expect(() => checkEveryClassHasImages([], ['a', 'b'])).toThrow(/classes "a", "b"/);
  });
});
