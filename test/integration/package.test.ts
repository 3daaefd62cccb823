/**
 * The published package, as a user gets it: `npm pack` holds only dist/, the README, the license and the changelog;
 * the tarball installs into a fresh project, imports as ESM and as CommonJS (both entries), its types resolve
 * under `moduleResolution` node16 and bundler, they compile in a strict Node project without the DOM lib
 * (`skipLibCheck: false`), and a tiny transfer-learning run works from the installed code.
 *
 * Builds dist/ first unless it is newer than every source file (CI builds before testing). Peer dependencies
 * (tfjs) and sharp are linked from the repository's node_modules rather than installed again. Runs once, in the
 * wasm project.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const run = process.env.TFJS_TRANSFER_TEST_BACKEND === 'cpu' ? describe.skip : describe;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function sh(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, timeout: 240_000 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${e.stdout ?? ''}\n${e.stderr ?? ''}\n${e.message}`);
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function distIsFresh(): boolean {
  const outputs = ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/node/index.js', 'dist/node/index.cjs', 'dist/onnx/index.js', 'dist/onnx/index.cjs'].map((f) => join(repo, f));
  if (!outputs.every(existsSync)) return false;
  const built = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
  return built > Math.max(newestMtime(join(repo, 'src')), statSync(join(repo, 'package.json')).mtimeMs, statSync(join(repo, 'tsup.config.ts')).mtimeMs);
}

const ESM_CHECK = `
import * as main from 'tfjs-transfer';
import * as node from 'tfjs-transfer/node';
import * as onnx from 'tfjs-transfer/onnx';
const out = {
  main: ['loadBackbone', 'freeze', 'attachHead', 'fit', 'evaluate', 'predict', 'save', 'loadModel', 'transferLearn', 'examine'].filter((k) => typeof main[k] !== 'function'),
  mainHasImageFolder: 'imageFolder' in main,
  node: ['imageFolder', 'decodeImage', 'loadBackbone', 'transferLearn'].filter((k) => typeof node[k] !== 'function'),
  sameEnv: main.env === node.env,
  fileSystem: Boolean(node.env.fileSystem),
  onnx: typeof onnx.exportOnnx,
  onnxWrite: typeof node.env.fileSystem?.writeFile,
};
console.log(JSON.stringify(out));
`;

const CJS_CHECK = `
const main = require('tfjs-transfer');
const node = require('tfjs-transfer/node');
const onnx = require('tfjs-transfer/onnx');
console.log(JSON.stringify({
  main: typeof main.loadBackbone,
  onnx: typeof onnx.exportOnnx,
  node: typeof node.imageFolder,
  sameEnv: main.env === node.env,
  fileSystem: Boolean(node.env.fileSystem),
}));
`;

/** A whole (tiny) run from the installed package, on wasm: backbone, freeze, head, fit, save, load, predict. */
const RUN_CHECK = `
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { attachHead, env, fit, freeze, fromTensors, loadBackbone, loadModel, predict, save } from 'tfjs-transfer/node';
await tf.setBackend('wasm');
env.verbose = false;
const input = tfl.input({ shape: [16, 16, 3] });
const conv = tfl.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'features', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }).apply(input);
const cnn = tfl.model({ inputs: input, outputs: conv });
const model = attachHead(freeze(await loadBackbone(cnn, { preprocessing: { scale: 1 / 255, offset: 0 } })), { classes: ['red', 'blue'], seed: 1 });
const n = 72;
const ys = Array.from({ length: n }, (_, i) => (i % 2 ? 'blue' : 'red'));
const xs = tf.tidy(() => tf.stack(ys.map((y) => tf.add(tf.fill([16, 16, 3], 0), tf.tensor1d(y === 'red' ? [200, 60, 60] : [60, 60, 200])))));
const history = await fit(model, fromTensors(xs, ys, { classes: ['red', 'blue'] }), { epochs: 15, learningRate: 0.05, seed: 1, verbose: false });
await save(model, process.argv[2]);
const reloaded = await loadModel(process.argv[2]);
const [p] = await predict(reloaded, tf.slice(xs, 0, 1));
console.log(JSON.stringify({ backend: tf.getBackend(), epochs: history.epochs, label: p.label, classes: reloaded.classes }));
await env.parallelExtractor?.close?.();
process.exit(0);
`;

const TYPES_CHECK = `
import { attachHead, loadBackbone, type Backbone, type Evaluation, type TransferModel } from 'tfjs-transfer';
import { imageFolder, type ImageFolder } from 'tfjs-transfer/node';
export async function build(path: string): Promise<TransferModel> {
  const backbone: Backbone = await loadBackbone(path, { inputSize: 160 });
  const folder: ImageFolder = await imageFolder('photos', { size: [160, 160] });
  return attachHead(backbone, { classes: folder.classes });
}
export const accuracy = (e: Evaluation): number => e.accuracy;
// @ts-expect-error: the browser entry has no imageFolder
export { imageFolder as wrong } from 'tfjs-transfer';
`;

