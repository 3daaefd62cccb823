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

/** Browser-only backends: named so that `--backend webgl` gets an answer, not "unknown". */
const BROWSER_BACKENDS: Record<string, string> = {
  webgl: '@tensorflow/tfjs-backend-webgl',
  webgpu: '@tensorflow/tfjs-backend-webgpu',
};

/**
 * What to do when the backend `name` cannot start: which package it needs and how to install it, or, for a name
 * the CLI cannot run on, what to use instead.
 * @internal
 */
export function backendHint(name: string): string {
  switch (name) {
    case 'tensorflow':
      return (
        'The tensorflow backend is native TensorFlow, from the package @tensorflow/tfjs-node, which is not installed ' +
        '(or did not load). Install it with: npm install @tensorflow/tfjs-node (its install script downloads ' +
        'libtensorflow, so it needs network access). Without it, use --backend wasm (fast, portable, installed with ' +
        'tfjs-transfer) or --backend cpu.'
      );
    case 'wasm':
      return 'The wasm backend comes from @tensorflow/tfjs-backend-wasm: npm install @tensorflow/tfjs-backend-wasm. Or use --backend cpu.';
    case 'cpu':
      return 'The cpu backend comes from @tensorflow/tfjs-backend-cpu: npm install @tensorflow/tfjs-backend-cpu (slow; wasm is several times faster: --backend wasm).';
    case 'webgl':
    case 'webgpu':
      return (
        `The ${name} backend (${BROWSER_BACKENDS[name]}) runs in web browsers only, and the CLI runs in Node. ` +
        `Use --backend wasm (fast, portable), tensorflow (@tensorflow/tfjs-node) or cpu; in a page, call ` +
        `tf.setBackend('${name}') yourself before using the library.`
      );
    default:
      return `--backend must be one of ${CLI_BACKENDS.join(', ')} (or leave it out to take the first that starts: ${CLI_BACKENDS.join(', then ')}).`;
  }
}

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
 * @throws UsageError for a name the CLI cannot run on (unknown, or browser-only: webgl, webgpu), saying what to
 *   use instead; TransferError `NOT_SUPPORTED` when the requested backend cannot start, naming its package and how
 *   to install it.
 */
export async function selectBackend(requested?: string, command?: string): Promise<CliBackend> {
  if (requested !== undefined && !(CLI_BACKENDS as readonly string[]).includes(requested)) {
    const known = requested in BROWSER_BACKENDS;
    throw new UsageError(known ? `--backend ${requested}: ${backendHint(requested)}` : `--backend "${requested}" is not a backend. ${backendHint(requested)}`, command);
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
    failures.push(`${name}: ${PACKAGES[name]} is installed but the backend did not initialise`);
  }
  if (requested) {
    throw new TransferError('NOT_SUPPORTED', `--backend ${requested} cannot start: ${failures[0]}.\n${backendHint(requested)}`);
  }
  throw new TransferError(
    'NOT_SUPPORTED',
    `no TensorFlow.js backend could start:\n  ${failures.join('\n  ')}\n` +
      `Install one: npm install @tensorflow/tfjs-backend-wasm (fast, portable), @tensorflow/tfjs-node, or @tensorflow/tfjs-backend-cpu.`,
  );
}
