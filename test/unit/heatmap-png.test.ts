/** heatmapPng (Node): a heatmap blended over an image, encoded as PNG with sharp, from a tensor, pixels or a file. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeImage, heatmapPng, overlayHeatmap } from '../../src/node/index';

describe('heatmapPng', () => {
  const heat = { data: Float32Array.from([1, 0, 0, 1]), height: 2, width: 2 };
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a tensor image: PNG bytes at the image size, the overlay of overlayHeatmap, written to file when asked', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tt-heatmap-'));
    const pixels = new Uint8Array(8 * 6 * 3).map((_, i) => (i * 7) % 256);
    const image = tf.tensor3d(Float32Array.from(pixels), [6, 8, 3]);
    const before = tf.memory().numTensors;
    const file = join(dir, 'out.png');
    const png = await heatmapPng(image, heat, { file, alpha: 0.6 });
    expect(tf.memory().numTensors).toBe(before);
    image.dispose();
    expect(Array.from(png.slice(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    expect(new Uint8Array(await readFile(file))).toEqual(png);
    const back = await decodeImage(png);
    expect([back.width, back.height]).toEqual([8, 6]);
    const expected = overlayHeatmap({ data: pixels, width: 8, height: 6 }, heat, { alpha: 0.6 });
    for (let p = 0; p < 48; p++) for (let c = 0; c < 3; c++) expect(back.data[p * 3 + c]).toBe(expected[p * 4 + c]);
  });

  it('an encoded image file or its bytes give the same PNG', async () => {
    const source = await heatmapPng({ data: new Uint8Array(4 * 4 * 3).fill(90), width: 4, height: 4 }, heat);
    const file = join(dir, 'in.png');
    await writeFile(file, source);
    const a = await heatmapPng(file, heat);
    const b = await heatmapPng(source, heat);
    expect(a).toEqual(b);
    await expect(heatmapPng(join(dir, 'missing.png'), heat)).rejects.toThrow(/cannot read the image file/);
  });
});