const TYPES_CHECK_CJS = `
import main = require('tfjs-transfer');
import node = require('tfjs-transfer/node');
export const f: typeof main.loadBackbone = node.loadBackbone;
export type Folder = node.ImageFolder;
`;

/**
 * A strict Node project: no DOM lib, `skipLibCheck: false`, so every published `.d.ts` is checked. Calls a few
 * functions of both entries, and passes browser-shaped inputs through the structural types that replace the DOM's.
 */
const STRICT_NODE_CHECK = `
import * as tf from '@tensorflow/tfjs-core';
import { attachHead, createIndexedDBCache, createMemoryCache, env, evaluate, fit, freeze, fromImages, loadBackbone, predict, type ImageInput, type Prediction, type Progress, type TransferModel } from 'tfjs-transfer';
import { createDiskCache, decodeImage, imageFolder, installNodeServices, transferLearn, type ImageFolder } from 'tfjs-transfer/node';
import { exportOnnx, type ExportOnnxArgs } from 'tfjs-transfer/onnx';
export async function run(dir: string, bytes: Uint8Array): Promise<Prediction[]> {
  installNodeServices();
  env.verbose = false;
  const folder: ImageFolder = await imageFolder(dir, { size: [96, 96] });
  const model: TransferModel = attachHead(freeze(await loadBackbone('mobilenet_v2_0.35_96')), { classes: folder.classes });
  await fit(model, folder.train, { epochs: 1, cache: createDiskCache(dir + '/.cache'), onProgress: (p: Progress) => console.log(p.stage) });
  await evaluate(model, folder.validation ?? folder.train);
  const decoded = await decodeImage(bytes, { size: [96, 96] });
  const pixels: ImageInput = { data: new Uint8ClampedArray(96 * 96 * 4), width: 96, height: 96 };
  fromImages([{ image: pixels, label: 0 }, { image: { width: 96, height: 96 }, label: 1 }], { classes: ['a', 'b'] });
  createMemoryCache();
  createIndexedDBCache('features', { indexedDB: { open: () => ({}) } });
  const { evaluation } = await transferLearn({ data: dir, epochs: 1 });
  console.log(decoded.width, evaluation.accuracy);
  const onnxArgs: ExportOnnxArgs = { opset: 13, verbose: false };
  const onnxBytes: Uint8Array = await exportOnnx(model, dir + '/model.onnx', onnxArgs);
  console.log(onnxBytes.length);
  return predict(model, tf.zeros([96, 96, 3]) as tf.Tensor3D);
}
`;

