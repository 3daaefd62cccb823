/**
 * Saves that readers can rely on (issue 17, items 2, 6, 7): another process loading the model in a loop while this one
 * replaces it 120 times sees no failed load and only complete models; a save killed with SIGKILL leaves the previous
 * model loadable and its temporaries are removed by the next save; leftovers of the old folder-swap layout are
 * restored or removed; folder modes are kept; a folder under a read-only parent can be saved into.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

describe('leftovers of interrupted saves', () => {
  it.each(['fsync', 'rename-into-place'] as const)(
    'a save killed with SIGKILL at %s leaves the previous model loadable; the next save removes its temporaries',
    async (step) => {
      const dir = path.join(tmp, 'model');
      const source = path.join(tmp, 'source');
      await nodeFileSystem.saver(dir).save!(await artifactsOf(1));
      await nodeFileSystem.saver(source).save!(await artifactsOf(2));
      const before = await loadKey(dir);
      const saver = child(['save-hang', source, dir, step]);
      await until('a temporary file of the save', async () => (await fs.readdir(dir)).some((n) => n.endsWith('.tmp')));
      await new Promise((r) => setTimeout(r, 100));
      saver.proc.kill('SIGKILL');
      await saver.exited;
      const leftovers = (await fs.readdir(dir)).filter((n) => n.endsWith('.tmp'));
      expect(leftovers.length).toBeGreaterThan(0);
      expect(await loadKey(dir)).toBe(before);
      // The next save (of the model that was there) removes the killed writer's temporaries and unused shards.
      await nodeFileSystem.saver(dir).save!(await artifactsOf(1));
      const names = (await fs.readdir(dir)).sort();
      expect(names).toEqual(['model.json', expect.stringMatching(/^weights-[0-9a-f]{16}\.bin$/)]);
      expect(await loadKey(dir)).toBe(before);
      expect(await fs.readdir(tmp)).toEqual(['model', 'source']);
    },
    60_000,
  );

  /** The layout the earlier folder-swap saver left when killed between its two renames. */
  async function oldLayoutKilled(): Promise<{ dir: string; backup: string; key: string }> {
    const dir = path.join(tmp, 'model');
    await nodeFileSystem.saver(dir).save!(await artifactsOf(1));
    await fs.writeFile(path.join(dir, 'notes.txt'), 'mine');
    const key = await loadKey(dir);
    const backup = path.join(tmp, `.model.bak-${deadPid()}-0a1b2c3d`);
    await fs.rename(dir, backup);
    const oldTemp = path.join(tmp, '.model.tmp-Ab12Cd');
    await fs.mkdir(oldTemp);
    await fs.writeFile(path.join(oldTemp, 'weights.bin'), Buffer.alloc(1000));
    const hourAgo = new Date(Date.now() - 3600_000);
    await fs.utimes(oldTemp, hourAgo, hourAgo);
    return { dir, backup, key };
  }

  it('a load restores the model from a backup the old saver left when no model is at the path', async () => {
    const { dir, key } = await oldLayoutKilled();
    expect(await loadKey(dir)).toBe(key);
    expect(await fs.readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    expect((await fs.readdir(tmp)).filter((n) => n.includes('.bak-'))).toEqual([]);
  });

  it('a save restores such a backup (keeping the files beside the model), then replaces the model and removes old temporaries', async () => {
    const { dir } = await oldLayoutKilled();
    await nodeFileSystem.saver(dir).save!(await artifactsOf(2));
    expect(await fs.readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    expect(await fs.readdir(tmp)).toEqual(['model']);
    expect((await fs.readdir(dir)).sort()).toEqual(['model.json', 'notes.txt', expect.stringMatching(/^weights-/)]);
  });

  it('a save removes a backup left after the old saver had already put the new model in place', async () => {
    const { dir, backup } = await oldLayoutKilled();
    await fs.cp(backup, dir, { recursive: true });
    await nodeFileSystem.saver(dir).save!(await artifactsOf(2));
    expect(await fs.readdir(tmp)).toEqual(['model']);
  });
});

