/**
 * Fine-tuning benchmark: `npm run bench:fine-tune` (= `node --import tsx bench/fine-tune.ts`).
 *
 * MobileNetV2 1.0 at 224 from ../shared, default head (avg pool, dropout 0.2, one sigmoid unit), Adam, batch 32,
 * on wasm. In one run:
 * - **steps**: the time of one gradient step from `block_11_expand` (the Keras tutorial's cut) and from
 *   `block_16_expand`, in this thread and data-parallel on all workers of the pool, in interleaved rounds (medians),
 *   on boundary activations of real training photos; the library's own step functions (`trainStep`,
 *   `parallelTrainStep`), so what is timed is what `fit` runs;
 * - **ceiling**: the same one-thread step on each worker's share of the batch (32 / workers rows) in separate
 *   processes (nothing shared, no gradients exchanged, each applies its own Adam), alone and all at once, in the same
 *   interleaved rounds: `1 thread / all at once` is the speed-up no pool of workers could beat with these kernels on
 *   this machine, and `all at once / alone` how much the cores slow each other down (shared cache and memory);
 * - **profile**: the per-kernel time of one `block_11_expand` step (`tf.profile`), with the one-pass heap kernels
 *   and the one-pass Adam update (after) and without them (before: wasm 4.22's `Identity` copy, transposing `Sum`,
 *   composed activation gradients, tfjs-core's Adam), interleaved;
 * - **epoch**: a real `fit` over the 2000 training images of cats_and_dogs_filtered_200px from `block_11_expand`
 *   (after a head-only fit), its validation pass over the 1000 validation images included, with peak RSS and the
 *   tensor count (skip with `--no-epoch`);
 * - **memory**: the 20,000-image run of bench/fine-tune-memory.ts when present (`--memory`; long).
 *
 * Options: `--rounds N` (default 5), `--warmup N` rounds run first and left out of the medians (default 1: the
 * first steps on fresh workers ran 5-10% slower while their code warmed up), `--steps N` per measurement (default
 * 2), `--no-epoch`, `--json path` (default bench/results/fine-tune.json). Prints a table and writes JSON.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { attachHead, createExtractPool, env, fit, freeze, imageFolder, loadBackbone, registerWasmTrainingKernels, type TransferModel } from '../src/node/index';
import { freezeBoundaryOf } from '../src/train/boundary';
import { trainStep } from '../src/train/epoch-loop';
import { openParallelTraining, parallelTrainStep } from '../src/train/parallel-step';
import type { FitState } from '../src/train/fit-state';
import type { Activations } from '../src/train/activations';
import { rowStorage } from '../src/train/row-store';
import { registerWasmHeapKernels, unregisterWasmHeapKernels } from '../src/train/wasm-heap-kernels';
import { fusedAdamSwitch } from '../src/train/fused-adam';
import type { ParallelTraining } from '../src/services';
import { median } from './common';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHARED = process.env.TFJS_TRANSFER_SHARED ?? path.resolve(here, '../../shared');
const MODEL = path.join(SHARED, 'models/mobilenet_v2_1.0_224/model.json');
const DATA = path.join(SHARED, 'data/cats_and_dogs_filtered_200px');
const CUTS = ['block_11_expand', 'block_16_expand'] as const;
const BATCH = 32;

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    steps: { type: 'string', default: '2' },
    'no-epoch': { type: 'boolean', default: false },
    memory: { type: 'boolean', default: false },
    json: { type: 'string', default: path.join(here, 'results/fine-tune.json') },
    'ceiling-child': { type: 'string' },
  },
});
const ROUNDS = Number(opts.rounds);
/** Rounds run first and left out of the medians (the workers' and this thread's code warming up). */
const WARMUP = Number(opts.warmup);
const STEPS = Number(opts.steps);

/** Peak RSS, sampled every 200 ms while a measurement runs. */
class RssSampler {
  peak = process.memoryUsage().rss;
  private timer = setInterval(() => (this.peak = Math.max(this.peak, process.memoryUsage().rss)), 200);
  stop(): number {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
    return this.peak;
  }
}

