/**
 * `transferLearn`: the five steps in one call.
 * @module
 */
import { loadTrainingBackbone, type BackboneSource, type LoadBackboneArgs } from './backbone/load';
import { env, log } from './env';
import type { CheckpointArgs } from './train/checkpoint';
import { RESIZE_FITS, type ResizeFit } from './data/resize';
import { withDefaults, type Resolved } from './util/args';
import { TransferError, check } from './errors';
import { calibrate, evaluate, type Evaluation } from './evaluate';
import type { UnknownDetectorArgs } from './unknown-detector';
import { examine, type ExamineReport } from './examine/examine';
import { freeze } from './freeze';
import { attachHead, type AttachHeadArgs } from './head';
import { fit, FIT_DEFAULTS, type EarlyStoppingArgs, type FitArgs, type FitHistory } from './train/fit';
import type { Calibration, TransferModel } from './transfer-model';
import type { LabelledData } from './types';
import { isImageDataset, isTensorData } from './train/source';
import { fromTensors, type Dataset } from './data/dataset';
import { splitDataset } from './data/split';

/**
 * Fine-tuning after the head is trained: unfreeze the backbone's top and train on at a lower learning rate.
 * @category All five steps
 */
export interface FineTuneArgs {
  /**
   * First backbone layer to unfreeze, by name or index. For MobileNetV2 `"block_11_expand"`, the first layer of
   * `block_11` (Keras' tutorial unfreezes from layer 100 of 155, inside `block_11`); for other backbones the top
   * third of the layers.
   *
   * Cost: only the unfrozen part runs per epoch (the activations entering it are cached), but it runs forward and
   * backward. On 2 CPU cores with the wasm backend, 2000 images at 224 px take about 35 s per epoch from
   * `"block_16_expand"` and roughly 4 times that from `"block_11_expand"`; `"block_16_expand"` for 2 epochs already
   * took cats vs dogs from 0.977 to 0.984 (docs/accuracy.md).
   * @defaultValue `"block_11_expand"` (MobileNetV2), else the top third
   */
  trainableFrom?: string | number;
  /** Epochs of fine-tuning. @defaultValue {@link FINE_TUNE_DEFAULTS}.epochs (10) */
  epochs?: number;
  /** Learning rate. @defaultValue the head's learning rate / {@link FINE_TUNE_DEFAULTS}.learningRateDivisor (10) */
  learningRate?: number;
  /**
   * Checkpoint of the fine-tuning phase (its run differs from the head's, so it cannot share its checkpoint). When
   * `checkpoint.directory` is a folder path, fine-tuning checkpoints in its `fine-tune` subfolder unless this is given.
   * @defaultValue the `fine-tune` subfolder of `checkpoint.directory` (a path); none for a `CheckpointStore`
   */
  checkpoint?: CheckpointArgs;
}

/**
 * Options of {@link transferLearn}. An option given as `undefined` or `null` takes its default (the command line
 * passes `undefined` for every flag not given).
 * @category All five steps
 */
