/**
 * Guide: bring your own images (docs/guides/your-own-images.md).
 *
 * Opens an image folder the way real folders are: with broken files, files that are not images, system files,
 * nested folders, an empty class, and a photo copied into both training and validation. Shows what `imageFolder`
 * keeps and skips (and why), and what `examine` reports before any training.
 *
 *   node --import tsx examples/guides/your-own-images.ts                          # a messy demo folder
 *   node --import tsx examples/guides/your-own-images.ts --data ../shared/data/cats_vs_dogs_fullres
 *
 * In your application: `import { imageFolder, examine } from 'tfjs-transfer/node'`.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { examine, formatReport, imageFolder, type ExamineReport, type SkippedImage } from '../../src/node/index';
import { isMain, useBackend } from './common';

/** Options of {@link main}. */
export interface YourOwnImagesOptions {
  /** The folder to open. Default: a demo folder with every kind of problem, built in a temporary folder. */
  data?: string;
  /** Size images are resized to for training. Default 96. */
  size?: number;
  /** Print the report. Default true. */
  verbose?: boolean;
}

/** What {@link main} found. */
export interface YourOwnImagesResult {
  /** The class names. */
  classes: readonly string[];
  /** Images usable for training and validation. */
  counts: { train: number; validation: number };
  /** What `examine` reported. */
  report: ExamineReport;
  /** Every file left out, with the reason (scan time and batch time). */
  skipped: readonly SkippedImage[];
  /** Images that came out of one pass over the training batches. */
  decoded: number;
}

/** A photo-like image: a colour gradient with noise, encoded as `format`. */
async function photo(width: number, height: number, hue: 'red' | 'blue', seed: number, format: 'jpeg' | 'png' = 'jpeg'): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let i = 0; i < width * height; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const noise = (s % 60) - 30;
    const t = (i % width) / width;
    const [r, g, b] = hue === 'red' ? [180 + noise, 90 + 40 * t, 70] : [70, 90 + 40 * t, 180 + noise];
    pixels.set([r, g, b].map((v) => Math.max(0, Math.min(255, Math.round(v)))), i * 3);
  }
  const image = sharp(pixels, { raw: { width, height, channels: 3 } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 85 }).toBuffer();
}

/**
 * Writes a demo folder with the problems real folders have:
 *
 * ```
 * photos/train/cat/      6 JPEGs of different sizes, 1 PNG, 1 truncated JPEG, 1 text file named .jpg
 * photos/train/dog/      5 JPEGs, 2 more in a nested folder, notes.txt, Thumbs.db
 * photos/train/bird/     (empty)
 * photos/validation/...  3 + 3 JPEGs, one of them a copy of a training photo
 * photos/.DS_Store
 * ```
 */
export async function writeMessyFolder(root: string): Promise<string> {
  const dir = (...parts: string[]) => join(root, ...parts);
  for (const d of ['train/cat', 'train/dog/more', 'train/bird', 'validation/cat', 'validation/dog']) await mkdir(dir(d), { recursive: true });
  for (let i = 0; i < 6; i++) await writeFile(dir('train/cat', `cat${i}.jpg`), await photo(120 + 20 * i, 100 + 10 * i, 'red', i + 1));
  await writeFile(dir('train/cat', 'cat-screenshot.png'), await photo(160, 120, 'red', 99, 'png'));
  const whole = await photo(200, 150, 'red', 7);
  await writeFile(dir('train/cat', 'cut-off.jpg'), whole.subarray(0, Math.floor(whole.length / 2))); // an interrupted copy
  await writeFile(dir('train/cat', 'not-a-photo.jpg'), 'this is text, not a JPEG\n');
  for (let i = 0; i < 5; i++) await writeFile(dir('train/dog', `dog${i}.jpg`), await photo(140 + 10 * i, 110, 'blue', 20 + i));
  for (let i = 0; i < 2; i++) await writeFile(dir('train/dog/more', `dog-extra${i}.jpg`), await photo(130, 130, 'blue', 40 + i));
  await writeFile(dir('train/dog', 'notes.txt'), 'dogs from the park\n');
  await writeFile(dir('train/dog', 'Thumbs.db'), Buffer.alloc(64));
  await writeFile(dir('.DS_Store'), Buffer.alloc(64));
  for (let i = 0; i < 3; i++) await writeFile(dir('validation/cat', `vcat${i}.jpg`), await photo(150, 120, 'red', 60 + i));
  for (let i = 0; i < 2; i++) await writeFile(dir('validation/dog', `vdog${i}.jpg`), await photo(150, 120, 'blue', 70 + i));
  await writeFile(dir('validation/dog', 'same-as-train.jpg'), await readFile(dir('train/dog', 'dog0.jpg'))); // a leak
  return root;
}

export async function main(options: YourOwnImagesOptions = {}): Promise<YourOwnImagesResult> {
  const verbose = options.verbose ?? true;
  const size = options.size ?? 96;
  const temp = options.data ? undefined : await mkdtemp(join(tmpdir(), 'tfjs-transfer-own-images-'));
  try {
    const data = options.data ?? (await writeMessyFolder(join(temp!, 'photos')));

    // Scan: headers only (format, size, content hash). Unusable files are skipped and listed, not fatal;
    // `strict: true` makes them errors, `verify: true` decodes everything up front.
    const folder = await imageFolder(data, { size: [size, size], progressBar: false });

    // Examine before training: counts and imbalance per split, sizes, formats, duplicates across splits,
    // skipped files with their reason, and warnings.
    const report = examine(folder, { verbose: false });
    if (verbose) console.log(formatReport(report));

    // Batches decode (and resize) lazily; a file that only fails now is skipped and added to `skipped`.
    let decoded = 0;
    for await (const { xs, ys } of folder.train.batches({ batchSize: 8 })) {
      decoded += xs.shape[0];
      xs.dispose();
      ys.dispose();
    }
    if (verbose) {
      console.log(`\n${decoded} training images decoded; ${folder.skipped.filter((s) => !s.ignored).length} files skipped:`);
      for (const s of folder.skipped) console.log(`  ${s.ignored ? 'ignored' : 'skipped'}  ${s.source}: ${s.reason}`);
      for (const w of folder.warnings) console.log(`  warning: ${w}`);
    }
    return {
      classes: folder.classes,
      counts: { train: folder.train.size, validation: folder.validation?.size ?? 0 },
      report,
      skipped: folder.skipped,
      decoded,
    };
  } finally {
    if (temp) await rm(temp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { data: { type: 'string' }, size: { type: 'string' } } });
  await useBackend();
  await main({ data: values.data, size: values.size ? Number(values.size) : undefined });
}
