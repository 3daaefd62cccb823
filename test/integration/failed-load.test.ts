/**
 * A load that fails frees everything it allocated (issue 17, item 3), class names are checked against the output
 * layer (item 4), and loadModel honours env.allowRemoteModels like loadBackbone. The shared 0.35 model and a saved
 * tiny model are copied to a temp folder and the copies are damaged.
 */
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attachHead, env, freeze, loadBackbone, loadModel, save, TransferError } from '../../src/index';
import { nodeFileSystem } from '../../src/node/file-io';
import { tinyBackbone } from '../helpers/tiny';

const SHARED = resolve(__dirname, '../../../shared/models/mobilenet_v2_0.35_224_no_top');
env.verbose = false;
env.fileSystem = nodeFileSystem;
let tmp = '';
let saved2 = '';
let saved3 = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tfjs-transfer-failed-load-'));
  for (const [classes, name] of [[['cat', 'dog'], 'saved2'], [['a', 'b', 'c'], 'saved3']] as const) {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: [...classes], seed: 1 });
    await save(model, join(tmp, name));
    model.dispose();
  }
  saved2 = join(tmp, 'saved2');
  saved3 = join(tmp, 'saved3');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

type Json = Record<string, any>;
type Damage = (dir: string, json: Json) => Promise<void> | void;
let copies = 0;

/** A copy of the model folder `source`, with `damage` applied (to model.json, saved afterwards, or to the files). */
async function damagedCopy(source: string, damage: Damage): Promise<string> {
  const dir = join(tmp, `copy-${copies++}`);
  await cp(source, dir, { recursive: true });
  const jsonPath = join(dir, 'model.json');
  const json = JSON.parse(await readFile(jsonPath, 'utf8')) as Json;
  await damage(dir, json);
  await writeFile(jsonPath, JSON.stringify(json));
  return dir;
}

/** The artefacts of a model folder, in memory (a handler that bypasses the file loader's own checks). */
async function inMemory(dir: string, damage: (a: tf.io.ModelArtifacts) => void): Promise<tf.io.IOHandler> {
  const artifacts = await nodeFileSystem.loader(dir).load!();
  damage(artifacts);
  return tf.io.fromMemory(artifacts);
}

function layersOf(json: Json): Json[] {
  return json.modelTopology.model_config?.config?.layers ?? json.modelTopology.config?.layers;
}

/** The first weight whose shape is not symmetric, with its dimensions reversed (same byte count, wrong shape). */
function reverseAShape(json: Json): void {
  const spec = json.weightsManifest[0].weights.find((w: Json) => w.shape.length > 1 && w.shape.join() !== [...w.shape].reverse().join());
  spec.shape = [...spec.shape].reverse();
}

/** A tiny graph model (x * w1 * w2) in memory. */
function graphArtifacts(): tf.io.ModelArtifacts {
  const f = { type: 'DT_FLOAT' };
  const constant = (name: string) => ({ name, op: 'Const', attr: { dtype: f, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '3' }] } } } } });
  const node = [
    { name: 'x', op: 'Placeholder', attr: { dtype: f, shape: { shape: { dim: [{ size: '-1' }, { size: '8' }, { size: '8' }, { size: '3' }] } } } },
    constant('w1'),
    constant('w2'),
    { name: 'm', op: 'Mul', input: ['x', 'w1'], attr: { T: f } },
    { name: 'y', op: 'Mul', input: ['m', 'w2'], attr: { T: f } },
  ];
  return {
    format: 'graph-model',
    modelTopology: { node, versions: { producer: 1 } },
    weightSpecs: [{ name: 'w1', shape: [3], dtype: 'float32' }, { name: 'w2', shape: [3], dtype: 'float32' }],
    weightData: new Float32Array([1, 2, 3, 4, 5, 6]).buffer,
  };
}

const DAMAGES: [string, Damage][] = [
  ['a first weight declared int32', (_d, j) => { j.weightsManifest[0].weights[0].dtype = 'int32'; }],
  ['a last weight declared int32', (_d, j) => { const ws = j.weightsManifest.at(-1).weights; ws.at(-1).dtype = 'int32'; }],
  ["a weight's shape that does not match its layer", (_d, j) => reverseAShape(j)],
  ['a weight the model does not have', (_d, j) => { j.weightsManifest[0].weights[0].name = 'nosuchlayer/kernel'; }],
  ['a truncated shard', async (d, j) => { await truncate(join(d, j.weightsManifest[0].paths[0]), 1000); }],
  ['an unknown layer class', (_d, j) => { layersOf(j)[3].class_name = 'EvilLayer'; }],
  ['a layer that does not build (a bad config)', (_d, j) => { const l = layersOf(j).find((x) => x.class_name === 'Conv2D')!; l.config.kernel_size = [-5, 'x']; }],
];

