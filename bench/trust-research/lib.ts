// Shared helpers for the trust measurements: cached features, the library's default head trained in plain JS,
// metrics (accuracy, ECE, NLL, AUC), temperature scaling, and unknown detectors. No tfjs needed.
import { readFileSync, existsSync } from 'node:fs';

/** Where features and results go: `TRUST_DIR` (default `bench/results/trust`). */
export const TRUST_DIR = process.env.TRUST_DIR ?? new URL('../results/trust', import.meta.url).pathname;
export const FEAT = `${TRUST_DIR}/features`;
export const RESULTS = `${TRUST_DIR}/results`;
/** The shared data folder beside the repository (`TFJS_TRANSFER_SHARED`, default `../shared`). */
export const SHARED = process.env.TFJS_TRANSFER_SHARED ?? new URL('../../../shared', import.meta.url).pathname;
export const DIM = 1280;

export interface FeatureSet {
  name: string;
  fit: string;
  n: number;
  dim: number;
  /** views[0]: as is, views[1]: horizontal flip; each n*dim. */
  views: Float32Array[];
  labels: string[];
  paths: string[];
}

export function loadSet(name: string, fit = 'squash'): FeatureSet {
  // 200 px cats and dogs are square: crop and pad give the squash features.
  let f = fit;
  if ((name === 'cd_train' || name === 'cd_val') && fit !== 'squash' && !existsSync(`${FEAT}/${name}.${fit}.json`)) f = 'squash';
  const meta = JSON.parse(readFileSync(`${FEAT}/${name}.${f}.json`, 'utf8'));
  const read = (v: number) => {
    if (!existsSync(`${FEAT}/${name}.${f}.v${v}.f32`)) return new Float32Array(0); // extracted without the flip view
    const b = readFileSync(`${FEAT}/${name}.${f}.v${v}.f32`);
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
  };
  return { name, fit: f, n: meta.n, dim: meta.dim, views: [read(0), read(1)], labels: meta.labels, paths: meta.paths };
}

