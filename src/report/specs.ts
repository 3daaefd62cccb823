/**
 * Vega-Lite specs of the report's charts: training curves, confusion matrix, reliability diagram, unknown-score
 * histogram. Pure functions from the library's own results to Vega-Lite JSON (no Vega, no DOM, no Node), so a page
 * renders them with vega-embed and the Node report (`writeReport`) compiles them to static SVG.
 * @module
 */
import type { TopLevelSpec } from 'vega-lite';
import { check } from '../errors';
import type { Evaluation } from '../evaluate/metrics';
import type { UnknownEvaluation } from '../evaluate/unknown';
import type { FitHistory } from '../train/history';
import type { TrainingRun } from '../transfer-model';

/** A Vega-Lite specification (vega-lite's `TopLevelSpec`): what the spec builders return. @category Step 5: Evaluate */
export type VegaLiteSpec = TopLevelSpec;

/** The Vega-Lite schema the specs are written for. */
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Colours of the report (Tableau 10, Vega's default scheme): train / classes, validation / other. */
const BLUE = '#4c78a8';
const ORANGE = '#f58518';
const RED = '#e45756';

/** Options every spec builder takes. @category Step 5: Evaluate */
export interface ChartSizeArgs {
  /** Width of the plot area in pixels (of each panel, for the training curves). @defaultValue depends on the chart: 300 to 360 */
  width?: number;
  /** Height of the plot area in pixels. @defaultValue depends on the chart: 220 to 360 */
  height?: number;
}

/**
 * What the training chart and the report need of a training run: a {@link FitHistory} has it all, and so does the
 * run a saved model card keeps (`TrainingRun.curves`, see {@link historyFromRun}).
 * @category Step 5: Evaluate
 */
export type TrainingCurves = Pick<FitHistory, 'epochs' | 'loss' | 'accuracy' | 'valLoss' | 'valAccuracy' | 'bestEpoch' | 'stoppedEarly' | 'trained' | 'warnings'>;

/**
 * The {@link TrainingCurves} of a run of a model card (`model.card.training[i]`), or `undefined` when the card did
 * not record its per-epoch curves (cards before 0.2.0). Lets a report made from a saved model draw its training.
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const model = await loadModel('./flowers');
 * const [head, fineTune] = model.card.training.map(historyFromRun);
 * ```
 */
export function historyFromRun(run: TrainingRun): TrainingCurves | undefined {
  const c = run.curves;
  if (!c || c.loss.length === 0) return undefined;
  return {
    epochs: c.loss.length, loss: [...c.loss], accuracy: [...c.accuracy], valLoss: [...c.valLoss], valAccuracy: [...c.valAccuracy],
    bestEpoch: Math.min(run.bestEpoch, c.loss.length - 1), stoppedEarly: run.stoppedEarly,
    trained: { layers: [...run.trainedLayers], parameters: run.trainedParameters }, warnings: [],
  };
}

/** Options of {@link trainingCurvesSpec}. @category Step 5: Evaluate */
export interface TrainingCurvesSpecArgs extends ChartSizeArgs {
  /** The head's training history (`fit`'s result, `transferLearn(...).history`). Required. */
  history: TrainingCurves;
  /** The fine-tuning history (`transferLearn(...).fineTuneHistory`); its epochs follow the head's. @defaultValue none */
  fineTuneHistory?: TrainingCurves;
}

/** One point of a training curve, as the spec's data holds it. */
interface CurvePoint {
  epoch: number;
  phase: 'head' | 'fine-tuning';
  split: 'train' | 'validation';
  metric: 'loss' | 'accuracy';
  value: number;
}

function curvePoints(history: TrainingCurves, phase: CurvePoint['phase'], offset: number): CurvePoint[] {
  const points: CurvePoint[] = [];
  const series: [CurvePoint['split'], CurvePoint['metric'], number[]][] = [
    ['train', 'loss', history.loss],
    ['train', 'accuracy', history.accuracy],
    ['validation', 'loss', history.valLoss],
    ['validation', 'accuracy', history.valAccuracy],
  ];
  for (const [split, metric, values] of series) {
    values.forEach((value, i) => {
      if (Number.isFinite(value)) points.push({ epoch: offset + i + 1, phase, split, metric, value });
    });
  }
  return points;
}

function checkSize(args: ChartSizeArgs, where: string): void {
  for (const key of ['width', 'height'] as const) {
    const v = args[key];
    check(v === undefined || (Number.isFinite(v) && v >= 20 && v <= 4000), `${where}: ${key} must be a number of pixels from 20 to 4000, got ${JSON.stringify(v)}.`);
  }
}

/**
 * The training curves: loss and accuracy per epoch, train and validation, one panel each; the fine-tuning epochs
 * (dashed) follow the head's, after a grey rule where fine-tuning began; a grey rule marks the head's best epoch
 * when early stopping restored an earlier one than the last.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const { history, fineTuneHistory } = await transferLearn({ data: './photos', fineTune: true });
 * const spec = trainingCurvesSpec({ history, fineTuneHistory });
 * await vegaEmbed('#curves', spec); // in a page; or writeReport(...) in Node
 * ```
 */
export function trainingCurvesSpec(args: TrainingCurvesSpecArgs): VegaLiteSpec {
  check(args != null && args.history != null && Array.isArray(args.history.loss), 'trainingCurvesSpec: history is required: a FitHistory (fit(...) or transferLearn(...).history).');
  checkSize(args, 'trainingCurvesSpec');
  const head = args.history.loss.length;
  const fineTuning = args.fineTuneHistory !== undefined && args.fineTuneHistory.loss.length > 0;
  const values = [...curvePoints(args.history, 'head', 0), ...(args.fineTuneHistory ? curvePoints(args.fineTuneHistory, 'fine-tuning', head) : [])];
  const epochs = head + (args.fineTuneHistory?.loss.length ?? 0);
  const height = args.height ?? 220;
  const line = {
    mark: { type: 'line' as const, point: true, tooltip: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative' as const, title: 'epoch', scale: { domain: [1, Math.max(2, epochs)], nice: false }, axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'value', type: 'quantitative' as const, title: null, scale: { zero: false } },
      color: { field: 'split', type: 'nominal' as const, title: null, scale: { domain: ['train', 'validation'], range: [BLUE, ORANGE] } },
      detail: { field: 'phase', type: 'nominal' as const },
      // Dashed fine-tuning epochs, only when there are some (no legend entry for a phase that did not run).
      ...(fineTuning ? { strokeDash: { field: 'phase', type: 'nominal' as const, title: null, scale: { domain: ['head', 'fine-tuning'], range: [[1, 0], [5, 3]] }, legend: { symbolType: 'stroke', symbolStrokeWidth: 2, encode: { symbols: { update: { stroke: { value: '#555' } } } } } } } : {}),
    },
  };
  // Where fine-tuning began, and the head's best epoch (early stopping restores its weights).
  const marks = [
    ...(fineTuning ? [{ epoch: head + 0.5, what: 'fine-tuning' }] : []),
    ...(args.history.bestEpoch >= 0 && args.history.bestEpoch < head - 1 ? [{ epoch: args.history.bestEpoch + 1, what: 'best' }] : []),
  ];
  const rule = {
    data: { values: marks },
    layer: [
      { mark: { type: 'rule' as const, color: '#999', strokeDash: [2, 2] }, encoding: { x: { field: 'epoch', type: 'quantitative' as const } } },
      // "best" at the top right of its rule; "fine-tuning" at the bottom left of its own (it is often near the right edge).
      { transform: [{ filter: "datum.what === 'best'" }], mark: { type: 'text' as const, color: '#777', align: 'left' as const, baseline: 'top' as const, dx: 3, dy: 2, fontSize: 10 }, encoding: { x: { field: 'epoch', type: 'quantitative' as const }, y: { value: 0 }, text: { field: 'what' } } },
      { transform: [{ filter: "datum.what !== 'best'" }], mark: { type: 'text' as const, color: '#777', align: 'right' as const, baseline: 'bottom' as const, dx: -3, dy: -2, fontSize: 10 }, encoding: { x: { field: 'epoch', type: 'quantitative' as const }, y: { value: height }, text: { field: 'what' } } },
    ],
  };
  return {
    $schema: SCHEMA,
    data: { values },
    facet: { column: { field: 'metric', type: 'nominal', title: null, sort: ['loss', 'accuracy'], header: { labelFontSize: 13, labelFontWeight: 'bold' } } },
    spec: { width: args.width ?? 300, height, layer: marks.length ? [line, rule] : [line] },
    resolve: { scale: { y: 'independent' } },
  } as VegaLiteSpec;
}

/** Options of {@link confusionMatrixSpec}. @category Step 5: Evaluate */
export interface ConfusionMatrixSpecArgs extends ChartSizeArgs {
  /** The evaluation (`evaluate`'s result): its `classes` and `confusionMatrix` are drawn. Required. */
  evaluation: Pick<Evaluation, 'classes' | 'confusionMatrix'>;
}

/**
 * The confusion matrix as a heat map: true class down, predicted class across, each cell's count written in it and
 * its colour the share of the true class's images (so a small class's mistakes show as much as a large one's).
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const spec = confusionMatrixSpec({ evaluation: await evaluate(model, validation) });
 * ```
 */
export function confusionMatrixSpec(args: ConfusionMatrixSpecArgs): VegaLiteSpec {
  const e = args?.evaluation;
  check(e != null && Array.isArray(e.classes) && Array.isArray(e.confusionMatrix), 'confusionMatrixSpec: evaluation is required: an Evaluation (evaluate(...)).');
  check(e.confusionMatrix.length === e.classes.length, `confusionMatrixSpec: the matrix has ${e.confusionMatrix.length} rows for ${e.classes.length} classes.`);
  checkSize(args, 'confusionMatrixSpec');
  const values = e.confusionMatrix.flatMap((row, a) => {
    const total = row.reduce((s, v) => s + v, 0);
    return row.map((count, p) => ({ actual: e.classes[a]!, predicted: e.classes[p]!, count, share: total ? count / total : 0 }));
  });
  const side = Math.min(520, Math.max(220, 64 * e.classes.length));
  const axis = { labelLimit: 160, labelAngle: 0 };
  const encoding = {
    x: { field: 'predicted', type: 'nominal', sort: e.classes, title: 'predicted', axis: { ...axis, labelAngle: e.classes.length > 4 ? -40 : 0, orient: 'top' } },
    y: { field: 'actual', type: 'nominal', sort: e.classes, title: 'true class', axis },
  };
  return {
    $schema: SCHEMA,
    data: { values },
    width: args.width ?? side,
    height: args.height ?? side,
    encoding,
    layer: [
      {
        mark: { type: 'rect', tooltip: true },
        encoding: { color: { field: 'share', type: 'quantitative', title: 'share of row', scale: { scheme: 'blues', domain: [0, 1] }, legend: { format: '.0%' } } },
      },
      {
        mark: { type: 'text', fontSize: 13 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
        },
      },
    ],
  } as VegaLiteSpec;
}

/** Options of {@link reliabilitySpec}. @category Step 5: Evaluate */
export interface ReliabilitySpecArgs extends ChartSizeArgs {
  /** The evaluation (`evaluate`'s result): its `reliability.bins` and `ece` are drawn. Required. */
  evaluation: Pick<Evaluation, 'reliability' | 'ece'>;
}

/**
 * The reliability diagram: accuracy against confidence in the bins of `evaluation.reliability` (bars over each
 * bin, only bins that hold images, paler the fewer images they hold; a dot at each bin's mean confidence, its size
 * the number of images), with the
 * diagonal a calibrated model follows; the expected calibration error in the title.
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const spec = reliabilitySpec({ evaluation: await evaluate(model, validation) });
 * ```
 */
export function reliabilitySpec(args: ReliabilitySpecArgs): VegaLiteSpec {
  const e = args?.evaluation;
  check(e != null && e.reliability != null && Array.isArray(e.reliability.bins), 'reliabilitySpec: evaluation is required: an Evaluation (evaluate(...)) with its reliability bins.');
  checkSize(args, 'reliabilitySpec');
  const bins = e.reliability.bins.filter((b) => b.count > 0).map((b) => ({ ...b }));
  const unit = { type: 'quantitative' as const, scale: { domain: [0, 1] }, axis: { format: '.0%' } };
  return {
    $schema: SCHEMA,
    title: { text: `expected calibration error ${(100 * e.ece).toFixed(2)}%`, fontSize: 12, fontWeight: 'normal' },
    width: args.width ?? 300,
    height: args.height ?? 300,
    layer: [
      {
        data: { values: bins },
        mark: { type: 'rect', color: BLUE, stroke: 'white', tooltip: true },
        encoding: {
          x: { field: 'lower', ...unit, title: 'confidence (top-class probability)' },
          x2: { field: 'upper' },
          y: { field: 'accuracy', ...unit, title: 'accuracy' },
          y2: { datum: 0 },
          // A bin of a few images is pale: its accuracy says little.
          opacity: { field: 'count', type: 'quantitative', scale: { type: 'sqrt', range: [0.12, 0.75] }, legend: null },
        },
      },
      {
        data: { values: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
        mark: { type: 'line', color: '#888', strokeDash: [4, 3] },
        encoding: { x: { field: 'x', ...unit }, y: { field: 'y', ...unit } },
      },
      {
        data: { values: bins },
        mark: { type: 'point', filled: true, color: RED, tooltip: true },
        encoding: { x: { field: 'confidence', ...unit }, y: { field: 'accuracy', ...unit }, size: { field: 'count', type: 'quantitative', title: 'images', scale: { range: [20, 300] } } },
      },
    ],
  } as VegaLiteSpec;
}

/** Options of {@link unknownHistogramSpec}. @category Step 5: Evaluate */
export interface UnknownHistogramSpecArgs extends ChartSizeArgs {
  /** The detector's figures (`evaluate(...).unknown`): its `histogram` and `threshold` are drawn. Required. */
  unknown: Pick<UnknownEvaluation, 'histogram' | 'threshold'>;
  /** What the bars of the evaluated images are called in the legend. @defaultValue `'images of the classes'` */
  classesLabel?: string;
  /** What the bars of the other images are called. @defaultValue `'other images'` */
  otherLabel?: string;
}

/**
 * The unknown detector's score histogram: the evaluated images of the classes and, when `evaluate` was given
 * `unknown` images, those other images, overlaid, with a red rule at the threshold (images scoring below it are
 * refused as unknown).
 *
 * @category Step 5: Evaluate
 * @example
 * ```ts
 * const result = await evaluate(model, validation, { unknown: otherPhotos });
 * if (result.unknown) spec = unknownHistogramSpec({ unknown: result.unknown });
 * ```
 */
export function unknownHistogramSpec(args: UnknownHistogramSpecArgs): VegaLiteSpec {
  const u = args?.unknown;
  check(u != null && u.histogram != null && Array.isArray(u.histogram.edges) && Number.isFinite(u.threshold), 'unknownHistogramSpec: unknown is required: evaluate(...).unknown, with its histogram and threshold.');
  const h = u.histogram;
  check(h.edges.length === h.classes.length + 1 && (h.other === undefined || h.other.length === h.classes.length), 'unknownHistogramSpec: the histogram needs one more edge than bins, and as many other counts as bins.');
  checkSize(args, 'unknownHistogramSpec');
  const ours = args.classesLabel ?? 'images of the classes';
  const theirs = args.otherLabel ?? 'other images';
  const bars = [
    ...h.classes.map((count, i) => ({ group: ours, lower: h.edges[i]!, upper: h.edges[i + 1]!, count })),
    ...(h.other ?? []).map((count, i) => ({ group: theirs, lower: h.edges[i]!, upper: h.edges[i + 1]!, count })),
  ].filter((b) => b.count > 0);
  return {
    $schema: SCHEMA,
    width: args.width ?? 360,
    height: args.height ?? 220,
    layer: [
      {
        data: { values: bars },
        mark: { type: 'rect', opacity: 0.6, stroke: 'white', strokeWidth: 0.5, tooltip: true },
        encoding: {
          x: { field: 'lower', type: 'quantitative', title: 'detector score (higher = more like the classes)', scale: { domain: [h.edges[0]!, h.edges[h.edges.length - 1]!], nice: false } },
          x2: { field: 'upper' },
          y: { field: 'count', type: 'quantitative', title: 'images', stack: null, axis: { tickMinStep: 1, format: 'd' } },
          y2: { datum: 0 },
          color: { field: 'group', type: 'nominal', title: null, scale: { domain: h.other ? [ours, theirs] : [ours], range: [BLUE, ORANGE] }, legend: { orient: 'top', labelLimit: 400 } },
        },
      },
      {
        data: { values: [{ threshold: u.threshold, label: `threshold ${u.threshold.toFixed(2)}` }] },
        layer: [
          { mark: { type: 'rule', color: RED, strokeWidth: 2 }, encoding: { x: { field: 'threshold', type: 'quantitative' } } },
          { mark: { type: 'text', color: RED, align: 'left', dx: 4, dy: 4, baseline: 'top' }, encoding: { x: { field: 'threshold', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } } },
        ],
      },
    ],
  } as VegaLiteSpec;
}