export interface TransferLearnArgs {
  /**
   * Training data: `{ xs, ys }` tensors, an `ImageDataset`, `{ train, validation }`, or (Node, importing
   * `tfjs-transfer/node`) the path of an image folder (`dir/<class>/*` or `dir/train|validation/<class>/*`).
   */
  data:
    | LabelledData
    | string
    | {
        /** The training images. */
        train: LabelledData;
        /** The validation images. Default: a `validationSplit` of `train`. */
        validation?: LabelledData;
      };
  /** Validation data. @defaultValue the folder's `validation` split, else a `validationSplit` of the data */
  validationData?: LabelledData;
  /**
   * Share of each class held out for validation when there is no validation data.
   * @defaultValue {@link TRANSFER_LEARN_DEFAULTS}.validationSplit (0.2)
   */
  validationSplit?: number;
  /**
   * How the photos of a folder (`data` given as a path) are fitted to the model's input when their aspect ratio
   * differs: `centerCrop` scales them to cover it and cuts the overflow (measured better across the data sets,
   * `docs/accuracy.md`: with `npm run bench:trust`, flowers 0.894 against 0.890 squashed, cats and dogs
   * photographed elsewhere 0.977 against 0.972; square photos unchanged), `squash` stretches them (Keras' default), `pad` letterboxes. The model records it
   * (`model.resizeFit`) and `predict` fits new photos the same way. A dataset you build yourself keeps its own `fit`.
   * @defaultValue {@link TRANSFER_LEARN_DEFAULTS}.fit (`'centerCrop'`)
   */
  fit?: ResizeFit;
  /** The backbone: anything {@link loadBackbone} takes. @defaultValue {@link TRANSFER_LEARN_DEFAULTS}.backbone (`"mobilenet_v2_1.0_224"`) */
  backbone?: BackboneSource;
  /**
   * Options for {@link loadBackbone} (feature layer, input size, preprocessing).
   * @defaultValue none; a MobileNetV2 layers model that declares 224 (the default backbone) then runs at
   * {@link TRANSFER_LEARN_DEFAULTS}.mobileNetV2InputSize (256), any other backbone at its own size
   */
  backboneOptions?: LoadBackboneArgs;
  /** The head: everything {@link attachHead} takes except `classes`. @defaultValue average pooling, dropout 0.2 */
  head?: Omit<AttachHeadArgs, 'classes'>;
  /** Class names, when `data` is tensors with numeric labels. @defaultValue from the data */
  classes?: readonly string[];
  /** Fine-tune the backbone's top after training the head: `true` for the defaults of {@link FineTuneArgs}. @defaultValue false */
  fineTune?: boolean | FineTuneArgs;
  /** Run and print the examine report first. @defaultValue true */
  examine?: boolean;
  /**
   * Calibrate the probabilities on the validation data after training (and fine-tuning), before the final
   * evaluation: temperature scaling inside the weights, with the calibration error before and after (5-fold
   * cross-validated) in the log and in `result.calibration` (see {@link calibrate}). Without validation data
   * nothing is calibrated.
   * @defaultValue {@link TRANSFER_LEARN_DEFAULTS}.calibrate (true)
   */
  calibrate?: boolean;
  /**
   * Fit the unknown detector (see `FitArgs.unknown`): after training, and again after fine-tuning (its features
   * change), from the training images' pooled features, its threshold chosen on the validation data to accept
   * `targetAcceptance` of it. {@link predict} then marks images of none of the classes `unknown`. With the default
   * backbone the frozen model's detector uses its ImageNet classes (`pretrainedClasses`); a fine-tuned model's uses
   * prototypes, since its features no longer match the ImageNet top.
   * @defaultValue true (with {@link UNKNOWN_DETECTOR_DEFAULTS}), when there is validation data
   */
  unknown?: boolean | UnknownDetectorArgs;
  /** Epochs of head training (early stopping usually ends sooner). @defaultValue {@link TRANSFER_LEARN_DEFAULTS}.epochs (20) */
  epochs?: number;
  /** Images per gradient step. @defaultValue 32 (as `fit`) */
  batchSize?: number;
  /** Learning rate of the head's optimizer. @defaultValue {@link TRANSFER_LEARN_DEFAULTS}.learningRate (1e-3, Adam) */
  learningRate?: number;
  /** `'adam'`, `'sgd'`, `'rmsprop'` or a `tf.Optimizer` for the head (fine-tuning uses a new Adam). @defaultValue `'adam'` */
  optimizer?: FitArgs['optimizer'];
  /** Early stopping of head training. @defaultValue {@link TRANSFER_LEARN_DEFAULTS}.earlyStopping (valLoss, patience 5, best weights restored) when there is validation data, else off */
  earlyStopping?: FitArgs['earlyStopping'];
  /** Weight of each class in the loss, by index or name. @defaultValue all 1 */
  classWeight?: FitArgs['classWeight'];
  /** Seed of the validation split, the head's initial weights, shuffling, dropout and augmentation. @defaultValue random */
  seed?: number;
  /** Shuffle the training data every epoch. @defaultValue true */
  shuffle?: boolean;
  /** Random augmentation of the training images (see `FitArgs.augment`). @defaultValue false */
  augment?: FitArgs['augment'];
  /** Callbacks of both training phases (see {@link FitCallback}). @defaultValue none */
  callbacks?: FitArgs['callbacks'];
  /** Stops loading, training or evaluation; `transferLearn` then rejects with an `AbortError`. @defaultValue none */
  signal?: AbortSignal;
  /** Progress of extraction and training. @defaultValue none */
  onProgress?: FitArgs['onProgress'];
  /** Print the report, one line per epoch and the evaluation. @defaultValue `env.verbose` */
  verbose?: boolean;
  /** Persistent activation cache (see `FitArgs.cache`). @defaultValue none */
  cache?: FitArgs['cache'];
  /** Images per forward pass of the frozen backbone while extracting. @defaultValue `batchSize` */
  extractBatchSize?: number;
  /** Checkpoint of head training (see `FitArgs.checkpoint`); fine-tuning gets its own (see {@link FineTuneArgs.checkpoint}). @defaultValue none */
  checkpoint?: CheckpointArgs;
  /** See `FitArgs.gradientNormWarning`. @defaultValue 1000 */
  gradientNormWarning?: number;
  /** See `FitArgs.yieldEvery`. @defaultValue `'auto'` */
  yieldEvery?: FitArgs['yieldEvery'];
}