/** The boundary activations of `n` training photos at `cut` (extracted once, through the library's `fit` path). */
async function realActivations(model: TransferModel, n: number): Promise<Activations> {
  const split = freezeBoundaryOf(model);
  const folder = await imageFolder(path.join(DATA, 'train'), { size: [224, 224] });
  const values = split.shapes.map(() => [] as Float32Array[]);
  const labels: number[] = [];
  for await (const b of folder.train.batches({ batchSize: BATCH })) {
    const outs = split.extractor.predict(b.xs, { batchSize: BATCH });
    const list = Array.isArray(outs) ? outs : [outs];
    list.forEach((o, j) => values[j]!.push(new Float32Array(o.dataSync() as Float32Array)));
    labels.push(...(b.ys.dataSync() as Int32Array));
    tf.dispose([b.xs, b.ys, ...list]);
    if (labels.length >= n) break;
  }
  const joined = values.map((parts) => {
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  });
  const n0 = labels.length;
  const allocation = rowStorage(['float16']).allocate(n0, joined.map((j) => j.length / n0), 1); // what fit keeps for a spatial boundary
  joined.forEach((j, k) => allocation.rows[0]![k]!.write(0, j));
  return { n: n0, shapes: split.shapes, rows: allocation.rows, labels: Int32Array.from(labels), keys: labels.map(() => undefined), dispose: allocation.dispose, where: allocation.where };
}

/** A fit state good enough for the step functions (the fields they read). */
function stepState(model: TransferModel): FitState {
  const split = freezeBoundaryOf(model);
  const vars = split.top.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  return { model, split, vars, optimizer: tf.train.adam(1e-4), args: { batchSize: BATCH, classWeight: undefined } } as unknown as FitState;
}

interface CutRig {
  cut: string;
  state: FitState;
  acts: Activations;
  job: ParallelTraining | undefined;
  parameters: number;
  boundary: string;
}

async function rig(model: TransferModel, cut: string): Promise<CutRig> {
  freeze(model, { trainableFrom: cut });
  const state = stepState(model);
  const acts = await realActivations(model, 2 * BATCH);
  const job = await openParallelTraining(state);
  const split = freezeBoundaryOf(model);
  return { cut, state, acts, job, parameters: state.vars.reduce((a, v) => a + v.size, 0), boundary: `${split.names.join('+')} ${split.shapes.map((s) => s.join('x')).join(', ')}` };
}

/** Mean seconds per step over `STEPS` steps (after one warm-up step) of `r` in this thread or on the workers. */
async function timeSteps(r: CutRig, parallel: boolean, rows = BATCH): Promise<number> {
  const idx = Array.from({ length: rows }, (_, i) => i);
  const step = () => (parallel ? parallelTrainStep(r.state, r.job!, r.acts, idx, () => 0, [1]) : trainStep(r.state, r.acts, idx, () => 0));
  await step();
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) await step();
  return (performance.now() - t0) / STEPS / 1000;
}

/** Per-kernel milliseconds of one in-thread step (the op-level wrappers of custom-gradient ops left out). */
async function profileStep(r: CutRig): Promise<{ totalMs: number; kernels: Record<string, { ms: number; calls: number }> }> {
  const idx = Array.from({ length: BATCH }, (_, i) => i);
  await trainStep(r.state, r.acts, idx, () => 0);
  const info = await tf.profile(async () => void (await trainStep(r.state, r.acts, idx, () => 0)));
  const kernels: Record<string, { ms: number; calls: number }> = {};
  let totalMs = 0;
  for (const k of info.kernels) {
    if (k.name.endsWith('__op')) continue; // fusedConv2d__op etc. wrap a kernel timed on its own
    const ms = Number(k.kernelTimeMs);
    const e = (kernels[k.name] ??= { ms: 0, calls: 0 });
    e.ms += ms;
    e.calls++;
    totalMs += ms;
  }
  return { totalMs, kernels };
}

