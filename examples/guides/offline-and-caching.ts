/**
 * Guide: working offline and caching models (docs/guides/offline-and-caching.md).
 *
 * 1. Refuse the network: `env.allowRemoteModels = false` makes every catalog name and URL fail fast with a clear
 *    error instead of hanging on a download.
 * 2. Serve the catalog from a mirror: `env.modelHost` points catalog names at your own server (here a local
 *    node:http static server over a folder of models).
 * 3. Download once, load from disk ever after: copy `model.json` and its weight shards into a cache folder, then
 *    load the folder by path.
 *
 *   node --import tsx examples/guides/offline-and-caching.ts
 *
 * In your application: `import { env, loadBackbone } from 'tfjs-transfer/node'`.
 */
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { TransferError, env, loadBackbone } from '../../src/node/index';
import { MOBILENET_035, isMain, useBackend } from './common';

/** Options of {@link main}. */
export interface OfflineOptions {
  /** Folder of the Keras MobileNetV2 0.35 no-top model to mirror. Default: ../shared's. */
  modelDir?: string;
  /** Input size the backbones are loaded at. Default 224. */
  inputSize?: number;
  /** Where downloaded models are cached. Default: a temporary folder (removed at the end). */
  cacheDir?: string;
  /** Print what happens. Default true. */
  verbose?: boolean;
}

/** What {@link main} observed. */
export interface OfflineResult {
  /** The error code when remote models are disabled. */
  refusedWith: string;
  /** Feature shape of the backbone loaded through the mirror. */
  mirrored: number[];
  /** Files written into the cache. */
  cachedFiles: string[];
  /** Feature shape of the backbone loaded from the cache, offline. */
  fromCache: number[];
}

/** A static file server over `root`, like any web server or bucket that could host models. */
async function serveFolder(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = normalize(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    if (!path.startsWith(root + sep)) return void res.writeHead(403).end();
    stat(path).then(
      (s) => {
        if (!s.isFile()) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': path.endsWith('.json') ? 'application/json' : 'application/octet-stream', 'content-length': s.size });
        createReadStream(path).pipe(res);
      },
      () => void res.writeHead(404).end(),
    );
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => new Promise((done) => server.close(() => done())) };
}

/**
 * Downloads a TF.js model (`model.json` and every weight shard it lists) into `dir`, unless it is there already;
 * returns the local `model.json` path, which `loadBackbone` reads without any network.
 */
export async function cacheModel(url: string, dir: string): Promise<string> {
  const local = join(dir, 'model.json');
  if (existsSync(local)) return local;
  await mkdir(dir, { recursive: true });
  const get = async (u: string) => {
    const response = await fetch(u);
    if (!response.ok) throw new Error(`GET ${u}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  };
  const json = await get(url);
  const manifest = JSON.parse(new TextDecoder().decode(json)) as { weightsManifest: { paths: string[] }[] };
  for (const group of manifest.weightsManifest) {
    for (const path of group.paths) {
      const target = resolve(dir, path);
      if (!target.startsWith(resolve(dir) + sep)) throw new Error(`refusing weight path ${path}: outside the model folder`);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, await get(new URL(path, url).href));
    }
  }
  await writeFile(local, json); // last: a model.json in the cache means the download completed
  return local;
}

export async function main(options: OfflineOptions = {}): Promise<OfflineResult> {
  const verbose = options.verbose ?? true;
  const say = (message: string) => verbose && console.log(message);
  const inputSize = options.inputSize ?? 224;
  const saved = { modelHost: env.modelHost, allowRemoteModels: env.allowRemoteModels };
  const temp = await mkdtemp(join(tmpdir(), 'tfjs-transfer-offline-'));
  try {
    // 1. No network at all: catalog names and URLs fail at once, with what to do instead.
    env.allowRemoteModels = false;
    let refusedWith = '';
    try {
      await loadBackbone('mobilenet_v2_0.35_224');
    } catch (error) {
      if (!(error instanceof TransferError)) throw error;
      refusedWith = error.code;
      say(`offline: ${error.code}: ${error.message}`);
    }

    // 2. A mirror: the catalog's 224 no-top models live at `${env.modelHost}<name>/model.json`. Lay a folder out
    //    the same way, serve it, and point env.modelHost at it.
    const mirror = join(temp, 'mirror');
    await mkdir(mirror, { recursive: true });
    await symlink(resolve(options.modelDir ?? dirname(MOBILENET_035)), join(mirror, 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top'));
    const server = await serveFolder(mirror);
    let mirrored: number[];
    let cachedFiles: string[];
    let fromCache: number[];
    try {
      env.allowRemoteModels = true;
      env.modelHost = server.url;
      const viaMirror = await loadBackbone('mobilenet_v2_0.35_224', { inputSize });
      mirrored = viaMirror.featureShape;
      say(`mirror: ${viaMirror.name} from ${viaMirror.source}, features [${mirrored.join(', ')}]`);
      viaMirror.dispose();

      // 3. Download once into a cache folder (the same code works for any model URL) ...
      const cacheDir = options.cacheDir ?? join(temp, 'cache');
      const url = `${server.url}mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top/model.json`;
      const local = await cacheModel(url, join(cacheDir, 'mobilenet_v2_0.35_224'));
      cachedFiles = (await readdir(dirname(local))).sort();
      say(`cached: ${dirname(local)}: ${cachedFiles.join(', ')}`);
    } finally {
      await server.close();
    }

    // ... and load from disk with the network refused: nothing is fetched.
    env.allowRemoteModels = false;
    const cached = await loadBackbone(join(options.cacheDir ?? join(temp, 'cache'), 'mobilenet_v2_0.35_224', 'model.json'), { inputSize });
    fromCache = cached.featureShape;
    say(`from the cache, offline: features [${fromCache.join(', ')}]`);
    cached.dispose();
    return { refusedWith, mirrored, cachedFiles, fromCache };
  } finally {
    env.modelHost = saved.modelHost;
    env.allowRemoteModels = saved.allowRemoteModels;
    await rm(temp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  await useBackend();
  await main();
}
