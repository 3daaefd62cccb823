/**
 * The example's Web Worker: all of TensorFlow.js runs here (backend, feature extraction, training, prediction,
 * heatmaps, saving), so the page never freezes. It is the library's `serveTransferWorker` plus what only the
 * application knows: which backend (from the page's `config`), the IndexedDB feature cache, offline caching and
 * the WebGL context-loss policy.
 */
import { env, serveTransferWorker } from 'tfjs-transfer';
import { offeredBackends, useBackend, webglContext, type BackendName } from './backend';
import { IndexedDBActivationStore } from './idb-store';
import { cacheUrls, cachingFetch, loadedResources } from './offline';

/** What the page sends to `setup`. */
export interface WorkerConfig {
  /** The backend asked for with `?backend=`; without one, the first that starts. */
  backend?: BackendName;
  /** The page's URL (the wasm binaries live below it). */
  base: string;
  /** Keep what the worker loads for offline use. */
  offline: boolean;
}

/** What `setup` returns to the page. */
export interface WorkerSetup {
  backend: string;
  description: string;
  offered: BackendName[];
  cacheError?: string;
}

env.verbose = false;
let store: IndexedDBActivationStore | undefined;
let cacheError: string | undefined;
try {
  store = await IndexedDBActivationStore.open('tfjs-transfer-example-features');
} catch (e) {
  cacheError = e instanceof Error ? e.message : String(e);
}

/**
 * The store's counts, posted to the page after every read and write (the page shows "features: 150 from cache").
 * Messages that are not the helper's own are ignored by both of its ends, so the app can share the channel.
 */
function reportCacheStats(s: IndexedDBActivationStore): void {
  const get = s.get.bind(s);
  const set = s.set.bind(s);
  const post = () => (globalThis as unknown as { postMessage(m: unknown): void }).postMessage({ example: 'cache-stats', stats: { ...s.stats } });
  s.get = async (key) => get(key).finally(post);
  s.set = async (key, values) => set(key, values).finally(post);
}
if (store) reportCacheStats(store);

const server = serveTransferWorker({
  cache: store,
  setup: async (config) => {
    const { backend, base, offline } = config as WorkerConfig;
    const offered = offeredBackends();
    let description: string | undefined;
    let failure: unknown;
    for (const name of backend ? [backend] : offered) {
      try {
        description = await useBackend(name, base);
        break;
      } catch (e) {
        failure = e;
      }
    }
    if (!description) throw failure instanceof Error ? failure : new Error(String(failure));
    watchContextLoss();
    if (offline) {
      env.fetch = cachingFetch(globalThis.fetch.bind(globalThis));
      await cacheUrls(loadedResources(location.href)).catch(() => undefined);
    }
    const active = description.split(' ')[0]!;
    return { backend: active, description, offered, cacheError } satisfies WorkerSetup;
  },
});

/**
 * WebGL context loss: the GPU was reset or the browser reclaimed the context. Every result after that is garbage
 * (reads return zeros), so every running call is aborted at once with a clear message, and no feature computed
 * after the loss is written to the cache.
 */
function watchContextLoss(): void {
  const gl = webglContext();
  if (!gl) return;
  const lost = () => {
    if (store) store.canWrite = () => false;
    server.abortAll('the WebGL context was lost');
  };
  (gl.canvas as EventTarget).addEventListener('webglcontextlost', lost);
  if (store) store.canWrite = () => !gl.isContextLost();
  // For the tests: lose the context on purpose (WEBGL_lose_context), as a GPU reset would.
  Object.assign(globalThis, { tfjsTransferExample: { loseContext: () => gl.getExtension('WEBGL_lose_context')?.loseContext() } });
}