/** Rows of a flat matrix. */
export function rows(x: Float32Array, idx: number[], dim = DIM): Float32Array {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((r, i) => out.set(x.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The library's own seeded generator and stratified split, so the research reproduces fit's draws exactly.
export { Random } from '../../src/util/random';
export { splitIndices } from '../../src/data/split';
import { Random } from '../../src/util/random';
import { splitIndices } from '../../src/data/split';


/** Stratified k folds: fold id per row. */
export function folds(labels: ArrayLike<number>, k: number, rng: Random): Int32Array {
  const f = new Int32Array(labels.length);
  const by = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = by.get(labels[i]!) ?? [];
    l.push(i);
    by.set(labels[i]!, l);
  }
  for (const m of by.values()) rng.shuffle(m).forEach((r, j) => (f[r] = j % k));
  return f;
}

// ---------------------------------------------------------------------------------------------------------------
// The head: dense layer on pooled features, sigmoid (2 classes) or softmax, dropout before it, Adam, early stopping.
export interface HeadOptions {
  epochs?: number;
  learningRate?: number;
  batchSize?: number;
  dropout?: number;
  l2?: number;
  labelSmoothing?: number;
  seed?: number;
  patience?: number; // early stopping on val loss; restore best
  /** Use flip views during training (a random view per image per epoch, as the library's cached flip). */
  flipViews?: boolean;
  /** Force a softmax head even for 2 classes. */
  softmax?: boolean;
}

export interface Head {
  /** d x units, row-major (W[i*units+j]). */
  W: Float32Array;
  b: Float32Array;
  units: number;
  k: number;
  epochsRun: number;
  bestEpoch: number;
}

/**
 * Trains the head. train: views (each n*dim) with labels; val: features + labels for early stopping (or undefined:
 * run all epochs).
 */
export function trainHead(
  trainViews: Float32Array[],
  ytr: Int32Array,
  k: number,
  val: { x: Float32Array; y: Int32Array } | undefined,
  o: HeadOptions = {},
): Head {
  const epochs = o.epochs ?? 20;
  const lr = o.learningRate ?? 1e-3;
  const bs = o.batchSize ?? 32;
  const p = o.dropout ?? 0.2;
  const l2 = o.l2 ?? 0;
  const ls = o.labelSmoothing ?? 0;
  const patience = o.patience ?? 5;
  const rng = new Random(o.seed ?? 1);
  const d = DIM;
  const units = k === 2 && !o.softmax ? 1 : k;
  const n = ytr.length;
  const limit = Math.sqrt(6 / (d + units));
  const W = new Float32Array(d * units).map(() => (rng.next() * 2 - 1) * limit);
  const b = new Float32Array(units);
  const mW = new Float32Array(W.length), vW = new Float32Array(W.length), mB = new Float32Array(units), vB = new Float32Array(units);
  const b1 = 0.9, b2 = 0.999, eps = 1e-7;
  let t = 0;
  const gW = new Float32Array(W.length), gB = new Float32Array(units);
  const xd = new Float32Array(d);
  const z = new Float64Array(units);
  let best = Infinity, bestW = W.slice(), bestB = b.slice(), bestEpoch = -1, since = 0, run = 0;
  const nv = o.flipViews ? trainViews.length : 1;
  let xs = (Math.floor(rng.next() * 2 ** 31) | 1) >>> 0; // xorshift32 state for dropout masks
  const cut = Math.floor(p * 2 ** 32);
  const g = new Float64Array(units);
  for (let ep = 0; ep < epochs; ep++) {
    run++;
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
    const viewOf = new Int32Array(n);
    if (nv > 1) for (let i = 0; i < n; i++) viewOf[i] = rng.int(nv);
    for (let s = 0; s < n; s += bs) {
      const idx = order.slice(s, s + bs);
      gW.fill(0);
      gB.fill(0);
      for (const r of idx) {
        const X = trainViews[viewOf[r]!]!;
        const off = r * d;
        const scale = 1 / (1 - p);
        if (p > 0) {
          for (let i = 0; i < d; i++) {
            xs ^= xs << 13;
            xs ^= xs >>> 17;
            xs ^= xs << 5;
            xd[i] = (xs >>> 0) < cut ? 0 : X[off + i]! * scale;
          }
        } else for (let i = 0; i < d; i++) xd[i] = X[off + i]!;
        for (let j = 0; j < units; j++) z[j] = b[j]!;
        for (let i = 0; i < d; i++) {
          const xi = xd[i]!;
          if (xi === 0) continue;
          const wo = i * units;
          for (let j = 0; j < units; j++) z[j] += xi * W[wo + j]!;
        }
        // dL/dz
        const y = ytr[r]!;
        if (units === 1) {
          const target = y * (1 - ls) + 0.5 * ls;
          const pr = 1 / (1 + Math.exp(-z[0]!));
          g[0] = pr - target;
        } else {
          let mx = -Infinity;
          for (let j = 0; j < units; j++) mx = Math.max(mx, z[j]!);
          let sum = 0;
          for (let j = 0; j < units; j++) sum += Math.exp(z[j]! - mx);
          for (let j = 0; j < units; j++) {
            const target = (j === y ? 1 - ls : 0) + ls / units;
            g[j] = Math.exp(z[j]! - mx) / sum - target;
          }
        }
        for (let j = 0; j < units; j++) gB[j] += g[j]!;
        for (let i = 0; i < d; i++) {
          const xi = xd[i]!;
          if (xi === 0) continue;
          const wo = i * units;
          for (let j = 0; j < units; j++) gW[wo + j] += xi * g[j]!;
        }
      }
      const m = idx.length;
      t++;
      const c1 = 1 - Math.pow(b1, t), c2 = 1 - Math.pow(b2, t);
      for (let q = 0; q < W.length; q++) {
        const gq = gW[q]! / m + 2 * l2 * W[q]!;
        mW[q] = b1 * mW[q]! + (1 - b1) * gq;
        vW[q] = b2 * vW[q]! + (1 - b2) * gq * gq;
        W[q] -= (lr * (mW[q]! / c1)) / (Math.sqrt(vW[q]! / c2) + eps);
      }
      for (let q = 0; q < units; q++) {
        const gq = gB[q]! / m;
        mB[q] = b1 * mB[q]! + (1 - b1) * gq;
        vB[q] = b2 * vB[q]! + (1 - b2) * gq * gq;
        b[q] -= (lr * (mB[q]! / c1)) / (Math.sqrt(vB[q]! / c2) + eps);
      }
    }
    if (val) {
      const head = { W, b, units, k, epochsRun: run, bestEpoch: ep };
      const loss = nll(probs(head, logits(head, val.x)), val.y);
      if (loss < best) {
        best = loss;
        bestW = W.slice();
        bestB = b.slice();
        bestEpoch = ep;
        since = 0;
      } else if (++since >= patience) break;
    }
  }
  if (val) return { W: bestW, b: bestB, units, k, epochsRun: run, bestEpoch };
  return { W, b, units, k, epochsRun: run, bestEpoch: epochs - 1 };
}

/** Logits as k columns (a sigmoid unit z becomes [0, z]: the same softmax). */
export function logits(h: Head, x: Float32Array): Float64Array[] {
  const n = x.length / DIM;
  const out: Float64Array[] = [];
  for (let r = 0; r < n; r++) {
    const z = new Float64Array(h.units);
    for (let j = 0; j < h.units; j++) z[j] = h.b[j]!;
    const off = r * DIM;
    for (let i = 0; i < DIM; i++) {
      const xi = x[off + i]!;
      const wo = i * h.units;
      for (let j = 0; j < h.units; j++) z[j] += xi * h.W[wo + j]!;
    }
    out.push(h.units === 1 ? Float64Array.of(0, z[0]!) : z);
  }
  return out;
}

export function softmax(z: Float64Array, T = 1): Float64Array {
  let mx = -Infinity;
  for (const v of z) mx = Math.max(mx, v / T);
  const e = z.map((v) => Math.exp(v / T - mx));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export function probs(_h: Head | undefined, z: Float64Array[], T = 1): Float64Array[] {
  return z.map((v) => softmax(v, T));
}

export function argmax(v: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[b]!) b = i;
  return b;
}

export function accuracy(P: Float64Array[], y: ArrayLike<number>): number {
  let c = 0;
  P.forEach((p, i) => (c += argmax(p) === y[i] ? 1 : 0));
  return c / P.length;
}

export function nll(P: Float64Array[], y: ArrayLike<number>): number {
  let s = 0;
  P.forEach((p, i) => (s -= Math.log(Math.max(1e-12, p[y[i]!]!))));
  return s / P.length;
}

/** Expected calibration error, `bins` equal-width bins on the top probability. */
export function ece(P: Float64Array[], y: ArrayLike<number>, bins = 15): number {
  const cnt = new Float64Array(bins), conf = new Float64Array(bins), acc = new Float64Array(bins);
  P.forEach((p, i) => {
    const a = argmax(p);
    const c = p[a]!;
    const b = Math.min(bins - 1, Math.floor(c * bins));
    cnt[b]++;
    conf[b] += c;
    acc[b] += a === y[i] ? 1 : 0;
  });
  let e = 0;
  for (let b = 0; b < bins; b++) if (cnt[b]! > 0) e += Math.abs(acc[b]! - conf[b]!);
  return e / P.length;
}

/** Temperature minimising NLL of logits z against y (golden-section search on log T). */
export function fitTemperature(z: Float64Array[], y: ArrayLike<number>): number {
  const f = (lt: number) => nll(probs(undefined, z, Math.exp(lt)), y);
  let a = Math.log(0.05), b = Math.log(20);
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a), d = a + g * (b - a);
  let fc = f(c), fd = f(d);
  for (let i = 0; i < 60; i++) {
    if (fc < fd) {
      b = d; d = c; fd = fc; c = b - g * (b - a); fc = f(c);
    } else {
      a = c; c = d; fc = fd; d = a + g * (b - a); fd = f(d);
    }
  }
  return Math.exp((a + b) / 2);
}

/** ROC AUC of scores where higher = more in-distribution. */
export function auc(inScores: ArrayLike<number>, outScores: ArrayLike<number>): number {
  const all: [number, number][] = [];
  for (let i = 0; i < inScores.length; i++) all.push([inScores[i]!, 1]);
  for (let i = 0; i < outScores.length; i++) all.push([outScores[i]!, 0]);
  all.sort((p, q) => p[0] - q[0]);
  // rank-sum with ties
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]![0] === all[i]![0]) j++;
    const r = (i + 1 + j) / 2;
    for (let q = i; q < j; q++) if (all[q]![1] === 1) rankSum += r;
    i = j;
  }
  const n1 = inScores.length, n0 = outScores.length;
  return (rankSum - (n1 * (n1 + 1)) / 2) / (n1 * n0);
}

