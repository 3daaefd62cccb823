// sanity: default head on cd_train -> cd_val
import { loadSet, labelled, subset, splitIndices, Random, trainHead, logits, probs, accuracy, ece } from './lib';
const cls = ['cats', 'dogs'];
const tr = labelled(loadSet('cd_train'), cls), va = labelled(loadSet('cd_val'), cls);
for (const seed of [1, 2, 3]) {
  const sp = splitIndices(tr.y, 0.2, new Random(seed ^ 0x5bd1e995));
  const a = subset(tr, sp.train), b = subset(tr, sp.validation);
  const t0 = Date.now();
  const h = trainHead(a.x, a.y, 2, { x: b.x[0]!, y: b.y }, { seed });
  const P = probs(h, logits(h, va.x[0]!));
  console.log(seed, 'val acc', accuracy(P, va.y), 'ece', ece(P, va.y).toFixed(4), 'epochs', h.epochsRun, 'best', h.bestEpoch, Date.now() - t0, 'ms');
}
