/**
 * `freeze`: step 3b, decide which pretrained weights stay fixed.
 * @module
 */
import { Backbone } from './backbone/backbone';
import { TransferError, check } from './errors';
import { TransferModel } from './transfer-model';

/**
 * Options of {@link freeze}.
 * @category Step 3: Compose
 */
export interface FreezeArgs {
  /**
   * The first backbone layer that stays **trainable**, by name (e.g. `"block_11_expand"`) or by index in
   * `backbone.layers` (Keras' numbering: MobileNetV2's `fine_tune_at = 100`). Every layer below it is frozen;
   * it and every layer above it train. Default: none, the whole backbone is frozen.
   */
  trainableFrom?: string | number;
}

/**
 * Freezes the backbone, entirely (the default, for feature extraction) or below a layer (for fine-tuning the top).
 *
 * Frozen means frozen: `fit` never changes a frozen weight, trainable or not, and the frozen part always computes
 * as at inference (BatchNormalization uses its moving statistics and never updates them). Calling `freeze` again
 * changes the boundary, e.g. to fine-tune after training the head. Returns its argument, for chaining.
 *
 * @example
 * ```ts
 * const backbone = freeze(await loadBackbone('mobilenet_v2_1.0_224'));       // feature extraction
 * const model = attachHead(backbone, { classes: ['cat', 'dog'] });
 * await fit(model, train);
 * freeze(model, { trainableFrom: 'block_11_expand' });                        // then fine-tune the top
 * await fit(model, train, { learningRate: 1e-5 });
 * ```
 * @category Step 3: Compose
 */
export function freeze<T extends Backbone | TransferModel>(target: T, options: FreezeArgs = {}): T {
  check(
    target instanceof Backbone || target instanceof TransferModel,
    `freeze: expected a Backbone (from loadBackbone) or a TransferModel (from attachHead), got ${Object.prototype.toString.call(target)}.`,
  );
  check(typeof options === 'object' && options !== null, 'freeze: options must be an object.');
  const backbone = target instanceof TransferModel ? target.backbone : target;
  backbone.assertUsable('freeze');
  const layers = backbone.layers;
  let from = layers.length;
  const { trainableFrom } = options;
  if (trainableFrom !== undefined) {
    if (backbone.kind !== 'layers') {
      throw new TransferError(
        'NOT_SUPPORTED',
        `freeze: a ${backbone.kind} backbone ("${backbone.name}") cannot be partly unfrozen; only tfjs layers models can be fine-tuned. Load the backbone as a layers model.`,
      );
    }
    if (typeof trainableFrom === 'number') {
      check(
        Number.isInteger(trainableFrom) && trainableFrom >= 0 && trainableFrom <= layers.length,
        `freeze: trainableFrom index ${trainableFrom} is out of range; the backbone has ${layers.length} layers (0 to ${layers.length}).`,
      );
      from = trainableFrom;
    } else {
      from = layers.findIndex((l) => l.name === trainableFrom);
      if (from < 0) {
        const hint = layers
          .filter((l) => l.countParams() > 0)
          .slice(-8)
          .map((l) => l.name);
        throw new TransferError(
          'LAYER_NOT_FOUND',
          `freeze: the backbone "${backbone.name}" has no layer "${trainableFrom}". Layers with weights near the top: ${hint.join(', ')}. ` +
            `backbone.layers lists all ${layers.length}.`,
        );
      }
    }
  }
  layers.forEach((layer, i) => {
    layer.trainable = i >= from;
  });
  // The library's own input and preprocessing layers have no weights; keep them non-trainable.
  backbone.model?.layers.forEach((l) => {
    if (!layers.includes(l)) l.trainable = false;
  });
  backbone.setFrozenLayerCount(from);
  return target;
}