/**
 * A ceiling process (`--ceiling-child <rows>`): one-thread steps of `rows` rows from each cut, on its own wasm
 * instance, when the parent says `go <cut>`; answers `time <cut> <seconds>`.
 */
async function ceilingChild(rows: number): Promise<void> {
  const model = attachHead(freeze(await loadBackbone(MODEL)), { classes: ['cats', 'dogs'], seed: 1 });
  const rigs = new Map<string, CutRig>();
  for (const cut of CUTS) {
    freeze(model, { trainableFrom: cut });
    const state = stepState(model);
    rigs.set(cut, { cut, state, acts: await realActivations(model, rows), job: undefined, parameters: 0, boundary: '' });
  }
  console.log('ready');
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const cut = /^go (\S+)$/.exec(line)?.[1];
    if (!cut) break;
    freeze(model, { trainableFrom: cut });
    console.log(`time ${cut} ${await timeSteps(rigs.get(cut)!, false, rows)}`);
  }
  model.dispose();
}

/** The parent's handle on one ceiling process. */
class CeilingProcess {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private constructor(rows: number) {
    this.proc = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--ceiling-child', String(rows)], { stdio: 'pipe' });
    this.proc.stderr.resume();
    this.lines = readline.createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
  }
  static async start(rows: number): Promise<CeilingProcess> {
    const p = new CeilingProcess(rows);
    await p.expect(/^ready$/);
    return p;
  }
  private async expect(re: RegExp): Promise<RegExpExecArray> {
    for (;;) {
      const next = await this.lines.next();
      if (next.done) throw new Error('a ceiling process ended early');
      const m = re.exec(next.value);
      if (m) return m;
    }
  }
  /** Seconds per step of this process's rows from `cut`. */
  async time(cut: string): Promise<number> {
    this.proc.stdin.write(`go ${cut}\n`);
    return Number((await this.expect(/^time \S+ ([\d.e+-]+)$/))[1]);
  }
  close(): void {
    this.proc.stdin.end();
  }
}

