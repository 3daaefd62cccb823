import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { env } from '../../src/env';
import { examine } from '../../src/examine/examine';
import { decodeBmp, decodeImage, readImageHeader, sniffFormat } from '../../src/node/decode';
import { contentHash } from '../../src/node/hash';
import { imageFolder } from '../../src/node/image-folder';

const DATA = join(__dirname, '../../../shared/data');
const FILTERED = join(DATA, 'cats_and_dogs_filtered_200px');
const FULLRES = join(DATA, 'cats_vs_dogs_fullres');

let baseline = 0;
beforeEach(() => {
  env.verbose = false;
  baseline = tf.memory().numTensors;
});
afterEach(() => {
  env.verbose = true;
  expect(tf.memory().numTensors).toBe(baseline);
});

/** A BMP file: rows bottom-up unless topDown; `pixels` is RGB (or RGBA for 32-bit) row-major, top row first. */
function makeBmp(width: number, height: number, bpp: 24 | 32, pixels: number[], topDown = false): Buffer {
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  const buf = Buffer.alloc(54 + rowBytes * height);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(topDown ? -height : height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(bpp, 28);
  const c = bpp / 8;
  const inC = bpp === 32 ? 4 : 3;
  for (let y = 0; y < height; y++) {
    const row = topDown ? y : height - 1 - y;
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * inC;
      const o = 54 + row * rowBytes + x * c;
      buf[o] = pixels[p + 2] as number;
      buf[o + 1] = pixels[p + 1] as number;
      buf[o + 2] = pixels[p] as number;
      if (c === 4) buf[o + 3] = pixels[p + 3] as number;
    }
  }
  return buf;
}

