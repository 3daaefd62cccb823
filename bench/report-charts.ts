/**
 * `node --import tsx bench/report-charts.ts`: how long the report's four charts take to render in Node (vega-lite
 * compile, then Vega's headless `toSVG()`), cold (the first call imports vega and vega-lite) and warm, and how many
 * bytes of SVG they make. Data shaped like the flowers report: 20 head + 5 fine-tuning epochs, a 5-class confusion
 * matrix, 15 reliability bins, 736 + 1000 detector scores (synthetic values: only the sizes matter here).
 */
import { renderChartSvg } from '../src/node/report';
import { trainingCurvesSpec, confusionMatrixSpec, reliabilitySpec, unknownHistogramSpec } from '../src/index';
import { scoreHistogram } from '../src/evaluate/unknown';
const h = (n: number) => ({ epochs: n, loss: Array.from({ length: n }, (_, i) => 1 / (i + 1)), accuracy: Array.from({ length: n }, (_, i) => 1 - 1 / (i + 2)), valLoss: Array.from({ length: n }, (_, i) => 1 / (i + 1.5)), valAccuracy: Array.from({ length: n }, (_, i) => 1 - 1 / (i + 2.5)), bestEpoch: n - 1, stoppedEarly: false, trained: { layers: [], parameters: 0 }, boundary: { layers: [], shapes: [] }, timing: { extractMs: 0, trainMs: 0 }, warnings: [], resumedEpochs: 0 });
const classes = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'];
const e = { classes, confusionMatrix: classes.map((_, a) => classes.map((_, p) => (a === p ? 120 : 5))), ece: 0.02, reliability: { bins: Array.from({ length: 15 }, (_, i) => ({ lower: i / 15, upper: (i + 1) / 15, count: i * 10, confidence: (i + 0.5) / 15, accuracy: (i + 0.4) / 15 })) } };
const u = { threshold: -1.5, histogram: scoreHistogram(Array.from({ length: 736 }, (_, i) => Math.sin(i) * 2), Array.from({ length: 1000 }, (_, i) => Math.cos(i) * 2 - 4), -1.5) };
for (const round of ['cold', 'warm']) {
  const t0 = performance.now(); let bytes = 0;
  for (const spec of [trainingCurvesSpec({ history: h(20), fineTuneHistory: h(5) }), confusionMatrixSpec({ evaluation: e }), reliabilitySpec({ evaluation: e }), unknownHistogramSpec({ unknown: u })]) bytes += (await renderChartSvg(spec)).length;
  console.log(round, (performance.now() - t0).toFixed(0), 'ms for 4 charts,', bytes, 'bytes of SVG');
}
