// Leave-one-class-out proxy for choosing the centring alpha without any outside images: for each class c, fit the
// k-NN (k=10) bank on the other classes' 80% images, score the held-out 20% of all classes, AUC(held-out of the other
// classes vs held-out of c). Mean over classes. Run: node --import tsx loco.ts <task> <seed> <alphas...>
import { appendFileSync } from 'node:fs';
import { loadTaskTests, defaultSplit, mean, auc, subset, RESULTS } from './lib';
import { initTf } from './linalg';
import { knnDetectors } from './detectors';
await initTf();
const [taskName, seedArg, ...alphas] = process.argv.slice(2);
const task = loadTaskTests(taskName as 'cd' | 'fl');
const { fitPart, heldOut } = defaultSplit(task, Number(seedArg));
const K = task.classes.length;
for (const a of alphas.map(Number)) {
  const aucs: number[] = [];
  for (let c = 0; c < K; c++) {
    const keep = Array.from({ length: fitPart.n }, (_, i) => i).filter((i) => fitPart.y[i] !== c);
    const bank = subset(fitPart, keep);
    const mu = mean(bank.x[0]!);
    const centre = Float64Array.from(mu, (v) => v * a);
    const d = knnDetectors(bank.x[0]!, bank.n, [10], 'cl2', centre)[0]!;
    const s = d.score(heldOut.x[0]!, heldOut.n).score;
    const inS: number[] = [], outS: number[] = [];
    for (let i = 0; i < heldOut.n; i++) (heldOut.y[i] === c ? outS : inS).push(s[i]!);
    aucs.push(auc(inS, outS));
  }
  const m = aucs.reduce((p, q) => p + q, 0) / K;
  console.log(JSON.stringify({ task: taskName, alpha: a, locoAuc: m, perClass: aucs }));
  appendFileSync(`${RESULTS}/loco.jsonl`, JSON.stringify({ task: taskName, alpha: a, locoAuc: m, perClass: aucs }) + '\n');
}
