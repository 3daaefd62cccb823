/**
 * predict(model, './photo.jpg'): in Node with tfjs-transfer/node a local path is decoded from the file (was:
 * "Failed to parse URL" from fetch); without file access it is a NODE_ONLY error naming 'tfjs-transfer/node'.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { attachHead, env, freeze, loadBackbone, predict } from '../../src/node/index';
import { tinyBackbone } from '../helpers/tiny';

env.verbose = false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-predict-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('predict with a local file path', () => {
  it('decodes the file (relative, absolute and file:// forms) and matches predicting its pixels', async () => {
    const base = tf.memory().numTensors;
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    const pixels = Buffer.alloc(32 * 32 * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 256;
    const file = path.join(tmp, 'photo.png');
    await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(file);
    const x = tf.tensor3d(Float32Array.from(pixels), [32, 32, 3]);
    const expected = await predict(model, x);
    expect(await predict(model, file)).toEqual(expected);
    expect(await predict(model, path.relative(process.cwd(), file))).toEqual(expected);
    expect(await predict(model, `file://${file}`)).toEqual(expected);
    x.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('without file access, a local path is a NODE_ONLY error naming tfjs-transfer/node', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    const saved = env.fileSystem;
    env.fileSystem = undefined;
    try {
      await expect(predict(model, './photo.jpg')).rejects.toMatchObject({ code: 'NODE_ONLY', message: expect.stringContaining("'tfjs-transfer/node'") });
    } finally {
      env.fileSystem = saved;
      model.dispose();
    }
  });

  it('predict takes a signal: an aborted one rejects with an AbortError', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    const x = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
    const controller = new AbortController();
    controller.abort();
    await expect(predict(model, x, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    x.dispose();
    model.dispose();
  });
});
