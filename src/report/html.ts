/**
 * `renderReport`: one self-contained HTML page of what a model learned (data, training curves, confusion matrix,
 * per-class metrics, calibration, the unknown detector, the most confident mistakes, the model card). Pure string
 * building, browser-safe: the charts come in as SVG markup already rendered (`writeReport` in `tfjs-transfer/node`
 * renders them with Vega), the pictures as `data:` URIs. The page needs no script and loads nothing: its
 * Content-Security-Policy forbids any request.
 * @module
 */
import { check, TransferError } from '../errors';
import type { Evaluation, TopLoss } from '../evaluate/metrics';
import type { UnknownEvaluation } from '../evaluate/unknown';
import type { ExamineReport } from '../examine/examine';
import { formatCard } from '../io/card';
import type { TrainingCurves } from './specs';
import type { ModelCard } from '../transfer-model';

/** The report's charts as SVG markup (`<svg ...>...</svg>`), each optional. @category Step 5: Evaluate */
export interface ReportCharts {
  /** {@link trainingCurvesSpec} rendered. @defaultValue none (the section says the chart was not rendered) */
  curves?: string;
  /** {@link confusionMatrixSpec} rendered. @defaultValue none (the matrix is shown as a table only) */
  confusion?: string;
  /** {@link reliabilitySpec} rendered. @defaultValue none */
  reliability?: string;
  /** {@link unknownHistogramSpec} rendered. @defaultValue none */
  unknown?: string;
}

/** The pictures of one top loss, as `data:image/...;base64,` URIs. @category Step 5: Evaluate */
export interface ReportImage {
  /** The image as the file shows it. @defaultValue none */
  image?: string;
  /** The predicted class's heatmap over the image. @defaultValue none */
  predicted?: string;
  /** The true class's heatmap over the image. @defaultValue none */
  actual?: string;
}

/** What {@link renderReport} puts on the page. Every part is optional; a missing one leaves its section saying so. @category Step 5: Evaluate */
export interface RenderReportArgs {
  /** The page's title. @defaultValue `'tfjs-transfer report'` */
  title?: string;
  /** A line under the title, e.g. what was evaluated. @defaultValue none */
  subtitle?: string;
  /** What `examine` found (classes, counts, warnings). @defaultValue none */
  examine?: ExamineReport;
  /** The head's training history. @defaultValue none */
  history?: TrainingCurves;
  /** The fine-tuning history. @defaultValue none */
  fineTuneHistory?: TrainingCurves;
  /** The evaluation (`evaluate`'s result). @defaultValue none */
  evaluation?: Evaluation;
  /** The model card (`model.card`). @defaultValue none */
  card?: ModelCard;
  /**
   * The charts as SVG markup, inserted as they are: pass only SVG you rendered from the spec builders (the page
   * refuses markup with a script, an event handler, `foreignObject` or an external link).
   * @defaultValue none
   */
  charts?: ReportCharts;
  /** The pictures of `evaluation.topLosses[i]`, by index. @defaultValue none (the mistakes are listed without pictures) */
  topLossImages?: readonly (ReportImage | undefined)[];
  /** When the report was made (shown in the header). @defaultValue now */
  generatedAt?: Date | string;
}

/** The sections of the report, in page order: `<section id>` and heading. */
export const REPORT_SECTIONS = [
  ['data', 'Data'],
  ['training', 'Training curves'],
  ['confusion', 'Confusion matrix'],
  ['per-class', 'Per-class metrics'],
  ['calibration', 'Calibration'],
  ['unknown', 'Unknown detector'],
  ['top-losses', 'Most confident mistakes'],
  ['card', 'Model card'],
] as const;

type SectionId = (typeof REPORT_SECTIONS)[number][0];

/** `text` with `& < > " '` replaced by entities: safe in element content and quoted attributes. @internal */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const DATA_URI = /^data:image\/(png|jpeg|webp|gif);base64,[A-Za-z0-9+/]+={0,2}$/;

function dataUri(uri: string | undefined, where: string): string | undefined {
  if (uri === undefined) return undefined;
  if (typeof uri !== 'string' || !DATA_URI.test(uri)) {
    throw new TransferError('INVALID_ARGUMENT', `renderReport: ${where} must be a data:image/(png|jpeg|webp|gif);base64 URI (the page loads nothing), got ${JSON.stringify(String(uri).slice(0, 40))}.`);
  }
  return uri;
}

