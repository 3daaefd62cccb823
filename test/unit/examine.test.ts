import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDataset, fromTensors } from '../../src/data/dataset';
import { env } from '../../src/env';
import { examine, formatReport } from '../../src/examine/examine';

let baseline = 0;
let printed: string[] = [];
const logger = env.logger;
beforeEach(() => {
  baseline = tf.memory().numTensors;
  printed = [];
  env.logger = (m) => printed.push(m);
});
afterEach(() => {
  env.logger = logger;
  expect(tf.memory().numTensors).toBe(baseline);
});

const load = async () => ({ data: new Uint8Array(3), height: 1, width: 1 });

describe('examine', () => {
  it('reports counts, imbalance, sizes, formats, duplicates and skipped files of train/validation', () => {
    const skipped = [
      { source: 'x/cats/bad.jpg', reason: 'corrupt or truncated jpeg', stage: 'scan' as const, label: 'cats' },
      { source: 'x/cats/.DS_Store', reason: 'hidden or system file', stage: 'scan' as const, ignored: true },
    ];
    const train = createDataset({
      name: 'train',
      classes: ['cats', 'dogs'],
      labels: [0, 0, 0, 0, 1],
      sources: ['c1', 'c2', 'c3', 'c4', 'd1'],
      keys: ['k1', 'k2', 'k3', 'k4', 'k5'],
      info: [
        { width: 500, height: 375, format: 'jpeg' },
        { width: 100, height: 80, format: 'jpeg' },
        { width: 640, height: 480, format: 'png' },
        { width: 300, height: 300, format: 'jpeg' },
        { width: 20, height: 30, format: 'gif' },
      ],
      skipped,
      load,
    });
    const validation = createDataset({
      name: 'validation',
      classes: ['cats', 'dogs'],
      labels: [0, 1],
      sources: ['vc1', 'vd1'],
      keys: ['k3', 'k9'],
      info: [{ width: 10, height: 10, format: 'jpeg' }, { width: 10, height: 10, format: 'jpeg' }],
      skipped,
      load,
    });
    const report = examine({ train, validation });
    expect(report.classes).toEqual(['cats', 'dogs']);
    expect(report.splits.map((s) => [s.name, s.total, s.counts])).toEqual([
      ['train', 5, [4, 1]],
      ['validation', 2, [1, 1]],
    ]);
    expect(report.splits[0]?.imbalanceRatio).toBe(4);
    expect(report.sizes?.width).toEqual({ min: 10, median: 100, max: 640 });
    expect(report.sizes?.height.max).toBe(480);
    expect(report.formats).toEqual({ jpeg: 5, png: 1, gif: 1 });
    expect(report.duplicates).toEqual([{ key: 'k3', train: 'c3', validation: 'vc1' }]);
    expect(report.skipped).toEqual([skipped[0]]);
    expect(report.ignored).toBe(1);
    expect(report.warnings.join('\n')).toMatch(/train is imbalanced: "cats" has 4 images, "dogs" 1/);
    expect(report.warnings.join('\n')).toMatch(/1 validation image\(s\) also appear in train/);
    expect(printed).toHaveLength(1);
    const text = printed[0] as string;
    expect(text).toContain('Classes (2): cats, dogs');
    expect(text).toContain('x/cats/bad.jpg: corrupt or truncated jpeg');
    expect(text).toContain('c3 == vc1');
    expect(text).toMatch(/width min 10 \/ median 100 \/ max 640/);
  });

  it('works on tensors, does not print with verbose: false, and respects the threshold', () => {
    const xs = tf.zeros([4, 32, 40, 3]) as tf.Tensor4D;
    const report = examine({ xs, ys: [0, 0, 1, 1] }, { verbose: false });
    expect(printed).toHaveLength(0);
    expect(report.classes).toEqual(['0', '1']);
    expect(report.sizes).toEqual({ count: 4, width: { min: 40, median: 40, max: 40 }, height: { min: 32, median: 32, max: 32 } });
    expect(report.formats).toEqual({ tensor: 4 });
    expect(report.duplicates).toBeUndefined();
    expect(report.warnings).toEqual([]);
    const ds = fromTensors(xs, [0, 0, 0, 1]);
    expect(examine(ds, { verbose: false, imbalanceThreshold: 5 }).warnings).toEqual([]);
    expect(examine(ds, { verbose: false }).warnings[0]).toMatch(/imbalanced/);
    expect(formatReport(examine(ds, { verbose: false }))).toContain('Formats: tensor 4');
    xs.dispose();
  });

  it('logging has one switch: verbose, defaulting to env.verbose', () => {
    const ds = createDataset({ classes: ['a', 'b'], labels: [0, 1], load });
    const saved = env.verbose;
    try {
      env.verbose = false;
      examine(ds);
      examine(ds, { verbose: undefined });
      expect(printed).toHaveLength(0);
      examine(ds, { verbose: true });
      expect(printed).toHaveLength(1);
      env.verbose = true;
      examine(ds, { verbose: undefined });
      expect(printed).toHaveLength(2);
      examine(ds, { verbose: false });
      expect(printed).toHaveLength(2);
      expect(() => examine(ds, { verbose: 'yes' as unknown as boolean })).toThrow(/verbose must be true or false/);
    } finally {
      env.verbose = saved;
    }
  });

  it('flags a class with no images and a single class', () => {
    const two = createDataset({ classes: ['a', 'b'], labels: [0, 0], load });
    expect(examine(two, { verbose: false }).warnings.join('\n')).toMatch(/class "b" has no images/);
    const one = createDataset({ classes: ['a'], labels: [0, 0], load });
    expect(examine(one, { verbose: false }).warnings.join('\n')).toMatch(/only one class/);
  });
});
