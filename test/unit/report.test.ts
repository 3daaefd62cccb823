/**
 * The report: the Vega-Lite spec builders (their data, and that Vega renders each to SVG), the unknown-score
 * histogram, renderReport's page (every section, escaping of class names and file paths, nothing external, bad
 * charts and pictures refused), and writeReport on a really trained tiny model whose images are files (charts,
 * pictures with heatmaps, atomic file, tensors freed).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { build } from 'esbuild';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachHead,
  confusionMatrixSpec,
  env,
  evaluate,
  fit,
  freeze,
  imageFolder,
  loadBackbone,
  reliabilitySpec,
  renderReport,
  trainingCurvesSpec,
  historyFromRun,
  unknownHistogramSpec,
  writeReport,
  type Evaluation,
  type FitHistory,
  type TransferModel,
} from '../../src/node/index';
import { scoreHistogram } from '../../src/evaluate/unknown';
import { renderChartSvg } from '../../src/node/report';
import { escapeHtml, REPORT_SECTIONS } from '../../src/report/html';
import { TransferError } from '../../src/errors';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;

/** A history as `fit` returns it, with the given per-epoch values. */
function history(loss: number[], valLoss: number[], extra: Partial<FitHistory> = {}): FitHistory {
  return {
    epochs: loss.length,
    loss,
    accuracy: loss.map((l) => 1 - l / 2),
    valLoss,
    valAccuracy: valLoss.map((l) => 1 - l / 2),
    bestEpoch: loss.length - 1,
    stoppedEarly: false,
    trained: { layers: ['dense'], parameters: 10 },
    boundary: { layers: ['out_relu'], shapes: [[1, 1, 16]] },
    timing: { extractMs: 1, trainMs: 1 },
    warnings: [],
    resumedEpochs: 0,
    ...extra,
  };
}

type Data = { values: Record<string, unknown>[] };

