// Extract pooled MobileNetV2 1.0 features (out_relu, global average pooled: 1280 floats) for every data set,
// view 0 = as decoded, view 1 = horizontal flip. Uses the library read-only (written against commit 89addcf).
// Run: node --import tsx bench/trust-research/extract.ts <fit> [set ...]
//   fit: squash | centerCrop | pad
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { env, loadBackbone, freeze, attachHead, decodeImage, type ExtractPool } from '../../src/node/index';
import { splitAtFreezeBoundary } from '../../src/train/boundary';
import { foldModel } from '../../src/backbone/fold';
import { SHARED, FEAT } from './lib';
import { Random } from '../../src/util/random';

const D = SHARED + '/data';
export const SETS: Record<string, string> = {
  cd_train: `${D}/cats_and_dogs_filtered_200px/train`,
  cd_val: `${D}/cats_and_dogs_filtered_200px/validation`,
  cd_full: `${D}/cats_vs_dogs_fullres`,
  cd_else: `${D}/cats_vs_dogs_elsewhere`,
  fl_train: `${D}/flower_photos/train`,
  fl_val: `${D}/flower_photos/validation`,
  images: SHARED + '/images',
};
const OUT = FEAT;
const SIZE = Number(process.env.TRUST_SIZE ?? 224);
const BATCH = 32;

function listSet(dir: string): { paths: string[]; labels: string[] } {
  const isImg = (f: string) => /\.(jpe?g|png|webp|gif|bmp)$/i.test(f);
  const entries = readdirSync(dir, { withFileTypes: true });
  const subdirs = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const paths: string[] = [];
  const labels: string[] = [];
  if (subdirs.length === 0) {
    for (const f of entries.filter((e) => e.isFile() && isImg(e.name)).map((e) => e.name).sort()) {
      paths.push(join(dir, f));
      labels.push(f.replace(/\.[^.]+$/, ''));
    }
  } else {
    for (const c of subdirs) {
      for (const f of readdirSync(join(dir, c)).filter(isImg).sort()) {
        paths.push(join(dir, c, f));
        labels.push(c);
      }
    }
  }
  return { paths, labels };
}

function flip(data: Uint8Array, h: number, w: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    const row = y * w * 3;
    for (let x = 0; x < w; x++) {
      const s = row + x * 3;
      const d = row + (w - 1 - x) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  }
  return out;
}

const NOFLIP = process.env.NOFLIP === '1';

