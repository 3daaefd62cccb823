/**
 * The tfjs-transfer browser example: classes, images, training with a live chart, evaluation with heatmaps,
 * prediction, export. All of TensorFlow.js runs in a Web Worker (./worker.ts, the library's
 * `serveTransferWorker`); this page talks to it with `createTransferWorker`, so it never freezes while the
 * worker extracts features and trains. It uses only the library's public browser entry (`tfjs-transfer`).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  TransferError,
  createTransferWorker,
  drawHeatmap,
  type Evaluation,
  type RemoteModel,
  type TransferWorker,
  type WorkerHeatmap,
  type WorkerImages,
} from 'tfjs-transfer';
import { CurvesChart, confusionSpec, render, type Curves } from './charts';
import { IndexedDBActivationStore, contentKey } from './idb-store';
import { cacheUrls, loadedResources } from './offline';
import type { BackendName } from './backend';
import type { WorkerConfig, WorkerSetup } from './worker';

// ---------------------------------------------------------------------------------------------------------------
// Page state

interface ImageItem {
  blob: Blob;
  name: string;
  url: string;
  key: Promise<string>;
}

interface ClassState {
  id: number;
  name: string;
  train: ImageItem[];
  test: ImageItem[];
  card?: HTMLElement;
}

type Split = 'train' | 'test';

const SEED = 42;
const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const state = {
  classes: [] as ClassState[],
  nextId: 0,
  worker: undefined as TransferWorker | undefined,
  setup: undefined as WorkerSetup | undefined,
  model: undefined as RemoteModel | undefined,
  training: undefined as AbortController | undefined,
  predictBlob: undefined as Blob | undefined,
  webcam: undefined as MediaStream | undefined,
  lastEvaluation: undefined as Evaluation | undefined,
  chart: undefined as CurvesChart | undefined,
};

function setStatus(id: string, text: string, error = false): void {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('error', error);
}

function setPageState(s: 'idle' | 'loading' | 'training' | 'trained' | 'stopped' | 'error'): void {
  document.body.dataset.state = s;
}

function message(e: unknown): string {
  if (e instanceof TransferError) return `${e.message} [${e.code}]`;
  return e instanceof Error ? e.message : String(e);
}

/** A seeded shuffle (mulberry32), so the held-out split is the same every time. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}


// ---------------------------------------------------------------------------------------------------------------
// Images

function makeItem(blob: Blob, name: string): ImageItem {
  return { blob, name, url: URL.createObjectURL(blob), key: contentKey(blob) };
}

/**
 * Images for the worker: the files themselves (Blobs cross postMessage by reference, and the worker decodes them),
 * with content keys so `fit` can keep their features in IndexedDB.
 */
async function imagesOf(items: { item: ImageItem; label: number }[], classes: string[], name: string): Promise<WorkerImages> {
  const keys = await Promise.all(items.map(({ item }) => item.key));
  return { classes, name, images: items.map(({ item, label }, i) => ({ image: item.blob, label, source: item.name, key: keys[i] })) };
}

