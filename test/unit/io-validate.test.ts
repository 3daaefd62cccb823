import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransferError } from '../../src/errors.js';
import {
  checkWeightData,
  checkWeightSpecs,
  DEFAULT_MAX_WEIGHT_BYTES,
  shardPathProblem,
  validateModelArtifacts,
} from '../../src/artifacts/validate.js';

const WHERE = '/models/test/model.json';

/** A minimal valid layers model.json. */
function model(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 'layers-model',
    generatedBy: 'test',
    convertedBy: null,
    modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [] } },
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'dense/kernel', shape: [3, 2], dtype: 'float32' },
          { name: 'dense/bias', shape: [2], dtype: 'float32' },
        ],
      },
    ],
    ...overrides,
  };
}

function withWeights(weights: unknown[], paths: unknown[] = ['w.bin']): Record<string, unknown> {
  return model({ weightsManifest: [{ paths, weights }] });
}

function expectInvalid(json: unknown, ...fragments: (string | RegExp)[]): TransferError {
  let caught: unknown;
  try {
    validateModelArtifacts(json, WHERE);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(TransferError);
  const error = caught as TransferError;
  expect(error.code).toBe('MODEL_INVALID');
  expect(error.message).toContain(WHERE);
  for (const fragment of fragments) {
    if (typeof fragment === 'string') expect(error.message).toContain(fragment);
    else expect(error.message).toMatch(fragment);
  }
  return error;
}

let baseline = 0;
beforeEach(() => {
  baseline = tf.memory().numTensors;
});
afterEach(() => {
  expect(tf.memory().numTensors).toBe(baseline);
});

describe('validateModelArtifacts: valid input', () => {
  it('computes group and total bytes', () => {
    const result = validateModelArtifacts(model(), WHERE);
    expect(result.format).toBe('layers-model');
    expect(result.totalBytes).toBe((6 + 2) * 4);
    expect(result.exact).toBe(true);
    expect(result.groups).toEqual([{ paths: ['group1-shard1of1.bin'], bytes: 32, exact: true }]);
    expect(result.weightSpecs.map((s) => s.name)).toEqual(['dense/kernel', 'dense/bias']);
  });

  it('accounts for every dtype and quantization', () => {
    const result = validateModelArtifacts(
      withWeights([
        { name: 'f', shape: [10], dtype: 'float32' },
        { name: 'i', shape: [10], dtype: 'int32' },
        { name: 'b', shape: [10], dtype: 'bool' },
        { name: 'c', shape: [10], dtype: 'complex64' },
        { name: 'q8', shape: [10], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.1, min: -1 } },
        { name: 'q16', shape: [10], dtype: 'int32', quantization: { dtype: 'uint16', scale: 1, min: 0 } },
        { name: 'h', shape: [10], dtype: 'float32', quantization: { dtype: 'float16' } },
        { name: 'scalar', shape: [], dtype: 'float32' },
        { name: 'empty', shape: [0, 5], dtype: 'float32' },
      ]),
      WHERE,
    );
    expect(result.totalBytes).toBe(40 + 40 + 10 + 80 + 10 + 20 + 20 + 4 + 0);
    expect(result.exact).toBe(true);
  });

  it('treats string weights as a lower bound', () => {
    const result = validateModelArtifacts(withWeights([{ name: 's', shape: [3], dtype: 'string' }]), WHERE);
    expect(result.totalBytes).toBe(12);
    expect(result.exact).toBe(false);
    expect(result.groups[0].exact).toBe(false);
  });

  it('infers the format when model.json has none', () => {
    expect(validateModelArtifacts(model({ format: undefined }), WHERE).format).toBe('layers-model');
    const graph = model({ format: undefined, modelTopology: { node: [], versions: {} } });
    expect(validateModelArtifacts(graph, WHERE).format).toBe('graph-model');
    expect(validateModelArtifacts(model({ format: 'graph-model' }), WHERE).format).toBe('graph-model');
  });

  it('accepts the real shared models', async () => {
    const { readFile } = await import('node:fs/promises');
    const q = JSON.parse(await readFile('../shared/models/mobilenet_v2_1.0_224/model.json', 'utf8'));
    const rq = validateModelArtifacts(q, 'mobilenet_v2_1.0_224');
    const { statSync } = await import('node:fs');
    expect(rq.totalBytes).toBe(statSync('../shared/models/mobilenet_v2_1.0_224/group1-shard1of1.bin').size);
    const n = JSON.parse(await readFile('../shared/models/mobilenet_v2_0.35_224_no_top/model.json', 'utf8'));
    const rn = validateModelArtifacts(n, 'mobilenet_v2_0.35');
    expect(rn.totalBytes).toBe(statSync('../shared/models/mobilenet_v2_0.35_224_no_top/weights.bin').size);
  });

  it('accepts a topology-only model.json only when asked', () => {
    expectInvalid(model({ weightsManifest: undefined }), '"weightsManifest" is missing');
    const result = validateModelArtifacts(model({ weightsManifest: undefined }), WHERE, { allowMissingWeights: true });
    expect(result.totalBytes).toBe(0);
  });
});

