/**
 * `tfjs-transfer predict <model> <image...>`: the class of each image.
 * @module
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { predict, type Prediction } from '../evaluate';
import { TEST_TIME_AUGMENTATIONS } from '../evaluate/predict';
import { loadModel } from '../io/model-io';
import { decodeImage } from '../node/decode';
import { COMMON_HELP, COMMON_OPTIONS, EXIT, defineCommand, EXIT_CODES_HELP, IMAGE_FILE, TTA_HELP, UsageError, choiceOption, line, type Command } from './common';
import { formatPrediction } from './format';
import { startRun } from './run-context';

const HELP = `Usage: tfjs-transfer predict <model> <image | folder...> [options]

Predicts the class of each image with a model saved by tfjs-transfer. Images may have any size (they are
resized like in training); JPEG, PNG, WebP, GIF and BMP are read. A folder stands for the image files directly
inside it (by extension, sorted by name; subfolders are not read).

Output: one line per image, "<file><TAB><label><TAB><probability>". When the model's unknown detector finds
that an image looks like none of its classes, the label is "unknown" and the line ends with the closest class:
"<file><TAB>unknown<TAB><probability><TAB>closest: <label>".

Options:
  --json     print one JSON document on stdout: { "model", "classes", "predictions": [{ "file", "label",
             "probability", "probabilities", "unknown", "familiarity" } or { "file", "error" }] } ("unknown"
             and "familiarity" when the model has an unknown detector)
${TTA_HELP}
${COMMON_HELP}

${EXIT_CODES_HELP}
  An unreadable image is reported and makes the exit code 1; the other images are still predicted.

Example:
  tfjs-transfer predict cats-vs-dogs-model cat.jpg dog.png`;

const OPTIONS = { ...COMMON_OPTIONS, json: { type: 'boolean' }, tta: { type: 'string' } } as const;

/** One entry of `predict --json`. */
export type PredictionEntry = ({ file: string } & Prediction) | { file: string; error: string };

/**
 * The image paths, each folder replaced by its image files (by extension, not recursive), sorted by name. A folder
 * without image files stays, to be reported as such.
 */
async function expandFolders(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    const s = await stat(path).catch(() => undefined);
    if (!s?.isDirectory()) {
      out.push(path);
      continue;
    }
    const names = (await readdir(path, { withFileTypes: true }))
      .filter((e) => !e.name.startsWith('.') && !e.isDirectory() && IMAGE_FILE.test(e.name))
      .map((e) => e.name)
      .sort();
    if (names.length === 0) out.push(path);
    for (const name of names) out.push(join(path, name));
  }
  return out;
}

/** The `predict` command. */
export const predictCommand: Command = defineCommand({
  name: 'predict',
  summary: 'predict the class of images with a saved model',
  help: HELP,
  options: OPTIONS,
  async run(v, positionals, io) {
    if (positionals.length < 2) throw new UsageError('predict takes <model> and at least one image or folder.', 'predict');
    const [modelSource, ...given] = positionals as [string, ...string[]];
    const tta = choiceOption('predict', 'tta', v.tta, TEST_TIME_AUGMENTATIONS);
    await startRun(io, { backend: v.backend, quiet: v.quiet, command: 'predict' });
    const files = await expandFolders(given);
    const model = await loadModel(modelSource);
    const entries: PredictionEntry[] = [];
    try {
      for (const file of files) {
        let image: tf.Tensor3D | undefined;
        try {
          const decoded = await decodeImage(await readFile(file));
          image = tf.tensor3d(decoded.data, [decoded.height, decoded.width, 3], 'int32');
          const [p] = await predict(model, image, { tta });
          entries.push({ file, ...p! });
          if (!v.json) line(io.out, formatPrediction(file, p!));
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          const error =
            code === 'ENOENT'
              ? 'no such file'
              : code === 'EISDIR'
                ? 'a folder with no image files (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF)'
                : e instanceof Error
                  ? e.message
                  : String(e);
          entries.push({ file, error });
          line(io.err, `error: ${file}: ${error}`);
        } finally {
          image?.dispose();
        }
      }
    } finally {
      model.dispose();
    }
    if (v.json) line(io.out, JSON.stringify({ model: modelSource, classes: model.classes, predictions: entries }));
    return entries.some((e) => 'error' in e) ? EXIT.FAILURE : EXIT.OK;
  },
});