/** Draws `heatmap` over the image of `blob` on `canvas` (the library's canvas helper; decoding stays off-thread). */
async function drawOver(canvas: HTMLCanvasElement, blob: Blob, heatmap: WorkerHeatmap): Promise<void> {
  const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  try {
    drawHeatmap(canvas, bitmap, heatmap, { alpha: 0.45 });
    canvas.dataset.heatmap = heatmap.label;
  } finally {
    bitmap.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Classes UI

function addClass(name?: string): ClassState {
  const cls: ClassState = { id: state.nextId++, name: name ?? `Class ${state.classes.length + 1}`, train: [], test: [] };
  state.classes.push(cls);
  renderClass(cls);
  return cls;
}

function renderClass(cls: ClassState): void {
  const index = state.classes.indexOf(cls);
  const card = document.createElement('div');
  card.className = 'class-card';
  card.dataset.testid = `class-${index}`;
  card.innerHTML = `
    <header>
      <input class="name" data-testid="class-${index}-name" aria-label="class name" />
      <span class="count" data-testid="class-${index}-count"></span>
      <button type="button" class="remove" title="Remove this class">✕</button>
    </header>
    ${(['train', 'test'] as Split[])
      .map(
        (split) => `
    <div class="drop" data-split="${split}">
      <div class="label">${split === 'train' ? 'Training images' : 'Test images (optional, held out)'}:
        <label class="button">Choose files<input type="file" accept="image/*" multiple hidden data-testid="class-${index}-${split}-files" /></label>
        <button type="button" class="snap" hidden>Webcam snapshot</button>
        <span>or drop images here</span>
      </div>
      <div class="thumbs"></div>
    </div>`,
      )
      .join('')}`;
  const nameInput = card.querySelector<HTMLInputElement>('.name')!;
  nameInput.value = cls.name;
  nameInput.addEventListener('input', () => (cls.name = nameInput.value));
  card.querySelector('.remove')!.addEventListener('click', () => {
    if (state.classes.length <= 2) return alert('A classifier needs at least two classes.');
    state.classes.splice(state.classes.indexOf(cls), 1);
    [...cls.train, ...cls.test].forEach((it) => URL.revokeObjectURL(it.url));
    card.remove();
  });
  for (const drop of card.querySelectorAll<HTMLElement>('.drop')) {
    const split = drop.dataset.split as Split;
    const input = drop.querySelector<HTMLInputElement>('input[type=file]')!;
    input.addEventListener('change', () => {
      addFiles(cls, split, [...(input.files ?? [])]);
      input.value = '';
    });
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      addFiles(cls, split, [...(e.dataTransfer?.files ?? [])]);
    });
    const snap = drop.querySelector<HTMLButtonElement>('.snap')!;
    snap.hidden = !hasCamera();
    snap.addEventListener('click', async () => {
      try {
        const blob = await webcamSnapshot();
        addItems(cls, split, [makeItem(blob, `webcam-${Date.now()}.jpg`)]);
      } catch (e) {
        setStatus('train-status', `Webcam: ${message(e)}`, true);
      }
    });
  }
  cls.card = card;
  $('classes').append(card);
  updateCounts(cls);
}

function addFiles(cls: ClassState, split: Split, files: File[]): void {
  const images = files.filter((f) => f.type.startsWith('image/') || /\.(jpe?g|png|gif|webp|bmp|avif)$/i.test(f.name));
  addItems(cls, split, images.map((f) => makeItem(f, f.name)));
}

function addItems(cls: ClassState, split: Split, items: ImageItem[]): void {
  cls[split].push(...items);
  const thumbs = cls.card!.querySelector(`.drop[data-split=${split}] .thumbs`)!;
  const shown = thumbs.querySelectorAll('img').length;
  for (const item of items.slice(0, Math.max(0, 40 - shown))) {
    const img = document.createElement('img');
    img.src = item.url;
    img.title = item.name;
    thumbs.append(img);
  }
  updateCounts(cls);
}

function updateCounts(cls: ClassState): void {
  cls.card!.querySelector('.count')!.textContent = `${cls.train.length} training, ${cls.test.length} test images`;
}

// ---------------------------------------------------------------------------------------------------------------
// Webcam

function hasCamera(): boolean {
  return typeof navigator.mediaDevices?.getUserMedia === 'function';
}

async function webcamSnapshot(): Promise<Blob> {
  const video = $<HTMLVideoElement>('webcam');
  if (!state.webcam) {
    state.webcam = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
    video.srcObject = state.webcam;
    video.hidden = false;
    await video.play();
  }
  if (!video.videoWidth) await new Promise((r) => video.addEventListener('loadeddata', r, { once: true }));
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d')!.drawImage(video, 0, 0);
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('snapshot failed'))), 'image/jpeg', 0.92));
}


// ---------------------------------------------------------------------------------------------------------------
// Backbone

function backboneChoice(): { alpha: string; size: number; key: string; source: string } {
  const alpha = $<HTMLSelectElement>('backbone').value;
  const size = Number($<HTMLSelectElement>('input-size').value);
  const local = alpha === '1.0' ? 'models/mobilenet_v2_1.0_224/model.json' : 'models/mobilenet_v2_0.35_224_no_top/model.json';
  // Development and tests: the page's own /models/. Production: the catalog's official URLs (224 weights, run at
  // the chosen input size: MobileNetV2 is fully convolutional).
  const source = __LOCAL_MODELS__ ? new URL(local, document.baseURI).href : `mobilenet_v2_${alpha}_224`;
  return { alpha, size, key: `mobilenet_v2_${alpha}_${size}`, source };
}

