/**
 * `TransferModel`: a backbone with a classification head, the result of `attachHead` and `loadModel`.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { WeightQuantization } from './artifacts/quantize';
import type { Backbone } from './backbone/backbone';
import type { Preprocessing } from './types';
import { RESIZE_FITS, type ResizeFit } from './data/resize';
import { TransferError } from './errors';
import type { UnknownDetector, UnknownDetectorSummary } from './unknown-detector';
import { disposeLayers } from './util/dispose';
import { takeRows } from './util/rows';

/** How the head was built (stored with a saved model). @category Step 3: Compose */
export interface HeadSpec {
  /** Pooling of the backbone's spatial features. */
  pooling: 'avg' | 'max' | 'flatten' | 'none';
  /** Dropout rate before each dense layer. */
  dropout: number;
  /** Units of each hidden dense layer. */
  hiddenUnits: number[];
  /** Activation of the hidden layers. */
  hiddenActivation: string;
  /** `sigmoid` (two classes, one unit) or `softmax`. */
  outputActivation: 'sigmoid' | 'softmax';
}

/**
 * How the model's probabilities were calibrated (by {@link calibrate}, which `transferLearn` runs on its validation
 * data): stored with a saved model. The temperature is already applied, inside the weights (the last Dense layer's
 * kernel and bias are divided by it), so this record is informational.
 * @category Step 5: Evaluate
 */
export interface Calibration {
  /** Temperature scaling: logits are divided by one fitted temperature. */
  method: 'temperature';
  /** The temperature the last Dense layer's kernel and bias were divided by (above 1 softens, below 1 sharpens). */
  temperature: number;
  /** Expected calibration error (15 bins) of the calibration images before calibrating. */
  eceBefore: number;
  /**
   * Expected calibration error after calibrating, measured honestly: by `folds`-fold cross-validation over the
   * calibration images (a temperature fitted on the other folds predicts each held-out fold).
   */
  eceAfter: number;
  /** Number of calibration images. */
  images: number;
  /** Folds of the cross-validation behind `eceAfter`. */
  folds: number;
}

/** A well-formed copy of a calibration record read from a file, or `undefined` when it is absent or malformed. @internal */
export function calibrationRecord(value: unknown): Calibration | undefined {
  if (value == null || typeof value !== 'object') return undefined;
  const r = value as Record<string, unknown>;
  const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (r.method !== 'temperature' || !num(r.temperature) || r.temperature <= 0 || !num(r.eceBefore) || !num(r.eceAfter) || !num(r.images) || !num(r.folds)) return undefined;
  return { method: 'temperature', temperature: r.temperature, eceBefore: r.eceBefore, eceAfter: r.eceAfter, images: r.images, folds: r.folds };
}

/**
 * What one {@link fit} of the model did, kept on the model ({@link TransferModel.trainingRuns}) and saved in its
 * model card. `transferLearn` with fine-tuning records two runs: the head, then the fine-tuning.
 * @category Step 4: Train
 */
export interface TrainingRun {
  /** Training images per class name (each image once, whatever the augmentation). */
  imagesPerClass: Record<string, number>;
  /** Validation images (0 without validation data). */
  validationImages: number;
  /** Epochs run (resumed ones included). */
  epochs: number;
  /** Index of the best epoch (whose weights were kept with early stopping's `restoreBestWeights`). */
  bestEpoch: number;
  /** Whether early stopping ended the run before its last epoch. */
  stoppedEarly: boolean;
  /** Validation accuracy of the best epoch, when there was validation data. */
  valAccuracy?: number;
  /** Layers whose weights were trained. */
  trainedLayers: string[];
  /** Number of trained parameters. */
  trainedParameters: number;
  /** The settings of the run (as resolved by `fit`). */
  settings: {
    /** `adam`, `sgd`, `rmsprop`, or the class name of an optimizer passed in. */
    optimizer: string;
    /** Learning rate (`null` with an optimizer passed in). */
    learningRate: number | null;
    /** Images per gradient step. */
    batchSize: number;
    /** Seed of the split, shuffling, dropout and augmentation. */
    seed: number;
    /** Fraction held out for validation when no validation data was given. */
    validationSplit: number;
    /** Augmentation, as given (`null` without). */
    augment: unknown;
    /** Early stopping's patience, or `null` without early stopping. */
    earlyStoppingPatience: number | null;
  };
  /** When the run ended (ISO 8601). */
  finishedAt: string;
  /**
   * The per-epoch curves of the run (what the report's training chart draws), one value per epoch; the validation
   * ones empty without validation data. Absent in cards written before 0.2.0 recorded them.
   */
  curves?: {
    /** Training loss per epoch. */
    loss: number[];
    /** Training accuracy per epoch. */
    accuracy: number[];
    /** Validation loss per epoch. */
    valLoss: number[];
    /** Validation accuracy per epoch. */
    valAccuracy: number[];
  };
}