/** Threshold accepting `target` of `scores` (score >= threshold is accepted). */
export function thresholdFor(scores: ArrayLike<number>, target: number): number {
  const s = Array.from(scores).sort((a, b) => a - b);
  const i = Math.floor((1 - target) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, i))]!;
}

export function acceptedShare(scores: ArrayLike<number>, thr: number): number {
  let c = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i]! >= thr) c++;
  return c / scores.length;
}

// ---------------------------------------------------------------------------------------------------------------
// Linear algebra helpers
export function mean(x: Float32Array, dim = DIM): Float64Array {
  const n = x.length / dim;
  const m = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let i = 0; i < dim; i++) m[i] += x[r * dim + i]!;
  for (let i = 0; i < dim; i++) m[i] /= n;
  return m;
}

export function l2normalise(x: Float32Array, dim = DIM, centre?: ArrayLike<number>): Float32Array {
  const n = x.length / dim;
  const out = new Float32Array(x.length);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let i = 0; i < dim; i++) {
      const v = x[r * dim + i]! - (centre ? centre[i]! : 0);
      out[r * dim + i] = v;
      s += v * v;
    }
    const inv = 1 / Math.sqrt(s + 1e-12);
    for (let i = 0; i < dim; i++) out[r * dim + i] *= inv;
  }
  return out;
}