/** What {@link transferLearn} returns. @category All five steps */
export interface TransferLearnResult {
  /** The trained model (call `dispose()` when done). */
  model: TransferModel;
  /** Class names. */
  classes: string[];
  /** Training history of the head. */
  history: FitHistory;
  /** Training history of fine-tuning, if it ran. */
  fineTuneHistory?: FitHistory;
  /** Validation loss and accuracy before any training (the untrained head). */
  initial?: {
    /** Validation loss of the untrained head. */
    loss: number;
    /** Validation accuracy of the untrained head (about the share of the largest class). */
    accuracy: number;
  };
  /** Evaluation on the validation data (or the training data if there is none), after calibration. */
  evaluation: Evaluation;
  /** How the probabilities were calibrated (also in `model.calibration`); absent without validation data or with `calibrate: false`. */
  calibration?: Calibration;
  /** What `examine` found, unless `examine: false`. */
  report?: ExamineReport;
}

/**
 * Defaults of {@link transferLearn} (and of `tfjs-transfer train`), chosen by measurement on cats vs dogs with cached
 * MobileNetV2 features, 3 seeds each (docs/accuracy.md): Adam 1e-3 for up to 20 epochs, early stopping on
 * validation loss (patience 5) with the best weights restored, 20 % held out when there is no validation folder.
 *
 * The Keras tutorial's Adam 1e-4 x 10 under-trains once epochs are cheap: 0.969 validation accuracy (0.975 on unseen
 * full-size photos) against 0.978 (0.986) for these defaults. Every converged setting measured (1e-4 x 50, 1e-3 x
 * 10/20/50, 3e-3) lands within 1-3 images of 1000 of each other; 1e-3 is the rate that converges in 10-20 epochs
 * without overshooting, and early stopping keeps the lowest-validation-loss epoch on small or noisy data sets.
 * @category All five steps
 */
export const TRANSFER_LEARN_DEFAULTS = Object.freeze({
  /** The backbone: MobileNetV2 1.0 at 224, ImageNet weights, cut at `out_relu`. */
  backbone: 'mobilenet_v2_1.0_224' as BackboneSource,
  /**
   * The input size a MobileNetV2 layers backbone declaring 224 (the default backbone, or a path to a copy of it)
   * runs at when `backboneOptions.inputSize` is not given. The ImageNet weights were trained on random crops, in
   * which objects look larger than in a whole photo at 224; at 256 they match better ("FixRes"). Measured with
   * `npm run bench:trust` (seed 1, `docs/accuracy.md`): cats vs dogs 0.984 / 0.990 / 0.990 (validation, full-size,
   * other collections) against 0.980 / 0.986 / 0.977 at 224; flowers 0.914 against 0.894 (0.942 against 0.924
   * fine-tuned), for about 1.3x the backbone's compute. `loadBackbone` itself keeps the declared size.
   */
  mobileNetV2InputSize: 256 as number,
  /** Epochs of head training (early stopping usually ends sooner). */
  epochs: 20 as number,
  /** Adam's learning rate for the head. */
  learningRate: 1e-3 as number,
  /** Share of each class held out for validation when the data has no validation split. */
  validationSplit: 0.2 as number,
  /** How a folder's photos of another aspect ratio are fitted to the input (and, recorded in the model, new photos by `predict`). */
  fit: 'centerCrop' as ResizeFit,
  /** Run and print the examine report first. */
  examine: true as boolean,
  /** Calibrate the probabilities on the validation data (temperature scaling), when there is validation data. */
  calibrate: true as boolean,
  /** Early stopping, when there is validation data. */
  earlyStopping: Object.freeze<EarlyStoppingArgs>({
    /** The metric watched. */
    monitor: 'valLoss',
    /** Epochs without improvement before stopping. */
    patience: 5,
    /** Whether the best epoch's weights are restored at the end. */
    restoreBestWeights: true,
  }),
});

