/**
 * A training run killed with SIGKILL (no chance to clean up) resumes from its last checkpoint and ends bit-identical
 * (history and every weight) to an uninterrupted run with the same seed, on the backend of the project.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const backend = process.env.TFJS_TRANSFER_TEST_BACKEND ?? 'wasm';
const FIXTURE = resolve(__dirname, '../fixtures/train-child.ts');
const EPOCHS = 6;
const BATCHES_PER_EPOCH = 4; // 30 training images (40, validationSplit 0.25), batch 8

interface ChildRun {
  lines: string[];
  result?: { history: Record<string, unknown>; weights: Record<string, number[]> };
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/** Runs the fixture; with `killAtBatch`, sends SIGKILL when it reports that many batches. */
function runChild(dir: string, killAtBatch?: number): Promise<ChildRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir, String(EPOCHS)], {
      env: { ...process.env, TFJS_TRANSFER_TEST_BACKEND: backend, CHILD_BATCH_DELAY_MS: killAtBatch ? '25' : '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: ChildRun = { lines: [], signal: null, code: null, stderr: '' };
    let buffer = '';
    let batches = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        run.lines.push(line);
        if (line.startsWith('RESULT ')) run.result = JSON.parse(line.slice(7));
        if (line.startsWith('BATCH ') && ++batches === killAtBatch) child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code, signal) => {
      run.code = code;
      run.signal = signal;
      done(run);
    });
  });
}

let root = '';
let reference: ChildRun;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tfjs-transfer-kill-'));
  reference = await runChild(join(root, 'reference'));
  expect(reference.code, reference.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe(`SIGKILL mid-training and resume (${backend})`, () => {
  it('the uninterrupted run checkpoints after every epoch', () => {
    expect(reference.lines.filter((l) => l.startsWith('CHECKPOINT'))).toEqual(Array.from({ length: EPOCHS }, (_, i) => `CHECKPOINT ${i + 1}`));
    expect(reference.result!.history.epochs).toBe(EPOCHS);
    expect(reference.result!.history.resumedEpochs).toBe(0);
  });

  it('is killed three times at different batches and still ends bit-identical', async () => {
    const dir = join(root, 'killed');
    // Kill at global batch 10 (mid-epoch 3), then 7 batches into the resumed run (batch 15, mid-epoch 4), then 6
    // batches later (batch 18, mid-epoch 5). Each batch waits 25 ms after reporting, so the kill lands mid-epoch.
    const kills = [10, 7, 6];
    const resumedAt: number[] = [];
    for (const k of kills) {
      const run = await runChild(dir, k);
      expect(run.signal, run.stderr).toBe('SIGKILL');
      expect(run.result).toBeUndefined();
      // onBatchEnd's index runs on across epochs and restarts: the first one tells where this run resumed.
      const first = Number(run.lines.find((l) => l.startsWith('BATCH'))?.split(' ')[2] ?? NaN);
      expect(first % BATCHES_PER_EPOCH).toBe(0);
      resumedAt.push(first / BATCHES_PER_EPOCH);
    }
    const final = await runChild(dir);
    expect(final.code, final.stderr).toBe(0);
    resumedAt.push(final.result!.history.resumedEpochs as number);
    // Each restart continued from the last checkpoint written before the kill, not from scratch.
    expect(resumedAt).toEqual([0, 2, 3, 4]);
    expect(final.result!.history).toEqual({ ...reference.result!.history, resumedEpochs: 4 });
    expect(Object.keys(final.result!.weights).length).toBeGreaterThan(10);
    for (const [name, values] of Object.entries(reference.result!.weights)) expect(final.result!.weights[name], name).toEqual(values);
    // No temporary file of a killed writer survives the next read.
    expect((await readdir(dir)).sort()).toEqual(['checkpoint.tfjst']);
  }, 120_000);

  it('a finished run started again returns the same result without training', async () => {
    const again = await runChild(join(root, 'reference'));
    expect(again.code, again.stderr).toBe(0);
    expect(again.lines.some((l) => l.startsWith('BATCH'))).toBe(false);
    expect(again.result!.history).toEqual({ ...reference.result!.history, resumedEpochs: EPOCHS });
    expect(again.result!.weights).toEqual(reference.result!.weights);
  }, 60_000);
});
