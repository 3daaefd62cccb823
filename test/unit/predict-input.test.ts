/**
 * predict refuses input it would otherwise predict garbage from: `{ data, width, height }` with the wrong number of
 * bytes, NaN, infinite or out-of-range pixels; and the channel-count error says what to do for that count.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachHead, env, freeze, loadBackbone, predict, type TransferModel } from '../../src/index';
import { TransferError } from '../../src/errors';
import { tinyBackbone } from '../helpers/tiny';

env.verbose = false;

async function refusal(p: Promise<unknown>): Promise<TransferError> {
  const error = await p.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(TransferError);
  return error as TransferError;
}

describe('predict: input checks', () => {
  let model: TransferModel;
  let baseline = 0;
  beforeAll(async () => {
    model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['a', 'b'], seed: 1 });
    baseline = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(baseline);
    model.dispose();
  });

  it('{ data, width, height } with too few (or too many) bytes: INVALID_ARGUMENT, expected vs got', async () => {
    const short = await refusal(predict(model, { data: new Uint8Array(10), width: 4, height: 4 }));
    expect(short.code).toBe('INVALID_ARGUMENT');
    expect(short.message).toMatch(/4x4 image needs 64 bytes \(RGBA, 4 a pixel\), got 10/);
    const rgb = await refusal(predict(model, { data: new Uint8Array(48), width: 4, height: 4 }));
    expect(rgb.message).toMatch(/got 48\. These look like RGB bytes .*tf\.tensor3d/);
    const long = await refusal(predict(model, { data: new Uint8Array(100), width: 4, height: 4 }));
    expect(long.message).toMatch(/needs 64 bytes .*got 100/);
    const size = await refusal(predict(model, { data: new Uint8Array(64), width: 0, height: 16 }));
    expect(size.message).toMatch(/width and height must be positive integers/);
  });

  it('{ data, width, height } with the right bytes predicts, from a Uint8Array or a Uint8ClampedArray', async () => {
    const bytes = new Uint8Array(8 * 8 * 4).map((_, i) => (i * 37) % 256);
    const [a] = await predict(model, { data: bytes, width: 8, height: 8 });
    const [b] = await predict(model, { data: new Uint8ClampedArray(bytes), width: 8, height: 8 } as never);
    expect(a!.probabilities).toEqual(b!.probabilities);
  });

  it('NaN, infinite and out-of-range pixels: INVALID_ARGUMENT (a tensor, or a tensor in a list)', async () => {
    const nan = tf.tensor3d(Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => (i === 5 ? NaN : 100)), [32, 32, 3]);
    const inf = tf.fill([1, 32, 32, 3], Infinity) as tf.Tensor4D;
    const big = tf.fill([32, 32, 3], 1000) as tf.Tensor3D;
    const negative = tf.fill([32, 32, 3], -1) as tf.Tensor3D;
    try {
      expect((await refusal(predict(model, nan))).message).toMatch(/NaN or infinite/);
      expect((await refusal(predict(model, [nan]))).message).toMatch(/NaN or infinite/);
      expect((await refusal(predict(model, inf))).code).toBe('INVALID_ARGUMENT');
      expect((await refusal(predict(model, big))).message).toMatch(/raw RGB in 0\.\.255, got values from 1000 to 1000/);
      expect((await refusal(predict(model, negative))).message).toMatch(/from -1 to -1/);
    } finally {
      tf.dispose([nan, inf, big, negative]);
    }
  });

  it('the channel error fits the channel count: grayscale for 1, alpha for 4', async () => {
    const gray = tf.zeros([32, 32, 1]) as tf.Tensor3D;
    const rgba = tf.zeros([2, 32, 32, 4]) as tf.Tensor4D;
    const two = tf.zeros([32, 32, 2]) as tf.Tensor3D;
    try {
      const g = await refusal(predict(model, gray));
      expect(g.code).toBe('SHAPE_MISMATCH');
      expect(g.message).toMatch(/1 channels\)\. This is a grayscale image: .*tf\.image\.grayscaleToRGB\(images\) or tf\.tile\(images, \[1, 1, 3\]\)/);
      expect(g.message).not.toMatch(/alpha/);
      expect((await refusal(predict(model, rgba))).message).toMatch(/Drop the alpha channel with images\.slice\(\[0, 0, 0, 0\], \[-1, -1, -1, 3\]\)/);
      expect((await refusal(predict(model, two))).message).toMatch(/2 channels/);
    } finally {
      tf.dispose([gray, rgba, two]);
    }
  });
});
