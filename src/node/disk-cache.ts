/**
 * A persistent activation cache on disk: `fit` stores each image's frozen-backbone activations here and a later
 * `fit` (another head, another learning rate, another run of the script) reads them instead of running the
 * backbone again.
 * @module
 */
import { readFile, rm } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { check } from '../errors';
import type { ActivationStore } from '../train/activations';
import type { ActivationCacheStats } from '../train/memory-cache';
import { sha256Hex, sha256Bytes } from '../util/hash';
import { atomicWriteFile } from './file-io';

/**
 * Format version of cache files; files of another version are ignored (and rewritten). 2: the entry checksum is
 * SHA-256 (was a 32-bit FNV-1a in 1).
 * @category Caches
 */
export const DISK_CACHE_VERSION = 2;

const MAGIC = 0x43415454; // "TTAC" little-endian

/** An {@link ActivationStore} in a folder, from {@link createDiskCache}. @category Caches */
export interface DiskCache extends ActivationStore {
  /** The cache folder (absolute). */
  readonly dir: string;
  /** Hits, misses, damaged entries and writes so far. */
  readonly stats: ActivationCacheStats;
  /** The file that holds `key`'s entry (named by the SHA-256 of the key). */
  pathOf(key: string): Promise<string>;
  /** Deletes every entry (the folder itself). */
  clear(): Promise<void>;
}

/** Words before the array lengths: magic, version, key length, array count, then the 8 words of the SHA-256. */
const FIXED_WORDS = 12;

/**
 * Layout (little-endian): magic u32, version u32, key length u32, array count u32, the SHA-256 of everything after
 * the header (32 bytes), then each array's length u32, the key (UTF-8, padded to 4 bytes), then the float32 data of
 * every array.
 */
async function encode(key: string, values: Float32Array[]): Promise<Uint8Array> {
  const keyBytes = new TextEncoder().encode(key);
  const keyPadded = (keyBytes.length + 3) & ~3;
  const floats = values.reduce((a, v) => a + v.length, 0);
  const headerWords = FIXED_WORDS + values.length;
  const buf = new ArrayBuffer(headerWords * 4 + keyPadded + floats * 4);
  const u32 = new Uint32Array(buf, 0, headerWords);
  new Uint8Array(buf, headerWords * 4, keyBytes.length).set(keyBytes);
  const data = new Float32Array(buf, headerWords * 4 + keyPadded, floats);
  let offset = 0;
  values.forEach((v, i) => {
    u32[FIXED_WORDS + i] = v.length;
    data.set(v, offset);
    offset += v.length;
  });
  u32[0] = MAGIC;
  u32[1] = DISK_CACHE_VERSION;
  u32[2] = keyBytes.length;
  u32[3] = values.length;
  new Uint8Array(buf, 16, 32).set(await sha256Bytes(new Uint8Array(buf, headerWords * 4)));
  return new Uint8Array(buf);
}

/** The arrays of an entry, or `undefined` when the bytes are not a complete entry of this version for `key`. */
async function decode(bytes: Uint8Array, key: string): Promise<Float32Array[] | undefined> {
  if (bytes.byteLength < FIXED_WORDS * 4 || bytes.byteLength % 4 !== 0) return undefined;
  // Copy into an aligned buffer of our own (file buffers may be pooled slices).
  const buf = new Uint8Array(bytes).buffer;
  const head = new Uint32Array(buf, 0, 4);
  if (head[0] !== MAGIC || head[1] !== DISK_CACHE_VERSION) return undefined;
  const keyLength = head[2]!;
  const count = head[3]!;
  const headerWords = FIXED_WORDS + count;
  const keyPadded = (keyLength + 3) & ~3;
  if (count > 1024 || headerWords * 4 + keyPadded > buf.byteLength) return undefined;
  const lengths = new Uint32Array(buf, FIXED_WORDS * 4, count);
  const floats = lengths.reduce((a, n) => a + n, 0);
  if (headerWords * 4 + keyPadded + floats * 4 !== buf.byteLength) return undefined;
  const storedKey = new TextDecoder().decode(new Uint8Array(buf, headerWords * 4, keyLength));
  if (storedKey !== key) return undefined;
  const digest = await sha256Bytes(new Uint8Array(buf, headerWords * 4));
  const stored = new Uint8Array(buf, 16, 32);
  if (digest.some((b, i) => b !== stored[i])) return undefined;
  const out: Float32Array[] = [];
  let offset = headerWords * 4 + keyPadded;
  for (const n of lengths) {
    out.push(new Float32Array(buf, offset, n));
    offset += n * 4;
  }
  return out;
}

/**
 * A persistent {@link ActivationStore} in `dir`: one small file per image and view (named by a hash of the key,
 * in 256 subfolders), written atomically (see `atomicWriteFile`), with a version header and a checksum. Damaged,
 * truncated or old-version files are ignored and rewritten. Keys include the extractor's identity (backbone
 * weights, input size, preprocessing, freeze boundary), so one folder can serve several backbones; delete the
 * folder (or call `clear()`) to reclaim the space. A cache is an optimisation: when an entry cannot be written (a
 * full disk, a read-only folder, an entry path that is a folder), `fit` says so once (through `env.logger`, naming
 * the folder and the error) and trains on, with the same results as without the cache.
 *
 * @param dir The cache folder; created when the first entry is written.
 * @returns The store; pass it as `fit(model, data, { cache })` or `transferLearn({ ..., cache })`.
 *
 * @category Caches
 * @example
 * ```ts
 * import { createDiskCache, fit, imageFolder } from 'tfjs-transfer/node';
 * const cache = createDiskCache('.cache/activations');
 * await fit(model, folder.train, { cache });                      // runs the backbone, fills the cache
 * await fit(otherModel, folder.train, { cache, learningRate: 1e-3 }); // same backbone: reads the cache
 * ```
 */
export function createDiskCache(dir: string): DiskCache {
  check(typeof dir === 'string' && dir.length > 0, `createDiskCache: dir must be a folder path, got ${JSON.stringify(dir)}.`);
  const root = nodePath.resolve(dir);
  const stats: ActivationCacheStats = { hits: 0, misses: 0, corrupt: 0, writes: 0 };
  const pathOf = async (key: string): Promise<string> => {
    const h = (await sha256Hex(key)).slice(0, 40);
    return nodePath.join(root, h.slice(0, 2), `${h.slice(2)}.act`);
  };
  return {
    dir: root,
    stats,
    pathOf,
    async get(key) {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(await pathOf(key));
      } catch {
        stats.misses++;
        return undefined;
      }
      const values = await decode(bytes, key);
      if (!values) {
        stats.corrupt++;
        stats.misses++;
        return undefined;
      }
      stats.hits++;
      return values;
    },
    async set(key, values) {
      stats.writes++;
      await atomicWriteFile(await pathOf(key), await encode(key, values));
    },
    async clear() {
      await rm(root, { recursive: true, force: true });
    },
  };
}
