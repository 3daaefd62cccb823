/**
 * The catalog of pretrained backbones that `loadBackbone` accepts by name.
 * @module
 */
import { env } from '../env';
import { TransferError } from '../errors';
import type { Preprocessing } from '../types';

/**
 * MobileNetV2 width multipliers published by Keras Applications / TF Hub.
 * @category Step 3: Compose
 */
export const MOBILENET_V2_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] as const;
/**
 * MobileNetV2 input sizes published for alphas up to 1.0 (1.3 and 1.4 were published at 224 only).
 * @category Step 3: Compose
 */
export const MOBILENET_V2_SIZES = [96, 128, 160, 192, 224] as const;

/**
 * A resolved catalog entry: where the weights are and how to use them.
 * @category Step 3: Compose
 */
export interface CatalogEntry {
  /** Canonical name, e.g. `"mobilenet_v2_1.0_224"`. */
  name: string;
  /** Model family. */
  family: 'mobilenet_v2';
  /** Width multiplier. */
  alpha: number;
  /** Input size (square) the published weights were trained at. */
  inputSize: number;
  /** URL of the `model.json`. */
  url: string;
  /** `layers` (fine-tunable tfjs-layers model) or `graph` (TF Hub graph model, frozen). */
  format: 'layers' | 'graph';
  /** Whether `url` is a TF Hub handle (tfjs appends `model.json?tfjs-format=file`). */
  fromTFHub: boolean;
  /** The feature layer (layers models); `''` for graph models, whose output is the feature vector. */
  featureLayer: string;
  /** Shape of the features at `featureLayer` for the default input size. */
  featureShape: number[];
  /** Pixel preprocessing the weights expect. */
  preprocessing: Preprocessing;
}

/**
 * MobileNetV2 preprocessing: pixels to [-1, 1], as `keras.applications.mobilenet_v2.preprocess_input`.
 * @category Step 3: Compose
 */
export const MOBILENET_V2_PREPROCESSING: Preprocessing = { scale: 1 / 127.5, offset: -1 };

const TFJS_MODELS_MOBILENET_V2_1_224 = 'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v2_1.0_224/model.json';

function alphaText(alpha: number): string {
  return alpha === 1 ? '1.0' : String(alpha);
}

function featureChannels(alpha: number): number {
  // Keras: the last conv has 1280 channels, or int(1280 * alpha) when alpha > 1.
  return alpha > 1 ? Math.floor(1280 * alpha) : 1280;
}

/**
 * Every MobileNetV2 name the catalog knows, e.g. `mobilenet_v2_0.35_96` ... `mobilenet_v2_1.4_224`.
 *
 * @example
 * ```ts
 * listCatalog().map((e) => e.name); // ['mobilenet_v2_0.35_96', ..., 'mobilenet_v2_1.4_224']
 * ```
 * @category Step 3: Compose
 */
export function listCatalog(): CatalogEntry[] {
  const entries: CatalogEntry[] = [];
  for (const alpha of MOBILENET_V2_ALPHAS) {
    const sizes = alpha > 1 ? [224] : MOBILENET_V2_SIZES;
    for (const size of sizes) entries.push(resolveMobileNetV2(alpha, size));
  }
  return entries;
}

function resolveMobileNetV2(alpha: number, size: number): CatalogEntry {
  const name = `mobilenet_v2_${alphaText(alpha)}_${size}`;
  const common = {
    name,
    family: 'mobilenet_v2' as const,
    alpha,
    inputSize: size,
    preprocessing: MOBILENET_V2_PREPROCESSING,
  };
  if (alpha === 1 && size === 224) {
    // The official TF.js layers model (with its ImageNet top); we cut it at the bottleneck.
    return { ...common, url: TFJS_MODELS_MOBILENET_V2_1_224, format: 'layers', fromTFHub: false, featureLayer: 'out_relu', featureShape: [7, 7, 1280] };
  }
  if (size === 224 && alpha <= 1) {
    // Keras Applications' no-top weights as TF.js layers models, hosted for Teachable Machine.
    const a = alpha.toFixed(2);
    return {
      ...common,
      url: `${env.modelHost}mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${a}_224_no_top/model.json`,
      format: 'layers',
      fromTFHub: false,
      featureLayer: 'out_relu',
      featureShape: [7, 7, featureChannels(alpha)],
    };
  }
  // Every other published alpha/size: Google's TF Hub TF.js feature-vector graph models (pooled features).
  const hubAlpha = String(Math.round(alpha * 100)).padStart(3, '0');
  return {
    ...common,
    url: `https://tfhub.dev/google/tfjs-model/imagenet/mobilenet_v2_${hubAlpha}_${size}/feature_vector/3/default/1`,
    format: 'graph',
    fromTFHub: true,
    featureLayer: '',
    featureShape: [featureChannels(alpha)],
  };
}

