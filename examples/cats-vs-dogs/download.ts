/**
 * Downloads into a cache folder, for the cats-vs-dogs example: the data set archive (unpacked with `fflate`, a
 * maintained ZIP library, rather than a hand-written reader in the library) and the catalog model (saved with the
 * library's saver). Every download goes through `env.fetch`, and every failure says which URL failed and what to
 * use instead when offline. Not library code: nothing under `src/` imports it.
 * @module
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { unzipSync } from 'fflate';
import { resolveCatalogName } from '../../src/backbone/catalog';
import { env } from '../../src/env';
import { TransferError } from '../../src/errors';
import type { ProgressCallback } from '../../src/types';

/**
 * The cache folder: `TFJS_TRANSFER_CACHE`, else `$XDG_CACHE_HOME/tfjs-transfer`, else `~/.cache/tfjs-transfer`.
 */
export function cacheDirectory(): string {
  if (process.env.TFJS_TRANSFER_CACHE) return resolve(process.env.TFJS_TRANSFER_CACHE);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'tfjs-transfer');
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Options of the download functions. */
export interface DownloadArgs {
  /** Progress in bytes (`stage`: `download`). */
  onProgress?: ProgressCallback;
  /** Abort the download. */
  signal?: AbortSignal;
  /** What to tell the user to do instead when the download fails (appended to the error message). */
  offlineHint?: string;
}

function networkError(url: string, reason: string, hint: string | undefined, cause?: unknown): TransferError {
  return new TransferError(
    'NETWORK',
    `could not download ${url}: ${reason}.${hint ? ` ${hint}` : ''}`,
    { cause },
  );
}

function describeFetchError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host cannot be resolved (${code}); this machine looks offline`;
  if (code === 'ECONNREFUSED') return 'the connection was refused';
  return cause?.message ?? (e instanceof Error ? e.message : String(e));
}

/**
 * Downloads `url` to the file `destination` (written to a temporary file, then renamed, so an interrupted
 * download leaves nothing behind).
 *
 * @example
 * ```ts
 * await downloadFile('https://example.com/data.zip', '/tmp/data.zip');
 * ```
 */
export async function downloadFile(url: string, destination: string, options: DownloadArgs = {}): Promise<void> {
  if (!env.allowRemoteModels) throw networkError(url, 'remote downloads are disabled (env.allowRemoteModels is false)', options.offlineHint);
  const fetchFn = env.fetch;
  if (!fetchFn) throw networkError(url, 'no fetch() in this environment', options.offlineHint);
  let response: Response;
  try {
    response = await fetchFn(url, { signal: options.signal });
  } catch (e) {
    throw networkError(url, describeFetchError(e), options.offlineHint, e);
  }
  if (!response.ok || !response.body) throw networkError(url, `HTTP ${response.status} ${response.statusText}`.trim(), options.offlineHint);
  const total = Number(response.headers.get('content-length')) || 0;
  await mkdir(dirname(destination), { recursive: true });
  const temp = `${destination}.download-${process.pid}`;
  const file = createWriteStream(temp);
  let done = 0;
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) break;
      done += value.length;
      if (!file.write(value)) await new Promise<void>((r) => file.once('drain', () => r()));
      options.onProgress?.({ done, total: Math.max(total, done), stage: 'download' });
    }
    await new Promise<void>((ok, fail) => file.end((e?: Error | null) => (e ? fail(e) : ok())));
    if (total && done !== total) throw networkError(url, `the connection closed after ${done} of ${total} bytes`, options.offlineHint);
    await rename(temp, destination);
  } catch (e) {
    file.destroy();
    await rm(temp, { force: true });
    if (e instanceof TransferError) throw e;
    throw networkError(url, describeFetchError(e), options.offlineHint, e);
  }
}

function badZip(message: string, cause?: unknown): TransferError {
  return new TransferError('INVALID_ARGUMENT', `ZIP archive: ${message}`, { cause });
}

/** A safe relative path for `name`, or an error for names that would escape the destination ("zip slip"). */
function safePath(name: string): string {
  const parts = name.replace(/\\/g, '/').split('/').filter((s) => s !== '' && s !== '.');
  if (isAbsolute(name) || /^[a-zA-Z]:/.test(name) || parts.includes('..')) throw badZip(`entry "${name}" would be written outside the destination folder.`);
  return parts.join(sep);
}

/**
 * Extracts every entry of `zip` (read by `fflate`) into `destination`, atomically: the files are written into a
 * temporary sibling folder that is renamed to `destination` once complete (an interrupted extraction leaves no
 * partial folder). `destination` must not exist yet. Entry names that would escape `destination` are refused
 * before anything is written.
 *
 * @returns The number of files written.
 * @example
 * ```ts
 * await extractZip(await readFile('data.zip'), '/tmp/data');
 * ```
 */
export async function extractZip(zip: Uint8Array, destination: string): Promise<number> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(zip);
  } catch (e) {
    throw badZip(`not a readable ZIP archive (${e instanceof Error ? e.message : String(e)}); download it again.`, e);
  }
  const paths = Object.keys(entries).map((name) => ({ name, rel: safePath(name) }));
  const target = resolve(destination);
  const temp = `${target}.partial-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  let files = 0;
  try {
    for (const { name, rel } of paths) {
      if (rel === '') continue;
      const out = join(temp, rel);
      if (name.endsWith('/')) await mkdir(out, { recursive: true });
      else {
        await mkdir(dirname(out), { recursive: true });
        await writeFile(out, entries[name]!);
        files++;
      }
    }
    await mkdir(dirname(target), { recursive: true });
    await rename(temp, target);
  } catch (e) {
    await rm(temp, { recursive: true, force: true });
    throw e;
  }
  return files;
}