describe('decodeImage', () => {
  it('decodes every supported format to 8-bit RGB, converting gray, alpha, 16-bit and CMYK', async () => {
    const red = { r: 200, g: 10, b: 20 };
    const rgb = sharp({ create: { width: 6, height: 4, channels: 3, background: red } });
    const cases: [string, Buffer][] = [
      ['jpeg', await rgb.clone().jpeg({ quality: 100 }).toBuffer()],
      ['png', await rgb.clone().png().toBuffer()],
      ['webp', await rgb.clone().webp({ lossless: true }).toBuffer()],
      ['gif', await rgb.clone().gif().toBuffer()],
      ['png', await sharp({ create: { width: 6, height: 4, channels: 4, background: { ...red, alpha: 0.5 } } }).png().toBuffer()],
      ['png', await rgb.clone().png().toColourspace('rgb16').toBuffer()],
      ['jpeg', await rgb.clone().toColourspace('cmyk').jpeg().toBuffer()],
      ['bmp', makeBmp(6, 4, 24, new Array(6 * 4).fill([200, 10, 20]).flat())],
    ];
    for (const [format, bytes] of cases) {
      expect(sniffFormat(bytes)).toBe(format);
      const out = await decodeImage(bytes);
      expect([out.format, out.width, out.height, out.channels, out.data.length]).toEqual([format, 6, 4, 3, 72]);
      expect(Math.abs((out.data[0] as number) - 200)).toBeLessThan(20);
      expect(out.data[1] as number).toBeLessThan(40);
    }
    const gray = await sharp({ create: { width: 3, height: 3, channels: 3, background: { r: 90, g: 90, b: 90 } } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    expect((await sharp(gray).metadata()).channels).toBe(1);
    const g = await decodeImage(gray);
    expect([g.channels, g.data[0], g.data[1], g.data[2]]).toEqual([3, 90, 90, 90]);
  });

  it('takes the first frame of an animated GIF', async () => {
    const frames = Buffer.concat([Buffer.alloc(4 * 4 * 4, 255), Buffer.from(Array.from({ length: 4 * 4 * 4 }, (_, i) => (i % 4 === 3 ? 255 : 0)))]);
    const gif = await sharp(frames, { raw: { width: 4, height: 8, channels: 4, pageHeight: 4 } }).gif().toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const out = await decodeImage(gif);
    expect([out.width, out.height, out.data[0]]).toEqual([4, 4, 255]);
  });

  it('applies EXIF orientation', async () => {
    const wide = await sharp({ create: { width: 8, height: 4, channels: 3, background: '#888' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect(await readImageHeader(wide)).toEqual({ format: 'jpeg', width: 4, height: 8 });
    const out = await decodeImage(wide);
    expect([out.width, out.height]).toEqual([4, 8]);
  });

  it('resizes with squash, centerCrop and pad', async () => {
    // Left half black, right half white, 40x20.
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 20; x < 40; x++) raw.fill(255, (y * 40 + x) * 3, (y * 40 + x) * 3 + 3);
    const png = await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } }).png().toBuffer();
    const squash = await decodeImage(png, { size: [10, 10] });
    expect([squash.width, squash.height]).toEqual([10, 10]);
    const pad = await decodeImage(png, { size: [10, 10], fit: 'pad' });
    expect(pad.data[0]).toBe(0); // top-left corner is padding
    expect(pad.data[(5 * 10 + 9) * 3]).toBeGreaterThan(200); // middle right is the white half
    const crop = await decodeImage(png, { size: [10, 10], fit: 'centerCrop' });
    expect(crop.data[(5 * 10 + 0) * 3]).toBeLessThan(30);
    expect(crop.data[(5 * 10 + 9) * 3]).toBeGreaterThan(220);
  });
});

describe('decodeBmp', () => {
  it('decodes 24-bit bottom-up and 32-bit top-down files exactly', () => {
    const px24 = [255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const a = decodeBmp(makeBmp(3, 2, 24, px24));
    expect([a.width, a.height, Array.from(a.data)]).toEqual([3, 2, px24]);
    const px32 = [10, 20, 30, 255, 40, 50, 60, 0];
    const b = decodeBmp(makeBmp(1, 2, 32, px32, true));
    expect(Array.from(b.data)).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it('decodes 8-bit palette images and refuses RLE and truncated files with a reason', () => {
    const buf = Buffer.alloc(54 + 8 + 4);
    buf.write('BM', 0, 'latin1');
    buf.writeUInt32LE(54 + 8, 10);
    buf.writeUInt32LE(40, 14);
    buf.writeInt32LE(2, 18);
    buf.writeInt32LE(1, 22);
    buf.writeUInt16LE(8, 28);
    buf.writeUInt32LE(2, 46); // two palette colours
    Buffer.from([30, 20, 10, 0, 3, 2, 1, 0]).copy(buf, 54); // BGRx
    buf[62] = 1;
    buf[63] = 0;
    expect(Array.from(decodeBmp(buf).data)).toEqual([1, 2, 3, 10, 20, 30]);
    const rle = Buffer.from(buf);
    rle.writeUInt32LE(1, 30);
    expect(() => decodeBmp(rle)).toThrow(/unsupported BMP: RLE8/);
    expect(() => decodeBmp(makeBmp(4, 4, 24, new Array(48).fill(0)).subarray(0, 70))).toThrow(/truncated BMP/);
  });
});

describe('imageFolder', () => {
  it('reads the train/validation layout and streams batches at the images own size', async () => {
    const progress: number[] = [];
    const data = await imageFolder(FILTERED, { onProgress: (p) => progress.push(p.done), progressBar: false });
    expect(data.layout).toBe('split');
    expect(data.classes).toEqual(['cats', 'dogs']);
    expect([data.train.size, data.validation?.size]).toEqual([2000, 1000]);
    expect(data.train.labels.filter((l) => l === 1)).toHaveLength(1000);
    expect(data.skipped.filter((s) => !s.ignored)).toEqual([]);
    expect(progress.at(-1)).toBe(3000);
    expect(data.train.keys?.[0]).toMatch(/^[0-9a-f]{32}$/);
    let seen = 0;
    for await (const b of data.train.batches({ batchSize: 16, shuffle: true, seed: 1 })) {
      expect(b.xs.shape).toEqual([16, 200, 200, 3]);
      expect(b.keys).toHaveLength(16);
      expect(b.sources?.[0]).toMatch(/\.jpg$/);
      const max = tf.tidy(() => tf.max(b.xs).dataSync()[0] as number);
      expect(max).toBeGreaterThan(200);
      expect(max).toBeLessThanOrEqual(255);
      tf.dispose([b.xs, b.ys]);
      if (++seen === 2) break;
    }
    const report = examine(data, { verbose: false });
    expect(report.sizes?.width).toEqual({ min: 200, median: 200, max: 200 });
    expect(report.duplicates).toBeDefined();
  });

  describe('with the class-folder layout', () => {
    let dir = '';
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'tfjs-transfer-folder-'));
      for (const [cls, prefix] of [['cats', 'cat'], ['dogs', 'dog']] as const) {
        await mkdir(join(dir, cls));
        for (let i = 1; i <= 10; i++) {
          const name = `${prefix}.${4000 + i}.jpg`;
          await copyFile(join(FULLRES, cls, name), join(dir, cls, name));
        }
      }
      // The same photo in both classes' folders (a labelling mistake examine should surface as a duplicate).
      await copyFile(join(FULLRES, 'cats', 'cat.4001.jpg'), join(dir, 'dogs', 'copy-of-cat.jpg'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('splits seeded and stratified, labels from sorted folder names, keys from content', async () => {
      const a = await imageFolder(dir, { size: [64, 48], validationSplit: 0.2, seed: 3 });
      const b = await imageFolder(dir, { size: [64, 48], validationSplit: 0.2, seed: 3 });
      expect(a.layout).toBe('classes');
      expect(a.classes).toEqual(['cats', 'dogs']);
      expect([a.train.size, a.validation?.size]).toEqual([17, 4]);
      expect(a.validation?.sources).toEqual(b.validation?.sources);
      expect(a.validation?.labels.filter((l) => l === 0)).toHaveLength(2);
      const i = a.train.sources.findIndex((s) => s.endsWith('cat.4002.jpg'));
      expect(a.train.keys?.[i]).toBe(contentHash(await readFile(join(dir, 'cats', 'cat.4002.jpg'))));
      const shapes: number[][] = [];
      for await (const batch of a.train.batches({ batchSize: 8, fit: 'centerCrop' })) {
        shapes.push(batch.xs.shape);
        tf.dispose([batch.xs, batch.ys]);
      }
      expect(shapes).toEqual([[8, 64, 48, 3], [8, 64, 48, 3], [1, 64, 48, 3]]);
    });

    it('takes an explicit class list (order and subset) and finds content duplicates', async () => {
      const data = await imageFolder(dir, { classes: ['dogs', 'cats'], validationSplit: 0 });
      expect(data.classes).toEqual(['dogs', 'cats']);
      expect(data.validation).toBeUndefined();
      expect(data.train.labels.filter((l) => l === 0)).toHaveLength(11);
      const only = await imageFolder(dir, { classes: ['cats'], validationSplit: 0 });
      expect(only.warnings.join()).toMatch(/left out: dogs/);
      await expect(imageFolder(dir, { classes: ['cats', 'birds'] })).rejects.toThrow(/no folder for class "birds"/);
      const split = await imageFolder(dir, { validationSplit: 0.5, seed: 1 });
      const report = examine(split, { verbose: false });
      const keys = new Set(split.train.keys);
      const crossing = split.validation?.keys?.filter((k) => keys.has(k)) ?? [];
      expect(report.duplicates).toHaveLength(crossing.length);
      expect(report.sizes?.width.max).toBeGreaterThan(200);
      expect(report.formats).toEqual({ jpeg: 21 });
    });

    it('decodes with one-core concurrency as well', async () => {
      const data = await imageFolder(dir, { size: [32, 32], concurrency: 1, validationSplit: 0 });
      let n = 0;
      for await (const batch of data.train.batches({ batchSize: 32 })) {
        n += batch.xs.shape[0];
        tf.dispose([batch.xs, batch.ys]);
      }
      expect(n).toBe(21);
    });
  });

  it('draws the scan progress bar only when verbose (default env.verbose), even on a terminal', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tfjs-transfer-bar-'));
    for (const cls of ['a', 'b']) {
      await mkdir(join(dir, cls));
      for (let i = 0; i < 2; i++) {
        const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 10 * i, g: 50, b: 90 } } }).png().toBuffer();
        await writeFile(join(dir, cls, `${i}.png`), png);
      }
    }
    const stderr = process.stderr;
    const tty = Object.getOwnPropertyDescriptor(stderr, 'isTTY');
    const write = stderr.write;
    const written: string[] = [];
    Object.defineProperty(stderr, 'isTTY', { value: true, configurable: true });
    stderr.write = ((chunk: unknown) => written.push(String(chunk)) > 0) as typeof stderr.write;
    const logger = env.logger;
    env.logger = () => undefined;
    try {
      env.verbose = false;
      await imageFolder(dir, { validationSplit: 0 });
      expect(written.join('')).not.toMatch(/scan \[/);
      await imageFolder(dir, { validationSplit: 0, verbose: true });
      expect(written.join('')).toMatch(/scan \[#+\] 4\/4/);
      written.length = 0;
      env.verbose = true;
      await imageFolder(dir, { validationSplit: 0, verbose: false });
      await imageFolder(dir, { validationSplit: 0, progressBar: false });
      expect(written.join('')).not.toMatch(/scan \[/);
      await imageFolder(dir, { validationSplit: 0 });
      expect(written.join('')).toMatch(/scan \[#+\] 4\/4/);
    } finally {
      stderr.write = write;
      if (tty) Object.defineProperty(stderr, 'isTTY', tty);
      else delete (stderr as { isTTY?: boolean }).isTTY;
      env.logger = logger;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('explains a missing folder and a file given as the folder', async () => {
    await expect(imageFolder(join(DATA, 'no-such-folder'))).rejects.toThrow(/cannot open .*no-such-folder.*ENOENT/);
    await expect(imageFolder(join(FILTERED, 'SOURCE.txt'))).rejects.toThrow(/is a file, not a folder/);
  });
});
