/**
 * `tfjs-transfer examine <dir>`: look at an image folder before training.
 * @module
 */
import { examine, formatReport } from '../examine/examine';
import { imageFolder } from '../node/image-folder';
import { COMMON_OPTIONS, EXIT, defineCommand, EXIT_CODES_HELP, line, oneFolder, type Command } from './common';
import { progressReporter } from '../node/progress';
import { requireFolder, routeLogs } from './run-context';

const HELP = `Usage: tfjs-transfer examine <dir> [options]

Looks at an image folder the way to do before training: classes and counts per split, class imbalance, image
sizes and formats, duplicates between train and validation (by content), and every file that cannot be used,
with the reason. Reads headers only; nothing is decoded. Needs no backend.

Options:
  --json        print the report as one JSON document on stdout
  -q, --quiet   no progress output on stderr
  -h, --help    show this help

${EXIT_CODES_HELP}

Example:
  tfjs-transfer examine photos`;

const OPTIONS = { help: COMMON_OPTIONS.help, quiet: COMMON_OPTIONS.quiet, json: { type: 'boolean' } } as const;

/** The `examine` command. */
export const examineCommand: Command = defineCommand({
  name: 'examine',
  summary: 'report classes, counts, sizes, duplicates and unreadable files of a folder',
  help: HELP,
  options: OPTIONS,
  async run(v, positionals, io) {
    const dir = oneFolder('examine', positionals);
    routeLogs(io, v.quiet);
    const root = await requireFolder(dir, 'the folder');
    const folder = await imageFolder(root, { validationSplit: 0, progressBar: false, onProgress: progressReporter(io.err, { quiet: v.quiet }) });
    const report = examine(folder, { verbose: false });
    if (v.json) line(io.out, JSON.stringify({ root, layout: folder.layout, ...report }));
    else line(io.out, formatReport(report));
    return EXIT.OK;
  },
});
