/**
 * Fuzzing, seeded and bounded in time: thousands of random and mutated byte strings through the image decoding path
 * (readImageHeader, decodeImage, decodeBmp, and imageFolder over a folder of mutated files), and random option
 * objects through the public API. Nothing may crash the process or hang; every failure must be a TransferError with
 * a documented code. Failures are collected and printed all at once (input seed included) to be reproducible.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachHead,
  augmentImages,
  env,
  evaluate,
  fit,
  freeze,
  fromTensors,
  loadBackbone,
  predict,
  resizeImages,
  splitDataset,
  toClassIndices,
  TransferError,
  type TransferErrorCode,
  type TransferModel,
} from '../../src/index';
import { decodeBmp, decodeImage, readImageHeader } from '../../src/node/decode';
import { imageFolder } from '../../src/node/image-folder';
import { Random } from '../../src/util/random';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;
const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? 'wasm';
const DOCUMENTED: readonly TransferErrorCode[] = [
  'INVALID_ARGUMENT', 'UNKNOWN_BACKBONE', 'LAYER_NOT_FOUND', 'SHAPE_MISMATCH', 'CLASS_MISMATCH', 'EMPTY_DATA', 'MODEL_LOAD_FAILED',
  'MODEL_INVALID', 'SAVE_FAILED', 'NOT_SUPPORTED', 'NETWORK', 'IMAGE_DECODE_FAILED', 'NUMERICAL_FAULT', 'ABORTED', 'NODE_ONLY',
];

/** Runs `fn`, failing on a hang; returns a description of an undocumented failure, or undefined. */
async function probe(what: string, fn: () => unknown, codes: readonly TransferErrorCode[], timeoutMs = 10_000): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(fn),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`HANG: no answer in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return undefined;
  } catch (error) {
    if (error instanceof TransferError && codes.includes(error.code) && error.message.length > 10) return undefined;
    const where = process.env.FUZZ_DETAIL ? ` ${String((error as Error)?.stack).split("\n").slice(1, 3).join(" ")}` : "";
    return `${what}: ${error instanceof TransferError ? `TransferError ${error.code}` : (error as Error)?.constructor?.name}: ${String((error as Error)?.message ?? error).slice(0, 200)}${where}`;
  } finally {
    clearTimeout(timer);
  }
}

function bmp(width: number, height: number, bpp: 24 | 32 | 8, bitfields = false): Uint8Array {
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  const palette = bpp === 8 ? 256 * 4 : 0;
  const masks = bitfields ? 12 : 0;
  const offset = 14 + 40 + masks + palette;
  const out = new Uint8Array(offset + rowBytes * Math.abs(height));
  const v = new DataView(out.buffer);
  out[0] = 0x42;
  out[1] = 0x4d;
  v.setUint32(2, out.length, true);
  v.setUint32(10, offset, true);
  v.setUint32(14, 40, true);
  v.setInt32(18, width, true);
  v.setInt32(22, height, true);
  v.setUint16(26, 1, true);
  v.setUint16(28, bpp, true);
  v.setUint32(30, bitfields ? 3 : 0, true);
  if (bitfields) {
    v.setUint32(54, 0x00ff0000, true);
    v.setUint32(58, 0x0000ff00, true);
    v.setUint32(62, 0x000000ff, true);
  }
  for (let i = offset; i < out.length; i++) out[i] = (i * 31) & 0xff;
  return out;
}

/** Mutations of a valid file: flips, overwrites with extreme values, truncation, insertion, splicing. */
function mutate(seed: Uint8Array, rng: Random, others: Uint8Array[]): Uint8Array {
  let b = seed.slice();
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    const kind = rng.int(8);
    const at = rng.int(Math.max(1, b.length));
    if (kind === 0) b[at] = b[at]! ^ (1 << rng.int(8));
    else if (kind === 1) b[at] = [0, 0xff, 0x7f, 0x80][rng.int(4)]!;
    else if (kind === 2) b = b.slice(0, at);
    else if (kind === 3) {
      const junk = new Uint8Array(1 + rng.int(64)).map(() => rng.int(256));
      b = new Uint8Array([...b.subarray(0, at), ...junk, ...b.subarray(at)]);
    } else if (kind === 4 && b.length > 8) {
      // Header fields: write an extreme 16/32-bit value in the first 64 bytes.
      const pos = rng.int(Math.min(60, b.length - 4));
      new DataView(b.buffer).setUint32(pos, [0xffffffff, 0x7fffffff, 0x80000000, 0, 0xffff, 65500][rng.int(6)]!, rng.next() < 0.5);
    } else if (kind === 5) {
      const other = others[rng.int(others.length)]!;
      b = new Uint8Array([...b.subarray(0, at), ...other.subarray(rng.int(other.length))]);
    } else if (kind === 6) {
      b.fill(rng.int(256), at, Math.min(b.length, at + 1 + rng.int(32)));
    } else {
      b = b.subarray(0, Math.max(0, b.length - 1 - rng.int(16))).slice();
    }
  }
  return b;
}

const DECODE_CODES: TransferErrorCode[] = ['IMAGE_DECODE_FAILED'];
let seeds: Uint8Array[] = [];
let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tfjs-transfer-fuzz-'));
  const base = sharp({ create: { width: 12, height: 9, channels: 3, background: '#3a7' } });
  seeds = [
    await base.clone().jpeg().toBuffer(),
    await base.clone().jpeg({ progressive: true }).toBuffer(),
    await base.clone().png().toBuffer(),
    await sharp({ create: { width: 7, height: 5, channels: 4, background: '#3a78' } }).png().toBuffer(),
    await base.clone().webp().toBuffer(),
    await base.clone().gif().toBuffer(),
  ].map((b) => new Uint8Array(b));
  seeds.push(bmp(7, 5, 24), bmp(6, 4, 32, true), bmp(9, 3, 8), bmp(5, -4 as number, 24));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('fuzzing the image decoders', () => {
  it('random and mutated bytes: only IMAGE_DECODE_FAILED, no crash, no hang', async () => {
    const rng = new Random(20240601);
    const failures: string[] = [];
    const total = 2400;
    let decoded = 0;
    const t0 = Date.now();
    for (let i = 0; i < total; i++) {
      let bytes: Uint8Array;
      if (i % 6 === 0) bytes = new Uint8Array(rng.int(200)).map(() => rng.int(256)); // pure noise
      else if (i % 6 === 1) {
        // noise behind a real magic number
        const magic = seeds[rng.int(seeds.length)]!.subarray(0, 2 + rng.int(14));
        bytes = new Uint8Array([...magic, ...new Uint8Array(rng.int(300)).map(() => rng.int(256))]);
      } else bytes = mutate(seeds[rng.int(seeds.length)]!, rng, seeds);
      const maxPixels = i % 10 === 0 ? undefined : 1_000_000;
      const tag = `input ${i} (${bytes.length} bytes, head ${Buffer.from(bytes.subarray(0, 8)).toString('hex')})`;
      const f1 = await probe(`readImageHeader ${tag}`, () => readImageHeader(bytes, { maxPixels }), DECODE_CODES);
      const f2 = await probe(`decodeImage ${tag}`, async () => {
        const out = await decodeImage(bytes, { maxPixels, size: i % 3 === 0 ? [8, 8] : undefined });
        if (out.data.length !== out.width * out.height * 3) throw new Error(`bad output size ${out.data.length} for ${out.width}x${out.height}`);
        decoded++;
      }, DECODE_CODES);
      const f3 = bytes[0] === 0x42 ? await probe(`decodeBmp ${tag}`, () => decodeBmp(bytes, { maxPixels }), DECODE_CODES) : undefined;
      for (const f of [f1, f2, f3]) if (f) failures.push(f);
    }
    console.info(`FUZZ decoders: ${total} inputs (x2-3 entry points), ${decoded} decoded, ${failures.length} undocumented failures, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(failures.slice(0, 20)).toEqual([]);
  }, 120_000);

  it('imageFolder over a folder of mutated files skips them with reasons and never leaks', async () => {
    const rng = new Random(7);
    const dir = join(tmp, 'folder');
    for (const cls of ['a', 'b']) {
      await mkdir(join(dir, cls), { recursive: true });
      for (let i = 0; i < 60; i++) {
        const seed = seeds[rng.int(seeds.length)]!;
        const bytes = i % 5 === 0 ? seed : mutate(seed, rng, seeds);
        await writeFile(join(dir, cls, `f${i}.${['jpg', 'png', 'bmp', 'gif', 'webp', 'bin'][rng.int(6)]}`), bytes);
      }
    }
    const before = tf.memory().numTensors;
    const failures: string[] = [];
    let images = 0;
    for (const verify of [false, true]) {
      const f = await probe(`imageFolder verify=${verify}`, async () => {
        const folder = await imageFolder(dir, { size: [16, 16], validationSplit: 0.2, verify, progressBar: false });
        for (const split of [folder.train, folder.validation!]) {
          for await (const batch of split.batches({ batchSize: 8, shuffle: true, augment: split === folder.train })) {
            images += batch.xs.shape[0];
            const finite = tf.tidy(() => tf.sum(batch.xs).dataSync()[0]!);
            if (!Number.isFinite(finite)) throw new Error('non-finite pixels from a decoded file');
            tf.dispose([batch.xs, batch.ys]);
          }
        }
        expect(folder.skipped.length).toBeGreaterThan(0);
        for (const s of folder.skipped) expect(s.reason.length).toBeGreaterThan(5);
      }, ['EMPTY_DATA', 'IMAGE_DECODE_FAILED'], 60_000);
      if (f) failures.push(f);
    }
    const strict = await probe('imageFolder strict', () => imageFolder(dir, { size: [16, 16], strict: true, progressBar: false }), ['IMAGE_DECODE_FAILED', 'INVALID_ARGUMENT']);
    if (strict) failures.push(strict);
    console.info(`FUZZ imageFolder: 240 files (2 passes + strict), ${images} images delivered`);
    expect(failures).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
  }, 120_000);
});

