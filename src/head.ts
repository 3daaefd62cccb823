/**
 * `attachHead`: step 3c, stack a small classifier on the backbone.
 * @module
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { Backbone, ExternalBackboneLayer } from './backbone/backbone';
import { TransferError, check } from './errors';
import { TransferModel, type HeadSpec } from './transfer-model';
import { Random } from './util/random';

/**
 * Options of {@link attachHead}.
 * @category Step 3: Compose
 */
export interface AttachHeadArgs {
  /**
   * The classes, in output order: their names (`['cat', 'dog']`), or how many (named `class_0`, `class_1`, ...).
   * Required; at least 2. With a dataset at hand, pass `dataset.classes`.
   */
  classes: readonly string[] | number;
  /**
   * How spatial features `[h, w, c]` become a vector: `avg` (global average pooling, as the Keras tutorial),
   * `max`, `flatten`, or `none` (the features already are a vector). Default `avg` for spatial features, `none`
   * for vector features.
   */
  pooling?: HeadSpec['pooling'];
  /** Dropout rate before each dense layer while training, in [0, 1). Default 0.2 (the Keras tutorial's). */
  dropout?: number;
  /** Units of optional hidden dense layers between pooling and the output. Default `[]` (none). */
  hiddenUnits?: number[];
  /** Activation of the hidden layers. Default `relu`. */
  hiddenActivation?: 'relu' | 'relu6' | 'elu' | 'selu' | 'tanh' | 'swish' | 'gelu' | 'linear';
  /** L2 weight regularisation of the head's kernels. Default 0 (none). */
  l2?: number;
  /** Seed of the head's weight initialisation. Default: random. */
  seed?: number;
}

function headLayerNames(): { pool: string; dropout: (i: number) => string; hidden: (i: number) => string; output: string } {
  return { pool: 'tt_pool', dropout: (i) => `tt_dropout_${i}`, hidden: (i) => `tt_hidden_${i}`, output: 'tt_output' };
}

/** Normalises `classes` into unique, non-empty names. @internal */
export function normaliseClasses(classes: readonly string[] | number, where: string): string[] {
  if (typeof classes === 'number') {
    check(Number.isInteger(classes) && classes >= 2 && classes <= 100000, `${where}: classes must be at least 2, got ${classes}. A classifier needs two or more classes.`);
    return Array.from({ length: classes }, (_, i) => `class_${i}`);
  }
  check(Array.isArray(classes), `${where}: classes must be an array of class names or a count, got ${typeof classes}.`);
  check(classes.length >= 2, `${where}: a classifier needs at least 2 classes, got ${classes.length} (${JSON.stringify(classes)}). Add images of another class.`);
  const seen = new Set<string>();
  for (const c of classes) {
    check(typeof c === 'string' && c.length > 0, `${where}: class names must be non-empty strings, got ${JSON.stringify(c)}.`);
    check(!seen.has(c), `${where}: class "${c}" appears twice in classes.`);
    seen.add(c);
  }
  return [...classes];
}

/**
 * Stacks a classification head on a backbone and returns the composed model: pooling (average by default),
 * dropout, optional hidden layers, and one sigmoid unit for two classes or a softmax for more.
 *
 * The returned {@link TransferModel} takes raw pixels and outputs class probabilities; its `model` is one
 * `tf.LayersModel` (backbone + head) that can be saved and served. Freeze the backbone first ({@link freeze});
 * an unfrozen backbone trains with the head.
 *
 * @example
 * ```ts
 * const backbone = freeze(await loadBackbone('mobilenet_v2_1.0_224'));
 * const model = attachHead(backbone, { classes: ['cat', 'dog'] });        // avg pool, dropout 0.2, sigmoid
 * const three = attachHead(backbone2, { classes: 3, hiddenUnits: [128] }); // softmax over 3 classes
 * ```
 * @category Step 3: Compose
 */
