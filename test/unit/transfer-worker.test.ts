/**
 * The Web Worker helper's protocol, over a real `MessageChannel` (structured cloning and transfers as between a
 * page and a worker; both ends in this thread, so tf.memory() sees the worker's tensors): setup and ready, training
 * with progress and epoch events, stop (graceful after an epoch, an abort before training), abort, errors re-thrown
 * as TransferErrors with the worker's message and code, predict / explain / evaluate / save / load, dispose and
 * terminate, and the tensor count back at its baseline. The backbone is served from memory through `env.fetch`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransferWorker, env, serveTransferWorker, TransferError, type TransferWorker, type TransferWorkerPort, type WorkerImages } from '../../src/index';
import { stripes, tinyBackbone } from '../helpers/tiny';

const BASE = 'https://models.test/worker-tiny';

async function backboneFiles(): Promise<Map<string, Uint8Array>> {
  const model = tinyBackbone(32);
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    captured = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  model.dispose();
  const json = { format: 'layers-model', modelTopology: captured!.modelTopology, weightsManifest: [{ paths: ['w.bin'], weights: captured!.weightSpecs }] };
  return new Map([
    [`${BASE}/model.json`, new TextEncoder().encode(JSON.stringify(json))],
    [`${BASE}/w.bin`, new Uint8Array(captured!.weightData as ArrayBuffer)],
  ]);
}

/** `n` labelled images as `{ data, width, height }` pixels (what crosses postMessage), reddish vs bluish. */
async function pixels(n: number, seed: number): Promise<WorkerImages> {
  const { xs, ys } = stripes(n, 32, seed);
  const values = await xs.data();
  xs.dispose();
  const per = 32 * 32;
  const images = ys.map((label, i) => {
    const data = new Uint8ClampedArray(per * 4);
    for (let p = 0; p < per; p++) {
      for (let c = 0; c < 3; c++) data[p * 4 + c] = values[(i * per + p) * 3 + c]!;
      data[p * 4 + 3] = 255;
    }
    return { image: { data, width: 32, height: 32 }, label: label === 0 ? 'red' : 'blue', source: `img${i}` };
  });
  return { classes: ['red', 'blue'], images, name: `stripes-${seed}` };
}

function channel(setup?: (config: unknown) => unknown) {
  const { port1, port2 } = new MessageChannel();
  const server = serveTransferWorker({ port: port2 as unknown as TransferWorkerPort, setup });
  return { page: port1 as unknown as TransferWorkerPort, server, close: () => { server.close(); port1.close(); port2.close(); } };
}

