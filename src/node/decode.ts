/**
 * Decoding image files in Node with sharp (libvips): format sniffing, a pixel limit checked from the header before
 * decoding, EXIF orientation, conversion of grayscale / alpha / CMYK / 16-bit images to 8-bit RGB, and antialiased
 * bilinear resizing. sharp 0.35 has no BMP decoder, so BMP is decoded here (uncompressed 1/4/8/24/32-bit only).
 * @module
 */
import { availableParallelism, cpus } from 'node:os';
import type { Sharp, SharpOptions } from 'sharp';
import type { DecodedPixels } from '../data/dataset';
import { RESIZE_FITS, type ResizeFit } from '../data/resize';
import { TransferError, check } from '../errors';
import type { ImageSize } from '../types';

/**
 * Formats the pipeline decodes.
 * @category Step 2: Pipeline
 */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'bmp';

/**
 * Every format the pipeline decodes (GIF: the first frame).
 * @category Step 2: Pipeline
 */
export const SUPPORTED_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp', 'gif', 'bmp'];

/**
 * Largest image decoded by default, in pixels (50 megapixels: a 8660x5773 photo, 150 MB of RGB). Bigger images
 * are refused from their header, before any pixel is decoded, so a huge file cannot exhaust memory.
 * @category Step 2: Pipeline
 */
export const DEFAULT_MAX_PIXELS = 50_000_000;

/**
 * Facts read from an image's header, without decoding its pixels.
 * @category Step 2: Pipeline
 */
export interface ImageHeader {
  /** The container format found by content sniffing (not the file extension). */
  format: ImageFormat;
  /** Width after EXIF orientation. */
  width: number;
  /** Height after EXIF orientation. */
  height: number;
}

/**
 * Options for {@link decodeImage}.
 * @category Step 2: Pipeline
 */
export interface DecodeArgs {
  /**
   * Resize to `[height, width]` (bilinear, antialiased when shrinking).
   * @defaultValue keep the image's own size
   */
  size?: ImageSize;
  /** How a different aspect ratio is fitted into `size`; see {@link ResizeFit}. Default `'squash'`. */
  fit?: ResizeFit;
  /**
   * Refuse images with more pixels than this (checked from the header).
   * @defaultValue 50,000,000 (`DEFAULT_MAX_PIXELS`)
   */
  maxPixels?: number;
}

/**
 * A decoded image: 8-bit RGB pixels, `[height, width, 3]`, plus what was learned on the way.
 * @category Step 2: Pipeline
 */
export interface DecodedImage extends DecodedPixels {
  data: Uint8Array;
  channels: 3;
  /** The format that was decoded. */
  format: ImageFormat;
}

type SharpFactory = (input?: Buffer | Uint8Array, options?: SharpOptions) => Sharp;
let sharpPromise: Promise<SharpFactory> | undefined;

/** Loads sharp on first use (it is an optional dependency), with an actionable error if it is missing. @internal */
export function loadSharp(): Promise<SharpFactory> {
  sharpPromise ??= import('sharp').then(
    (mod) => ((mod as { default?: SharpFactory }).default ?? (mod as unknown as SharpFactory)) as SharpFactory,
    (error: unknown) => {
      sharpPromise = undefined;
      throw new TransferError(
        'NOT_SUPPORTED',
        `Decoding image files in Node needs the 'sharp' package, which could not be loaded (${String(error)}). ` +
          `Install it with \`npm install sharp\`.`,
        { cause: error },
      );
    },
  );
  return sharpPromise;
}

/**
 * Default number of images decoded at once: two per core, capped by libuv's thread pool (UV_THREADPOOL_SIZE, 4).
 * @category Step 2: Pipeline
 */
export function defaultConcurrency(): number {
  const cores = typeof availableParallelism === 'function' ? availableParallelism() : cpus().length;
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(2 * cores, pool));
}

function fail(reason: string, cause?: unknown): never {
  throw new TransferError('IMAGE_DECODE_FAILED', reason, cause === undefined ? undefined : { cause });
}

