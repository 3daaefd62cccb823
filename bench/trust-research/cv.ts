// Threshold by cross-validation: fit the detector on 4/5 of ALL training images, score the 5th, pool the
// out-of-fold scores, take the score accepting `target` of them; the final detector is fitted on all training images.
// Compared with the simple protocol (fit on the 80% split, threshold on the 20% split).
// Run: node --import tsx bench/trust-research/cv.ts <task> <seeds> <detector names...> [--target 0.95]
import { appendFileSync } from 'node:fs';
import { DIM, loadTask, defaultSplit, trainHead, logits, probs, argmax, auc, thresholdFor, acceptedShare, mean, folds, Random, subset, stats, fmt, type Labelled, type Task, type Head, RESULTS } from './lib';
import { initTf } from './linalg';
import { headDetectors, knnDetectors, kmeansDetectors, mahalanobisDetectors, combine, type Detector } from './detectors';
import { CONFIGS } from './accuracy';

export function build(name: string, fitPart: Labelled, K: number, h: Head, held?: Labelled): Detector {
  const centre = mean(fitPart.x[0]!);
  if (name.startsWith('combo:')) {
    const parts = name.slice(6).split('+').map((p) => build(p, fitPart, K, h));
    if (!held) throw new Error('combo needs held-out scores');
    return combine(name, parts, held);
  }
  if (name === 'msp' || name === 'energy') return headDetectors(h).find((d) => d.name === name)!;
  let m = /^knn_(l2|cl2)_k(\d+)$/.exec(name);
  if (m) return knnDetectors(fitPart.x[0]!, fitPart.n, [Number(m[2])], m[1] as 'l2', centre)[0]!;
  m = /^kmeans_(l2|cl2)_k(\d+)$/.exec(name);
  if (m) return kmeansDetectors(fitPart.x[0]!, fitPart.y, K, [Number(m[2])], m[1] as 'l2', centre)[0]!;
  m = /^maha(_rel)?(_l2)?(_res)?_q(\d+)$/.exec(name);
  if (m) return mahalanobisDetectors(fitPart.x[0]!, fitPart.y, K, [Number(m[4])], { l2: !!m[2] }).find((d) => d.name === name)!;
  throw new Error(`unknown detector ${name}`);
}

async function main() {
  const args = process.argv.slice(2);
  const ti = args.indexOf('--target');
  const target = ti >= 0 ? Number(args[ti + 1]) : 0.95;
  if (ti >= 0) args.splice(ti, 2);
  const hi = args.indexOf('--head');
  const headCfg = hi >= 0 ? args[hi + 1]! : 'default';
  if (hi >= 0) args.splice(hi, 2);
  const [taskName, seedsArg, ...names] = args;
  await initTf();
  const task = loadTask(taskName as 'cd' | 'fl');
  const K = task.classes.length;
  const seeds = Array.from({ length: Number(seedsArg ?? 2) }, (_, i) => i + 1);
  for (const name of names) {
    const res: Record<string, number[]> = {};
    const push = (k: string, v: number) => (res[k] ??= []).push(v);
    const t0 = Date.now();
    for (const seed of seeds) {
      const { fitPart, heldOut } = defaultSplit(task, seed);
      const h = trainHead(fitPart.x, fitPart.y, K, { x: heldOut.x[0]!, y: heldOut.y }, { seed, ...CONFIGS[headCfg]!.head });
      // out-of-fold scores on all training images
      const f = folds(task.train.y, 5, new Random(seed * 31));
      const oof = new Float64Array(task.train.n);
      for (let k = 0; k < 5; k++) {
        const inIdx = Array.from({ length: task.train.n }, (_, i) => i).filter((i) => f[i] !== k);
        const outIdx = Array.from({ length: task.train.n }, (_, i) => i).filter((i) => f[i] === k);
        const part = subset(task.train, inIdx);
        const heldK = subset(task.train, outIdx);
        // combos standardise with the scores of a held-out part: use this fold's own held part
        const d = build(name, part, K, h, heldK);
        const s = d.score(heldK.x[0]!, heldK.n).score;
        outIdx.forEach((r, i) => (oof[r] = s[i]!));
      }
      const thr = thresholdFor(oof, target);
      const final = build(name, task.train, K, h, heldOut);
      const sc = (l: Labelled) => final.score(l.x[0]!, l.n).score;
      const other = sc(task.other);
      push('auc_val_vs_other', auc(sc(task.tests[0]!), other));
      push('other_accepted', acceptedShare(other, thr));
      for (const t of task.tests) push(`${t.name}_accepted`, acceptedShare(sc(t), thr));
    }
    console.log(`\n### cv threshold ${taskName} ${name} target ${target} seeds ${seeds.join(',')} (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
    for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(24)} ${fmt(stats(v))}`);
    appendFileSync(`${RESULTS}/cv.jsonl`, JSON.stringify({ task: taskName, name, target, seeds, res }) + '\n');
  }
}

if (process.argv[1]?.endsWith('cv.ts')) main();
