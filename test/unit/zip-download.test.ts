/**
 * The download path of the cats-vs-dogs example against a local HTTP server (127.0.0.1): a tiny data set ZIP and
 * a tiny layers model under env.modelHost. Never reaches the internet.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env } from '../../src/node/index';
import { cachedCatalogModel, cachedZip, downloadFile } from '../../examples/cats-vs-dogs/download';
import { locate } from '../../examples/cats-vs-dogs/locate';
import { makeZip } from '../helpers/make-zip';

const cache = mkdtempSync(join(tmpdir(), 'tt-download-'));
const files = new Map<string, Uint8Array | string>();
const hits: string[] = [];
let server: Server;
let base = '';
const savedHost = env.modelHost;

const TM_PATH = 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top/model.json';

beforeAll(async () => {
  // A tiny layers model, served the way tfjs-models / Teachable Machine serve theirs.
  const inp = tfl.input({ shape: [8, 8, 3] });
  const out = tfl.layers.conv2d({ filters: 4, kernelSize: 3, name: 'out_relu' }).apply(inp) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: inp, outputs: out });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const manifest = [{ paths: ['group1-shard1of1.bin'], weights: artifacts.weightSpecs! }];
      const json = JSON.stringify({ format: 'layers-model', generatedBy: 'test', convertedBy: null, modelTopology: artifacts.modelTopology, weightsManifest: manifest });
      const dir = TM_PATH.replace('/model.json', '');
      files.set(`/${TM_PATH}`, json);
      files.set(`/${dir}/group1-shard1of1.bin`, new Uint8Array(artifacts.weightData as ArrayBuffer));
      files.set('/official/model.json', json.replace('group1-shard1of1.bin', 'group1-shard1of1.bin'));
      files.set('/official/group1-shard1of1.bin', new Uint8Array(artifacts.weightData as ArrayBuffer));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  model.dispose();
  files.set(
    '/cats_and_dogs_filtered.zip',
    makeZip([
      { name: 'cats_and_dogs_filtered/' },
      { name: 'cats_and_dogs_filtered/train/cats/cat.0.txt', data: 'c' },
      { name: 'cats_and_dogs_filtered/train/dogs/dog.0.txt', data: 'd' },
      { name: 'cats_and_dogs_filtered/validation/cats/cat.1.txt', data: 'c' },
      { name: 'cats_and_dogs_filtered/validation/dogs/dog.1.txt', data: 'd' },
    ]),
  );
  server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    hits.push(req.url ?? '');
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': Buffer.byteLength(body as string) }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  env.modelHost = savedHost;
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(cache, { recursive: true, force: true });
});

describe('downloads into the cache', () => {
  it('downloads and unpacks a ZIP once, then reuses it', async () => {
    const folder = await cachedZip(`${base}/cats_and_dogs_filtered.zip`, 'cats_and_dogs_filtered', { cacheDir: cache });
    expect(readdirSync(join(folder, 'cats_and_dogs_filtered/train')).sort()).toEqual(['cats', 'dogs']);
    expect(existsSync(join(cache, 'cats_and_dogs_filtered.zip'))).toBe(false);
    const count = hits.length;
    await cachedZip(`${base}/cats_and_dogs_filtered.zip`, 'cats_and_dogs_filtered', { cacheDir: cache });
    expect(hits.length).toBe(count);
  });

  it('a damaged download is refused by its SHA-256 and deleted, and a later run downloads it again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tt-sha-'));
    try {
      const url = `${base}/cats_and_dogs_filtered.zip`;
      const wrong = '0'.repeat(64);
      await expect(cachedZip(url, 'set', { cacheDir: dir, sha256: wrong })).rejects.toThrow(/SHA-256/);
      expect(readdirSync(dir)).toEqual([]);
      const { createHash } = await import('node:crypto');
      const right = createHash('sha256').update(files.get('/cats_and_dogs_filtered.zip') as Uint8Array).digest('hex');
      const folder = await cachedZip(url, 'set', { cacheDir: dir, sha256: right });
      expect(readdirSync(join(folder, 'cats_and_dogs_filtered/validation')).sort()).toEqual(['cats', 'dogs']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('downloads a catalog model from env.modelHost and saves it with the library saver', async () => {
    env.modelHost = `${base}/`;
    const path = await cachedCatalogModel('mobilenet_v2_0.35_224', { cacheDir: cache });
    expect(path).toBe(join(cache, 'models/mobilenet_v2_0.35_224/model.json'));
    expect(hits).toContain(`/${TM_PATH}`);
    const loaded = await tfl.loadLayersModel(env.fileSystem!.loader(path));
    expect(loaded.outputs[0]!.shape).toEqual([null, 6, 6, 4]);
    loaded.dispose();
    const count = hits.length;
    expect(await cachedCatalogModel('mobilenet_v2_0.35_224', { cacheDir: cache })).toBe(path);
    expect(hits.length).toBe(count);
  });

  it('the example finds data and model through the download path when nothing is local', async () => {
    const notes: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'tt-locate-'));
    const saved = { data: process.env.TFJS_TRANSFER_DATA, model: process.env.TFJS_TRANSFER_MODEL };
    delete process.env.TFJS_TRANSFER_DATA;
    delete process.env.TFJS_TRANSFER_MODEL;
    try {
      const where = await locate({
        cacheDir: dir,
        shared: false,
        datasetUrl: `${base}/cats_and_dogs_filtered.zip`,
        modelUrl: `${base}/official/model.json`,
        note: (m) => notes.push(m),
      });
      expect(where.data).toBe(join(dir, 'cats_and_dogs_filtered/cats_and_dogs_filtered'));
      expect(where.model).toBe(join(dir, 'models/mobilenet_v2_1.0_224/model.json'));
      expect(where.fullres).toBeUndefined();
      expect(where.photos.length).toBe(0); // the tiny set has no images
      expect(notes.join('\n')).toMatch(/cats_and_dogs_filtered\.zip/);
      // Flags win over everything.
      const flagged = await locate({ data: '/x/data', model: '/x/model.json', shared: false, cacheDir: dir });
      expect([flagged.data, flagged.model, flagged.origin.data]).toEqual(['/x/data', '/x/model.json', '--data']);
    } finally {
      Object.assign(process.env, Object.fromEntries(Object.entries(saved).filter(([, v]) => v !== undefined).map(([k, v]) => [`TFJS_TRANSFER_${k.toUpperCase()}`, v])));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('offline: a clear error naming the URL and what to do instead', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const dir = mkdtempSync(join(tmpdir(), 'tt-offline-'));
    try {
      const err = await locate({ cacheDir: dir, shared: false, datasetUrl: `http://127.0.0.1:${port}/cats_and_dogs_filtered.zip` }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'NETWORK' });
      const msg = (err as Error).message;
      expect(msg).toContain(`http://127.0.0.1:${port}/cats_and_dogs_filtered.zip`);
      expect(msg).toMatch(/--data/);
      expect(msg).toMatch(/TFJS_TRANSFER_DATA/);
      expect(msg).toMatch(/TFJS_TRANSFER_MODEL/);
      await expect(downloadFile(`${base}/missing.zip`, join(dir, 'x.zip'))).rejects.toThrow(/HTTP 404/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
