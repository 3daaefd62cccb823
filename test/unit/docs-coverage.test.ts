/**
 * Every public export of `tfjs-transfer` and `tfjs-transfer/node` has a doc comment, every exported function an
 * `@example`, and every member of an exported interface, class or constant object (inline object types
 * included) a doc comment: what typedoc's `notDocumented` validation checks for `npm run docs`, read here with
 * the TypeScript compiler API (a few seconds, no HTML). Runs once, in the wasm project.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const entries = ['src/index.ts', 'src/node/index.ts'];
const run = process.env.TFJS_TRANSFER_TEST_BACKEND === 'cpu' ? describe.skip : describe;

/**
 * Undocumented members in files under active edit when this test was written, by `Export.member.path`. Remove an
 * entry once it is documented; nothing new may be added here.
 */
const KNOWN_GAPS = new Set<string>([]);

/** Exported functions without an `@example` in files under active edit (same rule as {@link KNOWN_GAPS}). */
const KNOWN_MISSING_EXAMPLES = new Set<string>([]);

interface Finding {
  missingDoc: string[];
  missingExample: string[];
  exports: number;
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
  const out: Finding = { missingDoc: [], missingExample: [], exports: 0 };
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
      out.exports++;
      const name = exported.getName();
      const declarations = symbol.getDeclarations() ?? [];
      if (declarations.length === 0) continue;
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
  return out;
}

run('API documentation coverage', () => {
  const found = scan();

  test('the entries export the public API', () => {
    expect(found.exports).toBeGreaterThan(80);
  });

  test('every public export and member has a doc comment', () => {
    const missing = found.missingDoc.filter((m) => !KNOWN_GAPS.has(m));
    expect(missing, `add a /** doc comment */ to: ${missing.join(', ')}`).toEqual([]);
  });

  test('every exported function has an @example', () => {
    const missing = found.missingExample.filter((m) => !KNOWN_MISSING_EXAMPLES.has(m));
    expect(missing, `add an @example to: ${missing.join(', ')}`).toEqual([]);
  });

  test('the list of known gaps only names real gaps', () => {
    const fixed = [
      ...[...KNOWN_GAPS].filter((g) => !found.missingDoc.includes(g)),
      ...[...KNOWN_MISSING_EXAMPLES].filter((g) => !found.missingExample.includes(g)),
    ];
    if (fixed.length) console.info(`docs-coverage: documented now, remove from KNOWN_GAPS: ${fixed.join(', ')}`);
    expect(KNOWN_GAPS.size + KNOWN_MISSING_EXAMPLES.size).toBeLessThanOrEqual(15);
  });
});