/** Defaults of {@link FineTuneArgs}. @category All five steps */
export const FINE_TUNE_DEFAULTS = Object.freeze({
  /** Epochs of fine-tuning. */
  epochs: 10 as number,
  /** The fine-tuning learning rate is the head's divided by this. */
  learningRateDivisor: 10 as number,
});

function classesOf(data: LabelledData, given: readonly string[] | undefined): string[] {
  if (given) return [...given];
  if (isImageDataset(data)) return [...data.classes];
  if (isTensorData(data)) {
    const ys = data.ys;
    if (Array.isArray(ys) && ys.every((y) => typeof y === 'string')) return [...new Set(ys as string[])].sort();
    throw new TransferError('INVALID_ARGUMENT', 'transferLearn: labels are numeric; pass classes: [...names in index order].');
  }
  throw new TransferError('INVALID_ARGUMENT', 'transferLearn: data must be { xs, ys }, an ImageDataset, { train, validation } or a folder path.');
}

async function resolveData(
  options: ResolvedTransferLearnArgs,
  inputSize: readonly [number, number],
): Promise<{ train: LabelledData; validation?: LabelledData; examinable: Parameters<typeof examine>[0] }> {
  const { data } = options;
  if (typeof data === 'string') {
    const open = env.fileSystem?.openImageFolder;
    if (!open) {
      throw new TransferError('NODE_ONLY', `transferLearn: data "${data}" is a folder path; reading folders needs Node: import from 'tfjs-transfer/node'.`);
    }
    const folder = await open(data, {
      size: inputSize,
      seed: options.seed ?? 0,
      validationSplit: options.validationData ? 0 : options.validationSplit,
      fit: options.fit,
    });
    return { train: folder.train, validation: options.validationData ?? folder.validation, examinable: folder };
  }
  if (typeof data === 'object' && data !== null && 'train' in data && !isImageDataset(data) && !isTensorData(data)) {
    const split = data as { train: LabelledData; validation?: LabelledData };
    const validation = options.validationData ?? split.validation;
    return { train: split.train, validation, examinable: { train: split.train, validation } as Parameters<typeof examine>[0] };
  }
  const train = data as LabelledData;
  if (options.validationData) {
    return { train, validation: options.validationData, examinable: { train, validation: options.validationData } as Parameters<typeof examine>[0] };
  }
  // Hold out a seeded, stratified validation split, so the final evaluation is on images the model never saw.
  const fraction = options.validationSplit;
  if (fraction > 0) {
    const dataset: Dataset | undefined = isTensorData(train)
      ? fromTensors(train.xs, train.ys, { classes: classesOf(train, options.classes) })
      : isDataset(train)
        ? train
        : undefined;
    if (dataset) {
      const split = splitDataset(dataset, { validationSplit: fraction, seed: options.seed ?? 0 });
      return { train: split.train, validation: split.validation, examinable: { train: split.train, validation: split.validation } };
    }
  }
  return { train, validation: undefined, examinable: train as Parameters<typeof examine>[0] };
}

function isDataset(data: LabelledData): data is Dataset {
  return isImageDataset(data) && typeof (data as Dataset).subset === 'function';
}

function defaultTrainableFrom(names: readonly string[]): string | number {
  if (names.includes('block_11_expand')) return 'block_11_expand';
  return Math.floor((names.length * 2) / 3);
}

/** `fineTune` resolved against {@link FINE_TUNE_DEFAULTS}: the one rule `transferLearn` and the CLI's settings share. */
function resolveFineTune(fineTune: true | FineTuneArgs, headLearningRate: number, layerNames: readonly string[] | undefined) {
  const ft = withDefaults<FineTuneArgs, typeof FINE_TUNE_DEFAULTS>(fineTune === true ? {} : fineTune, FINE_TUNE_DEFAULTS);
  return {
    trainableFrom: ft.trainableFrom ?? (layerNames ? defaultTrainableFrom(layerNames) : undefined),
    epochs: ft.epochs,
    learningRate: ft.learningRate ?? headLearningRate / ft.learningRateDivisor,
    checkpoint: ft.checkpoint,
  };
}

