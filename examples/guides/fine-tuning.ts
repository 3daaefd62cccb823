/**
 * Guide: fine-tuning (docs/guides/fine-tuning.md).
 *
 * Train the head on a frozen backbone first, then unfreeze the top of the backbone and train on at a lower
 * learning rate, as the Keras transfer-learning tutorial does. Shows what is cached, what trains, and that
 * BatchNormalization statistics never move.
 *
 *   node --import tsx examples/guides/fine-tuning.ts                                   # cats vs dogs, MobileNetV2 0.35
 *   node --import tsx examples/guides/fine-tuning.ts --from block_11_expand --size 224  # the tutorial's cut
 *
 * In your application: `import { freeze, fit, ... } from 'tfjs-transfer/node'`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { attachHead, evaluate, fit, freeze, imageFolder, loadBackbone, type BackboneSource } from '../../src/node/index';
import { CATS_DOGS, MOBILENET_035, isMain, modelOrCatalog, sampleFolder, useBackend } from './common';

/** Options of {@link main}. */
export interface FineTuningOptions {
  /** Image folder. Default: ../shared cats vs dogs. */
  data?: string;
  /** Use only the first `perClass` images of each class folder. Default: all. */
  perClass?: number;
  /** The backbone. Default: MobileNetV2 0.35 with BatchNorm layers (../shared, else the catalog). */
  backbone?: BackboneSource;
  /** Input size. Default 160. */
  inputSize?: number;
  /** First layer to unfreeze. Default `"block_16_expand"` (the last block); the tutorial's is `"block_11_expand"`. */
  trainableFrom?: string | number;
  /** Head epochs. Default 10. */
  headEpochs?: number;
  /** Fine-tuning epochs. Default 3. */
  fineTuneEpochs?: number;
  /** Print one line per epoch. Default true. */
  verbose?: boolean;
}

/** What {@link main} measured. */
export interface FineTuningResult {
  /** Validation accuracy after training the head. */
  headAccuracy: number;
  /** Validation accuracy after fine-tuning. */
  fineTunedAccuracy: number;
  /** Layers that trained while fine-tuning (the head's included), and their parameter count. */
  trained: { layers: string[]; parameters: number };
  /** The layers whose outputs were cached at the freeze boundary while fine-tuning. */
  boundary: string[];
  /** Whether every BatchNormalization moving mean and variance is unchanged by fine-tuning. */
  batchNormUnchanged: boolean;
}

export async function main(options: FineTuningOptions = {}): Promise<FineTuningResult> {
  const verbose = options.verbose ?? true;
  const temp = await mkdtemp(join(tmpdir(), 'tfjs-transfer-fine-tuning-'));
  try {
    const data = options.perClass ? await sampleFolder(options.data ?? CATS_DOGS, join(temp, 'data'), options.perClass) : options.data ?? CATS_DOGS;
    const backbone = await loadBackbone(options.backbone ?? modelOrCatalog(MOBILENET_035, 'mobilenet_v2_0.35_224'), { inputSize: options.inputSize ?? 160 });
    const [h, w] = backbone.inputShape;
    const { train, validation, classes } = await imageFolder(data, { size: [h, w], progressBar: false });
    const model = attachHead(freeze(backbone), { classes, seed: 1 });

    // 1. Feature extraction: the whole backbone frozen, the head trains on cached pooled features.
    await fit(model, train, { validationData: validation, epochs: options.headEpochs ?? 10, learningRate: 1e-3, seed: 1, verbose });
    const headAccuracy = (await evaluate(model, validation ?? train)).accuracy;

    // BatchNorm moving statistics before fine-tuning (non-trainable weights named moving_mean / moving_variance).
    const statistics = () =>
      backbone.layers.flatMap((l) => l.weights.filter((v) => /moving_(mean|variance)/.test(v.originalName)).map((v) => Array.from(v.read().dataSync())));
    const before = statistics();

    // 2. Fine-tuning: unfreeze from a layer up, train on at a tenth of the learning rate. The frozen part below the
    //    boundary still runs once per image; only the unfrozen blocks and the head run every step.
    freeze(model, { trainableFrom: options.trainableFrom ?? 'block_16_expand' });
    const history = await fit(model, train, { validationData: validation, epochs: options.fineTuneEpochs ?? 3, learningRate: 1e-4, seed: 1, verbose });
    const fineTunedAccuracy = (await evaluate(model, validation ?? train)).accuracy;

    const after = statistics();
    const batchNormUnchanged = before.length === after.length && before.every((values, i) => values.every((v, j) => v === after[i]![j]));
    if (verbose) {
      console.log(`head only:    validation accuracy ${headAccuracy.toFixed(4)}`);
      console.log(`fine-tuned:   validation accuracy ${fineTunedAccuracy.toFixed(4)} (${history.trained.parameters} parameters in ${history.trained.layers.length} layers trained)`);
      console.log(`cached at:    ${history.boundary.layers.join(', ')} ${JSON.stringify(history.boundary.shapes)}`);
      console.log(`BatchNorm statistics unchanged: ${batchNormUnchanged} (${before.length} tensors)`);
    }
    model.dispose();
    return { headAccuracy, fineTunedAccuracy, trained: history.trained, boundary: history.boundary.layers, batchNormUnchanged };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      model: { type: 'string' },
      'per-class': { type: 'string' },
      size: { type: 'string' },
      from: { type: 'string' },
      epochs: { type: 'string' },
    },
  });
  console.log(`backend: ${await useBackend()}`);
  await main({
    data: values.data,
    backbone: values.model,
    perClass: values['per-class'] ? Number(values['per-class']) : undefined,
    inputSize: values.size ? Number(values.size) : undefined,
    trainableFrom: values.from,
    fineTuneEpochs: values.epochs ? Number(values.epochs) : undefined,
  });
}
