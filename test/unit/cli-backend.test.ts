/**
 * The CLI's backend resolver says, for each backend name, what it needs and how to get it (issue 17, item 12):
 * `--backend tensorflow` without @tensorflow/tfjs-node used to say "install the wasm backend", which is installed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { backendHint, selectBackend } from '../../src/cli/backend';
import { UsageError } from '../../src/cli/common';
import { TransferError } from '../../src/errors';

const prod = tf.env().getBool('PROD');
afterEach(() => {
  tf.env().set('PROD', prod);
});

async function failure(requested: string): Promise<Error> {
  const backend = tf.getBackend();
  const error = await selectBackend(requested, 'train').then(
    () => new Error(`--backend ${requested} started`),
    (e: unknown) => e as Error,
  );
  expect(tf.getBackend()).toBe(backend);
  return error;
}

describe('--backend hints', () => {
  it('tensorflow without @tensorflow/tfjs-node: names that package and how to install it, not wasm', async () => {
    let installed = true;
    try {
      await import('@tensorflow/tfjs-node' as string);
    } catch {
      installed = false;
    }
    if (installed) return; // nothing to test where tfjs-node is installed
    const error = await failure('tensorflow');
    expect(error).toBeInstanceOf(TransferError);
    expect((error as TransferError).code).toBe('NOT_SUPPORTED');
    expect(error.message).toMatch(/--backend tensorflow cannot start/);
    expect(error.message).toMatch(/npm install @tensorflow\/tfjs-node/);
    expect(error.message).not.toMatch(/install @tensorflow\/tfjs-backend-wasm/);
    expect(error.message).toMatch(/--backend wasm/);
  });

  it.each([
    ['webgl', /web browsers only.*--backend wasm.*tf\.setBackend\('webgl'\)/s],
    ['webgpu', /web browsers only.*--backend wasm.*tf\.setBackend\('webgpu'\)/s],
    ['gpu', /"gpu" is not a backend.*--backend must be one of tensorflow, wasm, cpu/s],
    ['', /"" is not a backend.*one of tensorflow, wasm, cpu/s],
  ])('--backend %j is a usage error that says what to use', async (name, message) => {
    const error = await failure(name);
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(message);
  });

  it('each backend name has its own hint', () => {
    expect(backendHint('tensorflow')).toMatch(/@tensorflow\/tfjs-node.*npm install @tensorflow\/tfjs-node/s);
    expect(backendHint('wasm')).toMatch(/npm install @tensorflow\/tfjs-backend-wasm/);
    expect(backendHint('cpu')).toMatch(/npm install @tensorflow\/tfjs-backend-cpu/);
    expect(backendHint('webgl')).toMatch(/@tensorflow\/tfjs-backend-webgl.*browsers only/s);
    expect(backendHint('webgpu')).toMatch(/@tensorflow\/tfjs-backend-webgpu.*browsers only/s);
    expect(backendHint('metal')).toMatch(/one of tensorflow, wasm, cpu/);
    for (const name of ['wasm', 'cpu']) expect(backendHint(name)).not.toMatch(/tfjs-node/);
  });

  it('the backend of this test run is selected when asked for', async () => {
    const name = process.env.TFJS_TRANSFER_TEST_BACKEND ?? tf.getBackend();
    expect(await selectBackend(name)).toBe(name);
    expect(tf.getBackend()).toBe(name);
  });
});