/**
 * The training settings {@link transferLearn} uses for `args`, resolved against its defaults (skipping
 * `undefined` and `null`), as the command line prints them. Pure: loads and reads nothing. `earlyStopping` is
 * what is used when there is validation data; `layerNames` (the backbone's layers) resolves the default
 * fine-tuning layer, else it stays `undefined`.
 * @internal
 * @example
 * ```ts
 * resolveTransferLearnArgs({ epochs: undefined }).epochs; // 20
 * ```
 */
export function resolveTransferLearnArgs(args: Omit<TransferLearnArgs, 'data'>, layerNames?: readonly string[]) {
  const o = withDefaults(args, TRANSFER_LEARN_DEFAULTS);
  const ft = o.fineTune ? resolveFineTune(o.fineTune, o.learningRate, layerNames) : undefined;
  const earlyStopping = o.earlyStopping === TRANSFER_LEARN_DEFAULTS.earlyStopping ? { ...TRANSFER_LEARN_DEFAULTS.earlyStopping } : o.earlyStopping;
  return {
    epochs: o.epochs,
    batchSize: o.batchSize ?? FIT_DEFAULTS.batchSize,
    learningRate: o.learningRate,
    optimizer: o.optimizer == null ? String(FIT_DEFAULTS.optimizer) : typeof o.optimizer === 'string' ? o.optimizer : 'tf.Optimizer',
    validationSplit: o.validationSplit,
    fit: o.fit,
    earlyStopping,
    seed: o.seed,
    fineTune: ft
      ? { trainableFrom: ft.trainableFrom, epochs: ft.epochs, learningRate: ft.learningRate }
      : (false as const),
  };
}

/**
 * Runs the five steps in one call: examine the data (class counts, imbalance warning), build the pipeline, load
 * and freeze the backbone and attach a head, train (reporting the validation loss and accuracy before training,
 * as the Keras tutorial does), optionally fine-tune the backbone's top, calibrate the probabilities on the validation
 * data (temperature scaling, see {@link calibrate}), and evaluate.
 *
 * @category All five steps
 * @example
 * ```ts
 * import { transferLearn, save } from 'tfjs-transfer/node';
 * const { model, evaluation } = await transferLearn({ data: './photos' });   // dir/<class>/*.jpg
 * console.log(evaluation.accuracy);
 * await save(model, './my-model');
 * ```
 */