/**
 * A summary of the model's last {@link evaluate} (set by `evaluate`, cleared by `fit`), saved in its model card.
 * @category Step 5: Evaluate
 */
export interface EvaluationRecord {
  /** Fraction of images classified correctly. */
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  /** Images evaluated. */
  count: number;
  /** Unweighted mean F1 over classes. */
  macroF1: number;
  /** Expected calibration error (15 bins). */
  ece: number;
  /** Area under the ROC curve (see `Evaluation.rocAuc`), when defined. */
  rocAuc?: number;
  /** Precision, recall, F1 and support of each class. */
  perClass: {
    /** Class name. */
    name: string;
    /** Of the images predicted as this class, the fraction that are. */
    precision: number;
    /** Of the images of this class, the fraction predicted as it. */
    recall: number;
    /** Harmonic mean of precision and recall. */
    f1: number;
    /** Images of this class. */
    support: number;
  }[];
  /** When the evaluation ran (ISO 8601). */
  evaluatedAt: string;
}

/**
 * The accuracy check of a quantized save (`save(model, dest, { quantize, verify })`): the model evaluated on the
 * given labelled images before quantizing and as the quantized file loads.
 * @category Save and load
 */
export interface QuantizationCheck {
  /** Images evaluated. */
  images: number;
  /** Accuracy of the float32 model. */
  accuracyBefore: number;
  /** Accuracy of the model as loaded from the quantized artefact. */
  accuracyAfter: number;
  /** `accuracyBefore - accuracyAfter` (negative when quantizing helped). */
  drop: number;
  /** The bound the save was held to (`maxAccuracyDrop`). */
  maxAccuracyDrop: number;
  /**
   * Share of the images the model's unknown detector accepts as one of the classes, before quantizing (prototypes
   * as fitted) and as the quantized file loads (its prototypes stored in fewer bits, see {@link SaveArgs.quantize});
   * absent when the artefact has no detector.
   */
  unknownAcceptedBefore?: number;
  /** See {@link QuantizationCheck.unknownAcceptedBefore}. */
  unknownAcceptedAfter?: number;
}

/**
 * How a saved artefact stores its weights and its backbone (the `artefact` part of a {@link ModelCard}).
 * @category Save and load
 */
export interface ArtefactRecord {
  /** The library that wrote it and its version (`"unknown"` for files older than model cards). */
  library: {
    /** `"tfjs-transfer"`. */
    name: string;
    /** Its version, e.g. `"0.2.0"`. */
    version: string;
  };
  /** When it was written (ISO 8601); `undefined` for files older than model cards. */
  savedAt: string | undefined;
  /** `embedded`: the backbone's weights are in the file; `reference`: only its identity (head-only artefact). */
  backbone: 'embedded' | 'reference';
  /** How the weights are stored: `float32`, `float16` or `uint8` (some weights always stay float32). */
  quantization: WeightQuantization;
  /** Weights stored quantized. */
  quantizedWeights: number;
  /** Weights stored as they are (float32): the head, biases, normalization parameters, small tensors. */
  float32Weights: number;
  /** Bytes of weight data in the file. */
  weightBytes: number;
  /** The accuracy check run at save time, when `verify` data was given. */
  verification?: QuantizationCheck;
}

/**
 * Everything known about a model, saved inside every artefact by {@link save} (`userDefinedMetadata.tfjsTransfer.card`)
 * and returned by {@link loadModel} as `model.card`; `tfjs-transfer info <model>` prints it.
 * @category Save and load
 */
