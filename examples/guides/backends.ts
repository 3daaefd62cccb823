/**
 * Guide: choosing a backend (docs/guides/backends.md).
 *
 * Measures what each backend costs on this machine: frozen-backbone feature extraction (images per second, the
 * step that dominates transfer learning) and one training epoch of the head on the cached features.
 *
 *   node --import tsx examples/guides/backends.ts                       # wasm and cpu, MobileNetV2 1.0 at 224
 *   node --import tsx examples/guides/backends.ts --backends wasm --images 64
 *
 * In your application: `import { loadBackbone, ... } from 'tfjs-transfer/node'` (browser: 'tfjs-transfer').
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { attachHead, fit, freeze, fromTensors, loadBackbone, type BackboneSource } from '../../src/node/index';
import { MOBILENET_100, isMain, modelOrCatalog } from './common';

/** Options of {@link main}. */
export interface BackendsOptions {
  /** Backends to measure, by tfjs name. Default `['wasm', 'cpu']` (plus `tensorflow` if tfjs-node is installed). */
  backends?: string[];
  /** The backbone. Default: MobileNetV2 1.0 (../shared, else the catalog). */
  model?: BackboneSource;
  /** Input size. Default 224. */
  inputSize?: number;
  /** Images extracted per backend (after one warm-up batch). Default 32. */
  images?: number;
  /** Batch size of extraction. Default 16. */
  batchSize?: number;
}

/** One backend's measurements. */
export interface BackendCost {
  /** The backend's name. */
  backend: string;
  /** Frozen-backbone feature extraction, images per second. */
  imagesPerSecond: number;
  /** Milliseconds of one head epoch on the cached features of `images` images. */
  headEpochMs: number;
}

/** Measures every requested backend, then restores the backend that was active. */
export async function main(options: BackendsOptions = {}): Promise<BackendCost[]> {
  const previous = tf.getBackend();
  const backends = options.backends ?? ['wasm', 'cpu'];
  const size = options.inputSize ?? 224;
  const count = options.images ?? 32;
  const batchSize = options.batchSize ?? 16;
  const results: BackendCost[] = [];
  try {
    for (const name of backends) {
      if (!(await tf.setBackend(name)) || tf.getBackend() !== name) {
        console.log(`${name}: not available here, skipped`);
        continue;
      }
      const backbone = freeze(await loadBackbone(options.model ?? modelOrCatalog(MOBILENET_100, 'mobilenet_v2_1.0_224'), { inputSize: size }));
      const images = tf.randomUniform([count, size, size, 3], 0, 255, 'float32', 1) as tf.Tensor4D;
      try {
        // Warm-up: the first pass compiles kernels (webgl shaders) and allocates memory.
        const warmUp = tf.slice(images, 0, Math.min(batchSize, count)) as tf.Tensor4D;
        tf.dispose([backbone.extract(warmUp, { batchSize }), warmUp]);
        const start = performance.now();
        const features = backbone.extract(images, { batchSize });
        await features.data();
        const seconds = (performance.now() - start) / 1000;
        features.dispose();
        const model = attachHead(backbone, { classes: ['a', 'b'], seed: 1 });
        const labels = Array.from({ length: count }, (_, i) => (i % 2 ? 'b' : 'a'));
        const data = fromTensors(images, labels, { classes: ['a', 'b'] });
        const history = await fit(model, data, { epochs: 2, batchSize: 32, seed: 1, verbose: false });
        const cost = { backend: name, imagesPerSecond: count / seconds, headEpochMs: history.timing.trainMs / history.epochs };
        results.push(cost);
        console.log(`${name.padEnd(10)} ${cost.imagesPerSecond.toFixed(1).padStart(7)} images/s extracting   ${cost.headEpochMs.toFixed(0).padStart(5)} ms per head epoch`);
        model.dispose();
      } finally {
        images.dispose();
        backbone.dispose();
      }
    }
  } finally {
    await tf.setBackend(previous);
  }
  return results;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      backends: { type: 'string' },
      model: { type: 'string' },
      size: { type: 'string' },
      images: { type: 'string' },
    },
  });
  const backends = values.backends?.split(',') ?? ['wasm', 'cpu'];
  if (!values.backends) {
    try {
      await import('@tensorflow/tfjs-node' as string);
      backends.unshift('tensorflow');
    } catch {
      // tfjs-node is not installed: measure wasm and cpu only.
    }
  }
  await tf.setBackend('wasm');
  await main({
    backends,
    model: values.model,
    inputSize: values.size ? Number(values.size) : undefined,
    images: values.images ? Number(values.images) : undefined,
  });
}
