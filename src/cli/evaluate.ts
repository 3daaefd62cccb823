/**
 * `tfjs-transfer evaluate <model> <dir>`: accuracy, per-class metrics and confusion matrix on a labelled folder.
 * @module
 */
import { TransferError } from '../errors';
import { evaluate } from '../evaluate';
import { TEST_TIME_AUGMENTATIONS } from '../evaluate/predict';
import { loadModel } from '../io/model-io';
import { imageFolder } from '../node/image-folder';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { examine } from '../examine/examine';
import { REPORT_OPTIONS, reportPath, writeCliReport } from './report';
import { fromImages, type Dataset } from '../data/dataset';
import { historyFromRun, type TrainingCurves } from '../report/specs';
import type { TransferModel } from '../transfer-model';
import { COMMON_HELP, COMMON_OPTIONS, EXIT, defineCommand, EXIT_CODES_HELP, IMAGE_FILE, TTA_HELP, UsageError, choiceOption, intOption, line, type Command } from './common';
import { formatEvaluation } from './format';
import { requireFolder, startRun } from './run-context';

const HELP = `Usage: tfjs-transfer evaluate <model> <dir> [options]

Evaluates a model saved by tfjs-transfer on a labelled image folder: accuracy, loss, per-class precision /
recall / F1, the confusion matrix, and the misclassified files.

<model>  the saved model: its folder, its model.json, or an http(s):// URL
<dir>    one subfolder per class, named like the model's classes (dir/cats/*.jpg, dir/dogs/*.jpg); with
         dir/train and dir/validation, the validation folder is evaluated

Options:
  --json              print one JSON document on stdout: the evaluate() result (accuracy, loss, count, classes,
                      perClass, macroF1, confusionMatrix, rocAuc, misclassified, unknown, topLosses without
                      heatmaps) plus "model", "data" and "report" (its path, or null)
  --batch-size <n>    images per forward pass (default 32)
  --show-errors <n>   list up to n misclassified files (default 10)
  --unknown <dir>     images of none of the model's classes (any files under dir, subfolders included): report
                      how many the model's unknown detector refuses, and the ROC AUC of its score
${TTA_HELP}
  --report <file>     write the HTML report there (default: evaluate-report.html in the model's folder, or in
                      the current folder for a URL; not report.html, so the report train wrote is kept):
                      one self-contained page that opens offline, with the data summary, the training
                      curves the model card kept, confusion matrix, per-class metrics, reliability diagram, unknown-score
                      histogram, the most confident mistakes with heatmaps, and the model card
  --no-report         write no report (and skip the heatmaps it needs)
${COMMON_HELP}

${EXIT_CODES_HELP}
  A folder whose class names differ from the model's classes is a runtime failure (1).

Examples:
  tfjs-transfer evaluate cats-vs-dogs-model photos/validation --json
  tfjs-transfer evaluate cats-vs-dogs-model photos/validation --unknown photos/not-cats-or-dogs`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  json: { type: 'boolean' },
  'batch-size': { type: 'string' },
  'show-errors': { type: 'string' },
  unknown: { type: 'string' },
  tta: { type: 'string' },
  ...REPORT_OPTIONS,
} as const;

/** Every image file under `root` (subfolders included, sorted), as a dataset whose labels do not matter. */
async function unknownImages(root: string, given: string): Promise<Dataset> {
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else if (IMAGE_FILE.test(e.name)) files.push(path);
    }
  };
  await walk(root);
  if (files.length === 0) throw new UsageError(`--unknown ${given} holds no image files (JPEG, PNG, WebP, GIF, BMP).`, 'evaluate');
  return fromImages(files.map((image) => ({ image, label: 'other' })), { name: given });
}

/**
 * The training curves the saved model's card kept: the last run, and when it trained backbone layers (fine-tuning)
 * the run before it as the head's.
 */
function trainingOf(model: TransferModel): { history?: TrainingCurves; fineTuneHistory?: TrainingCurves } {
  const runs = model.card.training;
  const last = runs[runs.length - 1];
  if (!last) return {};
  const head = new Set(model.headLayers);
  const fineTuned = runs.length > 1 && last.trainedLayers.some((l) => !head.has(l));
  const history = historyFromRun(fineTuned ? runs[runs.length - 2]! : last);
  const fineTuneHistory = fineTuned ? historyFromRun(last) : undefined;
  return history ? { history, ...(fineTuneHistory ? { fineTuneHistory } : {}) } : {};
}