/** Replaces the page's model (the old one is freed in the worker). */
function setModel(model: RemoteModel | undefined): void {
  if (state.model && state.model !== model) void state.model.dispose().catch(() => undefined);
  state.model = model;
}

/** The worker's feature-cache counts (it posts them after every read and write), and their values when training began. */
const cacheStats = { now: { hits: 0, misses: 0, writes: 0 }, atStart: { hits: 0, misses: 0, writes: 0 } };

// ---------------------------------------------------------------------------------------------------------------
// Training

function readNumber(id: string, fallback: number): number {
  const v = Number($<HTMLInputElement>(id).value);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

interface Splits {
  classes: string[];
  train: { item: ImageItem; label: number }[];
  test: { item: ImageItem; label: number }[];
  heldOutFromTraining: boolean;
}

function splitData(): Splits {
  const classes = state.classes.map((c) => c.name.trim());
  classes.forEach((name, i) => {
    if (!name) throw new Error(`Class ${i + 1} has no name.`);
    if (classes.indexOf(name) !== i) throw new Error(`Two classes are called "${name}".`);
  });
  const explicitTest = state.classes.some((c) => c.test.length > 0);
  const holdout = explicitTest ? 0 : Math.min(0.5, Math.max(0, Number($<HTMLInputElement>('holdout').value) / 100 || 0));
  const train: Splits['train'] = [];
  const test: Splits['test'] = [];
  state.classes.forEach((c, label) => {
    if (c.train.length === 0) throw new Error(`Class "${classes[label]}" has no training images.`);
    const order = shuffled(c.train, SEED + label);
    const k = holdout > 0 && order.length >= 2 ? Math.max(1, Math.round(order.length * holdout)) : 0;
    order.slice(k).forEach((item) => train.push({ item, label }));
    order.slice(0, k).forEach((item) => test.push({ item, label }));
    c.test.forEach((item) => test.push({ item, label }));
  });
  return { classes, train, test, heldOutFromTraining: !explicitTest && holdout > 0 };
}

function setTraining(on: boolean): void {
  $<HTMLButtonElement>('train-btn').disabled = on;
  $<HTMLButtonElement>('stop-btn').disabled = !on;
  $<HTMLButtonElement>('export-btn').disabled = on || !state.model;
}

async function train(): Promise<void> {
  if (state.training || !state.worker) return;
  let splits: Splits;
  try {
    splits = splitData();
  } catch (e) {
    setStatus('train-status', message(e), true);
    return;
  }
  const controller = new AbortController();
  state.training = controller;
  setTraining(true);
  setPageState('training');
  const progress = $<HTMLProgressElement>('progress');
  progress.value = 0;
  const epochs = Math.round(readNumber('epochs', 20));
  const batchSize = Math.round(readNumber('batch', 16));
  const curves: Curves = { loss: [], accuracy: [], valLoss: [], valAccuracy: [] };
  await state.chart?.reset(epochs);
  setStatus('cache-status', '');
  const useCache = $<HTMLInputElement>('use-cache').checked;
  cacheStats.atStart = { ...cacheStats.now };
  const choice = backboneChoice();
  const t0 = performance.now();
  try {
    setStatus('train-status', 'Loading the backbone…');
    setModel(undefined);
    const data = await imagesOf(splits.train, splits.classes, 'train');
    const validationData = splits.test.length ? await imagesOf(splits.test, splits.classes, 'held-out') : undefined;
    const batches = Math.ceil(splits.train.length / batchSize);
    const result = await state.worker.fit({
      backbone: choice.source,
      backboneOptions: { inputSize: choice.size, name: choice.key },
      head: { seed: SEED },
      data,
      validationData,
      fit: {
        epochs,
        batchSize,
        learningRate: readNumber('lr', 0.001),
        earlyStopping: $<HTMLInputElement>('early').checked ? { monitor: validationData ? 'valLoss' : 'loss', patience: 3 } : false,
        seed: SEED,
      },
      evaluate: { maxMisclassified: 48 },
      cache: useCache,
      stopSignal: controller.signal,
      batchEvents: true,
      onProgress: (p) => {
        if (p.stage === 'download') setStatus('model-status', `Loading ${choice.key}… ${p.total > 0 ? Math.round((p.done / p.total) * 100) : 0}%`);
        if (p.stage === 'extract') {
          progress.value = (0.5 * p.done) / p.total;
          setStatus('train-status', `Extracting features: ${p.done}/${p.total} ${p.total === splits.train.length ? 'training' : 'held-out'} images`);
        }
      },
      onTrainBegin: () => showCacheStatus(useCache, splits),
      onBatchEnd: (batch) => (progress.value = 0.5 + (0.5 * (batch + 1)) / (batches * epochs)),
      onEpochEnd: (epoch, logs) => {
        curves.loss.push(logs.loss);
        curves.accuracy.push(logs.accuracy);
        if (logs.valLoss !== undefined) curves.valLoss.push(logs.valLoss);
        if (logs.valAccuracy !== undefined) curves.valAccuracy.push(logs.valAccuracy);
        state.chart?.update(curves);
        setStatus(
          'train-status',
          `Epoch ${epoch + 1}/${epochs}: loss ${logs.loss.toFixed(3)}, accuracy ${logs.accuracy.toFixed(3)}` +
            (logs.valAccuracy !== undefined ? `, held-out accuracy ${logs.valAccuracy.toFixed(3)}` : ''),
        );
      },
    });
    progress.value = 1;
    setModel(result.model);
    const [h, w] = result.model.inputShape;
    setStatus('model-status', `${choice.key}: input ${h}×${w}, loaded in the worker from ${__LOCAL_MODELS__ ? 'this page' : 'the official URL'}.`);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    const { history } = result;
    if (result.stopped) {
      setStatus('train-status', `Stopped by you after ${history.epochs} of ${epochs} epochs; the model keeps what it learned so far.`);
      setPageState('stopped');
    } else {
      setStatus(
        'train-status',
        `Trained ${history.epochs} epochs${history.stoppedEarly ? ' (stopped early: no more improvement)' : ''} in ${secs} s ` +
          `(features ${(history.timing.extractMs / 1000).toFixed(1)} s, training ${(history.timing.trainMs / 1000).toFixed(1)} s) on ${state.setup?.backend}, in a worker.`,
      );
      setPageState('trained');
    }
    showCacheStatus(useCache, splits);
    state.training = undefined;
    setTraining(false);
    await showEvaluation(splits, result.evaluation);
    if (state.predictBlob) await runPrediction();
  } catch (e) {
    trainingFailed(e, splits, useCache, curves);
  } finally {
    state.training = undefined;
    setTraining(false);
  }
}

function trainingFailed(e: unknown, splits: Splits, useCache: boolean, curves: Curves): void {
  const text = message(e);
  if (/WebGL context was lost/.test(text)) {
    setStatus(
      'train-status',
      'Training stopped: the WebGL context was lost (the GPU was reset, or the browser reclaimed it). ' +
        'Nothing computed after that can be trusted, so this model was discarded. Reload the page, or choose the wasm or cpu backend.',
      true,
    );
    setPageState('error');
  } else if (e instanceof TransferError && e.code === 'ABORTED') {
    setStatus('train-status', 'Stopped before the first epoch finished: no model.', true);
    setPageState('stopped');
  } else {
    console.error(e);
    setStatus('train-status', `Training failed: ${text}`, true);
    setPageState('error');
  }
  showCacheStatus(useCache, splits, curves.loss.length > 0 && !/WebGL/.test(text));
}

function showCacheStatus(useCache: boolean, splits: Splits, complete = true): void {
  const total = splits.train.length + splits.test.length;
  if (!useCache || state.setup?.cacheError) {
    setStatus('cache-status', complete ? `features: ${total} extracted (IndexedDB cache off)` : '');
    return;
  }
  const written = cacheStats.now.writes - cacheStats.atStart.writes;
  setStatus(
    'cache-status',
    complete
      ? `features: ${Math.max(0, total - written)} from cache, ${written} extracted and stored in IndexedDB`
      : `features: ${written} extracted and stored in IndexedDB before training stopped`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

async function showEvaluation(splits: Splits, result: Evaluation | undefined): Promise<void> {
  const summary = $('eval-summary');
  if (!result) {
    summary.textContent = 'No held-out images: add test images, or hold out a share of the training images, to evaluate.';
    return;
  }
  state.lastEvaluation = result;
  summary.dataset.accuracy = String(result.accuracy);
  summary.dataset.count = String(result.count);
  summary.textContent =
    `Accuracy ${(result.accuracy * 100).toFixed(1)}% on ${result.count} held-out images` +
    `${splits.heldOutFromTraining ? ' (held out from the training images)' : ''}; ` +
    `loss ${result.loss.toFixed(3)}, macro F1 ${result.macroF1.toFixed(3)}` +
    (result.rocAuc !== undefined ? `, ROC AUC ${result.rocAuc.toFixed(3)}` : '') +
    '.';
  const table = $<HTMLTableElement>('per-class');
  table.innerHTML =
    '<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>' +
    result.perClass
      .map((m) => `<tr><td>${escapeHtml(m.name)}</td><td>${m.precision.toFixed(3)}</td><td>${m.recall.toFixed(3)}</td><td>${m.f1.toFixed(3)}</td><td>${m.support}</td></tr>`)
      .join('');
  await nextTask(); // each drawing its own task: the page keeps answering input between them
  await render($('confusion'), confusionSpec(result.classes, result.confusionMatrix));
  await nextTask();
  await showMisclassified(splits, result);
}

/** The misclassified images, each with the heatmap of the class the model wrongly saw (computed in the worker). */
async function showMisclassified(splits: Splits, result: Evaluation): Promise<void> {
  const box = $('misclassified');
  box.innerHTML = result.misclassified.length ? '' : '<span class="hint">None: every held-out image was classified correctly.</span>';
  const figures = result.misclassified.map((m) => {
    const item = splits.test[m.index]!.item;
    const fig = document.createElement('figure');
    fig.innerHTML = `<img alt="" /><canvas width="96" height="96" aria-label="heatmap"></canvas><figcaption></figcaption>`;
    fig.querySelector('img')!.src = item.url;
    fig.querySelector('img')!.title = item.name;
    fig.querySelector('figcaption')!.textContent = `${m.actual} → ${m.predicted} (${(m.probability * 100).toFixed(0)}%)`;
    box.append(fig);
    return { fig, item };
  });
  if (!figures.length || !state.model) return;
  try {
    const explained = await state.model.explain(figures.map(({ item }) => item.blob));
    await Promise.all(explained.map((e, i) => drawOver(figures[i]!.fig.querySelector('canvas')!, figures[i]!.item.blob, e.heatmap)));
    box.dataset.heatmaps = String(explained.length);
  } catch (e) {
    console.error(e);
    box.append(Object.assign(document.createElement('span'), { className: 'status error', textContent: `Heatmaps failed: ${message(e)}` }));
  }
}

/** Resolves in a new task (after input and painting had their turn). */
function nextTask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// ---------------------------------------------------------------------------------------------------------------
// Prediction

async function runPrediction(): Promise<void> {
  const out = $('prediction');
  const bars = $('probabilities');
  const blob = state.predictBlob;
  if (!blob) return;
  const model = state.model;
  if (!model) {
    out.textContent = 'Train or load a model first.';
    return;
  }
  try {
    // predict gives the unknown detector's verdict; explain the heatmap of the predicted class.
    const [[p], [e]] = await Promise.all([model.predict(blob), model.explain(blob)]);
    out.dataset.label = p!.label;
    out.dataset.probabilities = JSON.stringify(p!.probabilities);
    // With an unknown detector (fit fits one from the test images), say when the image looks like none of the classes.
    if (p!.unknown !== undefined) out.dataset.unknown = String(p!.unknown);
    else delete out.dataset.unknown;
    out.textContent = p!.unknown
      ? `None of your classes (closest: ${p!.label}, ${(p!.probability * 100).toFixed(1)}%)`
      : `${p!.label} (${(p!.probability * 100).toFixed(1)}%)`;
    bars.innerHTML = '';
    for (const [name, prob] of Object.entries(p!.probabilities).sort((a, b) => b[1] - a[1])) {
      const row = document.createElement('div');
      row.className = 'bar';
      row.innerHTML = `<span class="track"><span class="fill"></span></span><span></span>`;
      (row.querySelector('.fill') as HTMLElement).style.width = `${(prob * 100).toFixed(1)}%`;
      row.lastElementChild!.textContent = `${name}: ${(prob * 100).toFixed(2)}%`;
      bars.append(row);
    }
    const canvas = $<HTMLCanvasElement>('predict-heatmap');
    canvas.width = 224;
    canvas.height = 224;
    await drawOver(canvas, blob, e!.heatmap);
    canvas.hidden = false;
    $('predict-heatmap-caption').textContent = `where the model saw "${e!.heatmap.label}" (${e!.heatmap.method === 'cam' ? 'class activation map' : 'Grad-CAM'})`;
  } catch (e) {
    console.error(e);
    out.textContent = `Prediction failed: ${message(e)}`;
  }
}

async function setPredictImage(blob: Blob): Promise<void> {
  state.predictBlob = blob;
  const img = $<HTMLImageElement>('predict-img');
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  await runPrediction();
}

// ---------------------------------------------------------------------------------------------------------------
// Export and load

async function exportModel(): Promise<void> {
  if (!state.model) return;
  const name = ($<HTMLInputElement>('export-name').value.trim() || 'my-classifier').replace(/[^\w.-]+/g, '-');
  try {
    // float16 / uint8 store the backbone's weights in half / a quarter of the bytes (the head stays float32); the
    // files load in any tfjs app, which dequantizes them. The worker saves; the page downloads.
    const quantize = $<HTMLSelectElement>('export-weights').value as 'float32' | 'float16' | 'uint8';
    const { report } = await state.model.save(`downloads://${name}`, { quantize });
    const mb = (report.artefact.weightBytes / 1e6).toFixed(1);
    setStatus('io-status', `Downloaded ${name}.json and ${name}.weights.bin (${quantize}, ${mb} MB of weights). Load both files back with "Load model".`);
  } catch (e) {
    setStatus('io-status', `Export failed: ${message(e)}`, true);
  }
}

async function loadFromFiles(files: File[]): Promise<void> {
  const json = files.find((f) => f.name.endsWith('.json'));
  const weights = files.filter((f) => f !== json);
  if (!json || weights.length === 0) {
    setStatus('io-status', 'Pick both files of an exported model: the .json and its .weights.bin.', true);
    return;
  }
  if (!state.worker) return;
  try {
    setStatus('io-status', `Loading ${json.name}…`);
    const loaded = await state.worker.loadModel(tf.io.browserFiles([json, ...weights]));
    setModel(loaded);
    $<HTMLButtonElement>('export-btn').disabled = false;
    const [h, w] = loaded.inputShape;
    setStatus('io-status', `Loaded ${json.name}: classes ${loaded.classes.join(', ')}; input ${h}×${w}; backbone ${loaded.backbone}.`);
    document.body.dataset.loaded = json.name;
    await runPrediction();
  } catch (e) {
    console.error(e);
    setStatus('io-status', `Loading failed: ${message(e)}`, true);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Offline: a service worker serves the cached page when the network is gone; the page (and the worker, for what it
// loads: wasm, models) also put everything into that cache themselves, so even the first visit is covered.

async function cacheForOffline(): Promise<void> {
  if (!('caches' in window) || params.has('nosw')) return;
  try {
    await cacheUrls(loadedResources(location.href));
    setStatus('offline-status', `${navigator.onLine ? 'Online' : 'Offline'}; this page and its models work offline once loaded.`);
    document.body.dataset.offlineReady = 'true';
  } catch (e) {
    setStatus('offline-status', `Offline cache unavailable: ${message(e)}`);
  }
}

async function setupOffline(): Promise<void> {
  if (!('serviceWorker' in navigator) || params.has('nosw')) return;
  try {
    await navigator.serviceWorker.register('./sw.js');
    await navigator.serviceWorker.ready;
  } catch (e) {
    console.warn('service worker', e);
  }
  await cacheForOffline();
}

// ---------------------------------------------------------------------------------------------------------------
// Start

/** Starts the worker on the backend of `?backend=` (else the first that starts there). */
async function startWorker(): Promise<WorkerSetup | undefined> {
  const raw = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'tfjs-transfer' });
  raw.addEventListener('message', (e: MessageEvent<{ example?: string; stats?: typeof cacheStats.now }>) => {
    if (e.data?.example === 'cache-stats' && e.data.stats) cacheStats.now = e.data.stats;
  });
  const worker = createTransferWorker(raw, {
    config: { backend: (params.get('backend') as BackendName | null) ?? undefined, base: document.baseURI, offline: !params.has('nosw') } satisfies WorkerConfig,
  });
  state.worker = worker;
  try {
    const { info } = await worker.ready;
    return info as WorkerSetup;
  } catch (e) {
    setStatus('backend-status', message(e), true);
    return undefined;
  }
}

async function start(): Promise<void> {
  setPageState('loading');
  state.chart = new CurvesChart($('chart'));
  void state.chart.reset(Number(params.get('epochs') ?? 20) || 20);
  const select = $<HTMLSelectElement>('backend');
  const setup = await startWorker();
  const offered = setup?.offered ?? (['webgl', 'wasm', 'cpu'] as BackendName[]);
  for (const name of offered) select.append(new Option(name, name));
  select.value = params.get('backend') ?? setup?.backend ?? '';
  select.addEventListener('change', () => {
    params.set('backend', select.value);
    location.search = params.toString();
  });
  if (!setup) {
    setPageState('error');
    return;
  }
  state.setup = setup;
  setStatus('backend-status', `backend: ${setup.description}, in a Web Worker`);
  document.body.dataset.backend = setup.backend;

  for (const [param, id] of [['backbone', 'backbone'], ['size', 'input-size']] as const) {
    const v = params.get(param);
    if (v) $<HTMLSelectElement>(id).value = v;
  }
  for (const [param, id] of [['epochs', 'epochs'], ['lr', 'lr'], ['batch', 'batch'], ['holdout', 'holdout']] as const) {
    const v = params.get(param);
    if (v) $<HTMLInputElement>(id).value = v;
  }
  if (setup.cacheError) {
    $<HTMLInputElement>('use-cache').checked = false;
    $<HTMLInputElement>('use-cache').disabled = true;
    setStatus('cache-status', `IndexedDB unavailable: ${setup.cacheError}`);
  }
  wireControls();
  addClass('cat');
  addClass('dog');
  setPageState('idle');
  void setupOffline();
}

function wireControls(): void {
  $('add-class').addEventListener('click', () => addClass());
  $('train-btn').addEventListener('click', () => void train());
  $('stop-btn').addEventListener('click', () => state.training?.abort(new Error('stopped by the user')));
  $('clear-cache').addEventListener('click', async () => {
    // The worker's IndexedDB database is this origin's: the page can clear it itself.
    const store = await IndexedDBActivationStore.open('tfjs-transfer-example-features');
    await store.clear();
    setStatus('cache-status', 'Feature cache cleared.');
  });
  $<HTMLInputElement>('predict-file').addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) void setPredictImage(file);
  });
  const predictCam = $<HTMLButtonElement>('predict-webcam');
  predictCam.hidden = !hasCamera();
  predictCam.addEventListener('click', async () => {
    try {
      await setPredictImage(await webcamSnapshot());
    } catch (e) {
      setStatus('io-status', `Webcam: ${message(e)}`, true);
    }
  });
  $('export-btn').addEventListener('click', () => void exportModel());
  $<HTMLInputElement>('load-files').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    void loadFromFiles([...(input.files ?? [])]).finally(() => (input.value = ''));
  });
  for (const id of ['backbone', 'input-size']) {
    $(id).addEventListener('change', () => setStatus('model-status', `${backboneChoice().key} will be loaded when you train.`));
  }
  window.addEventListener('online', () => void cacheForOffline());
  window.addEventListener('offline', () => setStatus('offline-status', 'Offline; everything already loaded keeps working.'));
}

// For tests and the curious: the page's state and its worker.
Object.assign(window, { tfjsTransferExample: { state } });

void start();
