/** The cats-vs-dogs example checks its reload on RELOAD_PHOTOS (8) photos, whatever the data source (it said 4/4). */
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RELOAD_PHOTOS, locate } from '../../examples/cats-vs-dogs/locate';
import { CATS_DOGS, FULLRES, MODEL_100, SHARED, hasShared } from '../helpers/real-data';

describe.skipIf(!hasShared)('the example reload check', () => {
  it('uses 8 photos, cats and dogs, from every source combination', async () => {
    expect(RELOAD_PHOTOS).toBe(8);
    const saved = process.env.TFJS_TRANSFER_FULLRES;
    delete process.env.TFJS_TRANSFER_FULLRES;
    try {
      const only = await locate({ data: CATS_DOGS, model: MODEL_100, shared: false });
      const withFullres = await locate({ data: CATS_DOGS, model: MODEL_100, fullres: FULLRES, shared: false });
      const everything = await locate({ data: CATS_DOGS, model: MODEL_100, shared: SHARED });
      for (const w of [only, withFullres, everything]) {
        expect(w.photos).toHaveLength(8);
        expect(new Set(w.photos).size).toBe(8);
        expect(w.photos.filter((p) => /^cat/.test(basename(p)))).toHaveLength(4);
      }
      expect(only.photos.every((p) => p.startsWith(CATS_DOGS))).toBe(true);
      expect(withFullres.photos.every((p) => p.startsWith(FULLRES))).toBe(true);
    } finally {
      if (saved !== undefined) process.env.TFJS_TRANSFER_FULLRES = saved;
    }
  });
});