describe('validateModelArtifacts: hostile model.json', () => {
  it('refuses non-objects', () => {
    expectInvalid(null, 'must hold a JSON object, found null');
    expectInvalid([1, 2], 'found an array');
    expectInvalid('model', 'found the string "model"');
  });

  it('refuses a missing or non-object topology', () => {
    expectInvalid(model({ modelTopology: undefined }), '"modelTopology" is missing');
    expectInvalid(model({ modelTopology: 'Sequential' }), '"modelTopology" must be an object, found the string "Sequential"');
    expectInvalid(model({ modelTopology: [1] }), '"modelTopology" must be an object, found an array');
    expectInvalid(model({ modelTopology: 42 }), '"modelTopology" must be an object, found number 42');
  });

  it('refuses an unknown format', () => {
    expectInvalid(model({ format: 'saved-model' }), '"format" is the string "saved-model"', '"layers-model" or "graph-model"');
    expectInvalid(model({ format: undefined, modelTopology: { foo: 1 } }), '"format" is missing');
  });

  it('refuses a wrong manifest', () => {
    expectInvalid(model({ weightsManifest: { paths: ['a.bin'] } }), '"weightsManifest" must be an array of groups');
    expectInvalid(model({ weightsManifest: ['a.bin'] }), 'weightsManifest[0] must be an object');
    expectInvalid(model({ weightsManifest: [{ weights: [] }] }), 'weightsManifest[0].paths must be an array');
    expectInvalid(model({ weightsManifest: [{ paths: [], weights: {} }] }), 'weightsManifest[0].weights must be an array');
    expectInvalid(model({ weightsManifest: [{ paths: [7], weights: [] }] }), 'weightsManifest[0].paths[0] must be a string, found number 7');
    expectInvalid(withWeights([{ name: 'a', shape: [2], dtype: 'float32' }], []), 'weightsManifest[0] describes 8 B of weights but lists no shard paths');
    expectInvalid(model({ weightsManifest: [{ paths: ['a.bin'], weights: [] }, { paths: ['a.bin'], weights: [] }] }), 'weightsManifest[1].paths[0] "a.bin" is listed twice');
  });

  it('refuses bad names, shapes and negative dimensions', () => {
    expectInvalid(withWeights([{ shape: [2], dtype: 'float32' }]), 'weightsManifest[0].weights[0].name must be a non-empty string, found undefined');
    expectInvalid(withWeights(['dense/kernel']), 'weightsManifest[0].weights[0] must be an object');
    expectInvalid(withWeights([{ name: 'k', shape: 3, dtype: 'float32' }]), 'weightsManifest[0].weights[0] ("k").shape must be an array');
    expectInvalid(withWeights([{ name: 'k', shape: [3, -1], dtype: 'float32' }]), '("k").shape[1] is number -1', 'non-negative integers', '[3,-1]');
    expectInvalid(withWeights([{ name: 'k', shape: [2.5], dtype: 'float32' }]), '("k").shape[0] is number 2.5');
    expectInvalid(withWeights([{ name: 'k', shape: ['3'], dtype: 'float32' }]), '("k").shape[0] is the string "3"');
    expectInvalid(withWeights([{ name: 'k', shape: [null], dtype: 'float32' }]), '("k").shape[0] is null');
  });

  it('refuses unknown dtypes and bad quantization', () => {
    expectInvalid(withWeights([{ name: 'k', shape: [2], dtype: 'float64' }]), '("k").dtype is the string "float64"', 'float32, int32, bool, string, complex64');
    expectInvalid(withWeights([{ name: 'k', shape: [2], dtype: 'float32', quantization: { dtype: 'int4' } }]), '("k").quantization.dtype is the string "int4"', 'uint8, uint16 or float16');
    expectInvalid(withWeights([{ name: 'k', shape: [2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1 } }]), '("k").quantization.min is undefined', 'finite "scale" and "min"');
    expectInvalid(withWeights([{ name: 'k', shape: [2], dtype: 'int32', quantization: { dtype: 'float16' } }]), 'float16 quantization applies to float32 weights only');
    expectInvalid(withWeights([{ name: 'k', shape: [2], dtype: 'bool', quantization: { dtype: 'uint8', scale: 1, min: 0 } }]), 'uint8 quantization applies to float32 or int32');
    expectInvalid(withWeights([{ name: 'k', shape: [2], dtype: 'float32', quantization: 'uint8' }]), '("k").quantization must be an object');
    expectInvalid(withWeights([{ name: 'k', shape: [2], dtype: 'float32', group: 'cache' }]), '("k").group is the string "cache"');
  });

  it('refuses duplicate weight names, across groups too', () => {
    expectInvalid(
      withWeights([
        { name: 'k', shape: [2], dtype: 'float32' },
        { name: 'k', shape: [2], dtype: 'float32' },
      ]),
      'weightsManifest[0].weights[1] ("k"): duplicate weight name, already used by weightsManifest[0].weights[0]',
    );
    expectInvalid(
      model({
        weightsManifest: [
          { paths: ['a.bin'], weights: [{ name: 'k', shape: [1], dtype: 'float32' }] },
          { paths: ['b.bin'], weights: [{ name: 'k', shape: [1], dtype: 'float32' }] },
        ],
      }),
      'weightsManifest[1].weights[0] ("k"): duplicate weight name',
    );
  });

  it('refuses absurd sizes, with a configurable limit', () => {
    expectInvalid(withWeights([{ name: 'huge', shape: [1e6, 1e6], dtype: 'float32' }]), '("huge") with shape [1000000,1000000]', 'limit of 2.00 GiB', 'maxTotalBytes');
    expectInvalid(withWeights([{ name: 'inf', shape: [1e300, 1e300], dtype: 'float32' }]), 'unrepresentable number of bytes');
    // Each weight fine, the sum too large.
    const half = DEFAULT_MAX_WEIGHT_BYTES / 4 / 2;
    expectInvalid(
      withWeights([
        { name: 'a', shape: [half], dtype: 'float32' },
        { name: 'b', shape: [half], dtype: 'float32' },
        { name: 'c', shape: [1], dtype: 'float32' },
      ]),
      '("c")',
    );
    expect(() => validateModelArtifacts(model(), WHERE, { maxTotalBytes: 31 })).toThrow(/more than the limit of 31 B/);
    expect(validateModelArtifacts(model(), WHERE, { maxTotalBytes: 32 }).totalBytes).toBe(32);
    expect(() => validateModelArtifacts(model(), WHERE, { maxTotalBytes: -1 })).toThrow(TransferError);
  });

  it('refuses shard paths that escape the folder', () => {
    expectInvalid(withWeights([], ['../secret.bin']), 'weightsManifest[0].paths[0] "../secret.bin" contains ".."');
    expectInvalid(withWeights([], ['sub/../../x.bin']), 'contains ".."');
    expectInvalid(withWeights([], ['..\\x.bin']), 'contains ".."');
    expectInvalid(withWeights([], ['/etc/passwd']), '"/etc/passwd" is an absolute path');
    expectInvalid(withWeights([], ['C:\\weights.bin']), 'absolute Windows path');
    expectInvalid(withWeights([], ['\\\\server\\share\\w.bin']), 'absolute path');
    expectInvalid(withWeights([], ['https://evil.example.com/w.bin']), 'is a URL (scheme "https:")');
    expectInvalid(withWeights([], ['file:///etc/passwd']), 'is a URL (scheme "file:")');
    expectInvalid(withWeights([], ['']), 'weightsManifest[0].paths[0] "" is empty');
    expectInvalid(withWeights([], ['a\0.bin']), 'NUL byte');
  });

  it('allows http(s) shard URLs only when asked', () => {
    const json = withWeights([], ['https://cdn.example.com/w.bin']);
    expect(validateModelArtifacts(json, WHERE, { allowUrlPaths: true }).groups[0].paths).toEqual(['https://cdn.example.com/w.bin']);
    expect(shardPathProblem('file:///etc/passwd', true)).toMatch(/URL/);
    expect(shardPathProblem('sub/dir/w.bin', false)).toBeUndefined();
    expect(shardPathProblem('..weights.bin', false)).toBeUndefined();
  });

  it('refuses non-object metadata', () => {
    expectInvalid(model({ userDefinedMetadata: 'x' }), '"userDefinedMetadata" must be an object');
  });
});

