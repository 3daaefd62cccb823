/**
 * The HTML report in headless Chromium: `tfjs-transfer train` and `tfjs-transfer evaluate --unknown` (run in this
 * process, wasm backend) on a few real cat and dog photos from ../shared with MobileNetV2 0.35 at 96 px, then each
 * report is opened with every request that is not the page itself aborted (and recorded: none may be attempted),
 * from a local server and as a file:// URL. Checked: every section is there, the charts rendered (SVG with
 * marks), every picture decoded, no console error (a Content-Security-Policy violation is one), and the class names
 * are text, not markup. Screenshots: test-results/report-train.png, test-results/report-evaluate.png.
 *
 * Run: npm run test:e2e (or node --import tsx --test test/e2e/report.test.ts)
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { PassThrough } from 'node:stream';
import { chromium, type Browser, type Page } from 'playwright-core';
import { main } from '../../src/cli/main';
import { REPORT_SECTIONS } from '../../src/report/html';
import { chromiumPath, repo, shared } from './harness';

const CATS_DOGS = join(shared, 'data/cats_and_dogs_filtered_200px');
const FLOWERS = join(shared, 'data/flower_photos/validation/daisy');
const MODEL = join(shared, 'models/mobilenet_v2_0.35_224_no_top');
const results = join(repo, 'test-results');
mkdirSync(results, { recursive: true });

/** Links the first `n` files of `from` into `to`. */
function link(from: string, to: string, n: number): void {
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from).sort().slice(0, n)) symlinkSync(join(from, f), join(to, f));
}

/** Runs the CLI in this process; returns its exit code and stdout. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d) => (o += String(d)));
  err.on('data', (d) => (e += String(d)));
  const code = await main(args, { out, err });
  return { code, out: o, err: e };
}

/** Serves exactly one file at /report.html. */
async function serveFile(file: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url !== '/report.html') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/report.html` };
}

interface Opened {
  page: Page;
  /** Requests other than the page itself: each was aborted. */
  blocked: string[];
  errors: string[];
}

/** Opens `url` in a new page with every other request aborted and recorded. */
async function openBlocked(browser: Browser, url: string): Promise<Opened> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const blocked: string[] = [];
  const errors: string[] = [];
  await context.route('**/*', (route) => {
    if (route.request().url() === url) return route.continue();
    blocked.push(route.request().url());
    return route.abort();
  });
  const page = await context.newPage();
  page.on('request', (r) => {
    if (r.url() !== url && !r.url().startsWith('data:')) blocked.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url, { waitUntil: 'load' });
  return { page, blocked, errors };
}

/** The checks every report passes; `charts` is how many charts it must show. */
async function checkReport(page: Page, charts: number): Promise<void> {
  const ids = await page.$$eval('section[id]', (s) => s.map((e) => e.id));
  assert.deepEqual(ids, REPORT_SECTIONS.map(([id]) => id));
  for (const [id, heading] of REPORT_SECTIONS) assert.equal(await page.locator(`#${id} > h2`).textContent(), heading);
  // Charts: inline SVG with drawn marks (paths) and text.
  const svgs = await page.$$eval('figure.chart > svg', (list) => list.map((s) => ({ paths: s.querySelectorAll('path').length, w: s.getBoundingClientRect().width, text: s.textContent ?? '' })));
  assert.equal(svgs.length, charts, `expected ${charts} charts, got ${svgs.length}`);
  for (const s of svgs) {
    assert.ok(s.paths > 3, 'a chart has marks');
    assert.ok(s.w > 150, `a chart is laid out (width ${s.w})`);
  }
  // Pictures: every one decoded (data: URIs).
  const imgs = await page.$$eval('img', (list) => list.map((i) => ({ ok: i.complete && i.naturalWidth > 0, src: i.src.slice(0, 23) })));
  assert.ok(imgs.length > 0, 'the top losses have pictures');
  for (const i of imgs) assert.ok(i.ok && i.src === 'data:image/jpeg;base64,', `a picture did not decode: ${i.src}`);
  assert.equal(await page.$$eval('script', (s) => s.length), 0);
  // Class names are text of the per-class table.
  const cells = await page.$$eval('#per-class td:first-child', (td) => td.map((c) => c.textContent));
  assert.deepEqual(cells.slice(0, 2), ['cats', 'dogs']);
}

