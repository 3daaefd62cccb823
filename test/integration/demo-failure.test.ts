/**
 * Issue 17 item 12: `npm run demo` with data it cannot find printed ~39 KB of tfjs-backend-wasm's minified source
 * before its own message, and exited 7 (the error escaped a top-level await into the wasm module's
 * uncaught-exception handler). Now it prints the message alone and exits 1.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));

describe.skipIf(process.env.TFJS_TRANSFER_TEST_BACKEND === 'cpu')('the main job fails cleanly', () => {
  it('a missing data folder: its message, exit code 1, no minified source', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/cats-vs-dogs/main.ts', '--data', '/nonexistent/tfjs-transfer-data', '--model', '/nonexistent/model'], {
      cwd: repo,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cats-vs-dogs: .*nonexistent\/tfjs-transfer-data/);
    expect(r.stderr.length).toBeLessThan(2000);
  }, 150_000);

  it('a bad --size: named, exit code 1, before any work', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/cats-vs-dogs/main.ts', '--size', '25x'], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cats-vs-dogs: --size must be a whole number of pixels from 32 to 1024, got 25x/);
    expect(r.stderr.length).toBeLessThan(2000);
  }, 150_000);
});
