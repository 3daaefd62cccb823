/** The version written into model cards and printed by `tfjs-transfer --version` is package.json's. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../src/util/version';

describe('VERSION', () => {
  it("equals package.json's version", () => {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });
});
