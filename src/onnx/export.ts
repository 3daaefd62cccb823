/**
 * `exportOnnx`: a trained {@link TransferModel} as one ONNX file, preprocessing included (raw RGB pixels in,
 * class probabilities out), for onnxruntime (Node, browser, Python, C++, mobile). Browser-safe: it returns the
 * bytes, and writes them to a path through `env.fileSystem` (installed by `tfjs-transfer/node`).
 * @module
 */
import { foldModel } from '../backbone/fold';
import { env } from '../env';
import { TransferError, check, throwIfAborted } from '../errors';
import { TransferModel } from '../transfer-model';
import { withDefaults } from '../util/args';
import { isLocalPath } from '../util/location';
import { VERSION } from '../util/version';
import { Converter } from './convert';
import { OnnxGraph } from './graph';


/**
 * Defaults of {@link ExportOnnxArgs}.
 * @category Save and load
 */
export const EXPORT_ONNX_DEFAULTS = Object.freeze({
  /** Name of the graph's input. */
  inputName: 'images',
  /** Name of the graph's output. */
  outputName: 'probabilities',
  /** ONNX operator set of the file (13 runs on onnxruntime 1.8 and later, onnxruntime-web included). */
  opset: 13,
});

/**
 * Options of {@link exportOnnx}.
 * @category Save and load
 */
export interface ExportOnnxArgs {
  /**
   * Name of the graph's input: float32 `[batch, height, width, 3]`, raw RGB pixels in 0..255 (NHWC, as in tfjs).
   * @defaultValue `EXPORT_ONNX_DEFAULTS.inputName` (`'images'`)
   */
  inputName?: string;
  /**
   * Name of the graph's output: float32 `[batch, numClasses]` class probabilities (two columns for two classes,
   * as `predictProbabilities` returns).
   * @defaultValue `EXPORT_ONNX_DEFAULTS.outputName` (`'probabilities'`)
   */
  outputName?: string;
  /**
   * ONNX operator set (opset) to declare; 13 or later. The graph uses only operators whose meaning has not
   * changed since 13.
   * @defaultValue `EXPORT_ONNX_DEFAULTS.opset` (`13`)
   */
  opset?: number;
  /**
   * Print what was written (via `env.logger`).
   * @defaultValue `env.verbose`
   */
  verbose?: boolean;
  /**
   * Stops the export before it writes anything; the promise then rejects with an `AbortError`.
   * @defaultValue none
   */
  signal?: AbortSignal;
}

function checkArgs(args: ExportOnnxArgs | undefined): void {
  check(args == null || typeof args === 'object', `exportOnnx: args must be an object such as { inputName: 'images' }, got ${typeof args}.`);
  for (const key of ['inputName', 'outputName'] as const) {
    const v = args?.[key];
    check(v == null || (typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_.:-]*$/.test(v)), `exportOnnx: ${key} must be a name of letters, digits and _ . : -, got ${JSON.stringify(v)}.`);
  }
  const opset = args?.opset;
  check(opset == null || (Number.isInteger(opset) && opset >= 13 && opset <= 23), `exportOnnx: opset must be an integer from 13 to 23, got ${JSON.stringify(opset)}.`);
  check(args?.inputName == null || args.inputName !== args.outputName, 'exportOnnx: inputName and outputName must differ.');
}

/** The IR version a file declaring `opset` needs (ONNX's version table), at least 8. */
function irVersionFor(opset: number): number {
  return opset <= 18 ? 8 : opset <= 20 ? 9 : opset <= 22 ? 10 : 11;
}

/** The model as ONNX bytes. */
function encode(model: TransferModel, settings: { inputName: string; outputName: string; opset: number }): Uint8Array {
  const [height, width] = model.inputShape;
  const numClasses = model.numClasses;
  const g = new OnnxGraph();
  const input = g.reserve(settings.inputName);
  const folded = foldModel(model.model);
  let output: string;
  try {
    const converter = new Converter(g, folded.inspect());
    converter.input(input);
    const out = converter.run();
    const width1 = model.model.outputs[0]!.shape[1];
    if (out.rank !== 2) throw new TransferError('NOT_SUPPORTED', `exportOnnx: the model's output has rank ${out.rank}; expected [n, classes].`);
    // Two classes, one sigmoid unit: two columns [P(classes[0]), P(classes[1])], as predictProbabilities.
    output = numClasses === 2 && width1 === 1 ? g.node('Concat', [g.node('Sub', [converter.scalar(1), out.name], 'p_first'), out.name], settings.outputName, { axis: { int: 1 } }) : g.node('Identity', [out.name], settings.outputName);
  } finally {
    folded.dispose();
  }
  const metadata = {
    classes: JSON.stringify(model.classes),
    input: `${settings.inputName}: float32 [batch, ${height}, ${width}, 3], raw RGB pixels 0..255 (NHWC)`,
    output: `${settings.outputName}: float32 [batch, ${numClasses}], class probabilities in the order of "classes"`,
    backbone: model.backbone.name,
    preprocessing: JSON.stringify(model.backbone.preprocessing),
  };
  return g.encode([{ name: input, shape: ['batch', height, width, 3] }], [{ name: output, shape: ['batch', numClasses] }], {
    producerName: 'tfjs-transfer',
    producerVersion: VERSION, // the library's version (util/version.ts, from package.json at build time)
    graphName: model.model.name || 'tfjs_transfer_model',
    docString: `Image classifier (${model.classes.join(', ')}) on ${model.backbone.name}, exported by tfjs-transfer.`,
    opset: settings.opset,
    irVersion: irVersionFor(settings.opset),
    metadata,
  });
}

