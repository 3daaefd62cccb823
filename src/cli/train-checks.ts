/**
 * Checks `train` makes before the slow work, so a mistake costs seconds, not a trained model: the output folder
 * (before anything loads), the data folder (before the backbone loads), the fine-tuning layer (right after the
 * backbone loads, before extraction).
 * @module
 */
import { constants, type Dirent } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Backbone } from '../backbone/backbone';
import { TransferError } from '../errors';
import { IMAGE_FILE, UsageError } from './common';

const TRAIN_DIRS = ['train'];
const VALIDATION_DIRS = ['validation', 'val', 'valid'];

async function kindOf(path: string): Promise<'file' | 'folder' | 'missing' | 'other'> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'folder' : s.isFile() ? 'file' : 'other';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ENOTDIR: a folder on the way is a file; the walk up in checkOutFolder names it.
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw e;
  }
}

async function writable(path: string): Promise<string | undefined> {
  try {
    await access(path, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

/**
 * Checks that the model can be saved at `out` (an absolute path): it is not a file, and it, or the nearest folder
 * above it that exists, is a writable folder (saving creates the missing ones).
 *
 * @throws UsageError otherwise.
 */
export async function checkOutFolder(out: string): Promise<void> {
  const fail = (why: string) => new UsageError(`--out "${out}" ${why}; nothing was trained. Pass a folder path where the model can be saved.`, 'train');
  try {
    await checkOut(out, fail);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw fail(`cannot be checked (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

async function checkOut(out: string, fail: (why: string) => UsageError): Promise<void> {
  const kind = await kindOf(out);
  if (kind === 'file') throw fail('is a file, not a folder');
  if (kind === 'other') throw fail('is not a folder');
  if (kind === 'folder') {
    // Its own writability only: a mounted folder under a read-only parent (a Docker volume) is a fine target.
    const code = await writable(out);
    if (code) throw fail(`cannot be written (${code})`);
    return;
  }
  // Missing: the nearest existing ancestor must be a writable folder.
  let parent = dirname(out);
  for (;;) {
    const k = await kindOf(parent);
    if (k === 'folder') break;
    if (k !== 'missing') throw fail(`cannot be created: "${parent}" is a file, not a folder`);
    const up = dirname(parent);
    if (up === parent) throw fail('cannot be created');
    parent = up;
  }
  const code = await writable(parent);
  if (code) throw fail(`cannot be created: "${parent}" is not writable (${code})`);
}

/** What {@link checkDataFolder} found. */
export interface DataFolderShape {
  /** `split`: `train/` and `validation/` (validation is the folder's); `classes`: class folders (a share is held out). */
  layout: 'split' | 'classes';
  /** The name of the validation folder with the `split` layout. */
  validationFolder?: string;
  /** Class folder names (of `train/` with the `split` layout), sorted. */
  classes: string[];
}

const SYSTEM_DIRS = new Set(['__macosx', '@eadir', '$recycle.bin', 'system volume information']);

/** Hidden or system names, skipped as `imageFolder` skips them. */
const ignored = (name: string) => name.startsWith('.') || SYSTEM_DIRS.has(name.toLowerCase());

/** Whether an entry is a folder, following a symbolic link. */
async function isFolder(dir: string, e: Dirent): Promise<boolean> {
  if (e.isDirectory()) return true;
  if (!e.isSymbolicLink()) return false;
  return (await kindOf(join(dir, e.name)).catch(() => 'other')) === 'folder';
}

/** The folders directly in `dir` (symbolic links followed), hidden and system ones left out. */
async function foldersIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) if (!ignored(e.name) && (await isFolder(dir, e))) out.push(e.name);
  return out.sort();
}

/** Whether `dir` or a folder in it (at most 3 levels down) holds a file named like an image. */
async function hasImage(dir: string, depth = 0): Promise<boolean> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  entries = entries.filter((e) => !ignored(e.name));
  if (entries.some((e) => !e.isDirectory() && IMAGE_FILE.test(e.name))) return true;
  if (depth >= 3) return false;
  for (const e of entries) if ((await isFolder(dir, e)) && (await hasImage(join(dir, e.name), depth + 1))) return true;
  return false;
}

/**
 * Looks at the names in the data folder `root` (reads no image): class folders, each with at least one image file.
 * Cheap, so it runs before the backbone loads (or downloads).
 *
 * @throws TransferError `EMPTY_DATA` (exit 1) when there are no class folders, or a class folder has no image file.
 */
export async function checkDataFolder(root: string, dir: string): Promise<DataFolderShape> {
  const names = await foldersIn(root);
  const train = TRAIN_DIRS.find((n) => names.includes(n));
  const validation = VALIDATION_DIRS.find((n) => names.includes(n));
  const layout = train !== undefined && validation !== undefined ? 'split' : 'classes';
  const classRoot = layout === 'split' ? join(root, train!) : root;
  const classes = layout === 'split' ? await foldersIn(classRoot) : names;
  if (classes.length === 0) {
    throw new TransferError(
      'EMPTY_DATA',
      `the training folder "${dir}" has no class folders. Put each class's images in its own folder (${dir}/cats/*.jpg, ${dir}/dogs/*.jpg), ` +
        `or use ${dir}/train/<class> and ${dir}/validation/<class>.`,
    );
  }
  const empty: string[] = [];
  for (const c of classes) if (!(await hasImage(join(classRoot, c)))) empty.push(c);
  if (empty.length > 0) {
    throw new TransferError(
      'EMPTY_DATA',
      `the class folder${empty.length > 1 ? 's' : ''} ${empty.map((c) => `"${c}"`).join(', ')} of "${dir}" ${empty.length > 1 ? 'have' : 'has'} no image files ` +
        `(JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF). Add images or remove the folder.`,
    );
  }
  return { layout, validationFolder: layout === 'split' ? validation : undefined, classes };
}

/**
 * Checks `--fine-tune-from` against the loaded backbone: a layer name, or an index into `backbone.layers`.
 * Returns the value to pass on (an index given as digits becomes a number).
 *
 * @throws UsageError for an unknown layer, an index out of range, or a backbone that cannot be fine-tuned.
 */
export function checkFineTuneFrom(backbone: Backbone, from: string | undefined): string | number | undefined {
  if (backbone.kind !== 'layers') {
    throw new UsageError(`--fine-tune needs a layers-model backbone; "${backbone.name}" is a ${backbone.kind} model, which cannot be partly unfrozen.`, 'train');
  }
  if (from === undefined) return undefined;
  const layers = backbone.layers;
  if (/^\d+$/.test(from)) {
    const index = Number(from);
    if (index >= layers.length) throw new UsageError(`--fine-tune-from ${from} is out of range: the backbone has ${layers.length} layers (0 to ${layers.length - 1}).`, 'train');
    return index;
  }
  if (layers.some((l) => l.name === from)) return from;
  const near = layers.filter((l) => l.name.endsWith('_expand')).map((l) => l.name);
  throw new UsageError(
    `--fine-tune-from: the backbone "${backbone.name}" has no layer "${from}". ` +
      `${near.length ? `Layers to start from: ${near.slice(-8).join(', ')}` : `Its layers: ${layers.slice(-8).map((l) => l.name).join(', ')} (last 8)`}; or an index from 0 to ${layers.length - 1}.`,
    'train',
  );
}
