// The browser bundle (scripts/build-web.ts) contains no Node built-in, no
// Dawn and no Node-only module of the library, and embeds every kernel.
// Node-only: esbuild runs in Node (vitest.config.ts leaves this file out of
// the browser project).

import { builtinModules } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Metafile } from 'esbuild';
import {
  buildBrowserBundle,
  type BrowserBundle,
} from '../scripts/build-web.js';
import { WGSL_SOURCES } from '../src/kernels/wgsl.generated.js';

const NODE_BUILTINS = new Set(
  builtinModules.flatMap((name) => [name, `node:${name}`]),
);

let bundle: BrowserBundle;

beforeAll(async () => {
  bundle = await buildBrowserBundle();
});

/** Lists every import that a bundled file makes, with the importing file. */
function imports(metafile: Metafile): { from: string; path: string }[] {
  return Object.entries(metafile.inputs).flatMap(([from, input]) =>
    input.imports.map((entry) => ({ from, path: entry.path })),
  );
}

/** Returns each match of `pattern` with 40 characters of context. */
function occurrences(code: string, pattern: RegExp): string[] {
  const global = new RegExp(pattern.source, 'g');
  return [...code.matchAll(global)].map((match) =>
    code.slice(Math.max(0, match.index - 40), match.index + 40),
  );
}

// esbuild prints strings as JSON does, except that it escapes non-ASCII.
function asPrinted(text: string): string {
  return JSON.stringify(text).replace(
    /[\u0080-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

describe('browser bundle', () => {
  it('imports no Node built-in', () => {
    const found = imports(bundle.metafile).filter(
      (entry) => NODE_BUILTINS.has(entry.path) || entry.path.startsWith('node:'),
    );
    expect(found).toEqual([]);
  });

  it('leaves no import unbundled', () => {
    const external = Object.values(bundle.metafile.inputs).flatMap((input) =>
      input.imports.filter((entry) => entry.external),
    );
    expect(external).toEqual([]);
  });

  it('contains no webgpu package', () => {
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.filter((path) => path.includes('node_modules/webgpu/')))
      .toEqual([]);
    expect(imports(bundle.metafile).filter((e) => e.path === 'webgpu'))
      .toEqual([]);
    expect(occurrences(bundle.code, /\bimport\s*\(/)).toEqual([]);
  });

  it('uses the browser GPU entry point', () => {
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs).toContain('src/gpu-entry.browser.ts');
    expect(inputs).not.toContain('src/gpu-entry.ts');
  });

  it('leaves out the Node-only modules', () => {
    const inputs = Object.keys(bundle.metafile.inputs);
    const nodeOnly = inputs.filter(
      (path) =>
        path === 'src/node.ts' ||
        path.startsWith('src/cli/') ||
        /-file\.ts$/.test(path) ||
        path === 'src/pipeline/teacher-cache.ts',
    );
    expect(nodeOnly).toEqual([]);
  });

  it('refers to no Node global', () => {
    const code = bundle.code;
    expect(occurrences(code, /\bprocess\.|\btypeof process\b/)).toEqual([]);
    expect(occurrences(code, /\brequire\s*\(/)).toEqual([]);
    expect(occurrences(code, /\b__dirname\b|\b__filename\b/)).toEqual([]);
    expect(occurrences(code, /(?<![\w.])Buffer\.(from|alloc|concat)/))
      .toEqual([]);
  });

  it('embeds every kernel as in Node', () => {
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs).toContain('src/kernels/wgsl.generated.ts');
    const names = Object.keys(WGSL_SOURCES);
    expect(names.length).toBeGreaterThan(0);
    const missing = names.filter((name) => {
      const entry = `${JSON.stringify(name)}: ${asPrinted(WGSL_SOURCES[name])}`;
      return !bundle.code.includes(entry);
    });
    expect(missing).toEqual([]);
  });
});
