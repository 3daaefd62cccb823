/**
 * Backend selection for the CLI. The library never imports a backend; the CLI is an application, so it does,
 * dynamically, and checks that the backend really is active (`tf.setBackend` silently keeps the previous one when
 * initialisation fails).
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { TransferError } from '../errors';
import { UsageError } from './common';

/** Backends the CLI can run on. */
export const CLI_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
/** One of {@link CLI_BACKENDS}. */
export type CliBackend = (typeof CLI_BACKENDS)[number];

const PACKAGES: Record<CliBackend, string> = {
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

async function tryImport(name: CliBackend): Promise<unknown> {
  try {
    // A variable specifier keeps bundlers from resolving optional packages at build time.
    const specifier = PACKAGES[name];
    await import(specifier);
    return undefined;
  } catch (e) {
    return e;
  }
}

async function activate(name: CliBackend): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    await tf.ready();
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/**
 * Imports and activates `requested`, or (when undefined) the first of tensorflow (`@tensorflow/tfjs-node`), wasm
 * and cpu that can be imported and initialised. Returns the active backend's name.
 *
 * @throws UsageError for an unknown name; TransferError when the requested backend cannot start.
 */
export async function selectBackend(requested?: string, command?: string): Promise<CliBackend> {
  if (requested !== undefined && !(CLI_BACKENDS as readonly string[]).includes(requested)) {
    throw new UsageError(`--backend must be one of ${CLI_BACKENDS.join(', ')}, got "${requested}".`, command);
  }
  // An application: production mode (no debug checks, and no "install tfjs-node" banner from the cpu backend,
  // which would otherwise land on stderr of every command).
  tf.env().set('PROD', true);
  const order: CliBackend[] = requested ? [requested as CliBackend] : [...CLI_BACKENDS];
  const failures: string[] = [];
  for (const name of order) {
    const importError = await tryImport(name);
    if (importError) {
      failures.push(`${name}: cannot import ${PACKAGES[name]} (${importError instanceof Error ? importError.message.split('\n')[0] : String(importError)})`);
      continue;
    }
    if (await activate(name)) return name;
    failures.push(`${name}: the backend did not initialise`);
  }
  throw new TransferError(
    'NOT_SUPPORTED',
    `no TensorFlow.js backend could start:\n  ${failures.join('\n  ')}\n` +
      `Install one: npm install @tensorflow/tfjs-backend-wasm (fast, portable), @tensorflow/tfjs-node, or @tensorflow/tfjs-backend-cpu.`,
  );
}
