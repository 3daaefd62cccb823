// Unknown detection in the ImageNet-class space: pooled features -> the backbone's own 1000-class top -> prototypes.
// Run: python3 imagenet-top.py (once), then node --import tsx imagenet.ts <task> <seed> [logit,zlogit,prob,sqrtprob,logprob]
import { readFileSync } from 'node:fs';
import { loadTask, defaultSplit, mean, auc, thresholdFor, acceptedShare, DIM, FEAT, type Labelled } from './lib';
import { initTf, mm } from './linalg';
import { kmeansDetectors, combine } from './detectors';
await initTf();
const [taskName, seedArg] = process.argv.slice(2);
const task = loadTask(taskName as 'cd' | 'fl');
const { fitPart, heldOut } = defaultSplit(task, Number(seedArg));
const top = new Float32Array(readFileSync(`${FEAT}/imagenet_top.f32`).buffer.slice(0));
const W = top.subarray(0, 1280 * 1000);
const b = top.subarray(1280 * 1000);
type Map = 'logit' | 'prob' | 'sqrtprob' | 'logprob' | 'zlogit' | 'top5';
function mapTo(x: Float32Array, n: number, kind: Map): Float32Array {
  const z = mm(x, n, 1280, W, 1000);
  const out = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) {
    const r = z.subarray(i * 1000, (i + 1) * 1000);
    let mx = -Infinity;
    for (let j = 0; j < 1000; j++) { r[j] += b[j]!; mx = Math.max(mx, r[j]!); }
    let s = 0;
    let zm = 0;
    for (let j = 0; j < 1000; j++) { s += Math.exp(r[j]! - mx); zm += r[j]! / 1000; }
    if (kind === 'zlogit') { for (let j = 0; j < 1000; j++) out[i * DIM + j] = r[j]! - zm; continue; }
    for (let j = 0; j < 1000; j++) {
      const lp = r[j]! - mx - Math.log(s);
      out[i * DIM + j] = kind === 'logit' ? r[j]! : kind === 'prob' ? Math.exp(lp) : kind === 'sqrtprob' ? Math.exp(lp / 2) : lp;
    }
  }
  return out;
}
const conv = (l: Labelled, kind: Map): Labelled => ({ ...l, x: [mapTo(l.x[0]!, l.n, kind), l.x[0]!] });
for (const kind of (process.argv[4] ?? 'zlogit').split(',') as Map[]) {
  const fp = conv(fitPart, kind), ho = conv(heldOut, kind), ot = conv(task.other, kind), ts = task.tests.map((t) => conv(t, kind));
  const mu = mean(fp.x[0]!);
  const zero = new Float64Array(DIM);
  const dets = [
    kmeansDetectors(fp.x[0]!, fp.y, task.classes.length, [16], 'cl2', zero)[0]!,
    kmeansDetectors(fp.x[0]!, fp.y, task.classes.length, [16], 'cl2', mu)[0]!,
  ];
  dets[0]!.name = `${kind} l2`;
  dets[1]!.name = `${kind} cl2`;
  for (const d of dets) {
    const held = d.score(ho.x[0]!, ho.n).score;
    const other = d.score(ot.x[0]!, ot.n).score;
    const tests = ts.map((t) => d.score(t.x[0]!, t.n).score);
    const line: Record<string, number | string> = { task: taskName, detector: d.name, auc: +auc(tests[0]!, other).toFixed(4) };
    for (const tg of [0.95]) {
      const thr = thresholdFor(held, tg);
      line[`other@${tg}`] = +acceptedShare(other, thr).toFixed(3);
      task.tests.forEach((t, i) => (line[`${t.name}@${tg}`] = +acceptedShare(tests[i]!, thr).toFixed(3)));
    }
    console.log(JSON.stringify(line));
  }
}