export async function transferLearn(args: TransferLearnArgs): Promise<TransferLearnResult> {
  check(args != null && typeof args === 'object' && args.data != null, 'transferLearn: options.data is required: { xs, ys }, a dataset, { train, validation } or (Node) a folder path.');
  const options = withDefaults(args, TRANSFER_LEARN_DEFAULTS);
  check(RESIZE_FITS.includes(options.fit), `transferLearn: fit must be one of ${RESIZE_FITS.join(', ')}, got ${JSON.stringify(options.fit)}.`);
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const verbose = options.verbose ?? env.verbose;
  const say = (m: string) => (verbose ? env.logger(m) : undefined);
  const backbone = await loadTrainingBackbone(options.backbone, { signal: options.signal, ...options.backboneOptions }, TRANSFER_LEARN_DEFAULTS.mobileNetV2InputSize);
  let model: TransferModel | undefined;
  try {
    const size = [backbone.inputShape[0], backbone.inputShape[1]] as const;
    const { train, validation, examinable } = await resolveData({ ...options, seed }, size);
    const report = options.examine ? examine(examinable, { verbose }) : undefined;
    const classes = classesOf(train, options.classes);
    model = attachHead(freeze(backbone), { ...options.head, classes, seed: options.head?.seed ?? seed });
    const fitArgs = headFitArgs(options, seed, validation);
    if (!validation) log('tfjs-transfer: no validation data; the evaluation below is on the training data and overstates accuracy.');
    const history = await fit(model, train, fitArgs);
    let last = history;
    let fineTuneHistory: FitHistory | undefined;
    if (options.fineTune) {
      const ft = resolveFineTune(options.fineTune, options.learningRate, model.backbone.layers.map((l) => l.name));
      history.validationActivations?.dispose(); // the boundary moves: they no longer apply
      freeze(model, { trainableFrom: ft.trainableFrom! });
      fineTuneHistory = await fit(model, train, {
        ...fitArgs,
        epochs: ft.epochs,
        learningRate: ft.learningRate,
        optimizer: undefined,
        checkpoint: fineTuneCheckpoint(options.checkpoint, ft.checkpoint, say),
      });
      last = fineTuneHistory;
    }
    const activations = last.validationActivations;
    let evaluation: Evaluation;
    let calibration: Calibration | undefined;
    try {
      if (options.calibrate && validation) {
        calibration = await calibrate(model, validation, { signal: options.signal, activations });
        say(`tfjs-transfer: calibrated on ${calibration.images} validation images: temperature ${calibration.temperature.toFixed(3)}, ECE ${calibration.eceBefore.toFixed(4)} before, ${calibration.eceAfter.toFixed(4)} after (${calibration.folds}-fold cross-validated)`);
      }
      evaluation = await evaluate(model, validation ?? train, { signal: options.signal, activations });
    } finally {
      activations?.dispose();
      delete history.validationActivations;
      if (fineTuneHistory) delete fineTuneHistory.validationActivations;
    }
    say(`tfjs-transfer: ${validation ? 'validation' : 'training'} accuracy ${evaluation.accuracy.toFixed(4)}, loss ${evaluation.loss.toFixed(4)}${evaluation.rocAuc !== undefined ? `, ROC AUC ${evaluation.rocAuc.toFixed(4)}` : ''}, ECE ${evaluation.ece.toFixed(4)}`);
    if (evaluation.unknown) say(`tfjs-transfer: the unknown detector accepts ${(evaluation.unknown.accepted * 100).toFixed(1)}% of these images (the threshold was chosen on them), accuracy on those ${evaluation.unknown.acceptedAccuracy?.toFixed(4) ?? '-'}`);
    return {
      model,
      classes,
      history,
      fineTuneHistory,
      initial: history.initial ? { loss: history.initial.valLoss, accuracy: history.initial.valAccuracy } : undefined,
      evaluation,
      calibration,
      report,
    };
  } catch (e) {
    if (model) model.dispose();
    else backbone.dispose();
    throw e;
  }
}

type ResolvedTransferLearnArgs = Resolved<TransferLearnArgs, typeof TRANSFER_LEARN_DEFAULTS>;

/** The options of the head's `fit`: this function's own defaults, the validation data resolved above. */
function headFitArgs(options: ResolvedTransferLearnArgs, seed: number, validation: LabelledData | undefined): FitArgs {
  return {
    epochs: options.epochs,
    batchSize: options.batchSize,
    learningRate: options.learningRate,
    optimizer: options.optimizer,
    earlyStopping: options.earlyStopping === TRANSFER_LEARN_DEFAULTS.earlyStopping ? (validation ? { ...TRANSFER_LEARN_DEFAULTS.earlyStopping } : false) : options.earlyStopping,
    classWeight: options.classWeight,
    seed,
    shuffle: options.shuffle,
    augment: options.augment,
    callbacks: options.callbacks,
    signal: options.signal,
    onProgress: options.onProgress,
    verbose: options.verbose,
    cache: options.cache,
    extractBatchSize: options.extractBatchSize,
    checkpoint: options.checkpoint,
    gradientNormWarning: options.gradientNormWarning,
    yieldEvery: options.yieldEvery,
    validationData: validation,
    keepValidationActivations: validation !== undefined,
    unknown: options.unknown,
  };
}

/**
 * The checkpoint of fine-tuning: the one given for it; else, for a folder, its `fine-tune` subfolder; else (a
 * store object, which cannot be divided) none, said in a log line.
 */
function fineTuneCheckpoint(head: CheckpointArgs | undefined, given: CheckpointArgs | undefined, say: (m: string) => void): CheckpointArgs | undefined {
  if (given) return given;
  if (!head) return undefined;
  if (typeof head.directory === 'string') return { ...head, directory: `${head.directory.replace(/[\\/]+$/, '')}/fine-tune` };
  say('tfjs-transfer: fine-tuning is not checkpointed: checkpoint.directory is a CheckpointStore; pass fineTune.checkpoint to checkpoint it too.');
  return undefined;
}
