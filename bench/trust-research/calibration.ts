// Calibration: ECE (15 bins, top probability) before and after temperature scaling; T fitted on data the measured
// images never touch: (a) the 20% held-out split of train (the early-stopping split), (b) out-of-fold logits of
// 5-fold cross-validation of the training set. Measured on the validation folder (and cats_vs_dogs_elsewhere).
// Run: node --import tsx bench/trust-research/calibration.ts <task cd|fl> <seeds> [head configs...]
import { appendFileSync } from 'node:fs';
import { loadTaskTests, defaultSplit, trainHead, logits, probs, ece, nll, accuracy, fitTemperature, folds, Random, subset, splitIndices, stats, fmt, flipLogits, type Task, type HeadOptions, type Head, type Labelled, RESULTS } from './lib';
import { CONFIGS } from './accuracy';

function oofLogits(task: Task, cfg: HeadOptions, seed: number, k = 5, useFlip = false): { z: Float64Array[]; y: Int32Array } {
  const f = folds(task.train.y, k, new Random(seed * 7919));
  const z: Float64Array[] = new Array(task.train.n);
  for (let fold = 0; fold < k; fold++) {
    const inIdx = Array.from({ length: task.train.n }, (_, i) => i).filter((i) => f[i] !== fold);
    const outIdx = Array.from({ length: task.train.n }, (_, i) => i).filter((i) => f[i] === fold);
    const part = subset(task.train, inIdx);
    const sp = splitIndices(part.y, 0.2, new Random(seed ^ fold));
    const tr = subset(part, sp.train), es = subset(part, sp.validation);
    const h = trainHead(tr.x, tr.y, task.classes.length, { x: es.x[0]!, y: es.y }, { seed: seed + 100 * fold, ...cfg });
    const held = subset(task.train, outIdx);
    const zz = useFlip ? flipLogits(h, held) : logits(h, held.x[0]!);
    outIdx.forEach((r, i) => (z[r] = zz[i]!));
  }
  return { z, y: task.train.y };
}

async function main() {
  const [taskName, seedsArg, ...cfgNames] = process.argv.slice(2);
  const task = loadTaskTests(taskName as 'cd' | 'fl');
  const seeds = Array.from({ length: Number(seedsArg ?? 3) }, (_, i) => i + 1);
  const evalSets = task.name === 'cd' ? [task.tests[0]!, task.tests[1]!, task.tests[2]!] : [task.tests[0]!];
  for (const cfgName of cfgNames.length ? cfgNames : ['default']) {
    const cfg = CONFIGS[cfgName]!.head;
    const rows: Record<string, number[]> = {};
    const push = (k: string, v: number) => (rows[k] ??= []).push(v);
    const t0 = Date.now();
    for (const seed of seeds) {
      const { fitPart, heldOut } = defaultSplit(task, seed);
      const h = trainHead(fitPart.x, fitPart.y, task.classes.length, { x: heldOut.x[0]!, y: heldOut.y }, { seed, ...cfg });
      const zHeld = logits(h, heldOut.x[0]!);
      const tHeld = fitTemperature(zHeld, heldOut.y);
      const oof = oofLogits(task, cfg, seed);
      const tCV = fitTemperature(oof.z, oof.y);
      const zHeldF = flipLogits(h, heldOut);
      const tHeldFlip = fitTemperature(zHeldF, heldOut.y);
      push('T_held', tHeld);
      push('T_cv', tCV);
      push('T_held_flip', tHeldFlip);
      for (const s of evalSets) {
        const z = logits(h, s.x[0]!);
        const zf = flipLogits(h, s);
        push(`${s.name}_acc`, accuracy(probs(h, z), s.y));
        push(`${s.name}_ece_T1`, ece(probs(h, z), s.y));
        push(`${s.name}_ece_Theld`, ece(probs(h, z, tHeld), s.y));
        push(`${s.name}_ece_Tcv`, ece(probs(h, z, tCV), s.y));
        push(`${s.name}_nll_T1`, nll(probs(h, z), s.y));
        push(`${s.name}_nll_Tcv`, nll(probs(h, z, tCV), s.y));
        push(`${s.name}_flip_acc`, accuracy(probs(h, zf), s.y));
        push(`${s.name}_flip_ece_T1`, ece(probs(h, zf), s.y));
        push(`${s.name}_flip_ece_Theldflip`, ece(probs(h, zf, tHeldFlip), s.y));
      }
    }
    const secs = (Date.now() - t0) / 1000;
    console.log(`\n### calibration ${taskName} head=${cfgName} seeds ${seeds.join(',')} (${secs.toFixed(1)}s)`);
    for (const [k, v] of Object.entries(rows)) console.log(`${k.padEnd(32)} ${fmt(stats(v), 4)}`);
    appendFileSync(`${RESULTS}/calibration.jsonl`, JSON.stringify({ task: taskName, cfg: cfgName, seeds, rows }) + '\n');
  }
}

main();
