/**
 * Decode + resize throughput of the Node pipeline, and peak memory while streaming a folder far larger than a batch.
 * Run: npx tsx bench/decode.ts
 */
import { readFile, readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { limiter } from '../src/data/dataset';
import { env } from '../src/env';
import { decodeImage, defaultConcurrency } from '../src/node/decode';
import { imageFolder } from '../src/node/image-folder';

const DATA = join(import.meta.dirname ?? __dirname, '../../shared/data');
const SIZE = [224, 224] as const;

async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && /\.jpe?g$/i.test(e.name)) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  }
  return out.sort();
}

async function throughput(files: string[], concurrency: number): Promise<number> {
  const limit = limiter(concurrency);
  const start = performance.now();
  await Promise.all(files.map((f) => limit(async () => decodeImage(await readFile(f), { size: SIZE }))));
  return files.length / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  env.verbose = false;
  const cores = availableParallelism();
  const all = defaultConcurrency();
  console.log(`decode + resize to ${SIZE.join('x')} (sharp ${(await import('sharp')).default.versions.sharp}), ${cores} cores`);
  for (const [name, dir] of [
    ['cats_vs_dogs_fullres (original photos)', join(DATA, 'cats_vs_dogs_fullres')],
    ['cats_and_dogs_filtered_200px', join(DATA, 'cats_and_dogs_filtered_200px')],
  ] as const) {
    const files = (await listImages(dir)).slice(0, 1000);
    await throughput(files.slice(0, 50), all); // warm up (file cache, libvips)
    const one = await throughput(files, 1);
    const many = await throughput(files, all);
    console.log(
      `${name}: ${files.length} images: concurrency 1: ${one.toFixed(0)} images/s; ` +
        `concurrency ${all} (all cores): ${many.toFixed(0)} images/s (x${(many / one).toFixed(2)})`,
    );
  }

  // Streaming: the 3000-image folder in batches of 32, as tensors, with a prefetch of 2 batches.
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const start = performance.now();
  const data = await imageFolder(join(DATA, 'cats_and_dogs_filtered_200px'), { size: SIZE, progressBar: false });
  const scanMs = performance.now() - start;
  let n = 0;
  const streamStart = performance.now();
  for (const ds of [data.train, data.validation]) {
    for await (const b of ds?.batches({ batchSize: 32 }) ?? []) {
      n += b.xs.shape[0];
      tf.dispose([b.xs, b.ys]);
    }
  }
  const streamS = (performance.now() - streamStart) / 1000;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  const mb = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MB`;
  const everything = n * SIZE[0] * SIZE[1] * 3 * 4;
  console.log(
    `streaming ${n} images (batch 32, prefetch 2, ${SIZE.join('x')}): scan ${(scanMs / 1000).toFixed(2)} s, ` +
      `batches ${(n / streamS).toFixed(0)} images/s; RSS before ${mb(rssBefore)}, peak ${mb(peak)} ` +
      `(+${mb(peak - rssBefore)}); all ${n} decoded at once would be ${mb(everything)} of float32; tensors left: ` +
      `${tf.memory().numTensors}`,
  );
}

await main();
