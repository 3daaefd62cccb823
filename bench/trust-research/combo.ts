// z-averaged combination of the plain-L2 (alpha 0) and centred (alpha 1) k-means-16 cosine scores.
// Run: node --import tsx combo.ts <task> <seed>
import { appendFileSync } from 'node:fs';
import { loadTask, defaultSplit, mean, auc, thresholdFor, acceptedShare, RESULTS } from './lib';
import { initTf } from './linalg';
import { kmeansDetectors, combine } from './detectors';
await initTf();
const [taskName, seedArg] = process.argv.slice(2);
const task = loadTask(taskName as 'cd' | 'fl');
const { fitPart, heldOut } = defaultSplit(task, Number(seedArg));
const mu = mean(fitPart.x[0]!);
const a0 = kmeansDetectors(fitPart.x[0]!, fitPart.y, task.classes.length, [16], 'cl2', new Float64Array(mu.length))[0]!;
const a1 = kmeansDetectors(fitPart.x[0]!, fitPart.y, task.classes.length, [16], 'cl2', mu)[0]!;
const dets = [combine('zavg(alpha0,alpha1)', [a0, a1], heldOut)];
for (const d of dets) {
  const held = d.score(heldOut.x[0]!, heldOut.n).score;
  const other = d.score(task.other.x[0]!, task.other.n).score;
  const tests = task.tests.map((t) => d.score(t.x[0]!, t.n).score);
  const line: Record<string, number | string> = { task: taskName, detector: d.name, auc: auc(tests[0]!, other) };
  for (const tg of [0.95, 0.98]) {
    const thr = thresholdFor(held, tg);
    line[`other@${tg}`] = acceptedShare(other, thr);
    task.tests.forEach((t, i) => (line[`${t.name}@${tg}`] = acceptedShare(tests[i]!, thr)));
  }
  console.log(JSON.stringify(line));
  appendFileSync(`${RESULTS}/combo.jsonl`, JSON.stringify(line) + '\n');
}
