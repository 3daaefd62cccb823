// Accuracy of the default head and of default changes, on cached features, several seeds.
// Run: node --import tsx bench/trust-research/accuracy.ts <task cd|fl> <seeds> [config names...] [--fit squash|centerCrop|pad]
import { writeFileSync, appendFileSync } from 'node:fs';
import { DIM, concat, l2normalise, loadTaskTests, defaultSplit, trainHead, logits, probs, accuracy, flipTTA, flipLogits, stats, fmt, nll, ece, type HeadOptions, type Task, RESULTS } from './lib';

export type Cfg = { head: HeadOptions; tta?: 'prob' | 'logit'; norm?: 'zscore' | 'l2'; l2scale?: number; refitAll?: boolean };
export const CONFIGS: Record<string, Cfg> = {
  zscore: { head: {}, norm: 'zscore' },
  zscore_flip_tta: { head: { flipViews: true }, norm: 'zscore', tta: 'prob' },
  zscore_l2_1e3: { head: { l2: 1e-3 }, norm: 'zscore' },
  zscore_l2_1e3_flip_tta: { head: { l2: 1e-3, flipViews: true }, norm: 'zscore', tta: 'prob' },
  l2norm10: { head: {}, norm: 'l2', l2scale: 10 },
  l2norm20_ep50: { head: { epochs: 50 }, norm: 'l2', l2scale: 20 },
  l2norm20_ep50_flip_tta: { head: { epochs: 50, flipViews: true }, norm: 'l2', l2scale: 20, tta: 'prob' },
  l2norm20_ep50_refit_flip_tta: { head: { epochs: 50, flipViews: true }, norm: 'l2', l2scale: 20, tta: 'prob', refitAll: true },
  lr3e3_ep50_l2norm20: { head: { epochs: 50, learningRate: 3e-3 }, norm: 'l2', l2scale: 20 },
  l2norm30_flip_tta: { head: { flipViews: true }, norm: 'l2', l2scale: 30, tta: 'prob' },
  refit: { head: {}, refitAll: true },
  refit_flip_tta: { head: { flipViews: true }, tta: 'prob', refitAll: true },
  zscore_refit_flip_tta: { head: { flipViews: true }, norm: 'zscore', tta: 'prob', refitAll: true },
  default: { head: {} },
  flip: { head: { flipViews: true } },
  tta: { head: {}, tta: 'prob' },
  flip_tta: { head: { flipViews: true }, tta: 'prob' },
  ep50: { head: { epochs: 50 } },
  ep50_flip: { head: { epochs: 50, flipViews: true } },
  ep50_flip_tta: { head: { epochs: 50, flipViews: true }, tta: 'prob' },
  lr3e3: { head: { learningRate: 3e-3 } },
  lr3e4: { head: { learningRate: 3e-4 } },
  lr3e4_ep50: { head: { learningRate: 3e-4, epochs: 50 } },
  l2_1e4: { head: { l2: 1e-4 } },
  l2_1e3: { head: { l2: 1e-3 } },
  ls01: { head: { labelSmoothing: 0.1 } },
  ls01_flip: { head: { labelSmoothing: 0.1, flipViews: true } },
  drop0: { head: { dropout: 0 } },
  drop05: { head: { dropout: 0.5 } },
  pat10: { head: { patience: 10, epochs: 50 } },
  drop05_ep50_flip: { head: { dropout: 0.5, epochs: 50, flipViews: true } },
  drop05_ep50_flip_tta: { head: { dropout: 0.5, epochs: 50, flipViews: true }, tta: 'prob' },
};

export function evalConfig(task: Task, cfgName: string, seed: number) {
  const cfg = CONFIGS[cfgName]!;
  let { fitPart, heldOut } = defaultSplit(task, seed);
  let tests = task.tests;
  if (cfg.norm) {
    // a fixed normalisation of the pooled features, computed on the training part (storable in the head)
    const n = fitPart.n;
    const mu = new Float64Array(DIM), sd = new Float64Array(DIM);
    const X = fitPart.x[0]!;
    for (let r = 0; r < n; r++) for (let i = 0; i < DIM; i++) mu[i] += X[r * DIM + i]! / n;
    for (let r = 0; r < n; r++) for (let i = 0; i < DIM; i++) sd[i] += (X[r * DIM + i]! - mu[i]!) ** 2 / n;
    for (let i = 0; i < DIM; i++) sd[i] = Math.sqrt(sd[i]!) + 1e-3;
    const f = (x: Float32Array) => {
      if (cfg.norm === 'l2') return l2normalise(x).map((v) => v * (cfg.l2scale ?? 10));
      const o = new Float32Array(x.length);
      for (let q = 0; q < x.length; q++) o[q] = (x[q]! - mu[q % DIM]!) / sd[q % DIM]!;
      return o;
    };
    const tr = (l: typeof fitPart) => ({ ...l, x: l.x.map(f) });
    fitPart = tr(fitPart);
    heldOut = tr(heldOut);
    tests = tests.map(tr);
  }
  let h = trainHead(fitPart.x, fitPart.y, task.classes.length, { x: heldOut.x[0]!, y: heldOut.y }, { seed, ...cfg.head });
  const out: Record<string, number> = { epochsRun: h.epochsRun, bestEpoch: h.bestEpoch };
  if (cfg.refitAll) {
    // early stopping chose the epoch count on the 20% split; retrain on all training images for that many epochs
    const all = concat('all', [fitPart, heldOut]);
    h = trainHead(all.x, all.y, task.classes.length, undefined, { seed, ...cfg.head, epochs: h.bestEpoch + 1 });
  }
  for (const t of tests) {
    const P = cfg.tta === 'prob' ? flipTTA(h, t) : cfg.tta === 'logit' ? probs(h, flipLogits(h, t)) : probs(h, logits(h, t.x[0]!));
    out[t.name] = accuracy(P, t.y);
    out[`${t.name}_nll`] = nll(P, t.y);
    out[`${t.name}_ece`] = ece(P, t.y);
  }
  return { head: h, metrics: out };
}

async function main() {
  const args = process.argv.slice(2);
  const fitI = args.indexOf('--fit');
  const fit = fitI >= 0 ? args[fitI + 1]! : 'squash';
  if (fitI >= 0) args.splice(fitI, 2);
  const [taskName, seedsArg, ...names] = args;
  const seeds = Array.from({ length: Number(seedsArg ?? 5) }, (_, i) => i + 1);
  const task = loadTaskTests(taskName as 'cd' | 'fl', fit);
  const cfgs = names.length ? names : Object.keys(CONFIGS);
  for (const c of cfgs) {
    const t0 = Date.now();
    const per = seeds.map((s) => evalConfig(task, c, s).metrics);
    const keys = Object.keys(per[0]!);
    const summary: Record<string, ReturnType<typeof stats>> = {};
    for (const k of keys) summary[k] = stats(per.map((p) => p[k]!));
    const secs = (Date.now() - t0) / 1000;
    const line = `${taskName} ${fit} ${c.padEnd(22)} ` + task.tests.map((t) => `${t.name} ${fmt(summary[t.name]!)}`).join('  ') + `  ece(val) ${summary[`${task.tests[0]!.name}_ece`]!.mean.toFixed(4)}  epochs ${summary.epochsRun!.mean.toFixed(1)}  (${seeds.length} seeds, ${secs.toFixed(1)}s)`;
    console.log(line);
    appendFileSync(`${RESULTS}/accuracy.jsonl`, JSON.stringify({ task: taskName, fit, config: c, seeds, summary, per }) + '\n');
  }
}

if (process.argv[1]?.endsWith('accuracy.ts')) main();