/**
 * The format of encoded image bytes, from their magic numbers: one of {@link SUPPORTED_FORMATS}, another known
 * image format's name (`'tiff'`, `'heif'`, `'svg'`, ...), or `undefined` when the bytes are not a known image.
 *
 * @example
 * ```ts
 * sniffFormat(await readFile('photo.jpg')); // 'jpeg'
 * ```
 * @category Step 2: Pipeline
 */
export function sniffFormat(bytes: Uint8Array): string | undefined {
  const b = bytes;
  const ascii = (start: number, end: number): string => String.fromCharCode(...b.subarray(start, end));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 26 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  if (b.length >= 4 && (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*')) return 'tiff';
  if (b.length >= 12 && ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    return brand.startsWith('avi') ? 'avif' : 'heif';
  }
  if (b.length >= 12 && b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0x0c && ascii(4, 8) === 'jP  ') return 'jp2';
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0x0a) return 'jxl';
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0) return 'ico';
  const head = ascii(0, Math.min(b.length, 256)).trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'svg';
  return undefined;
}

/** A short printable preview of bytes that are not an image, for messages. */
function preview(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.subarray(0, 16)).toString('latin1');
  const printable = /^[\x20-\x7e\r\n\t]*$/.test(text);
  return printable
    ? `it starts with the text "${text.replace(/\s+/g, ' ').trim()}${bytes.length > 16 ? '...' : ''}"`
    : `it starts with bytes ${Buffer.from(bytes.subarray(0, 8)).toString('hex')}`;
}

function checkPixels(width: number, height: number, maxPixels: number): void {
  if (!(width > 0 && height > 0)) fail(`the header gives an invalid size ${width}x${height}`);
  if (width * height > maxPixels) {
    fail(
      `image is ${width}x${height} (${(width * height / 1e6).toFixed(1)} megapixels), above the limit of ` +
        `${(maxPixels / 1e6).toFixed(1)} megapixels; shrink it, or raise \`maxPixels\` if you have the memory`,
    );
  }
}

/**
 * Reads format and size from the header only (no pixels are decoded), and refuses images above `maxPixels`
 * (default {@link DEFAULT_MAX_PIXELS}); throws `TransferError('IMAGE_DECODE_FAILED')` with a reason if it cannot.
 *
 * @example
 * ```ts
 * const { format, width, height } = await readImageHeader(await fs.readFile('photo.jpg'));
 * ```
 * @category Step 2: Pipeline
 */
export async function readImageHeader(bytes: Uint8Array, options: { maxPixels?: number } = {}): Promise<ImageHeader> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) fail('empty file (0 bytes)');
  const format = sniffFormat(bytes);
  if (format === undefined) fail(`not an image: the content matches no image format (${preview(bytes)})`);
  if (!SUPPORTED_FORMATS.includes(format as ImageFormat)) {
    fail(`unsupported format '${format}' (supported: ${SUPPORTED_FORMATS.join(', ')}); convert it to JPEG or PNG`);
  }
  if (format === 'bmp') {
    const h = parseBmpHeader(bytes);
    checkPixels(h.width, h.height, maxPixels);
    return { format, width: h.width, height: Math.abs(h.height) };
  }
  const sharp = await loadSharp();
  let meta;
  try {
    meta = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata();
  } catch (error) {
    fail(`corrupt ${format} header (${errorText(error)})`, error);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.pageHeight ?? meta.height;
  checkPixels(width, height, maxPixels);
  return { format: format as ImageFormat, width, height };
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
}

/**
 * Whether the encoded bytes lack their format's end marker (JPEG `FFD9`, PNG `IEND`, GIF `;`), i.e. may be
 * truncated. Cheap; used to decide which files to verify by decoding while scanning. @internal
 */
export function mayBeTruncated(bytes: Uint8Array, format: string): boolean {
  const tail = bytes.subarray(Math.max(0, bytes.length - 64));
  if (format === 'jpeg') {
    for (let i = tail.length - 2; i >= 0; i--) if (tail[i] === 0xff && tail[i + 1] === 0xd9) return false;
    return true;
  }
  if (format === 'png') return !Buffer.from(tail).includes('IEND');
  if (format === 'gif') return !tail.includes(0x3b);
  return false;
}

