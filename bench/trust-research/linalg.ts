// Matrix helpers on the tfjs wasm backend (plain matMul only: transposed matMul on wasm is ~20x slower here).
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { symEig, Random } from './lib';

export async function initTf(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  if (tf.getBackend() !== 'wasm') throw new Error('wasm backend failed');
}

/** Transpose of an r x c row-major matrix. */
export function transpose(A: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = A[i * c + j]!;
  return out;
}

/** (n x k) times (k x m), both row-major. */
export function mm(A: Float32Array, n: number, k: number, B: Float32Array, m: number): Float32Array {
  return tf.tidy(() => {
    const a = tf.tensor2d(A, [n, k]);
    const b = tf.tensor2d(B, [k, m]);
    return tf.matMul(a, b).dataSync() as Float32Array;
  }).slice();
}

/** Covariance (d x d) of rows of X (n x d) minus the row centres (given as n x d or via function). */
export function covarianceOf(Xc: Float32Array, n: number, d: number): Float32Array {
  const C = mm(transpose(Xc, n, d), d, n, Xc, d);
  for (let i = 0; i < C.length; i++) C[i] /= n;
  return C;
}

function cholesky(A: Float64Array, q: number): Float64Array {
  const L = new Float64Array(q * q);
  for (let i = 0; i < q; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * q + j]!;
      for (let k = 0; k < j; k++) s -= L[i * q + k]! * L[j * q + k]!;
      if (i === j) L[i * q + i] = Math.sqrt(Math.max(s, 1e-30));
      else L[i * q + j] = s / L[j * q + j]!;
    }
  }
  return L;
}

/** Inverse of the lower-triangular L (q x q). */
function invLower(L: Float64Array, q: number): Float64Array {
  const X = new Float64Array(q * q);
  for (let j = 0; j < q; j++) {
    X[j * q + j] = 1 / L[j * q + j]!;
    for (let i = j + 1; i < q; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= L[i * q + k]! * X[k * q + j]!;
      X[i * q + j] = s / L[i * q + i]!;
    }
  }
  return X;
}

/** Orthonormalise the columns of Q (d x q) by Cholesky-QR (twice). */
function orthonormalise(Q: Float32Array, d: number, q: number): Float32Array {
  let cur = Q;
  for (let pass = 0; pass < 2; pass++) {
    const G32 = mm(transpose(cur, d, q), q, d, cur, q);
    const G = Float64Array.from(G32);
    for (let i = 0; i < q; i++) G[i * q + i] += 1e-10;
    const Linv = invLower(cholesky(G, q), q);
    // Q L^-T
    const LinvT = new Float32Array(q * q);
    for (let i = 0; i < q; i++) for (let j = 0; j < q; j++) LinvT[i * q + j] = Linv[j * q + i]!;
    cur = mm(cur, d, q, LinvT, q);
  }
  return cur;
}

/** Top-q eigenpairs of a symmetric d x d matrix C: subspace iteration with Rayleigh-Ritz. V is d x q row-major. */
export function topEigen(C: Float32Array, d: number, q: number, iters = 8, seed = 7): { V: Float32Array; values: Float64Array; trace: number } {
  const rng = new Random(seed);
  const p = Math.min(d, q + 16); // oversampling
  let Q: Float32Array = new Float32Array(d * p).map(() => rng.next() - 0.5);
  Q = orthonormalise(Q, d, p);
  for (let it = 0; it < iters; it++) Q = orthonormalise(mm(C, d, d, Q, p), d, p);
  const CQ = mm(C, d, d, Q, p);
  const H = Float64Array.from(mm(transpose(Q, d, p), p, d, CQ, p));
  for (let i = 0; i < p; i++) for (let j = i + 1; j < p; j++) {
    const v = (H[i * p + j]! + H[j * p + i]!) / 2;
    H[i * p + j] = v;
    H[j * p + i] = v;
  }
  const { values, vectors } = symEig(H, p);
  const U = new Float32Array(p * q);
  for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) U[i * q + j] = vectors[i * p + j]!;
  const V = mm(Q, d, p, U, q);
  let trace = 0;
  for (let i = 0; i < d; i++) trace += C[i * d + i]!;
  return { V, values: values.slice(0, q), trace };
}
