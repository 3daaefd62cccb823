/** `imageFolder({ signal })`: the scan (listing, reading, hashing every file) takes seconds on a large folder. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { imageFolder } from '../../src/node/index';
import { CATS_DOGS, hasShared } from '../helpers/real-data';

describe.skipIf(!hasShared)('imageFolder signal', () => {
  it('an already aborted signal rejects before any file is read', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(imageFolder(CATS_DOGS, { signal: controller.signal, verbose: false })).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('an abort from a timer stops the scan of 3000 files promptly', async () => {
    const started = Date.now();
    const signal = AbortSignal.timeout(30);
    const error = await imageFolder(CATS_DOGS, { signal, verbose: false }).then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'ABORTED' });
    // Without the signal the same scan completes; with it, it stops long before reading 3000 files would take.
    const full = Date.now();
    const folder = await imageFolder(join(CATS_DOGS), { verbose: false });
    const fullMs = Date.now() - full;
    expect(folder.train.size + (folder.validation?.size ?? 0)).toBe(3000);
    expect(full - started).toBeLessThan(Math.max(fullMs, 200));
  });

  it('refuses a signal that is not an AbortSignal', async () => {
    await expect(imageFolder(CATS_DOGS, { signal: 42 as unknown as AbortSignal })).rejects.toThrow(/signal must be an AbortSignal/);
  });
});
