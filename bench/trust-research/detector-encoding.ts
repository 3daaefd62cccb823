// What storing the unknown detector's prototypes in fewer bits costs (issue 15: quantized saves shrink the
// detector with the weights). Fits the library's own detector (fitPrototypeDetector, its defaults) on the cached
// pooled features exactly as `fit` does (prototypes from the 80% of train the head trains on, standardisation and
// threshold from the held-out 20%), re-encodes it as `save` does (float16 as fitted, uint8, uint4), and scores
// validation, full-size, elsewhere and the other task's photos with each.
// Run: node --import tsx bench/trust-research/detector-encoding.ts <cd|fl> [seeds=3] [--fit squash|centerCrop]
import { loadTask, defaultSplit, auc, acceptedShare, DIM } from './lib';
import { fitPrototypeDetector, resolveUnknownArgs } from '../../src/unknown-detector';
import type { RowEncoding } from '../../src/util/packed-rows';

const fitArg = process.argv.indexOf('--fit');
const task = loadTask((process.argv[2] ?? 'cd') as 'cd' | 'fl', fitArg > 0 ? process.argv[fitArg + 1] : 'squash');
const seeds = Number(process.argv[3] ?? 3);
const args = resolveUnknownArgs(undefined, 'bench');
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log(`| task | seed | prototypes | bytes | AUC vs other | other accepted | ${task.tests.map((t) => `${t.name} accepted`).join(' | ')} |`);
console.log(`|---|---|---|---|---|---|${task.tests.map(() => '---|').join('')}`);
for (let seed = 1; seed <= seeds; seed++) {
  const { fitPart, heldOut } = defaultSplit(task, seed);
  const lv = (l: typeof fitPart) => ({ values: l.x[0]!, labels: l.y, n: l.n, dim: DIM });
  const fitted = fitPrototypeDetector(lv(fitPart), lv(heldOut), task.classes.length, args, seed);
  for (const encoding of ['float16', 'uint8', 'uint4'] as RowEncoding[]) {
    const d = fitted.reencoded(encoding);
    const thr = d.record.threshold;
    const tests = task.tests.map((t) => d.score(t.x[0]!, t.n));
    const other = d.score(task.other.x[0]!, task.other.n);
    console.log(`| ${task.name} | ${seed} | ${encoding} | ${d.summary().bytes} | ${auc(tests[0]!, other).toFixed(4)} | ${pct(acceptedShare(other, thr))} | ${tests.map((s) => pct(acceptedShare(s, thr))).join(' | ')} |`);
  }
}
