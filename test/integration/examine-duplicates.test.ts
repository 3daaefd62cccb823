/**
 * examine reports the same image under two classes (a cat photo copied into dogs/) and duplicates inside one
 * class, by content, on a small image folder; train/validation leaks stay in `duplicates`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { examine, formatReport } from '../../src/examine/examine';
import { imageFolder } from '../../src/node/image-folder';

async function png(color: string): Promise<Buffer> {
  return sharp({ create: { width: 12, height: 12, channels: 3, background: color } }).png().toBuffer();
}

describe('examine: duplicates by content within and across classes', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tt-examine-dup-'));
    await mkdir(join(dir, 'cats'));
    await mkdir(join(dir, 'dogs'));
    const cat1 = await png('#a11');
    const cat2 = await png('#a22');
    await writeFile(join(dir, 'cats', 'cat1.png'), cat1);
    await writeFile(join(dir, 'cats', 'cat2.png'), cat2);
    await writeFile(join(dir, 'cats', 'cat2-copy.png'), cat2); // within a class
    await writeFile(join(dir, 'cats', 'cat3.png'), await png('#a33'));
    await writeFile(join(dir, 'dogs', 'dog1.png'), await png('#11a'));
    await writeFile(join(dir, 'dogs', 'dog2.png'), await png('#22a'));
    await writeFile(join(dir, 'dogs', 'looks-like-a-dog.png'), cat1); // a cat photo copied into dogs/
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports both kinds, with sources, classes and warnings, in the report and its text', async () => {
    const data = await imageFolder(dir, { validationSplit: 0, verbose: false });
    const report = examine(data, { verbose: false });
    expect(report.crossClassDuplicates).toHaveLength(1);
    const cross = report.crossClassDuplicates![0]!;
    expect(cross.classes.sort()).toEqual(['cats', 'dogs']);
    expect(cross.images.map((im) => im.source.split('/').slice(-2).join('/')).sort()).toEqual(['cats/cat1.png', 'dogs/looks-like-a-dog.png']);
    expect(report.withinClassDuplicates).toHaveLength(1);
    expect(report.withinClassDuplicates![0]!.images.map((im) => im.source.split('/').pop()).sort()).toEqual(['cat2-copy.png', 'cat2.png']);
    expect(report.withinClassDuplicates![0]!.classes).toEqual(['cats']);
    const warnings = report.warnings.join('\n');
    expect(warnings).toMatch(/1 image\(s\) appear under more than one class .*cat1\.png \(cats\) == .*looks-like-a-dog\.png \(dogs\)/);
    expect(warnings).toMatch(/1 duplicate image\(s\) within a class/);
    const text = formatReport(report);
    expect(text).toMatch(/Same image in more than one class: 1/);
    expect(text).toMatch(/Duplicates within a class: 1/);
  });

  it('across splits too: a copy in validation under another class is cross-class; one of the same class is a leak', async () => {
    const data = await imageFolder(dir, { validationSplit: 0.5, seed: 3, verbose: false });
    const report = examine(data, { verbose: false });
    expect(report.crossClassDuplicates).toHaveLength(1);
    const leaks = report.duplicates ?? [];
    const within = report.withinClassDuplicates ?? [];
    // cat2 and its copy are either both in one split (within a class) or one per split (a train/validation leak).
    expect(leaks.length + within.length).toBeGreaterThanOrEqual(1);
  });

  it('a folder without copies reports empty lists', async () => {
    const clean = await mkdtemp(join(tmpdir(), 'tt-examine-clean-'));
    try {
      for (const c of ['a', 'b']) await mkdir(join(clean, c));
      await writeFile(join(clean, 'a', '1.png'), await png('#123'));
      await writeFile(join(clean, 'b', '1.png'), await png('#321'));
      const report = examine(await imageFolder(clean, { validationSplit: 0, verbose: false }), { verbose: false });
      expect(report.crossClassDuplicates).toEqual([]);
      expect(report.withinClassDuplicates).toEqual([]);
      expect(report.warnings.join('\n')).not.toMatch(/duplicate|more than one class/);
    } finally {
      await rm(clean, { recursive: true, force: true });
    }
  });
});
