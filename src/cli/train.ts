/**
 * `tfjs-transfer train <dir>`: the five steps on an image folder, then save.
 * @module
 */
import { basename, resolve } from 'node:path';
import { save } from '../io/model-io';
import { transferLearn, TRANSFER_LEARN_DEFAULTS } from '../transfer-learn';
import { COMMON_HELP, COMMON_OPTIONS, EXIT, defineCommand, EXIT_CODES_HELP, UsageError, intOption, line, numberOption, oneFolder, type Command } from './common';
import { formatEvaluation } from './format';
import { requireFolder, startRun } from './run-context';
import { MOBILENET_V2_ALPHAS } from '../backbone/catalog';

const HELP = `Usage: tfjs-transfer train <dir> [options]

Trains an image classifier on <dir> by transfer learning: examines the data, extracts features with a frozen
pretrained backbone (cached, so each epoch trains only the head), trains a head (average pooling, dropout 0.2,
sigmoid or softmax), optionally fine-tunes the backbone's top, evaluates, and saves the model.

<dir> holds one subfolder per class (dir/cats/*.jpg, dir/dogs/*.jpg), or dir/train/<class> and
dir/validation/<class>. Without a validation folder, ${TRANSFER_LEARN_DEFAULTS.validationSplit * 100}% of each class is held out.

Options:
  --backbone <src>         catalog name (mobilenet_v2_1.0_224, mobilenet_v2_0.35_224, ...), a path to a model.json
                           or its folder, or a URL (default: ${TRANSFER_LEARN_DEFAULTS.backbone})
  --alpha <a>              MobileNetV2 width when --backbone is not given: ${MOBILENET_V2_ALPHAS.join(', ')}
  --size <px>              input size in pixels (square); MobileNetV2 layers models run at any size, e.g. 96..224
  --epochs <n>             epochs of head training (default ${TRANSFER_LEARN_DEFAULTS.epochs}, early stopping on validation
                           loss, patience ${TRANSFER_LEARN_DEFAULTS.earlyStopping.patience}, best weights restored)
  --learning-rate <lr>     Adam learning rate of the head (default ${TRANSFER_LEARN_DEFAULTS.learningRate})
  --fine-tune              then unfreeze the backbone's top and train on at learning rate / 10
  --fine-tune-from <layer> first layer to unfreeze (default block_11_expand for MobileNetV2)
  --fine-tune-epochs <n>   epochs of fine-tuning (default 10)
  --seed <n>               seed of the split, shuffling, dropout and initialisation (default: random)
  --out <dir>              where to save the model (default: ./<dir name>-model)
  --json                   print one JSON document on stdout (the evaluation, history and paths); logs go to stderr
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
  out: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
} as const;

/** The `train` command. */
export const trainCommand: Command = defineCommand({
  name: 'train',
  summary: 'train a classifier on a folder of class subfolders, and save it',
  help: HELP,
  options: OPTIONS,
  async run(v, positionals, io) {
    const dir = oneFolder('train', positionals);
    let alpha: number | undefined;
    if (v.alpha !== undefined) {
      alpha = Number(v.alpha);
      if (!(MOBILENET_V2_ALPHAS as readonly number[]).includes(alpha)) throw new UsageError(`--alpha must be one of ${MOBILENET_V2_ALPHAS.join(', ')}, got "${v.alpha}".`, 'train');
      if (v.backbone !== undefined) throw new UsageError('give --alpha or --backbone, not both (--alpha picks a catalog MobileNetV2).', 'train');
    }
    const size = intOption('train', 'size', v.size, 32, 1024);
    const epochs = intOption('train', 'epochs', v.epochs, 1, 10000);
    const learningRate = numberOption('train', 'learning-rate', v['learning-rate'], 0, 10);
    const fineTuneEpochs = intOption('train', 'fine-tune-epochs', v['fine-tune-epochs'], 1, 10000);
    const seed = intOption('train', 'seed', v.seed, 0, 2 ** 31 - 1);
    if (!v['fine-tune'] && (v['fine-tune-from'] !== undefined || fineTuneEpochs !== undefined)) {
      throw new UsageError('--fine-tune-from and --fine-tune-epochs need --fine-tune.', 'train');
    }
    const backbone = v.backbone ?? (alpha !== undefined ? `mobilenet_v2_${alpha === 1 ? '1.0' : alpha}_224` : TRANSFER_LEARN_DEFAULTS.backbone);
    const out = resolve(v.out ?? `${basename(resolve(dir))}-model`);

    const ctx = await startRun(io, { backend: v.backend, quiet: v.quiet, command: 'train' });
    const root = await requireFolder(dir, 'the training folder');
    ctx.note(`tfjs-transfer: training on ${root} with ${backbone}${size ? ` at ${size}px` : ''}`);
    const started = Date.now();
    const result = await transferLearn({
      data: root,
      backbone,
      backboneOptions: size ? { inputSize: size } : undefined,
      epochs,
      learningRate,
      seed,
      fineTune: v['fine-tune'] ? { trainableFrom: v['fine-tune-from'], epochs: fineTuneEpochs } : false,
      onProgress: ctx.progress,
      verbose: !v.quiet,
    });
    try {
      await save(result.model, out);
      const seconds = (Date.now() - started) / 1000;
      if (v.json) {
        line(
          io.out,
          JSON.stringify({
            accuracy: result.evaluation.accuracy,
            model: out,
            classes: result.classes,
            backend: ctx.backend,
            backbone,
            initial: result.initial,
            evaluation: result.evaluation,
            history: result.history,
            fineTuneHistory: result.fineTuneHistory,
            seconds,
          }),
        );
      } else {
        line(io.out, formatEvaluation(result.evaluation, 'validation'));
        line(io.out, `saved to ${out} (${seconds.toFixed(1)}s)`);
      }
    } finally {
      result.model.dispose();
    }
    return EXIT.OK;
  },
});
