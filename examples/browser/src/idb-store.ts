/**
 * A small IndexedDB `ActivationStore` (the interface `fit({ cache })` takes): the features of each image, keyed by
 * the image's content hash and the extractor's identity, so a reload does not extract them again.
 *
 * The library does not ship a browser store yet; this one is the example's own.
 */
import type { ActivationStore } from 'tfjs-transfer';

const STORE = 'activations';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Counts of what the store did since the last `resetStats()`. */
export interface StoreStats {
  hits: number;
  misses: number;
  writes: number;
}

export class IndexedDBActivationStore implements ActivationStore {
  readonly stats: StoreStats = { hits: 0, misses: 0, writes: 0 };

  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (or creates) the database `name`. */
  static async open(name: string): Promise<IndexedDBActivationStore> {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    return new IndexedDBActivationStore(await request(req));
  }

  async get(key: string): Promise<Float32Array[] | undefined> {
    const value = (await request(this.db.transaction(STORE, 'readonly').objectStore(STORE).get(key))) as Float32Array[] | undefined;
    if (value) this.stats.hits++;
    else this.stats.misses++;
    return value;
  }

  /**
   * Checked before every write; when it returns false the write is skipped. The page sets it during training on
   * webgl so that features computed after a WebGL context loss (all zeros) never poison the cache.
   */
  canWrite: () => boolean = () => true;

  async set(key: string, values: Float32Array[]): Promise<void> {
    if (!this.canWrite()) return;
    const tx = this.db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put(values, key);
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted (storage full?)'));
    });
    this.stats.writes++;
  }

  /** Number of stored entries. */
  count(): Promise<number> {
    return request(this.db.transaction(STORE, 'readonly').objectStore(STORE).count());
  }

  /** Deletes every stored entry. */
  async clear(): Promise<void> {
    await request(this.db.transaction(STORE, 'readwrite').objectStore(STORE).clear());
  }

  resetStats(): void {
    Object.assign(this.stats, { hits: 0, misses: 0, writes: 0 });
  }
}

/** A content key for an image file: the first 128 bits of its SHA-256, in hex. */
export async function contentKey(blob: Blob): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return Array.from(new Uint8Array(digest).subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
}
