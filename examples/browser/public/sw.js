// Offline support for the tfjs-transfer example: network first, falling back to what was cached.
// Every successful same-origin GET is kept, so once the page (and a model) has loaded, it works offline.
const CACHE = 'tfjs-transfer-example-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const response = await fetch(request);
        if (response.status === 200 && response.type === 'basic') await cache.put(request, response.clone());
        return response;
      } catch (error) {
        // ignoreVary: the page caches its resources with plain requests; module scripts are requested with an
        // Origin header, and a `Vary: Origin` response would otherwise never match.
        const hit =
          (await cache.match(request, { ignoreVary: true })) ??
          (request.mode === 'navigate' ? await cache.match(request, { ignoreSearch: true, ignoreVary: true }) : undefined);
        if (hit) return hit;
        throw error;
      }
    })(),
  );
});
