import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SkippedImage } from '../../src/data/dataset';
import { env } from '../../src/env';
import { examine } from '../../src/examine/examine';
import { DEFAULT_MAX_PIXELS, decodeImage } from '../../src/node/decode';
import { imageFolder } from '../../src/node/image-folder';

const FULLRES = join(__dirname, '../../../shared/data/cats_vs_dogs_fullres');

let baseline = 0;
let logged: string[] = [];
const logger = env.logger;
beforeEach(() => {
  baseline = tf.memory().numTensors;
  logged = [];
  env.logger = (m) => logged.push(m);
});
afterEach(() => {
  env.logger = logger;
  expect(tf.memory().numTensors).toBe(baseline);
});

/** A valid JPEG whose SOF header claims width x height (nothing beyond the header is decodable). */
async function jpegClaiming(width: number, height: number): Promise<Buffer> {
  const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#777' } }).jpeg().toBuffer();
  for (let i = 2; i < jpeg.length - 9; i++) {
    if (jpeg[i] === 0xff && (jpeg[i + 1] === 0xc0 || jpeg[i + 1] === 0xc2)) {
      jpeg.writeUInt16BE(height, i + 5);
      jpeg.writeUInt16BE(width, i + 7);
      return jpeg;
    }
  }
  throw new Error('no SOF marker');
}

function reasonOf(skipped: readonly SkippedImage[], suffix: string): string | undefined {
  return skipped.find((s) => s.source.endsWith(suffix))?.reason;
}

