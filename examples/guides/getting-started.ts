/**
 * Guide: getting started (docs/guides/getting-started.md).
 *
 * The five steps one by one (examine, pipeline, compose, train, evaluate), then the same in one call with
 * `transferLearn()`, on the Keras tutorial's cats vs dogs.
 *
 *   node --import tsx examples/guides/getting-started.ts                     # all 3000 images, MobileNetV2 1.0
 *   node --import tsx examples/guides/getting-started.ts --per-class 20      # a 20-per-class sample, seconds
 *
 * In your application: `import { ... } from 'tfjs-transfer/node'`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  attachHead,
  evaluate,
  examine,
  fit,
  freeze,
  imageFolder,
  loadBackbone,
  predict,
  save,
  loadModel,
  transferLearn,
  type BackboneSource,
  type Dataset,
} from '../../src/node/index';
import { CATS_DOGS, MOBILENET_100, isMain, modelOrCatalog, sampleFolder, useBackend } from './common';

/** Options of {@link main}. */
export interface GettingStartedOptions {
  /** Image folder: `train/<class>/*` + `validation/<class>/*`, or `<class>/*`. Default: ../shared cats vs dogs. */
  data?: string;
  /** Use only the first `perClass` images of each class folder. Default: all. */
  perClass?: number;
  /** The backbone. Default: MobileNetV2 1.0 at 224 (../shared, else downloaded from the catalog). */
  backbone?: BackboneSource;
  /** Input size. Default: the backbone's (224). */
  inputSize?: number;
  /** Epochs of head training. Default 10. */
  epochs?: number;
  /** Where to save the trained model. Default: a temporary folder. */
  saveTo?: string;
  /** Print reports and one line per epoch. Default true. */
  verbose?: boolean;
}

/** What {@link main} measured. */
export interface GettingStartedResult {
  /** Validation accuracy of the step-by-step model. */
  stepByStep: number;
  /** Validation accuracy of `transferLearn()`. */
  oneCall: number;
  /** The reloaded model's label for the first validation image, and the original's. */
  reloaded: { label: string; sameAsOriginal: boolean };
}

export async function main(options: GettingStartedOptions = {}): Promise<GettingStartedResult> {
  const verbose = options.verbose ?? true;
  const temp = await mkdtemp(join(tmpdir(), 'tfjs-transfer-getting-started-'));
  try {
    const data = options.perClass ? await sampleFolder(options.data ?? CATS_DOGS, join(temp, 'data'), options.perClass) : options.data ?? CATS_DOGS;
    const source = options.backbone ?? modelOrCatalog(MOBILENET_100, 'mobilenet_v2_1.0_224');
    const epochs = options.epochs ?? 10;

    // 3a. Load the pretrained backbone first: its input size decides how images are resized.
    const backbone = await loadBackbone(source, { inputSize: options.inputSize });
    const [height, width] = backbone.inputShape;

    // 2. The pipeline: an image folder, decoded and resized batch by batch (nothing is decoded up front).
    const folder = await imageFolder(data, { size: [height, width] });

    // 1. Examine: classes, counts, imbalance, sizes, duplicates, files that were skipped.
    examine(folder, { verbose });

    // 3b, 3c. Freeze it and stack a classifier: average pooling, dropout 0.2, one sigmoid unit for two classes.
    const model = attachHead(freeze(backbone), { classes: folder.classes, seed: 1 });

    // 4. Train the head. The frozen backbone runs once per image; epochs train on cached features.
    await fit(model, folder.train, { validationData: folder.validation, epochs, learningRate: 1e-3, seed: 1, verbose });

    // 5. Evaluate: accuracy, per-class precision / recall / F1, confusion matrix, ROC AUC, misclassified files.
    const result = await evaluate(model, folder.validation ?? folder.train);
    if (verbose) console.log(`step by step: validation accuracy ${result.accuracy.toFixed(4)}`, result.confusionMatrix);

    // Save, reload, predict.
    const saveTo = options.saveTo ?? join(temp, 'model');
    await save(model, saveTo);
    const reloaded = await loadModel(saveTo);
    const first = await firstImage(folder.validation ?? folder.train);
    const [original] = await predict(model, first);
    const [again] = await predict(reloaded, first);
    first.dispose();
    reloaded.dispose();
    model.dispose();

    // All five steps in one call (it prints the examine report and one line per epoch).
    const oneCall = await transferLearn({
      data,
      backbone: source,
      backboneOptions: { inputSize: options.inputSize },
      epochs,
      seed: 1,
      verbose,
      examine: verbose,
    });
    if (verbose) console.log(`transferLearn: validation accuracy ${oneCall.evaluation.accuracy.toFixed(4)}`);
    oneCall.model.dispose();
    return {
      stepByStep: result.accuracy,
      oneCall: oneCall.evaluation.accuracy,
      reloaded: { label: again!.label, sameAsOriginal: again!.label === original!.label },
    };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

async function firstImage(dataset: Dataset) {
  const one = dataset.subset([0]);
  for await (const batch of one.batches({ batchSize: 1 })) {
    batch.ys.dispose();
    return batch.xs;
  }
  throw new Error('no image');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      model: { type: 'string' },
      'per-class': { type: 'string' },
      size: { type: 'string' },
      epochs: { type: 'string' },
      save: { type: 'string' },
    },
  });
  console.log(`backend: ${await useBackend()}`);
  const result = await main({
    data: values.data,
    backbone: values.model,
    perClass: values['per-class'] ? Number(values['per-class']) : undefined,
    inputSize: values.size ? Number(values.size) : undefined,
    epochs: values.epochs ? Number(values.epochs) : undefined,
    saveTo: values.save,
  });
  console.log(result);
}
