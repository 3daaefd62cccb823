/**
 * Real models and images from ../shared (read-only, beside the repository), for integration tests.
 * Images are decoded with sharp in the test setup, not by the library under test.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SHARED = process.env.TFJS_TRANSFER_SHARED ?? path.resolve(here, '../../../shared');
export const MODEL_035 = path.join(SHARED, 'models/mobilenet_v2_0.35_224_no_top/model.json');
export const MODEL_100 = path.join(SHARED, 'models/mobilenet_v2_1.0_224/model.json');
export const CATS_DOGS = path.join(SHARED, 'data/cats_and_dogs_filtered_200px');
export const FULLRES = path.join(SHARED, 'data/cats_vs_dogs_fullres');
export const IMAGES = path.join(SHARED, 'images');

/** What the real-data tests read, relative to {@link SHARED}. */
const NEEDED = ['models/mobilenet_v2_0.35_224_no_top/model.json', 'data/cats_and_dogs_filtered_200px'];

/**
 * Whether the real models and images are present. Tests that need them run under `it.runIf(hasShared)` /
 * `describe.skipIf(!hasShared)`; what happens without them:
 * - under CI (`process.env.CI` set), importing this module throws, so every such test file fails, with a message
 *   that says where the data should be (`shared` must never be silently missing on CI);
 * - locally, they skip, and a warning on stderr says why and how to run them.
 */
export function checkShared(root: string = SHARED, ci: boolean = Boolean(process.env.CI)): boolean {
  const missing = NEEDED.filter((p) => !fs.existsSync(path.join(root, p)));
  if (missing.length === 0) return true;
  const where =
    `the real models and images are missing: expected ${missing.map((p) => path.join(root, p)).join(' and ')} ` +
    `(the shared folder beside the repository, ../shared, or TFJS_TRANSFER_SHARED=<folder>)`;
  if (ci) throw new Error(`tfjs-transfer tests: ${where}. On CI these tests must run: provide the folder.`);
  console.warn(`tfjs-transfer tests: skipping the tests that need real data: ${where}.`);
  return false;
}

export const hasShared = checkShared();

/** The first `count` files of a folder, sorted by name. */
export function listImages(dir: string, count: number, offset = 0): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /\.(jpe?g|png)$/i.test(f))
    .sort()
    .slice(offset, offset + count)
    .map((f) => path.join(dir, f));
}

/** Decodes files to raw RGB pixels `[n, size, size, 3]` (float32, 0..255), squashed to `size`. */
export async function decodeImages(files: string[], size: number): Promise<tf.Tensor4D> {
  const buf = new Float32Array(files.length * size * size * 3);
  await Promise.all(
    files.map(async (file, i) => {
      const { data } = await sharp(file).rotate().removeAlpha().toColourspace('srgb').resize(size, size, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
      for (let j = 0; j < data.length; j++) buf[i * size * size * 3 + j] = data[j]!;
    }),
  );
  return tf.tensor4d(buf, [files.length, size, size, 3]);
}

/** `perClass` cats then `perClass` dogs from a split of the 200 px tutorial set, decoded at `size`. */
export async function catsAndDogs(split: 'train' | 'validation', perClass: number, size: number, offset = 0): Promise<{ xs: tf.Tensor4D; ys: string[] }> {
  const cats = listImages(path.join(CATS_DOGS, split, 'cats'), perClass, offset);
  const dogs = listImages(path.join(CATS_DOGS, split, 'dogs'), perClass, offset);
  const xs = await decodeImages([...cats, ...dogs], size);
  return { xs, ys: [...cats.map(() => 'cat'), ...dogs.map(() => 'dog')] };
}
