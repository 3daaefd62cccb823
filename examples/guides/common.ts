/**
 * What the guide examples share: where the data and models are (`../shared` beside the repository, or the
 * `TFJS_TRANSFER_SHARED` folder), choosing a backend when an example runs on its own, and taking a small sample
 * of an image folder (to try a pipeline in seconds before running it on everything).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, symlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

/** The repository root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The shared data folder: `TFJS_TRANSFER_SHARED`, else `../shared` beside the repository. */
export const SHARED = resolve(process.env.TFJS_TRANSFER_SHARED ?? join(REPO, '../shared'));
/** The Keras tutorial's cats vs dogs (`train|validation/cats|dogs`), 200 px. */
export const CATS_DOGS = join(SHARED, 'data/cats_and_dogs_filtered_200px');
/** MobileNetV2 1.0 224 (TF.js layers model with its ImageNet top; BatchNorm folded). */
export const MOBILENET_100 = join(SHARED, 'models/mobilenet_v2_1.0_224/model.json');
/** Keras MobileNetV2 0.35 224, no top, with BatchNorm layers (Teachable Machine's base). */
export const MOBILENET_035 = join(SHARED, 'models/mobilenet_v2_0.35_224_no_top/model.json');

/** A model path if the file exists, else the catalog name (downloaded on first use). */
export function modelOrCatalog(path: string, catalogName: string): string {
  return existsSync(path) ? path : catalogName;
}

/** Whether this module is the script node was started with (`node --import tsx examples/guides/x.ts`). */
export function isMain(importMetaUrl: string): boolean {
  return process.argv[1] !== undefined && importMetaUrl === pathToFileURL(resolve(process.argv[1])).href;
}

/**
 * Selects a backend for a standalone run: `TFJS_BACKEND` (`tensorflow`, `wasm` or `cpu`), else tfjs-node when it
 * is installed, else wasm. Tests select theirs before calling an example's `main`.
 */
export async function useBackend(name = process.env.TFJS_BACKEND): Promise<string> {
  const wanted = name ?? ((await canImport('@tensorflow/tfjs-node')) ? 'tensorflow' : 'wasm');
  if (wanted === 'tensorflow') await import('@tensorflow/tfjs-node' as string);
  else if (wanted === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  else if (wanted === 'cpu') await import('@tensorflow/tfjs-backend-cpu');
  else if (!tf.findBackend(wanted)) throw new Error(`unknown backend "${wanted}": use tensorflow, wasm or cpu`);
  if (!(await tf.setBackend(wanted)) || tf.getBackend() !== wanted) throw new Error(`could not initialise the ${wanted} backend`);
  return wanted;
}

async function canImport(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds a sample of an image folder in `dest`: the first `perClass` files of every class folder (in each split
 * folder, if any), as symbolic links, so a pipeline can be tried in seconds.
 *
 * @returns `dest`.
 */
export async function sampleFolder(source: string, dest: string, perClass: number): Promise<string> {
  const visit = async (from: string, to: string, depth: number): Promise<void> => {
    const entries = (await readdir(from, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    const files = entries.filter((e) => e.isFile() && !e.name.startsWith('.'));
    const dirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.'));
    if (files.length > 0 && depth > 0) {
      await mkdir(to, { recursive: true });
      for (const f of files.slice(0, perClass)) await symlink(join(from, f.name), join(to, f.name));
    }
    for (const d of dirs) await visit(join(from, d.name), join(to, d.name), depth + 1);
  };
  await visit(resolve(source), resolve(dest), 0);
  return dest;
}
