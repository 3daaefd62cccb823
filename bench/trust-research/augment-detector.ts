// Does widening the unknown detector with augmented views (random resized crops, colour) accept more photos of the
// classes from other collections without letting other things in? Fits the library's own detector as
// `transferLearn` does (prototypes from the training images, threshold from the validation images) on cached
// features extracted at TRUST_SIZE with `extract.ts centerCrop`, `extract.ts aug1 ...` and `extract.ts aug2 ...`.
// Run: TRUST_DIR=... node --import tsx bench/trust-research/augment-detector.ts <cd|fl> [centring=both]
import { loadTask, loadSet, labelled, concat, auc, acceptedShare, DIM, type Labelled } from './lib';
import { fitPrototypeDetector, resolveUnknownArgs } from '../../src/unknown-detector';

const name = (process.argv[2] ?? 'cd') as 'cd' | 'fl';
const task = loadTask(name, 'centerCrop');
const centring = (process.argv[3] ?? 'both') as 'both' | 'none' | 'mean';
const base = resolveUnknownArgs({ centring }, 'bench');
const trainSet = name === 'cd' ? 'cd_train' : 'fl_train';
const valSet = name === 'cd' ? 'cd_val' : 'fl_val';
const aug = (set: string, k: number): Labelled => labelled(loadSet(set, `aug${k}`), task.classes);
const val = task.tests[0]!;
const trainAug = [aug(trainSet, 1), aug(trainSet, 2)];
const valAug = aug(valSet, 1);
const lv = (l: Labelled) => ({ values: l.x[0]!, labels: l.y, n: l.n, dim: DIM });
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const variants: Array<[string, Labelled, Labelled, number?]> = [
  ['as is', task.train, val],
  ['protos + 2 aug', concat('t', [task.train, ...trainAug]), val],
  ['threshold on val + val aug', task.train, concat('v', [val, valAug])],
  ['both', concat('t', [task.train, ...trainAug]), concat('v', [val, valAug])],
  ['threshold on val aug @0.95', task.train, valAug],
  ['protos+aug, threshold val aug', concat('t', [task.train, ...trainAug]), valAug],
];
console.log(`${name} centring ${centring}`);
console.log(`| variant | AUC val/other | other accepted | ${task.tests.map((t) => `${t.name}`).join(' | ')} |`);
for (const [label, train, held] of variants) {
  const d = fitPrototypeDetector(lv(train), lv(held), task.classes.length, base, 1);
  const thr = d.record.threshold;
  const tests = task.tests.map((t) => d.score(t.x[0]!, t.n));
  const other = d.score(task.other.x[0]!, task.other.n);
  console.log(`| ${label} | ${auc(tests[0]!, other).toFixed(4)} | ${pct(acceptedShare(other, thr))} | ${tests.map((s) => pct(acceptedShare(s, thr))).join(' | ')} |`);
}
