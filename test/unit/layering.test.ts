/**
 * Keeps `docs/architecture.md` true: reads its table of layers (the one place the allowed order is kept) and the
 * imports of every file under `src/` (static `import` / `export ... from`, `import type`, `import('...')` in code
 * and in types, `import x = require(...)`), with the TypeScript compiler API, and fails when a module imports from
 * a higher layer or when a file under `src/` belongs to no layer (or to two). Static: runs once, in the wasm
 * project.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = process.env.TFJS_TRANSFER_TEST_BACKEND === 'cpu' ? describe.skip : describe;

/** One row of the table: a layer number, its name and the file patterns it owns. */
interface Layer {
  level: number;
  name: string;
  patterns: string[];
}

/** Package names that resolve to files of this repository (tsconfig `paths`). */
const SELF_PACKAGES: Record<string, string> = {
  'tfjs-transfer': 'src/index.ts',
  'tfjs-transfer/node': 'src/node/index.ts',
};

/** Parses the `## Layers` table of `docs/architecture.md`: rows `| <number> | <name> | <patterns> | ... |`. */
function parseLayerTable(markdown: string): Layer[] {
  const section = markdown.split(/^## Layers\s*$/m)[1];
  if (section === undefined) throw new Error('docs/architecture.md has no "## Layers" section');
  const layers: Layer[] = [];
  for (const row of section.split('\n')) {
    const cells = row.split('|').map((c) => c.trim());
    if (cells.length < 5 || !/^\d+$/.test(cells[1]!)) {
      if (layers.length > 0 && !row.startsWith('|')) break; // the table ended
      continue;
    }
    const patterns = [...cells[3]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    layers.push({ level: Number(cells[1]), name: cells[2]!, patterns });
  }
  if (layers.length === 0) throw new Error('the "## Layers" table of docs/architecture.md has no rows');
  return layers;
}

/** `*` matches within one path segment, `**` across segments. */
function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') source += '[^/]*';
    else source += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** The layers a repository-relative file matches (exactly one when the table is right). */
function layersOf(file: string, layers: Layer[]): Layer[] {
  return layers.filter((l) => l.patterns.some((p) => globToRegExp(p).test(file)));
}

/** Every module specifier a file imports or re-exports, with its line, found with the TypeScript parser. */
function importsOf(fileName: string, text: string): { specifier: string; line: number; kind: string }[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: { specifier: string; line: number; kind: string }[] = [];
  const add = (node: ts.Node, literal: ts.Node | undefined, kind: string): void => {
    if (literal && ts.isStringLiteralLike(literal)) {
      found.push({ specifier: literal.text, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1, kind });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node, node.moduleSpecifier, node.importClause?.isTypeOnly ? 'import type' : 'import');
    else if (ts.isExportDeclaration(node)) add(node, node.moduleSpecifier, 'export from');
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, 'import = require');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], 'import()');
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, 'import() type');
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The repository file a specifier names, or `undefined` for packages outside the repository. */
function resolveImport(fromFile: string, specifier: string, exists: (file: string) => boolean): string | undefined {
  if (SELF_PACKAGES[specifier]) return SELF_PACKAGES[specifier];
  if (!specifier.startsWith('.')) return undefined;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(fromFile), specifier));
  const stem = base.replace(/\.(js|mjs|cjs|ts)$/, '');
  const candidates = [`${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${base}/index.ts`, base];
  return candidates.find(exists) ?? `${stem}.ts`;
}

