/** The real-data guard: on CI a missing ../shared fails with where it should be; locally it skips with a reason. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { checkShared } from '../helpers/real-data';

const empty = mkdtempSync(join(tmpdir(), 'tt-no-shared-'));
afterAll(() => rmSync(empty, { recursive: true, force: true }));

describe('checkShared', () => {
  it('fails under CI, naming the missing paths and how to provide them', () => {
    expect(() => checkShared(empty, true)).toThrow(new RegExp(`${join(empty, 'models/mobilenet_v2_0.35_224_no_top/model.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*TFJS_TRANSFER_SHARED`));
  });

  it('skips locally with a visible reason', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      expect(checkShared(empty, false)).toBe(false);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/skipping the tests that need real data: .*data\/cats_and_dogs_filtered_200px/));
    } finally {
      warn.mockRestore();
    }
  });
});
