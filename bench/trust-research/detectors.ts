// Unknown ("none of your classes") detectors on cached pooled features.
// Run: node --import tsx bench/trust-research/detectors.ts <task cd|fl> <seeds> [--head config] [--fit squash] [--only a,b]
//
// Protocol (honest): the detector is fitted on the 80% of the training images the head trains on; its threshold is
// the score that accepts 95% of the other 20% (the held-out split early stopping uses). Nothing is chosen on the
// validation folder, cats_vs_dogs_elsewhere, flowers or ../shared/images. The other task's photos are the "other
// things" for each model (cats vs dogs model: flowers train+validation + hot_dog, owl, parrot, grace_hopper; flowers
// model: cats and dogs of cd validation, fullres, elsewhere and the 5 cat/dog photos of ../shared/images).
import { appendFileSync } from 'node:fs';
import { DIM, loadTask, defaultSplit, trainHead, logits, probs, argmax, auc, thresholdFor, acceptedShare, mean, l2normalise, stats, fmt, toF16, folds, Random, subset, type Labelled, type Task, type Head, RESULTS } from './lib';
import { initTf, mm, transpose, covarianceOf, topEigen } from './linalg';
import { CONFIGS } from './accuracy';

export type Scorer = (x: Float32Array, n: number) => { score: Float64Array; cls?: Int32Array };
export interface Detector {
  name: string;
  bytes: number;
  score: Scorer;
}

// ---------------------------------------------------------------------------------------------------------------
// Builders
export function headDetectors(h: Head): Detector[] {
  const bytes = (h.W.length + h.b.length) * 4;
  return [
    {
      name: 'msp',
      bytes: 0,
      score: (x: Float32Array) => {
        const P = probs(h, logits(h, x));
        return { score: Float64Array.from(P, (p) => Math.max(...p)), cls: Int32Array.from(P, (p) => argmax(p)) };
      },
    },
    {
      name: 'energy',
      bytes: 0,
      score: (x: Float32Array) => {
        const Z = logits(h, x);
        // a sigmoid unit z is the softmax of [0, z]; centred it is [-z/2, z/2]
        return {
          score: Float64Array.from(Z, (z) => {
            const c = h.units === 1 ? [-z[1]! / 2, z[1]! / 2] : Array.from(z);
            const m = Math.max(...c);
            return m + Math.log(c.reduce((a, v) => a + Math.exp(v - m), 0));
          }),
          cls: Int32Array.from(Z, (z) => argmax(z)),
        };
      },
    },
  ].map((d) => ({ ...d, headBytes: bytes }));
}

type Prep = 'l2' | 'cl2';
function prepare(x: Float32Array, prep: Prep, centre: Float64Array): Float32Array {
  return l2normalise(x, DIM, prep === 'cl2' ? centre : undefined);
}

/** Cosine k-NN to the training features: mean similarity of the k nearest. */
export function knnDetectors(bank: Float32Array, m: number, ks: number[], prep: Prep, centre: Float64Array, tag = ''): Detector[] {
  const B = prepare(bank, prep, centre);
  const BT = transpose(B, m, DIM);
  const cache = new WeakMap<Float32Array, Float32Array[]>();
  const kmax = Math.max(...ks);
  const topOf = (x: Float32Array, n: number) => {
    const hit = cache.get(x);
    if (hit) return hit;
    const Q = prepare(x, prep, centre);
    const top: Float32Array[] = [];
    for (let s = 0; s < n; s += 1024) {
      const c = Math.min(1024, n - s);
      const S = mm(Q.subarray(s * DIM, (s + c) * DIM), c, DIM, BT, m);
      for (let i = 0; i < c; i++) {
        const row = Array.from(S.subarray(i * m, (i + 1) * m));
        row.sort((a, b) => b - a);
        top.push(Float32Array.from(row.slice(0, kmax)));
      }
    }
    cache.set(x, top);
    return top;
  };
  return ks.map((k) => ({
    name: `knn${tag}_${prep}_k${k}`,
    bytes: m * DIM * 2, // float16 bank
    score: (x: Float32Array, n: number) => {
      const top = topOf(x, n);
      return { score: Float64Array.from(top, (t) => t.subarray(0, k).reduce((a, v) => a + v, 0) / k) };
    },
  }));
}

