// The pretrainedClasses detector's grid (docs/unknown.md): the score Σ p log q
// over the backbone's own ImageNet top, swept over smoothing eps, temperature T and the top stored in 8 / 4 bits per class.
// Features: TRUST_DIR=... TRUST_SIZE=256 NOFLIP=1 extract.ts centerCrop, then python3 imagenet-top.py.
// Run: TRUST_DIR=... node --import tsx bench/trust-research/pretrained-classes.ts <cd|fl>
import { readFileSync } from 'node:fs';
import { loadTask, auc, acceptedShare, DIM, FEAT, type Labelled } from './lib';
const name = (process.argv[2] ?? 'cd') as 'cd' | 'fl';
const task = loadTask(name, 'centerCrop');
const top = new Float32Array(readFileSync(`${FEAT}/imagenet_top.f32`).buffer.slice(0));
const W0 = top.slice(0, 1280 * 1000), b = top.subarray(1280 * 1000);
function quant(bits: number): Float32Array {
  if (bits === 32) return W0;
  const W = new Float32Array(W0.length), L = (1 << bits) - 1;
  for (let j = 0; j < 1000; j++) {
    let mn = Infinity, mx = -Infinity;
    for (let d = 0; d < DIM; d++) { const v = W0[d * 1000 + j]!; mn = Math.min(mn, v); mx = Math.max(mx, v); }
    const st = (mx - mn) / L;
    for (let d = 0; d < DIM; d++) { const v = W0[d * 1000 + j]!; W[d * 1000 + j] = mn + Math.round((v - mn) / st) * st; }
  }
  return W;
}
function logits(W: Float32Array, x: Float32Array, n: number): Float64Array {
  const out = new Float64Array(n * 1000);
  for (let i = 0; i < n; i++) {
    const z = out.subarray(i * 1000, (i + 1) * 1000);
    z.set(b);
    for (let d = 0; d < DIM; d++) { const v = x[i * DIM + d]!; if (v === 0) continue; const row = W.subarray(d * 1000, (d + 1) * 1000); for (let j = 0; j < 1000; j++) z[j] += v * row[j]!; }
  }
  return out;
}
function sm(z: Float64Array, n: number, T: number): Float64Array {
  const out = new Float64Array(n * 1000);
  for (let i = 0; i < n; i++) {
    let mx = -Infinity; for (let j = 0; j < 1000; j++) mx = Math.max(mx, z[i * 1000 + j]! / T);
    let s = 0; for (let j = 0; j < 1000; j++) s += Math.exp(z[i * 1000 + j]! / T - mx);
    for (let j = 0; j < 1000; j++) out[i * 1000 + j] = Math.exp(z[i * 1000 + j]! / T - mx) / s;
  }
  return out;
}
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
function thr(s: ArrayLike<number>, t = 0.95): number { const a = Float64Array.from(s).sort(); return a[Math.floor((1 - t) * a.length)]!; }
const sets = [task.train, task.tests[0]!, task.other, ...task.tests.slice(1)];
for (const bits of [32, 8, 4]) {
  const W = quant(bits);
  const Z = sets.map((l) => logits(W, l.x[0]!, l.n));
  for (const T of [1, 2]) {
    const Pr = Z.map((z, i) => sm(z, sets[i]!.n, T));
    for (const eps of [1e-5, 1e-4, 1e-3]) {
      const q = new Float64Array(1000);
      const tr = Pr[0]!;
      for (let i = 0; i < task.train.n; i++) for (let j = 0; j < 1000; j++) q[j] += tr[i * 1000 + j]!;
      const lq = q.map((v) => Math.log((v / task.train.n + eps) / (1 + 1000 * eps)));
      const score = (p: Float64Array, n: number) => { const s = new Float64Array(n); for (let i = 0; i < n; i++) { let v = 0; for (let j = 0; j < 1000; j++) v += p[i * 1000 + j]! * lq[j]!; s[i] = v; } return s; };
      const S = Pr.map((p, i) => score(p, sets[i]!.n));
      const t = thr(S[1]!);
      const used = [...q].filter((v) => v / task.train.n > eps).length;
      console.log(`| ${name} | ${bits} bit | T ${T} | eps ${eps} | classes>eps ${used} | AUC ${auc(S[1]!, S[2]!).toFixed(4)} | other ${pct(acceptedShare(S[2]!, t))} | ${S.slice(3).map((s) => pct(acceptedShare(s, t))).join(' | ')} |`);
    }
  }
}
