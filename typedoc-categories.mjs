// @ts-check
/**
 * A typedoc plugin: gives each exported symbol that has no `@category` tag of its own the category of the heading
 * that lists it in docs/api.md, so the API reference is grouped by step from one table (the same one the
 * api-surface test checks against the entries' exports). A symbol's own `@category` tag wins (the test checks
 * that it agrees with docs/api.md). Within a category, symbols are listed in docs/api.md's order (the step's main
 * function first).
 */
import { readFileSync } from 'node:fs';
import { Comment, CommentTag, Converter, ReflectionKind } from 'typedoc';

/** `name -> category` from docs/api.md: `## <category>` headings, then `` - `name` `` lines. */
export function readApiCategories(file = 'docs/api.md') {
  const categories = new Map();
  let heading;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const h = /^## (.+)$/.exec(line);
    if (h) heading = h[1].trim();
    const item = /^- `([A-Za-z_$][\w$]*)`/.exec(line);
    if (item && heading) categories.set(item[1], heading);
  }
  return categories;
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const categories = readApiCategories();
    for (const reflection of context.project.getReflectionsByKind(ReflectionKind.SomeExport)) {
      if (!reflection.parent?.kindOf(ReflectionKind.SomeModule | ReflectionKind.Project)) continue;
      const category = categories.get(reflection.name);
      if (!category || !reflection.isDeclaration()) continue;
      const comments = [reflection.comment, ...reflection.getNonIndexSignatures().map((s) => s.comment)];
      if (comments.some((c) => c?.blockTags.some((t) => t.tag === '@category'))) continue;
      reflection.comment ??= new Comment();
      reflection.comment.blockTags.push(new CommentTag('@category', [{ kind: 'text', text: category }]));
    }
  });
  // After typedoc's CategoryPlugin (priority -200) has built the categories.
  app.converter.on(
    Converter.EVENT_RESOLVE_END,
    (context) => {
      const order = [...readApiCategories().keys()];
      const rank = (name) => (order.includes(name) ? order.indexOf(name) : order.length);
      const containers = [context.project, ...context.project.getReflectionsByKind(ReflectionKind.SomeModule)];
      for (const container of containers) {
        const categories = [...(container.categories ?? []), ...(container.groups ?? []).flatMap((g) => g.categories ?? [])];
        for (const category of categories) category.children.sort((a, b) => rank(a.name) - rank(b.name));
      }
    },
    -300,
  );
}
