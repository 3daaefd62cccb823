/**
 * `tfjs-transfer train <dir>`: the five steps on an image folder, then save.
 * @module
 */
import { RESIZE_FITS, type ResizeFit } from '../data/resize';
import { basename, resolve } from 'node:path';
import { MOBILENET_V2_ALPHAS } from '../backbone/catalog';
import { loadTrainingBackbone } from '../backbone/load';
import { QUANTIZATIONS, type WeightQuantization } from '../artifacts/quantize';
import { save, SAVE_DEFAULTS, type SaveReport } from '../io/model-io';
import { imageFolder } from '../node/image-folder';
import type { ProgressCallback } from '../types';
import { FINE_TUNE_DEFAULTS, resolveTransferLearnArgs, transferLearn, TRANSFER_LEARN_DEFAULTS, type TransferLearnArgs } from '../transfer-learn';
import { COMMON_HELP, COMMON_OPTIONS, EXIT, defineCommand, EXIT_CODES_HELP, UsageError, choiceOption, intOption, line, numberOption, oneFolder, type Command, type ParsedValues } from './common';
import { formatEvaluation } from './format';
import { requireFolder, startRun } from './run-context';
import { formatSettings, trainSettings, type TrainSettings } from './settings';
import { checkDataFolder, checkFineTuneFrom, checkOutFolder } from './train-checks';
import { REPORT_OPTIONS, reportHelp, reportPath, writeCliReport } from './report';

const HELP = `Usage: tfjs-transfer train <dir> [options]

Trains an image classifier on <dir> by transfer learning: examines the data, extracts features with a frozen
pretrained backbone (cached, so each epoch trains only the head), trains a head (average pooling, dropout 0.2,
sigmoid or softmax), optionally fine-tunes the backbone's top, evaluates, and saves the model.

<dir> holds one subfolder per class (dir/cats/*.jpg, dir/dogs/*.jpg), or dir/train/<class> and
dir/validation/<class>. Without a validation folder, ${TRANSFER_LEARN_DEFAULTS.validationSplit * 100}% of each class is held out.

Before the slow work it checks --out (not a file; writable or creatable), the data folder (class folders with
images) and --fine-tune-from (a layer of the backbone), then prints the effective settings on stderr: backbone,
input size, epochs, learning rate, batch size, early stopping, validation, seed, fine-tuning, output folder.

Options:
  --backbone <src>         catalog name (mobilenet_v2_1.0_224, mobilenet_v2_0.35_224, ...), a path to a model.json
                           or its folder, or a URL (default: ${TRANSFER_LEARN_DEFAULTS.backbone})
  --alpha <a>              MobileNetV2 width when --backbone is not given: ${MOBILENET_V2_ALPHAS.join(', ')}
  --size <px>              input size in pixels (square); MobileNetV2 layers models run at any size, e.g. 96..288
                           (default: ${TRANSFER_LEARN_DEFAULTS.mobileNetV2InputSize} for a MobileNetV2 layers model that declares 224, more accurate on both
                           benchmarks for 1.3x the compute, docs/accuracy.md; any other model: its own size)
  --epochs <n>             epochs of head training (default ${TRANSFER_LEARN_DEFAULTS.epochs}, early stopping on validation
                           loss, patience ${TRANSFER_LEARN_DEFAULTS.earlyStopping.patience}, best weights restored)
  --learning-rate <lr>     Adam learning rate of the head (default ${TRANSFER_LEARN_DEFAULTS.learningRate})
  --fine-tune              then unfreeze the backbone's top and train on at learning rate / ${FINE_TUNE_DEFAULTS.learningRateDivisor}
  --fine-tune-from <layer> first layer to unfreeze (default block_11_expand for MobileNetV2)
  --fine-tune-epochs <n>   epochs of fine-tuning (default ${FINE_TUNE_DEFAULTS.epochs})
  --fit <how>              how photos of another aspect ratio are fitted to the input: ${TRANSFER_LEARN_DEFAULTS.fit}
                           (the default: scale to cover, cut the overflow), squash (stretch, Keras' default) or
                           pad; the model records it and predict fits new photos the same way
  --seed <n>               seed of the split, shuffling, dropout and initialisation (default: random)
  --out <dir>              where to save the model (default: ./<dir name>-model)
  --quantize <dtype>       store the backbone's weights as float32 (default), float16 (about half the size) or
                           uint8 (about a quarter); the head and biases stay float32. The saved model is checked
                           on the validation images first and not written if accuracy falls by more than
                           --max-accuracy-drop
  --max-accuracy-drop <f>  the largest accuracy fall --quantize accepts, a fraction (default
                           ${SAVE_DEFAULTS.maxAccuracyDrop}: one point)
  --head-only              save the head only (a few KB) with a checked reference to the backbone, which
                           loading fetches again (not with --fine-tune)
${reportHelp('<out>/report.html')}
  --json                   print one JSON document on stdout (settings, evaluation, history, paths; on failure
                           { "error": { "code", "message", "exitCode" } }); logs go to stderr
${COMMON_HELP}

${EXIT_CODES_HELP}

Example:
  tfjs-transfer train photos --epochs 20 --out my-model`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  backbone: { type: 'string' },
  alpha: { type: 'string' },
  size: { type: 'string' },
  epochs: { type: 'string' },
  'learning-rate': { type: 'string' },
  'fine-tune': { type: 'boolean' },
  'fine-tune-from': { type: 'string' },
  'fine-tune-epochs': { type: 'string' },
  seed: { type: 'string' },
  fit: { type: 'string' },
  out: { type: 'string', short: 'o' },
  quantize: { type: 'string' },
  'max-accuracy-drop': { type: 'string' },
  'head-only': { type: 'boolean' },
  json: { type: 'boolean' },
  ...REPORT_OPTIONS,
} as const;

