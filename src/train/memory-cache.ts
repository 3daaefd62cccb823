/**
 * An in-memory {@link ActivationStore}: keeps frozen-backbone activations between `fit` calls of one session
 * (another head, another learning rate) without touching the disk.
 * @module
 */
import { check } from '../errors';
import type { ActivationStore } from './activations';

/** Counters of an activation cache's use since it was created. @category Caches */
export interface ActivationCacheStats {
  /** `get` calls that returned activations. */
  hits: number;
  /** `get` calls that found nothing usable. */
  misses: number;
  /** Entries found damaged, of another version or for another key (ignored; rewritten by the next `set`). */
  corrupt: number;
  /** `set` calls. */
  writes: number;
}

/** Options of {@link createMemoryCache}. @category Caches */
export interface MemoryCacheArgs {
  /** Most floats kept (4 bytes each); the least recently used entries go first. @defaultValue no limit */
  maxFloats?: number;
}

/** An {@link ActivationStore} in memory, from {@link createMemoryCache}. @category Caches */
export interface MemoryCache extends ActivationStore {
  /** Hits, misses and writes so far. */
  readonly stats: ActivationCacheStats;
  /** Entries held. */
  readonly size: number;
  /** The keys held, least recently used first. */
  keys(): string[];
  /** Drops every entry. */
  clear(): void;
}

/**
 * A cache of activations in JavaScript memory (copies: callers may reuse their arrays). MobileNetV2 with the
 * default head caches 1280 floats (5 KB) per image and view.
 *
 * @param options Default: unbounded.
 * @category Caches
 * @example
 * ```ts
 * const cache = createMemoryCache();
 * await fit(modelA, data, { cache });              // extracts and fills the cache
 * await fit(modelB, data, { cache, learningRate: 1e-3 }); // same backbone: no extraction
 * ```
 */
export function createMemoryCache(options: MemoryCacheArgs = {}): MemoryCache {
  const maxFloats = options?.maxFloats ?? Infinity;
  check(maxFloats > 0, `createMemoryCache: maxFloats must be positive, got ${maxFloats}.`);
  const map = new Map<string, Float32Array[]>();
  let floats = 0;
  const stats: ActivationCacheStats = { hits: 0, misses: 0, corrupt: 0, writes: 0 };
  const sizeOf = (v: Float32Array[]) => v.reduce((a, x) => a + x.length, 0);
  return {
    stats,
    get size() {
      return map.size;
    },
    async get(key) {
      const v = map.get(key);
      if (!v) {
        stats.misses++;
        return undefined;
      }
      map.delete(key); // most recently used last
      map.set(key, v);
      stats.hits++;
      return v.map((a) => a.slice());
    },
    async set(key, values) {
      stats.writes++;
      const old = map.get(key);
      if (old) {
        floats -= sizeOf(old);
        map.delete(key);
      }
      const copy = values.map((a) => a.slice());
      map.set(key, copy);
      floats += sizeOf(copy);
      for (const [k, v] of map) {
        if (floats <= maxFloats || k === key) break;
        map.delete(k);
        floats -= sizeOf(v);
      }
    },
    keys() {
      return [...map.keys()];
    },
    clear() {
      map.clear();
      floats = 0;
    },
  };
}
