/**
 * The CLI's progress output is the Node progress module's (one implementation, src/node/progress.ts). This file
 * only keeps the CLI's import path working until its importers (cli/run-context.ts, cli/examine.ts) import
 * `../node/progress` directly; then delete it.
 * @internal
 * @module
 */
export { progressReporter, type ProgressReporterArgs } from '../node/progress';