/** Elements a chart has no business holding: they run code, embed documents or load things. */
const BANNED_ELEMENTS = /^(script|foreignobject|iframe|object|embed|link|style|image|use|a|animate|set)$/i;

/** Why `svg` is not plain chart markup (a banned element, an event handler, a link out), or `undefined`. */
function unsafeSvg(svg: string): string | undefined {
  if (!/^\s*<svg[\s>]/.test(svg)) return 'it does not start with <svg';
  // Text and attribute values are entity-escaped, so every "<" opens a tag; attributes are read one by one.
  for (const tag of svg.matchAll(/<\/?([A-Za-z][\w:-]*)([^>]*)>/g)) {
    if (BANNED_ELEMENTS.test(tag[1]!)) return `it has a <${tag[1]}> element`;
    for (const a of tag[2]!.matchAll(/([^\s=/>]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/g)) {
      const name = a[1]!.toLowerCase();
      const value = a[2]!.replace(/^["']|["']$/g, '').trim();
      if (name.startsWith('on')) return `it has an event handler (${name})`;
      if (/(^|:)href$|^src$/.test(name) && !/^#/.test(value)) return `it links to ${value}`;
      if (/url\(\s*(?!['"]?#)/i.test(value)) return `it references ${value}`;
    }
  }
  return /<!|<\?/.test(svg.replace(/^\s*<\?xml[^>]*\?>/, '')) ? 'it has a declaration or comment' : undefined;
}

function svgMarkup(svg: string | undefined, where: string): string | undefined {
  if (svg === undefined) return undefined;
  const why = typeof svg === 'string' ? unsafeSvg(svg) : 'it is not a string';
  if (why) throw new TransferError('INVALID_ARGUMENT', `renderReport: charts.${where} must be SVG markup rendered from a spec (<svg ...>) with no script, event handler, embedded element or link out; ${why}.`);
  return svg.trim();
}

const pct = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(2)}%`);
const fixed = (x: number | undefined, digits = 3): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));
const missing = (why: string): string => `<p class="missing">${escapeHtml(why)}</p>`;
const figure = (svg: string | undefined, why: string): string => (svg ? `<figure class="chart">${svg}</figure>` : missing(why));

function dataSection(report: ExamineReport | undefined): string {
  if (!report) return missing('Not available: the data was not examined.');
  const head = `<tr><th>class</th>${report.splits.map((s) => `<th>${escapeHtml(s.name)}</th>`).join('')}</tr>`;
  const rows = report.classes.map((c, i) => `<tr><td>${escapeHtml(c)}</td>${report.splits.map((s) => `<td class="num">${s.counts[i] ?? 0}</td>`).join('')}</tr>`);
  const total = `<tr class="total"><td>total</td>${report.splits.map((s) => `<td class="num">${s.total}</td>`).join('')}</tr>`;
  const facts: string[] = [`${report.classes.length} classes`];
  if (report.sizes) facts.push(`image sizes ${report.sizes.width.min}–${report.sizes.width.max} × ${report.sizes.height.min}–${report.sizes.height.max} px (median ${report.sizes.width.median} × ${report.sizes.height.median})`);
  if (report.formats) facts.push(Object.entries(report.formats).map(([f, n]) => `${n} ${f}`).join(', '));
  if (report.duplicates) facts.push(`${report.duplicates.length} train/validation duplicates`);
  facts.push(`${report.skipped.length} files skipped`);
  const warnings = report.warnings.length
    ? `<ul class="warnings">${report.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>`
    : '<p class="ok">No warnings.</p>';
  return `<table class="counts">${head}${rows.join('')}${total}</table><p>${escapeHtml(facts.join('; '))}.</p><h3>Warnings</h3>${warnings}`;
}

/** One line of a training phase; `offset` epochs ran before it (its epochs are numbered on from there, as on the chart). */
function historyLine(h: TrainingCurves, what: string, offset: number): string {
  const last = h.loss.length - 1;
  const best = h.bestEpoch >= 0 ? h.bestEpoch : last;
  const epochs = offset ? `epochs ${offset + 1}–${offset + h.epochs}` : `${h.epochs} epochs`;
  const val = h.valAccuracy.length ? `, validation accuracy ${pct(h.valAccuracy[best])} (loss ${fixed(h.valLoss[best], 4)})` : '';
  return `<li>${escapeHtml(what)}: ${epochs}${h.stoppedEarly ? ' (stopped early)' : ''}, best epoch ${offset + best + 1}${val}; ${h.trained.parameters} parameters trained in ${h.trained.layers.length} layers.</li>`;
}

function trainingSection(args: RenderReportArgs): string {
  if (!args.history) {
    return missing('Not available: no per-epoch training curves were given (a model saved before tfjs-transfer 0.2.0 recorded them in its card has none). Its training summary is in the model card.');
  }
  const lines = [historyLine(args.history, 'head', 0), ...(args.fineTuneHistory ? [historyLine(args.fineTuneHistory, 'fine-tuning', args.history.loss.length)] : [])];
  const warnings = [...args.history.warnings, ...(args.fineTuneHistory?.warnings ?? [])];
  return `${figure(args.charts?.curves, 'The chart was not rendered.')}<ul>${lines.join('')}</ul>${warnings.length ? `<ul class="warnings">${warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>` : ''}`;
}

function confusionSection(e: Evaluation | undefined, svg: string | undefined): string {
  if (!e) return missing('Not available: no evaluation.');
  const head = `<tr><th>true ↓ / predicted →</th>${e.classes.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>`;
  const rows = e.confusionMatrix.map((row, a) => `<tr><th>${escapeHtml(e.classes[a])}</th>${row.map((n, p) => `<td class="num${a === p ? ' diag' : ''}">${n}</td>`).join('')}</tr>`);
  const pairs = e.confusedPairs.length
    ? `<p>Most confused: ${e.confusedPairs.slice(0, 5).map((p) => `${escapeHtml(p.actual)} → ${escapeHtml(p.predicted)} (${p.count})`).join(', ')}.</p>`
    : '<p>No class was confused with another.</p>';
  return `${svg ? `<figure class="chart">${svg}</figure>` : ''}<details${svg ? '' : ' open'}><summary>as a table</summary><table class="matrix">${head}${rows.join('')}</table></details>${pairs}`;
}

function perClassSection(e: Evaluation | undefined): string {
  if (!e) return missing('Not available: no evaluation.');
  const head = '<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>ROC AUC</th><th>images</th></tr>';
  const rows = e.perClass.map((c) => `<tr><td>${escapeHtml(c.name)}</td><td class="num">${fixed(c.precision)}</td><td class="num">${fixed(c.recall)}</td><td class="num">${fixed(c.f1)}</td><td class="num">${fixed(c.rocAuc)}</td><td class="num">${c.support}</td></tr>`);
  const total = `<tr class="total"><td>macro / all</td><td></td><td></td><td class="num">${fixed(e.macroF1)}</td><td class="num">${fixed(e.rocAuc)}</td><td class="num">${e.count}</td></tr>`;
  const note = e.classes.length === 2 ? '<p class="note">With two classes, every class\'s ROC AUC is the binary AUC of P(second class).</p>' : '';
  return `<table class="metrics">${head}${rows.join('')}${total}</table>${note}`;
}

function calibrationSection(e: Evaluation | undefined, card: ModelCard | undefined, svg: string | undefined): string {
  if (!e) return missing('Not available: no evaluation.');
  const cal = card?.calibration;
  const t = cal ? ` The probabilities are calibrated by temperature scaling (T = ${cal.temperature.toFixed(3)}, fitted on ${cal.images} images; ECE there ${pct(cal.eceBefore)} → ${pct(cal.eceAfter)}).` : ' The model is not calibrated.';
  return `<p>Expected calibration error <b>${pct(e.ece)}</b> over ${e.reliability.bins.length} bins of the top-class probability: how far, on average, confidence is from accuracy.${escapeHtml(t)}</p>${figure(svg, 'The chart was not rendered.')}`;
}

function unknownSection(u: UnknownEvaluation | undefined, svg: string | undefined): string {
  if (!u) return missing('Not available: the model has no unknown detector (train with validation images to get one).');
  const facts = [
    `threshold ${u.threshold.toFixed(3)}`,
    `accepts ${pct(u.accepted)} of the evaluated images of the classes`,
    `accuracy on those ${pct(u.acceptedAccuracy)}`,
    u.otherImages ? `refuses ${pct(u.otherRejected)} of ${u.otherImages} other images` : 'no other images were given (tfjs-transfer evaluate --unknown <dir>)',
    ...(u.rocAuc !== undefined ? [`ROC AUC ${u.rocAuc.toFixed(4)}`] : []),
  ];
  return `<p>${escapeHtml(facts.join('; '))}.</p>${figure(svg, 'The chart was not rendered.')}`;
}

function fileName(source: string | undefined, index: number): string {
  return source === undefined ? `image #${index}` : (source.split(/[\\/]/).pop() ?? source);
}

function topLossCard(l: TopLoss, images: ReportImage | undefined, i: number): string {
  const img = (uri: string | undefined, label: string): string =>
    uri ? `<figure><img src="${dataUri(uri, `topLossImages[${i}]`)}" alt="${escapeHtml(label)}"><figcaption>${escapeHtml(label)}</figcaption></figure>` : '';
  const pictures = [img(images?.image, 'image'), img(images?.predicted, `predicted: ${l.predicted}`), img(images?.actual, `true: ${l.actual}`)].join('');
  return (
    `<div class="loss"><div class="pictures">${pictures || '<p class="missing">no picture</p>'}</div>` +
    `<p class="caption"><span class="file" title="${escapeHtml(l.source ?? '')}">${escapeHtml(fileName(l.source, l.index))}</span><br>` +
    `true <b>${escapeHtml(l.actual)}</b> (${pct(l.actualProbability)}), predicted <b>${escapeHtml(l.predicted)}</b> (${pct(l.probability)}), loss ${fixed(l.loss)}</p></div>`
  );
}

function topLossesSection(e: Evaluation | undefined, images: RenderReportArgs['topLossImages']): string {
  if (!e) return missing('Not available: no evaluation.');
  if (!e.topLosses.length) return '<p class="ok">No mistakes.</p>';
  const heat = e.topLosses.some((l, i) => images?.[i]?.predicted);
  const intro = heat ? '<p class="note">The heatmaps show where the model looked (CAM or Grad-CAM, red = most), for the class it predicted and for the true class.</p>' : '';
  return `${intro}<div class="losses">${e.topLosses.map((l, i) => topLossCard(l, images?.[i], i)).join('')}</div>`;
}

function cardSection(card: ModelCard | undefined): string {
  return card ? `<pre class="card">${escapeHtml(formatCard(card))}</pre>` : missing('Not available: no model card.');
}

function headline(e: Evaluation | undefined): string {
  if (!e) return '';
  const items = [
    ['accuracy', pct(e.accuracy)],
    ['images', String(e.count)],
    ['loss', fixed(e.loss, 4)],
    ['macro F1', fixed(e.macroF1)],
    ['ROC AUC', fixed(e.rocAuc, 4)],
    ['ECE', pct(e.ece)],
  ];
  return `<dl class="headline">${items.map(([k, v]) => `<div><dt>${k}</dt><dd>${escapeHtml(v)}</dd></div>`).join('')}</dl>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
header h1{margin:8px 0 2px;font-size:24px} header p{margin:2px 0;color:#555}
nav{margin:12px 0;display:flex;flex-wrap:wrap;gap:6px 14px} nav a{color:#2a5d9f;text-decoration:none}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 18px;margin:14px 0}
h2{font-size:18px;margin:4px 0 10px} h3{font-size:15px;margin:12px 0 4px}
table{border-collapse:collapse;margin:6px 0} th,td{border-bottom:1px solid #e3e6ea;padding:3px 10px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} tr.total td{font-weight:600;border-top:2px solid #ccc}
td.diag{background:#eef4fb;font-weight:600}
.headline{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0} .headline div{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:6px 14px}
.headline dt{font-size:12px;color:#666} .headline dd{margin:0;font-size:20px;font-weight:600}
.missing{color:#777;font-style:italic} .note{color:#555;font-size:13px} .ok{color:#2d7d46}
ul.warnings li{color:#9a5b00}
figure{margin:8px 0} figure.chart{overflow-x:auto} figure.chart svg{max-width:100%;height:auto}
.losses{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px}
.loss{border:1px solid #e3e6ea;border-radius:6px;padding:8px} .pictures{display:flex;gap:6px}
.pictures figure{margin:0;flex:1;min-width:0} .pictures img{width:100%;aspect-ratio:1;object-fit:contain;background:#eef0f3;display:block;border-radius:3px}
.pictures figcaption{font-size:11px;line-height:1.25;color:#555;text-align:center;overflow-wrap:anywhere;margin-top:2px}
.caption{margin:6px 0 0;font-size:13px} .file{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
pre.card{white-space:pre-wrap;word-break:break-word;font-size:12px;background:#f6f7f9;padding:10px;border-radius:4px}
details summary{cursor:pointer;color:#2a5d9f}
`;

/** The body of each section, by id. */
function sectionBodies(args: RenderReportArgs, charts: ReportCharts): Record<SectionId, string> {
  const e = args.evaluation;
  return {
    data: dataSection(args.examine),
    training: trainingSection({ ...args, charts }),
    confusion: confusionSection(e, charts.confusion),
    'per-class': perClassSection(e),
    calibration: calibrationSection(e, args.card, charts.reliability),
    unknown: unknownSection(e?.unknown, charts.unknown),
    'top-losses': topLossesSection(e, args.topLossImages),
    card: cardSection(args.card),
  };
}

/**
 * Renders a report of what a model learned as one self-contained HTML page: a headline (accuracy, loss, macro F1,
 * ROC AUC, ECE), then the data (`examine`'s classes, counts and warnings), the training curves, the confusion
 * matrix, the per-class table (precision, recall, F1, ROC AUC), calibration (the reliability diagram), the unknown
 * detector (its score histogram), the most confident mistakes with their heatmaps, and the model card. Every text
 * from the data (class names, file paths) is escaped; the page has no script and loads nothing (its
 * Content-Security-Policy forbids every request; pictures are `data:` URIs, charts inline SVG). Browser-safe: in
 * Node, `writeReport` (`tfjs-transfer/node`) renders the charts with Vega and makes the pictures.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * import * as vega from 'vega';
 * import { compile } from 'vega-lite';
 * const toSvg = (spec) => new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' }).toSVG();
 * const evaluation = await evaluate(model, validation);
 * const confusion = await toSvg(confusionMatrixSpec({ evaluation }));
 * const html = renderReport({ evaluation, card: model.card, charts: { confusion } });
 * downloadLink.href = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
 * ```
 */
export function renderReport(args: RenderReportArgs = {}): string {
  check(args != null && typeof args === 'object', 'renderReport: args must be an object such as { evaluation, card }.');
  const given = args.charts ?? {};
  const charts: ReportCharts = {
    curves: svgMarkup(given.curves, 'curves'),
    confusion: svgMarkup(given.confusion, 'confusion'),
    reliability: svgMarkup(given.reliability, 'reliability'),
    unknown: svgMarkup(given.unknown, 'unknown'),
  };
  const when = args.generatedAt === undefined ? new Date() : new Date(args.generatedAt);
  check(!Number.isNaN(when.getTime()), `renderReport: generatedAt must be a date, got ${JSON.stringify(args.generatedAt)}.`);
  const title = args.title ?? 'tfjs-transfer report';
  const bodies = sectionBodies(args, charts);
  const sections = REPORT_SECTIONS.map(([id, heading]) => `<section id="${id}"><h2>${heading}</h2>${bodies[id]}</section>`).join('\n');
  const nav = REPORT_SECTIONS.map(([id, heading]) => `<a href="#${id}">${heading}</a>`).join('');
  const classes = args.evaluation?.classes ?? args.card?.classes ?? args.examine?.classes;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main><header><h1>${escapeHtml(title)}</h1>${args.subtitle ? `<p>${escapeHtml(args.subtitle)}</p>` : ''}
<p>${classes ? `${classes.length} classes: ${escapeHtml(classes.join(', '))}. ` : ''}Made ${escapeHtml(when.toISOString())} by tfjs-transfer.</p></header>
${headline(args.evaluation)}<nav>${nav}</nav>
${sections}
</main></body></html>
`;
}
