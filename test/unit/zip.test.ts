/** The cats-vs-dogs example's ZIP unpacking (fflate underneath): entries, atomic extraction, damaged archives, zip slip. */
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TransferError } from '../../src/errors';
import { extractZip } from '../../examples/cats-vs-dogs/download';
import { makeZip } from '../helpers/make-zip';

const dir = mkdtempSync(join(tmpdir(), 'tt-zip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const big = new Uint8Array(100_000).map((_, i) => (i * 7919) % 251);
const archive = makeZip([
  { name: 'set/' },
  { name: 'set/train/cats/a.txt', data: 'a cat', method: 0 },
  { name: 'set/train/dogs/b.bin', data: big, method: 8 },
  { name: 'set/empty.txt', data: '', method: 8 },
  { name: 'set/validation/' },
]);

describe('the example unpacks ZIP archives', () => {
  it('extracts stored, deflated and folder entries into a folder, atomically', async () => {
    const target = join(dir, 'out');
    expect(await extractZip(archive, target)).toBe(3);
    expect(readFileSync(join(target, 'set/train/cats/a.txt'), 'utf8')).toBe('a cat');
    expect(readFileSync(join(target, 'set/train/dogs/b.bin')).equals(Buffer.from(big))).toBe(true);
    expect(readFileSync(join(target, 'set/empty.txt')).length).toBe(0);
    expect(existsSync(join(target, 'set/validation'))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('refuses damaged archives and paths that escape, leaving nothing behind', async () => {
    await expect(extractZip(Buffer.from('not a zip at all, just some text that is long enough'), join(dir, 'text'))).rejects.toThrow(/ZIP archive/);
    await expect(extractZip(archive.subarray(0, archive.length - 30), join(dir, 'cut'))).rejects.toThrow(TransferError);
    const evil = makeZip([{ name: 'ok.txt', data: 'fine' }, { name: '../evil.txt', data: 'x' }]);
    await expect(extractZip(evil, join(dir, 'evil'))).rejects.toThrow(/outside the destination/);
    expect(existsSync(join(dir, 'evil.txt'))).toBe(false);
    for (const name of ['text', 'cut', 'evil']) expect(existsSync(join(dir, name))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });
});