// `augN` (N = a seed): a random resized crop (area 30-100%, aspect 3:4 to 4:3), brightness and saturation x0.7-1.3,
// a random mirror; one view. Simulates photos of the same things from another collection (framing, colour).
async function decodeAugmented(bytes: Buffer, seed: number): Promise<Uint8Array> {
  const sharp = (await import('sharp')).default;
  const rng = new Random(seed);
  const meta = await sharp(bytes).metadata();
  const W = meta.autoOrient?.width ?? meta.width!;
  const H = meta.autoOrient?.height ?? meta.height!;
  const area = W * H * (0.3 + 0.7 * rng.next());
  const aspect = Math.exp(Math.log(3 / 4) + (Math.log(4 / 3) - Math.log(3 / 4)) * rng.next());
  const w = Math.max(8, Math.min(W, Math.round(Math.sqrt(area * aspect))));
  const h = Math.max(8, Math.min(H, Math.round(Math.sqrt(area / aspect))));
  const left = Math.floor(rng.next() * (W - w + 1));
  const top = Math.floor(rng.next() * (H - h + 1));
  let p = sharp(bytes).rotate().extract({ left, top, width: w, height: h }).resize(SIZE, SIZE, { fit: 'cover' });
  p = p.modulate({ brightness: 0.7 + 0.6 * rng.next(), saturation: 0.7 + 0.6 * rng.next() });
  if (rng.next() < 0.5) p = p.flop();
  const { data } = await p.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

async function decodeBatch(paths: string[], fit: string): Promise<Float32Array[]> {
  const per = SIZE * SIZE * 3;
  if (fit.startsWith('aug')) {
    const base = Number(fit.slice(3));
    const v = new Float32Array(paths.length * per);
    await Promise.all(paths.map(async (p, i) => {
      let h = base * 7919;
      for (const c of p) h = (h * 31 + c.charCodeAt(0)) >>> 0;
      v.set(await decodeAugmented(readFileSync(p), h), i * per);
    }));
    return [v, new Float32Array(0)];
  }
  const v0 = new Float32Array(paths.length * per);
  const v1 = new Float32Array(NOFLIP ? 0 : paths.length * per);
  await Promise.all(
    paths.map(async (p, i) => {
      const img = await decodeImage(readFileSync(p), { size: [SIZE, SIZE], fit: fit as 'squash' | 'centerCrop' | 'pad' });
      v0.set(img.data, i * per);
      if (!NOFLIP) v1.set(flip(img.data, SIZE, SIZE), i * per);
    }),
  );
  return [v0, v1];
}

async function main(): Promise<void> {
  const fit = process.argv[2] ?? 'squash';
  const aug = fit.startsWith('aug');
  const sets = process.argv.slice(3).length > 0 ? process.argv.slice(3) : Object.keys(SETS);
  await tf.setBackend('wasm');
  await tf.ready();
  if (tf.getBackend() !== 'wasm') throw new Error('wasm backend failed');
  mkdirSync(OUT, { recursive: true });
  const backbone = freeze(await loadBackbone(SHARED + '/models/mobilenet_v2_1.0_224/model.json', { inputSize: SIZE }));
  const model = attachHead(backbone, { classes: 2, seed: 1 });
  const boundary = splitAtFreezeBoundary(model);
  console.error('boundary', boundary.names, boundary.shapes);
  const folded = foldModel(boundary.extractor);
  const pool = env.parallelExtractor as ExtractPool;
  const run = await pool.open(() => folded.serialize(), { backend: 'wasm', images: 1e6 });
  if (!run) throw new Error('no parallel run');
  console.error('pool size', pool.size);
  const timings: Record<string, unknown> = {};
  for (const name of sets) {
    const base = `${OUT}/${name}.${fit}`;
    if (existsSync(`${base}.json`)) {
      console.error('skip', base);
      continue;
    }
    const { paths, labels } = listSet(SETS[name]!);
    const n = paths.length;
    const dim = boundary.shapes[0]!.reduce((a, b) => a * b, 1);
    const out = [new Float32Array(n * dim), new Float32Array(NOFLIP || aug ? 0 : n * dim)];
    const t0 = Date.now();
    let next = decodeBatch(paths.slice(0, BATCH), fit);
    for (let s = 0; s < n; s += BATCH) {
      const views = await next;
      const count = Math.min(BATCH, n - s);
      if (s + BATCH < n) next = decodeBatch(paths.slice(s + BATCH, s + 2 * BATCH), fit);
      const results = await Promise.all(views.filter((v) => v.length > 0).map((v) => run.run(v, [count, SIZE, SIZE, 3])));
      results.forEach((r, v) => out[v]!.set(r[0]!, s * dim));
      if ((s / BATCH) % 10 === 0) console.error(name, fit, s + count, '/', n, ((Date.now() - t0) / 1000).toFixed(1), 's');
    }
    const secs = (Date.now() - t0) / 1000;
    writeFileSync(`${base}.v0.f32`, Buffer.from(out[0]!.buffer));
    if (!NOFLIP && !aug) writeFileSync(`${base}.v1.f32`, Buffer.from(out[1]!.buffer));
    writeFileSync(`${base}.json`, JSON.stringify({ set: name, dir: SETS[name], fit, dim, n, views: aug ? [fit] : NOFLIP ? ['asis'] : ['asis', 'hflip'], seconds: secs, paths, labels }));
    timings[name] = { n, views: NOFLIP ? 1 : 2, seconds: secs, viewsPerSecond: ((NOFLIP ? 1 : 2) * n) / secs };
    console.error('done', name, fit, n, 'images x2 views in', secs.toFixed(1), 's =', ((2 * n) / secs).toFixed(1), 'views/s');
  }
  console.log(JSON.stringify({ fit, timings }));
  run.dispose();
  await pool.dispose();
  folded.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
