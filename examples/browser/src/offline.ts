/**
 * Offline support shared by the page and its worker: everything either of them loaded (scripts, wasm binaries,
 * model files) goes into the Cache Storage the service worker (public/sw.js) falls back to, so even the first
 * visit works offline afterwards. The Cache API exists in windows and workers alike.
 */
export const OFFLINE_CACHE = 'tfjs-transfer-example-v1';

/** Puts the same-origin http(s) `urls` into the offline cache (those already there are skipped). */
export async function cacheUrls(urls: Iterable<string>): Promise<void> {
  if (typeof caches === 'undefined') return;
  const cache = await caches.open(OFFLINE_CACHE);
  for (const url of new Set(urls)) {
    const u = new URL(url);
    if (u.origin !== location.origin || !/^https?:$/.test(u.protocol) || u.pathname.includes('/@vite/')) continue;
    if (!(await cache.match(url, { ignoreVary: true }))) await cache.add(url).catch(() => undefined);
  }
}

/** Every resource this window or worker has loaded so far, plus `extra`. */
export function loadedResources(...extra: string[]): string[] {
  return [...extra, ...performance.getEntriesByType('resource').map((e) => e.name)];
}

/**
 * A `fetch` that also keeps each successful same-origin response in the offline cache: the worker gives it to
 * the library as `env.fetch`, so the model files it downloads work offline too.
 */
export function cachingFetch(inner: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await inner(input, init);
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (response.ok && typeof caches !== 'undefined' && new URL(url, location.href).origin === location.origin) {
      const copy = response.clone();
      void caches.open(OFFLINE_CACHE).then((c) => c.put(url, copy)).catch(() => undefined);
    }
    return response;
  };
}
