/**
 * The model remembers how its training images were fitted to its input (`model.resizeFit`): `fit` records it from
 * a pipeline dataset, `save` / `loadModel` keep it (files without it read as squash), the card shows it, and
 * `predict` fits photos of another shape the same way. transferLearn's default is centre-crop.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { attachHead, env, explain, fit, freeze, fromTensors, loadBackbone, loadModel, predict, resizeImages, save, TRANSFER_LEARN_DEFAULTS } from '../../src/node/index';
import { resolveTransferLearnArgs } from '../../src/transfer-learn';
import { stripes, tinyBackbone } from '../helpers/tiny';

env.verbose = false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-resize-fit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const size = 32;

async function model() {
  const backbone = await loadBackbone(tinyBackbone(size), { inputSize: [size, size], preprocessing: { scale: 1 / 127.5, offset: -1 }, takeOwnership: true });
  return attachHead(freeze(backbone), { classes: ['red', 'blue'], seed: 1 });
}

describe('model.resizeFit', () => {
  it('recorded by fit from the dataset, used by predict on other shapes, kept by save/load and in the card; no leak', async () => {
    const before = tf.memory().numTensors;
    const m = await model();
    expect(m.resizeFit).toBe('squash'); // nothing trained yet
    const train = stripes(40, size, 1);
    await fit(m, fromTensors(train.xs, train.ys, { classes: ['red', 'blue'], fit: 'centerCrop' }), { epochs: 1, batchSize: 16, seed: 1, verbose: false });
    expect(m.resizeFit).toBe('centerCrop');
    expect(m.card.resizeFit).toBe('centerCrop');
    // A wide photo whose left and right thirds differ from its centre: crop and squash see different pixels.
    const wide = tf.tidy(() => tf.concat([tf.fill([size, size, 3], 250), tf.randomUniform([size, size, 3], 0, 255, 'float32', 3), tf.fill([size, size, 3], 5)], 1) as tf.Tensor3D);
    const cropped = resizeImages(wide, [size, size], { fit: 'centerCrop' });
    const squashed = resizeImages(wide, [size, size], { fit: 'squash' });
    const [p] = await predict(m, wide);
    const [pc] = await predict(m, cropped);
    const [ps] = await predict(m, squashed);
    expect(p!.probabilities).toEqual(pc!.probabilities);
    expect(p!.probabilities).not.toEqual(ps!.probabilities);
    // Its heatmap covers the middle third the model saw: zero outside, the cropped image's heatmap inside.
    const [ew] = await explain(m, wide);
    const [ec] = await explain(m, cropped);
    const region = ew!.heatmap.region!;
    for (const [k, v] of Object.entries({ top: 0, left: 1 / 3, height: 1, width: 1 / 3 })) expect(region[k as keyof typeof region]).toBeCloseTo(v, 12);
    expect(ec!.heatmap.region).toBeUndefined();
    const full = ew!.heatmap.upsample();
    const middle = ec!.heatmap.upsample([size, size]);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < 3 * size; x++) {
        const v = full[y * 3 * size + x]!;
        if (x < size || x >= 2 * size) expect(v).toBe(0);
        else expect(v).toBeCloseTo(middle[y * size + x - size]!, 5);
      }
    }
    // A padding model saw the wide photo as an 11-pixel band (rows 10-20) of its 32 x 32 input: the grid covers the
    // photo and more above and below it.
    m.setResizeFit('pad');
    const [ep] = await explain(m, wide);
    const pr = ep!.heatmap.region!;
    const expected = { top: -10 / 11, left: 0, height: 32 / 11, width: 1 };
    for (const [k, v] of Object.entries(expected)) expect(pr[k as keyof typeof pr]).toBeCloseTo(v, 12);
    m.setResizeFit('centerCrop');
    // Saved and loaded: the same fit, the same answer.
    await save(m, path.join(tmp, 'm'));
    const loaded = await loadModel(path.join(tmp, 'm'));
    expect(loaded.resizeFit).toBe('centerCrop');
    expect(loaded.card.resizeFit).toBe('centerCrop');
    // The card keeps the run's per-epoch curves too (the evaluate report draws them).
    expect(loaded.card.training[0]!.curves).toEqual(m.card.training[0]!.curves);
    expect(loaded.card.training[0]!.curves!.loss).toHaveLength(1);
    const [pl] = await predict(loaded, wide);
    for (const [c, v] of Object.entries(pl!.probabilities)) expect(v).toBeCloseTo(p!.probabilities[c]!, 5);
    loaded.dispose();
    // A file without the record (written before 0.2.0 recorded it) reads as squash.
    const file = path.join(tmp, 'm', 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete json.userDefinedMetadata.tfjsTransfer.resizeFit;
    fs.writeFileSync(file, JSON.stringify(json));
    const old = await loadModel(path.join(tmp, 'm'));
    expect(old.resizeFit).toBe('squash');
    old.dispose();
    // Plain tensors say nothing about a fit: the model keeps what it had.
    await fit(m, train, { epochs: 1, batchSize: 16, seed: 1, verbose: false });
    expect(m.resizeFit).toBe('centerCrop');
    m.dispose();
    tf.dispose([train.xs, wide, cropped, squashed]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("transferLearn's default is centerCrop; undefined means it; a bad value is named", async () => {
    expect(TRANSFER_LEARN_DEFAULTS.fit).toBe('centerCrop');
    expect(resolveTransferLearnArgs({}).fit).toBe('centerCrop');
    expect(resolveTransferLearnArgs({ fit: undefined }).fit).toBe('centerCrop');
    expect(resolveTransferLearnArgs({ fit: 'pad' }).fit).toBe('pad');
    const { transferLearn } = await import('../../src/node/index');
    const t = stripes(8, size, 2);
    await expect(transferLearn({ data: t, backbone: tinyBackbone(size), fit: 'stretch' as 'squash' })).rejects.toThrow(/transferLearn: fit must be one of squash, centerCrop, pad, got "stretch"/);
    tf.dispose(t.xs);
  });
});