export interface ModelCard {
  /** Class names, in output order. */
  classes: string[];
  /** Input shape of one image `[h, w, 3]`: raw RGB pixels 0..255. */
  inputShape: [number, number, 3];
  /** The preprocessing the model applies to raw pixels itself. */
  preprocessing: Preprocessing;
  /** How photos of another aspect ratio are fitted to the input (as in training); `predict` does the same. */
  resizeFit: ResizeFit;
  /** The backbone's identity. */
  backbone: {
    /** Name, e.g. `"mobilenet_v2_1.0_224"`. */
    name: string;
    /** Where its weights came from (catalog URL, path, URL, `"LayersModel"`...). */
    source: string;
    /** `layers`, `graph` or `function`. */
    kind: string;
    /** The feature layer (layers backbones). */
    featureLayer?: string;
    /** Shape of one image's features. */
    featureShape: number[];
    /** SHA-256 of the backbone's weights (layers backbones, when saved by this version). */
    weightsSha256?: string;
  };
  /** How the head was built. */
  head: HeadSpec;
  /** What each `fit` did: images per class, epochs, settings (empty when unknown). */
  training: TrainingRun[];
  /** The last evaluation, when one ran after the last training. */
  evaluation?: EvaluationRecord;
  /** The probability calibration, when the model was calibrated. */
  calibration?: Calibration;
  /** The unknown detector ("none of the classes"), when the model has one: its threshold and what it was fitted on. */
  unknownDetector?: UnknownDetectorSummary;
  /** How the file stores the model: in a saved file, and in `model.card` of a model loaded from one (`undefined` for a model not loaded from a file). */
  artefact?: ArtefactRecord;
}

/** @internal */
export interface TransferModelInit {
  backbone: Backbone;
  classes: string[];
  model: tfl.LayersModel;
  head: tfl.LayersModel;
  headSpec: HeadSpec;
  /** Names of the head's layers in `model`. */
  headLayers: string[];
  /** The calibration record read from a saved model (checked; dropped when malformed). */
  calibration?: unknown;
  /** The unknown detector read from a saved model (checked before anything was allocated). */
  unknown?: UnknownDetector;
  /** Training runs read from a saved model card. */
  trainingRuns?: TrainingRun[];
  /** The evaluation read from a saved model card. */
  evaluation?: EvaluationRecord;
  /** How the artefact it was loaded from stores it. */
  artefact?: ArtefactRecord;
  /** SHA-256 of the backbone's weights, as recorded in the artefact. */
  backboneWeightsSha256?: string;
  /** How the training images were fitted to the input, as recorded in the artefact (`squash` when absent or unknown). */
  resizeFit?: unknown;
}

/**
 * The head's output as one probability column per class: a two-class head with one sigmoid unit gives `p`, widened
 * to `[1 - p, p]`; any other head's softmax is returned as it is. Call inside a `tf.tidy`.
 * @internal
 */
export function classProbabilityColumns(p: tf.Tensor2D, numClasses: number): tf.Tensor2D {
  return numClasses === 2 && p.shape[1] === 1 ? (tf.concat([tf.sub(1, p), p], 1) as tf.Tensor2D) : p;
}

/**
 * A backbone plus a classification head: what {@link attachHead} returns and {@link fit}, {@link evaluate},
 * {@link predict} and {@link save} take.
 *
 * `model` is one `tf.LayersModel` from **raw RGB pixels (0..255)** to class probabilities, preprocessing included.
 * Class names travel with it. Call {@link TransferModel.dispose} when done: it frees the backbone too.
 *
 * @category Step 3: Compose
 * @example
 * ```ts
 * const model = attachHead(freeze(await loadBackbone('mobilenet_v2_1.0_224')), { classes: ['cat', 'dog'] });
 * const probs = model.model.predict(images) as tf.Tensor; // [n, 1]: P(dog)
 * model.dispose();
 * ```
 */
export class TransferModel {
  /** The pretrained feature extractor. */
  readonly backbone: Backbone;
  /** Class names; output index `i` is `classes[i]`. */
  readonly classes: readonly string[];
  /** Raw pixels → probabilities: `[n, 1]` (P(classes[1])) for two classes, `[n, k]` otherwise. */
  readonly model: tfl.LayersModel;
  /** Features → probabilities: the head alone. Shares its layers with `model`. */
  readonly head: tfl.LayersModel;
  /** How the head was built. */
  readonly headSpec: HeadSpec;
  /** Names of the head's layers inside `model`. */
  readonly headLayers: readonly string[];
  /**
   * Set to `true` from a `fit` callback to stop training after the current batch (as tfjs' `model.stopTraining`);
   * `fit` resets it when it starts and ends.
   */
  stopTraining = false;
  /**
   * How the probabilities were calibrated ({@link calibrate}), saved and loaded with the model; `undefined` when
   * they were not. `fit` clears it when it starts (the temperature stays folded in the weights it trains from): calibrate again after training.
   */
  get calibration(): Calibration | undefined {
    return this.calibrationRecord;
  }
  private calibrationRecord: Calibration | undefined;
  /**
   * The detector that tells images of none of the classes (fitted by `fit` when it has validation images, by
   * {@link transferLearn} and {@link fitUnknownDetector}; saved and loaded with the model); `undefined` when the
   * model has none. `fit` refits it after training (the features change when the backbone is fine-tuned).
   * {@link predict} then marks such images `unknown`.
   */
  get unknownDetector(): UnknownDetectorSummary | undefined {
    return this.detector?.summary();
  }
  /** @internal The detector itself. */
  get detector(): UnknownDetector | undefined {
    return this.detectorValue;
  }
  private detectorValue: UnknownDetector | undefined;
  private runs: TrainingRun[];
  private evaluationSummary: EvaluationRecord | undefined;
  private artefactRecord: ArtefactRecord | undefined;
  private backboneHash: string | undefined;
  private disposedFlag = false;
  private disposeRequested = false;
  private trainingFlag = false;

