/**
 * The report in Node: the charts' Vega-Lite specs compiled and rendered by Vega to static SVG, the top losses'
 * pictures (the image and its heatmaps, as JPEG `data:` URIs, with sharp), {@link renderReport}'s page around them,
 * written atomically. Vega is imported on first use, so `tfjs-transfer/node` loads no faster or slower for it.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { check } from '../errors';
import { explain } from '../evaluate/explain';
import { overlayHeatmap, type HeatmapData } from '../evaluate/heatmap';
import type { Evaluation, TopLoss } from '../evaluate/metrics';
import { renderReport, type RenderReportArgs, type ReportCharts, type ReportImage } from '../report/html';
import { confusionMatrixSpec, reliabilitySpec, trainingCurvesSpec, unknownHistogramSpec, type VegaLiteSpec } from '../report/specs';
import { TransferModel } from '../transfer-model';
import { withDefaults } from '../util/args';
import { decodeImage, loadSharp } from './decode';
import { atomicWriteFile } from './file-io';

/** Defaults of {@link buildReport} and {@link writeReport}. @category Step 5: Evaluate */
export const REPORT_DEFAULTS = Object.freeze({
  /** Longest side, in pixels, of the top losses' pictures. */
  imageSize: 160,
  /** JPEG quality of the pictures, 1..100. */
  imageQuality: 80,
});

/** Options of {@link buildReport}: what to report, as {@link renderReport} takes it, without the rendered parts. @category Step 5: Evaluate */
export interface BuildReportArgs extends Omit<RenderReportArgs, 'charts' | 'topLossImages'> {
  /**
   * The model evaluated: with it, top losses without heatmaps (an `evaluate` run without `explain`) get them from
   * {@link explain} (their files are read again). @defaultValue none (pictures without heatmaps)
   */
  model?: TransferModel;
  /** Longest side, in pixels, of the top losses' pictures. @defaultValue {@link REPORT_DEFAULTS}.imageSize (160) */
  imageSize?: number;
  /** JPEG quality of the pictures, 1..100. @defaultValue {@link REPORT_DEFAULTS}.imageQuality (80) */
  imageQuality?: number;
}

/** Options of {@link writeReport}: those of {@link buildReport}. @category Step 5: Evaluate */
export type WriteReportArgs = BuildReportArgs;

/** What {@link writeReport} wrote. @category Step 5: Evaluate */
export interface WriteReportResult {
  /** The file written (absolute path). */
  path: string;
  /** Its size in bytes. */
  bytes: number;
}

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');
let vegaModules: Promise<[Vega, VegaLite]> | undefined;

/** A Vega-Lite spec compiled by vega-lite and rendered by Vega (headless, no canvas) to SVG markup. @internal */
export async function renderChartSvg(spec: VegaLiteSpec): Promise<string> {
  vegaModules ??= Promise.all([import('vega'), import('vega-lite')]);
  const [vega, vl] = await vegaModules;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Every chart the data allows, rendered. */
async function renderCharts(args: BuildReportArgs): Promise<ReportCharts> {
  const e = args.evaluation;
  const charts: ReportCharts = {};
  if (args.history && args.history.loss.length) charts.curves = await renderChartSvg(trainingCurvesSpec({ history: args.history, fineTuneHistory: args.fineTuneHistory }));
  if (e) {
    charts.confusion = await renderChartSvg(confusionMatrixSpec({ evaluation: e }));
    charts.reliability = await renderChartSvg(reliabilitySpec({ evaluation: e }));
    if (e.unknown) charts.unknown = await renderChartSvg(unknownHistogramSpec({ unknown: e.unknown }));
  }
  return charts;
}

/** A local file path of a top loss's source, or `undefined` (no source, or a URL). */
function localFile(source: string | undefined): string | undefined {
  if (source === undefined) return undefined;
  if (/^file:\/\//i.test(source)) return fileURLToPath(source);
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source) ? undefined : source;
}

/** The heatmaps of a top loss: its own, or from `explain` on its file with the model. */
async function heatmapsOf(loss: TopLoss, file: string, model: TransferModel | undefined): Promise<{ predicted?: HeatmapData; actual?: HeatmapData }> {
  if (loss.heatmaps) return loss.heatmaps;
  if (!model) return {};
  const [e] = await explain(model, file, { classes: [loss.actual] });
  if (!e) return {};
  return { predicted: e.heatmaps.find((h) => h.label === loss.predicted), actual: e.heatmaps.find((h) => h.label === loss.actual) };
}

/** The pictures of one top loss: the image scaled to `size`, and each heatmap over it, as JPEG data URIs. */
async function lossPictures(loss: TopLoss, model: TransferModel | undefined, size: number, quality: number): Promise<ReportImage | undefined> {
  const file = localFile(loss.source);
  if (file === undefined) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch {
    return undefined; // moved or deleted since the evaluation: listed without a picture
  }
  const sharp = await loadSharp();
  const decoded = await decodeImage(bytes);
  const { data, info } = await sharp(decoded.data, { raw: { width: decoded.width, height: decoded.height, channels: 3 } })
    .resize(size, size, { fit: 'inside', withoutEnlargement: true })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  const jpeg = async (rgb: Uint8Array | Uint8ClampedArray, channels: 3 | 4): Promise<string> => {
    const out = await sharp(new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width: info.width, height: info.height, channels } }).jpeg({ quality }).toBuffer();
    return `data:image/jpeg;base64,${out.toString('base64')}`;
  };
  const maps = await heatmapsOf(loss, file, model);
  return {
    image: await jpeg(pixels.data, 3),
    ...(maps.predicted ? { predicted: await jpeg(overlayHeatmap(pixels, maps.predicted, { alpha: 0.45 }), 4) } : {}),
    ...(maps.actual ? { actual: await jpeg(overlayHeatmap(pixels, maps.actual, { alpha: 0.45 }), 4) } : {}),
  };
}

