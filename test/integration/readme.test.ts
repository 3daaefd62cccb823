/**
 * The README, as a user reads it: every ```ts block runs as written (copied byte for byte into a file), each in its
 * own process, in a temporary folder prepared the way the README describes (`./photos/<class>/` of real photos and
 * a `./photo.jpg`), importing `tfjs-transfer` / `tfjs-transfer/node` from this repository's sources (tsconfig
 * `paths`). The default backbone (`mobilenet_v2_1.0_224`) comes from ../shared instead of the network: a module
 * preloaded with `--import` sets `env.fetch` to read its files from ../shared/models and to refuse any other URL,
 * so the run is offline and the blocks stay unchanged. Also: the README's links work from the npm page (absolute,
 * or anchors), and it states the Node version `engines` does.
 *
 * Runs once, in the wasm project (the blocks choose their backend themselves). Kept cheap by the README's own
 * choices (a small folder here; a few epochs there).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CATS_DOGS, SHARED } from '../helpers/real-data';

const repo = resolve(fileURLToPath(import.meta.url), '../../..');
const run = process.env.TFJS_TRANSFER_TEST_BACKEND === 'cpu' ? describe.skip : describe;
const readme = readFileSync(join(repo, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);

/** Photos per class in `./photos/<class>/` (from the tutorial's training set). */
const PER_CLASS = 8;

/** Preloaded into each block's process: the official MobileNetV2 URLs are served from ../shared, nothing else. */
const PRELOAD = `
import { readFile } from 'node:fs/promises';
import { env } from 'tfjs-transfer';
const mirror: Record<string, string> = {
  'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v2_1.0_224/': ${JSON.stringify(join(SHARED, 'models/mobilenet_v2_1.0_224'))} + '/',
};
env.fetch = async (input: string | URL | Request): Promise<Response> => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  for (const [prefix, dir] of Object.entries(mirror)) {
    if (url.startsWith(prefix)) return new Response(await readFile(dir + url.slice(prefix.length).split('?')[0]));
  }
  throw new Error('readme test: offline, no file for ' + url);
};
`;

function runBlock(dir: string, file: string): string {
  try {
    return execFileSync(process.execPath, ['--import', 'tsx', '--import', './preload.ts', file], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 240_000,
      env: { ...process.env, TFJS_TRANSFER_TEST_BACKEND: undefined },
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    // The tail only: on an uncaught error tfjs-backend-wasm prints its whole (minified) source first.
    throw new Error(`README block ${file} failed:\n${(e.stdout ?? '').slice(-3000)}\n${(e.stderr ?? '').slice(-3000)}`);
  }
}

run('README', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tt-readme-'));
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'readme-user', private: true, type: 'module' }));
    const paths = { 'tfjs-transfer': [join(repo, 'src/index.ts')], 'tfjs-transfer/node': [join(repo, 'src/node/index.ts')] };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'es2022', module: 'esnext', moduleResolution: 'bundler', strict: true, paths } }));
    writeFileSync(join(dir, 'preload.ts'), PRELOAD);
    for (const [cls, folder] of [['cat', 'cats'], ['dog', 'dogs']] as const) {
      mkdirSync(join(dir, 'photos', cls), { recursive: true });
      const source = join(CATS_DOGS, 'train', folder);
      for (const f of readdirSync(source).filter((n) => n.endsWith('.jpg')).sort().slice(0, PER_CLASS)) copyFileSync(join(source, f), join(dir, 'photos', cls, f));
    }
    copyFileSync(join(SHARED, 'images/cat.jpg'), join(dir, 'photo.jpg'));
    blocks.forEach((code, i) => writeFileSync(join(dir, `block-${i + 1}.ts`), code));
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('has the two TypeScript blocks this test knows how to check', () => {
    expect(blocks).toHaveLength(2);
  });

  test('Quick start: transferLearn on ./photos, save, load, predict a file', () => {
    const out = runBlock(dir, 'block-1.ts');
    expect(out).toMatch(/^validation accuracy (0|1|0\.\d+)$/m);
    const last = out.trim().split('\n').pop()!;
    expect(last).toMatch(/^(cat|dog) (0|1|0\.\d+)$/);
    expect(existsSync(join(dir, 'my-model/model.json'))).toBe(true);
  }, 300_000);

  test('step by step: imageFolder, examine, loadBackbone, freeze, attachHead, fit, evaluate, fine-tune', () => {
    const out = runBlock(dir, 'block-2.ts');
    expect(out).toMatch(/^accuracy (0|1|0\.\d+)$/m);
  }, 300_000);

  test("links work from the npm page: absolute, or anchors (docs/ is not in the package)", () => {
    const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
    expect(targets.length).toBeGreaterThan(5);
    expect(targets.filter((t) => !/^(https?:\/\/|#)/.test(t))).toEqual([]);
  });

  test('states the Node version package.json requires', () => {
    const engines = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const major = /^>=(\d+)$/.exec(engines)?.[1];
    expect(major, `engines.node is ${engines}`).toBeDefined();
    expect(readme).toContain(`Node ${major} or later`);
  });
});
