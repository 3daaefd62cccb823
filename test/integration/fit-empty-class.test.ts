/**
 * fit refuses, before its first epoch, a class left with no training image once extraction is done (here every
 * image of one class fails at decode time: the files vanish after the scan), instead of training a head that
 * never saw it.
 */
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../src/node/index';
import { attachHead, env, fit, freeze, loadBackbone } from '../../src/index';
import { imageFolder } from '../../src/node/image-folder';
import { TransferError } from '../../src/errors';
import { tinyBackbone } from '../helpers/tiny';

describe('fit: a class with no image left after decoding', () => {
  let dir = '';
  const verbose = env.verbose;
  beforeAll(async () => {
    env.verbose = false;
    env.parallelExtractor = undefined;
    dir = await mkdtemp(join(tmpdir(), 'tt-fit-empty-class-'));
    for (const c of ['a', 'b']) await mkdir(join(dir, c));
    for (let i = 0; i < 3; i++) {
      await writeFile(join(dir, 'a', `${i}.png`), await sharp({ create: { width: 32, height: 32, channels: 3, background: `#a${i}3` } }).png().toBuffer());
      await writeFile(join(dir, 'b', `${i}.png`), await sharp({ create: { width: 32, height: 32, channels: 3, background: `#3${i}a` } }).png().toBuffer());
    }
  });
  afterAll(async () => {
    env.verbose = verbose;
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses with EMPTY_DATA naming the class, leaking no tensor', async () => {
    const data = await imageFolder(dir, { validationSplit: 0, size: [32, 32], verbose: false });
    for (let i = 0; i < 3; i++) await unlink(join(dir, 'b', `${i}.png`));
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['a', 'b'], seed: 1 });
    const before = tf.memory().numTensors;
    try {
      const error = await fit(model, data.train, { epochs: 1, verbose: false }).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(TransferError);
      expect((error as TransferError).code).toBe('EMPTY_DATA');
      expect((error as Error).message).toMatch(/no training image of class "b" \(training images per class: a 3, b 0\); training did not start/);
      expect(data.skipped.filter((s) => s.stage === 'load')).toHaveLength(3);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
  });
});