describe('spec builders', () => {
  it('trainingCurvesSpec: one point per epoch, split and metric; fine-tuning epochs follow the head\'s, after a rule', async () => {
    const spec = trainingCurvesSpec({ history: history([0.9, 0.5, 0.4], [0.8, 0.6, 0.55]), fineTuneHistory: history([0.3, 0.2], [0.5, 0.45]) }) as unknown as {
      data: Data;
      spec: { layer: unknown[] };
    };
    const values = spec.data.values;
    expect(values).toHaveLength((3 + 2) * 4);
    const ft = values.filter((v) => v.phase === 'fine-tuning');
    expect(ft.map((v) => v.epoch).sort()).toEqual([4, 4, 4, 4, 5, 5, 5, 5]);
    expect(values.find((v) => v.epoch === 2 && v.split === 'validation' && v.metric === 'loss')!.value).toBe(0.6);
    expect(spec.spec.layer).toHaveLength(2); // the curves, and the rule where fine-tuning began
    const early = trainingCurvesSpec({ history: history([0.9, 0.5, 0.4], [0.8, 0.6, 0.7], { bestEpoch: 1, stoppedEarly: true }) }) as unknown as { spec: { layer: { data?: Data }[] } };
    expect(early.spec.layer[1]!.data!.values).toEqual([{ epoch: 2, what: 'best' }]);
    const headOnly = trainingCurvesSpec({ history: history([0.9, 0.5], [0.8, 0.6]) }) as unknown as { spec: { layer: { encoding: Record<string, unknown> }[] } };
    expect(headOnly.spec.layer).toHaveLength(1);
    expect(headOnly.spec.layer[0]!.encoding.strokeDash).toBeUndefined();
    const svg = await renderChartSvg(trainingCurvesSpec({ history: history([0.9, 0.5, 0.4], [0.8, 0.6, 0.55]) }));
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('validation');
  });

  it('confusionMatrixSpec: one cell per pair, coloured by the share of its row; Vega escapes class names', async () => {
    const evaluation = { classes: ['<b>cat</b>', 'dog', 'owl'], confusionMatrix: [[8, 2, 0], [1, 9, 0], [0, 0, 0]] };
    const spec = confusionMatrixSpec({ evaluation }) as unknown as { data: Data };
    expect(spec.data.values).toHaveLength(9);
    expect(spec.data.values[1]).toEqual({ actual: '<b>cat</b>', predicted: 'dog', count: 2, share: 0.2 });
    expect(spec.data.values[8]!.share).toBe(0); // an empty row is no division by zero
    const svg = await renderChartSvg(spec as never);
    expect(svg).toContain('&lt;b&gt;cat&lt;/b&gt;');
    expect(svg).not.toContain('<b>cat');
    expect(() => confusionMatrixSpec({ evaluation: { classes: ['a'], confusionMatrix: [[1], [2]] } })).toThrow(TransferError);
  });

  it('reliabilitySpec: only bins with images, and the diagonal', async () => {
    const bins = Array.from({ length: 15 }, (_, i) => ({ lower: i / 15, upper: (i + 1) / 15, count: i === 14 ? 9 : i === 10 ? 1 : 0, confidence: i === 14 ? 0.97 : 0.7, accuracy: i === 14 ? 1 : 0 }));
    const spec = reliabilitySpec({ evaluation: { reliability: { bins }, ece: 0.0444 } }) as unknown as { layer: { data: Data }[]; title: { text: string } };
    expect(spec.layer[0]!.data.values.map((b) => b.count)).toEqual([1, 9]);
    expect(spec.layer[1]!.data.values).toEqual([{ x: 0, y: 0 }, { x: 1, y: 1 }]);
    expect(spec.title.text).toContain('4.44%');
    expect(await renderChartSvg(spec as never)).toMatch(/^<svg/);
  });

  it('unknownHistogramSpec: the non-empty bins of both groups and a rule at the threshold', async () => {
    const histogram = scoreHistogram([1, 1.2, 2, 2.1], [-1, -0.5, 1.1], 0.5, 10);
    const spec = unknownHistogramSpec({ unknown: { histogram, threshold: 0.5 } }) as unknown as { layer: [{ data: Data }, { data: Data }] };
    const bars = spec.layer[0].data.values;
    expect(bars.filter((b) => b.group === 'images of the classes').reduce((s, b) => s + (b.count as number), 0)).toBe(4);
    expect(bars.filter((b) => b.group === 'other images').reduce((s, b) => s + (b.count as number), 0)).toBe(3);
    expect(spec.layer[1].data.values[0]!.threshold).toBe(0.5);
    expect(await renderChartSvg(spec as never)).toContain('threshold 0.50');
    expect(() => unknownHistogramSpec({ unknown: { histogram: { edges: [0, 1], classes: [1, 2], other: undefined }, threshold: 0 } })).toThrow(TransferError);
  });

  it('check their sizes', () => {
    expect(() => reliabilitySpec({ evaluation: { reliability: { bins: [] }, ece: 0 }, width: -3 })).toThrow(/width/);
  });
});

describe('entries', () => {
  it('the main entry bundles the spec builders and renderReport without Vega; the Node entry loads Vega only when a report is made', async () => {
    const result = await build({ entryPoints: ['src/index.ts'], bundle: true, write: false, platform: 'browser', format: 'esm', logLevel: 'silent', external: ['@tensorflow/*'], metafile: true });
    const inputs = Object.keys(result.metafile!.inputs);
    expect(inputs).toContain('src/report/specs.ts');
    expect(inputs).toContain('src/report/html.ts');
    expect(inputs.filter((f) => /node_modules\/vega/.test(f))).toEqual([]);
    const node = fs.readFileSync('src/node/report.ts', 'utf8');
    expect(node).not.toMatch(/^import .* from 'vega(-lite)?';$/m); // static imports would load Vega with tfjs-transfer/node
    expect(node).toMatch(/import\('vega'\)/);
  });
});