/** Options of {@link cachedZip}. */
export interface CachedZipArgs extends DownloadArgs {
  /** The cache folder. Default: {@link cacheDirectory}. */
  cacheDir?: string;
  /**
   * Expected SHA-256 (hex) of the archive; a download that differs is refused and deleted. `fflate` does not
   * check the entries' CRC-32, so this is how a caller who knows the archive guards against a damaged copy.
   * Default: not checked (the download's length is still checked against `content-length`).
   */
  sha256?: string;
}

/**
 * A ZIP archive downloaded from `url` and unpacked into `<cache>/<name>`, reused when already there.
 *
 * @returns The folder the archive was unpacked into.
 */
export async function cachedZip(url: string, name: string, options: CachedZipArgs = {}): Promise<string> {
  const root = options.cacheDir ?? cacheDirectory();
  const folder = join(root, name);
  if (await exists(folder)) return folder;
  const archive = join(root, `${name}.zip`);
  if (!(await exists(archive))) await downloadFile(url, archive, options);
  const bytes = await readFile(archive);
  if (options.sha256) {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== options.sha256.toLowerCase()) {
      await rm(archive, { force: true });
      throw badZip(`${url} has SHA-256 ${actual}, expected ${options.sha256}; the download is damaged (it was deleted: run again).`);
    }
  }
  await extractZip(bytes, folder);
  await rm(archive, { force: true });
  return folder;
}

/** Options of {@link cachedCatalogModel}. */
export interface CachedCatalogModelArgs extends DownloadArgs {
  /** The cache folder. Default: {@link cacheDirectory}. */
  cacheDir?: string;
  /** The model's URL. Default: the catalog's URL for `name`. */
  url?: string;
}

/**
 * A catalog model (e.g. `"mobilenet_v2_1.0_224"`, resolved through `env.modelHost` where the catalog does so)
 * downloaded once and saved in `<cache>/models/<name>` with the library's own saver, so later runs load it from
 * disk. Layers models only.
 *
 * @returns The path of the cached `model.json`.
 */
export async function cachedCatalogModel(name: string, options: CachedCatalogModelArgs = {}): Promise<string> {
  const entry = resolveCatalogName(name);
  const url = options.url ?? entry?.url;
  if (!url) throw new TransferError('UNKNOWN_BACKBONE', `"${name}" is not a catalog name; pass a model URL.`);
  if (entry && entry.format !== 'layers' && !options.url) {
    throw new TransferError('NOT_SUPPORTED', `"${name}" is a TF Hub graph model; only layers models are cached (load it with loadBackbone directly).`);
  }
  const folder = join(options.cacheDir ?? cacheDirectory(), 'models', name);
  const modelJson = join(folder, 'model.json');
  if (await exists(modelJson)) return modelJson;
  if (!env.allowRemoteModels) throw networkError(url, 'remote downloads are disabled (env.allowRemoteModels is false)', options.offlineHint);
  if (!env.fileSystem) throw new TransferError('NODE_ONLY', 'cachedCatalogModel: no file access; import tfjs-transfer/node.');
  let artifacts: tf.io.ModelArtifacts;
  try {
    const handler = tf.io.http(url, {
      fetchFunc: env.fetch,
      onProgress: options.onProgress ? (f: number) => options.onProgress!({ done: Math.round(f * 100), total: 100, stage: 'download' }) : undefined,
    });
    if (!handler.load) throw new Error('the http IO handler cannot load');
    artifacts = await handler.load();
  } catch (e) {
    throw networkError(url, describeFetchError(e), options.offlineHint, e);
  }
  const saver = env.fileSystem.saver(folder);
  if (!saver.save) throw new TransferError('NOT_SUPPORTED', 'cachedCatalogModel: the installed file system cannot save models.');
  await saver.save(artifacts);
  return modelJson;
}
