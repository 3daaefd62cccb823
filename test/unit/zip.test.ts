import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { TransferError } from '../../src/errors';
import { crc32, extractZip, listZip, readZipEntry } from '../../src/node/zip';
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

describe('zip reader', () => {
  it('crc32 matches zlib', () => {
    for (const bytes of [new Uint8Array(), Buffer.from('123456789'), big]) expect(crc32(bytes)).toBe(zlibCrc32(bytes) >>> 0);
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('lists stored, deflated and folder entries', () => {
    const entries = listZip(archive);
    expect(entries.map((e) => [e.name, e.directory, e.method, e.size])).toEqual([
      ['set/', true, 0, 0],
      ['set/train/cats/a.txt', false, 0, 5],
      ['set/train/dogs/b.bin', false, 8, big.length],
      ['set/empty.txt', false, 8, 0],
      ['set/validation/', true, 0, 0],
    ]);
    expect(entries[2]!.compressedSize).toBeLessThan(big.length);
    expect(Buffer.from(readZipEntry(archive, entries[1]!)).toString()).toBe('a cat');
    expect(Buffer.from(readZipEntry(archive, entries[2]!)).equals(Buffer.from(big))).toBe(true);
  });

  it('extracts into a folder, atomically', async () => {
    const target = join(dir, 'out');
    expect(await extractZip(archive, target)).toBe(3);
    expect(readFileSync(join(target, 'set/train/cats/a.txt'), 'utf8')).toBe('a cat');
    expect(readFileSync(join(target, 'set/train/dogs/b.bin')).equals(Buffer.from(big))).toBe(true);
    expect(readFileSync(join(target, 'set/empty.txt')).length).toBe(0);
    expect(existsSync(join(target, 'set/validation'))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('refuses damaged archives, CRC errors and paths that escape', async () => {
    expect(() => listZip(Buffer.from('not a zip at all, just some text that is long enough'))).toThrow(/not a ZIP archive/);
    expect(() => listZip(archive.subarray(0, archive.length - 30))).toThrow(TransferError);
    const damaged = archive.slice();
    const e = listZip(damaged)[1]!;
    damaged[e.offset + 30 + 'set/train/cats/a.txt'.length] ^= 0xff; // flip a stored byte
    expect(() => readZipEntry(damaged, e)).toThrow(/CRC/);
    const evil = makeZip([{ name: '../evil.txt', data: 'x' }]);
    await expect(extractZip(evil, join(dir, 'evil'))).rejects.toThrow(/outside the destination/);
    expect(existsSync(join(dir, 'evil.txt'))).toBe(false);
    expect(existsSync(join(dir, 'evil'))).toBe(false);
  });
});