describe('bad input in an image folder', () => {
  let dir = '';
  let real: Buffer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tfjs-transfer-bad-'));
    real = await readFile(join(FULLRES, 'cats', 'cat.4001.jpg'));
    const cats = join(dir, 'cats');
    const dogs = join(dir, 'dogs');
    await mkdir(join(cats, 'nested'), { recursive: true });
    await mkdir(dogs);
    await mkdir(join(dir, 'empty'));
    await copyFile(join(FULLRES, 'cats', 'cat.4002.jpg'), join(cats, 'good1.jpg'));
    await copyFile(join(FULLRES, 'cats', 'cat.4003.jpg'), join(cats, 'good2.jpg'));
    await copyFile(join(FULLRES, 'cats', 'cat.4004.jpg'), join(cats, 'nested', 'deeper.jpg'));
    for (let i = 1; i <= 3; i++) await copyFile(join(FULLRES, 'dogs', `dog.400${i}.jpg`), join(dogs, `d${i}.jpg`));
    await writeFile(join(cats, 'truncated.jpg'), real.subarray(0, Math.floor(real.length / 2)));
    const badHeader = Buffer.from(real);
    badHeader.fill(0x00, 2, 40);
    await writeFile(join(cats, 'corrupt-header.jpg'), badHeader);
    await writeFile(join(cats, 'zero.jpg'), Buffer.alloc(0));
    await writeFile(join(cats, 'notes.jpg'), 'hello, this is not a picture\n');
    await writeFile(join(cats, 'scan.tiff'), await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).tiff().toBuffer());
    await writeFile(join(cats, '.hidden.jpg'), real);
    await writeFile(join(cats, 'Thumbs.db'), Buffer.alloc(100, 1));
    await mkdir(join(cats, 'folder.jpg')); // a directory where a file is expected
    await symlink('..', join(cats, 'loop')); // points back to the class folder's parent
    await symlink('self', join(cats, 'self')); // a link to itself: ELOOP
    await symlink('does-not-exist.jpg', join(cats, 'broken.jpg'));
    await writeFile(join(cats, 'huge.jpg'), await jpegClaiming(10000, 8000));
    await copyFile(join(FULLRES, 'dogs', 'dog.4004.jpg'), join(dir, 'loose.jpg'));
    await copyFile(join(FULLRES, 'dogs', 'dog.4005.jpg'), join(dogs, 'will-vanish.jpg'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('skips, counts and explains every bad file by default, without crashing', async () => {
    const data = await imageFolder(dir, { validationSplit: 0, size: [32, 32] });
    expect(data.classes).toEqual(['cats', 'dogs', 'empty']);
    expect(data.train.size).toBe(7); // good1, good2, nested/deeper, d1..d3, will-vanish
    expect(data.train.sources.some((s) => s.endsWith(join('nested', 'deeper.jpg')))).toBe(true);
    const s = data.skipped;
    expect(reasonOf(s, 'truncated.jpg')).toMatch(/corrupt or truncated jpeg/);
    expect(reasonOf(s, 'corrupt-header.jpg')).toMatch(/not an image|corrupt/);
    expect(reasonOf(s, 'zero.jpg')).toBe('empty file (0 bytes)');
    expect(reasonOf(s, 'notes.jpg')).toMatch(/not an image: .*"hello, this is n/);
    expect(reasonOf(s, 'scan.tiff')).toMatch(/unsupported format 'tiff'/);
    expect(reasonOf(s, 'huge.jpg')).toMatch(/10000x8000 \(80\.0 megapixels\), above the limit of 50\.0 megapixels/);
    expect(reasonOf(s, join('cats', 'loop'))).toMatch(/symlink loop/);
    expect(reasonOf(s, join('cats', 'self'))).toMatch(/symlink loop/);
    expect(reasonOf(s, 'broken.jpg')).toMatch(/broken symbolic link/);
    expect(reasonOf(s, 'loose.jpg')).toMatch(/image outside any class folder/);
    expect(s.find((x) => x.source.endsWith('.hidden.jpg'))?.ignored).toBe(true);
    expect(s.find((x) => x.source.endsWith('Thumbs.db'))?.ignored).toBe(true);
    expect(s.every((x) => x.stage === 'scan')).toBe(true);
    expect(data.warnings.join('\n')).toMatch(/class "empty" has no usable images/);
    expect(logged.join('\n')).toMatch(/skipped \d+ file\(s\)/);

    const report = examine(data, { verbose: false });
    expect(report.skipped.map((x) => x.source)).not.toContain(join(dir, 'cats', 'Thumbs.db'));
    expect(report.ignored).toBe(2);
    expect(report.skipped.length).toBe(s.length - 2);
  });

  it('records a file that fails at batch time, reports it through onSkip and the log, and keeps going', async () => {
    const onSkip: SkippedImage[] = [];
    const data = await imageFolder(dir, { validationSplit: 0, size: [32, 32], onSkip: (x) => onSkip.push(x) });
    const before = data.skipped.length;
    await unlink(join(dir, 'dogs', 'will-vanish.jpg'));
    try {
      let n = 0;
      for await (const b of data.train.batches({ batchSize: 4 })) {
        n += b.xs.shape[0];
        tf.dispose([b.xs, b.ys]);
      }
      expect(n).toBe(6);
      expect(data.skipped.length).toBe(before + 1);
      const last = data.skipped.at(-1);
      expect(last).toMatchObject({ stage: 'load', label: 'dogs' });
      expect(last?.source).toMatch(/will-vanish\.jpg$/);
      expect(last?.reason).toMatch(/ENOENT/);
      expect(onSkip).toEqual([last]);
      expect(logged.join('\n')).toMatch(/skipped .*will-vanish\.jpg/);
    } finally {
      await copyFile(join(FULLRES, 'dogs', 'dog.4005.jpg'), join(dir, 'dogs', 'will-vanish.jpg'));
    }
  });

  it('makes bad files an error with strict: true, listing them', async () => {
    const error = await imageFolder(dir, { strict: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'IMAGE_DECODE_FAILED' });
    const message = (error as Error).message;
    expect(message).toMatch(/file\(s\) in .* cannot be used \(strict mode\)/);
    expect(message).toMatch(/zero\.jpg: empty file/);
    expect(message).not.toMatch(/Thumbs\.db/);
  });

  it('refuses images over a configurable pixel limit from the header, before decoding', async () => {
    expect(DEFAULT_MAX_PIXELS).toBe(50_000_000);
    await expect(decodeImage(await jpegClaiming(10000, 8000))).rejects.toThrow(/above the limit/);
    // The real photos (about 500x375 = 187 500 pixels) are over a 0.1 megapixel limit.
    await expect(decodeImage(real, { maxPixels: 100_000 })).rejects.toThrow(/above the limit of 0\.1 megapixels/);
    await expect(imageFolder(dir, { maxPixels: 100_000 })).rejects.toThrow(/no usable images in .*above the limit/s);
  });

  it('verifies whole files while scanning with verify: true', async () => {
    const data = await imageFolder(dir, { validationSplit: 0, verify: true });
    expect(data.train.size).toBe(7);
  });

  it('rejects a folder with no class folders, and flags a single class', async () => {
    const flat = await mkdtemp(join(tmpdir(), 'tfjs-transfer-flat-'));
    try {
      await writeFile(join(flat, 'a.jpg'), real);
      await expect(imageFolder(flat)).rejects.toThrow(/has no class folders; put each class's images in its own folder/);
      await mkdir(join(flat, 'cats'));
      await writeFile(join(flat, 'cats', 'c.jpg'), real);
      await writeFile(join(flat, 'cats', 'd.jpg'), Buffer.concat([real, Buffer.from([0])]));
      await rm(join(flat, 'a.jpg'));
      const one = await imageFolder(flat, { validationSplit: 0 });
      expect(one.warnings.join()).toMatch(/only one class \("cats"\)/);
      await expect(imageFolder(flat, { strict: true })).rejects.toThrow(/only one class/);
      await mkdir(join(flat, 'dogs'));
      await writeFile(join(flat, 'dogs', 'x.jpg'), 'not an image');
      await expect(imageFolder(flat, { classes: ['dogs'] })).rejects.toThrow(/no usable images/);
    } finally {
      await rm(flat, { recursive: true, force: true });
    }
  });
});