describe('Web Worker helper (createTransferWorker / serveTransferWorker over a MessageChannel)', () => {
  const savedFetch = env.fetch;
  const savedVerbose = env.verbose;
  let files: Map<string, Uint8Array>;
  let train: WorkerImages;
  let heldOut: WorkerImages;
  let ends: ReturnType<typeof channel>;
  let worker: TransferWorker;
  let baseline = 0;
  const fitArgs = () => ({ backbone: `${BASE}/model.json`, data: train, validationData: heldOut, head: { seed: 1 }, fit: { epochs: 3, batchSize: 8, learningRate: 1e-2, seed: 3 } });

  beforeAll(async () => {
    env.verbose = false;
    files = await backboneFiles();
    env.fetch = (async (input: RequestInfo | URL) => {
      const body = files.get(input.toString());
      return body ? new Response(body as unknown as BodyInit) : new Response('not found', { status: 404 });
    }) as typeof fetch;
    train = await pixels(24, 7);
    heldOut = await pixels(10, 8);
    baseline = tf.memory().numTensors;
    ends = channel((config) => ({ got: config }));
    worker = createTransferWorker(ends.page, { config: { backend: 'whatever the app chose' } });
  });

  afterAll(() => {
    worker?.terminate();
    ends?.close();
    env.fetch = savedFetch;
    env.verbose = savedVerbose;
  });

  it('ready: the worker ran setup with the page\'s config and reports its backend', async () => {
    await expect(worker.ready).resolves.toEqual({ backend: tf.getBackend(), info: { got: { backend: 'whatever the app chose' } } });
  });

  it('fit: progress and epoch events reach the page; the model predicts, explains, evaluates, saves and loads; tensors back to baseline', async () => {
    const stages = new Set<string>();
    const epochs: number[] = [];
    let began = 0;
    const { model, history, evaluation, stopped } = await worker.fit({
      ...fitArgs(),
      onProgress: (p) => stages.add(p.stage),
      onTrainBegin: () => began++,
      onEpochEnd: (epoch, logs) => {
        expect(Number.isFinite(logs.loss)).toBe(true);
        epochs.push(epoch);
      },
    });
    expect(stopped).toBe(false);
    expect(began).toBe(1);
    expect(epochs).toEqual([0, 1, 2]);
    expect(stages.has('extract')).toBe(true);
    expect(history.epochs).toBe(3);
    expect(history.validationActivations).toBeUndefined();
    expect(evaluation!.count).toBe(10);
    expect(model.classes).toEqual(['red', 'blue']);
    expect(model.inputShape).toEqual([32, 32, 3]);

    const preds = await model.predict(heldOut.images.map((x) => x.image));
    expect(preds).toHaveLength(10);
    const accuracy = preds.filter((p, i) => p.label === heldOut.images[i]!.label).length / 10;
    expect(accuracy).toBeCloseTo(evaluation!.accuracy, 6);

    const [e] = await model.explain(heldOut.images[0]!.image);
    expect(e!.heatmap.data).toBeInstanceOf(Float32Array);
    expect(e!.heatmap.data.length).toBe(e!.heatmap.height * e!.heatmap.width);
    expect(e!.label).toBe(preds[0]!.label);

    const ev = await model.evaluate(heldOut);
    expect(ev.accuracy).toBeCloseTo(evaluation!.accuracy, 6);

    const written: tf.io.ModelArtifacts[] = [];
    const { artifacts, report } = await model.save({ save: async (a) => { written.push(a); return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; } });
    expect(written).toEqual([artifacts]);
    expect(artifacts.weightData).toBeInstanceOf(ArrayBuffer);
    expect(report.artefact.weightBytes).toBeGreaterThan(0);
    const loaded = await worker.loadModel({ load: async () => artifacts });
    const again = await loaded.predict(heldOut.images.map((x) => x.image));
    again.forEach((p, i) => expect(p.probabilities.blue!).toBeCloseTo(preds[i]!.probabilities.blue!, 5));

    await model.dispose();
    await loaded.dispose();
    await model.dispose(); // twice is harmless
    expect(ends.server.models).toBe(0);
    await expect(model.predict(heldOut.images[0]!.image)).rejects.toThrow(/disposed/);
    expect((await worker.memory()).numTensors).toBe(baseline);
  });

  it('stopSignal after the first epoch: training ends early and the model keeps what it learned', async () => {
    const stop = new AbortController();
    const seen: number[] = [];
    const result = await worker.fit({ ...fitArgs(), fit: { epochs: 500, batchSize: 8, seed: 3 }, stopSignal: stop.signal, onEpochEnd: (epoch) => {
      seen.push(epoch);
      if (epoch === 1) stop.abort();
    } });
    expect(result.stopped).toBe(true);
    expect(result.history.epochs).toBeGreaterThanOrEqual(2);
    expect(result.history.epochs).toBeLessThan(500);
    expect(await result.model.predict(heldOut.images[0]!.image)).toHaveLength(1);
    await result.model.dispose();
    expect((await worker.memory()).numTensors).toBe(baseline);
  });

  it('stopSignal before training began, and signal: the call rejects with an AbortError; nothing leaks', async () => {
    const stop = new AbortController();
    const early = worker.fit({ ...fitArgs(), stopSignal: stop.signal });
    stop.abort();
    await expect(early).rejects.toMatchObject({ name: 'AbortError', code: 'ABORTED' });

    const abort = new AbortController();
    const aborted = worker.fit({ ...fitArgs(), fit: { epochs: 500, batchSize: 8 }, signal: abort.signal, onEpochEnd: (epoch) => epoch === 0 && abort.abort(new Error('enough')) });
    const error = await aborted.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransferError);
    expect(error).toMatchObject({ code: 'ABORTED', message: expect.stringContaining('enough') });
    expect(worker.pending).toBe(0);
    expect(ends.server.models).toBe(0);
    expect((await worker.memory()).numTensors).toBe(baseline);
  });

  it('abortAll (the worker script\'s own abort, e.g. a lost WebGL context) answers running calls at once; their model is dropped', async () => {
    const running = worker.fit({ ...fitArgs(), fit: { epochs: 500, batchSize: 8 }, onEpochEnd: (epoch) => epoch === 0 && ends.server.abortAll('the WebGL context was lost') });
    await expect(running).rejects.toMatchObject({ code: 'ABORTED', message: expect.stringContaining('the WebGL context was lost') });
    await new Promise((r) => setTimeout(r, 300)); // the call itself ends at its next batch
    expect(ends.server.models).toBe(0);
    expect((await worker.memory()).numTensors).toBe(baseline);
  });

  it('errors in the worker are re-thrown on the page as TransferErrors with their message and code', async () => {
    await expect(worker.fit({ ...fitArgs(), backbone: 'mobilenet_v9' })).rejects.toMatchObject({ name: 'TransferError', code: 'UNKNOWN_BACKBONE', message: expect.stringContaining('mobilenet_v9') });
    await expect(worker.fit({ ...fitArgs(), fit: { epochs: -1 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('epochs') });
    // What cannot be posted fails on the page with a hint.
    const t = tf.zeros([32, 32, 3]);
    const { model } = await worker.fit({ ...fitArgs(), fit: { epochs: 1 } });
    try {
      await expect(model.predict(t as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('cannot be posted') });
      // A DOM-less object that structured cloning refuses (a function) fails on the page, before the worker sees it.
      await expect(model.predict({ data: () => 1, width: 1, height: 1 } as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('cannot be posted') });
    } finally {
      t.dispose();
      await model.dispose();
    }
    // A plain Error (not a TransferError) in setup: ready rejects with WORKER_FAILED and the message.
    const other = channel(() => {
      throw new RangeError('no such backend: webgpu');
    });
    const failing = createTransferWorker(other.page, { config: { backend: 'webgpu' } });
    await expect(failing.ready).rejects.toMatchObject({ name: 'TransferError', code: 'WORKER_FAILED', message: 'RangeError: no such backend: webgpu' });
    await expect(failing.memory()).rejects.toMatchObject({ code: 'WORKER_FAILED' });
    failing.terminate();
    other.close();
    expect((await worker.memory()).numTensors).toBe(baseline);
  });

  it('transferLearn runs in the worker too', async () => {
    const epochs: number[] = [];
    const r = await worker.transferLearn({ data: { train, validation: heldOut }, backbone: `${BASE}/model.json`, options: { epochs: 2, batchSize: 8, seed: 5, examine: false }, onEpochEnd: (e) => epochs.push(e) });
    expect(epochs.length).toBeGreaterThanOrEqual(1);
    expect(r.evaluation.count).toBe(10);
    expect(r.model.classes).toEqual(['red', 'blue']);
    await r.model.dispose();
    expect((await worker.memory()).numTensors).toBe(baseline);
  });

  it('terminate: calls still running reject, later calls too', async () => {
    const t = channel();
    const w = createTransferWorker(t.page);
    await w.ready;
    const running = w.fit({ ...fitArgs(), fit: { epochs: 500, batchSize: 8 } });
    w.terminate();
    await expect(running).rejects.toMatchObject({ code: 'WORKER_FAILED', message: expect.stringContaining('terminated') });
    await expect(w.memory()).rejects.toMatchObject({ code: 'WORKER_FAILED' });
    expect(w.isTerminated).toBe(true);
    t.server.abortAll('test over'); // the in-thread "worker" keeps running until aborted
    await new Promise((r) => setTimeout(r, 200));
    t.close();
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
