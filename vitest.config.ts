import { defineConfig } from 'vitest/config';

// The same suite runs once per backend: each project installs its backend in a setup file and asserts that
// tf.getBackend() really is that backend (tf.setBackend silently keeps the old one when initialisation fails).
const backends = ['cpu', 'wasm'] as const;

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    projects: backends.map((backend) => ({
      extends: true,
      test: {
        name: backend,
        include: ['test/**/*.test.ts'],
        exclude: ['test/e2e/**'],
        setupFiles: [`test/setup/backend-${backend}.ts`],
        env: { TFJS_TRANSFER_TEST_BACKEND: backend },
      },
    })),
  },
});
