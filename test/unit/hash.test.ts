/**
 * One hash, SHA-256 (src/util/hash.ts), keys the extractor identity, the checkpoint checksum and the disk cache;
 * no FNV-1a is left in src/.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attachHead, freeze, loadBackbone } from '../../src/index';
import { freezeBoundaryOf } from '../../src/train/boundary';
import { extractorIdentity } from '../../src/train/identity';
import { sha256Bytes, sha256Hex } from '../../src/util/hash';
import { tinyBackbone } from '../helpers/tiny';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
}

describe('sha256', () => {
  it('matches the FIPS 180-2 test vector and separates parts', async () => {
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe(await sha256Hex('abc'));
    expect(await sha256Hex('ab', 'c')).not.toBe(await sha256Hex('a', 'bc'));
    expect((await sha256Bytes('abc'))[0]).toBe(0xba);
  });

  it('no FNV-1a is left in src/', () => {
    const hits = files(join(__dirname, '../../src')).filter((f) => /\.ts$/.test(f) && /0x811c9dc5|0x01000193|fnv1a/i.test(readFileSync(f, 'utf8')));
    expect(hits).toEqual([]);
  });

  it('the extractor identity is SHA-256 and changes with the frozen weights', async () => {
    const base = tf.memory().numTensors;
    const a = attachHead(freeze(await loadBackbone(tinyBackbone(16, 1), { takeOwnership: true })), { classes: ['l', 'r'], seed: 1 });
    const b = attachHead(freeze(await loadBackbone(tinyBackbone(16, 2), { takeOwnership: true })), { classes: ['l', 'r'], seed: 1 });
    const ia = await extractorIdentity(freezeBoundaryOf(a), a);
    expect(ia).toMatch(/^v2-[0-9a-f]{64}$/);
    expect(await extractorIdentity(freezeBoundaryOf(a), a)).toBe(ia);
    expect(await extractorIdentity(freezeBoundaryOf(b), b)).not.toBe(ia);
    a.dispose();
    b.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });
});
