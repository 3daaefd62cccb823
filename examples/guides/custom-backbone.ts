/**
 * Guide: plug in a custom backbone (docs/guides/custom-backbone.md).
 *
 * Three backbones that are not the default MobileNetV2, each frozen, given a head, trained and evaluated:
 * 1. another **layers model** (a small CNN built with tfjs-layers, features taken at a named layer);
 * 2. a **graph model** shaped like a TF Hub image feature vector (written by hand into a folder, then loaded from
 *    its path and from an in-memory `tf.io.IOHandler`), whose head is saved alone and reloaded with the backbone;
 * 3. a **plain function** from images to features.
 *
 *   node --import tsx examples/guides/custom-backbone.ts                       # on ../shared cats vs dogs
 *   node --import tsx examples/guides/custom-backbone.ts --graph-model ./my-hub-model/model.json
 *
 * In your application: `import { loadBackbone, ... } from 'tfjs-transfer/node'`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  attachHead,
  evaluate,
  fit,
  freeze,
  fromTensors,
  imageFolder,
  loadBackbone,
  loadModel,
  predict,
  save,
  type Backbone,
  type LabelledData,
} from '../../src/node/index';
import { CATS_DOGS, isMain, sampleFolder, useBackend } from './common';
import { tinyGraphModel, writeTinyGraphModel } from './tiny-graph-model';

/** Options of {@link main}. */
export interface CustomBackboneOptions {
  /** Image folder (`train|validation/<class>/*` or `<class>/*`). Default: synthetic red vs blue images. */
  data?: string;
  /** Use only the first `perClass` images of each class folder. Default: all. */
  perClass?: number;
  /** Input size of every backbone. Default 64. */
  size?: number;
  /** A real graph model (e.g. a downloaded TF Hub feature vector) instead of the hand-written one. */
  graphModel?: string;
  /** Head epochs. Default 30 (cheap: features are cached). */
  epochs?: number;
  /** Print one line per backbone. Default true. */
  verbose?: boolean;
}

/** Validation accuracy and feature shape per backbone. */
export type CustomBackboneResult = Record<'layers' | 'graph' | 'graphFromHandler' | 'function', { featureShape: number[]; accuracy: number }> & {
  /** Whether the graph-backbone model, saved (head only) and reloaded with its backbone, predicts the same. */
  graphReloadSame: boolean;
};

