/**
 * The `Backbone`: a pretrained feature extractor that knows its input shape, feature shape and preprocessing.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type * as tfc from '@tensorflow/tfjs-converter';
import { TransferError, check } from '../errors';
import type { ImageSize, Preprocessing } from '../types';
import { disposeLayers, releaseBorrowedLayers } from '../util/dispose';
import { takeRows } from '../util/rows';
import { applyPreprocessing } from './preprocess';
import { tryFold, type FoldedModel } from './fold';
import type { PretrainedClassifier } from './pretrained-classifier';

/** Names of the layers the library puts in front of a layers backbone (input, preprocessing). @internal */
export const OWN_LAYERS = new Set(['tt_image', 'tt_preprocess']);

/** Defaults of {@link Backbone.extract}. @category Step 3: Compose */
export const EXTRACT_DEFAULTS = Object.freeze({
  /** Images per forward pass. */
  batchSize: 32,
});

/** Options of {@link Backbone.extract}. @category Step 3: Compose */
export interface ExtractArgs {
  /** Images per forward pass. @defaultValue {@link EXTRACT_DEFAULTS}.batchSize (32) */
  batchSize?: number;
}

/**
 * A plain function from a batch of (preprocessed) images `[n, h, w, 3]` to features `[n, ...featureShape]`.
 * @category Step 3: Compose
 */
export type BackboneFunction = (images: tf.Tensor4D) => tf.Tensor;

/**
 * What kind of model is behind a {@link Backbone}.
 * @category Step 3: Compose
 */
export type BackboneKind = 'layers' | 'graph' | 'function';

/** Everything needed to build a {@link Backbone}. @internal */
export interface BackboneInit {
  name: string;
  kind: BackboneKind;
  inputSize: ImageSize;
  featureShape: number[];
  preprocessing: Preprocessing;
  featureLayer?: string;
  /** For `layers`: raw pixels → features, preprocessing layer included. */
  model?: tfl.LayersModel;
  /** For `graph` / `function`: preprocessed images → features. */
  run?: (images: tf.Tensor4D) => tf.Tensor;
  /** Where it came from (catalog URL, path, "LayersModel", ...), for reports and cache identity. */
  source: string;
  /** Called by `dispose()` for resources the backbone owns. */
  release?: () => void;
  /**
   * Whether the backbone owns the layers of `model` (it loaded them). A model passed in by the caller stays
   * the caller's: `dispose()` then leaves its weights alone. Default true.
   */
  ownsLayers?: boolean;
  /** The caller's model whose layers `model` shares, when not owned. */
  borrowedFrom?: tfl.LayersModel;
  /** The layer names of the original model, in order (for `freeze` by index). */
  /** The model's own softmax classifier on the pooled features, when it has one (see `pretrained-classifier.ts`). */
  pretrainedClassifier?: PretrainedClassifier;
}

/**
 * A pretrained feature extractor, as returned by {@link loadBackbone}. It takes **raw RGB pixels in 0..255**
 * (`[n, height, width, 3]` at {@link Backbone.inputShape}) and applies its own {@link Backbone.preprocessing}.
 *
 * For layers models, {@link Backbone.model} is a `tf.LayersModel` from raw pixels to features whose layers can be
 * frozen and fine-tuned. Graph models and functions are always frozen.
 *
 * Call {@link Backbone.dispose} when done (unless a `TransferModel` built on it is disposed instead).
 * @category Step 3: Compose
 */
export class Backbone {
  /** A name for reports and cache identity, e.g. `"mobilenet_v2_1.0_224"`. */
  readonly name: string;
  /** `layers`, `graph` or `function`. */
  readonly kind: BackboneKind;
  /** Input shape `[height, width, 3]` of one image. */
  readonly inputShape: [number, number, 3];
  /** Shape of one image's features, e.g. `[7, 7, 1280]`. */
  readonly featureShape: number[];
  /** How raw pixels are mapped to the model's input range. */
  readonly preprocessing: Preprocessing;
  /** The layer the features are taken at (layers models), e.g. `"out_relu"`. */
  readonly featureLayer: string | undefined;
  /** Where the weights came from. */
  readonly source: string;
  /** For layers backbones: raw pixels → features, sharing the pretrained layers. `undefined` otherwise. */
  readonly model: tfl.LayersModel | undefined;
  private readonly run: ((images: tf.Tensor4D) => tf.Tensor) | undefined;
  private readonly release: (() => void) | undefined;
  private readonly ownsLayers: boolean;
  private readonly borrowedFrom: tfl.LayersModel | undefined;
  private disposedFlag = false;
  private frozenCount = 0;
  private classifier: PretrainedClassifier | undefined;