export function attachHead(backbone: Backbone, options: AttachHeadArgs): TransferModel {
  check(backbone instanceof Backbone, `attachHead: expected a Backbone from loadBackbone, got ${Object.prototype.toString.call(backbone)}.`);
  check(options != null && typeof options === 'object', 'attachHead: options are required: at least { classes: [...] }.');
  backbone.assertUsable('attach a head');
  const classes = normaliseClasses(options.classes, 'attachHead');
  const spatial = backbone.featureShape.length === 3;
  const pooling = options.pooling ?? (spatial ? 'avg' : 'none');
  check(['avg', 'max', 'flatten', 'none'].includes(pooling), `attachHead: pooling must be avg, max, flatten or none, got ${JSON.stringify(pooling)}.`);
  if ((pooling === 'avg' || pooling === 'max') && !spatial) {
    throw new TransferError('SHAPE_MISMATCH', `attachHead: pooling "${pooling}" needs spatial features [h, w, c]; backbone "${backbone.name}" gives [${backbone.featureShape.join(', ')}]. Use pooling: 'none'.`);
  }
  if (pooling === 'none' && backbone.featureShape.length !== 1) {
    throw new TransferError('SHAPE_MISMATCH', `attachHead: pooling "none" needs vector features; backbone "${backbone.name}" gives [${backbone.featureShape.join(', ')}]. Use pooling 'avg' (default), 'max' or 'flatten'.`);
  }
  const dropout = options.dropout ?? 0.2;
  check(typeof dropout === 'number' && dropout >= 0 && dropout < 1, `attachHead: dropout must be in [0, 1), got ${dropout}.`);
  const hiddenUnits = options.hiddenUnits ?? [];
  check(Array.isArray(hiddenUnits) && hiddenUnits.every((u) => Number.isInteger(u) && u > 0), `attachHead: hiddenUnits must be positive integers, got ${JSON.stringify(hiddenUnits)}.`);
  const hiddenActivation = options.hiddenActivation ?? 'relu';
  const activations = ['relu', 'relu6', 'elu', 'selu', 'tanh', 'swish', 'gelu', 'linear']; // reliability: was passed unchecked to tfjs
  check(activations.includes(hiddenActivation), `attachHead: hiddenActivation must be one of ${activations.join(', ')}, got ${JSON.stringify(hiddenActivation)}.`);
  const l2 = options.l2 ?? 0;
  check(typeof l2 === 'number' && l2 >= 0 && Number.isFinite(l2), `attachHead: l2 must be a non-negative number, got ${l2}.`);
  const rng = new Random(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  const names = headLayerNames();
  const kernelRegularizer = l2 > 0 ? tfl.regularizers.l2({ l2 }) : undefined;

  const headLayers: tfl.layers.Layer[] = [];
  if (pooling === 'avg') headLayers.push(tfl.layers.globalAveragePooling2d({ name: names.pool }));
  else if (pooling === 'max') headLayers.push(tfl.layers.globalMaxPooling2d({ name: names.pool }));
  else if (pooling === 'flatten') headLayers.push(tfl.layers.flatten({ name: names.pool }));
  const dense = (units: number, activation: string, name: string) =>
    tfl.layers.dense({
      units,
      activation: activation as 'relu',
      name,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: rng.seed() }),
      kernelRegularizer,
    });
  hiddenUnits.forEach((units, i) => {
    if (dropout > 0) headLayers.push(tfl.layers.dropout({ rate: dropout, name: names.dropout(i) }));
    headLayers.push(dense(units, hiddenActivation, names.hidden(i)));
  });
  if (dropout > 0) headLayers.push(tfl.layers.dropout({ rate: dropout, name: names.dropout(hiddenUnits.length) }));
  const outputActivation = classes.length === 2 ? 'sigmoid' : 'softmax';
  headLayers.push(dense(classes.length === 2 ? 1 : classes.length, outputActivation, names.output));

  const stack = (x: tfl.SymbolicTensor) => headLayers.reduce((t, layer) => layer.apply(t) as tfl.SymbolicTensor, x);

  // Head alone: features -> probabilities.
  const featureInput = tfl.input({ shape: backbone.featureShape, name: 'tt_features' });
  const head = tfl.model({ inputs: featureInput, outputs: stack(featureInput), name: 'tt_head' });

  // Composed: raw pixels -> probabilities, sharing the head's layers.
  let composed: tfl.LayersModel;
  if (backbone.model) {
    const features = backbone.model.outputs[0]!;
    composed = tfl.model({ inputs: backbone.model.inputs, outputs: stack(features), name: 'tt_transfer_model' });
  } else {
    const image = tfl.input({ shape: backbone.inputShape, name: 'tt_image' });
    const features = new ExternalBackboneLayer(backbone).apply(image) as tfl.SymbolicTensor;
    composed = tfl.model({ inputs: image, outputs: stack(features), name: 'tt_transfer_model' });
  }
  return new TransferModel({
    backbone,
    classes,
    model: composed,
    head,
    headSpec: { pooling, dropout, hiddenUnits, hiddenActivation, outputActivation },
    headLayers: headLayers.map((l) => l.name),
  });
}