describe('scoreHistogram', () => {
  it('spans every score and the threshold, counts each score once', () => {
    const h = scoreHistogram([0.1, 0.2, 0.9, 1], [-2, 3], 5, 30);
    expect(h.edges).toHaveLength(31);
    expect(h.edges[0]).toBe(-2);
    expect(h.edges[30]).toBe(5);
    expect(h.classes.reduce((a, b) => a + b, 0)).toBe(4);
    expect(h.other!.reduce((a, b) => a + b, 0)).toBe(2);
    expect(h.other![29]).toBe(0);
    expect(h.classes[Math.floor((1 - -2) / (7 / 30))]).toBeGreaterThan(0);
  });

  it('widens a range of one value, and has no other counts without other images', () => {
    const h = scoreHistogram([2, 2, 2], undefined, 2, 4);
    expect(h.edges[0]).toBeLessThan(2);
    expect(h.edges[4]).toBeGreaterThan(2);
    expect(h.classes.reduce((a, b) => a + b, 0)).toBe(3);
    expect(h.other).toBeUndefined();
  });
});

/**
 * Every reference out of an HTML page: src/href-like attributes not to `#` or a data: image, url(...) not to `#`,
 * @import, elements that load or run things, and http(s) URLs other than the SVG namespaces. Text and attribute
 * values are escaped, so tags are found by their "<"; attributes are read one by one.
 */
