/**
 * `tfjs-transfer info <model>`: the model card inside a saved artefact, read from its `model.json` (no backbone
 * is loaded, no backend is needed).
 * @module
 */
import { weightByteLength } from '../artifacts/download';
import { env } from '../env';
import { TransferError } from '../errors';
import { cardFromMetadata, formatCard } from '../io/card';
import { EXIT, defineCommand, EXIT_CODES_HELP, UsageError, line, type Command } from './common';

const HELP = `Usage: tfjs-transfer info <model> [options]

Prints the model card saved inside a model written by tfjs-transfer: classes, input size and preprocessing, the
backbone (name, source, SHA-256 of its weights), the head, each training run (images per class, epochs,
settings), the last evaluation (accuracy, per class), the calibration, and how the file stores the model (whole
or head only, float32 / float16 / uint8, bytes, the accuracy check of a quantized save, library version, date).
Models saved before model cards show what their metadata holds.

Options:
  --json         print the card as one JSON document on stdout
  -h, --help     show this help

${EXIT_CODES_HELP}

Example:
  tfjs-transfer info cats-vs-dogs-model --json`;

const OPTIONS = { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } } as const;

/** The `info` command. */
export const infoCommand: Command = defineCommand({
  name: 'info',
  summary: 'print the model card of a saved model',
  help: HELP,
  options: OPTIONS,
  async run(v, positionals, io) {
    if (positionals.length !== 1) throw new UsageError('info takes one <model> (a folder or its model.json).', 'info');
    const source = positionals[0]!;
    if (!env.fileSystem) throw new TransferError('NODE_ONLY', 'info: no file access.');
    const artifacts = await env.fileSystem.loader(source).load!();
    const card = cardFromMetadata(artifacts.userDefinedMetadata, { bytes: weightByteLength(artifacts), specs: artifacts.weightSpecs ?? [] });
    if (!card) {
      throw new TransferError('MODEL_INVALID', `info: ${source} is a TF.js model but was not saved by tfjs-transfer (no class names in its metadata), so it has no model card.`);
    }
    line(io.out, v.json ? JSON.stringify({ model: source, card }) : formatCard(card));
    return EXIT.OK;
  },
});