  /** @internal Use {@link loadBackbone}. */
  constructor(init: BackboneInit) {
    this.name = init.name;
    this.kind = init.kind;
    this.inputShape = [init.inputSize[0], init.inputSize[1], 3];
    this.featureShape = init.featureShape;
    this.preprocessing = init.preprocessing;
    this.featureLayer = init.featureLayer;
    this.source = init.source;
    this.model = init.model;
    this.run = init.run;
    this.release = init.release;
    this.ownsLayers = init.ownsLayers ?? true;
    this.borrowedFrom = init.borrowedFrom;
    this.classifier = init.pretrainedClassifier;
  }

  /**
   * The pretrained model's own softmax classifier on the pooled features (e.g. MobileNetV2's 1000 ImageNet
   * classes), when the loaded model had one right above the feature layer and no layer of this backbone has
   * trained since; the unknown detector's `pretrainedClasses` method scores with it. @internal
   */
  get pretrainedClassifier(): PretrainedClassifier | undefined {
    return this.classifier;
  }

  /**
   * Forgets {@link Backbone.pretrainedClassifier}: called by `fit` when layers of the backbone train, since the
   * pretrained classifier no longer matches the features they compute. @internal
   */
  forgetPretrainedClassifier(): void {
    this.classifier = undefined;
  }

  /** Whether {@link Backbone.dispose} was called. */
  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /**
   * The pretrained model's layers in order, as in the original model (the library's own input and
   * preprocessing layers are left out, so indices match Keras'); empty for graph and function backbones.
   * `freeze` takes names or indices from this list.
   */
  get layers(): tfl.layers.Layer[] {
    return this.model ? this.model.layers.filter((l) => !OWN_LAYERS.has(l.name)) : [];
  }

  /**
   * How many of {@link Backbone.layers}, from the bottom, are frozen. Graph and function backbones are always
   * entirely frozen. Set by {@link freeze}; 0 after loading.
   */
  get frozenLayerCount(): number {
    return this.frozenCount;
  }

  /** @internal */
  setFrozenLayerCount(n: number): void {
    this.frozenCount = n;
  }

  /** Whether every weight of the backbone is frozen. */
  get isFullyFrozen(): boolean {
    return this.kind !== 'layers' || this.frozenCount >= this.layers.length;
  }

  /**
   * Features of a batch of raw images, in inference mode. Does not dispose `images`.
   *
   * @param images Raw RGB pixels in 0..255, `[n, height, width, 3]` at `inputShape`.
   * @param args `batchSize`: images per forward pass, default {@link EXTRACT_DEFAULTS}.batchSize (32).
   * @returns Features `[n, ...featureShape]`; the caller disposes them.
   *
   * @example
   * ```ts
   * const backbone = await loadBackbone('mobilenet_v2_1.0_224');
   * const features = backbone.extract(images); // [n, 7, 7, 1280]
   * ```
   */
  extract(images: tf.Tensor4D, args: ExtractArgs = {}): tf.Tensor {
    this.assertUsable('extract');
    check(args == null || typeof args === 'object', 'Backbone.extract: args must be an object such as { batchSize: 32 }.');
    const batchSize = args?.batchSize ?? EXTRACT_DEFAULTS.batchSize;
    check(Number.isInteger(batchSize) && batchSize > 0, `Backbone.extract: batchSize must be a positive integer, got ${JSON.stringify(batchSize)}.`);
    this.checkImages(images, 'Backbone.extract');
    const n = images.shape[0];
    // The model runs as a folded program (BN folded into convs, conv+bias+relu6 fused): the same features, about
    // 1.2x (no BN) to 2.5x (with BN) faster for a batch. Folded per call and freed after it, so the backbone holds
    // no second copy of its weights and later weight changes (fine-tuning) are always seen.
    const folded = this.model ? tryFold(this.model) : undefined;
    const parts: tf.Tensor[] = [];
    try {
      if (n <= batchSize) return this.extractBatch(images, folded);
      for (let start = 0; start < n; start += batchSize) {
        const size = Math.min(batchSize, n - start);
        const part = tf.tidy(() => this.extractBatch(takeRows(images, start, size), folded));
        parts.push(part);
      }
      return tf.concat(parts, 0);
    } finally {
      parts.forEach((p) => p.dispose());
      folded?.dispose();
    }
  }