async function refused(run: () => Promise<{ dispose(): void }>): Promise<TransferError> {
  const error = await run().then(
    (ok) => {
      ok.dispose();
      return new Error('loaded without error');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TransferError);
  return error as TransferError;
}

/** Runs a failing load three times and returns the tensors left after each call (all 0 when nothing leaks). */
async function leaks(run: () => Promise<{ dispose(): void }>): Promise<number[]> {
  const before = tf.memory().numTensors;
  const left: number[] = [];
  for (let i = 0; i < 3; i++) {
    const error = await refused(run);
    expect(['MODEL_INVALID', 'MODEL_LOAD_FAILED']).toContain(error.code);
    left.push(tf.memory().numTensors - before);
  }
  return left;
}

describe('a failed load frees what it allocated', () => {
  for (const [name, damage] of DAMAGES) {
    it(`loadBackbone(path) and loadModel(path): ${name}`, async () => {
      const bb = await damagedCopy(SHARED, damage);
      expect(await leaks(() => loadBackbone(bb))).toEqual([0, 0, 0]);
      const tm = await damagedCopy(saved2, damage);
      expect(await leaks(() => loadModel(tm))).toEqual([0, 0, 0]);
    });
  }

  it('an int32 weight is refused before any tensor is allocated, naming the weight and what to do', async () => {
    const bb = await damagedCopy(SHARED, (_d, j) => { j.weightsManifest[0].weights[0].dtype = 'int32'; });
    const first = JSON.parse(await readFile(join(bb, 'model.json'), 'utf8')).weightsManifest[0].weights[0].name as string;
    // Every tensor the engine creates (decoded weights, variables, initial values) goes through trackTensor.
    const engine = tf.engine() as unknown as { trackTensor: (...a: unknown[]) => void };
    const track = engine.trackTensor;
    let created = 0;
    engine.trackTensor = function (this: unknown, ...a: unknown[]) {
      created++;
      return track.apply(this, a);
    };
    try {
      const error = await refused(() => loadBackbone(bb));
      expect(error.code).toBe('MODEL_INVALID');
      expect(error.message).toContain(first);
      expect(error.message).toMatch(/int32/);
      expect(error.message).toMatch(/float32/);
      expect(error.message).toMatch(/export|copy/i);
    } finally {
      engine.trackTensor = track;
    }
    expect(created).toBe(0);
  });

  it('handlers that bypass the file loader: truncated or overlong weight data, a wrong dtype', async () => {
    const cuts: [string, (a: tf.io.ModelArtifacts) => void][] = [
      ['truncated', (a) => { a.weightData = (a.weightData as ArrayBuffer).slice(0, 1000); }],
      ['overlong', (a) => { const b = new Uint8Array((a.weightData as ArrayBuffer).byteLength + 64); b.set(new Uint8Array(a.weightData as ArrayBuffer)); a.weightData = b.buffer; }],
      ['int32', (a) => { a.weightSpecs![0]!.dtype = 'int32'; }],
    ];
    for (const [, cut] of cuts) {
      const bbHandler = await inMemory(SHARED, cut);
      expect(await leaks(() => loadBackbone(bbHandler))).toEqual([0, 0, 0]);
      const tmHandler = await inMemory(saved2, cut);
      expect(await leaks(() => loadModel(tmHandler))).toEqual([0, 0, 0]);
    }
  });

  it('graph models: truncated weight data, an unsupported op', async () => {
    const good = await loadBackbone(tf.io.fromMemory(graphArtifacts()));
    expect(good.kind).toBe('graph');
    good.dispose();
    const truncated = graphArtifacts();
    truncated.weightData = (truncated.weightData as ArrayBuffer).slice(0, 16);
    const unsupported = graphArtifacts();
    (unsupported.modelTopology as Json).node[4].op = 'EvilOp';
    for (const [artifacts, message] of [[truncated, /Truncated weights/], [unsupported, /op "EvilOp".*not support/]] as const) {
      const handler = tf.io.fromMemory(artifacts);
      expect(await leaks(() => loadBackbone(handler))).toEqual([0, 0, 0]);
      expect((await refused(() => loadBackbone(handler))).message).toMatch(message);
    }
  });

  it('a head-only artefact whose backbone fails, or gives the wrong features, frees the head and the backbone', async () => {
    const headOnly = await damagedCopy(saved2, (_d, j) => {
      j.userDefinedMetadata.tfjsTransfer.contents = 'head';
    });
    const before = tf.memory().numTensors;
    const bad = await damagedCopy(SHARED, (_d, j) => { j.weightsManifest[0].weights[0].dtype = 'int32'; });
    for (const backbone of [bad, SHARED]) {
      for (let i = 0; i < 2; i++) {
        await refused(() => loadModel(headOnly, { backbone }));
        expect(tf.memory().numTensors - before).toBe(0);
      }
    }
  });

  it('the undamaged copies load, and free everything on dispose', async () => {
    const before = tf.memory().numTensors;
    (await loadBackbone(await damagedCopy(SHARED, () => undefined))).dispose();
    const m = await loadModel(await damagedCopy(saved2, () => undefined));
    expect(m.classes).toEqual(['cat', 'dog']);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a model that loads predicts exactly as the one saved (the weights are loaded, not left at their initial values)', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['a', 'b', 'c'], seed: 3 });
    const dir = join(tmp, `roundtrip-${copies++}`);
    await save(model, dir);
    const loaded = await loadModel(dir);
    const x = tf.randomUniform([2, 32, 32, 3], 0, 255, 'float32', 5);
    const [p, q] = [model.model.predict(x) as tf.Tensor, loaded.model.predict(x) as tf.Tensor];
    expect(Array.from(await q.data())).toEqual(Array.from(await p.data()));
    tf.dispose([x, p, q]);
    model.dispose();
    loaded.dispose();
  });
});

describe('class names are checked against the output layer', () => {
  const BAD: [string, string, unknown, RegExp][] = [
    ['no classes', 'saved2', [], /1 sigmoid unit.*2 classes/s],
    ['3 names on a 2-class sigmoid model', 'saved2', ['a', 'b', 'c'], /3 class names.*1 sigmoid unit.*2 classes/s],
    ['2 names on a 3-class softmax model', 'saved3', ['a', 'b'], /2 class names.*3 softmax units/s],
    ['a repeated name', 'saved2', ['a', 'a'], /"a".*twice/],
    ['an empty name', 'saved2', ['a', ''], /non-empty string/],
    ['names that are not strings', 'saved2', [1, 2], /non-empty string/],
    ['a string instead of a list', 'saved2', 'ab', /list/],
  ];
  for (const [what, source, classes, message] of BAD) {
    it(`loadModel refuses ${what}, saying where and what to do`, async () => {
      const dir = await damagedCopy(source === 'saved2' ? saved2 : saved3, (_d, j) => { j.userDefinedMetadata.tfjsTransfer.classes = classes; });
      const before = tf.memory().numTensors;
      const error = await refused(() => loadModel(dir));
      expect(error.code).toBe('MODEL_INVALID');
      expect(error.message).toMatch(message);
      expect(error.message).toContain(dir);
      expect(error.message).toMatch(/userDefinedMetadata\.tfjsTransfer\.classes/);
      expect(error.message).toMatch(/save|edit/i);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('save refuses a model whose class names do not match its output, and writes nothing', async () => {
    const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['cat', 'dog'], seed: 1 });
    try {
      for (const classes of [['a', 'b', 'c'], ['a', 'a'], []]) {
        (model as unknown as { classes: readonly string[] }).classes = classes;
        const out = join(tmp, `save-${copies++}`);
        const error = await refused(() => save(model, out).then(() => ({ dispose() {} })));
        expect(error.code).toBe('INVALID_ARGUMENT');
        await expect(readFile(join(out, 'model.json'))).rejects.toThrow(/ENOENT/);
      }
    } finally {
      model.dispose();
    }
  });
});

describe('remote models', () => {
  const allow = env.allowRemoteModels;
  const fetch = env.fetch;
  afterEach(() => {
    env.allowRemoteModels = allow;
    env.fetch = fetch;
  });
  it('loadModel over http(s) refuses when env.allowRemoteModels is false, as loadBackbone does, without fetching', async () => {
    let fetched = 0;
    env.fetch = async () => {
      fetched++;
      throw new TypeError('fetch failed');
    };
    env.allowRemoteModels = false;
    for (const load of [loadModel, loadBackbone] as ((s: string) => Promise<{ dispose(): void }>)[]) {
      const error = await refused(() => load('https://example.com/models/cats/model.json'));
      expect(error.code).toBe('NETWORK');
      expect(error.message).toMatch(/allowRemoteModels/);
      expect(error.message).toMatch(/local path/);
    }
    expect(fetched).toBe(0);
  });
});
