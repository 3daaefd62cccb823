import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransferError } from '../../src/errors.js';
import { loadLayersModelSafely } from '../../src/artifacts/load-layers.js';
import { atomicWriteFile, createNodeFileSystem, nodeFileSystem } from '../../src/node/file-io.js';

const SHARED = path.resolve('../shared/models');
const MOBILENET_035 = path.join(SHARED, 'mobilenet_v2_0.35_224_no_top');
const MOBILENET_100 = path.join(SHARED, 'mobilenet_v2_1.0_224');

let tmp = '';
let baseline = 0;

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tfjs-transfer-io-'));
  baseline = tf.memory().numTensors;
});

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
  expect(tf.memory().numTensors).toBe(baseline);
});

/** A small deterministic model. */
function smallModel(seed = 1): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [4], units: 3, activation: 'relu', name: 'hidden' }),
      tfl.layers.dense({ units: 2, activation: 'softmax', name: 'out' }),
    ],
  });
  tf.tidy(() => {
    model.setWeights(model.getWeights().map((w, i) => tf.reshape(tf.sin(tf.add(tf.range(0, w.size), seed * 10 + i)), w.shape)));
  });
  return model;
}

async function expectTransferError(promise: Promise<unknown>, code: string, ...fragments: (string | RegExp)[]): Promise<TransferError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a TransferError').toBeInstanceOf(TransferError);
  const error = caught as TransferError;
  expect(error.code).toBe(code);
  for (const fragment of fragments) {
    if (typeof fragment === 'string') expect(error.message).toContain(fragment);
    else expect(error.message).toMatch(fragment);
  }
  return error;
}

/** The one shard a save wrote into `dir`: `weights-<16 hex digits of its sha256>.bin`. */
async function savedShardName(dir: string): Promise<string> {
  const shards = (await fs.readdir(dir)).filter((n) => /^weights-[0-9a-f]{16}\.bin$/.test(n));
  expect(shards).toHaveLength(1);
  return shards[0];
}

async function copyDir(from: string, to: string): Promise<void> {
  await fs.cp(from, to, { recursive: true });
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await fs.readdir(dir)).sort()) {
    out[name] = (await fs.readFile(path.join(dir, name))).toString('base64');
  }
  return out;
}

async function predictions(model: tfl.LayersModel): Promise<Float32Array> {
  const x = tf.tensor2d([[0.1, -0.2, 0.3, 0.4], [1, 2, -3, 0.5]]);
  const y = model.predict(x) as tf.Tensor;
  const data = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  return data;
}

async function weightsOf(model: tfl.LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array));
}

describe('nodeFileSystem round trip', () => {
  it('saves and loads a layers model with identical weights, predictions and metadata', async () => {
    const model = smallModel();
    model.setUserDefinedMetadata({ classes: ['cat', 'dog'], preprocessing: { scale: 1, offset: 0 } });
    const dir = path.join(tmp, 'nested', 'model');
    const result = await model.save(nodeFileSystem.saver(dir));
    expect(result.modelArtifactsInfo.weightDataBytes).toBe((4 * 3 + 3 + 3 * 2 + 2) * 4);
    const shardName = await savedShardName(dir);
    expect((await fs.readdir(dir)).sort()).toEqual(['model.json', shardName]);
    const json = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest).toEqual([{ paths: [shardName], weights: expect.any(Array) }]);
    expect(json.userDefinedMetadata).toEqual({ classes: ['cat', 'dog'], preprocessing: { scale: 1, offset: 0 } });

    const expectedPredictions = await predictions(model);
    const expectedWeights = await weightsOf(model);
    for (const source of [dir, path.join(dir, 'model.json'), pathToFileURL(path.join(dir, 'model.json')).href]) {
      const loaded = await tfl.loadLayersModel(nodeFileSystem.loader(source));
      expect(await predictions(loaded)).toEqual(expectedPredictions);
      expect(await weightsOf(loaded)).toEqual(expectedWeights);
      expect(loaded.getUserDefinedMetadata()).toEqual({ classes: ['cat', 'dog'], preprocessing: { scale: 1, offset: 0 } });
      loaded.dispose();
    }
    // No temporary or backup folders left beside it.
    expect(await fs.readdir(path.join(tmp, 'nested'))).toEqual(['model']);
    model.dispose();
  });

  it('accepts weightData as an array of ArrayBuffers', async () => {
    const model = smallModel(2);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
    }));
    const whole = artifacts!.weightData as ArrayBuffer;
    const split: ArrayBuffer[] = [whole.slice(0, 10), whole.slice(10, 37), whole.slice(37)];
    const dir = path.join(tmp, 'split');
    await nodeFileSystem.saver(dir).save!({ ...artifacts!, weightData: split });
    expect(new Uint8Array(await fs.readFile(path.join(dir, await savedShardName(dir))))).toEqual(new Uint8Array(whole));
    const loaded = await loadLayersModelSafely(nodeFileSystem.loader(dir), dir);
    expect(await predictions(loaded)).toEqual(await predictions(model));
    loaded.dispose();
    model.dispose();
  });

  it('loads the quantized artifacts exactly as the manifest describes', async () => {
    const artifacts = await nodeFileSystem.loader(MOBILENET_100).load!();
    expect(artifacts.format).toBe('layers-model');
    expect(artifacts.generatedBy).toContain('tflite');
    expect(artifacts.convertedBy).toBe('TensorFlow.js 4.22.0');
    const shard = await fs.readFile(path.join(MOBILENET_100, 'group1-shard1of1.bin'));
    expect(Buffer.from(artifacts.weightData as ArrayBuffer).equals(shard)).toBe(true);
    const first = artifacts.weightSpecs![0];
    expect(first.quantization?.dtype).toBe('uint8');
  });
});