/**
 * Decodes one encoded image (JPEG, PNG, WebP, GIF first frame, BMP) into 8-bit RGB, applying EXIF orientation,
 * converting grayscale / alpha (dropped, as Keras does) / CMYK / 16-bit to RGB, and resizing (bilinear,
 * antialiased) when `size` is given. The pixel limit is checked from the header before decoding.
 *
 * @example
 * ```ts
 * const { data, height, width } = await decodeImage(await readFile('cat.jpg'), { size: [224, 224], fit: 'centerCrop' });
 * ```
 * @category Step 2: Pipeline
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeArgs = {}): Promise<DecodedImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkDecodeArgs(options, maxPixels);
  const header = await readImageHeader(bytes, { maxPixels });
  const sharp = await loadSharp();
  let pipeline: Sharp;
  if (header.format === 'bmp') {
    const rgb = decodeBmp(bytes, { maxPixels });
    pipeline = sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } });
  } else {
    pipeline = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', pages: 1, page: 0 }).autoOrient();
  }
  if (options.size) {
    const [height, width] = options.size;
    const fit = options.fit ?? 'squash';
    pipeline = pipeline.resize(width, height, {
      fit: fit === 'squash' ? 'fill' : fit === 'centerCrop' ? 'cover' : 'contain',
      position: 'centre',
      kernel: 'linear',
      background: { r: 0, g: 0, b: 0, alpha: 1 },
    });
  }
  let out: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    out = await pipeline.toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (error) {
    fail(`corrupt or truncated ${header.format} (${errorText(error)})`, error);
  }
  const { data, info } = out;
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    fail(`decoding gave ${info.channels} channels and ${data.length} bytes for ${info.width}x${info.height}`);
  }
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    height: info.height,
    width: info.width,
    channels: 3,
    format: header.format,
  };
}

/** Refuses a bad `size`, `fit` or `maxPixels` before any decoding (else sharp's raw errors, or "corrupt"). */
function checkDecodeArgs(options: DecodeArgs, maxPixels: number): void {
  check(options == null || typeof options === 'object', 'decodeImage: options must be an object such as { size: [224, 224] }.');
  check(
    typeof maxPixels === 'number' && maxPixels > 0,
    `decodeImage: maxPixels must be a positive number, got ${String(maxPixels)}.`,
  );
  check(
    options.fit === undefined || options.fit === null || RESIZE_FITS.includes(options.fit),
    `decodeImage: fit must be one of ${RESIZE_FITS.join(', ')}, got ${JSON.stringify(options.fit)}.`,
  );
  const size = options.size as unknown;
  if (size === undefined || size === null) return;
  const shown = Array.isArray(size) ? `[${size.map(String).join(', ')}]` : JSON.stringify(size);
  check(
    Array.isArray(size) && size.length === 2 && size.every((v) => typeof v === 'number' && Number.isInteger(v) && v > 0),
    `decodeImage: size must be [height, width] in positive integers, got ${shown}.`,
  );
  const [height, width] = size as [number, number];
  check(
    height * width <= maxPixels,
    `decodeImage: size ${shown} is ${height * width} pixels, above the limit of ${maxPixels} (maxPixels); ` +
      'pass a smaller size (the backbone\'s input size, e.g. [224, 224]) or raise maxPixels.',
  );
}

// ---------------------------------------------------------------------------------------------------------------
// BMP

interface BmpHeader {
  dataOffset: number;
  headerSize: number;
  width: number;
  /** Negative for top-down rows. */
  height: number;
  bitsPerPixel: number;
  compression: number;
  colorsUsed: number;
}

