/**
 * Time of one fine-tuning step (batch 32, Adam) of MobileNetV2 1.0 at 224 for several cuts, on cached boundary
 * activations, with and without the fast 1x1 Conv2DBackpropInput path. For docs/accuracy.md.
 *
 *   node --import tsx examples/cats-vs-dogs/bench-fine-tune.ts [--original] [--cuts block_11_expand,block_14_expand]
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { attachHead, freeze, loadBackbone, registerWasmTrainingKernels } from '../../src/node/index';
import { freezeBoundaryOf } from '../../src/train/boundary';
import { findShared } from './locate';

const { values } = parseArgs({ options: { original: { type: 'boolean' }, cuts: { type: 'string' }, steps: { type: 'string', default: '3' } } });
await tf.setBackend('wasm');
await tf.ready();
const original = tf.getKernel('Conv2DBackpropInput', 'wasm')!;
registerWasmTrainingKernels();
if (values.original) {
  tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel(original);
}
const model = attachHead(freeze(await loadBackbone(join(findShared()!, 'models/mobilenet_v2_1.0_224/model.json'))), { classes: ['cat', 'dog'], seed: 1 });
const cuts = (values.cuts ?? 'block_11_expand,block_13_expand,block_14_expand,block_15_expand,block_16_expand').split(',');
for (const cut of cuts) {
  freeze(model, { trainableFrom: cut });
  const split = freezeBoundaryOf(model);
  const vars = split.top.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const optimizer = tf.train.adam(1e-4);
  const inputs = split.shapes.map((s) => tf.randomNormal([32, ...s]));
  const labels = tf.tensor2d(Array.from({ length: 32 }, (_, i) => [i % 2]), [32, 1]);
  const step = () =>
    tf.tidy(() => {
      const cost = optimizer.minimize(() => {
        const p = split.top.apply(inputs.length === 1 ? inputs[0]! : inputs, { training: true }) as tf.Tensor;
        return tf.losses.sigmoidCrossEntropy(labels, tf.log(tf.div(p, tf.sub(1, p)))) as tf.Scalar;
      }, true, vars)!;
      cost.dataSync();
    });
  step(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < Number(values.steps); i++) step();
  const ms = (performance.now() - t0) / Number(values.steps);
  const params = vars.reduce((a, v) => a + v.size, 0);
  console.log(`${cut}: boundary ${split.names.join('+')} [${split.shapes.map((s) => s.join('x')).join(', ')}], ${params} parameters, ${ms.toFixed(0)} ms per step of 32 -> ${((ms * 63) / 1000).toFixed(0)} s per epoch of 2000 images${values.original ? ' (original Conv2DBackpropInput)' : ''}`);
  tf.dispose([...inputs, labels]);
  optimizer.dispose();
}