describe('HTML report', { timeout: 600_000 }, () => {
  let dir: string;
  let browser: Browser;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfjs-transfer-report-e2e-'));
    for (const split of ['train', 'validation'] as const) {
      for (const cls of ['cats', 'dogs']) link(join(CATS_DOGS, split, cls), join(dir, 'data', split, cls), split === 'train' ? 20 : 12);
    }
    link(FLOWERS, join(dir, 'other'), 12);
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true });
  });
  after(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('train writes report.html into the model folder; it shows every section offline', async () => {
    const model = join(dir, 'model');
    const run = await cli(['train', join(dir, 'data'), '--backbone', MODEL, '--size', '96', '--epochs', '3', '--seed', '1', '--out', model, '--backend', 'wasm', '--quiet', '--json']);
    assert.equal(run.code, 0, run.err);
    const doc = JSON.parse(run.out) as { report: string };
    assert.equal(doc.report, join(model, 'report.html'));
    const bytes = statSync(doc.report).size;
    assert.ok(bytes > 20_000 && bytes < 2_000_000, `report size ${bytes}`);
    const { server, url } = await serveFile(doc.report);
    try {
      const { page, blocked, errors } = await openBlocked(browser, url);
      await checkReport(page, 4);
      // Heatmaps of the top losses come from explain() on their files.
      assert.ok((await page.locator('#top-losses img').count()) >= 3);
      assert.match((await page.locator('#top-losses').textContent()) ?? '', /predicted: (cats|dogs)true: (cats|dogs)/);
      assert.match((await page.locator('#card pre').textContent()) ?? '', /classes: +cats, dogs/);
      await page.screenshot({ path: join(results, 'report-train.png'), fullPage: true });
      assert.deepEqual(blocked, [], 'the report requested nothing beyond itself');
      assert.deepEqual(errors, []);
    } finally {
      server.close();
    }
  });

  test('evaluate --unknown writes evaluate-report.html next to the model, with the two histograms; opens as a file', async () => {
    const model = join(dir, 'model');
    const run = await cli(['evaluate', model, join(dir, 'data'), '--unknown', join(dir, 'other'), '--backend', 'wasm', '--quiet']);
    assert.equal(run.code, 0, run.err);
    const file = join(model, 'evaluate-report.html');
    assert.match(run.out, new RegExp(`report: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+ bytes\\)`));
    const url = pathToFileURL(file).href;
    const { page, blocked, errors } = await openBlocked(browser, url);
    // The training curves come from the per-epoch values the model card kept (TrainingRun.curves).
    await checkReport(page, 4);
    assert.doesNotMatch((await page.locator('#training').textContent()) ?? '', /Not available/);
    assert.equal(await page.locator('#training figure.chart > svg').count(), 1);
    const legend = (await page.locator('#unknown svg').textContent()) ?? '';
    assert.match(legend, /images of the classes/);
    assert.match(legend, /other images/);
    assert.match(legend, /threshold/);
    assert.match((await page.locator('#unknown p').first().textContent()) ?? '', /of 12 other images/);
    await page.screenshot({ path: join(results, 'report-evaluate.png'), fullPage: true });
    assert.deepEqual(blocked, []);
    assert.deepEqual(errors, []);
  });

  test('--no-report writes none; --report elsewhere; both, or a folder, are usage errors', async () => {
    const model = join(dir, 'model');
    rmSync(join(model, 'evaluate-report.html'));
    const run = await cli(['evaluate', model, join(dir, 'data'), '--backend', 'wasm', '--quiet', '--no-report']);
    assert.equal(run.code, 0, run.err);
    assert.ok(!readdirSync(model).includes('evaluate-report.html'));
    const both = await cli(['evaluate', model, join(dir, 'data'), '--quiet', '--no-report', '--report', 'x.html']);
    assert.equal(both.code, 2);
    assert.match(both.err, /--report <file> or --no-report, not both/);
    const folder = await cli(['evaluate', model, join(dir, 'data'), '--quiet', '--report', dir]);
    assert.equal(folder.code, 2);
    assert.match(folder.err, /is a folder; give the file to write/);
    // Elsewhere: its folder is created.
    const elsewhere = join(dir, 'reports', 'run 1', 'cats & dogs.html');
    const moved = await cli(['evaluate', model, join(dir, 'data'), '--backend', 'wasm', '--quiet', '--report', elsewhere]);
    assert.equal(moved.code, 0, moved.err);
    assert.ok(statSync(elsewhere).size > 20_000);
  });
});
