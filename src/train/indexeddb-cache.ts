/**
 * A persistent activation cache in the browser's IndexedDB: a page reload (or a second training with another
 * head) reads the frozen-backbone activations instead of running the backbone again.
 *
 * TODO(tests): covered by the browser e2e suite only; `fake-indexeddb` is not a dependency, so there is no Node
 * unit test. The factory can be injected (`options.indexedDB`) to test it with one.
 * @module
 */
import { TransferError, check } from '../errors';
import type { ActivationStore } from './activations';
import type { ActivationCacheStats } from './memory-cache';
import type { IDBFactoryLike } from '../types';

/** Format version of stored entries; entries of another version are ignored (and rewritten). @category Caches */
export const INDEXEDDB_CACHE_VERSION = 1;

const STORE = 'activations';

/** Options of {@link createIndexedDBCache}. @category Caches */
export interface IndexedDBCacheArgs {
  /** The IndexedDB factory. @defaultValue `globalThis.indexedDB` */
  indexedDB?: IDBFactoryLike;
}

/** An {@link ActivationStore} in IndexedDB, from {@link createIndexedDBCache}. @category Caches */
export interface IndexedDBCache extends ActivationStore {
  /** The database name. */
  readonly name: string;
  /** Hits, misses, damaged entries and writes so far. */
  readonly stats: ActivationCacheStats;
  /** Deletes every entry. */
  clear(): Promise<void>;
  /** Closes the database connection (a later call reopens it). */
  close(): void;
}

interface Entry {
  v: number;
  key: string;
  arrays: Float32Array[];
}

function promised<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

/**
 * A persistent {@link ActivationStore} in the browser's IndexedDB (database `name`, one record per image and
 * view). Entries carry a version; damaged or old entries are ignored and rewritten. Keys include the extractor's
 * identity, so one database can serve several backbones. Browser-safe; in Node pass `options.indexedDB` or use
 * `createDiskCache` from `tfjs-transfer/node`.
 *
 * @param name Database name. Default `"tfjs-transfer-activations"`.
 * @param options The IndexedDB factory (default `globalThis.indexedDB`).
 * @throws TransferError `NOT_SUPPORTED` on first use when there is no IndexedDB.
 *
 * @example
 * ```ts
 * import { createIndexedDBCache, fit } from 'tfjs-transfer';
 * const cache = createIndexedDBCache('my-app-features');
 * await fit(model, dataset, { cache });   // items need content keys: fromImages([{ image, label, key }])
 * ```
 */
export function createIndexedDBCache(name = 'tfjs-transfer-activations', options: IndexedDBCacheArgs = {}): IndexedDBCache {
  check(typeof name === 'string' && name.length > 0, `createIndexedDBCache: name must be a non-empty string, got ${JSON.stringify(name)}.`);
  const stats: ActivationCacheStats = { hits: 0, misses: 0, corrupt: 0, writes: 0 };
  let db: Promise<IDBDatabase> | undefined;

  const open = (): Promise<IDBDatabase> => {
    if (db) return db;
    const factory = (options.indexedDB ?? (globalThis as { indexedDB?: IDBFactoryLike }).indexedDB) as IDBFactory | undefined;
    if (!factory) {
      return Promise.reject(
        new TransferError('NOT_SUPPORTED', 'createIndexedDBCache: this environment has no IndexedDB. In Node, use createDiskCache from tfjs-transfer/node.'),
      );
    }
    db = new Promise<IDBDatabase>((resolve, reject) => {
      const req = factory.open(name, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(new TransferError('NOT_SUPPORTED', `createIndexedDBCache: cannot open database "${name}": ${String(req.error)}`));
      req.onblocked = () => reject(new TransferError('NOT_SUPPORTED', `createIndexedDBCache: database "${name}" is blocked by another tab.`));
    });
    db.catch(() => (db = undefined));
    return db;
  };

  return {
    name,
    stats,
    async get(key) {
      const d = await open();
      const entry = (await promised(d.transaction(STORE, 'readonly').objectStore(STORE).get(key))) as Entry | undefined;
      if (!entry) {
        stats.misses++;
        return undefined;
      }
      const ok =
        typeof entry === 'object' &&
        entry.v === INDEXEDDB_CACHE_VERSION &&
        entry.key === key &&
        Array.isArray(entry.arrays) &&
        entry.arrays.every((a) => a instanceof Float32Array);
      if (!ok) {
        stats.corrupt++;
        stats.misses++;
        return undefined;
      }
      stats.hits++;
      return entry.arrays;
    },
    async set(key, values) {
      stats.writes++;
      const d = await open();
      const tx = d.transaction(STORE, 'readwrite');
      const entry: Entry = { v: INDEXEDDB_CACHE_VERSION, key, arrays: values.map((a) => a.slice()) };
      tx.objectStore(STORE).put(entry, key);
      await done(tx);
    },
    async clear() {
      const d = await open();
      const tx = d.transaction(STORE, 'readwrite');
      tx.objectStore(STORE).clear();
      await done(tx);
    },
    close() {
      const pending = db;
      db = undefined;
      void pending?.then((d) => d.close()).catch(() => undefined);
    },
  };
}
