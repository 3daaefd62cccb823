/**
 * Where the example's data and model come from, in this order: flags, environment variables
 * (`TFJS_TRANSFER_DATA`, `TFJS_TRANSFER_MODEL`, `TFJS_TRANSFER_FULLRES`), the shared folder beside the repository
 * (`../shared`, or `TFJS_TRANSFER_SHARED`), else a download into the cache folder (`TFJS_TRANSFER_CACHE`, default
 * `~/.cache/tfjs-transfer`): the Keras tutorial's data set and the official TF.js MobileNetV2.
 * @module
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDirectory, cachedCatalogModel, cachedZip } from './download';
import type { ProgressCallback } from '../../src/node/index';

/** The repository root (two folders above this file). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The Keras tutorial's data set (68 MB): `cats_and_dogs_filtered/{train,validation}/{cats,dogs}`. */
export const DATASET_URL = 'https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip';
/** The catalog name of the backbone the example uses. */
export const MODEL_NAME = 'mobilenet_v2_1.0_224';

/** `../shared` beside the repository (or `TFJS_TRANSFER_SHARED`), if it exists. */
export function findShared(): string | undefined {
  const candidates = [process.env.TFJS_TRANSFER_SHARED, join(REPO, '../shared')].filter((p): p is string => Boolean(p));
  return candidates.map((p) => resolve(p)).find((p) => existsSync(join(p, 'data')) || existsSync(join(p, 'models')));
}

/** What the example runs on, and where each piece came from. */
export interface Located {
  /** Folder with `train/{cats,dogs}` and `validation/{cats,dogs}`. */
  data: string;
  /** `model.json` path (or URL) of MobileNetV2 1.0 224. */
  model: string;
  /** Folder of full-size photos `{cats,dogs}/*` never used in training, if available. */
  fullres?: string;
  /** {@link RELOAD_PHOTOS} photos for the reload check (fewer only when the data has fewer images). */
  photos: string[];
  /** Where each came from, for the log. */
  origin: { data: string; model: string; fullres: string };
}

/** Options of {@link locate}. */
export interface LocateArgs {
  data?: string;
  model?: string;
  fullres?: string;
  cacheDir?: string;
  /** The shared folder; `false` to ignore it. Default: {@link findShared}. */
  shared?: string | false;
  /** Override of {@link DATASET_URL} (tests serve a tiny archive locally). */
  datasetUrl?: string;
  /** Override of the catalog URL of {@link MODEL_NAME}. */
  modelUrl?: string;
  onProgress?: ProgressCallback;
  /** Called before a download starts. */
  note?: (message: string) => void;
}

