/**
 * Micro benchmark of the convolution gradient kernels of `src/train/wasm-kernels.ts`: milliseconds per backward
 * pass (input gradient + weight gradient kernels, as the tape runs them) of layers from the top of MobileNetV2 1.0
 * at 224, on wasm (with the kernels of tfjs-transfer) and on cpu (tfjs-backend-cpu's own kernels).
 *
 *   npx tsx bench/wasm-kernels.ts [--batch 32] [--cpu-batch 2] [--runs 5]
 *
 * The cpu backend's weight-gradient kernels are JavaScript loops and take minutes at batch 32, so cpu is measured
 * at `--cpu-batch` (one run) and also shown scaled linearly to `--batch`. Pass `--cpu-batch 32` to measure it.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../src/train/wasm-kernels';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const BATCH = arg('batch', 32);
const CPU_BATCH = arg('cpu-batch', 2);
const RUNS = arg('runs', 5);

interface Layer {
  name: string;
  kind: 'conv' | 'depthwise';
  size: number; // input height = width
  inC: number;
  /** output channels (conv) or channel multiplier (depthwise) */
  out: number;
  k: number;
  stride: number;
  pad: 'same' | 'valid';
}

// Block 13-16 of MobileNetV2 1.0 (224): 14x14x96 -> expand 576 -> depthwise stride 2 -> project 160 -> 7x7 block.
const LAYERS: Layer[] = [
  { name: 'expand 1x1 14x14 96->576', kind: 'conv', size: 14, inC: 96, out: 576, k: 1, stride: 1, pad: 'same' },
  { name: 'depthwise 3x3 s1 14x14x576', kind: 'depthwise', size: 14, inC: 576, out: 1, k: 3, stride: 1, pad: 'same' },
  { name: 'depthwise 3x3 s2 14x14x576 -> 7x7', kind: 'depthwise', size: 14, inC: 576, out: 1, k: 3, stride: 2, pad: 'same' },
  { name: 'project 1x1 7x7 576->160', kind: 'conv', size: 7, inC: 576, out: 160, k: 1, stride: 1, pad: 'same' },
  { name: 'expand 1x1 7x7 160->960', kind: 'conv', size: 7, inC: 160, out: 960, k: 1, stride: 1, pad: 'same' },
  { name: 'depthwise 3x3 s1 7x7x960', kind: 'depthwise', size: 7, inC: 960, out: 1, k: 3, stride: 1, pad: 'same' },
  { name: 'full 3x3 s1 14x14 64->64 (not in MNv2)', kind: 'conv', size: 14, inC: 64, out: 64, k: 3, stride: 1, pad: 'same' },
];

/** Runs the two gradient kernels of `layer` once; returns [input-grad ms, weight-grad ms]. */
function backward(layer: Layer, batch: number): [number, number] {
  const x = tf.randomNormal<tf.Rank.R4>([batch, layer.size, layer.size, layer.inC]);
  const fShape: [number, number, number, number] = [layer.k, layer.k, layer.inC, layer.out];
  const w = tf.randomNormal<tf.Rank.R4>(fShape);
  const y = layer.kind === 'conv' ? tf.conv2d(x, w, layer.stride, layer.pad) : tf.depthwiseConv2d(x, w, layer.stride, layer.pad);
  const dy = tf.randomNormal(y.shape);
  y.dispose();
  const time = (f: () => tf.Tensor): number => {
    const t0 = performance.now();
    const r = f();
    r.dataSync();
    const ms = performance.now() - t0;
    r.dispose();
    return ms;
  };
  const attrs = { strides: layer.stride, pad: layer.pad, dilations: 1, dataFormat: 'NHWC' };
  const run = (name: string, inputs: tf.NamedTensorMap, extra: object): tf.Tensor =>
    tf.engine().runKernel(name, inputs, { ...attrs, ...extra } as unknown as tf.NamedAttrMap) as tf.Tensor;
  let res: [number, number];
  if (layer.kind === 'conv') {
    res = [
      time(() => run('Conv2DBackpropInput', { dy, filter: w }, { inputShape: x.shape })),
      time(() => run('Conv2DBackpropFilter', { x, dy }, { filterShape: fShape })),
    ];
  } else {
    res = [
      time(() => run('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, { inputShape: x.shape })),
      time(() => run('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { filterShape: fShape })),
    ];
  }
  tf.dispose([x, w, dy]);
  return res;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  if (tf.getBackend() !== 'wasm') throw new Error('the wasm backend did not initialise');
  console.log(`registered for wasm: ${registerWasmTrainingKernels().join(', ') || '(nothing missing)'}`);
  console.log(`wasm: batch ${BATCH}, median of ${RUNS} runs after a warm-up; cpu: batch ${CPU_BATCH}, 1 run\n`);
  const rows: string[][] = [['layer', 'wasm dx', 'wasm dW', 'wasm total', `cpu total (b${CPU_BATCH})`, `cpu scaled to b${BATCH}`, 'speed-up']];
  for (const layer of LAYERS) {
    await tf.setBackend('wasm');
    backward(layer, BATCH); // warm-up (XNNPACK operator creation, heap growth)
    const runs = Array.from({ length: RUNS }, () => backward(layer, BATCH));
    const dx = median(runs.map((r) => r[0]));
    const dw = median(runs.map((r) => r[1]));
    await tf.setBackend('cpu');
    const [cdx, cdw] = backward(layer, CPU_BATCH);
    const cpuScaled = ((cdx + cdw) * BATCH) / CPU_BATCH;
    rows.push([
      layer.name,
      dx.toFixed(1),
      dw.toFixed(1),
      (dx + dw).toFixed(1),
      (cdx + cdw).toFixed(0),
      cpuScaled.toFixed(0),
      `${(cpuScaled / (dx + dw)).toFixed(0)}x`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  console.log('\n(ms per backward pass of one layer; dx = input gradient, dW = weight gradient)');
}

await main();