describe('nodeFileSystem with the shared models', () => {
  it('loads MobileNetV2 0.35 no-top', async () => {
    const model = await tfl.loadLayersModel(nodeFileSystem.loader(path.join(MOBILENET_035, 'model.json')));
    expect(model.layers.length).toBe(155);
    expect(model.outputs[0].shape).toEqual([null, 7, 7, 1280]);
    expect(model.getWeights().length).toBe(260);
    model.dispose();
  });

  it('loads MobileNetV2 1.0 with uint8-quantized weights and dequantizes them', async () => {
    const model = await loadLayersModelSafely(nodeFileSystem.loader(MOBILENET_100), MOBILENET_100);
    expect(model.outputs[0].shape).toEqual([null, 1000]);
    expect(model.layers.length).toBeGreaterThan(50);
    const json = JSON.parse(await fs.readFile(path.join(MOBILENET_100, 'model.json'), 'utf8'));
    const spec = json.weightsManifest[0].weights[0];
    const shard = await fs.readFile(path.join(MOBILENET_100, 'group1-shard1of1.bin'));
    const kernel = model.getLayer(spec.name.split('/')[0]).getWeights()[0];
    const values = await kernel.data();
    expect(values[0]).toBeCloseTo(shard[0] * spec.quantization.scale + spec.quantization.min, 5);
    expect(values[7]).toBeCloseTo(shard[7] * spec.quantization.scale + spec.quantization.min, 5);
    model.dispose();
  });
});

