/**
 * Every public export of `tfjs-transfer`, `tfjs-transfer/node` and `tfjs-transfer/onnx` has a doc comment, every exported function an
 * `@example`, and every member of an exported interface, class or constant object (inline object types
 * included) a doc comment: what typedoc's `notDocumented` validation checks for `npm run docs`, read here with
 * the TypeScript compiler API (a few seconds, no HTML). The entries export exactly the names docs/api.md lists
 * (the node-only ones marked **(node)**, the onnx entry's **(onnx)**), no export is `@internal`, and each symbol's own `@category` tag, where
 * it has one, is the heading docs/api.md lists it under (typedoc-categories.mjs gives the others that heading).
 * Runs once, in the wasm project.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const entries = ['src/index.ts', 'src/node/index.ts', 'src/onnx/index.ts'];
const run = process.env.TFJS_TRANSFER_TEST_BACKEND === 'cpu' ? describe.skip : describe;

/** The categories of the API reference (the BRIEF's list), in typedoc.json's `categoryOrder`. */
const CATEGORIES = [
  'All five steps',
  'Step 1: Examine',
  'Step 2: Pipeline',
  'Step 3: Compose',
  'Step 4: Train',
  'Step 5: Evaluate',
  'Save and load',
  'Web Worker',
  'Caches',
  'Environment',
  'Errors',
  'Node',
  'Advanced',
];

interface Finding {
  missingDoc: string[];
  missingExample: string[];
  /** Exported names of the main entry. */
  main: string[];
  /** Names only the Node entry exports. */
  nodeOnly: string[];
  /** Names of the ONNX entry. */
  onnx: string[];
  /** `name -> category` of the exports that carry their own `@category` tag. */
  tagged: Map<string, string>;
}

interface ApiDoc {
  headings: string[];
  /** `name -> heading` of every listed name. */
  category: Map<string, string>;
  main: string[];
  nodeOnly: string[];
  onnx: string[];
  duplicates: string[];
}

/**
 * Reads docs/api.md: `## <category>` headings, then `` - `name` `` lines, `**(node)**` marking the Node-only names and
 * `**(onnx)**` those of `tfjs-transfer/onnx`.
 */
function readApiDoc(): ApiDoc {
  const doc: ApiDoc = { headings: [], category: new Map(), main: [], nodeOnly: [], onnx: [], duplicates: [] };
  for (const line of readFileSync(path.join(repo, 'docs/api.md'), 'utf8').split('\n')) {
    const heading = /^## (.+)$/.exec(line);
    if (heading) doc.headings.push(heading[1]!.trim());
    const item = /^- `([A-Za-z_$][\w$]*)`( \*\*\((node|onnx)\)\*\*)?/.exec(line);
    if (!item) continue;
    const name = item[1]!;
    if (doc.category.has(name)) doc.duplicates.push(name);
    doc.category.set(name, doc.headings.at(-1) ?? '(no heading)');
    (item[3] === 'node' ? doc.nodeOnly : item[3] === 'onnx' ? doc.onnx : doc.main).push(name);
  }
  doc.main.sort();
  doc.nodeOnly.sort();
  doc.onnx.sort();
  return doc;
}

function categoryTags(declarations: readonly ts.Node[]): string[] {
  return declarations.flatMap((d) =>
    ts
      .getJSDocTags(ts.isVariableDeclaration(d) ? d.parent.parent : d)
      .filter((t) => t.tagName.text === 'category')
      .map((t) => (ts.getTextOfJSDocComment(t.comment) ?? '').trim()),
  );
}

function isInternal(node: ts.Node): boolean {
  return ts.getJSDocTags(node).some((t) => t.tagName.text === 'internal');
}

function hasDoc(node: ts.Node): boolean {
  // Variable statements carry the comment; the declaration node does not.
  const target = ts.isVariableDeclaration(node) ? node.parent.parent : node;
  return ts.getJSDocCommentsAndTags(target).some((d) => (ts.isJSDoc(d) ? Boolean(d.comment) || (d.tags?.length ?? 0) > 0 : true));
}

function hasExample(node: ts.Node): boolean {
  return ts.getJSDocTags(node).some((t) => t.tagName.text === 'example');
}

