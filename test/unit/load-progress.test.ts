/**
 * `loadBackbone` and `loadModel` report download progress in the one `Progress` shape (stage 'download', bytes,
 * the file) and stop at an abort signal before or between downloads; `save` stops before anything is written.
 * Models are served from memory through `env.fetch`, so no network is needed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attachHead, env, freeze, loadBackbone, loadModel, save } from '../../src/index';
import type { Progress } from '../../src/types';
import { tinyBackbone } from '../helpers/tiny';

/** A model's files: `model.json` and its weights cut into two shards. */
type Files = Map<string, Uint8Array>;

async function artifactsOf(saveTo: (handler: tf.io.IOHandler) => Promise<unknown>): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await saveTo(tf.io.withSaveHandler(async (a) => {
    captured = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return captured!;
}

/** The files of `artifacts` below `base`, weights in two shards of unequal size. */
function filesOf(artifacts: tf.io.ModelArtifacts, base: string): Files {
  const data = new Uint8Array(artifacts.weightData as ArrayBuffer);
  const cut = Math.floor(data.byteLength / 3);
  const json = {
    format: 'layers-model',
    modelTopology: artifacts.modelTopology,
    userDefinedMetadata: artifacts.userDefinedMetadata,
    weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: artifacts.weightSpecs }],
  };
  return new Map([
    [`${base}/model.json`, new TextEncoder().encode(JSON.stringify(json))],
    [`${base}/group1-shard1of2.bin`, data.slice(0, cut)],
    [`${base}/group1-shard2of2.bin`, data.slice(cut)],
  ]);
}

/** A `fetch` serving `files`, recording each URL; `onRequest` runs before each response. */
function fakeFetch(files: Files, requested: string[], onRequest?: (url: string) => void, signals?: (AbortSignal | null | undefined)[]): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input.toString();
    requested.push(url);
    signals?.push(init?.signal);
    onRequest?.(url);
    const body = files.get(url);
    if (!body) return new Response('not found', { status: 404 });
    return new Response(body as unknown as BodyInit, { headers: { 'content-length': String(body.byteLength) } });
  }) as typeof fetch;
}

const BASE = 'https://models.test/tiny';
const savedFetch = env.fetch;
const savedVerbose = env.verbose;

describe('download progress and abort', () => {
  let backboneFiles: Files;
  let weightBytes: number;

  beforeEach(async () => {
    env.verbose = false;
    const model = tinyBackbone(32);
    const artifacts = await artifactsOf((h) => model.save(h));
    weightBytes = (artifacts.weightData as ArrayBuffer).byteLength;
    backboneFiles = filesOf(artifacts, BASE);
    model.dispose();
  });

  afterEach(() => {
    env.fetch = savedFetch;
    env.verbose = savedVerbose;
  });

  it('loadBackbone reports bytes per shard in the Progress shape, ending with done === total', async () => {
    const requested: string[] = [];
    env.fetch = fakeFetch(backboneFiles, requested);
    const reports: Progress[] = [];
    const before = tf.memory().numTensors;
    const backbone = await loadBackbone(`${BASE}/model.json`, { onProgress: (p) => reports.push(p) });
    expect(requested).toHaveLength(3);
    expect(reports.length).toBeGreaterThanOrEqual(2);
    for (const p of reports) {
      expect(p).toMatchObject({ stage: 'download', file: `${BASE}/model.json` });
      expect(p.done).toBeLessThanOrEqual(p.total);
    }
    expect(reports.map((p) => p.done)).toEqual([...reports.map((p) => p.done)].sort((a, b) => a - b));
    expect(reports.at(-1)).toEqual({ stage: 'download', done: weightBytes, total: weightBytes, file: `${BASE}/model.json` });
    backbone.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loadBackbone reports completion for a handler that does not fetch', async () => {
    const model = tinyBackbone(32);
    const artifacts = await artifactsOf((h) => model.save(h));
    model.dispose();
    const reports: Progress[] = [];
    const backbone = await loadBackbone(tf.io.fromMemory(artifacts), { onProgress: (p) => reports.push(p) });
    expect(reports).toEqual([{ stage: 'download', done: weightBytes, total: weightBytes, file: 'IOHandler' }]);
    backbone.dispose();
  });

  it('loadBackbone stops between downloads when the signal fires, leaking nothing', async () => {
    const controller = new AbortController();
    const requested: string[] = [];
    const signals: (AbortSignal | null | undefined)[] = [];
    env.fetch = fakeFetch(backboneFiles, requested, (url) => {
      if (url.endsWith('shard1of2.bin')) controller.abort('enough');
    }, signals);
    const before = tf.memory().numTensors;
    const variables = Object.keys(tf.engine().state.registeredVariables).length;
    await expect(loadBackbone(`${BASE}/model.json`, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORTED' });
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.keys(tf.engine().state.registeredVariables)).toHaveLength(variables);
    // Every request carried the signal, so a fetch that honours it stops mid-file too.
    expect(signals.length).toBeGreaterThan(0);
    expect(signals.every((s) => s === controller.signal)).toBe(true);
  });

  it('loadModel reports download progress and stops at an aborted signal before any request', async () => {
    const backbone = freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true }));
    const model = attachHead(backbone, { classes: ['a', 'b'], seed: 1 });
    const artifacts = await artifactsOf((h) => save(model, h));
    const files = filesOf(artifacts, `${BASE}/saved`);
    const total = (artifacts.weightData as ArrayBuffer).byteLength;
    model.dispose();

    const requested: string[] = [];
    env.fetch = fakeFetch(files, requested);
    const reports: Progress[] = [];
    const before = tf.memory().numTensors;
    const loaded = await loadModel(`${BASE}/saved/model.json`, { onProgress: (p) => reports.push(p) });
    expect(loaded.classes).toEqual(['a', 'b']);
    expect(reports.every((p) => p.stage === 'download' && p.file === `${BASE}/saved/model.json`)).toBe(true);
    expect(reports.at(-1)).toMatchObject({ done: total, total });
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);

    const aborted = AbortSignal.abort('no');
    requested.length = 0;
    await expect(loadModel(`${BASE}/saved/model.json`, { signal: aborted })).rejects.toMatchObject({ name: 'AbortError' });
    expect(requested).toEqual([]);
  });

  it('save writes nothing when the signal has fired', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['a', 'b'], seed: 1 });
    let writes = 0;
    const handler = tf.io.withSaveHandler(async () => {
      writes++;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    });
    await expect(save(model, handler, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(writes).toBe(0);
    // Aborted while the weights are being serialized: the write is skipped.
    const controller = new AbortController();
    const slow: tf.io.IOHandler = { save: (a) => handler.save!(a) };
    const pending = save(model, slow, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(writes).toBe(0);
    await save(model, handler);
    expect(writes).toBe(1);
    model.dispose();
  });
});
