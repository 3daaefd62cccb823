/**
 * The page's charts as Vega-Lite specs, rendered to SVG with vega: the training curves (loss and accuracy per
 * epoch, held-out dashed) and the confusion matrix. The specs are plain data, built here in one place, so they are
 * easy to swap for shared spec builders later.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface Curves {
  loss: number[];
  accuracy: number[];
  valLoss: number[];
  valAccuracy: number[];
}

const SERIES = ['training', 'held-out'];
const COLOURS = ['#1f6feb', '#e8590c'];
const FONT = 'system-ui, sans-serif';

/** One row per epoch, metric and series: what the curves spec plots. */
export function curveRows(curves: Curves): { epoch: number; metric: string; series: string; value: number }[] {
  const rows: { epoch: number; metric: string; series: string; value: number }[] = [];
  const add = (values: number[], metric: string, series: string) => values.forEach((value, i) => rows.push({ epoch: i + 1, metric, series, value }));
  add(curves.loss, 'loss', 'training');
  add(curves.valLoss, 'loss', 'held-out');
  add(curves.accuracy, 'accuracy', 'training');
  add(curves.valAccuracy, 'accuracy', 'held-out');
  return rows;
}

/** Loss and accuracy side by side, epochs 1..totalEpochs on x; the data comes later, by name (`rows`). */
export function curvesSpec(totalEpochs: number, width = 300): TopLevelSpec {
  const panel = (metric: 'loss' | 'accuracy') => ({
    title: metric,
    width,
    height: 170,
    transform: [{ filter: `datum.metric === '${metric}'` }],
    mark: { type: 'line' as const, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative' as const, scale: { domain: [1, Math.max(2, totalEpochs)] }, axis: { tickMinStep: 1, format: 'd' } },
      // minExtent: room for the labels from the start; the empty loss chart has none, and the view's padding
      // computed then would clip them once the data comes.
      y: { field: 'value', type: 'quantitative' as const, title: null, axis: { minExtent: 34 }, ...(metric === 'accuracy' ? { scale: { domain: [0, 1] } } : { scale: { zero: true } }) },
      color: { field: 'series', type: 'nominal' as const, scale: { domain: SERIES, range: COLOURS }, legend: { title: null, orient: 'top' as const } },
      strokeDash: { field: 'series', type: 'nominal' as const, scale: { domain: SERIES, range: [[1, 0], [5, 3]] }, legend: { title: null, orient: 'top' as const } },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { name: 'rows' },
    hconcat: [panel('loss'), panel('accuracy')],
    config: { font: FONT, view: { stroke: '#e1e5ea' } },
  } as TopLevelSpec;
}

/** `matrix[actual][predicted]` as coloured cells with counts; rows are the actual class. */
export function confusionSpec(classes: readonly string[], matrix: number[][]): TopLevelSpec {
  const values = matrix.flatMap((row, a) => {
    const total = row.reduce((s, v) => s + v, 0) || 1;
    return row.map((count, p) => ({ actual: classes[a], predicted: classes[p], count, share: count / total, correct: a === p }));
  });
  const cell = Math.max(28, Math.min(70, Math.floor(240 / Math.max(1, classes.length))));
  const order = [...classes];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    width: cell * classes.length,
    height: cell * classes.length,
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: order, axis: { orient: 'top', labelAngle: -40 } },
      y: { field: 'actual', type: 'nominal', sort: order },
    },
    layer: [
      ...([true, false] as const).map((correct) => ({
        transform: [{ filter: correct ? 'datum.correct' : '!datum.correct' }],
        mark: { type: 'rect' as const, stroke: '#fff', strokeWidth: 2 },
        encoding: {
          color: {
            condition: { test: 'datum.count === 0', value: '#f4f6f9' },
            field: 'share', type: 'quantitative' as const, scale: { scheme: correct ? 'blues' : 'reds', domain: [0, 1] }, legend: null,
          },
          tooltip: [{ field: 'actual' }, { field: 'predicted' }, { field: 'count' }],
        },
      })),
      {
        mark: { type: 'text', fontSize: 13 },
        encoding: { text: { field: 'count' }, color: { condition: { test: 'datum.share > 0.6', value: '#fff' }, value: '#1d2430' } },
      },
    ],
    resolve: { scale: { color: 'independent' } },
    config: { font: FONT, view: { stroke: null } },
  } as TopLevelSpec;
}

/** A Vega view of `spec`, rendered as SVG into `container` (replacing what was there). */
export async function render(container: HTMLElement, spec: TopLevelSpec): Promise<vega.View> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'svg', container });
  await view.runAsync();
  return view;
}

/**
 * The live training chart: one view per training run, its rows replaced after epochs. Epochs can end faster than
 * the chart renders (a render is one main-thread task of 50-100 ms on a slow machine): updates are coalesced, at
 * most one render per {@link CurvesChart.MIN_GAP_MS}, the latest curves winning.
 */
export class CurvesChart {
  private view: vega.View | undefined;
  private latest: Curves | undefined;
  private scheduled = false;
  private epochs = 0;
  private lastRender = 0;
  /** The shortest time between two renders, ms: the page stays free for input in between. */
  static readonly MIN_GAP_MS = 250;

  constructor(private readonly container: HTMLElement) {}

  /** An empty chart for a run of `totalEpochs` (the view is rebuilt only when that number changes). */
  async reset(totalEpochs: number): Promise<void> {
    this.latest = undefined;
    if (this.view && this.epochs === totalEpochs) {
      await this.view.data('rows', []).runAsync();
      return;
    }
    this.view?.finalize();
    this.epochs = totalEpochs;
    this.view = await render(this.container, curvesSpec(totalEpochs));
  }

  /** Shows `curves` (after the chart was reset) at the next animation frame. */
  update(curves: Curves): void {
    this.latest = { loss: [...curves.loss], accuracy: [...curves.accuracy], valLoss: [...curves.valLoss], valAccuracy: [...curves.valAccuracy] };
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = Math.max(0, this.lastRender + CurvesChart.MIN_GAP_MS - performance.now());
    setTimeout(() => requestAnimationFrame(() => {
      this.scheduled = false;
      this.lastRender = performance.now();
      const view = this.view;
      if (view && this.latest) void view.data('rows', curveRows(this.latest)).runAsync();
    }), wait);
  }
}
