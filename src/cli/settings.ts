/**
 * The effective settings of `train`: what it trains with, printed on stderr when it starts and put in `--json`.
 * @module
 */
import type { Backbone } from '../backbone/backbone';
import type { EarlyStoppingArgs } from '../train/fit';
import type { DataFolderShape } from './train-checks';

/** The effective settings of one `train` run (the `settings` of its `--json` document). */
export interface TrainSettings {
  /** What `--backbone` (or the default) named: catalog name, path or URL. */
  backbone: string;
  /** Input size in pixels, `[height, width]`. */
  inputSize: [number, number];
  /** Epochs of head training (at most; early stopping may end sooner). */
  epochs: number;
  /** Learning rate of the head. */
  learningRate: number;
  /** Optimizer of the head. */
  optimizer: string;
  /** Images per gradient step. */
  batchSize: number;
  /** Early stopping of head training (and fine-tuning), or `false`. */
  earlyStopping: EarlyStoppingArgs | false;
  /** The validation data: the data folder's own validation folder, or a held-out share of each class. */
  validation: { folder: string } | { split: number };
  /** How photos of another aspect ratio are fitted to the input. */
  fit: string;
  /** The seed used (split, shuffling, dropout, initialisation). */
  seed: number;
  /** Whether the seed was drawn at random (no `--seed`). */
  seedRandom: boolean;
  /** Fine-tuning after the head, or `false`. */
  fineTune: false | { trainableFrom: string | number; epochs: number; learningRate: number };
  /** Where the model is saved. */
  out: string;
}

/** What {@link trainSettings} combines. */
export interface TrainSettingsInput {
  source: string;
  backbone: Backbone;
  resolved: {
    epochs: number;
    learningRate: number;
    optimizer: string;
    batchSize: number;
    validationSplit: number;
    fit: string;
    earlyStopping: boolean | EarlyStoppingArgs;
    fineTune: false | { trainableFrom?: string | number; epochs: number; learningRate: number };
  };
  data: DataFolderShape;
  seed: number;
  seedRandom: boolean;
  out: string;
}

/** The settings of a run, from the resolved `transferLearn` options, the loaded backbone and the data folder. */
export function trainSettings(i: TrainSettingsInput): TrainSettings {
  const { resolved: r } = i;
  const es = r.earlyStopping === true ? { monitor: 'valLoss' as const } : r.earlyStopping;
  return {
    backbone: i.source,
    inputSize: [i.backbone.inputShape[0], i.backbone.inputShape[1]],
    epochs: r.epochs,
    learningRate: r.learningRate,
    optimizer: r.optimizer,
    batchSize: r.batchSize,
    earlyStopping: es === false ? false : { ...es },
    validation: i.data.layout === 'split' ? { folder: i.data.validationFolder ?? 'validation' } : { split: r.validationSplit },
    fit: r.fit,
    seed: i.seed,
    seedRandom: i.seedRandom,
    fineTune: r.fineTune ? { trainableFrom: r.fineTune.trainableFrom ?? 'top third', epochs: r.fineTune.epochs, learningRate: r.fineTune.learningRate } : false,
    out: i.out,
  };
}

/** The settings as one readable block (for stderr). */
export function formatSettings(s: TrainSettings): string {
  const es = s.earlyStopping;
  const rows: [string, string][] = [
    ['backbone', s.backbone],
    ['input size', `${s.inputSize[0]}x${s.inputSize[1]}`],
    ['epochs', `${s.epochs}`],
    ['learning rate', `${s.learningRate} (${s.optimizer})`],
    ['batch size', `${s.batchSize}`],
    [
      'early stopping',
      es === false
        ? 'off'
        : `on ${es.monitor ?? 'valLoss'}, patience ${es.patience ?? 'default'}${es.restoreBestWeights === false ? '' : ', best weights restored'}`,
    ],
    ['validation', 'folder' in s.validation ? `the "${s.validation.folder}" folder` : `${s.validation.split * 100}% of each class held out`],
    ['resize', `${s.fit} (photos of another aspect ratio)`],
    ['seed', `${s.seed}${s.seedRandom ? ' (random; pass --seed to repeat the run)' : ''}`],
    ['fine-tuning', s.fineTune ? `from ${s.fineTune.trainableFrom}, ${s.fineTune.epochs} epochs at ${s.fineTune.learningRate}` : 'off'],
    ['output', s.out],
  ];
  return ['tfjs-transfer: settings', ...rows.map(([k, v]) => `  ${k.padEnd(15)} ${v}`)].join('\n');
}
