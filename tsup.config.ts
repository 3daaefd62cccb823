import { defineConfig } from 'tsup';

// Three entries: the browser-safe main entry, the Node-only entry (file system, sharp, worker threads) and the ONNX
// exporter (browser-safe, separate so that the main entry never loads protobufjs).
// The tfjs packages and sharp are never bundled: they are the application's (peer / optional dependencies).
// `stripInternal`: declarations marked `@internal` (test hooks such as `__faults`) stay out of the published types.
export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      'node/index': 'src/node/index.ts',
      'node/extract-worker': 'src/node/extract-worker.ts',
      // tfjs-transfer/onnx: the only entry that imports protobufjs (a dependency, never bundled); test/unit/onnx-export.test.ts checks the main entry cannot reach it.
      'onnx/index': 'src/onnx/index.ts',
    },
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
    entry: { main: 'src/cli/main.ts' },
    format: ['esm'],
    // Split, so that what a command loads with import() (the ONNX exporter and its protobufjs) stays in its own chunk
    // and the other commands never load it (test/integration/package.test.ts checks).
    splitting: true,
    outDir: 'dist/cli',
    sourcemap: true,
    target: 'es2022',
    external: [/^@tensorflow\//, 'sharp'],
    banner: { js: '#!/usr/bin/env node' },
  },
]);