const OFFLINE_HINT =
  'Offline? Point the example at local copies instead: --data <folder with train/ and validation/> (or ' +
  'TFJS_TRANSFER_DATA=...) and --model <path to model.json> (or TFJS_TRANSFER_MODEL=...), or put the shared folder ' +
  'beside the repository (../shared, or TFJS_TRANSFER_SHARED=...).';

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function firstImages(dir: string, n: number): string[] {
  if (!isDir(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.(jpe?g|png)$/i.test(f))
    .sort()
    .slice(0, n)
    .map((f) => join(dir, f));
}

/** How many photos the reload check predicts in this process and in a fresh one (the README reports N/8). */
export const RELOAD_PHOTOS = 8;

/**
 * {@link RELOAD_PHOTOS} photos for the reload check: everyday photos of the shared folder, then full-size photos,
 * then validation images, cats and dogs alternately; fewer only when the data has fewer images.
 */
function reloadPhotos(shared: string | undefined, fullres: string | undefined, data: string): string[] {
  const everyday = shared ? ['cat.jpg', 'cat_720p.jpg', 'dog_test_0.jpg', 'dog_train_0.jpg'].map((f) => join(shared, 'images', f)).filter((f) => existsSync(f)) : [];
  const half = RELOAD_PHOTOS / 2;
  const byClass = (dir: string): [string[], string[]] => [firstImages(join(dir, 'cats'), half), firstImages(join(dir, 'dogs'), half)];
  const sources = [...(fullres ? [byClass(fullres)] : []), byClass(join(data, 'validation'))];
  const photos = [...everyday];
  // Top up with cats and dogs in turn from each source until there are enough.
  for (const [cats, dogs] of sources) {
    for (let i = 0; photos.length < RELOAD_PHOTOS && i < half; i++) {
      for (const f of [cats[i], dogs[i]]) if (f && photos.length < RELOAD_PHOTOS) photos.push(f);
    }
  }
  return photos;
}

/** Finds (or downloads) the data set, the model, the full-resolution photos and a few photos to predict. */
export async function locate(options: LocateArgs = {}): Promise<Located> {
  const shared = options.shared === false ? undefined : options.shared ?? findShared();
  const datasetUrl = options.datasetUrl ?? DATASET_URL;
  const cacheDir = options.cacheDir ?? cacheDirectory();
  const note = options.note ?? (() => undefined);

  let data: string;
  let dataOrigin: string;
  const sharedData = shared && join(shared, 'data/cats_and_dogs_filtered_200px');
  if (options.data) [data, dataOrigin] = [resolve(options.data), '--data'];
  else if (process.env.TFJS_TRANSFER_DATA) [data, dataOrigin] = [resolve(process.env.TFJS_TRANSFER_DATA), 'TFJS_TRANSFER_DATA'];
  else if (sharedData && isDir(sharedData)) [data, dataOrigin] = [sharedData, 'the shared folder'];
  else {
    note(`tfjs-transfer: the tutorial's data set (68 MB): ${datasetUrl}, cached in ${cacheDir}`);
    const folder = await cachedZip(datasetUrl, 'cats_and_dogs_filtered', { cacheDir, onProgress: options.onProgress, offlineHint: OFFLINE_HINT });
    // The archive holds one top folder, cats_and_dogs_filtered/.
    data = isDir(join(folder, 'cats_and_dogs_filtered')) ? join(folder, 'cats_and_dogs_filtered') : folder;
    dataOrigin = `the cache (${datasetUrl})`;
  }

  let model: string;
  let modelOrigin: string;
  const sharedModel = shared && join(shared, 'models', MODEL_NAME, 'model.json');
  if (options.model) [model, modelOrigin] = [options.model, '--model'];
  else if (process.env.TFJS_TRANSFER_MODEL) [model, modelOrigin] = [process.env.TFJS_TRANSFER_MODEL, 'TFJS_TRANSFER_MODEL'];
  else if (sharedModel && existsSync(sharedModel)) [model, modelOrigin] = [sharedModel, 'the shared folder'];
  else {
    note(`tfjs-transfer: ${MODEL_NAME} (14 MB), cached in ${join(cacheDir, 'models')}`);
    model = await cachedCatalogModel(MODEL_NAME, { cacheDir, url: options.modelUrl, onProgress: options.onProgress, offlineHint: OFFLINE_HINT });
    modelOrigin = 'the cache (official TF.js model)';
  }

  let fullres: string | undefined;
  let fullresOrigin = 'none (pass --fullres <folder of cats/ and dogs/> to test on full-size photos)';
  const sharedFull = shared && join(shared, 'data/cats_vs_dogs_fullres');
  if (options.fullres) [fullres, fullresOrigin] = [resolve(options.fullres), '--fullres'];
  else if (process.env.TFJS_TRANSFER_FULLRES) [fullres, fullresOrigin] = [resolve(process.env.TFJS_TRANSFER_FULLRES), 'TFJS_TRANSFER_FULLRES'];
  else if (sharedFull && isDir(sharedFull)) [fullres, fullresOrigin] = [sharedFull, 'the shared folder'];

  const photos = reloadPhotos(shared, fullres, data);
  return { data, model, fullres, photos, origin: { data: dataOrigin, model: modelOrigin, fullres: fullresOrigin } };
}