describe('where and how saves write', () => {
  it('a new folder gets the default mode (0o777 & ~umask); a replaced folder keeps its mode', async () => {
    const umask = process.umask();
    const fresh = path.join(tmp, 'fresh');
    await nodeFileSystem.saver(fresh).save!(await artifactsOf(1));
    expect((await fs.stat(fresh)).mode & 0o777).toBe(0o777 & ~umask);
    for (const mode of [0o755, 0o750, 0o775]) {
      const dir = path.join(tmp, `m${mode.toString(8)}`);
      await nodeFileSystem.saver(dir).save!(await artifactsOf(1));
      await fs.chmod(dir, mode);
      await nodeFileSystem.saver(dir).save!(await artifactsOf(2));
      expect((await fs.stat(dir)).mode & 0o777).toBe(mode);
    }
  });

  it('replaces the model inside the folder without replacing the folder itself (so a mount point can be saved to)', async () => {
    // A mount point cannot be renamed (EBUSY); the saver never renames the folder, which this checks by its inode.
    const dir = path.join(tmp, 'volume');
    await nodeFileSystem.saver(dir).save!(await artifactsOf(1));
    const before = await fs.stat(dir);
    await nodeFileSystem.saver(dir).save!(await artifactsOf(2));
    const after = await fs.stat(dir);
    expect([after.dev, after.ino]).toEqual([before.dev, before.ino]);
    expect(await fs.readdir(tmp)).toEqual(['volume']);
  });

  it('writes a model that stock tf.loadLayersModel reads (over http, the manifest naming the content-named shard)', async () => {
    const dir = path.join(tmp, 'served');
    await nodeFileSystem.saver(dir).save!(await artifactsOf(1));
    await nodeFileSystem.saver(dir).save!(await artifactsOf(2));
    const server = createServer((req, res) => {
      fs.readFile(path.join(dir, path.basename(req.url ?? ''))).then(
        (body) => res.end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const stock = await tfl.loadLayersModel(`http://127.0.0.1:${port}/model.json`);
      const ours = await tfl.loadLayersModel(nodeFileSystem.loader(dir));
      const x = tf.ones([1, 64]);
      const [a, b] = [stock.predict(x) as tf.Tensor, ours.predict(x) as tf.Tensor];
      expect(await a.data()).toEqual(await b.data());
      tf.dispose([x, a, b]);
      stock.dispose();
      ours.dispose();
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('a failed save into an existing folder without a model does not claim a previous model is intact', async () => {
    const dir = path.join(tmp, 'volume');
    await fs.mkdir(dir);
    const failing = createNodeFileSystem({ __faults: { failAfterBytes: 100 } });
    let caught: unknown;
    await failing.saver(dir).save!(await artifactsOf(1)).catch((e: unknown) => (caught = e));
    expect(caught).toBeInstanceOf(TransferError);
    const message = (caught as TransferError).message;
    expect(message).toContain(`There was no model at ${dir} before`);
    expect(message).not.toContain('intact');
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('saves into a writable folder whose parent is read-only (the usual mounted volume)', async (ctx) => {
    const parent = path.join(tmp, 'ro');
    const dir = path.join(parent, 'model');
    const source = path.join(tmp, 'source');
    await nodeFileSystem.saver(dir).save!(await artifactsOf(1));
    await nodeFileSystem.saver(source).save!(await artifactsOf(2));
    const expected = await loadKey(source);
    await fs.chmod(tmp, 0o755);
    await fs.chmod(parent, 0o555);
    // As root, permissions are not enforced: the save then runs in a child process as the unprivileged user 65534.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      await fs.chown(dir, 65534, 65534);
      for (const name of await fs.readdir(dir)) await fs.chown(path.join(dir, name), 65534, 65534);
    } else if (process.platform === 'win32') {
      ctx.skip();
    }
    try {
      const saver = child(['save-hang', source, dir, 'none'], asRoot ? { uid: 65534, gid: 65534 } : {});
      expect(await saver.exited, saver.stderr()).toBe(0);
      expect(saver.lines).toContain('saved');
      expect(await loadKey(dir)).toBe(expected);
      expect(await fs.readdir(parent)).toEqual(['model']);
    } finally {
      await fs.chmod(parent, 0o755);
    }
  }, 60_000);
});