  /** @internal Use {@link attachHead} or {@link loadModel}. */
  constructor(init: TransferModelInit) {
    this.backbone = init.backbone;
    this.classes = Object.freeze([...init.classes]);
    this.model = init.model;
    this.head = init.head;
    this.headSpec = init.headSpec;
    this.headLayers = Object.freeze([...init.headLayers]);
    this.calibrationRecord = calibrationRecord(init.calibration);
    this.detectorValue = init.unknown;
    this.runs = Array.isArray(init.trainingRuns) ? [...init.trainingRuns] : [];
    this.evaluationSummary = init.evaluation;
    this.artefactRecord = init.artefact;
    this.backboneHash = init.backboneWeightsSha256;
    this.fitValue = RESIZE_FITS.includes(init.resizeFit as ResizeFit) ? (init.resizeFit as ResizeFit) : 'squash';
  }

  /**
   * How photos of another aspect ratio are fitted to the model's input: the way its training images were (`fit`
   * records it from an image dataset: `transferLearn` on a folder centre-crops by default), saved with the model.
   * {@link predict} fits the images it decodes or resizes (files, URLs, browser images, tensors of another size)
   * the same way. `squash` for models trained on tensors and for artefacts that did not record it.
   * @example
   * ```ts
   * const model = await loadModel('./flowers');
   * model.resizeFit; // 'centerCrop'
   * ```
   */
  get resizeFit(): ResizeFit {
    return this.fitValue;
  }
  private fitValue: ResizeFit;

  /** @internal Set by `fit` from the training images. */
  setResizeFit(fit: ResizeFit): void {
    this.fitValue = fit;
  }

  /** @internal Set by `fit` and `fitUnknownDetector`. */
  setUnknownDetector(detector: UnknownDetector | undefined): void {
    this.detectorValue = detector;
  }

  /**
   * The model card: classes, input and preprocessing, the backbone's identity, what training and evaluation did,
   * the calibration and, for a loaded model, how its file stores it. It follows the model: after `fit` its
   * training list grows and its evaluation is cleared. {@link save} writes it into every artefact.
   * @example
   * ```ts
   * const model = await loadModel('./cats-vs-dogs');
   * console.log(model.card.training[0]?.imagesPerClass, model.card.evaluation?.accuracy, model.card.artefact?.quantization);
   * ```
   */
  get card(): ModelCard {
    const b = this.backbone;
    const card: ModelCard = {
      classes: [...this.classes],
      inputShape: [...this.inputShape],
      preprocessing: { ...b.preprocessing },
      resizeFit: this.fitValue,
      backbone: { name: b.name, source: b.source, kind: b.kind, featureShape: [...b.featureShape] },
      head: { ...this.headSpec, hiddenUnits: [...this.headSpec.hiddenUnits] },
      training: this.runs.map((r) => ({ ...r })),
    };
    if (b.featureLayer !== undefined) card.backbone.featureLayer = b.featureLayer;
    if (this.backboneHash !== undefined) card.backbone.weightsSha256 = this.backboneHash;
    if (this.evaluationSummary) card.evaluation = { ...this.evaluationSummary };
    if (this.calibrationRecord) card.calibration = { ...this.calibrationRecord };
    if (this.detectorValue) card.unknownDetector = this.detectorValue.summary();
    if (this.artefactRecord) card.artefact = { ...this.artefactRecord };
    return card;
  }

  /** @internal Set by `loadModel`: how the file stores the model. */
  setArtefact(record: ArtefactRecord | undefined, backboneWeightsSha256?: string): void {
    this.artefactRecord = record;
    if (backboneWeightsSha256 !== undefined) this.backboneHash = backboneWeightsSha256;
  }

  /**
   * What each {@link fit} of this model did (images per class, epochs, settings), oldest first; read back from a
   * saved model's card by `loadModel`. Empty for a model never trained.
   */
  get trainingRuns(): readonly TrainingRun[] {
    return this.runs;
  }

