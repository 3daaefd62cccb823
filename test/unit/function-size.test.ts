/**
 * "No function over ~80 lines in `src/` without a reason written beside it": every function declaration, method,
 * constructor, accessor, arrow function and function expression under `src/` (read with the TypeScript compiler
 * API) has a body of at most {@link MAX_LINES} lines, unless the comment lines just above it hold
 * `// long: <reason>`. Static: runs once, in the wasm project.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = process.env.TFJS_TRANSFER_TEST_BACKEND === 'cpu' ? describe.skip : describe;

/** Longest body, in lines (from the line of its opening brace to the line of its closing one), allowed unexplained. */
const MAX_LINES = 80;

/** A function, where it is, how long its body is, and whether a `// long:` reason stands above it. */
interface FunctionSize {
  file: string;
  line: number;
  name: string;
  lines: number;
  reason: string | undefined;
}

function nameOf(node: ts.FunctionLikeDeclaration): string {
  const own = node.name && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name) || ts.isPrivateIdentifier(node.name)) ? node.name.text : undefined;
  const parent = node.parent;
  const holder = ts.isClassLike(parent) && parent.name ? `${parent.name.text}.` : '';
  if (ts.isConstructorDeclaration(node)) return `${holder}constructor`;
  if (own) return `${holder}${own}`;
  if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if ((ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && ts.isIdentifier(parent.name)) return parent.name.text;
  for (let up: ts.Node | undefined = parent; up; up = up.parent) {
    if (ts.isFunctionLike(up) && 'body' in up) return `<anonymous in ${nameOf(up as ts.FunctionLikeDeclaration)}>`;
  }
  return '<anonymous>';
}

/** The `// long: <reason>` in the run of comment lines just above `line` (0-based), if there is one. */
function reasonAbove(lines: string[], line: number): string | undefined {
  for (let i = line - 1; i >= 0; i--) {
    const text = lines[i]!.trim();
    const long = /^\/\/\s*long:\s*(\S.*)$/.exec(text);
    if (long) return long[1];
    if (!(text.startsWith('//') || text.startsWith('*') || text.startsWith('/*') || text.startsWith('@'))) return undefined;
  }
  return undefined;
}

/** Every function-like node of one file with its body length. */
function functionSizes(file: string, text: string): FunctionSize[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const lines = text.split('\n');
  const lineOf = (pos: number): number => source.getLineAndCharacterOfPosition(pos).line;
  const found: FunctionSize[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const fn = node as ts.FunctionLikeDeclaration;
      const body = fn.body!;
      const start = lineOf(fn.getStart(source));
      found.push({
        file,
        line: start + 1,
        name: nameOf(fn),
        lines: lineOf(body.getEnd()) - lineOf(body.getStart(source)) + 1,
        reason: reasonAbove(lines, start),
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Functions over the limit without a reason, as `file:line name (N lines)`, longest first. */
function longFunctions(files: Map<string, string>): string[] {
  return [...files]
    .flatMap(([file, text]) => functionSizes(file, text))
    .filter((f) => f.lines > MAX_LINES && f.reason === undefined)
    .sort((a, b) => b.lines - a.lines)
    .map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(repo, dir)).flatMap((name) => {
    const rel = `${dir}/${name}`;
    if (statSync(path.join(repo, rel)).isDirectory()) return sourceFiles(rel);
    return rel.endsWith('.ts') ? [rel] : [];
  });
}

run(`function size (at most ${MAX_LINES} lines, or a "// long:" reason)`, () => {
  it('no function under src/ is longer without a reason written above it', () => {
    const files = new Map(sourceFiles('src').map((f) => [f, readFileSync(path.join(repo, f), 'utf8')]));
    expect(longFunctions(files)).toEqual([]);
  });

  it('measures every kind of function, and accepts a reason (self-check)', () => {
    const body = (n: number): string => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');
    const files = new Map([
      ['src/a.ts', `export function big() {\n${body(80)}\n}\n`],
      ['src/b.ts', `const arrow = () => {\n${body(79)}\n};\nclass C {\n  method() {\n${body(79)}\n  }\n}\n`],
      ['src/c.ts', `/** Doc. */\n// long: one table of cases, clearer in one place\nexport function ok() {\n${body(100)}\n}\n`],
      ['src/d.ts', `export const o = {\n  run: function () {\n${body(78)}\n  },\n};\nexport const fits = () => {\n${body(77)}\n};\n`],
    ]);
    expect(longFunctions(files)).toEqual([
      'src/a.ts:1 big (82 lines)',
      'src/b.ts:1 arrow (81 lines)',
      'src/b.ts:83 C.method (81 lines)',
    ]);
    expect(functionSizes('src/c.ts', files.get('src/c.ts')!)[0]).toMatchObject({ name: 'ok', lines: 102, reason: 'one table of cases, clearer in one place' });
    expect(functionSizes('src/d.ts', files.get('src/d.ts')!).map((f) => [f.name, f.lines])).toEqual([['run', 80], ['fits', 79]]);
  });
});