/** Spherical k-means per class; score = highest cosine to any prototype; class = its class. */
export function kmeansDetectors(x: Float32Array, y: Int32Array, K: number, ks: number[], prep: Prep, centre: Float64Array, seed = 1): Detector[] {
  const X = prepare(x, prep, centre);
  const n = y.length;
  return ks.map((k) => {
    const protos: Float32Array[] = [];
    const protoCls: number[] = [];
    const rng = new Random(seed);
    for (let c = 0; c < K; c++) {
      const idx = Array.from({ length: n }, (_, i) => i).filter((i) => y[i] === c);
      const kk = Math.min(k, idx.length);
      // k-means++ init on cosine distance
      const first = idx[rng.int(idx.length)]!;
      const cent: Float32Array[] = [X.slice(first * DIM, (first + 1) * DIM)];
      const dot = (a: Float32Array, i: number) => {
        let s = 0;
        const o = i * DIM;
        for (let q = 0; q < DIM; q++) s += a[q]! * X[o + q]!;
        return s;
      };
      const best = new Float64Array(idx.length).fill(-Infinity);
      while (cent.length < kk) {
        const last = cent[cent.length - 1]!;
        let tot = 0;
        const dist = idx.map((i, j) => {
          best[j] = Math.max(best[j]!, dot(last, i));
          const dd = Math.max(0, 1 - best[j]!) ** 2;
          tot += dd;
          return dd;
        });
        let r = rng.next() * tot;
        let pick = 0;
        for (; pick < dist.length - 1; pick++) {
          r -= dist[pick]!;
          if (r <= 0) break;
        }
        cent.push(X.slice(idx[pick]! * DIM, (idx[pick]! + 1) * DIM));
      }
      for (let it = 0; it < 25; it++) {
        const sums = cent.map(() => new Float64Array(DIM));
        for (const i of idx) {
          let b = 0, bv = -Infinity;
          cent.forEach((cv, j) => {
            const v = dot(cv, i);
            if (v > bv) {
              bv = v;
              b = j;
            }
          });
          const o = i * DIM;
          const s = sums[b]!;
          for (let q = 0; q < DIM; q++) s[q] += X[o + q]!;
        }
        sums.forEach((s, j) => {
          let nn = 0;
          for (let q = 0; q < DIM; q++) nn += s[q]! * s[q]!;
          if (nn === 0) return;
          const inv = 1 / Math.sqrt(nn);
          cent[j] = Float32Array.from(s, (v) => v * inv);
        });
      }
      cent.forEach((cv) => {
        protos.push(toF16(cv));
        protoCls.push(c);
      });
    }
    const P = new Float32Array(protos.length * DIM);
    protos.forEach((p, i) => P.set(p, i * DIM));
    const PT = transpose(P, protos.length, DIM);
    return {
      name: `kmeans_${prep}_k${k}`,
      bytes: protos.length * DIM * 2,
      score: (xq: Float32Array, nq: number) => {
        const Q = prepare(xq, prep, centre);
        const S = mm(Q, nq, DIM, PT, protos.length);
        const score = new Float64Array(nq), cls = new Int32Array(nq);
        for (let i = 0; i < nq; i++) {
          let b = 0;
          for (let j = 1; j < protos.length; j++) if (S[i * protos.length + j]! > S[i * protos.length + b]!) b = j;
          score[i] = S[i * protos.length + b]!;
          cls[i] = protoCls[b]!;
        }
        return { score, cls };
      },
    };
  });
}

/**
 * Class-conditional Gaussian with shared covariance, in the top-q principal subspace of the within-class scatter
 * (plus, with `residual`, the distance outside it scaled by the mean leftover variance). `relative`: minus the same
 * distance under one Gaussian of all training features (Ren et al. 2021). Features optionally L2-normalised.
 */