function memberName(m: ts.Node): string | undefined {
  const name = (m as { name?: ts.PropertyName }).name;
  if (!name) return undefined;
  if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isPrivateIdentifier(name)) return name.text;
  return name.getText();
}

function isPrivate(m: ts.Node): boolean {
  const mods = ts.canHaveModifiers(m) ? ts.getModifiers(m) : undefined;
  return Boolean(mods?.some((x) => x.kind === ts.SyntaxKind.PrivateKeyword || x.kind === ts.SyntaxKind.ProtectedKeyword)) || (memberName(m)?.startsWith('#') ?? false);
}

/** Type literals reachable from a member's type annotation (`{ ... }`, `{ ... } & X`, `(...) => Promise<{ ... }>`, `A | { ... }`). */
function typeLiterals(type: ts.TypeNode | undefined): ts.TypeLiteralNode[] {
  if (!type) return [];
  if (ts.isTypeLiteralNode(type)) return [type];
  if (ts.isUnionTypeNode(type) || ts.isIntersectionTypeNode(type)) return type.types.flatMap(typeLiterals);
  if (ts.isParenthesizedTypeNode(type)) return typeLiterals(type.type);
  if (ts.isFunctionTypeNode(type)) return typeLiterals(type.type);
  if (ts.isTypeReferenceNode(type) && type.typeName.getText() === 'Promise') return (type.typeArguments ?? []).flatMap(typeLiterals);
  return [];
}

/** Whether a base type of `owner` documents the member `name` (typedoc shows the inherited comment). */
function inheritsDoc(checker: ts.TypeChecker, owner: ts.Node | undefined, name: string): boolean {
  if (!owner || !(ts.isInterfaceDeclaration(owner) || ts.isClassDeclaration(owner))) return false;
  const type = checker.getTypeAtLocation(owner);
  const bases = type.isClassOrInterface() ? checker.getBaseTypes(type) : [];
  return bases.some((base) => (base.getProperty(name)?.getDocumentationComment(checker).length ?? 0) > 0);
}

function checkMembers(checker: ts.TypeChecker, owner: string, members: readonly ts.Node[], out: Finding, parent?: ts.Node): void {
  for (const m of members) {
    if (isPrivate(m) || isInternal(m)) continue;
    if (ts.isConstructorDeclaration(m) || ts.isIndexSignatureDeclaration(m) || ts.isClassStaticBlockDeclaration(m)) continue;
    const name = memberName(m);
    if (!name) continue;
    const where = `${owner}.${name}`;
    if (!hasDoc(m) && !inheritsDoc(checker, parent, name)) out.missingDoc.push(where);
    const type = (m as { type?: ts.TypeNode }).type;
    // Methods' and function-typed properties' return types are documented by their parent's comment.
    const literals = ts.isMethodSignature(m) || ts.isMethodDeclaration(m) ? [] : typeLiterals(type);
    for (const lit of literals) checkMembers(checker, where, lit.members, out);
    if (ts.isPropertyAssignment(m) && ts.isObjectLiteralExpression(stripAsConst(m.initializer))) {
      checkMembers(checker, where, (stripAsConst(m.initializer) as ts.ObjectLiteralExpression).properties, out);
    }
  }
}

function stripAsConst(e: ts.Expression): ts.Expression {
  while (ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isParenthesizedExpression(e)) e = e.expression;
  return e;
}

