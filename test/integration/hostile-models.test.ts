/**
 * Damaged and hostile model folders reach the user as TransferError with a clear message, through the public
 * entry points loadBackbone(path) and loadModel(path) (the validators themselves are tested in io-validate and
 * node-file-io). The shared models are copied into a temp folder and the copy is damaged.
 */
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachHead, env, freeze, loadBackbone, loadModel, save, TransferError } from '../../src/index';
import { nodeFileSystem } from '../../src/node/file-io';
import { tinyBackbone } from '../helpers/tiny';

const SHARED = resolve(__dirname, '../../../shared/models/mobilenet_v2_0.35_224_no_top');
env.verbose = false;
env.fileSystem = nodeFileSystem;
let tmp = '';
let savedModel = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tfjs-transfer-hostile-'));
  const model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: ['cat', 'dog'], seed: 1 });
  savedModel = join(tmp, 'saved');
  await save(model, savedModel);
  model.dispose();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

type Damage = (dir: string, json: Record<string, any>) => Promise<Record<string, any> | void>;

/** The damages, each with the codes and the message it must produce. */
const DAMAGES: [string, Damage, RegExp][] = [
  ['a manifest listing a missing shard', async (_d, j) => { j.weightsManifest[0].paths = ['group9-shard1of1.bin']; return j; }, /Missing weight shard.*group9-shard1of1\.bin.*copy every file/s],
  ['a truncated shard', async (d, j) => { await truncate(join(d, j.weightsManifest[0].paths[0]), 1000); }, /weight|shard|bytes/i],
  ['a shard with extra bytes', async (d, j) => { const p = join(d, j.weightsManifest[0].paths[0]); await writeFile(p, Buffer.concat([await readFile(p), Buffer.alloc(4096)])); }, /weight|shard|bytes/i],
  ['an unknown layer class', async (_d, j) => {
    const layers = j.modelTopology.model_config?.config?.layers ?? j.modelTopology.config?.layers;
    layers[3].class_name = 'EvilLayer';
    return j;
  }, /EvilLayer/],
  ['an absurd weight shape', async (_d, j) => { j.weightsManifest[0].weights[0].shape = [1e9, 1e9, 3, 3]; return j; }, /shape|size|bytes|large/i],
  ['a negative weight dimension', async (_d, j) => { j.weightsManifest[0].weights[0].shape = [-3, 3, 3, 8]; return j; }, /shape|dimension|invalid/i],
  ['an unknown dtype', async (_d, j) => { j.weightsManifest[0].weights[0].dtype = 'float128'; return j; }, /dtype|float128/i],
  ['a shard path escaping the folder', async (_d, j) => { j.weightsManifest[0].paths = ['../../../etc/passwd']; return j; }, /outside the model's folder|Refusing/],
  ['an absolute shard path', async (_d, j) => { j.weightsManifest[0].paths = ['/etc/passwd']; return j; }, /outside the model's folder|Refusing|absolute/i],
  ['a missing modelTopology', async (_d, j) => { delete j.modelTopology; return j; }, /topology/i],
  ['a manifest that is not a list', async (_d, j) => { j.weightsManifest = { paths: 'x' }; return j; }, /weightsManifest|manifest/i],
];

async function damagedCopy(source: string, name: string, damage: Damage): Promise<string> {
  const dir = join(tmp, name.replace(/\W+/g, '-'));
  await cp(source, dir, { recursive: true });
  const jsonPath = join(dir, 'model.json');
  const json = JSON.parse(await readFile(jsonPath, 'utf8'));
  const changed = await damage(dir, json);
  if (changed) await writeFile(jsonPath, JSON.stringify(changed));
  return dir;
}

async function expectClearError(run: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await run.then(
    (ok) => {
      (ok as { dispose?: () => void })?.dispose?.();
      return new Error('loaded without error');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TransferError);
  expect(['MODEL_INVALID', 'MODEL_LOAD_FAILED']).toContain((error as TransferError).code);
  expect((error as Error).message).toMatch(message);
}

describe('hostile model folders through the public API', () => {
  for (const [name, damage, message] of DAMAGES) {
    it(`loadBackbone(path) and loadModel(path) refuse ${name}`, async () => {
      const before = tf.memory().numTensors;
      await expectClearError(loadBackbone(await damagedCopy(SHARED, `bb-${name}`, damage)), message);
      await expectClearError(loadModel(await damagedCopy(savedModel, `tm-${name}`, damage)), message);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('refuses a model.json that is not JSON, and a folder without one', async () => {
    for (const source of [SHARED, savedModel]) {
      const dir = await damagedCopy(source, `notjson-${source.length}`, async () => undefined);
      await writeFile(join(dir, 'model.json'), '{"modelTopology": {"class_name": "Model", ');
      await expectClearError(loadBackbone(dir), /not valid JSON.*truncated/s);
      await expectClearError(loadModel(dir), /not valid JSON.*truncated/s);
    }
    await expectClearError(loadBackbone(tmp), /has no model\.json/);
    await expectClearError(loadModel(join(tmp, 'nowhere')), /No model at .*does not exist/);
  });

  it('the undamaged copies load (the damages above are the only cause)', async () => {
    const bb = await loadBackbone(await damagedCopy(SHARED, 'intact-bb', async () => undefined));
    bb.dispose();
    const m = await loadModel(await damagedCopy(savedModel, 'intact-tm', async () => undefined));
    expect(m.classes).toEqual(['cat', 'dog']);
    m.dispose();
  });
});