/** Where `evaluate` writes its report by default: the model's folder for a local model, else the current folder. */
async function defaultReportPath(modelSource: string): Promise<string> {
  const name = 'evaluate-report.html';
  if (/^https?:\/\//i.test(modelSource)) return resolve(name);
  const path = resolve(modelSource.replace(/^file:\/\//i, ''));
  const folder = await stat(path).then((s) => (s.isDirectory() ? path : dirname(path)), () => dirname(path));
  return join(folder, name);
}

/** The `evaluate` command. */
export const evaluateCommand: Command = defineCommand({
  name: 'evaluate',
  summary: 'evaluate a saved model on a folder of class subfolders',
  help: HELP,
  options: OPTIONS,
  async run(v, positionals, io) {
    if (positionals.length !== 2) throw new UsageError(`evaluate takes <model> <dir>, got ${positionals.length} argument(s).`, 'evaluate');
    const [modelSource, dir] = positionals as [string, string];
    const batchSize = intOption('evaluate', 'batch-size', v['batch-size'], 1, 4096);
    const showErrors = intOption('evaluate', 'show-errors', v['show-errors'], 0, 1e6) ?? 10;
    const tta = choiceOption('evaluate', 'tta', v.tta, TEST_TIME_AUGMENTATIONS);
    const report = await reportPath('evaluate', v, await defaultReportPath(modelSource));
    const ctx = await startRun(io, { backend: v.backend, quiet: v.quiet, command: 'evaluate' });
    const root = await requireFolder(dir, 'the evaluation folder');
    const model = await loadModel(modelSource);
    try {
      const folder = await imageFolder(root, { validationSplit: 0, size: [model.inputShape[0], model.inputShape[1]], fit: model.resizeFit, progressBar: false, onProgress: ctx.progress });
      const same = folder.classes.length === model.classes.length && folder.classes.every((c) => model.classes.includes(c));
      if (!same) {
        throw new TransferError(
          'CLASS_MISMATCH',
          `the model ${modelSource} was trained on the classes [${model.classes.join(', ')}], but "${dir}" has the class ` +
            `folders [${folder.classes.join(', ')}]. Evaluate on a folder with one subfolder per class of the model, ` +
            `named exactly like them, or train a model on these classes (tfjs-transfer train ${dir}).`,
        );
      }
      // The folder's class order is sorted; the model's is its output order. Re-open in the model's order.
      const data = folder.classes.every((c, i) => c === model.classes[i])
        ? folder
        : await imageFolder(root, { validationSplit: 0, classes: model.classes, size: [model.inputShape[0], model.inputShape[1]], fit: model.resizeFit, progressBar: false });
      const split = data.layout === 'split' && data.validation ? data.validation : data.train;
      if (data.layout === 'split') ctx.note(`tfjs-transfer: ${dir} has train/ and validation/; evaluating validation/ (${split.size} images)`);
      const unknown = v.unknown === undefined ? undefined : await unknownImages(await requireFolder(v.unknown, 'the --unknown folder'), v.unknown);
      if (unknown && !model.unknownDetector) {
        throw new TransferError('NOT_SUPPORTED', `the model ${modelSource} has no unknown detector (it was trained without validation images, or by an older version); train it again with tfjs-transfer train, which fits one.`);
      }
      // The report shows the top losses' heatmaps (a second pass over those few images).
      const explain = report !== undefined && model.backbone.featureShape.length === 3;
      const result = await evaluate(model, split, { batchSize, unknown, explain, tta });
      const reportStarted = Date.now();
      const written = report === undefined ? undefined : await writeCliReport(report, {
        title: `${basename(root)}: ${model.classes.join(' / ')}`,
        subtitle: `tfjs-transfer evaluate ${modelSource} ${dir}${v.unknown !== undefined ? ` --unknown ${v.unknown}` : ''}`,
        examine: examine(split, { verbose: false }),
        ...trainingOf(model),
        evaluation: result,
        card: model.card,
      });
      if (written) ctx.note(`tfjs-transfer: wrote the report in ${((Date.now() - reportStarted) / 1000).toFixed(1)}s`);
      if (v.json) {
        const topLosses = result.topLosses.map(({ heatmaps: _, ...l }) => l);
        line(io.out, JSON.stringify({ ...result, topLosses, model: modelSource, data: root, report: written?.path ?? null }));
      } else {
        line(io.out, formatEvaluation(result, `${dir}`));
        const shown = result.misclassified.slice(0, showErrors);
        if (shown.length) {
          line(io.out, `  misclassified (${result.count - Math.round(result.accuracy * result.count)}; first ${shown.length}):`);
          for (const m of shown) line(io.out, `    ${m.source ?? `#${m.index}`}: ${m.actual} -> ${m.predicted} (${m.probability.toFixed(3)})`);
        }
        if (written) line(io.out, `report: ${written.path} (${written.bytes} bytes)`);
      }
    } finally {
      model.dispose();
    }
    return EXIT.OK;
  },
});