function scan(): Finding {
  const configPath = path.join(repo, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, repo);
  const program = ts.createProgram(
    entries.map((e) => path.join(repo, e)),
    { ...parsed.options, noEmit: true },
  );
  const checker = program.getTypeChecker();
  const out: Finding = { missingDoc: [], missingExample: [], main: [], nodeOnly: [], onnx: [], tagged: new Map() };
  const seen = new Set<ts.Symbol>();
  for (const entry of entries) {
    const file = program.getSourceFile(path.join(repo, entry));
    if (!file) throw new Error(`cannot read ${entry}`);
    const moduleSymbol = checker.getSymbolAtLocation(file);
    if (!moduleSymbol) throw new Error(`${entry} is not a module`);
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      if (seen.has(symbol)) continue;
      seen.add(symbol);
      const name = exported.getName();
      (entry === entries[0] ? out.main : entry === entries[1] ? out.nodeOnly : out.onnx).push(name);
      const declarations = symbol.getDeclarations() ?? [];
      if (declarations.length === 0) continue;
      for (const tag of categoryTags(declarations)) out.tagged.set(name, tag);
      if (!declarations.some(hasDoc)) out.missingDoc.push(name);
      if (declarations.some(isInternal)) out.missingDoc.push(`${name} (exported but @internal)`);
      for (const d of declarations) {
        if (ts.isFunctionDeclaration(d) && d.body && !hasExample(d) && !declarations.some((o) => o !== d && hasExample(o))) {
          out.missingExample.push(name);
        }
        // Inline object types in a function's return type are documented members too (typedoc lists them).
        if (ts.isFunctionDeclaration(d)) for (const lit of typeLiterals(d.type)) checkMembers(checker, name, lit.members, out);
        if (ts.isInterfaceDeclaration(d) || ts.isClassDeclaration(d)) checkMembers(checker, name, d.members, out, d);
        if (ts.isTypeAliasDeclaration(d)) for (const lit of typeLiterals(d.type)) checkMembers(checker, name, lit.members, out);
        if (ts.isVariableDeclaration(d) && d.initializer && ts.isObjectLiteralExpression(stripAsConst(d.initializer)) && !d.type) {
          checkMembers(checker, name, (stripAsConst(d.initializer) as ts.ObjectLiteralExpression).properties, out);
        }
      }
    }
  }
  out.missingDoc = [...new Set(out.missingDoc)].sort();
  out.missingExample = [...new Set(out.missingExample)].sort();
  out.main.sort();
  out.nodeOnly.sort();
  out.onnx.sort();
  return out;
}

run('API documentation coverage', () => {
  const found = scan();
  const doc = readApiDoc();

  test('every public export and member has a doc comment', () => {
    expect(found.missingDoc, `add a /** doc comment */ to: ${found.missingDoc.join(', ')}`).toEqual([]);
  });

  test('every exported function has an @example', () => {
    expect(found.missingExample, `add an @example to: ${found.missingExample.join(', ')}`).toEqual([]);
  });

  test('docs/api.md lists exactly what tfjs-transfer exports', () => {
    expect(found.main.length).toBeGreaterThan(50);
    expect({ undocumented: found.main.filter((n) => !doc.main.includes(n)), notExported: doc.main.filter((n) => !found.main.includes(n)) }).toEqual({
      undocumented: [],
      notExported: [],
    });
  });

  test('docs/api.md lists exactly what tfjs-transfer/node adds, marked **(node)**', () => {
    expect(found.nodeOnly.length).toBeGreaterThan(0);
    expect({ undocumented: found.nodeOnly.filter((n) => !doc.nodeOnly.includes(n)), notExported: doc.nodeOnly.filter((n) => !found.nodeOnly.includes(n)) }).toEqual({
      undocumented: [],
      notExported: [],
    });
  });

  test('docs/api.md lists exactly what tfjs-transfer/onnx exports, marked **(onnx)**', () => {
    expect(found.onnx.length).toBeGreaterThan(0);
    expect({ undocumented: found.onnx.filter((n) => !doc.onnx.includes(n)), notExported: doc.onnx.filter((n) => !found.onnx.includes(n)) }).toEqual({
      undocumented: [],
      notExported: [],
    });
  });

  test("docs/api.md's headings are the reference's categories, in typedoc.json's order, each name listed once", () => {
    expect(doc.headings).toEqual(CATEGORIES);
    expect(doc.duplicates).toEqual([]);
    const order = (JSON.parse(readFileSync(path.join(repo, 'typedoc.json'), 'utf8')) as { categoryOrder: string[] }).categoryOrder;
    expect(order.filter((c) => c !== '*')).toEqual(CATEGORIES);
  });

  test('a symbol that carries its own @category tag is listed under that heading', () => {
    const disagreeing = [...found.tagged].filter(([name, tag]) => doc.category.get(name) !== tag).map(([name, tag]) => `${name}: @category ${tag}, docs/api.md ${doc.category.get(name)}`);
    expect(disagreeing).toEqual([]);
  });
});
