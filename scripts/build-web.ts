// Builds the browser ESM bundle of the library, dist/browser/rrl-medsam.js,
// from src/index.ts with esbuild. The kernels come from the same generated
// module as in Node (src/kernels/wgsl.generated.ts, written by
// `npm run kernels`), and the `browser` field of package.json swaps
// src/gpu-entry.ts for src/gpu-entry.browser.ts, so neither Dawn nor any
// Node built-in is reachable from the bundle. Node-only code (file I/O,
// the CLI) lives behind src/node.ts and is never imported from index.ts.
//
// Run with `npm run build:web`; test/browser-bundle.test.ts builds the same
// bundle in memory and checks its metafile.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  build,
  type BuildOptions,
  type Metafile,
  type OutputFile,
} from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Output path of the bundle, relative to the repository root. */
export const BROWSER_BUNDLE = 'dist/browser/rrl-medsam.js';

/** esbuild options of the browser bundle (paths relative to the root). */
export function browserBuildOptions(): BuildOptions {
  return {
    absWorkingDir: ROOT,
    entryPoints: ['src/index.ts'],
    outfile: BROWSER_BUNDLE,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // WebGPU browsers (Chrome 113+, Safari 26+, Firefox 141+) all run
    // ES2022, which the TypeScript sources also target.
    target: 'es2022',
    // Browsers have no `process`. The library reads process.env only behind
    // `typeof process` guards (log.ts, kernels/tuning.ts), which this folds
    // to false, so no reference to the Node global is left in the bundle.
    define: { process: 'undefined' },
    sourcemap: true,
    metafile: true,
    logLevel: 'silent',
  };
}

export interface BrowserBundle {
  /** The bundled JavaScript. */
  code: string;
  metafile: Metafile;
  /** Every output file (bundle and source map), not yet written. */
  outputs: OutputFile[];
}

/** Builds the bundle in memory, writing nothing. */
export async function buildBrowserBundle(): Promise<BrowserBundle> {
  const result = await build({ ...browserBuildOptions(), write: false });
  const bundle = result.outputFiles.find((file) => file.path.endsWith('.js'));
  if (!bundle || !result.metafile) {
    throw new Error(`build-web: esbuild returned no ${BROWSER_BUNDLE}`);
  }
  return {
    code: bundle.text,
    metafile: result.metafile,
    outputs: result.outputFiles,
  };
}

/** Builds the bundle and writes it, its source map and its metafile. */
export async function writeBrowserBundle(): Promise<Metafile> {
  const { metafile, outputs } = await buildBrowserBundle();
  for (const file of outputs) {
    await mkdir(dirname(file.path), { recursive: true });
    await writeFile(file.path, file.contents);
  }
  const metafilePath = join(ROOT, dirname(BROWSER_BUNDLE), 'meta.json');
  await writeFile(metafilePath, JSON.stringify(metafile));
  return metafile;
}

const isMain = process.argv[1] === fileURLToPath(import.meta.url);
if (isMain) {
  const metafile = await writeBrowserBundle();
  for (const [path, output] of Object.entries(metafile.outputs)) {
    const kib = (output.bytes / 1024).toFixed(0);
    console.log(`build-web: ${path} (${kib} KiB)`);
  }
}