export function mahalanobisDetectors(x: Float32Array, y: Int32Array, K: number, qs: number[], opts: { l2: boolean }): Detector[] {
  const n = y.length;
  const X = opts.l2 ? l2normalise(x) : x;
  const mus: Float64Array[] = [];
  for (let c = 0; c < K; c++) {
    const idx = Array.from({ length: n }, (_, i) => i).filter((i) => y[i] === c);
    const m = new Float64Array(DIM);
    for (const i of idx) for (let q = 0; q < DIM; q++) m[q] += X[i * DIM + q]!;
    for (let q = 0; q < DIM; q++) m[q] /= idx.length;
    mus.push(m);
  }
  const qmax = Math.max(...qs);
  const basis = (centreOf: (i: number) => Float64Array) => {
    const Xc = new Float32Array(n * DIM);
    for (let i = 0; i < n; i++) {
      const c = centreOf(i);
      for (let q = 0; q < DIM; q++) Xc[i * DIM + q] = X[i * DIM + q]! - c[q]!;
    }
    const C = covarianceOf(Xc, n, DIM);
    const e = topEigen(C, DIM, qmax);
    return { ...e, V: toF16(e.V) };
  };
  const within = basis((i) => mus[y[i]!]!);
  const mu0 = mean(X);
  const total = basis(() => mu0);
  // squared distances per centre, per q, cached per query matrix
  type D = { md: Float64Array[][]; res: Float64Array[][] }; // md[qi][c][i]; res[qi][c][i] = squared distance outside the top-q subspace
  const cacheW = new WeakMap<Float32Array, D>(), cacheT = new WeakMap<Float32Array, D>();
  const dists = (xq: Float32Array, nq: number, b: typeof within, centres: Float64Array[], cache: WeakMap<Float32Array, D>): D => {
    const hit = cache.get(xq);
    if (hit) return hit;
    const Xq = opts.l2 ? l2normalise(xq) : xq;
    const P = mm(Xq, nq, DIM, b.V, qmax);
    const Mc = new Float32Array(centres.length * DIM);
    centres.forEach((c, i) => Mc.set(Float32Array.from(c), i * DIM));
    const PM = mm(Mc, centres.length, DIM, b.V, qmax);
    const md = qs.map(() => centres.map(() => new Float64Array(nq)));
    const res = qs.map(() => centres.map(() => new Float64Array(nq)));
    const inSubQ = new Float64Array(qs.length);
    for (let i = 0; i < nq; i++) {
      for (let c = 0; c < centres.length; c++) {
        let s = 0, inSub = 0, qi = 0;
        for (let j = 0; j < qmax; j++) {
          const dlt = P[i * qmax + j]! - PM[c * qmax + j]!;
          s += (dlt * dlt) / b.values[j]!;
          inSub += dlt * dlt;
          if (j + 1 === qs[qi]) {
            md[qi]![c]![i] = s;
            inSubQ[qi++] = inSub;
          }
        }
        let full = 0;
        const cen = centres[c]!;
        for (let t = 0; t < DIM; t++) {
          const dd = Xq[i * DIM + t]! - cen[t]!;
          full += dd * dd;
        }
        for (let k = 0; k < qs.length; k++) res[k]![c]![i] = Math.max(0, full - inSubQ[k]!);
      }
    }
    const out = { md, res };
    cache.set(xq, out);
    return out;
  };
  const sortedQs = [...qs].sort((a, b) => a - b);
  if (sortedQs.join() !== qs.join()) throw new Error('qs must be ascending');
  const variants: Detector[] = [];
  for (const relative of [false, true])
    for (const residual of [false, true])
      qs.forEach((q, qi) => {
        // residual: the squared distance outside the top-q subspace, scaled by the mean variance left there
        const resVar = (b: typeof within) => (b.trace - b.values.slice(0, q).reduce((a, v) => a + v, 0)) / (DIM - q);
        variants.push({
          name: `maha${relative ? '_rel' : ''}${opts.l2 ? '_l2' : ''}${residual ? '_res' : ''}_q${q}`,
          // float16: basis d x q (x2 relative) + eigenvalues; class means d each (needed for the residual; else projected, K x q)
          bytes: (DIM * q * (relative ? 2 : 1) + q * (relative ? 2 : 1) + (residual ? (K + 1) * DIM : (K + 1) * q)) * 2,
          score: (xq: Float32Array, nq: number) => {
            const w = dists(xq, nq, within, mus, cacheW);
            const t = relative ? dists(xq, nq, total, [mu0], cacheT) : undefined;
            const rw = resVar(within), rt = resVar(total);
            const score = new Float64Array(nq), cls = new Int32Array(nq);
            for (let i = 0; i < nq; i++) {
              let b = 0, bv = Infinity;
              for (let c = 0; c < K; c++) {
                const v = w.md[qi]![c]![i]! + (residual ? w.res[qi]![c]![i]! / rw : 0);
                if (v < bv) {
                  bv = v;
                  b = c;
                }
              }
              const v0 = t ? t.md[qi]![0]![i]! + (residual ? t.res[qi]![0]![i]! / rt : 0) : 0;
              score[i] = -(bv - v0);
              cls[i] = b;
            }
            return { score, cls };
          },
        });
      });
  return variants;
}

