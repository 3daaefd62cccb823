/**
 * Saves that readers can rely on (issue 17, items 2, 6, 7): another process loading the model in a loop while this one
 * replaces it 120 times sees no failed load and only complete models; a save killed with SIGKILL leaves the previous
 * model loadable and its temporaries are removed by the next save; leftovers of the old folder-swap layout are
 * restored or removed; folder modes are kept; a folder under a read-only parent can be saved into.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransferError } from '../../src/errors.js';
import { createNodeFileSystem, nodeFileSystem } from '../../src/node/file-io.js';

const FIXTURE = path.resolve(__dirname, '../fixtures/save-child.ts');
let tmp = '';

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tfjs-transfer-save-'));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** The artifacts of a small dense model (about 260 KB of weights), deterministic per seed. */
async function artifactsOf(seed: number): Promise<tf.io.ModelArtifacts> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [64], units: 1024, activation: 'relu', name: 'hidden' }),
      tfl.layers.dense({ units: 2, activation: 'softmax', name: 'out' }),
    ],
  });
  tf.tidy(() => {
    model.setWeights(model.getWeights().map((w, i) => tf.reshape(tf.sin(tf.add(tf.range(0, w.size), seed * 10 + i)), w.shape)));
  });
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  model.dispose();
  return captured!;
}

/** The same key the child computes for a loaded model. */
async function loadKey(dir: string): Promise<string> {
  const artifacts = await nodeFileSystem.loader(dir).load!();
  return createHash('sha256')
    .update(new Uint8Array(artifacts.weightData as ArrayBuffer))
    .update(JSON.stringify(artifacts.weightSpecs))
    .digest('hex')
    .slice(0, 12);
}

function child(args: string[], options: { uid?: number; gid?: number } = {}): { proc: ChildProcess; lines: string[]; stderr: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const lines: string[] = [];
  let err = '';
  let buffer = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((done) => proc.on('exit', (code) => done(code)));
  return { proc, lines, stderr: () => err, exited };
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A pid that is certainly not running: a process that has exited. */
function deadPid(): number {
  const run = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(run.stdout.trim());
}

describe('saves are atomic for readers', () => {
  it('a process loading in a loop while this one saves 120 times sees no failed load and only whole models', async () => {
    const a = await artifactsOf(1);
    const b = await artifactsOf(2);
    const dir = path.join(tmp, 'model');
    await nodeFileSystem.saver(dir).save!(b);
    const keyB = await loadKey(dir);
    await nodeFileSystem.saver(dir).save!(a);
    const keyA = await loadKey(dir);
    expect(keyA).not.toBe(keyB);

    const stop = path.join(tmp, 'stop');
    const loader = child(['load', dir, stop]);
    await until('the loader to start', () => loader.lines.includes('ready'));
    const saves = 120;
    for (let i = 0; i < saves; i++) await nodeFileSystem.saver(dir).save!(i % 2 === 0 ? b : a);
    await fs.writeFile(stop, '');
    expect(await loader.exited, loader.stderr()).toBe(0);
    const result = JSON.parse(loader.lines.at(-1)!) as { loads: number; failures: number; hashes: Record<string, number>; errors: string[] };
    console.log(`concurrent saves: ${saves} saves, ${result.loads} loads, ${result.failures} failed`, result.errors);
    expect(result.errors).toEqual([]);
    expect(result.failures).toBe(0);
    expect(result.loads).toBeGreaterThan(10);
    expect(Object.keys(result.hashes).every((k) => k === keyA || k === keyB)).toBe(true);
    // Only the last model's files are left.
    const names = (await fs.readdir(dir)).sort();
    expect(names).toHaveLength(2);
    expect(names[0]).toBe('model.json');
    expect(names[1]).toMatch(/^weights-[0-9a-f]{16}\.bin$/);
  }, 90_000);
});