/** A (n x d) times B^T (m x d) -> n x m. */
export function matmulT(A: Float32Array, B: Float32Array, dim = DIM): Float32Array {
  const n = A.length / dim, m = B.length / dim;
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const ao = i * dim;
    for (let j = 0; j < m; j++) {
      const bo = j * dim;
      let s = 0;
      for (let q = 0; q < dim; q++) s += A[ao + q]! * B[bo + q]!;
      out[i * m + j] = s;
    }
  }
  return out;
}

/** Covariance (d x d, float64) of rows of x around per-row means mu (given per row). */
export function covariance(x: Float32Array, centreOf: (r: number) => ArrayLike<number>, dim = DIM): Float64Array {
  const n = x.length / dim;
  const C = new Float64Array(dim * dim);
  const v = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    const c = centreOf(r);
    for (let i = 0; i < dim; i++) v[i] = x[r * dim + i]! - c[i]!;
    for (let i = 0; i < dim; i++) {
      const vi = v[i]!;
      if (vi === 0) continue;
      const o = i * dim;
      for (let j = i; j < dim; j++) C[o + j] += vi * v[j]!;
    }
  }
  for (let i = 0; i < dim; i++) for (let j = i; j < dim; j++) {
    C[i * dim + j] /= n;
    C[j * dim + i] = C[i * dim + j]!;
  }
  return C;
}

