/** The main entry must bundle for the browser with no Node built-in reachable from it. */
import { builtinModules } from 'node:module';
import { describe, expect, it } from 'vitest';
import { build } from 'esbuild';

describe('browser entry', () => {
  it('reaches no Node built-in (fs, path, worker_threads, crypto, ...)', async () => {
    const nodeImports: string[] = [];
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const result = await build({
      entryPoints: ['src/index.ts'],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      logLevel: 'silent',
      external: ['@tensorflow/*'],
      plugins: [
        {
          name: 'record-node-imports',
          setup(b) {
            b.onResolve({ filter: /.*/ }, (args) => {
              if (builtins.has(args.path) || args.path.startsWith('node:')) {
                nodeImports.push(`${args.path} (from ${args.importer})`);
                return { path: args.path, external: true };
              }
              return undefined;
            });
          },
        },
      ],
    });
    expect(result.errors).toEqual([]);
    expect(nodeImports).toEqual([]);
    const text = result.outputFiles[0]!.text;
    expect(text).not.toMatch(/require\(["'](fs|path|worker_threads|sharp)["']\)/);
    expect(text).not.toContain('sharp');
  });
});
