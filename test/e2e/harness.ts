/**
 * Shared pieces of the browser end-to-end tests: build the example, serve it, launch Debian's Chromium, and drive
 * the page. The images and models are read from ../shared by path (never copied into the repository).
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const shared = resolve(process.env.TFJS_TRANSFER_SHARED ?? resolve(repo, '../shared'));
export const dataDir = join(shared, 'data/cats_and_dogs_filtered_200px');
export const exampleDir = join(repo, 'examples/browser');
export const configFile = join(exampleDir, 'vite.config.ts');
export const outDir = join(repo, 'test-results/e2e');
mkdirSync(outDir, { recursive: true });

/** `n` image paths of `split/cls`, sorted by image id, skipping the first `skip`. */
export function images(split: 'train' | 'validation', cls: 'cats' | 'dogs', n: number, skip = 0): string[] {
  const dir = join(dataDir, split, cls);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.jpg'))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  if (files.length < skip + n) throw new Error(`${dir} has ${files.length} images; need ${skip + n}`);
  return files.slice(skip, skip + n).map((f) => join(dir, f));
}

export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].filter(Boolean) as string[];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`No Chromium found (tried ${candidates.join(', ')}). Install it: apt-get install -y chromium`);
  return found;
}

let built = false;
/** Builds the example once (mode e2e: models from the page's own /models/). */
export async function buildExample(): Promise<void> {
  if (built) return;
  await build({ configFile, mode: 'e2e', logLevel: 'warn' });
  built = true;
}

export const PORT = Number(process.env.E2E_PORT ?? 4617);
export const BASE = `http://127.0.0.1:${PORT}/`;

/** Serves the built example (with its /models/ middleware and COOP/COEP headers) on a fixed port. */
export async function serve(): Promise<PreviewServer> {
  return preview({ configFile, mode: 'e2e', logLevel: 'warn', preview: { port: PORT, strictPort: true, host: '127.0.0.1' } });
}

export async function stopServer(server: PreviewServer): Promise<void> {
  const http = server.httpServer as unknown as { closeAllConnections?: () => void };
  http.closeAllConnections?.();
  await server.close();
}

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // A fake camera, so the webcam snapshot path runs too. WebGPU is behind a flag on Linux; with it, headless
    // Chromium offers SwiftShader's software adapter (a fallback adapter).
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--enable-unsafe-swiftshader', '--enable-unsafe-webgpu'],
  });
}

export async function newPage(browser: Browser): Promise<{ context: BrowserContext; page: Page; logs: string[] }> {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  await context.grantPermissions(['camera']).catch(() => undefined);
  const page = await context.newPage();
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  return { context, page, logs };
}

export interface RunOptions {
  backend: string;
  alpha?: '0.35' | '1.0';
  size: number;
  epochs: number;
  lr?: number;
}

/** Opens the page on a backend and waits until it is ready. */
export async function open(page: Page, o: RunOptions): Promise<void> {
  const q = new URLSearchParams({ backend: o.backend, backbone: o.alpha ?? '0.35', size: String(o.size), epochs: String(o.epochs), lr: String(o.lr ?? 0.001) });
  await page.goto(`${BASE}?${q}`);
  await page.waitForFunction(() => ['idle', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout: 60_000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== 'idle') throw new Error(`page did not start: ${await page.getByTestId('backend-status').textContent()}`);
  const active = await page.evaluate(() => document.body.dataset.backend);
  if (active !== o.backend) throw new Error(`asked for backend ${o.backend}, the page runs ${active}`);
}

/** Adds training and test images to the two classes (cat = class 0, dog = class 1). */
export async function addImages(page: Page, train: number, test: number): Promise<void> {
  await page.getByTestId('class-0-train-files').setInputFiles(images('train', 'cats', train));
  await page.getByTestId('class-1-train-files').setInputFiles(images('train', 'dogs', train));
  if (test > 0) {
    await page.getByTestId('class-0-test-files').setInputFiles(images('validation', 'cats', test));
    await page.getByTestId('class-1-test-files').setInputFiles(images('validation', 'dogs', test));
  }
  await page.getByTestId('class-1-count').getByText(`${train} training, ${test} test images`).waitFor({ timeout: 10_000 });
}

/** One long task on the page's main thread (PerformanceObserver 'longtask': over 50 ms). */
export interface LongTask {
  /** When it began, in ms after the training click. */
  at: number;
  /** How long it took, ms. */
  duration: number;
}

/** What {@link trainAndWait} saw. */
export interface TrainOutcome {
  state: string;
  status: string;
  cache: string;
  seconds: number;
  /** The main thread's long tasks between the click on Train and the end of training. */
  longTasks: LongTask[];
  /** The longest of them, ms (0 when there was none). */
  longestTaskMs: number;
}

/** Starts recording the page's long tasks (once per page); returns the page's clock, the start of the window. */
async function watchLongTasks(page: Page): Promise<number> {
  return page.evaluate(() => {
    const w = window as unknown as { __longTasks?: { start: number; duration: number }[] };
    if (!w.__longTasks) {
      const tasks: { start: number; duration: number }[] = [];
      w.__longTasks = tasks;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) tasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    }
    return performance.now();
  });
}