/** Hostile values for any option. */
function hostile(rng: Random): unknown {
  const pool: (() => unknown)[] = [
    () => undefined, () => null, () => NaN, () => -1, () => 0, () => -0, () => 0.5, () => 1, () => 2, () => 1e9, () => Infinity,
    () => -Infinity, () => '3', () => '', () => 'relu', () => 'avg', () => true, () => false, () => ({}), () => [],
    () => [1, 'x', null], () => [8], () => [-3], () => () => 1, () => 'x'.repeat(10_000), () => new Date(0), () => [16, 16],
    () => ['a', 'a'], () => ({ length: 2 }), () => new Float32Array(2),
    // Not generated: Symbols, BigInts and objects whose toString throws (error messages format values with
    // String() / JSON.stringify, which throw on those; see docs/reliability.md).
  ];
  return pool[rng.int(pool.length)]!();
}

function randomOptions(rng: Random, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const count = 1 + rng.int(3);
  for (let i = 0; i < count; i++) out[keys[rng.int(keys.length)]!] = hostile(rng);
  return out;
}

describe('fuzzing the public API with random options', () => {
  let model: TransferModel;
  let data: { xs: tf.Tensor4D; ys: number[] };
  beforeAll(async () => {
    model = attachHead(freeze(await loadBackbone(tinyBackbone(16), { takeOwnership: true })), { classes: ['l', 'r'], seed: 5 });
    data = stripes(6, 16);
  });
  afterAll(() => {
    data.xs.dispose();
    model.dispose();
  });

  it('every rejection is a TransferError with a documented code; no tensor leaks', async () => {
    const rng = new Random(99);
    const rounds = backend === 'cpu' ? 60 : 150;
    const failures: string[] = [];
    const before = tf.memory().numTensors;
    let inputs = 0;
    const t0 = Date.now();
    const keys = {
      fit: ['epochs', 'batchSize', 'learningRate', 'optimizer', 'validationSplit', 'classWeight', 'seed', 'shuffle', 'augment', 'earlyStopping', 'callbacks', 'signal', 'verbose', 'extractBatchSize', 'gradientNormWarning', 'checkpoint', 'validationData', 'onProgress'],
      attachHead: ['classes', 'pooling', 'dropout', 'hiddenUnits', 'hiddenActivation', 'l2', 'seed'],
      freeze: ['trainableFrom'],
      loadBackbone: ['featureLayer', 'inputSize', 'preprocessing', 'name', 'featureShape', 'fromTFHub', 'signal'],
      evaluate: ['batchSize', 'maxMisclassified', 'signal'],
      predict: ['batchSize'],
      fromTensors: ['classes', 'augment', 'fit', 'name'],
      split: ['validationSplit', 'seed', 'stratify'],
      labels: ['classes', 'expectedLength', 'inferClasses', 'what'],
      resize: ['fit', 'antialias'],
      augment: ['flip', 'rotation', 'zoom', 'translation', 'brightness', 'contrast'],
    };
    const calls: [string, () => Promise<unknown> | unknown][] = [];
    const leaks = new Map<string, string[]>();
    for (let r = 0; r < rounds; r++) {
      const o = () => (rng.next() < 0.1 ? hostile(rng) : randomOptions(rng, keys.fit)) as never;
      const fitOptions = { epochs: 1, verbose: false, ...(o() as object) };
      calls.length = 0;
      calls.push(
        ['fit', () => fit(model, data, fitOptions as never)],
        ['fit data', () => fit(model, (rng.next() < 0.5 ? { xs: data.xs, ys: hostile(rng) } : hostile(rng)) as never, { epochs: 1, verbose: false })],
        ['attachHead', async () => {
          const bb = await loadBackbone(tinyBackbone(16), { takeOwnership: true });
          try {
            attachHead(bb, { classes: 2, ...randomOptions(rng, keys.attachHead) } as never).dispose();
          } finally {
            bb.dispose();
          }
        }],
        ['freeze', async () => {
          const bb = await loadBackbone(tinyBackbone(16), { takeOwnership: true });
          try {
            freeze(bb, randomOptions(rng, keys.freeze) as never);
          } finally {
            bb.dispose();
          }
        }],
        ['loadBackbone', async () => {
          const m = tinyBackbone(16);
          try {
            (await loadBackbone(m, randomOptions(rng, keys.loadBackbone) as never)).dispose();
          } finally {
            // A failed call leaves the caller's model alone; a backbone's dispose() frees it too.
            if (!(m.weights[0] as unknown as { val: tf.Variable }).val.isDisposed) m.dispose();
          }
        }],
        ['evaluate', () => evaluate(model, data, randomOptions(rng, keys.evaluate) as never)],
        ['predict', () => predict(model, rng.next() < 0.2 ? (hostile(rng) as never) : data.xs, randomOptions(rng, keys.predict) as never)],
        ['fromTensors', () => fromTensors(data.xs, (rng.next() < 0.3 ? hostile(rng) : ['l', 'r', 'l', 'r', 'l', 'r']) as never, randomOptions(rng, keys.fromTensors) as never)],
        ['splitDataset', () => splitDataset(fromTensors(data.xs, ['l', 'r', 'l', 'r', 'l', 'r']), randomOptions(rng, keys.split) as never)],
        ['toClassIndices', () => toClassIndices((rng.next() < 0.5 ? hostile(rng) : ['a', 'b']) as never, randomOptions(rng, keys.labels) as never)],
        ['resizeImages', () => tf.dispose(resizeImages(data.xs, (rng.next() < 0.5 ? hostile(rng) : [8, 8]) as never, randomOptions(rng, keys.resize) as never))],
        ['augmentImages', () => tf.dispose(augmentImages(data.xs, randomOptions(rng, keys.augment) as never, rng.int(100)))],
      );
      for (const [name, call] of calls) {
        inputs++;
        const t = tf.memory().numTensors;
        const f = await probe(`${name} round ${r}`, call, DOCUMENTED, 30_000);
        const leaked = tf.memory().numTensors - t;
        if (leaked !== 0) leaks.set(name, [...(leaks.get(name) ?? []), `${leaked} (round ${r}, ${f ?? 'ok'})`]);
        if (f && process.env.FUZZ_DETAIL) console.log(f, name === "fit" ? JSON.stringify(fitOptions) : "", (f as string).includes("iterable") ? "" : "");
        if (data.xs.isDisposed) throw new Error(`${name} (round ${r}) disposed the caller's input tensor`);
        if (f) failures.push(f);
      }
    }
    console.info(`FUZZ api: ${inputs} calls, ${failures.length} undocumented failures, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect([...new Set(failures.map((f) => f.replace(/ round \d+/, '')))].slice(0, 40)).toEqual([]);
    expect([...leaks].map(([name, list]) => `${name}: ${list.length} calls leaked, e.g. ${list.slice(0, 3).join('; ')}`)).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
  }, 120_000);
});