function externalReferences(html: string): string[] {
  const refs: string[] = [];
  for (const tag of html.matchAll(/<\/?([A-Za-z][\w:-]*)([^>]*)>/g)) {
    if (/^(script|link|iframe|object|embed|base)$/i.test(tag[1]!)) refs.push(`<${tag[1]}>`);
    for (const a of tag[2]!.matchAll(/([^\s=/>]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/g)) {
      const value = a[2]!.replace(/^["']|["']$/g, '');
      if (/^(src|href|xlink:href|action|poster|srcset)$/i.test(a[1]!) && !/^(#|data:image\/)/.test(value)) refs.push(a[0]);
      if (/url\(\s*(?!['"]?#)/i.test(value)) refs.push(a[0]);
    }
  }
  for (const m of html.matchAll(/@import|url\(\s*(?!['"]?#)/gi)) refs.push(m[0]);
  for (const m of html.matchAll(/https?:\/\/[^\s"'<>)&]+/gi)) if (!/^http:\/\/www\.w3\.org\/(2000\/svg|1999\/xlink)$/.test(m[0])) refs.push(m[0]);
  return refs;
}

describe('renderReport', () => {
  const evil = '<img src=x onerror=alert(1)>';
  const evaluation: Evaluation = {
    loss: 0.3,
    accuracy: 0.9,
    count: 10,
    classes: [evil, 'dog'],
    perClass: [
      { name: evil, precision: 1, recall: 0.8, f1: 0.889, support: 5, rocAuc: 0.95 },
      { name: 'dog', precision: 0.833, recall: 1, f1: 0.909, support: 5, rocAuc: 0.95 },
    ],
    macroF1: 0.899,
    confusionMatrix: [[4, 1], [0, 5]],
    rocAuc: 0.95,
    ece: 0.05,
    reliability: { bins: [{ lower: 0, upper: 1, count: 10, confidence: 0.85, accuracy: 0.9 }] },
    misclassified: [{ index: 3, source: '/data/"quoted"/<cat>.jpg', actual: evil, predicted: 'dog', probability: 0.7 }],
    topLosses: [{ index: 3, source: '/data/"quoted"/<cat>.jpg', actual: evil, predicted: 'dog', probability: 0.7, actualProbability: 0.3, loss: 1.2 }],
    confusedPairs: [{ actual: evil, predicted: 'dog', count: 1 }],
    nearBoundary: [],
  };
  const pixel = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

  it('has every section, in order, and says why a part is missing', () => {
    const html = renderReport({ evaluation, generatedAt: '2026-01-02T03:04:05Z' });
    const ids = [...html.matchAll(/<section id="([^"]+)"/g)].map((m) => m[1]);
    expect(ids).toEqual(REPORT_SECTIONS.map(([id]) => id));
    expect(html).toContain('2026-01-02T03:04:05.000Z');
    expect(html).toMatch(/id="training"><h2>Training curves<\/h2><p class="missing">Not available/);
    expect(html).toMatch(/id="card"><h2>Model card<\/h2><p class="missing">/);
    expect(html).toContain('90.00%');
    expect(renderReport()).toContain('<section id="data">');
  });

  it('historyFromRun: the curves a model card kept, as the chart takes them; none when the card has none', () => {
    const run = {
      imagesPerClass: { cats: 2, dogs: 2 }, validationImages: 2, epochs: 3, bestEpoch: 1, stoppedEarly: true, trainedLayers: ['dense'], trainedParameters: 10,
      settings: { optimizer: 'adam', learningRate: 0.001, batchSize: 2, seed: 1, validationSplit: 0.2, augment: null, earlyStoppingPatience: 1 },
      finishedAt: '2026-01-01T00:00:00Z',
      curves: { loss: [0.9, 0.5, 0.6], accuracy: [0.5, 0.8, 0.7], valLoss: [0.8, 0.6, 0.7], valAccuracy: [0.5, 0.75, 0.7] },
    };
    const h = historyFromRun(run)!;
    expect(h).toEqual({ epochs: 3, loss: [0.9, 0.5, 0.6], accuracy: [0.5, 0.8, 0.7], valLoss: [0.8, 0.6, 0.7], valAccuracy: [0.5, 0.75, 0.7], bestEpoch: 1, stoppedEarly: true, trained: { layers: ['dense'], parameters: 10 }, warnings: [] });
    expect(renderReport({ history: h, charts: { curves: '<svg></svg>' } })).toMatch(/head: 3 epochs \(stopped early\), best epoch 2, validation accuracy 75\.00%/);
    const { curves: _, ...old } = run;
    expect(historyFromRun(old)).toBeUndefined();
    const tuned = renderReport({ history: history([0.9, 0.5, 0.4], [0.8, 0.6, 0.55]), fineTuneHistory: history([0.3, 0.2], [0.5, 0.45]) });
    expect(tuned).toContain('<li>fine-tuning: epochs 4–5, best epoch 5, validation accuracy 77.50% (loss 0.4500)');
  });

  it('escapes class names and file paths everywhere', () => {
    const html = renderReport({ evaluation, title: 'a <b> & "c"', topLossImages: [{ image: pixel }] });
    expect(html).not.toContain(evil);
    expect(html).not.toContain('<cat>');
    expect(html).not.toContain('"quoted"');
    expect(html).toContain(escapeHtml(evil));
    expect(html).toContain('&lt;cat&gt;.jpg');
    expect(html).toContain('<title>a &lt;b&gt; &amp; &quot;c&quot;</title>');
    expect(escapeHtml(`<>&"'`)).toBe('&lt;&gt;&amp;&quot;&#39;');
  });

  it('references nothing outside the file: no script, no link, only data: pictures, and a CSP that forbids requests', async () => {
    const confusion = await renderChartSvg(confusionMatrixSpec({ evaluation }));
    const html = renderReport({ evaluation, charts: { confusion }, topLossImages: [{ image: pixel, predicted: pixel }] });
    expect(html).toContain('<svg');
    expect(externalReferences(html)).toEqual([]);
    expect(html).toContain(`content="default-src 'none'; img-src data:; style-src 'unsafe-inline'"`);
    // The checker itself finds what it should.
    expect(externalReferences('<img src="https://x.org/a.png"><link href=x.css><svg xmlns="http://www.w3.org/2000/svg">')).toHaveLength(4);
  });

  it('refuses charts with script or links, and pictures that are not data: images', () => {
    for (const bad of ['<svg><script>alert(1)</script></svg>', '<svg onload="x()"></svg>', '<svg><image href="https://x.org/a.png"/></svg>', '<div></div>', '<svg><foreignObject/></svg>', '<svg><rect style="fill:url(https://x.org/f)"/></svg>', '<svg><!-- x --></svg>']) {
      expect(() => renderReport({ evaluation, charts: { confusion: bad } }), bad).toThrow(TransferError);
    }
    for (const bad of ['https://x.org/a.png', 'data:text/html;base64,PGI+', 'data:image/png;base64,"><script>']) {
      expect(() => renderReport({ evaluation, topLossImages: [{ image: bad }] }), bad).toThrow(/data:image/);
    }
    expect(() => renderReport({ generatedAt: 'not a date' })).toThrow(/generatedAt/);
  });
});

describe('writeReport', () => {
  let dir: string;
  let model: TransferModel;
  let evaluation: Evaluation;
  let fitted: FitHistory;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-transfer-report-'));
    const { xs, ys } = stripes(32, 32, 3);
    const pixels = await xs.data();
    xs.dispose();
    for (let i = 0; i < ys.length; i++) {
      const cls = ys[i] === 0 ? 'red <r>' : 'blue';
      fs.mkdirSync(path.join(dir, 'data', cls), { recursive: true });
      const rgb = Uint8Array.from(pixels.subarray(i * 32 * 32 * 3, (i + 1) * 32 * 32 * 3));
      await sharp(rgb, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(dir, 'data', cls, `img${i}.png`));
    }
    const folder = await imageFolder(path.join(dir, 'data'), { size: [32, 32], validationSplit: 0.5, seed: 1, progressBar: false });
    model = attachHead(freeze(await loadBackbone(tinyBackbone(32), { takeOwnership: true })), { classes: folder.classes, seed: 2 });
    fitted = await fit(model, folder.train, { validationData: folder.validation, epochs: 3, seed: 1 });
    evaluation = await evaluate(model, folder.validation!, { maxTopLosses: 4 });
  });
  afterAll(() => {
    model?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes one self-contained page with the four charts and the top losses with heatmaps; frees its tensors', async () => {
    expect(evaluation.topLosses.length).toBeGreaterThan(0);
    expect(evaluation.unknown?.histogram.classes.reduce((a, b) => a + b, 0)).toBe(evaluation.count);
    const before = tf.memory().numTensors;
    const out = path.join(dir, 'report.html');
    const written = await writeReport(out, { history: fitted, evaluation, card: model.card, model, imageSize: 64 });
    expect(tf.memory().numTensors).toBe(before);
    const html = fs.readFileSync(out, 'utf8');
    expect(written).toEqual({ path: out, bytes: Buffer.byteLength(html) });
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(html.match(/<figure class="chart"><svg/g)).toHaveLength(4);
    expect(html.match(/<img src="data:image\/jpeg;base64,/g)).toHaveLength(3 * evaluation.topLosses.length);
    expect(html).toContain('red &lt;r&gt;');
    expect(html).not.toContain('red <r>');
    expect(externalReferences(html)).toEqual([]);
    // Without the model, top losses that have no heatmaps get their image only.
    const plain = await writeReport(path.join(dir, 'plain.html'), { evaluation, imageSize: 64 });
    expect(fs.readFileSync(plain.path, 'utf8').match(/<img src=/g)).toHaveLength(evaluation.topLosses.length);
  });

  it('checks its options', async () => {
    await expect(writeReport('', { evaluation })).rejects.toThrow(/path/);
    await expect(writeReport(path.join(dir, 'x.html'), { evaluation, imageSize: 3 })).rejects.toThrow(/imageSize/);
  });
});