/** What the layering rule reports: imports from a higher layer, and files in no layer or in several. */
function layeringProblems(files: Map<string, string>, layers: Layer[]): string[] {
  const problems: string[] = [];
  const layerOf = new Map<string, Layer>();
  for (const file of files.keys()) {
    const matched = layersOf(file, layers);
    if (matched.length === 0) problems.push(`${file} belongs to no layer: add it (or a pattern for it) to the table in docs/architecture.md`);
    else if (matched.length > 1) problems.push(`${file} matches several layers (${matched.map((l) => `${l.level} ${l.name}`).join(', ')})`);
    else layerOf.set(file, matched[0]!);
  }
  for (const [file, text] of files) {
    const own = layerOf.get(file);
    if (!own) continue;
    if (!/\.(ts|tsx|mts|js|mjs)$/.test(file)) continue;
    for (const { specifier, line, kind } of importsOf(file, text)) {
      const target = resolveImport(file, specifier, (f) => files.has(f));
      if (target === undefined) continue;
      const theirs = layerOf.get(target);
      if (!theirs) continue; // reported above (or not a source file)
      if (theirs.level > own.level) {
        problems.push(
          `${file}:${line} (layer ${own.level} ${own.name}) ${kind} '${specifier}' -> ${target} (layer ${theirs.level} ${theirs.name}): a higher layer`,
        );
      }
    }
  }
  return problems;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(repo, dir)).flatMap((name) => {
    const rel = `${dir}/${name}`;
    if (statSync(path.join(repo, rel)).isDirectory()) return sourceFiles(rel);
    return [rel];
  });
}

run('layering (docs/architecture.md)', () => {
  const layers = parseLayerTable(readFileSync(path.join(repo, 'docs/architecture.md'), 'utf8'));

  it('the table lists each layer once, in order, and its patterns match files', () => {
    expect(layers.map((l) => l.level)).toEqual(layers.map((_, i) => i));
    const all = sourceFiles('src');
    for (const layer of layers) {
      expect(layer.patterns.length, `layer ${layer.level} ${layer.name} has no file pattern`).toBeGreaterThan(0);
      for (const p of layer.patterns) {
        // A pattern for a future split (e.g. src/evaluate/**) may match nothing yet; a misspelt file may not.
        if (!p.includes('*')) expect(existsSync(path.join(repo, p)), `layer ${layer.level}: ${p} does not exist`).toBe(true);
      }
    }
    expect(all.length).toBeGreaterThan(10);
  });

  it('no module under src/ imports from a higher layer, and every file belongs to one layer', () => {
    const files = new Map(sourceFiles('src').map((f) => [f, readFileSync(path.join(repo, f), 'utf8')]));
    expect(layeringProblems(files, layers)).toEqual([]);
  });

  it('fails on a synthetic violation (self-check)', () => {
    const files = new Map([
      ['src/types.ts', `import type { Backbone } from './backbone/backbone.js';\nexport type X = Backbone;`],
      ['src/errors.ts', `export const e = () => import('./train/fit');`],
      ['src/util/a.ts', `export { fit } from '../train/fit';\nimport '../errors';`],
      ['src/util/b.ts', `type F = typeof import('../train/fit').fit;`],
      ['src/backbone/backbone.ts', `import * as tf from '@tensorflow/tfjs-core';\nimport { TransferError } from '../errors';`],
      ['src/train/fit.ts', `import { Backbone } from '../backbone/backbone';`],
      ['src/stray.ts', `export const x = 1;`],
    ]);
    const problems = layeringProblems(files, layers);
    expect(problems).toHaveLength(5);
    expect(problems).toContain('src/stray.ts belongs to no layer: add it (or a pattern for it) to the table in docs/architecture.md');
    const name = (file: string): string => {
      const layer = layersOf(file, layers)[0]!;
      return `layer ${layer.level} ${layer.name}`;
    };
    const train = name('src/train/fit.ts');
    expect(problems).toContain(
      `src/types.ts:1 (${name('src/types.ts')}) import type './backbone/backbone.js' -> src/backbone/backbone.ts (${name('src/backbone/backbone.ts')}): a higher layer`,
    );
    expect(problems).toContain(`src/errors.ts:1 (${name('src/errors.ts')}) import() './train/fit' -> src/train/fit.ts (${train}): a higher layer`);
    expect(problems).toContain(`src/util/a.ts:1 (${name('src/util/a.ts')}) export from '../train/fit' -> src/train/fit.ts (${train}): a higher layer`);
    expect(problems).toContain(`src/util/b.ts:1 (${name('src/util/b.ts')}) import() type '../train/fit' -> src/train/fit.ts (${train}): a higher layer`);
  });
});