run('npm package', () => {
  let temp: string;
  let project: string;
  let files: string[];

  beforeAll(() => {
    if (!distIsFresh()) sh(npm, ['run', 'build'], repo);
    temp = mkdtempSync(join(tmpdir(), 'tt-package-'));
    const dry = JSON.parse(sh(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], repo)) as { files: { path: string }[] }[];
    files = dry[0]!.files.map((f) => f.path).sort();
    const packed = JSON.parse(sh(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', temp], repo)) as { filename: string }[];
    const tarball = join(temp, packed[0]!.filename);

    project = join(temp, 'consumer');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    sh(npm, ['install', tarball, '--prefer-offline', '--legacy-peer-deps', '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock', '--no-save'], project);
    // Peer dependencies (tfjs) and sharp come from the repository, linked after the install (npm would prune
    // them): the same versions, no download.
    mkdirSync(join(project, 'node_modules/@tensorflow'), { recursive: true });
    for (const name of readdirSync(join(repo, 'node_modules/@tensorflow'))) {
      symlinkSync(join(repo, 'node_modules/@tensorflow', name), join(project, 'node_modules/@tensorflow', name), 'dir');
    }
    // One link per package, never a whole scope folder: npm deletes what it finds inside a linked folder.
    mkdirSync(join(project, 'node_modules/@types'), { recursive: true });
    // protobufjs (a dependency) depends on @types/node, so npm may have installed one: the repository's replaces it.
    for (const name of ['sharp', '@types/node', 'undici-types']) {
      if (!existsSync(join(repo, 'node_modules', name))) continue;
      rmSync(join(project, 'node_modules', name), { recursive: true, force: true });
      symlinkSync(join(repo, 'node_modules', name), join(project, 'node_modules', name), 'dir');
    }
  }, 300_000);

  afterAll(() => {
    if (temp) rmSync(temp, { recursive: true, force: true });
  });

  test('the tarball holds only dist/, README.md, LICENSE, CHANGELOG.md and package.json', () => {
    const allowed = (f: string) => f.startsWith('dist/') || ['README.md', 'LICENSE', 'CHANGELOG.md', 'package.json'].includes(f);
    expect(files.filter((f) => !allowed(f))).toEqual([]);
    for (const f of ['README.md', 'LICENSE', 'CHANGELOG.md', 'package.json', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/node/index.js', 'dist/node/index.cjs', 'dist/node/index.d.ts', 'dist/node/index.d.cts', 'dist/onnx/index.js', 'dist/onnx/index.cjs', 'dist/onnx/index.d.ts', 'dist/onnx/index.d.cts']) {
      expect(files).toContain(f);
    }
  });

  test('package.json declares what a published package needs', async () => {
    const pkg = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(join(repo, 'package.json'), 'utf8'))) as Record<string, unknown>;
    expect(pkg.license).toBe('MIT');
    expect(pkg.engines).toHaveProperty('node');
    expect(pkg.repository).toHaveProperty('url');
    expect((pkg.keywords as string[]).length).toBeGreaterThan(3);
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'README.md', 'LICENSE', 'CHANGELOG.md']));
    expect(Object.keys(pkg.peerDependencies as object).sort()).toEqual(['@tensorflow/tfjs-converter', '@tensorflow/tfjs-core', '@tensorflow/tfjs-layers']);
  });

  test('imports as ESM: both entries, one shared env, file access only from the Node entry', () => {
    writeFileSync(join(project, 'esm-check.mjs'), ESM_CHECK);
    const out = JSON.parse(sh('node', ['esm-check.mjs'], project).trim().split('\n').pop()!);
    expect(out).toEqual({ main: [], mainHasImageFolder: false, node: [], sameEnv: true, fileSystem: true, onnx: 'function', onnxWrite: 'function' });
  });

  test('requires as CommonJS: both entries', () => {
    writeFileSync(join(project, 'cjs-check.cjs'), CJS_CHECK);
    const out = JSON.parse(sh('node', ['cjs-check.cjs'], project).trim().split('\n').pop()!);
    expect(out).toEqual({ main: 'function', onnx: 'function', node: 'function', sameEnv: true, fileSystem: true });
  });

  test('types resolve with moduleResolution node16 (ESM and CJS files) and bundler', () => {
    writeFileSync(join(project, 'check.ts'), TYPES_CHECK);
    writeFileSync(join(project, 'check-cjs.cts'), TYPES_CHECK_CJS);
    const common = { strict: true, noEmit: true, skipLibCheck: true, target: 'es2022', lib: ['es2022', 'dom'], types: ['node'] };
    writeFileSync(join(project, 'tsconfig.node16.json'), JSON.stringify({ compilerOptions: { ...common, module: 'node16', moduleResolution: 'node16' }, files: ['check.ts', 'check-cjs.cts'] }));
    writeFileSync(join(project, 'tsconfig.bundler.json'), JSON.stringify({ compilerOptions: { ...common, module: 'esnext', moduleResolution: 'bundler' }, files: ['check.ts'] }));
    const tsc = join(repo, 'node_modules/typescript/bin/tsc');
    sh('node', [tsc, '-p', 'tsconfig.node16.json'], project);
    sh('node', [tsc, '-p', 'tsconfig.bundler.json'], project);
  });

  test('the published types hold no internal declarations (stripInternal: test hooks such as __faults)', () => {
    const dist = join(project, 'node_modules/tfjs-transfer/dist');
    const types = ['index.d.ts', 'index.d.cts', 'node/index.d.ts', 'node/index.d.cts', 'onnx/index.d.ts', 'onnx/index.d.cts'].map((f) => readFileSync(join(dist, f), 'utf8'));
    for (const text of types) {
      expect(text).not.toContain('__faults');
      expect(text).not.toContain('FaultPlan');
    }
  });

  test('the published types compile in a strict Node project without the DOM lib (skipLibCheck: false)', () => {
    writeFileSync(join(project, 'strict-node.ts'), STRICT_NODE_CHECK);
    const compilerOptions = { strict: true, noEmit: true, skipLibCheck: false, target: 'es2022', lib: ['es2022'], types: ['node'], module: 'node16', moduleResolution: 'node16' };
    writeFileSync(join(project, 'tsconfig.strict.json'), JSON.stringify({ compilerOptions, files: ['strict-node.ts'] }));
    const tsc = join(repo, 'node_modules/typescript/bin/tsc');
    let output = '';
    try {
      execFileSync('node', [tsc, '-p', 'tsconfig.strict.json', '--pretty', 'false'], { cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    } catch (error) {
      output = String((error as { stdout?: string }).stdout ?? '') || String(error);
    }
    // tfjs 4.22's own declarations (and @webgpu/types, which tfjs-core pulls in) need the DOM lib: those errors are
    // theirs, reported in their files. Ours (the installed tfjs-transfer's .d.ts and the check file) must be none.
    const ours = /^(node_modules\/tfjs-transfer\/|strict-node\.ts)/;
    const errors = output.split('\n').filter((line) => /\(\d+,\d+\): error TS/.test(line) && ours.test(line));
    expect(output, 'tsc ran and reported (at least tfjs\'s own DOM-lib errors)').toMatch(/error TS/);
    expect(errors).toEqual([]);
  }, 120_000);

  test('a tiny run from the installed package: backbone, head, fit, save, load, predict on wasm', () => {
    writeFileSync(join(project, 'run-check.mjs'), RUN_CHECK);
    const out = JSON.parse(sh('node', ['run-check.mjs', join(temp, 'saved')], project).trim().split('\n').pop()!);
    expect(out).toEqual({ backend: 'wasm', epochs: 15, label: 'red', classes: ['red', 'blue'] });
  });
});