// ---------------------------------------------------------------------------------------------------------------
export interface DetectorResult {
  detector: string;
  bytes: number;
  aucValVsOther: number;
  aucElseVsOther?: number;
  threshold: number;
  accepted: Record<string, number>;
  acceptedAccuracy: Record<string, number>;
  perClass?: { accepted: Record<string, number> };
  msPerImage: number;
}

export function evaluateDetector(det: Detector, h: Head, task: Task, held: Labelled, target = 0.95): DetectorResult {
  const t0 = Date.now();
  const sc = (l: Labelled) => det.score(l.x[0]!, l.n);
  const heldS = sc(held);
  const tests = task.tests.map(sc);
  const other = sc(task.other);
  const ms = (Date.now() - t0) / (held.n + task.tests.reduce((a, t) => a + t.n, 0) + task.other.n);
  const thr = thresholdFor(heldS.score, target);
  const accepted: Record<string, number> = { held20: acceptedShare(heldS.score, thr), other: acceptedShare(other.score, thr) };
  for (const tg of [0.9, 0.98, 0.99, 0.995]) {
    const t2 = thresholdFor(heldS.score, tg);
    accepted[`other@${tg}`] = acceptedShare(other.score, t2);
    task.tests.forEach((t, i) => (accepted[`${t.name}@${tg}`] = acceptedShare(tests[i]!.score, t2)));
  }
  const acceptedAccuracy: Record<string, number> = {};
  task.tests.forEach((t, i) => {
    accepted[t.name] = acceptedShare(tests[i]!.score, thr);
    const P = probs(h, logits(h, t.x[0]!));
    let c = 0, m = 0;
    P.forEach((p, r) => {
      if (tests[i]!.score[r]! >= thr) {
        m++;
        if (argmax(p) === t.y[r]) c++;
      }
    });
    acceptedAccuracy[t.name] = m ? c / m : NaN;
  });
  // per-class thresholds (by the detector's class, else the head's)
  let perClass: DetectorResult['perClass'];
  const clsOf = (s: { cls?: Int32Array }, l: Labelled) => s.cls ?? Int32Array.from(probs(h, logits(h, l.x[0]!)), (p) => argmax(p));
  {
    const hc = clsOf(heldS, held);
    const thrs = task.classes.map((_, c) => thresholdFor(heldS.score.filter((_, i) => hc[i] === c), target));
    const acc = (s: { score: Float64Array; cls?: Int32Array }, l: Labelled) => {
      const cc = clsOf(s, l);
      let a = 0;
      for (let i = 0; i < l.n; i++) if (s.score[i]! >= thrs[cc[i]!]!) a++;
      return a / l.n;
    };
    perClass = { accepted: { other: acc(other, task.other) } };
    task.tests.forEach((t, i) => (perClass!.accepted[t.name] = acc(tests[i]!, t)));
  }
  return {
    detector: det.name,
    bytes: det.bytes,
    aucValVsOther: auc(tests[0]!.score, other.score),
    aucElseVsOther: task.name === 'cd' ? auc(tests[2]!.score, other.score) : undefined,
    threshold: thr,
    accepted,
    acceptedAccuracy,
    perClass,
    msPerImage: ms,
  };
}