/** The command line of `train`, checked (usage errors come from here, before anything loads). */
interface TrainCommandLine {
  dir: string;
  source: string;
  size: number | undefined;
  epochs: number | undefined;
  learningRate: number | undefined;
  fineTune: boolean;
  fineTuneFrom: string | undefined;
  fineTuneEpochs: number | undefined;
  seed: number;
  seedRandom: boolean;
  out: string;
  quantize: WeightQuantization | undefined;
  fit: ResizeFit | undefined;
  maxAccuracyDrop: number | undefined;
  headOnly: boolean;
}

function readCommandLine(v: ParsedValues<typeof OPTIONS>, positionals: string[]): TrainCommandLine {
  const dir = oneFolder('train', positionals);
  let alpha: number | undefined;
  if (v.alpha !== undefined) {
    alpha = Number(v.alpha);
    if (!(MOBILENET_V2_ALPHAS as readonly number[]).includes(alpha)) throw new UsageError(`--alpha must be one of ${MOBILENET_V2_ALPHAS.join(', ')}, got "${v.alpha}".`, 'train');
    if (v.backbone !== undefined) throw new UsageError('give --alpha or --backbone, not both (--alpha picks a catalog MobileNetV2).', 'train');
  }
  const fineTuneEpochs = intOption('train', 'fine-tune-epochs', v['fine-tune-epochs'], 1, 10000);
  if (!v['fine-tune'] && (v['fine-tune-from'] !== undefined || fineTuneEpochs !== undefined)) {
    throw new UsageError('--fine-tune-from and --fine-tune-epochs need --fine-tune.', 'train');
  }
  const given = intOption('train', 'seed', v.seed, 0, 2 ** 31 - 1);
  const quantize = choiceOption('train', 'quantize', v.quantize, QUANTIZATIONS);
  if (v['max-accuracy-drop'] !== undefined && quantize === undefined) throw new UsageError('--max-accuracy-drop needs --quantize.', 'train');
  const fit = choiceOption('train', 'fit', v.fit, RESIZE_FITS);
  if (v['head-only'] && v['fine-tune']) throw new UsageError('--head-only saves the head with a reference to the published backbone; a fine-tuned backbone is no longer that one. Drop --fine-tune or --head-only.', 'train');
  return {
    dir,
    source: v.backbone ?? (alpha !== undefined ? `mobilenet_v2_${alpha === 1 ? '1.0' : alpha}_224` : String(TRANSFER_LEARN_DEFAULTS.backbone)),
    size: intOption('train', 'size', v.size, 32, 1024),
    epochs: intOption('train', 'epochs', v.epochs, 1, 10000),
    learningRate: numberOption('train', 'learning-rate', v['learning-rate'], 0, 10),
    fineTune: v['fine-tune'] === true,
    fineTuneFrom: v['fine-tune-from'],
    fineTuneEpochs,
    // Drawn here, not in transferLearn, so the seed printed (and in --json) is the one used.
    seed: given ?? Math.floor(Math.random() * 2 ** 31),
    seedRandom: given === undefined,
    out: resolve(v.out ?? `${basename(resolve(dir))}-model`),
    quantize,
    fit,
    maxAccuracyDrop: numberOption('train', 'max-accuracy-drop', v['max-accuracy-drop'], 0, 1),
    headOnly: v['head-only'] === true,
  };
}

/**
 * Saves the trained model as the command line asks; a quantized save is checked on the validation split (the
 * same seeded split transferLearn held out) when there is one.
 */
