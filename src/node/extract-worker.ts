/**
 * Worker thread of the pool ({@link createExtractPool}): its own tfjs-core and backend instance, running folded
 * frozen-backbone plans on batches of raw pixels, and the gradient steps of a trainable top on shards of batches
 * (`train-shard.ts`). Needs only `@tensorflow/tfjs-core` and the backend
 * package the application installed (`@tensorflow/tfjs-backend-wasm` or `@tensorflow/tfjs-backend-cpu`; the worker imports it
 * only if it resolves, and the pool falls back to this thread otherwise).
 *
 * Messages in: `init { backend }`, `load { id, serialized }`, `run { job, id, pixels, shape }`, `unload { id }`,
 * `train-load`, `train-step`, `train-eval`, `train-unload { id }`.
 * Messages out: `ready`, `loaded { id }`, `result { job, outputs }`, `train-result`, `eval-result`, `error { job?, message }`.
 * @internal
 * @module
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { createPlanRunner, type PlanRunner } from '../backbone/fold';
import type { PortableProgram } from '../services';
import { evalShard, loadTop, stepShard, unloadTop, type TrainEval, type TrainEvalResult, type TrainLoad, type TrainStep, type TrainStepResult } from './train-shard';

/** Messages the pool sends to a worker. @internal */
export type WorkerRequest =
  | { type: 'init'; backend: string }
  | { type: 'load'; id: number; serialized: PortableProgram }
  | { type: 'run'; job: number; id: number; pixels: Float32Array; shape: [number, number, number, number] }
  | { type: 'unload'; id: number }
  | TrainLoad
  | TrainStep
  | TrainEval
  | { type: 'train-unload'; id: number };

/** Messages a worker sends back. @internal */
export type WorkerResponse =
  | { type: 'ready'; backend: string }
  | { type: 'loaded'; id: number }
  | { type: 'result'; job: number; outputs: Float32Array[] }
  | TrainStepResult
  | TrainEvalResult
  | { type: 'error'; job?: number; id?: number; message: string };

// Console output of this thread (e.g. tfjs banners) goes to stderr, never to the application's stdout.
for (const method of ['log', 'info', 'warn', 'debug'] as const) {
  console[method] = (...args: unknown[]) => console.error(...args);
}

const port = parentPort;
const runners = new Map<number, PlanRunner>();

async function init(backend: string): Promise<void> {
  const pkg = backend === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : backend === 'cpu' ? '@tensorflow/tfjs-backend-cpu' : undefined;
  if (!pkg) throw new Error(`extract worker: unsupported backend "${backend}" (wasm or cpu).`);
  try {
    await import(pkg);
  } catch (e) {
    throw new Error(`extract worker: cannot import ${pkg} (${e instanceof Error ? e.message : String(e)}); install it to extract on worker threads.`);
  }
  const ok = await tf.setBackend(backend);
  await tf.ready();
  if (!ok || tf.getBackend() !== backend) throw new Error(`extract worker: the ${backend} backend failed to initialise.`);
}

async function handle(msg: WorkerRequest): Promise<WorkerResponse | undefined> {
  switch (msg.type) {
    case 'init':
      await init(msg.backend);
      return { type: 'ready', backend: tf.getBackend() };
    case 'load':
      runners.get(msg.id)?.dispose();
      runners.set(msg.id, createPlanRunner(msg.serialized));
      return { type: 'loaded', id: msg.id };
    case 'unload':
      runners.get(msg.id)?.dispose();
      runners.delete(msg.id);
      return undefined;
    case 'train-load':
      await loadTop(msg);
      return { type: 'loaded', id: msg.id };
    case 'train-step':
      return stepShard(msg);
    case 'train-eval':
      return evalShard(msg);
    case 'train-unload':
      unloadTop(msg.id);
      return undefined;
    case 'run': {
      const runner = runners.get(msg.id);
      if (!runner) throw new Error(`extract worker: plan ${msg.id} is not loaded.`);
      const x = tf.tensor4d(msg.pixels, msg.shape, 'float32');
      let outs: tf.Tensor[] = [];
      try {
        outs = runner.predict(x);
        const outputs = outs.map((t) => {
          const data = t.dataSync() as Float32Array;
          // Copy out of backend memory so the buffer can be transferred.
          return new Float32Array(data);
        });
        return { type: 'result', job: msg.job, outputs };
      } finally {
        x.dispose();
        outs.forEach((t) => t.dispose());
      }
    }
  }
}

if (port) {
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (msg: WorkerRequest) => {
    queue = queue.then(async () => {
      try {
        const reply = await handle(msg);
        if (reply?.type === 'result') port.postMessage(reply, reply.outputs.map((o) => o.buffer as ArrayBuffer));
        else if (reply) port.postMessage(reply);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        port.postMessage({
          type: 'error',
          job: msg.type === 'run' || msg.type === 'train-step' || msg.type === 'train-eval' ? msg.job : undefined,
          id: msg.type === 'load' || msg.type === 'train-load' ? msg.id : undefined,
          message,
        } satisfies WorkerResponse);
      }
    });
  });
}