/** The long tasks that began between `from` and now (page clock), relative to `from`. */
async function longTasksSince(page: Page, from: number): Promise<LongTask[]> {
  await page.waitForTimeout(100); // long-task entries are delivered after the task
  const tasks = await page.evaluate(() => (window as unknown as { __longTasks: { start: number; duration: number }[] }).__longTasks);
  return tasks.filter((t) => t.start >= from).map((t) => ({ at: Math.round(t.start - from), duration: Math.round(t.duration) }));
}

/** Clicks Train and waits for the outcome, recording the main thread's long tasks meanwhile. */
export async function trainAndWait(page: Page, timeout: number): Promise<TrainOutcome> {
  const t0 = Date.now();
  const from = await watchLongTasks(page);
  await page.click('#train-btn');
  await page.waitForFunction(() => document.body.dataset.state === 'training', undefined, { timeout: 5_000 });
  await page.waitForFunction(() => ['trained', 'stopped', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout });
  const longTasks = await longTasksSince(page, from);
  const state = (await page.evaluate(() => document.body.dataset.state))!;
  const status = (await page.getByTestId('train-status').textContent()) ?? '';
  const cache = (await page.getByTestId('cache-status').textContent()) ?? '';
  return { state, status, cache, seconds: (Date.now() - t0) / 1000, longTasks, longestTaskMs: Math.max(0, ...longTasks.map((t) => t.duration)) };
}

/**
 * How many pixels of each canvas matching `selector` are painted with more than one colour: a heatmap drawn over
 * a photo has thousands; a blank canvas has none.
 */
export async function paintedPixels(page: Page, selector: string): Promise<number[]> {
  return page.evaluate((sel) => {
    return [...document.querySelectorAll<HTMLCanvasElement>(sel)].map((c) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let painted = 0;
      const colours = new Set<number>();
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3]! === 0) continue;
        painted++;
        if (colours.size < 64) colours.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
      }
      return colours.size > 16 ? painted : 0;
    });
  }, selector);
}

/** Waits for the evaluation and returns the accuracy it reports. */
export async function evaluation(page: Page): Promise<{ accuracy: number; count: number; text: string }> {
  await page.waitForFunction(() => document.getElementById('eval-summary')?.dataset.accuracy !== undefined, undefined, { timeout: 60_000 });
  return page.evaluate(() => {
    const el = document.getElementById('eval-summary')!;
    return { accuracy: Number(el.dataset.accuracy), count: Number(el.dataset.count), text: el.textContent ?? '' };
  });
}

/** Predicts one image file and returns the label and probabilities the page shows. */
export async function predictFile(page: Page, file: string): Promise<PagePrediction> {
  await page.evaluate(() => {
    const el = document.getElementById('prediction')!;
    delete el.dataset.label;
    delete el.dataset.probabilities;
    delete el.dataset.unknown;
  });
  await page.setInputFiles('#predict-file', file);
  return readPrediction(page);
}

/** What the page shows for a prediction; `unknown` is set when the model has an unknown detector. */
export interface PagePrediction {
  label: string;
  probabilities: Record<string, number>;
  unknown: boolean | undefined;
  text: string;
}

export async function readPrediction(page: Page): Promise<PagePrediction> {
  await page.waitForFunction(() => document.getElementById('prediction')?.dataset.label !== undefined, undefined, { timeout: 30_000 });
  return page.evaluate(() => {
    const el = document.getElementById('prediction')!;
    const unknown = el.dataset.unknown === undefined ? undefined : el.dataset.unknown === 'true';
    return { label: el.dataset.label!, probabilities: JSON.parse(el.dataset.probabilities!) as Record<string, number>, unknown, text: el.textContent ?? '' };
  });
}

/** Exports the model (two downloads), loads it back from those files, and returns the page's new prediction. */
export async function exportAndReload(page: Page, name: string): Promise<{ files: string[]; prediction: PagePrediction }> {
  await page.fill('#export-name', name);
  const downloads: Promise<string>[] = [];
  const done = new Promise<void>((resolveAll) => {
    page.on('download', (d) => {
      const target = join(outDir, d.suggestedFilename());
      downloads.push(d.saveAs(target).then(() => target));
      if (downloads.length === 2) resolveAll();
    });
  });
  await page.click('#export-btn');
  await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error('export: expected 2 downloads')), 20_000))]);
  const files = await Promise.all(downloads);
  await page.evaluate(() => {
    const el = document.getElementById('prediction')!;
    delete el.dataset.label;
    delete el.dataset.unknown;
    delete document.body.dataset.loaded;
  });
  await page.setInputFiles('#load-files', files);
  await page.waitForFunction(() => document.body.dataset.loaded !== undefined, undefined, { timeout: 60_000 });
  return { files, prediction: await readPrediction(page) };
}

/** Rejects after `ms`: a guard around each browser step so a hung page cannot hang the run. */
export function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms / 1000} s`)), ms);
    }),
  ]);
}
