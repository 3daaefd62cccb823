/**
 * The `--report <file>` / `--no-report` options of `train` and `evaluate`: where the HTML report goes, checked
 * before the slow work, and writing it.
 * @module
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { writeReport, type WriteReportArgs, type WriteReportResult } from '../node/report';
import { UsageError } from './common';

/** The options, for `parseArgs`. */
export const REPORT_OPTIONS = {
  report: { type: 'string' },
  'no-report': { type: 'boolean' },
} as const;

/** Help text of the options; `where` says where the report goes by default. */
export function reportHelp(where: string): string {
  return `  --report <file>          write the HTML report there (default: ${where}): one self-contained page that opens
                           offline, with the data summary, training curves, confusion matrix, per-class
                           metrics, reliability diagram, unknown-score histogram, the most confident mistakes
                           with heatmaps, and the model card
  --no-report              write no report`;
}

/**
 * The report's path (absolute), or `undefined` with `--no-report`. A usage error for both options, or a path that
 * is a folder.
 */
export async function reportPath(command: string, values: { report?: string; 'no-report'?: boolean }, fallback: string): Promise<string | undefined> {
  if (values['no-report'] && values.report !== undefined) throw new UsageError('give --report <file> or --no-report, not both.', command);
  if (values['no-report']) return undefined;
  if (values.report !== undefined && values.report.trim() === '') throw new UsageError('--report needs a file path.', command);
  const path = resolve(values.report ?? fallback);
  const kind = await stat(path).then(
    (s) => (s.isDirectory() ? 'folder' : 'file'),
    () => 'missing',
  );
  if (kind === 'folder') throw new UsageError(`--report "${path}" is a folder; give the file to write, e.g. ${resolve(path, 'report.html')}.`, command);
  return path;
}

/** Writes the report at `path`, creating its folder. */
export async function writeCliReport(path: string, args: WriteReportArgs): Promise<WriteReportResult> {
  await mkdir(dirname(path), { recursive: true });
  return writeReport(path, args);
}