describe('checkWeightData', () => {
  it('accepts the exact size', () => {
    expect(() => checkWeightData(100, 100, 'w.bin')).not.toThrow();
  });

  it('refuses truncated data', () => {
    expect(() => checkWeightData(100, 60, 'w.bin')).toThrow(/Truncated weights at w\.bin: the manifest describes 100 bytes but only 60 \(40 missing\)/);
    try {
      checkWeightData(100, 60, 'w.bin');
    } catch (error) {
      expect((error as TransferError).code).toBe('MODEL_INVALID');
    }
  });

  it('refuses overlong data', () => {
    expect(() => checkWeightData(100, 120, 'w.bin')).toThrow(/longer than their manifest: expected 100 bytes, found 120 \(20 extra\)/);
  });

  it('treats a non-exact size as a lower bound', () => {
    expect(() => checkWeightData(12, 40, 'w.bin', false)).not.toThrow();
    expect(() => checkWeightData(12, 8, 'w.bin', false)).toThrow(/12 bytes or more/);
  });
});

describe('checkWeightSpecs (the weight specs of any IOHandler, checked before decoding)', () => {
  it('returns the bytes the weight data must hold', () => {
    expect(checkWeightSpecs([{ name: 'k', shape: [3, 2], dtype: 'float32' }, { name: 'q', shape: [4], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1, min: 0 } }], 'IOHandler')).toEqual({ bytes: 28, exact: true });
    expect(checkWeightSpecs([{ name: 's', shape: [2], dtype: 'string' }], 'IOHandler')).toEqual({ bytes: 8, exact: false });
    expect(checkWeightSpecs([], 'IOHandler')).toEqual({ bytes: 0, exact: true });
  });

  it.each([
    ['not a list', { name: 'k' }, /weight specs must be an array/],
    ['an unknown dtype', [{ name: 'k', shape: [1], dtype: 'float128' }], /weightSpecs\[0\] \("k"\)\.dtype.*float128/],
    ['a negative dimension', [{ name: 'k', shape: [-1], dtype: 'float32' }], /shape\[0\]/],
    ['a duplicate name', [{ name: 'k', shape: [1], dtype: 'float32' }, { name: 'k', shape: [1], dtype: 'float32' }], /duplicate weight name/],
    ['an absurd size', [{ name: 'k', shape: [1e9, 1e9], dtype: 'float32' }], /limit/],
  ])('refuses %s, naming the handler', (_what, specs, message) => {
    expect(() => checkWeightSpecs(specs, 'IOHandler')).toThrow(message);
    try {
      checkWeightSpecs(specs, 'IOHandler');
    } catch (e) {
      expect((e as TransferError).code).toBe('MODEL_INVALID');
      expect((e as Error).message).toContain('IOHandler');
    }
  });
});