function parseBmpHeader(bytes: Uint8Array): BmpHeader {
  if (bytes.length < 26 || bytes[0] !== 0x42 || bytes[1] !== 0x4d) fail('not a BMP file (no "BM" signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerSize = view.getUint32(14, true);
  if (headerSize === 12) fail('unsupported BMP: OS/2 BITMAPCOREHEADER; re-save it as a Windows BMP or PNG');
  if (headerSize < 40 || bytes.length < 14 + 40) fail(`corrupt BMP header (DIB header size ${headerSize})`);
  return {
    dataOffset: view.getUint32(10, true),
    headerSize,
    width: view.getInt32(18, true),
    height: view.getInt32(22, true),
    bitsPerPixel: view.getUint16(28, true),
    compression: view.getUint32(30, true),
    colorsUsed: view.getUint32(46, true),
  };
}

/**
 * Decodes an uncompressed BMP (Windows DIB, 1/4/8-bit palette, 24-bit, 32-bit with or without bit-field masks;
 * bottom-up or top-down) into RGB. RLE-compressed, 16-bit and embedded-JPEG/PNG BMPs are refused with a reason.
 *
 * @example
 * ```ts
 * const { data, width, height } = decodeBmp(await readFile('scan.bmp'));
 * ```
 * @category Step 2: Pipeline
 */
export function decodeBmp(
  bytes: Uint8Array,
  options: { maxPixels?: number } = {},
): DecodedPixels & {
  /** RGB pixels, row by row from the top, 3 bytes each. */
  data: Uint8Array;
} {
  const h = parseBmpHeader(bytes);
  const { width, bitsPerPixel: bpp, compression } = h;
  const height = Math.abs(h.height);
  checkPixels(width, height, options.maxPixels ?? DEFAULT_MAX_PIXELS);
  const bitfields = compression === 3 || compression === 6;
  if (!(compression === 0 || (bitfields && bpp === 32))) {
    const names: Record<number, string> = { 1: 'RLE8', 2: 'RLE4', 3: 'bit fields', 4: 'embedded JPEG', 5: 'embedded PNG' };
    fail(
      `unsupported BMP: ${names[compression] ?? `compression ${compression}`} at ${bpp} bits ` +
        `(supported: uncompressed 1/4/8/24/32-bit); convert it to PNG`,
    );
  }
  if (![1, 4, 8, 24, 32].includes(bpp)) fail(`unsupported BMP: ${bpp} bits per pixel (supported: 1, 4, 8, 24, 32)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  if (h.dataOffset + rowBytes * height > bytes.length) {
    fail(`truncated BMP: ${bytes.length} bytes, but the pixel rows need ${h.dataOffset + rowBytes * height}`);
  }
  let palette: Uint8Array | undefined;
  if (bpp <= 8) {
    const count = h.colorsUsed || 1 << bpp;
    const start = 14 + h.headerSize;
    if (start + count * 4 > bytes.length) fail('truncated BMP: the colour palette is cut off');
    palette = bytes.subarray(start, start + count * 4);
  }
  let masks: [number, number, number] = [0x00ff0000, 0x0000ff00, 0x000000ff];
  if (bitfields) {
    masks = [view.getUint32(54, true), view.getUint32(58, true), view.getUint32(62, true)];
  }
  const shifts = masks.map((m) => {
    if (m === 0) return { shift: 0, max: 1 };
    let shift = 0;
    while (((m >>> shift) & 1) === 0) shift++;
    return { shift, max: m >>> shift };
  });
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const srcRow = h.height > 0 ? height - 1 - y : y;
    const rowStart = h.dataOffset + srcRow * rowBytes;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (bpp === 24) {
        const p = rowStart + x * 3;
        out[o] = bytes[p + 2] as number;
        out[o + 1] = bytes[p + 1] as number;
        out[o + 2] = bytes[p] as number;
      } else if (bpp === 32) {
        const v = view.getUint32(rowStart + x * 4, true);
        for (let c = 0; c < 3; c++) {
          const { shift, max } = shifts[c] as { shift: number; max: number };
          out[o + c] = Math.round((((v & (masks[c] as number)) >>> shift) / max) * 255);
        }
      } else {
        const bitOffset = x * bpp;
        const byte = bytes[rowStart + (bitOffset >> 3)] as number;
        const index = (byte >> (8 - bpp - (bitOffset & 7))) & ((1 << bpp) - 1);
        const pal = palette as Uint8Array;
        if (index * 4 + 2 >= pal.length) fail(`corrupt BMP: palette index ${index} out of range`);
        out[o] = pal[index * 4 + 2] as number;
        out[o + 1] = pal[index * 4 + 1] as number;
        out[o + 2] = pal[index * 4] as number;
      }
    }
  }
  return { data: out, width, height, channels: 3 };
}
