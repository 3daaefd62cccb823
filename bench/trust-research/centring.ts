// Partial centring before cosine: x - alpha * mean(train), then L2; k-NN (k=10) and k-means prototypes (k=16 per class).
// Run: node --import tsx centring.ts <task> <seed> <alphas...>
import { appendFileSync } from 'node:fs';
import { DIM, loadTask, defaultSplit, trainHead, mean, auc, thresholdFor, acceptedShare, RESULTS } from './lib';
import { initTf } from './linalg';
import { knnDetectors, kmeansDetectors } from './detectors';
await initTf();
const [taskName, seedArg, ...alphas] = process.argv.slice(2);
const task = loadTask(taskName as 'cd' | 'fl');
const seed = Number(seedArg);
const { fitPart, heldOut } = defaultSplit(task, seed);
const mu = mean(fitPart.x[0]!);
for (const a of alphas.map(Number)) {
  const c = Float64Array.from(mu, (v) => v * a);
  const t0 = Date.now();
  const dets = [...knnDetectors(fitPart.x[0]!, fitPart.n, [10], 'cl2', c), ...kmeansDetectors(fitPart.x[0]!, fitPart.y, task.classes.length, [16], 'cl2', c)];
  for (const d of dets) {
    const held = d.score(heldOut.x[0]!, heldOut.n).score;
    const other = d.score(task.other.x[0]!, task.other.n).score;
    const tests = task.tests.map((t) => d.score(t.x[0]!, t.n).score);
    const line: Record<string, number | string> = { task: taskName, seed, alpha: a, detector: d.name, auc: auc(tests[0]!, other) };
    for (const tg of [0.95, 0.98, 0.99]) {
      const thr = thresholdFor(held, tg);
      line[`other@${tg}`] = acceptedShare(other, thr);
      task.tests.forEach((t, i) => (line[`${t.name}@${tg}`] = acceptedShare(tests[i]!, thr)));
    }
    console.log(JSON.stringify(line, (k, v) => (typeof v === 'number' ? Number(v.toFixed(4)) : v)));
    appendFileSync(`${RESULTS}/centring.jsonl`, JSON.stringify(line) + '\n');
  }
  console.error('alpha', a, (Date.now() - t0) / 1000, 's');
}