/** A small CNN: any tfjs layers model works the same way (e.g. one converted from Keras). */
function smallCnn(size: number): tfl.LayersModel {
  const model = tfl.sequential({ name: 'small_cnn' });
  model.add(tfl.layers.conv2d({ inputShape: [size, size, 3], filters: 16, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv_a', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }));
  model.add(tfl.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, activation: 'relu', name: 'conv_b', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }));
  model.add(tfl.layers.globalAveragePooling2d({ name: 'pool' }));
  model.add(tfl.layers.dense({ units: 10, activation: 'softmax', name: 'logits' }));
  return model;
}

/** Red-ish vs blue-ish noisy images, `perClass` of each. */
function colours(perClass: number, size: number, seed: number): { xs: tf.Tensor4D; ys: string[] } {
  const ys = Array.from({ length: 2 * perClass }, (_, i) => (i % 2 ? 'blue' : 'red'));
  const xs = tf.tidy(() => {
    const base = tf.stack(ys.map((y) => tf.tile(tf.reshape(tf.tensor1d(y === 'red' ? [170, 110, 90] : [90, 110, 170]), [1, 1, 3]), [size, size, 1])));
    return tf.clipByValue(tf.add(base, tf.randomUniform([ys.length, size, size, 3], -70, 70, 'float32', seed)), 0, 255) as tf.Tensor4D;
  });
  return { xs, ys };
}

export async function main(options: CustomBackboneOptions = {}): Promise<CustomBackboneResult> {
  const size = options.size ?? 64;
  const epochs = options.epochs ?? 30;
  const verbose = options.verbose ?? true;
  const temp = await mkdtemp(join(tmpdir(), 'tfjs-transfer-custom-backbone-'));
  const owned: tf.Tensor[] = [];
  try {
    // The data: an image folder, or synthetic tensors.
    let train: LabelledData;
    let validation: LabelledData;
    if (options.data) {
      const dir = options.perClass ? await sampleFolder(options.data, join(temp, 'data'), options.perClass) : options.data;
      const folder = await imageFolder(dir, { size: [size, size], progressBar: false });
      train = folder.train;
      validation = folder.validation ?? folder.train;
    } else {
      const a = colours(16, size, 1);
      const b = colours(8, size, 2);
      owned.push(a.xs, b.xs);
      train = fromTensors(a.xs, a.ys, { classes: ['blue', 'red'] });
      validation = fromTensors(b.xs, b.ys, { classes: ['blue', 'red'] });
    }
    const classes = (train as { classes: readonly string[] }).classes;

    const run = async (label: string, backbone: Backbone) => {
      const model = attachHead(freeze(backbone), { classes, seed: 1 });
      await fit(model, train, { epochs, learningRate: 1e-2, seed: 1, verbose: false });
      const { accuracy } = await evaluate(model, validation);
      if (verbose) console.log(`${label.padEnd(34)} features [${backbone.featureShape.join(', ')}]  validation accuracy ${accuracy.toFixed(3)}`);
      return { model, result: { featureShape: [...backbone.featureShape], accuracy } };
    };

    // 1. Another layers model: pass the tf.LayersModel and the layer to cut at. Any input size works for a
    //    fully convolutional model; preprocessing maps raw 0..255 pixels to what the model expects.
    const cnn = smallCnn(size);
    const layers = await run(
      'layers model, cut at conv_b',
      await loadBackbone(cnn, { featureLayer: 'conv_b', preprocessing: { scale: 1 / 255, offset: 0 }, name: 'small_cnn' }),
    );
    // The backbone shares cnn's layers (no copy) but cnn stays yours: disposing the TransferModel frees the head,
    // and cnn.dispose() frees cnn (pass { takeOwnership: true } to loadBackbone to hand it over instead).
    layers.model.dispose();
    cnn.dispose();

    // 2. A graph model (tensorflowjs_converter output, e.g. a TF Hub feature vector): from a path ...
    const graphPath = options.graphModel ?? (await writeTinyGraphModel(join(temp, 'feature-vector')));
    const hubLike = { inputSize: size, preprocessing: { scale: 1 / 255, offset: 0 } }; // TF Hub image models take [0, 1]
    const graph = await run('graph model from a path', await loadBackbone(graphPath, hubLike));
    // ... saved: a graph backbone cannot be serialized, so `save` writes the head and names the backbone;
    // `loadModel` takes the backbone again.
    await save(graph.model, join(temp, 'graph-head'));
    const reloaded = await loadModel(join(temp, 'graph-head'), { backbone: graphPath });
    const probe = tf.randomUniform([2, size, size, 3], 0, 255, 'float32', 3) as tf.Tensor4D;
    owned.push(probe);
    const [before, after] = [await predict(graph.model, probe), await predict(reloaded, probe)];
    const graphReloadSame = before.every((p, i) => Math.abs(p.probability - after[i]!.probability) < 1e-5 && p.label === after[i]!.label);
    reloaded.dispose();
    graph.model.dispose();

    // ... or from memory, through any tf.io.IOHandler (tf.io.browserFiles, tf.io.http, your own).
    const { modelJson, weights } = tinyGraphModel();
    const handler = tf.io.fromMemory({
      modelTopology: modelJson.modelTopology as tf.io.ModelJSON['modelTopology'],
      weightSpecs: (modelJson.weightsManifest as tf.io.WeightsManifestConfig)[0]!.weights,
      weightData: weights.buffer as ArrayBuffer,
      format: 'graph-model',
    });
    const fromHandler = await run('graph model from an IOHandler', await loadBackbone(handler, { ...hubLike, featureLayer: 'relu' }));
    fromHandler.model.dispose();

    // 3. A plain function from preprocessed images [n, h, w, 3] to features: here, an 8x8 thumbnail.
    const thumbnail = (images: tf.Tensor4D) => tf.reshape(tf.image.resizeBilinear(images, [8, 8]), [images.shape[0], 8 * 8 * 3]);
    const fn = await run('plain function', await loadBackbone(thumbnail, { inputSize: size, preprocessing: { scale: 1 / 255, offset: 0 }, name: 'thumbnail' }));
    fn.model.dispose();

    return { layers: layers.result, graph: graph.result, graphFromHandler: fromHandler.result, function: fn.result, graphReloadSame };
  } finally {
    tf.dispose(owned);
    await rm(temp, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { data: { type: 'string' }, 'per-class': { type: 'string' }, size: { type: 'string' }, 'graph-model': { type: 'string' } },
  });
  await useBackend();
  const result = await main({
    data: values.data ?? CATS_DOGS,
    perClass: values['per-class'] ? Number(values['per-class']) : undefined,
    size: values.size ? Number(values.size) : undefined,
    graphModel: values['graph-model'],
  });
  console.log(result);
}