describe('nodeFileSystem refuses broken or hostile models', () => {
  it('refuses a truncated shard before reading it', async () => {
    const dir = path.join(tmp, 'm');
    await copyDir(MOBILENET_035, dir);
    const shard = path.join(dir, 'weights.bin');
    const { size } = await fs.stat(shard);
    await fs.truncate(shard, size - 100);
    await expectTransferError(
      tfl.loadLayersModel(nodeFileSystem.loader(dir)),
      'MODEL_INVALID',
      `Truncated weights at ${await fs.realpath(shard)}`,
      `describes ${size} bytes but only ${size - 100} (100 missing)`,
    );
  });

  it('refuses an overlong shard', async () => {
    const model = smallModel();
    const dir = path.join(tmp, 'm');
    await model.save(nodeFileSystem.saver(dir));
    model.dispose();
    await fs.appendFile(path.join(dir, await savedShardName(dir)), Buffer.alloc(8));
    await expectTransferError(tfl.loadLayersModel(nodeFileSystem.loader(dir)), 'MODEL_INVALID', 'longer than their manifest', '(8 extra)');
  });

  it('refuses a shard path escaping the folder with ../', async () => {
    const dir = path.join(tmp, 'm');
    await fs.mkdir(dir);
    await fs.copyFile(path.join(MOBILENET_035, 'weights.bin'), path.join(tmp, 'weights.bin'));
    const json = JSON.parse(await fs.readFile(path.join(MOBILENET_035, 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['../weights.bin'];
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    await expectTransferError(
      tfl.loadLayersModel(nodeFileSystem.loader(dir)),
      'MODEL_INVALID',
      path.join(dir, 'model.json'),
      'weightsManifest[0].paths[0] "../weights.bin" contains ".."',
    );
  });

  it('refuses a shard that is a symlink leaving the folder, and accepts one inside it', async () => {
    const dir = path.join(tmp, 'm');
    const outside = path.join(tmp, 'outside');
    await fs.mkdir(dir);
    await fs.mkdir(outside);
    await fs.copyFile(path.join(MOBILENET_035, 'model.json'), path.join(dir, 'model.json'));
    await fs.copyFile(path.join(MOBILENET_035, 'weights.bin'), path.join(outside, 'weights.bin'));
    await fs.symlink(path.join(outside, 'weights.bin'), path.join(dir, 'weights.bin'));
    await expectTransferError(
      nodeFileSystem.loader(dir).load!(),
      'MODEL_INVALID',
      'shard "weights.bin" is a link to',
      'outside the model\'s folder',
    );
    // A link that stays inside the folder is fine.
    await fs.rm(path.join(dir, 'weights.bin'));
    await fs.rename(path.join(outside, 'weights.bin'), path.join(dir, 'real-weights.bin'));
    await fs.symlink('real-weights.bin', path.join(dir, 'weights.bin'));
    const artifacts = await nodeFileSystem.loader(dir).load!();
    expect((artifacts.weightData as ArrayBuffer).byteLength).toBe((await fs.stat(path.join(dir, 'real-weights.bin'))).size);
  });

  it('reports a missing shard, model.json and folder with what was expected', async () => {
    const dir = path.join(tmp, 'm');
    await copyDir(MOBILENET_035, dir);
    await fs.rm(path.join(dir, 'weights.bin'));
    await expectTransferError(
      tfl.loadLayersModel(nodeFileSystem.loader(dir)),
      'MODEL_LOAD_FAILED',
      `Missing weight shard for ${path.join(dir, 'model.json')}`,
      'no such file',
      'copy every file of the model',
    );
    await fs.rm(path.join(dir, 'model.json'));
    await expectTransferError(nodeFileSystem.loader(dir).load!(), 'MODEL_LOAD_FAILED', `The folder ${dir} has no model.json`);
    await expectTransferError(
      nodeFileSystem.loader(path.join(tmp, 'nowhere')).load!(),
      'MODEL_LOAD_FAILED',
      `No model at ${path.join(tmp, 'nowhere')}: the path does not exist`,
    );
    await expectTransferError(Promise.resolve().then(() => nodeFileSystem.loader('https://example.com/model.json').load!()), 'INVALID_ARGUMENT', 'is a URL, not a local path');
  });

  it('reports invalid JSON and invalid manifests naming the file', async () => {
    const dir = path.join(tmp, 'm');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'model.json'), '{"modelTopology": {');
    await expectTransferError(nodeFileSystem.loader(dir).load!(), 'MODEL_INVALID', path.join(dir, 'model.json'), 'not valid JSON');
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: { class_name: 'Sequential', config: {} }, weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', shape: [-1], dtype: 'float32' }] }] }));
    await expectTransferError(nodeFileSystem.loader(dir).load!(), 'MODEL_INVALID', '("k").shape[0] is number -1');
    const small = createNodeFileSystem({ maxTotalBytes: 1000 });
    await expectTransferError(small.loader(MOBILENET_035).load!(), 'MODEL_INVALID', 'more than the limit of 1000 B');
  });
});

describe('loadLayersModelSafely', () => {
  it('names an unknown layer class and suggests registering it, without leaking tensors', async () => {
    const model = smallModel();
    const dir = path.join(tmp, 'm');
    await model.save(nodeFileSystem.saver(dir));
    model.dispose();
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(await fs.readFile(file, 'utf8'));
    json.modelTopology.config.layers[1].class_name = 'FancyAttention';
    await fs.writeFile(file, JSON.stringify(json));
    await expectTransferError(
      loadLayersModelSafely(nodeFileSystem.loader(dir), dir),
      'MODEL_INVALID',
      `Cannot load the model at ${dir}`,
      'layer "out" has class "FancyAttention"',
      'tf.serialization.registerClass(FancyAttention)',
    );
  });

  it('translates tfjs errors raised while building (unknown initializer) and disposes partial variables', async () => {
    const model = smallModel();
    const dir = path.join(tmp, 'm');
    await model.save(nodeFileSystem.saver(dir));
    model.dispose();
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(await fs.readFile(file, 'utf8'));
    json.modelTopology.config.layers[1].config.kernel_initializer = { class_name: 'MagicInit', config: {} };
    await fs.writeFile(file, JSON.stringify(json));
    await expectTransferError(loadLayersModelSafely(nodeFileSystem.loader(dir), dir), 'MODEL_INVALID', 'unknown initializer "MagicInit"', 'registerClass');
  });

  it('reports weights that do not match the topology', async () => {
    const model = smallModel();
    const dir = path.join(tmp, 'm');
    await model.save(nodeFileSystem.saver(dir));
    model.dispose();
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(await fs.readFile(file, 'utf8'));
    json.modelTopology.config.layers[1].config.units = 5;
    await fs.writeFile(file, JSON.stringify(json));
    await expectTransferError(loadLayersModelSafely(nodeFileSystem.loader(dir), dir), 'MODEL_INVALID', 'weights do not match its topology', 'the weight "out/kernel" has shape [3,2] in the manifest but [3,5] in the model');
  });

  it('passes TransferErrors of the handler through', async () => {
    await expectTransferError(loadLayersModelSafely(nodeFileSystem.loader(path.join(tmp, 'none')), 'x'), 'MODEL_LOAD_FAILED', 'No model at');
  });
});

describe('atomic save', () => {
  async function savedModelDir(): Promise<{ dir: string; before: Record<string, string>; expected: Float32Array }> {
    const model = smallModel(1);
    const dir = path.join(tmp, 'model');
    await model.save(nodeFileSystem.saver(dir));
    const expected = await predictions(model);
    model.dispose();
    return { dir, before: await snapshot(dir), expected };
  }

  async function expectIntact(dir: string, before: Record<string, string>, expected: Float32Array): Promise<void> {
    expect(await snapshot(dir)).toEqual(before);
    const loaded = await tfl.loadLayersModel(nodeFileSystem.loader(dir));
    expect(await predictions(loaded)).toEqual(expected);
    loaded.dispose();
    expect(await fs.readdir(tmp)).toEqual(['model']);
  }

  it('keeps the previous model byte-identical when a write fails midway', async () => {
    const { dir, before, expected } = await savedModelDir();
    const jsonBytes = (await fs.stat(path.join(dir, 'model.json'))).size;
    // Once in the middle of model.json, once in the middle of weights.bin.
    for (const failAfterBytes of [Math.floor(jsonBytes / 2), jsonBytes + 20]) {
      const failing = createNodeFileSystem({ __faults: { failAfterBytes, code: 'EIO' } });
      const model = smallModel(2);
      await expectTransferError(model.save(failing.saver(dir)), 'SAVE_FAILED', `Could not save the model to ${dir}`, 'EIO', `The previous model at ${dir} is intact.`);
      model.dispose();
      await expectIntact(dir, before, expected);
    }
  });

  it('reports a full disk (ENOSPC) and keeps the previous model', async () => {
    const { dir, before, expected } = await savedModelDir();
    const full = createNodeFileSystem({ __faults: { failAfterBytes: 100, code: 'ENOSPC' } });
    const model = smallModel(3);
    await expectTransferError(model.save(full.saver(dir)), 'SAVE_FAILED', 'the disk is full', 'ENOSPC', `The previous model at ${dir} is intact.`);
    model.dispose();
    await expectIntact(dir, before, expected);
  });

  it.each(['mkdir', 'write-weights', 'fsync', 'rename-shard', 'write-model-json', 'rename-into-place'] as const)(
    'restores the previous model when the save fails at %s',
    async (step) => {
      const { dir, before, expected } = await savedModelDir();
      const failing = createNodeFileSystem({ __faults: { failAtStep: step, code: 'EIO' } });
      const model = smallModel(4);
      await expectTransferError(model.save(failing.saver(dir)), 'SAVE_FAILED', `The previous model at ${dir} is intact.`);
      model.dispose();
      await expectIntact(dir, before, expected);
    },
  );

  it('leaves nothing behind when a first save fails', async () => {
    const dir = path.join(tmp, 'fresh');
    const model = smallModel();
    const full = createNodeFileSystem({ __faults: { failAfterBytes: 10 } });
    await expectTransferError(model.save(full.saver(dir)), 'SAVE_FAILED', `Nothing was written to ${dir}`);
    model.dispose();
    expect(await fs.readdir(tmp)).toEqual([]);
  });

  it('still succeeds when the old shards cannot be removed, and the next save removes them', async () => {
    const { dir, before } = await savedModelDir();
    const oldShard = Object.keys(before).find((n) => n !== 'model.json')!;
    const messages: string[] = [];
    const { env } = await import('../../src/env.js');
    const { logger, verbose } = env;
    env.logger = (m) => messages.push(m);
    env.verbose = true;
    try {
      const model = smallModel(5);
      await model.save(createNodeFileSystem({ __faults: { failAtStep: 'remove-old-shards' } }).saver(dir));
      const expected = await predictions(model);
      model.dispose();
      const loaded = await tfl.loadLayersModel(nodeFileSystem.loader(dir));
      expect(await predictions(loaded)).toEqual(expected);
      loaded.dispose();
    } finally {
      env.logger = logger;
      env.verbose = verbose;
    }
    expect(messages.join('\n')).toMatch(/could not remove the previous model's shards/);
    expect(await fs.readdir(dir)).toContain(oldShard);
    expect(await fs.readdir(dir)).toHaveLength(3);
    const model = smallModel(6);
    await model.save(nodeFileSystem.saver(dir));
    model.dispose();
    expect(await fs.readdir(dir)).not.toContain(oldShard);
    expect(await fs.readdir(dir)).toHaveLength(2);
    expect(await fs.readdir(tmp)).toEqual(['model']);
  });

  it('replaces an existing model, dropping its old shards and keeping other files', async () => {
    const dir = path.join(tmp, 'model');
    // An old model saved with tfjs's shard naming, plus a file of the user's.
    await copyDir(MOBILENET_100, dir);
    await fs.writeFile(path.join(dir, 'notes.txt'), 'mine');
    const model = smallModel(6);
    await model.save(nodeFileSystem.saver(dir));
    const expected = await predictions(model);
    model.dispose();
    const names = (await fs.readdir(dir)).sort();
    expect(names.filter((n) => !n.startsWith('weights-'))).toEqual(['SOURCE.txt', 'imagenet_labels_1000.txt', 'model.json', 'notes.txt']);
    expect(names.filter((n) => n.startsWith('weights-'))).toEqual([expect.stringMatching(/^weights-[0-9a-f]{16}\.bin$/)]);
    expect(await fs.readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    const loaded = await tfl.loadLayersModel(nodeFileSystem.loader(dir));
    expect(await predictions(loaded)).toEqual(expected);
    loaded.dispose();
    expect(await fs.readdir(tmp)).toEqual(['model']);
  });

  it('refuses to save onto a file', async () => {
    const file = path.join(tmp, 'model');
    await fs.writeFile(file, 'x');
    const model = smallModel();
    await expectTransferError(model.save(nodeFileSystem.saver(file)), 'SAVE_FAILED', 'exists and is not a folder');
    model.dispose();
    expect(await fs.readFile(file, 'utf8')).toBe('x');
  });
});

describe('atomicWriteFile', () => {
  it('creates, replaces, and keeps the old content on failure', async () => {
    const file = path.join(tmp, 'sub', 'state.json');
    await atomicWriteFile(file, '{"epoch":1}');
    expect(await fs.readFile(file, 'utf8')).toBe('{"epoch":1}');
    await atomicWriteFile(file, new Uint8Array([123, 125]));
    expect(await fs.readFile(file, 'utf8')).toBe('{}');
    await expectTransferError(
      atomicWriteFile(file, 'x'.repeat(1000), { __faults: { failAfterBytes: 10 } }),
      'SAVE_FAILED',
      `Could not write ${file}: the disk is full`,
      'The previous state.json is intact.',
    );
    await expectTransferError(atomicWriteFile(file, 'y', { __faults: { failAtStep: 'rename-into-place', code: 'EIO' } }), 'SAVE_FAILED', 'intact');
    expect(await fs.readFile(file, 'utf8')).toBe('{}');
    expect(await fs.readdir(path.join(tmp, 'sub'))).toEqual(['state.json']);
    await atomicWriteFile(path.join(tmp, 'bin'), new Float32Array([1, 2]).buffer);
    expect(new Float32Array((await fs.readFile(path.join(tmp, 'bin'))).buffer.slice(0))).toHaveLength(2);
  });
});
