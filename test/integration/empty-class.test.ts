/**
 * A class whose files are all unreadable is an error before any training (EMPTY_DATA naming the class, its folder
 * and why its files were skipped), or, with `dropEmptyClasses`, left out with a warning.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageFolder } from '../../src/node/image-folder';
import { TransferError } from '../../src/errors';

async function png(color: string): Promise<Buffer> {
  return sharp({ create: { width: 16, height: 16, channels: 3, background: color } }).png().toBuffer();
}

describe('imageFolder: a class with no usable image', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tt-empty-class-'));
    for (const c of ['cats', 'dogs', 'birds', 'fish']) await mkdir(join(dir, c));
    for (let i = 0; i < 3; i++) {
      await writeFile(join(dir, 'cats', `c${i}.png`), await png('#a33'));
      await writeFile(join(dir, 'birds', `b${i}.png`), await png('#3a3'));
    }
    const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#33a' } }).jpeg().toBuffer();
    await writeFile(join(dir, 'dogs', 'cut.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    await writeFile(join(dir, 'dogs', 'notes.jpg'), 'not a picture\n');
    await writeFile(join(dir, 'dogs', 'zero.jpg'), Buffer.alloc(0));
    // fish/ has no files at all: a warning (fit refuses a class with no training image).
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('throws EMPTY_DATA naming the class, its folder, how many files were skipped and why', async () => {
    const error = await imageFolder(dir, { validationSplit: 0, verbose: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransferError);
    expect((error as TransferError).code).toBe('EMPTY_DATA');
    const message = (error as Error).message;
    expect(message).toMatch(/class "dogs" has no usable image in .*dogs: all 3 file\(s\) were skipped/);
    expect(message).toMatch(/empty file \(0 bytes\)/);
    expect(message).toMatch(/not an image/);
    expect(message).toMatch(/dropEmptyClasses/);
    expect(message).not.toMatch(/"cats"|"birds"/);
  });

  it('with dropEmptyClasses, leaves out every class without a usable image, with a warning, labels renumbered', async () => {
    const data = await imageFolder(dir, { validationSplit: 0, verbose: false, dropEmptyClasses: true });
    expect(data.classes).toEqual(['birds', 'cats']);
    expect(data.train.size).toBe(6);
    expect([...data.train.labels].sort()).toEqual([0, 0, 0, 1, 1, 1]);
    expect(data.train.sources.filter((s, i) => data.train.labels[i] === 1).every((s) => s.includes('cats'))).toBe(true);
    const warnings = data.warnings.join('\n');
    expect(warnings).toMatch(/class "dogs" has no usable image .*all 3 file\(s\) were skipped.*left out \(dropEmptyClasses\)/);
    expect(warnings).toMatch(/class "fish" has no files .*left out/);
  });

  it('the split layout: a class whose training files are all broken is refused even with validation images', async () => {
    const split = join(dir, '..', `${join(dir).split('/').pop()}-split`);
    try {
      for (const d of ['train/a', 'train/b', 'validation/a', 'validation/b']) await mkdir(join(split, d), { recursive: true });
      await writeFile(join(split, 'train/a/1.png'), await png('#a33'));
      await writeFile(join(split, 'train/b/1.png'), 'broken');
      await writeFile(join(split, 'validation/a/1.png'), await png('#a33'));
      await writeFile(join(split, 'validation/b/1.png'), await png('#33a'));
      await expect(imageFolder(split, { verbose: false })).rejects.toThrow(/class "b" has no usable image in .*train.b: all 1 file/);
      const dropped = await imageFolder(split, { verbose: false, dropEmptyClasses: true });
      expect(dropped.classes).toEqual(['a']);
      expect(dropped.validation?.size).toBe(1);
      expect(dropped.skipped.some((s) => s.source.endsWith(join('validation', 'b', '1.png')) && /left out/.test(s.reason))).toBe(true);
    } finally {
      await rm(split, { recursive: true, force: true });
    }
  });
});