/** Top-q eigenpairs of symmetric C (d x d) by subspace iteration with Rayleigh-Ritz. */
export function topEigen(C: Float64Array, d: number, q: number, iters = 30, seed = 7): { vectors: Float64Array; values: Float64Array } {
  const rng = new Random(seed);
  // Q: d x q column blocks stored as q vectors of length d
  let Q: Float64Array[] = Array.from({ length: q }, () => new Float64Array(d).map(() => rng.next() - 0.5));
  const orth = (V: Float64Array[]) => {
    for (let a = 0; a < V.length; a++) {
      const va = V[a]!;
      for (let pass = 0; pass < 2; pass++)
        for (let b = 0; b < a; b++) {
          const vb = V[b]!;
          let s = 0;
          for (let i = 0; i < d; i++) s += va[i]! * vb[i]!;
          for (let i = 0; i < d; i++) va[i] -= s * vb[i]!;
        }
      let s = 0;
      for (let i = 0; i < d; i++) s += va[i]! * va[i]!;
      s = 1 / Math.sqrt(s + 1e-300);
      for (let i = 0; i < d; i++) va[i] *= s;
    }
    return V;
  };
  const mul = (v: Float64Array) => {
    const out = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      const o = i * d;
      let s = 0;
      for (let j = 0; j < d; j++) s += C[o + j]! * v[j]!;
      out[i] = s;
    }
    return out;
  };
  orth(Q);
  for (let it = 0; it < iters; it++) Q = orth(Q.map(mul));
  // Rayleigh-Ritz: small q x q matrix, Jacobi
  const CQ = Q.map(mul);
  const H = new Float64Array(q * q);
  for (let a = 0; a < q; a++) for (let b = 0; b < q; b++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += Q[a]![i]! * CQ[b]![i]!;
    H[a * q + b] = s;
  }
  const { values, vectors } = jacobi(H, q);
  const order = Array.from({ length: q }, (_, i) => i).sort((a, b) => values[b]! - values[a]!);
  const outV = new Float64Array(d * q);
  const outL = new Float64Array(q);
  order.forEach((src, dst) => {
    outL[dst] = values[src]!;
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let a = 0; a < q; a++) s += Q[a]![i]! * vectors[a * q + src]!;
      outV[i * q + dst] = s; // column dst
    }
  });
  return { vectors: outV, values: outL };
}

/** Cyclic Jacobi eigen-decomposition of a symmetric n x n matrix. vectors[i*n + k] = component i of vector k. */
export function jacobi(Ain: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const A = Ain.slice();
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += A[i * n + j]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) {
      const apq = A[p * n + q]!;
      if (Math.abs(apq) < 1e-300) continue;
      const app = A[p * n + p]!, aqq = A[q * n + q]!;
      const theta = (aqq - app) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let k = 0; k < n; k++) {
        const akp = A[k * n + p]!, akq = A[k * n + q]!;
        A[k * n + p] = c * akp - s * akq;
        A[k * n + q] = s * akp + c * akq;
      }
      for (let k = 0; k < n; k++) {
        const apk = A[p * n + k]!, aqk = A[q * n + k]!;
        A[p * n + k] = c * apk - s * aqk;
        A[q * n + k] = s * apk + c * aqk;
      }
      for (let k = 0; k < n; k++) {
        const vkp = V[k * n + p]!, vkq = V[k * n + q]!;
        V[k * n + p] = c * vkp - s * vkq;
        V[k * n + q] = s * vkp + c * vkq;
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = A[i * n + i]!;
  return { values, vectors: V };
}

/** Round-trip through float16 (to measure the effect of storing prototypes/means as f16). */
export function toF16(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < x.length; i++) {
    f[0] = x[i]!;
    const bits = u[0]!;
    const sign = bits & 0x80000000;
    let exp = ((bits >>> 23) & 0xff) - 127 + 15;
    let mant = bits & 0x7fffff;
    let h: number;
    if (exp <= 0) h = 0; // flush tiny to zero (features >= 0, small values irrelevant)
    else if (exp >= 31) h = 0x7c00;
    else {
      // round to nearest
      mant += 0x1000;
      if (mant & 0x800000) {
        mant = 0;
        exp++;
      }
      h = (exp << 10) | (mant >>> 13);
    }
    // back
    const e = (h >>> 10) & 0x1f, m = h & 0x3ff;
    let v = e === 0 ? 0 : Math.pow(2, e - 15) * (1 + m / 1024);
    if (e === 31) v = Infinity;
    out[i] = sign ? -v : v;
  }
  return out;
}

