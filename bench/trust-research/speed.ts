// Scoring cost of one image's pooled features in plain JS (what a browser without a tfjs kernel would do).
// Run: node --import tsx speed.ts
import { Random } from './lib';
const D = 1280, rng = new Random(1);
const x = new Float32Array(D).map(() => rng.next());
function bench(name: string, rowsOfD: number, extra: number) {
  const M = new Float32Array(rowsOfD * D).map(() => rng.next());
  const reps = Math.max(20, Math.floor(2e7 / (rowsOfD * D)));
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < reps; r++) {
    for (let j = 0; j < rowsOfD; j++) {
      let s = 0;
      const o = j * D;
      for (let i = 0; i < D; i++) s += M[o + i]! * x[i]!;
      sink += s;
    }
    for (let e = 0; e < extra; e++) sink += e * 1e-9;
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / reps;
  console.log(`${name.padEnd(34)} ${us.toFixed(1)} us/image  (${rowsOfD} dot products of 1280)`, sink > 0 ? '' : '');
  return us;
}
bench('maha q64, K=2 (basis 1280x64)', 64, 0);
bench('maha q128 (basis 1280x128)', 128, 0);
bench('rel maha q64 (two bases)', 128, 0);
bench('kmeans 2 classes x 16 protos', 32, 0);
bench('kmeans 5 classes x 16 protos', 80, 0);
bench('knn bank 1600 (cats vs dogs 80%)', 1600, 0);
bench('knn bank 2347 (flowers 80%)', 2347, 0);