/** z-scored sum of several detectors (statistics from the held-out split's scores). */
export function combine(name: string, parts: Detector[], held: Labelled): Detector {
  const st = parts.map((p) => {
    const s = p.score(held.x[0]!, held.n).score;
    const m = s.reduce((a, b) => a + b, 0) / s.length;
    const sd = Math.sqrt(s.reduce((a, b) => a + (b - m) ** 2, 0) / s.length);
    return { m, sd };
  });
  return {
    name,
    bytes: parts.reduce((a, p) => a + p.bytes, 0),
    score: (x, n) => {
      const ss = parts.map((p) => p.score(x, n).score);
      return { score: Float64Array.from({ length: n }, (_, i) => ss.reduce((a, s, j) => a + (s[i]! - st[j]!.m) / st[j]!.sd, 0) / parts.length) };
    },
  };
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (k: string, d: string) => {
    const i = args.indexOf(k);
    if (i < 0) return d;
    const v = args[i + 1]!;
    args.splice(i, 2);
    return v;
  };
  const headCfg = opt('--head', 'default');
  const fit = opt('--fit', 'squash');
  const only = opt('--only', '');
  const [taskName, seedsArg] = args;
  await initTf();
  const task = loadTask(taskName as 'cd' | 'fl', fit);
  const K = task.classes.length;
  const seeds = Array.from({ length: Number(seedsArg ?? 3) }, (_, i) => i + 1);
  const all: Record<string, DetectorResult[]> = {};
  for (const seed of seeds) {
    const { fitPart, heldOut } = defaultSplit(task, seed);
    const h = trainHead(fitPart.x, fitPart.y, K, { x: heldOut.x[0]!, y: heldOut.y }, { seed, ...CONFIGS[headCfg]!.head });
    const centre = mean(fitPart.x[0]!);
    const t0 = Date.now();
    const fitTimes: Record<string, number> = {};
    const time = <T>(name: string, f: () => T): T => {
      const s = Date.now();
      const r = f();
      fitTimes[name] = Date.now() - s;
      return r;
    };
    const want = (n: string) => !only || only.split(',').some((o) => n.startsWith(o));
    const dets: Detector[] = [];
    dets.push(...headDetectors(h));
    if (want('knn')) {
      dets.push(...time('knn_l2', () => knnDetectors(fitPart.x[0]!, fitPart.n, [1, 10], 'l2', centre)));
      dets.push(...time('knn_cl2', () => knnDetectors(fitPart.x[0]!, fitPart.n, [1, 5, 10], 'cl2', centre)));
      const both = new Float32Array(fitPart.n * 2 * DIM);
      both.set(fitPart.x[0]!);
      both.set(fitPart.x[1]!, fitPart.n * DIM);
      if (process.env.FAST !== '1') dets.push(...time('knn_flip', () => knnDetectors(both, fitPart.n * 2, [1, 10], 'cl2', centre, '_flip')));
    }
    if (want('kmeans')) {
      if (process.env.FAST !== '1') dets.push(...time('kmeans_l2', () => kmeansDetectors(fitPart.x[0]!, fitPart.y, K, [16], 'l2', centre)));
      dets.push(...time('kmeans_cl2', () => kmeansDetectors(fitPart.x[0]!, fitPart.y, K, process.env.FAST === '1' ? [1, 4, 16] : [1, 4, 16, 64], 'cl2', centre)));
    }
    if (want('maha')) {
      dets.push(...time('maha', () => mahalanobisDetectors(fitPart.x[0]!, fitPart.y, K, [16, 32, 64, 128], { l2: false })));
      if (process.env.MAHA_L2 === '1') dets.push(...time('maha_l2', () => mahalanobisDetectors(fitPart.x[0]!, fitPart.y, K, [32, 64, 128], { l2: true })));
    }
    const byName = new Map(dets.map((d) => [d.name, d]));
    const combos: [string, string[]][] = [
      ['combo_knn10+maha64', ['knn_cl2_k10', 'maha_q64']],
      ['combo_kmeans16+maha64', ['kmeans_cl2_k16', 'maha_q64']],
      ['combo_msp+maha64', ['msp', 'maha_q64']],
      ['combo_energy+maha64', ['energy', 'maha_q64']],
      ['combo_kmeans16+relmaha64', ['kmeans_cl2_k16', 'maha_rel_q64']],
    ];
    for (const [name, parts] of combos) if (parts.every((p) => byName.has(p))) dets.push(combine(name, parts.map((p) => byName.get(p)!), heldOut));
    console.error(`seed ${seed}: fitted ${dets.length} detectors in ${((Date.now() - t0) / 1000).toFixed(1)}s`, JSON.stringify(fitTimes));
    for (const d of dets) {
      const r = evaluateDetector(d, h, task, heldOut);
      (all[d.name] ??= []).push(r);
      const e = task.name === 'cd' ? ` else ${r.accepted.cd_else!.toFixed(3)} aucElse ${r.aucElseVsOther!.toFixed(4)}` : '';
      const more = task.name === 'cd' ? ` | @0.98 other ${r.accepted['other@0.98']!.toFixed(3)} else ${r.accepted['cd_else@0.98']!.toFixed(3)} | @0.99 other ${r.accepted['other@0.99']!.toFixed(3)} else ${r.accepted['cd_else@0.99']!.toFixed(3)}` : ` | @0.98 other ${r.accepted['other@0.98']!.toFixed(3)} | @0.99 other ${r.accepted['other@0.99']!.toFixed(3)}`;
      console.error(`  ${d.name.padEnd(28)}${more} auc ${r.aucValVsOther.toFixed(4)} other ${r.accepted.other!.toFixed(3)} val ${r.accepted[task.tests[0]!.name]!.toFixed(3)}${e}  perClass other ${r.perClass!.accepted.other!.toFixed(3)}${task.name === 'cd' ? ` else ${r.perClass!.accepted.cd_else!.toFixed(3)}` : ''}  ${r.msPerImage.toFixed(3)}ms/img`);
    }
  }
  // summary table
  const lines: string[] = [];
  const testNames = task.tests.map((t) => t.name);
  lines.push(`| detector | bytes | AUC val vs other |${task.name === 'cd' ? ' AUC elsewhere vs other |' : ''} other accepted | ${testNames.map((t) => `${t} accepted`).join(' | ')} | accepted-val accuracy | per-class thr: other / ${task.name === 'cd' ? 'elsewhere' : 'val'} |`);
  lines.push('|' + ' --- |'.repeat(5 + testNames.length + (task.name === 'cd' ? 2 : 1)));
  for (const [name, rs] of Object.entries(all)) {
    const s = (f: (r: DetectorResult) => number) => fmt(stats(rs.map(f)));
    lines.push(
      `| ${name} | ${rs[0]!.bytes} | ${s((r) => r.aucValVsOther)} |${task.name === 'cd' ? ` ${s((r) => r.aucElseVsOther!)} |` : ''} ${s((r) => r.accepted.other!)} | ${testNames.map((t) => s((r) => r.accepted[t]!)).join(' | ')} | ${s((r) => r.acceptedAccuracy[testNames[0]!]!)} | ${stats(rs.map((r) => r.perClass!.accepted.other!)).mean.toFixed(3)} / ${stats(rs.map((r) => r.perClass!.accepted[task.name === 'cd' ? 'cd_else' : testNames[0]!]!)).mean.toFixed(3)} |`,
    );
  }
  console.log(`\n### ${task.name} detectors (head ${headCfg}, fit ${fit}, seeds ${seeds.join(',')})\n` + lines.join('\n'));
  appendFileSync(`${RESULTS}/detectors.jsonl`, JSON.stringify({ task: taskName, headCfg, fit, seeds, all }) + '\n');
}

if (process.argv[1]?.endsWith('detectors.ts')) main();
