/**
 * Vite config of the browser example. Run from the repository root:
 *   npx vite examples/browser            (dev server, models served from ../shared/models)
 *   npx vite build examples/browser      (production build: official model URLs)
 *   npx vite build examples/browser --mode e2e && npx vite preview examples/browser --mode e2e   (what the e2e tests run)
 *
 * Nothing from ../shared is copied: a middleware reads the model files by path. The wasm binaries are served
 * from node_modules in development and emitted into the build (dist/wasm/), never committed.
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Connect, type Plugin } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const require = createRequire(join(repo, 'package.json'));
/** Where the shared models live (overridable for CI machines that keep them elsewhere). */
const sharedModels = resolve(process.env.TFJS_TRANSFER_SHARED ?? resolve(repo, '../shared'), 'models');
const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

function hasPackage(name: string): boolean {
  try {
    require.resolve(`${name}/package.json`);
    return true;
  } catch {
    return false;
  }
}

const TYPES: Record<string, string> = { '.json': 'application/json', '.bin': 'application/octet-stream', '.txt': 'text/plain', '.wasm': 'application/wasm' };

/** Serves `dir` under `prefix`, read by path, refusing anything outside `dir`. */
function serveFolder(prefix: string, dir: string): Connect.NextHandleFunction {
  return (req, res, next) => {
    const url = (req.url ?? '').split('?')[0]!;
    const at = url.indexOf(prefix);
    if (at < 0 || !existsSync(dir)) return next();
    const rel = decodeURIComponent(url.slice(at + prefix.length));
    const file = normalize(join(dir, rel));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) return next();
    const ext = file.slice(file.lastIndexOf('.'));
    res.setHeader('Content-Type', TYPES[ext] ?? 'application/octet-stream');
    res.setHeader('Content-Length', String(statSync(file).size));
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    createReadStream(file).pipe(res);
  };
}

/** Models from ../shared under /models/ (dev and preview); wasm binaries under /wasm/ (dev) or in the build. */
function exampleAssets(): Plugin {
  return {
    name: 'tfjs-transfer-example-assets',
    configureServer(server) {
      server.middlewares.use(serveFolder('/models/', sharedModels));
      server.middlewares.use(serveFolder('/wasm/', wasmDir));
    },
    configurePreviewServer(server) {
      server.middlewares.use(serveFolder('/models/', sharedModels));
    },
    generateBundle() {
      for (const name of WASM_FILES) {
        this.emitFile({ type: 'asset', fileName: `wasm/${name}`, source: readFileSync(join(wasmDir, name)) });
      }
    },
    resolveId(id) {
      return id === 'virtual:webgpu-backend' ? '\0virtual:webgpu-backend' : undefined;
    },
    load(id) {
      if (id !== '\0virtual:webgpu-backend') return undefined;
      // The webgpu backend is optional: offered only when the package is installed.
      return hasPackage('@tensorflow/tfjs-backend-webgpu')
        ? "export default () => import('@tensorflow/tfjs-backend-webgpu');"
        : 'export default undefined;';
    },
  };
}

// Cross-origin isolation lets the wasm backend use threads (SharedArrayBuffer).
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig(({ mode, command }) => ({
  root: here,
  base: './',
  plugins: [exampleAssets()],
  resolve: { alias: { 'tfjs-transfer': resolve(repo, 'src/index.ts') } },
  define: {
    // Development and tests load the models from the page's own /models/; a production build uses the official URLs.
    __LOCAL_MODELS__: JSON.stringify(command === 'serve' || mode === 'e2e'),
  },
  server: { headers: isolation, fs: { allow: [repo] } },
  preview: { headers: isolation },
  build: {
    outDir: resolve(here, mode === 'e2e' ? '.cache/dist-e2e' : 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
  },
  optimizeDeps: {
    include: [
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-layers',
      '@tensorflow/tfjs-converter',
      '@tensorflow/tfjs-backend-cpu',
      '@tensorflow/tfjs-backend-webgl',
      '@tensorflow/tfjs-backend-wasm',
    ],
  },
  // The Web Worker (src/worker.ts) is its own bundle: it needs the virtual webgpu module too.
  worker: { format: 'es', plugins: () => [exampleAssets()] },
}));