/**
 * Full eigen-decomposition of a symmetric n x n matrix (Householder tridiagonalisation + implicit QL, as JAMA's
 * tred2/tql2). Returns eigenvalues descending and V with V[i*n + k] = component i of eigenvector k.
 */
export function symEig(Ain: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  // V as rows of arrays for speed
  const V: Float64Array[] = Array.from({ length: n }, (_, i) => Ain.slice(i * n, (i + 1) * n));
  const d = new Float64Array(n), e = new Float64Array(n);
  // tred2
  for (let j = 0; j < n; j++) d[j] = V[n - 1]![j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0, h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[i - 1]![j]!;
        V[i]![j] = 0;
        V[j]![i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h = h - f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j]![i] = f;
        g = e[j]! + V[j]![j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k]![j]! * d[k]!;
          e[k] += V[k]![j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[k]![j] -= f * e[k]! + g * d[k]!;
        d[j] = V[i - 1]![j]!;
        V[i]![j] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[n - 1]![i] = V[i]![i]!;
    V[i]![i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k]![i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k]![i + 1]! * V[k]![j]!;
        for (let k = 0; k <= i; k++) V[k]![j] -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[k]![i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[n - 1]![j]!;
    V[n - 1]![j] = 0;
  }
  V[n - 1]![n - 1] = 1;
  e[0] = 0;
  // tql2
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0, tst1 = 0;
  const eps = Math.pow(2, -52);
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      do {
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m]!;
        let c = 1, c2 = c, c3 = c;
        const el1 = e[l + 1]!;
        let s = 0, s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          for (let k = 0; k < n; k++) {
            const row = V[k]!;
            h = row[i + 1]!;
            row[i + 1] = s * row[i]! + c * h;
            row[i] = c * row[i]! - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => d[b]! - d[a]!);
  const values = Float64Array.from(order, (i) => d[i]!);
  const vectors = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const row = V[i]!;
    order.forEach((src, dst) => (vectors[i * n + dst] = row[src]!));
  }
  return { values, vectors };
}

// ---------------------------------------------------------------------------------------------------------------
// Tasks
export interface Labelled {
  name: string;
  x: Float32Array[]; // views
  y: Int32Array;
  n: number;
  paths: string[];
}

export function labelled(set: FeatureSet, classes: string[]): Labelled {
  const y = Int32Array.from(set.labels, (l) => classes.indexOf(l));
  return { name: set.name, x: set.views, y, n: set.n, paths: set.paths };
}

export function subset(l: Labelled, idx: number[], name = l.name): Labelled {
  return { name, x: l.x.map((v) => rows(v, idx)), y: Int32Array.from(idx, (i) => l.y[i]!), n: idx.length, paths: idx.map((i) => l.paths[i]!) };
}

export function concat(name: string, parts: Labelled[]): Labelled {
  const n = parts.reduce((a, p) => a + p.n, 0);
  const x = [0, 1].map((v) => {
    const out = new Float32Array(n * DIM);
    let o = 0;
    for (const p of parts) {
      out.set(p.x[v]!, o);
      o += p.x[v]!.length;
    }
    return out;
  });
  const y = new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    y.set(p.y, o);
    o += p.n;
  }
  return { name, x, y, n, paths: parts.flatMap((p) => p.paths) };
}

export interface Task {
  name: 'cd' | 'fl';
  classes: string[];
  train: Labelled;
  /** In-distribution test sets (accuracy), first is the validation set. */
  tests: Labelled[];
  /** Other things (never used to choose anything). */
  other: Labelled;
}

const OTHER_IMAGES = ['grace_hopper', 'hot_dog', 'owl', 'parrot'];
const CD_IMAGES: Record<string, string> = { cat: 'cats', cat_720p: 'cats', dog_test_0: 'dogs', dog_train_0: 'dogs', pets: 'dogs' };

const has = (set: string, fit: string) => existsSync(`${FEAT}/${set}.${fit}.json`) || existsSync(`${FEAT}/${set}.squash.json`) && (set === 'cd_train' || set === 'cd_val');

