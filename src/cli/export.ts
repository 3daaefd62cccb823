/**
 * `tfjs-transfer export <model> --format onnx [--out file]`: a saved model as an ONNX file.
 * @module
 */
import { basename, dirname, resolve } from 'node:path';
import { loadModel } from '../io/model-io';
import { isHttpUrl } from '../util/location';
import { COMMON_HELP, COMMON_OPTIONS, EXIT, defineCommand, EXIT_CODES_HELP, UsageError, choiceOption, line, type Command } from './common';
import { startRun } from './run-context';

/** The formats `export` writes. */
const FORMATS = ['onnx'] as const;

const HELP = `Usage: tfjs-transfer export <model> [--format onnx] [--out <file>] [options]

Exports a model saved by tfjs-transfer to another format. ONNX: the whole model, preprocessing included, as one
.onnx file that onnxruntime runs (onnxruntime-node, onnxruntime-web, Python, C++):
  input  "images"         float32 [batch, height, width, 3], raw RGB pixels 0..255
  output "probabilities"  float32 [batch, classes], in the model's class order (metadata "classes")
See docs/deploy-onnx.md for serving it.

<model>  the saved model: its folder, its model.json, or an http(s):// URL

Options:
  --format <name>    onnx (default onnx)
  --out <file>       where to write (default: <model folder>.onnx beside the model folder; required for a URL);
                     written atomically, replacing an existing file
  --json             print one JSON document on stdout: { "model", "format", "out", "bytes", "classes",
                     "inputShape" }
${COMMON_HELP}

${EXIT_CODES_HELP}
  A model with a layer the exporter does not translate is a runtime failure (1); the message names the layer.

Example:
  tfjs-transfer export cats-vs-dogs-model --format onnx --out cats-vs-dogs.onnx`;

const OPTIONS = { ...COMMON_OPTIONS, format: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } } as const;

/** The default output file: the model's folder with `.onnx` (for `dir/model.json`, `dir.onnx`). */
export function defaultOut(model: string): string | undefined {
  if (isHttpUrl(model)) return undefined;
  const path = resolve(model.replace(/^file:\/\//i, ''));
  const folder = /\.json$/i.test(path) ? dirname(path) : path;
  return resolve(dirname(folder), `${basename(folder)}.onnx`);
}

/** The `export` command. */
export const exportCommand: Command = defineCommand({
  name: 'export',
  summary: 'export a saved model to ONNX (for onnxruntime)',
  help: HELP,
  options: OPTIONS,
  async run(v, positionals, io) {
    if (positionals.length !== 1) throw new UsageError(`export takes one <model>, got ${positionals.length} argument(s).`, 'export');
    const modelSource = positionals[0]!;
    const format = choiceOption('export', 'format', v.format, FORMATS) ?? 'onnx';
    const out = v.out ?? defaultOut(modelSource);
    if (!out) throw new UsageError('--out <file> is required when the model is a URL.', 'export');
    if (v.out !== undefined && /[\\/]$/.test(v.out)) throw new UsageError(`--out must be a file, got the folder "${v.out}".`, 'export');
    const ctx = await startRun(io, { backend: v.backend, quiet: v.quiet, command: 'export' });
    const model = await loadModel(modelSource);
    try {
      // Loaded here, not at the top: protobufjs is the export command's alone, the other commands never load it.
      const { exportOnnx } = await import('../onnx/export');
      const bytes = await exportOnnx(model, out, { verbose: false });
      ctx.note(`tfjs-transfer: wrote ${out} (ONNX, ${(bytes.length / 1e6).toFixed(2)} MB)`);
      if (v.json) {
        line(io.out, JSON.stringify({ model: modelSource, format, out, bytes: bytes.length, classes: model.classes, inputShape: [null, ...model.inputShape] }));
      } else {
        line(io.out, out);
      }
    } finally {
      model.dispose();
    }
    return EXIT.OK;
  },
});