async function stepsAndProfile(model: TransferModel) {
  const rigs: CutRig[] = [];
  for (const cut of CUTS) rigs.push(await rig(model, cut));
  const workerCount = rigs[0]!.job?.workers ?? 1;
  const shareRows = Math.ceil(BATCH / Math.max(2, workerCount));
  const ceiling = await Promise.all(Array.from({ length: Math.max(2, workerCount) }, () => CeilingProcess.start(shareRows)));
  const times: Record<string, { one: number[]; all: number[]; shareAlone: number[]; shareAtOnce: number[] }> = Object.fromEntries(
    CUTS.map((c) => [c, { one: [], all: [], shareAlone: [], shareAtOnce: [] }]),
  );
  const profiles: { before: Awaited<ReturnType<typeof profileStep>>[]; after: Awaited<ReturnType<typeof profileStep>>[] } = { before: [], after: [] };
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    for (const r of rigs) {
      freeze(model, { trainableFrom: r.cut });
      const order = round % 2 ? [true, false] : [false, true];
      for (const parallel of order) {
        if (parallel && !r.job) continue;
        times[r.cut]![parallel ? 'all' : 'one'].push(await timeSteps(r, parallel));
      }
      // The pool's step waits for its slowest worker, so the ceiling takes the slowest process.
      for (const atOnce of round % 2 ? [true, false] : [false, true]) {
        if (atOnce) times[r.cut]!.shareAtOnce.push(Math.max(...(await Promise.all(ceiling.map((c) => c.time(r.cut))))));
        else times[r.cut]!.shareAlone.push(await ceiling[0]!.time(r.cut));
      }
    }
    if (round >= WARMUP && round < WARMUP + 3) {
      freeze(model, { trainableFrom: CUTS[0] });
      for (const fast of round % 2 ? [true, false] : [false, true]) {
        if (fast) registerWasmHeapKernels();
        else unregisterWasmHeapKernels();
        fusedAdamSwitch.enabled = fast;
        profiles[fast ? 'after' : 'before'].push(await profileStep(rigs[0]!));
      }
      registerWasmHeapKernels();
      fusedAdamSwitch.enabled = true;
    }
    const label = round < WARMUP ? `warm-up round ${round + 1}/${WARMUP} (left out)` : `round ${round + 1 - WARMUP}/${ROUNDS}`;
    console.log(`${label}: ${rigs.map((r) => `${r.cut} ${times[r.cut]!.one.at(-1)!.toFixed(2)} s / ${times[r.cut]!.all.at(-1)?.toFixed(2) ?? '-'} s`).join(', ')}`);
  }
  for (const t of Object.values(times)) for (const series of Object.values(t)) series.splice(0, WARMUP);
  const workers = workerCount;
  ceiling.forEach((c) => c.close());
  rigs.forEach((r) => (r.job?.dispose(), r.state.optimizer.dispose()));
  const steps = rigs.map((r) => {
    const t = times[r.cut]!;
    const one = median(t.one);
    const all = t.all.length ? median(t.all) : undefined;
    const ratios = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
    return {
      cut: r.cut,
      boundary: r.boundary,
      parameters: r.parameters,
      oneThreadS: one,
      allWorkersS: all,
      workers,
      speedup: t.all.length ? ratios(t.one, t.all) : undefined,
      ceiling: {
        processes: ceiling.length,
        rowsEach: shareRows,
        aloneS: median(t.shareAlone),
        atOnceS: median(t.shareAtOnce),
        /** Median over rounds of one thread's 32 rows / the slowest process's share, all processes at once. */
        speedup: ratios(t.one, t.shareAtOnce),
        /** Median over rounds of a share's time all at once / alone: what the cores cost each other. */
        slowdown: ratios(t.shareAtOnce, t.shareAlone),
      },
      rounds: t,
    };
  });
  const medianProfile = (ps: Awaited<ReturnType<typeof profileStep>>[]) => {
    const names = new Set(ps.flatMap((p) => Object.keys(p.kernels)));
    const kernels = Object.fromEntries([...names].map((n) => [n, { ms: median(ps.map((p) => p.kernels[n]?.ms ?? 0)), calls: ps[0]!.kernels[n]?.calls ?? 0 }]));
    return { totalMs: median(ps.map((p) => p.totalMs)), kernels };
  };
  return { steps, profile: { before: medianProfile(profiles.before), after: medianProfile(profiles.after) } };
}

/** A real fine-tuning epoch over the 2000 training images, validation included. */
async function epochRun() {
  const folder = await imageFolder(DATA, { size: [224, 224] });
  const model = attachHead(freeze(await loadBackbone(MODEL)), { classes: folder.classes, seed: 1 });
  try {
    await fit(model, folder.train, { validationData: folder.validation, epochs: 1, seed: 1, verbose: false });
    freeze(model, { trainableFrom: CUTS[0] });
    const rss = new RssSampler();
    const tensorsBefore = tf.memory().numTensors;
    let epochStart = 0;
    const epochs: number[] = [];
    const t0 = performance.now();
    const history = await fit(model, folder.train, {
      validationData: folder.validation,
      epochs: 2,
      learningRate: 1e-5,
      seed: 1,
      verbose: false,
      callbacks: { onEpochBegin: () => void (epochStart = performance.now()), onEpochEnd: () => void epochs.push((performance.now() - epochStart) / 1000) },
    });
    const totalS = (performance.now() - t0) / 1000;
    const peakRss = rss.stop();
    return {
      epochS: epochs,
      extractS: history.timing ? history.timing.extractMs / 1000 : undefined,
      totalS,
      valAccuracy: history.valAccuracy,
      peakRssMB: peakRss / 2 ** 20,
      tensorsLeft: tf.memory().numTensors - tensorsBefore,
    };
  } finally {
    model.dispose();
  }
}