const NAME_RE = /^mobilenet_?v2(?:[_-](\d+(?:\.\d+)?))?(?:[_-](\d+))?$/i;

/**
 * Resolves a catalog name to its entry. Accepts `mobilenet_v2` (alpha 1.0, 224), `mobilenet_v2_0.35`,
 * `mobilenet_v2_0.35_160`, `mobilenetv2_1.4_224`; alpha and size must be a published pair.
 * Returns `undefined` for a string that is not catalog-shaped (it may be a URL or a path).
 *
 * @example
 * ```ts
 * resolveCatalogName('mobilenet_v2_0.5_160')!.url;
 * ```
 * @category Step 3: Compose
 */
export function resolveCatalogName(name: string): CatalogEntry | undefined {
  const m = NAME_RE.exec(name.trim());
  if (!m) {
    if (/^mobile_?net/i.test(name.trim())) throw unknown(name);
    return undefined;
  }
  const alpha = m[1] === undefined ? 1 : Number(m[1]);
  const size = m[2] === undefined ? 224 : Number(m[2]);
  const alphaOk = (MOBILENET_V2_ALPHAS as readonly number[]).includes(alpha);
  const sizeOk = alpha > 1 ? size === 224 : (MOBILENET_V2_SIZES as readonly number[]).includes(size);
  if (!alphaOk || !sizeOk) throw unknown(name);
  return resolveMobileNetV2(alpha, size);
}

function unknown(name: string): TransferError {
  return new TransferError(
    'UNKNOWN_BACKBONE',
    `Unknown backbone "${name}". The catalog has MobileNetV2 with alpha ${MOBILENET_V2_ALPHAS.join(', ')} ` +
      `at input sizes ${MOBILENET_V2_SIZES.join(', ')} (alpha 1.3 and 1.4 at 224 only), named like ` +
      `"mobilenet_v2_1.0_224" or "mobilenet_v2_0.35_160". For another model pass a URL or path to its model.json, ` +
      `a tf.io.IOHandler, a loaded tf.LayersModel / tf.GraphModel, or a function.`,
  );
}

/**
 * The catalog backbone `transferLearn` and the CLI's `train` use when none is given. (`TRANSFER_LEARN_DEFAULTS`
 * in src/transfer-learn.ts names it too.)
 * @internal
 */
export const DEFAULT_BACKBONE_NAME = 'mobilenet_v2_1.0_224';

/**
 * What to do when a backbone cannot be downloaded (offline, firewalled, host down): where it comes from, and how
 * to use a local copy through the `backbone` option of `loadBackbone` / `transferLearn` or the CLI's `--backbone`.
 * `entry` is the catalog entry when the backbone was named from the catalog; `url` is where it was fetched from.
 *
 * @example
 * ```ts
 * const entry = resolveCatalogName('mobilenet_v2_1.0_224')!;
 * console.log(backboneOfflineHint(entry.url, entry));
 * ```
 * @internal
 */
export function backboneOfflineHint(url: string, entry?: CatalogEntry): string {
  const folder = `./models/${entry?.name ?? 'my-backbone'}`;
  const origin = entry
    ? `"${entry.name}" is a catalog backbone${entry.name === DEFAULT_BACKBONE_NAME ? " (the default of transferLearn and of 'tfjs-transfer train' when no backbone is given)" : ''}, ` +
      `downloaded from ${url}${url.startsWith(env.modelHost) ? ` (env.modelHost "${env.modelHost}" + its folder name)` : ''}.`
    : `The backbone is downloaded from ${url}.`;
  const mirror = entry && url.startsWith(env.modelHost) ? ' Or set env.modelHost to a mirror that holds the same folders.' : '';
  return (
    `${origin} Check the network, or use a local copy: download its model.json and weight shards once (on a machine ` +
    `with network access), then pass the local path of the copy (its model.json or the folder holding it) as the backbone: ` +
    `loadBackbone('${folder}'), transferLearn(data, { backbone: '${folder}' }), or --backbone ${folder} on the ` +
    `command line.${mirror}`
  );
}
