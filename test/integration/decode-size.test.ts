/** decodeImage checks its size argument (and fit, maxPixels) with a clear INVALID_ARGUMENT before decoding. */
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/node/decode';
import { TransferError } from '../../src/errors';

describe('decodeImage: the size argument', () => {
  let png: Uint8Array;
  beforeAll(async () => {
    png = await sharp({ create: { width: 8, height: 6, channels: 3, background: '#468' } }).png().toBuffer();
  });

  async function refusal(options: Parameters<typeof decodeImage>[1]): Promise<TransferError> {
    const error = await decodeImage(png, options).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(TransferError);
    expect((error as TransferError).code).toBe('INVALID_ARGUMENT');
    return error as TransferError;
  }

  it('refuses zero, negative, fractional and malformed sizes', async () => {
    expect((await refusal({ size: [0, 0] })).message).toMatch(/size must be \[height, width\] in positive integers, got \[0, 0\]/);
    expect((await refusal({ size: [-4, 4] })).message).toMatch(/got \[-4, 4\]/);
    expect((await refusal({ size: [4.5, 4] })).message).toMatch(/positive integers/);
    expect((await refusal({ size: [4] as never })).message).toMatch(/got \[4\]/);
    expect((await refusal({ size: '224' as never })).message).toMatch(/got "224"/);
  });

  it('refuses a size above the pixel limit, naming it', async () => {
    expect((await refusal({ size: [1e5, 1e5] })).message).toMatch(/size \[100000, 100000\] is 10000000000 pixels, above the limit of 50000000 \(maxPixels\)/);
    expect((await refusal({ size: [100, 100], maxPixels: 5000 })).message).toMatch(/above the limit of 5000/);
  });

  it('refuses an unknown fit and a bad maxPixels; a good size still decodes', async () => {
    expect((await refusal({ size: [4, 4], fit: 'stretch' as never })).message).toMatch(/fit must be one of/);
    expect((await refusal({ maxPixels: -1 })).message).toMatch(/maxPixels must be a positive number/);
    const ok = await decodeImage(png, { size: [3, 5] });
    expect([ok.height, ok.width, ok.data.length]).toEqual([3, 5, 45]);
    const own = await decodeImage(png, { size: undefined });
    expect([own.height, own.width]).toEqual([6, 8]);
  });
});
