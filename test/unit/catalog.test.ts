import { describe, expect, it } from 'vitest';
import { env, listCatalog, loadBackbone } from '../../src/index';
import { MOBILENET_V2_ALPHAS, MOBILENET_V2_SIZES, resolveCatalogName } from '../../src/backbone/catalog';

describe('backbone catalog', () => {
  it('knows every published MobileNetV2 alpha and input size (22 models)', () => {
    const names = listCatalog().map((e) => e.name);
    expect(names).toHaveLength(4 * 5 + 2);
    for (const alpha of [0.35, 0.5, 0.75, 1.0]) {
      for (const size of MOBILENET_V2_SIZES) expect(names).toContain(`mobilenet_v2_${alpha === 1 ? '1.0' : alpha}_${size}`);
    }
    expect(names).toContain('mobilenet_v2_1.3_224');
    expect(names).toContain('mobilenet_v2_1.4_224');
    expect(MOBILENET_V2_ALPHAS).toEqual([0.35, 0.5, 0.75, 1.0, 1.3, 1.4]);
  });

  it('resolves the default to the official TF.js layers model, cut at out_relu', () => {
    const e = resolveCatalogName('mobilenet_v2')!;
    expect(e.name).toBe('mobilenet_v2_1.0_224');
    expect(e.url).toBe('https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v2_1.0_224/model.json');
    expect(e.format).toBe('layers');
    expect(e.featureLayer).toBe('out_relu');
    expect(e.featureShape).toEqual([7, 7, 1280]);
    expect(e.preprocessing).toEqual({ scale: 1 / 127.5, offset: -1 });
  });

  it('resolves 224 px alphas to the Keras no-top layers models under env.modelHost', () => {
    const e = resolveCatalogName('mobilenet_v2_0.35_224')!;
    expect(e.url).toBe(`${env.modelHost}mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top/model.json`);
    expect(resolveCatalogName('mobilenet_v2_0.5')!.url).toContain('kernels_0.50_224_no_top');
    const saved = env.modelHost;
    env.modelHost = 'http://127.0.0.1:9/mirror/';
    try {
      expect(resolveCatalogName('mobilenet_v2_0.75_224')!.url).toBe('http://127.0.0.1:9/mirror/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.75_224_no_top/model.json');
    } finally {
      env.modelHost = saved;
    }
  });

  it('resolves other sizes and the wide alphas to the TF Hub feature-vector graph models', () => {
    const e = resolveCatalogName('mobilenet_v2_0.5_160')!;
    expect(e.format).toBe('graph');
    expect(e.fromTFHub).toBe(true);
    expect(e.url).toBe('https://tfhub.dev/google/tfjs-model/imagenet/mobilenet_v2_050_160/feature_vector/3/default/1');
    expect(e.featureShape).toEqual([1280]);
    const wide = resolveCatalogName('mobilenetv2_1.4_224')!;
    expect(wide.url).toContain('mobilenet_v2_140_224');
    expect(wide.featureShape).toEqual([1792]);
    expect(resolveCatalogName('mobilenet_v2_1.3_224')!.featureShape).toEqual([1664]);
  });

  it('says what exists for a wrong name, and treats non-catalog strings as URLs or paths', () => {
    expect(() => resolveCatalogName('mobilenet_v2_0.6_224')).toThrow(/alpha 0.35, 0.5, 0.75, 1, 1.3, 1.4/);
    expect(() => resolveCatalogName('mobilenet_v2_1.0_100')).toThrow(/input sizes 96, 128, 160, 192, 224/);
    expect(() => resolveCatalogName('mobilenetv3')).toThrow(/Unknown backbone/);
    expect(resolveCatalogName('https://example.com/model.json')).toBeUndefined();
    expect(resolveCatalogName('./model.json')).toBeUndefined();
  });

  it('refuses to download when remote models are disabled, naming the URL', async () => {
    env.allowRemoteModels = false;
    try {
      await expect(loadBackbone('mobilenet_v2_0.35_224')).rejects.toThrow(/would be downloaded from https:\/\/storage.googleapis.com.*allowRemoteModels is false/);
    } finally {
      env.allowRemoteModels = true;
    }
  });

  it('reports a network failure clearly (no network here: a refused local port stands in)', async () => {
    const saved = env.modelHost;
    env.modelHost = 'http://127.0.0.1:9/';
    env.verbose = false;
    try {
      await expect(loadBackbone('mobilenet_v2_0.35_224')).rejects.toMatchObject({ code: 'NETWORK' });
      await expect(loadBackbone('mobilenet_v2_0.35_224')).rejects.toThrow(/Check the network.*local path/);
    } finally {
      env.modelHost = saved;
    }
  });
});