/** Accuracy-only task (no "other" set), tolerant of sets not extracted yet. */
export function loadTaskTests(name: 'cd' | 'fl', fit = 'squash'): Task {
  const classes = name === 'cd' ? ['cats', 'dogs'] : ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'];
  const sets = name === 'cd' ? ['cd_val', 'cd_full', 'cd_else'] : ['fl_val'];
  const empty: Labelled = { name: 'none', x: [new Float32Array(0), new Float32Array(0)], y: new Int32Array(0), n: 0, paths: [] };
  return {
    name,
    classes,
    train: labelled(loadSet(name === 'cd' ? 'cd_train' : 'fl_train', fit), classes),
    tests: sets.filter((s) => has(s, fit)).map((s) => labelled(loadSet(s, fit), classes)),
    other: empty,
  };
}

export function loadTask(name: 'cd' | 'fl', fit = 'squash'): Task {
  const images = loadSet('images', fit);
  const imgIdx = (pred: (l: string) => boolean) => images.labels.map((l, i) => (pred(l) ? i : -1)).filter((i) => i >= 0);
  if (name === 'cd') {
    const classes = ['cats', 'dogs'];
    const fl = concat('flowers', [labelled(loadSet('fl_train', fit), ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']), labelled(loadSet('fl_val', fit), ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'])]);
    const oi = subset({ ...labelled(images, []), y: new Int32Array(images.n).fill(-1) }, imgIdx((l) => OTHER_IMAGES.includes(l)), 'images_other');
    return {
      name,
      classes,
      train: labelled(loadSet('cd_train', fit), classes),
      tests: [labelled(loadSet('cd_val', fit), classes), labelled(loadSet('cd_full', fit), classes), labelled(loadSet('cd_else', fit), classes)],
      other: concat('flowers+images_other', [{ ...fl, y: new Int32Array(fl.n).fill(-1) }, oi]),
    };
  }
  const classes = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'];
  const cdc = ['cats', 'dogs'];
  const ci = { ...labelled(images, []), y: new Int32Array(images.n).fill(-1) };
  const cd = concat('cats_dogs', [labelled(loadSet('cd_val', fit), cdc), labelled(loadSet('cd_full', fit), cdc), labelled(loadSet('cd_else', fit), cdc), subset(ci, imgIdx((l) => l in CD_IMAGES))]);
  return {
    name,
    classes,
    train: labelled(loadSet('fl_train', fit), classes),
    tests: [labelled(loadSet('fl_val', fit), classes)],
    other: { ...cd, y: new Int32Array(cd.n).fill(-1) },
  };
}

/** The library's default split: 20% stratified of train for early stopping. */
export function defaultSplit(task: Task, seed: number): { fitPart: Labelled; heldOut: Labelled; fitIdx: number[]; heldIdx: number[] } {
  const { train, validation } = splitIndices(task.train.y, 0.2, new Random(seed ^ 0x5bd1e995));
  return { fitPart: subset(task.train, train, 'train80'), heldOut: subset(task.train, validation, 'held20'), fitIdx: train, heldIdx: validation };
}

export function stats(xs: number[]): { mean: number; min: number; max: number; sd: number } {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
  return { mean: m, min: Math.min(...xs), max: Math.max(...xs), sd };
}

export function fmt(s: { mean: number; min: number; max: number }, digits = 3): string {
  return `${s.mean.toFixed(digits)} [${s.min.toFixed(digits)}-${s.max.toFixed(digits)}]`;
}

/** Average of as-is and flipped probabilities (flip test-time augmentation). */
export function flipTTA(h: Head, l: Labelled, T = 1): Float64Array[] {
  const a = probs(h, logits(h, l.x[0]!), T), b = probs(h, logits(h, l.x[1]!), T);
  return a.map((p, i) => p.map((v, j) => (v + b[i]![j]!) / 2));
}

/** Average of logits of as-is and flipped (then softmax). */
export function flipLogits(h: Head, l: Labelled): Float64Array[] {
  const a = logits(h, l.x[0]!), b = logits(h, l.x[1]!);
  return a.map((z, i) => z.map((v, j) => (v + b[i]![j]!) / 2));
}
