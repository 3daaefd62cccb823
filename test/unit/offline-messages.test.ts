/**
 * Offline, loading a backbone says what to do (issue 17, item 12): where the backbone comes from, and how to use a
 * local copy through the backbone option of loadBackbone / transferLearn or the CLI's --backbone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolveCatalogName } from '../../src/backbone/catalog';
import { env, loadBackbone, TransferError } from '../../src/index';

const saved = { fetch: env.fetch, modelHost: env.modelHost, allow: env.allowRemoteModels };
afterEach(() => {
  env.fetch = saved.fetch;
  env.modelHost = saved.modelHost;
  env.allowRemoteModels = saved.allow;
});

/** A fetch that fails as Node's does on a machine without network. */
function offline(): string[] {
  const urls: string[] = [];
  env.fetch = async (input) => {
    urls.push(String(input));
    throw new TypeError('fetch failed', { cause: new Error('getaddrinfo ENOTFOUND storage.googleapis.com') });
  };
  return urls;
}

async function refusal(source: string): Promise<TransferError> {
  const error = await loadBackbone(source).then(
    (b) => {
      b.dispose();
      return new Error('loaded');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TransferError);
  return error as TransferError;
}

const LOCAL_COPY = [
  /local copy/,
  /model\.json or the folder holding it/,
  /loadBackbone\('\.\/models\//,
  /transferLearn\(data, \{ backbone: '\.\/models\//,
  /--backbone \.\/models\//,
];

describe('offline backbone messages', () => {
  it('the default backbone: says it is the default, where it comes from, and how to use a local copy', async () => {
    const urls = offline();
    const error = await refusal('mobilenet_v2_1.0_224');
    expect(error.code).toBe('NETWORK');
    const url = resolveCatalogName('mobilenet_v2_1.0_224')!.url;
    expect(urls[0]).toBe(url);
    expect(error.message).toContain('fetch failed');
    expect(error.message).toContain(url);
    expect(error.message).toMatch(/default of transferLearn and of 'tfjs-transfer train'/);
    for (const re of LOCAL_COPY) expect(error.message).toMatch(re);
    expect(error.message).toContain('./models/mobilenet_v2_1.0_224');
  });

  it('a catalog backbone hosted at env.modelHost: names env.modelHost as well', async () => {
    offline();
    env.modelHost = 'https://mirror.example.com/models/';
    const error = await refusal('mobilenet_v2_0.35_224');
    expect(error.code).toBe('NETWORK');
    expect(error.message).toContain('https://mirror.example.com/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top/model.json');
    expect(error.message).toMatch(/env\.modelHost "https:\/\/mirror\.example\.com\/models\/"/);
    expect(error.message).toMatch(/set env\.modelHost to a mirror/);
    for (const re of LOCAL_COPY) expect(error.message).toMatch(re);
  });

  it('a backbone URL: how to use a local copy instead', async () => {
    offline();
    const error = await refusal('https://models.example.com/resnet/model.json');
    expect(error.code).toBe('NETWORK');
    for (const re of LOCAL_COPY) expect(error.message).toMatch(re);
    expect(error.message).not.toMatch(/catalog backbone/);
  });

  it('remote models disabled: names the backbone option and --backbone', async () => {
    env.allowRemoteModels = false;
    for (const source of ['mobilenet_v2_1.0_224', 'https://models.example.com/resnet/model.json']) {
      const error = await refusal(source);
      expect(error.code).toBe('NETWORK');
      expect(error.message).toMatch(/allowRemoteModels/);
      expect(error.message).toMatch(/transferLearn/);
      expect(error.message).toMatch(/--backbone/);
    }
  });
});
