import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toClassIndices } from '../../src/data/labels';
import { resizeImages } from '../../src/data/resize';
import { TransferError } from '../../src/errors';

let baseline = 0;
beforeEach(() => {
  baseline = tf.memory().numTensors;
});
afterEach(() => {
  expect(tf.memory().numTensors).toBe(baseline);
});

describe('toClassIndices', () => {
  it('accepts indices, names, typed arrays, 1-D and one-hot tensors', () => {
    expect([...toClassIndices([0, 1, 1]).indices]).toEqual([0, 1, 1]);
    expect([...toClassIndices(new Int32Array([2, 0]), { classes: ['a', 'b', 'c'] }).indices]).toEqual([2, 0]);
    const named = toClassIndices(['dog', 'cat', 'dog']);
    expect(named.classes).toEqual(['cat', 'dog']);
    expect([...named.indices]).toEqual([1, 0, 1]);
    expect([...toClassIndices(['b', 'a'], { classes: ['b', 'a'] }).indices]).toEqual([0, 1]);
    const t1 = tf.tensor1d([1, 0], 'int32');
    const t2 = tf.tensor2d([[0, 1], [1, 0], [0, 1]]);
    expect([...toClassIndices(t1).indices]).toEqual([1, 0]);
    expect([...toClassIndices(t2, { classes: ['x', 'y'] }).indices]).toEqual([1, 0, 1]);
    tf.dispose([t1, t2]);
  });

  it('explains unknown names, out-of-range indices, bad values and length mismatches', () => {
    expect(() => toClassIndices(['cat', 'cow'], { classes: ['cat', 'dog'] })).toThrow(/"cow", which is not one of the classes \(cat, dog\)/);
    expect(() => toClassIndices([0, 2], { classes: ['cat', 'dog'] })).toThrow(/labels\[1\] is 2, out of range for 2 classes/);
    expect(() => toClassIndices([0, 1.5])).toThrow(/non-negative integers/);
    expect(() => toClassIndices([0, -1])).toThrow(TransferError);
    expect(() => toClassIndices([0, 1], { expectedLength: 3 })).toThrow(/got 2 labels for 3 images/);
    const oneHot = tf.tensor2d([[1, 0, 0]]);
    expect(() => toClassIndices(oneHot, { classes: ['a', 'b'] })).toThrow(/3 columns but there are 2 classes/);
    oneHot.dispose();
    expect(() => toClassIndices(['a'], { classes: ['a', 'a'] })).toThrow(/appears twice/);
  });
});

describe('resizeImages', () => {
  it('squashes, crops and pads to the requested size', () => {
    const img = tf.tidy(() => tf.add(tf.zeros([4, 8, 3]), 100) as tf.Tensor3D);
    const squash = resizeImages(img, [2, 2]);
    expect(squash.shape).toEqual([2, 2, 3]);
    expect(squash.dtype).toBe('float32');
    const crop = resizeImages(img, [4, 4], { fit: 'centerCrop' });
    expect(crop.shape).toEqual([4, 4, 3]);
    const pad = resizeImages(img, [8, 8], { fit: 'pad' });
    expect(pad.shape).toEqual([8, 8, 3]);
    const values = pad.arraySync();
    expect(values[0]?.[0]?.[0]).toBe(0); // padded rows at the top
    expect(values[4]?.[4]?.[0]).toBeCloseTo(100, 3); // the image in the middle
    tf.dispose([img, squash, crop, pad]);
  });

  it('centerCrop keeps the middle of the image', () => {
    // Columns 0..5 with value = column index: a centre crop of a 2x6 to 2x2 keeps columns 2 and 3.
    const img = tf.tidy(() => tf.tile(tf.reshape(tf.range(0, 6, 1, 'float32'), [1, 6, 1]), [2, 1, 3]) as tf.Tensor3D);
    const crop = resizeImages(img, [2, 2], { fit: 'centerCrop' });
    expect(crop.arraySync()[0]?.map((p) => p[0])).toEqual([2, 3]);
    tf.dispose([img, crop]);
  });

  it('antialiases large shrinks: noise averages out instead of aliasing', () => {
    // Shrinking 8x, each output pixel should be about the mean of an 8x8 block (std ~ 74/8), not of 2x2 (~ 74/2).
    const noise = tf.tidy(() => tf.tile(tf.randomUniform([1, 128, 128, 1], 0, 255, 'float32', 7), [1, 1, 1, 3]) as tf.Tensor4D);
    const smooth = resizeImages(noise, [16, 16]);
    const aliased = resizeImages(noise, [16, 16], { antialias: false });
    const std = (t: tf.Tensor): number => tf.tidy(() => Math.sqrt(tf.moments(t).variance.dataSync()[0] as number));
    expect(smooth.shape).toEqual([1, 16, 16, 3]);
    expect(std(smooth)).toBeLessThan(16);
    expect(std(aliased)).toBeGreaterThan(25);
    tf.dispose([noise, smooth, aliased]);
  });

  it('rejects bad arguments with a clear message', () => {
    const img = tf.zeros([2, 2, 3]) as tf.Tensor3D;
    expect(() => resizeImages(img, [0, 2])).toThrow(/two positive integers/);
    // @ts-expect-error invalid fit
    expect(() => resizeImages(img, [2, 2], { fit: 'stretch' })).toThrow(/fit must be one of/);
    img.dispose();
  });
});