  /** A summary of the last {@link evaluate} of this model, `undefined` when none ran since the last `fit`. */
  get evaluation(): EvaluationRecord | undefined {
    return this.evaluationSummary;
  }

  /** @internal Called by `fit` when a run ends. */
  addTrainingRun(run: TrainingRun): void {
    this.runs.push(Object.freeze(run));
    // A trained backbone layer: the recorded hash of the backbone's weights no longer holds.
    const backboneLayers = new Set(this.backbone.layers.map((l) => l.name));
    if (run.trainedLayers.some((n) => backboneLayers.has(n))) this.backboneHash = undefined;
  }

  /** @internal Set by `evaluate`, cleared by `fit`. */
  setEvaluation(record: EvaluationRecord | undefined): void {
    this.evaluationSummary = record ? Object.freeze(record) : undefined;
  }

  /** @internal Set by `calibrate`. */
  setCalibration(record: Calibration | undefined): void {
    this.calibrationRecord = record ? Object.freeze({ ...record }) : undefined;
  }

  /** Number of classes. */
  get numClasses(): number {
    return this.classes.length;
  }

  /** Input shape of one image, `[height, width, 3]`. */
  get inputShape(): [number, number, 3] {
    return this.backbone.inputShape;
  }

  /** Whether the whole model can be saved as one artefact (layers backbones); otherwise only the head is saved. */
  get isSerializable(): boolean {
    return this.backbone.kind === 'layers';
  }

  /** Whether a `fit` of this model is running (a second one is refused meanwhile). */
  get isTraining(): boolean {
    return this.trainingFlag;
  }

  /** @internal Set by `fit`; a {@link TransferModel.dispose} requested while training happens when training ends. */
  setTraining(on: boolean): void {
    this.trainingFlag = on;
    if (!on && this.disposeRequested) this.dispose();
  }

  /** @internal Whether `dispose()` was called while `fit` was training (fit then stops and frees the model). */
  get isDisposePending(): boolean {
    return this.disposeRequested && !this.disposedFlag;
  }

  /** Whether {@link TransferModel.dispose} was called. */
  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /**
   * Class probabilities `[n, numClasses]` (two columns for two classes) of raw images, in inference mode.
   * Does not dispose `images`.
   *
   * @param args `batchSize`: images per forward pass, default 32.
   * @example
   * ```ts
   * const p = model.predictProbabilities(images, { batchSize: 16 }); // [n, numClasses]
   * ```
   */
  predictProbabilities(images: tf.Tensor4D, args: { batchSize?: number } = {}): tf.Tensor2D {
    this.assertUsable('predict');
    const batchSize = args?.batchSize ?? 32;
    this.backbone.checkImages(images, 'predict');
    const n = images.shape[0];
    const run = (x: tf.Tensor4D) =>
      tf.tidy(() => {
        // Layers backbones run as their compiled (folded) program, then the head; others through the composed model.
        const p = (this.backbone.kind === 'layers' ? this.head.predict(this.backbone.extract(x, { batchSize })) : this.model.predict(x)) as tf.Tensor2D;
        return classProbabilityColumns(p, this.numClasses);
      });
    if (n <= batchSize) return run(images);
    const parts: tf.Tensor2D[] = [];
    try {
      for (let s = 0; s < n; s += batchSize) {
        const size = Math.min(batchSize, n - s);
        parts.push(tf.tidy(() => run(takeRows(images, s, size))));
      }
      return tf.concat(parts, 0);
    } finally {
      parts.forEach((p) => p.dispose());
    }
  }

  /**
   * Frees every weight of the model: the head, and the backbone's if the library loaded it (a model you passed to
   * `loadBackbone` stays yours). Safe to call twice. Called while `fit` trains the model, it stops that training
   * before its next batch (the `fit` rejects with an `ABORTED` TransferError) and frees the model when `fit` ends.
   */
  dispose(): void {
    if (this.disposedFlag) return;
    if (this.trainingFlag) {
      // fit is using the weights: it stops before its next batch, rejects, and frees the model as it ends.
      this.disposeRequested = true;
      this.stopTraining = true;
      return;
    }
    this.disposedFlag = true;
    const backboneLayers = new Set(this.backbone.model?.layers ?? []);
    disposeLayers(this.model.layers.filter((l) => !backboneLayers.has(l)));
    this.backbone.dispose();
  }

  /** @internal */
  assertUsable(what: string): void {
    if (this.disposedFlag) throw new TransferError('INVALID_ARGUMENT', `This TransferModel was disposed; cannot ${what}.`);
  }
}