async function saveTrained(model: Parameters<typeof save>[0], cl: TrainCommandLine, onProgress: ProgressCallback | undefined): Promise<SaveReport> {
  const quantize = cl.quantize ?? SAVE_DEFAULTS.quantize;
  const backbone = cl.headOnly ? 'reference' : 'embed';
  if (quantize === 'float32' || cl.headOnly) return save(model, cl.out, { quantize, backbone });
  const [h, w] = model.inputShape;
  const folder = await imageFolder(resolve(cl.dir), { size: [h, w], seed: cl.seed, validationSplit: TRANSFER_LEARN_DEFAULTS.validationSplit, fit: model.resizeFit, onProgress, verbose: false });
  return save(model, cl.out, { quantize, backbone, verify: folder.validation, maxAccuracyDrop: cl.maxAccuracyDrop });
}

/** Writes the training report (its heatmaps from `explain` on the top losses' files). */
async function writeTrainReport(path: string, result: Awaited<ReturnType<typeof transferLearn>>, cl: TrainCommandLine, note: (m: string) => void): Promise<{ path: string; bytes: number }> {
  const started = Date.now();
  const written = await writeCliReport(path, {
    title: `${basename(resolve(cl.dir))}: ${result.classes.join(' / ')}`,
    subtitle: `tfjs-transfer train ${cl.dir}: ${cl.source}, evaluated on the ${result.evaluation.count} validation images; saved to ${cl.out}`,
    examine: result.report,
    history: result.history,
    fineTuneHistory: result.fineTuneHistory,
    evaluation: result.evaluation,
    card: result.model.card,
    model: result.model.backbone.featureShape.length === 3 ? result.model : undefined,
  });
  note(`tfjs-transfer: wrote the report ${written.path} (${written.bytes} bytes) in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return written;
}

/** The `train` command. */
export const trainCommand: Command = defineCommand({
  name: 'train',
  summary: 'train a classifier on a folder of class subfolders, and save it',
  help: HELP,
  options: OPTIONS,
  async run(v, positionals, io) {
    const cl = readCommandLine(v, positionals);
    await checkOutFolder(cl.out);
    const report = await reportPath('train', v, resolve(cl.out, 'report.html'));
    const ctx = await startRun(io, { backend: v.backend, quiet: v.quiet, command: 'train' });
    const root = await requireFolder(cl.dir, 'the training folder');
    const shape = await checkDataFolder(root, cl.dir);
    const backbone = await loadTrainingBackbone(cl.source, { inputSize: cl.size, onProgress: ctx.progress }, TRANSFER_LEARN_DEFAULTS.mobileNetV2InputSize);
    let args: TransferLearnArgs;
    let settings: TrainSettings;
    try {
      const trainableFrom = cl.fineTune ? checkFineTuneFrom(backbone, cl.fineTuneFrom) : undefined;
      // Every flag not given is passed as undefined: transferLearn's default.
      args = {
        data: root,
        backbone,
        epochs: cl.epochs,
        learningRate: cl.learningRate,
        seed: cl.seed,
        fit: cl.fit,
        fineTune: cl.fineTune ? { trainableFrom, epochs: cl.fineTuneEpochs } : false,
        onProgress: ctx.progress,
        verbose: !v.quiet,
      };
      const resolved = resolveTransferLearnArgs(args, backbone.layers.map((l) => l.name));
      settings = trainSettings({ source: cl.source, backbone, resolved, data: shape, seed: cl.seed, seedRandom: cl.seedRandom, out: cl.out });
    } catch (e) {
      backbone.dispose();
      throw e;
    }
    ctx.note(`tfjs-transfer: training on ${root}`);
    ctx.note(formatSettings(settings));
    const started = Date.now();
    const result = await transferLearn(args);
    try {
      const saved = await saveTrained(result.model, cl, ctx.progress);
      const written = report === undefined ? undefined : await writeTrainReport(report, result, cl, ctx.note);
      const seconds = (Date.now() - started) / 1000;
      if (v.json) {
        line(
          io.out,
          JSON.stringify({
            accuracy: result.evaluation.accuracy,
            model: cl.out,
            classes: result.classes,
            backend: ctx.backend,
            backbone: cl.source,
            settings,
            initial: result.initial,
            evaluation: result.evaluation,
            history: result.history,
            fineTuneHistory: result.fineTuneHistory,
            saved: { artefact: saved.artefact, verification: saved.verification },
            report: written?.path ?? null,
            seconds,
          }),
        );
      } else {
        line(io.out, formatEvaluation(result.evaluation, 'validation'));
        const v = saved.verification;
        const check = v ? `; accuracy on ${v.images} validation images ${(100 * v.accuracyBefore).toFixed(2)}% -> ${(100 * v.accuracyAfter).toFixed(2)}%` : '';
        const what = `${saved.artefact.backbone === 'reference' ? 'head only' : 'whole model'}, ${saved.artefact.quantization}, ${saved.artefact.weightBytes} bytes of weights${check}`;
        line(io.out, `saved to ${cl.out} (${what}) (${seconds.toFixed(1)}s)`);
        if (written) line(io.out, `report: ${written.path} (${written.bytes} bytes)`);
      }
    } finally {
      result.model.dispose();
    }
    return EXIT.OK;
  },
});
