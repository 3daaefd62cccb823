import { defineConfig } from 'tsup';

// Two entries: the browser-safe main entry and the Node-only entry (file system, sharp, worker threads).
// The tfjs packages and sharp are never bundled: they are the application's (peer / optional dependencies).
// `stripInternal`: declarations marked `@internal` (test hooks such as `__faults`) stay out of the published types.
export default defineConfig([
  {
    entry: { index: 'src/index.ts', 'node/index': 'src/node/index.ts', 'node/extract-worker': 'src/node/extract-worker.ts' },
    format: ['esm', 'cjs'],
    dts: { compilerOptions: { stripInternal: true } },
    sourcemap: true,
    clean: true,
    target: 'es2022',
    splitting: true,
    treeshake: true,
    external: [/^@tensorflow\//, 'sharp'],
  },
  {
    entry: { 'cli/main': 'src/cli/main.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'es2022',
    external: [/^@tensorflow\//, 'sharp'],
    banner: { js: '#!/usr/bin/env node' },
  },
]);