/**
 * Exports a model as an ONNX file that onnxruntime runs (`onnxruntime-node`, `onnxruntime-web`, Python, C++):
 * the whole model, preprocessing included, so it takes **raw RGB pixels** and returns **class probabilities**, like
 * {@link TransferModel.predictProbabilities}:
 * - input `images`: float32 `[batch, height, width, 3]`, pixels in 0..255 (NHWC, the batch size is free);
 * - output `probabilities`: float32 `[batch, numClasses]`, in the order of `model.classes` (two columns for two
 *   classes); the file's metadata holds the class names (`classes`, a JSON array).
 *
 * BatchNormalization is folded into the convolutions; dropout is the identity (inference). Translated layers:
 * Conv2D, DepthwiseConv2D, BatchNormalization, ReLU / ReLU6, Add, ZeroPadding2D, Rescaling, the library's
 * preprocessing, global average / max pooling, Flatten, Dropout, Dense (with relu, relu6, sigmoid, softmax, tanh,
 * elu, selu, swish, gelu, softplus, softsign). Any other layer is refused with a `TransferError` (`NOT_SUPPORTED`)
 * that names it and its class; so are graph-model and function backbones (they have no layers to translate).
 *
 * With `destination` (a local path or `file://` URL), the file is written atomically (a temporary file renamed into
 * place) through `env.fileSystem`, which `tfjs-transfer/node` installs; without it, nothing is written. Either way
 * the promise resolves with the file's bytes (in a browser, offer them as a download or pass them to
 * `ort.InferenceSession.create(bytes)`).
 *
 * @param model A model from `attachHead` or `loadModel`, with a layers backbone.
 * @param destination Where to write the file; omit (or `undefined` / `null`) to only get the bytes.
 * @param args Names of the input and output, opset, `verbose`, `signal`: see {@link ExportOnnxArgs}.
 * @returns The ONNX file's bytes.
 * @throws TransferError `NOT_SUPPORTED` naming a layer the exporter does not translate; `NODE_ONLY` for a path where
 *   there is no file access; `SAVE_FAILED` when the file cannot be written (a previous file stays intact).
 * @category Save and load
 * @example
 * ```ts
 * import { loadModel } from 'tfjs-transfer/node';
 * import { exportOnnx } from 'tfjs-transfer/onnx';
 * const model = await loadModel('./cats-vs-dogs-model');
 * await exportOnnx(model, './cats-vs-dogs.onnx');          // Node: writes the file
 * const bytes = await exportOnnx(model);                    // anywhere: the bytes (Uint8Array)
 * ```
 */
export async function exportOnnx(model: TransferModel, destination?: string | null, args?: ExportOnnxArgs): Promise<Uint8Array> {
  check(model instanceof TransferModel, `exportOnnx: expected a TransferModel (from attachHead or loadModel), got ${Object.prototype.toString.call(model)}.`);
  model.assertUsable('export it to ONNX');
  check(destination == null || (typeof destination === 'string' && destination.length > 0), `exportOnnx: destination must be a file path, got ${JSON.stringify(destination)}.`);
  checkArgs(args);
  const settings = withDefaults(args, { ...EXPORT_ONNX_DEFAULTS, verbose: env.verbose });
  if (model.backbone.kind !== 'layers') {
    throw new TransferError('NOT_SUPPORTED', `exportOnnx: backbone "${model.backbone.name}" is a ${model.backbone.kind} model; only layers backbones (the catalog's, loadBackbone of a layers model.json) can be exported to ONNX.`);
  }
  let write: ((bytes: Uint8Array) => Promise<void>) | undefined;
  if (destination != null) {
    check(isLocalPath(destination), `exportOnnx: destination must be a local path or file:// URL, got "${destination}". In a browser, omit it and use the returned bytes.`);
    const writeFile = env.fileSystem?.writeFile;
    if (!writeFile) {
      throw new TransferError('NODE_ONLY', `exportOnnx: "${destination}" is a local path, and this environment has no file access. In Node import 'tfjs-transfer/node' first; in the browser omit the destination and use the returned bytes.`);
    }
    write = (bytes) => writeFile(destination, bytes);
  }
  throwIfAborted(settings.signal, 'exportOnnx');
  const bytes = encode(model, settings);
  throwIfAborted(settings.signal, 'exportOnnx');
  if (write) await write(bytes);
  if (settings.verbose && destination != null) env.logger(`tfjs-transfer: wrote ${destination} (ONNX, ${(bytes.length / 1e6).toFixed(2)} MB)`);
  return bytes;
}
