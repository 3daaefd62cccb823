/**
 * The library's browser entry (src/index.ts) bundled for the browser reaches no Node built-in (fs, path,
 * worker_threads, node:*), and none of src/node/. Bundled with Vite (Rollup) in library mode, TensorFlow.js
 * external; a resolver hook records every import of a built-in, whoever imports it.
 */
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { relative } from 'node:path';
import { describe, test } from 'node:test';
import { build, type Plugin, type Rollup } from 'vite';
import { repo } from './harness';

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function isBuiltin(id: string): boolean {
  return id.startsWith('node:') || BUILTINS.has(id) || BUILTINS.has(id.split('/')[0]!);
}

async function bundle(entry: string): Promise<{ builtins: string[]; modules: string[]; code: string; error?: unknown }> {
  const builtins: string[] = [];
  const spy: Plugin = {
    name: 'record-node-builtins',
    enforce: 'pre',
    resolveId(id, importer) {
      if (isBuiltin(id)) builtins.push(`${id} (imported by ${importer ? relative(repo, importer) : '?'})`);
      return null;
    },
  };
  let out: Rollup.RollupOutput[];
  try {
    out = (await build({
      configFile: false,
      logLevel: 'silent',
      root: repo,
      plugins: [spy],
      build: {
        write: false,
        minify: false,
        target: 'es2022',
        lib: { entry, formats: ['es'], fileName: 'index' },
        rollupOptions: { external: [/^@tensorflow\//] },
      },
    })) as Rollup.RollupOutput[];
  } catch (error) {
    // Bundling Node code for the browser may also fail outright; what was recorded still counts.
    return { builtins, modules: [], code: '', error };
  }
  const chunks = out.flatMap((o) => o.output).filter((c): c is Rollup.OutputChunk => c.type === 'chunk');
  return {
    builtins,
    modules: chunks.flatMap((c) => Object.keys(c.modules)).map((m) => relative(repo, m)),
    code: chunks.map((c) => c.code).join('\n'),
  };
}

describe('browser bundle', () => {
  test('src/index.ts bundles for the browser with no Node built-in', { timeout: 120_000 }, async () => {
    const { builtins, modules, code, error } = await bundle('src/index.ts');
    assert.equal(error, undefined, `bundling src/index.ts for the browser failed: ${String(error)}`);
    assert.deepEqual(builtins, [], `the browser entry reaches Node built-ins:\n${builtins.join('\n')}`);
    const nodeOnly = modules.filter((m) => m.startsWith('src/node/') || m.startsWith('src/cli/'));
    assert.deepEqual(nodeOnly, [], 'the browser entry pulls in Node-only modules');
    assert.ok(modules.includes('src/index.ts') && modules.length > 20, `unexpected module list: ${modules.join(', ')}`);
    const imports = [...code.matchAll(/(?:^|\n)\s*import\s[^;]*?from\s*["']([^"']+)["']/g)].map((m) => m[1]!);
    const bad = imports.filter((s) => !s.startsWith('@tensorflow/'));
    assert.deepEqual(bad, [], `the bundle imports something other than TensorFlow.js: ${bad.join(', ')}`);
    assert.doesNotMatch(code, /\brequire\(\s*["'](?:node:)?(?:fs|path|worker_threads|crypto|os|url|util)["']\s*\)/);
  });

  // Control: the same check on the Node entry must report built-ins, or the check above proves nothing.
  test('the check itself catches a Node built-in (control)', { timeout: 60_000 }, async () => {
    const { builtins } = await bundle('src/node/index.ts');
    console.log(`control: ${builtins.length} built-in imports found, e.g. ${builtins[0]}`);
    assert.ok(builtins.length > 0, 'bundling the Node entry should have reported built-ins');
  });
});