async function topLossImages(e: Evaluation | undefined, args: BuildReportArgs, size: number, quality: number): Promise<(ReportImage | undefined)[]> {
  const out: (ReportImage | undefined)[] = [];
  for (const loss of e?.topLosses ?? []) out.push(await lossPictures(loss, args.model, size, quality));
  return out;
}

/**
 * Builds the report of {@link renderReport} in Node: renders every chart the data allows (training curves,
 * confusion matrix, reliability diagram, unknown-score histogram) from the spec builders with Vega to static SVG,
 * and the top losses' pictures (the image file and, from their `heatmaps` or, with `model`, from {@link explain},
 * the predicted and the true class's heatmaps over it) as JPEG `data:` URIs. Returns the HTML.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * import { buildReport, evaluate } from 'tfjs-transfer/node';
 * const evaluation = await evaluate(model, folder.validation, { explain: true });
 * const html = await buildReport({ evaluation, card: model.card, title: 'cats vs dogs' });
 * ```
 */
export async function buildReport(args: BuildReportArgs): Promise<string> {
  check(args != null && typeof args === 'object', 'buildReport: args must be an object such as { evaluation, card }.');
  check(args.model === undefined || args.model instanceof TransferModel, 'buildReport: model must be a TransferModel.');
  const options = withDefaults(args, REPORT_DEFAULTS);
  check(Number.isInteger(options.imageSize) && options.imageSize >= 16 && options.imageSize <= 2048, `buildReport: imageSize must be an integer from 16 to 2048, got ${JSON.stringify(options.imageSize)}.`);
  check(Number.isInteger(options.imageQuality) && options.imageQuality >= 1 && options.imageQuality <= 100, `buildReport: imageQuality must be an integer from 1 to 100, got ${JSON.stringify(options.imageQuality)}.`);
  const charts = await renderCharts(args);
  const images = await topLossImages(args.evaluation, args, options.imageSize, options.imageQuality);
  const { model: _model, imageSize: _size, imageQuality: _quality, ...rest } = args;
  return renderReport({ ...rest, charts, topLossImages: images });
}

/**
 * Writes the report of {@link buildReport} to `path` (atomically: a reader never sees half a file). What
 * `tfjs-transfer train` and `evaluate` write as `report.html`; it opens offline in any browser.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * import { transferLearn, save, writeReport } from 'tfjs-transfer/node';
 * const result = await transferLearn({ data: './photos' });
 * await save(result.model, './my-model');
 * await writeReport('./my-model/report.html', {
 *   examine: result.report, history: result.history, fineTuneHistory: result.fineTuneHistory,
 *   evaluation: result.evaluation, card: result.model.card, model: result.model,
 * });
 * ```
 */
export async function writeReport(path: string, args: WriteReportArgs): Promise<WriteReportResult> {
  check(typeof path === 'string' && path.length > 0, 'writeReport: path must be the file to write, e.g. "my-model/report.html".');
  const html = await buildReport(args);
  const file = /^file:\/\//i.test(path) ? fileURLToPath(path) : path;
  const bytes = new TextEncoder().encode(html);
  await atomicWriteFile(file, bytes);
  return { path: resolve(file), bytes: bytes.length };
}