function printTable(result: Awaited<ReturnType<typeof stepsAndProfile>>, epoch: Awaited<ReturnType<typeof epochRun>> | undefined): void {
  console.log('\n| step, batch 32 (wasm) | boundary | parameters | 1 thread | all workers | speed-up |');
  console.log('|---|---|---|---|---|---|');
  for (const s of result.steps) {
    console.log(`| from ${s.cut} | ${s.boundary} | ${s.parameters} | ${s.oneThreadS.toFixed(2)} s | ${s.allWorkersS?.toFixed(2) ?? '-'} s (${s.workers}) | ${s.speedup?.toFixed(2) ?? '-'}x |`);
  }
  const c0 = result.steps[0]!.ceiling;
  console.log(`\n| ceiling: ${c0.rowsEach} rows per process, ${c0.processes} processes, one-thread steps, nothing shared | alone | all at once | slow-down at once | speed-up ceiling (1 thread / at once) |`);
  console.log('|---|---|---|---|---|');
  for (const s of result.steps) {
    const c = s.ceiling;
    console.log(`| from ${s.cut} | ${c.aloneS.toFixed(3)} s | ${c.atOnceS.toFixed(3)} s | ${c.slowdown.toFixed(2)}x | ${c.speedup.toFixed(2)}x |`);
  }
  const { before, after } = result.profile;
  const names = Object.keys({ ...before.kernels, ...after.kernels }).sort((a, b) => (before.kernels[b]?.ms ?? 0) - (before.kernels[a]?.ms ?? 0));
  console.log(`\n| kernel (one block_11_expand step) | before ms | after ms |`);
  console.log('|---|---|---|');
  for (const n of names.slice(0, 18)) console.log(`| ${n} | ${(before.kernels[n]?.ms ?? 0).toFixed(0)} | ${(after.kernels[n]?.ms ?? 0).toFixed(0)} |`);
  console.log(`| **all kernels** | ${before.totalMs.toFixed(0)} | ${after.totalMs.toFixed(0)} |`);
  if (epoch) {
    console.log(`\nfine-tuning epoch from ${CUTS[0]} over 2000 images, validation (1000) included: ${epoch.epochS.map((s) => s.toFixed(1)).join(' s, ')} s`);
    console.log(`  boundary extraction ${epoch.extractS?.toFixed(1)} s; val accuracy ${epoch.valAccuracy.map((a) => a.toFixed(4)).join(', ')}; peak RSS ${epoch.peakRssMB.toFixed(0)} MB; tensors left ${epoch.tensorsLeft}`);
  }
}

await tf.setBackend('wasm');
await tf.ready();
registerWasmTrainingKernels();
env.verbose = false;
if (opts['ceiling-child']) {
  await ceilingChild(Number(opts['ceiling-child']));
  process.exit(0);
}
const pool = createExtractPool();
env.parallelExtractor = pool;
env.parallelTrainer = pool;
console.log(`bench:fine-tune: wasm, ${os.cpus().length} cores, pool of ${pool.size} workers, ${WARMUP} warm-up + ${ROUNDS} rounds x ${STEPS} steps`);
const model = attachHead(freeze(await loadBackbone(MODEL)), { classes: ['cats', 'dogs'], seed: 1 });
const result = await stepsAndProfile(model);
model.dispose();
const epoch = opts['no-epoch'] ? undefined : await epochRun();
let memory: unknown;
if (opts.memory) {
  const { runMemoryBench } = await import('./fine-tune-memory');
  memory = await runMemoryBench({});
}
printTable(result, epoch);
if (memory) console.log('\nmemory run:', JSON.stringify(memory, null, 2));
fs.mkdirSync(path.dirname(opts.json!), { recursive: true });
fs.writeFileSync(opts.json!, JSON.stringify({ date: new Date().toISOString(), cpus: os.cpus().length, loadavg: os.loadavg(), ...result, epoch, memory }, null, 2));
console.log(`\nwrote ${opts.json}`);
await pool.dispose();