  private extractBatch(images: tf.Tensor4D, folded?: FoldedModel): tf.Tensor {
    return tf.tidy(() => {
      if (folded) return folded.predict(images)[0]!;
      if (this.model) return this.model.predict(images) as tf.Tensor;
      const run = this.run;
      if (!run) throw new TransferError('NOT_SUPPORTED', `Backbone "${this.name}" has nothing to run.`);
      const out = run(applyPreprocessing(images, this.preprocessing));
      if (!(out instanceof tf.Tensor)) {
        throw new TransferError('INVALID_ARGUMENT', `Backbone "${this.name}": the backbone function must return a tf.Tensor, got ${typeof out}.`);
      }
      return out;
    });
  }

  /** Throws a clear error unless `images` is a batch this backbone takes. @internal */
  checkImages(images: tf.Tensor, where: string): void {
    check(images instanceof tf.Tensor, `${where}: images must be a tf.Tensor4D of raw pixels [n, ${this.inputShape.join(', ')}].`);
    const [h, w] = this.inputShape;
    if (images.rank !== 4 || images.shape[1] !== h || images.shape[2] !== w || images.shape[3] !== 3) {
      throw new TransferError(
        'SHAPE_MISMATCH',
        `${where}: expected images of shape [n, ${h}, ${w}, 3] (backbone "${this.name}"), got [${images.shape.join(', ')}]. ` +
          `Resize them first (resizeImages(images, [${h}, ${w}])) or load the backbone with inputSize ${images.shape[1]}.`,
      );
    }
    if (images.shape[0] === 0) throw new TransferError('EMPTY_DATA', `${where}: the batch has no images.`);
  }

  /** A function from preprocessed images to features, for wrapping graph and function backbones. @internal */
  get runner(): ((images: tf.Tensor4D) => tf.Tensor) | undefined {
    return this.run;
  }

  /**
   * Frees the backbone's weights, if it loaded them. A `tf.LayersModel` or `tf.GraphModel` you passed to
   * `loadBackbone` stays yours: dispose it yourself when done. Safe to call twice.
   */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.classifier = undefined;
    if (this.model && this.ownsLayers) disposeLayers(this.model.layers);
    else if (this.model && this.borrowedFrom) {
      releaseBorrowedLayers(this.layers, this.borrowedFrom);
      disposeLayers(this.model.layers.filter((l) => OWN_LAYERS.has(l.name)));
    }
    this.release?.();
  }

  /** @internal */
  assertUsable(what: string): void {
    if (this.disposedFlag) {
      throw new TransferError('INVALID_ARGUMENT', `Backbone "${this.name}" was disposed; cannot ${what}. Load it again.`);
    }
  }
}

/**
 * A layer that runs a graph-model or function backbone inside a layers model. Frozen (no weights), not
 * serializable: a model with it saves its head only.
 * @internal
 */
export class ExternalBackboneLayer extends tfl.layers.Layer {
  static className = 'TfjsTransfer>ExternalBackbone';
  readonly backbone: Backbone;

  constructor(backbone: Backbone) {
    super({ name: 'tt_backbone', trainable: false });
    this.backbone = backbone;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [shape[0] ?? null, ...this.backbone.featureShape];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return this.backbone.extract(x);
  }
}

/** Runs a graph model on preprocessed images, taking `node` (or the default output). @internal */
export function graphRunner(model: tfc.GraphModel, node: string | undefined): (images: tf.Tensor4D) => tf.Tensor {
  return (images) => {
    const out = node ? model.execute(images, node) : model.predict(images);
    if (Array.isArray(out)) throw new TransferError('NOT_SUPPORTED', `The graph model has ${out.length} outputs; name the feature node with featureLayer.`);
    if (!(out instanceof tf.Tensor)) throw new TransferError('NOT_SUPPORTED', 'The graph model returned named outputs; name the feature node with featureLayer.');
    return out;
  };
}
