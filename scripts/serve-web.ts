// Serves the demo page of web/ on 127.0.0.1: the page, its bundle (built
// with esbuild when the server starts, with the same options as the
// library's browser bundle), the embedded IXI scans under /data/ and a
// model folder under /model/.
//
//   npm run web -- [--port N] [--model DIR]
//
// --port 0 (the default) takes a free port. --model defaults to
// runs/demo/model, the folder `npm run demo` writes, when it exists. The
// server binds to the loopback address only and serves GET and HEAD
// requests for a fixed set of files: nothing outside web/, data/ixi-brain/
// and the model folder's known files is reachable.

import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import {
  createServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { browserBuildOptions } from './build-web.js';
import { decodeDescriptor, MODEL_FILES } from '../src/pipeline/model-folder.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const WEB_FOLDER = join(ROOT, 'web');
const DATA_FOLDER = join(ROOT, 'data', 'ixi-brain');

/** The model folder `npm run demo` writes, served when --model is not given. */
export const DEFAULT_MODEL_FOLDER = join(ROOT, 'runs', 'demo', 'model');

/** The loopback address the server binds to; it never listens elsewhere. */
export const HOST = '127.0.0.1';

/**
 * Files of a model folder that the page may fetch. train-state.safetensors
 * is left out: the page never resumes training from it, and it is about
 * three times the size of the weights.
 */
export const SERVED_MODEL_FILES = [
  'model.json',
  'model.safetensors',
  'atlas.nii.gz',
  'atlas-labels.nii.gz',
  'atlas-regions.nii.gz',
  'losses.json',
] as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.gz': 'application/gzip',
  '.nii': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

export interface WebServerOptions {
  /** TCP port; 0 takes a free one. */
  port?: number;
  /** Model folder served under /model/, or null to serve none. */
  model?: string | null;
  /** Called with one line per start, stop and failed request. */
  log?: (line: string) => void;
}

export interface WebServer {
  /** The page's address, such as http://127.0.0.1:41234/. */
  url: string;
  /** The model folder served under /model/, or null. */
  model: string | null;
  close(): Promise<void>;
}

/** Bundles web/main.ts in memory; returns the files by URL path. */
export async function buildPageBundle(): Promise<Map<string, Uint8Array>> {
  const result = await build({
    ...browserBuildOptions(),
    entryPoints: ['web/main.ts'],
    outfile: 'dist/web/main.js',
    write: false,
  });
  const files = new Map<string, Uint8Array>();
  for (const file of result.outputFiles) {
    files.set('/' + file.path.split(sep).pop(), file.contents);
  }
  if (!files.has('/main.js')) {
    throw new Error('serve-web: esbuild returned no main.js for web/main.ts');
  }
  return files;
}

/**
 * Resolves `relative` inside `folder`, or returns null when it names a
 * path outside it (such as one with `..` segments).
 */
function insideFolder(folder: string, relative: string): string | null {
  const path = normalize(join(folder, relative));
  return path.startsWith(folder + sep) ? path : null;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

interface Route {
  /** File to send, or bytes already in memory. */
  file?: string;
  bytes?: Uint8Array;
  type: string;
}

function typeOf(path: string): string {
  return CONTENT_TYPES[extname(path)] ?? 'application/octet-stream';
}

/** Lists which of SERVED_MODEL_FILES the model folder has, as JSON. */
async function modelListing(model: string | null): Promise<Uint8Array> {
  const files: string[] = [];
  if (model) {
    for (const name of SERVED_MODEL_FILES) {
      if (await isFile(join(model, name))) files.push(name);
    }
  }
  const listing = { folder: model, files };
  return new TextEncoder().encode(JSON.stringify(listing) + '\n');
}

async function route(
  path: string,
  bundle: Map<string, Uint8Array>,
  model: string | null,
): Promise<Route | null> {
  if (path === '/' || path === '/index.html') {
    return { file: join(WEB_FOLDER, 'index.html'), type: typeOf('index.html') };
  }
  const bundled = bundle.get(path);
  if (bundled) return { bytes: bundled, type: typeOf(path) };
  if (path === '/model/files.json') {
    return { bytes: await modelListing(model), type: typeOf('files.json') };
  }
  if (path.startsWith('/model/')) {
    const name = path.slice('/model/'.length);
    const known = (SERVED_MODEL_FILES as readonly string[]).includes(name);
    if (!model || !known) return null;
    const file = join(model, name);
    return (await isFile(file)) ? { file, type: typeOf(file) } : null;
  }
  if (path.startsWith('/data/')) {
    const file = insideFolder(DATA_FOLDER, path.slice('/data/'.length));
    return file && (await isFile(file)) ? { file, type: typeOf(file) } : null;
  }
  return null;
}

function send(
  response: ServerResponse,
  status: number,
  type: string,
  body: Uint8Array | string,
  headOnly: boolean,
): void {
  const bytes =
    typeof body === 'string' ? new TextEncoder().encode(body) : body;
  response.writeHead(status, {
    'content-type': type,
    'content-length': bytes.length,
    // The page and the model change between runs; never serve stale ones.
    'cache-control': 'no-store',
  });
  response.end(headOnly ? undefined : bytes);
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  bundle: Map<string, Uint8Array>,
  model: string | null,
  log: (line: string) => void,
): Promise<void> {
  const method = request.method ?? 'GET';
  const text = 'text/plain; charset=utf-8';
  if (method !== 'GET' && method !== 'HEAD') {
    log(`serve-web: 405 ${method} ${request.url}`);
    send(response, 405, text, `${method} is not allowed; use GET\n`, false);
    return;
  }
  const headOnly = method === 'HEAD';
  let path: string;
  try {
    const url = new URL(request.url ?? '/', 'http://host');
    path = decodeURIComponent(url.pathname);
  } catch {
    log(`serve-web: 400 ${method} ${request.url} (invalid URL encoding)`);
    send(response, 400, text, 'invalid URL encoding\n', headOnly);
    return;
  }
  const found = await route(path, bundle, model);
  if (!found) {
    log(`serve-web: 404 ${method} ${path}`);
    send(response, 404, text, `not found: ${path}\n`, headOnly);
    return;
  }
  const body = found.bytes ?? new Uint8Array(await readFile(found.file!));
  send(response, 200, found.type, body, headOnly);
}

/** Returns the model folder to serve: the given one, else the demo's. */
export function chooseModelFolder(
  given: string | null | undefined,
): string | null {
  if (given === null) return null;
  if (given !== undefined) return resolve(given);
  return existsSync(DEFAULT_MODEL_FOLDER) ? DEFAULT_MODEL_FOLDER : null;
}

/**
 * Throws when the served model folder lacks a file the page needs or its
 * model.json cannot be read, so the server does not start with a folder
 * that every page would then reject.
 */
async function checkServedModel(model: string): Promise<void> {
  const required = [MODEL_FILES.descriptor, MODEL_FILES.weights, MODEL_FILES.atlas, MODEL_FILES.atlasLabels];
  const missing = required.filter((name) => !existsSync(join(model, name)));
  if (missing.length > 0) {
    throw new Error(
      `serve-web: --model ${model} lacks ${missing.join(', ')}; copy the whole folder that ` +
        '`rrl-medsam train --out` or `npm run demo` wrote, or pass --no-model',
    );
  }
  const path = join(model, MODEL_FILES.descriptor);
  try {
    decodeDescriptor(path, new Uint8Array(await readFile(path)));
  } catch (error) {
    throw new Error(`serve-web: --model ${(error as Error).message}`, { cause: error });
  }
}

/** Builds the page bundle and starts serving on 127.0.0.1. */
export async function startWebServer(
  options: WebServerOptions = {},
): Promise<WebServer> {
  const log = options.log ?? (() => {});
  const model = chooseModelFolder(options.model);
  if (model && !existsSync(model)) {
    throw new Error(
      `serve-web: --model ${model} does not exist; pass the folder that ` +
        '`rrl-medsam train --out` or `npm run demo` wrote',
    );
  }
  if (model && !existsSync(join(model, 'model.json'))) {
    throw new Error(
      `serve-web: --model ${model} is not a model folder (it has no ` +
        'model.json); pass the folder that `rrl-medsam train --out` or ' +
        '`npm run demo` wrote, or --no-model to serve none',
    );
  }
  if (model) await checkServedModel(model);
  const bundle = await buildPageBundle();
  const server = createServer((request, response) => {
    handle(request, response, bundle, model, log).catch((error: unknown) => {
      const what = `${request.method} ${request.url}`;
      log(`serve-web: ${what} failed: ${String(error)}`);
      if (!response.headersSent) {
        send(response, 500, 'text/plain', `${String(error)}\n`, false);
      } else {
        response.destroy();
      }
    });
  });
  await new Promise<void>((done, fail) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE') {
        fail(error);
        return;
      }
      fail(
        new Error(
          `serve-web: port ${options.port} on ${HOST} is already in use; ` +
            'pass another --port, or --port 0 for a free one',
        ),
      );
    });
    server.listen(options.port ?? 0, HOST, () => done());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${HOST}:${port}/`;
  log(`serve-web: serving ${url} (model folder: ${model ?? 'none'})`);
  return {
    url,
    model,
    close: () =>
      new Promise<void>((done, fail) => {
        server.closeAllConnections();
        server.close((error) => (error ? fail(error) : done()));
        log('serve-web: stopped');
      }),
  };
}

const USAGE =
  'usage: npm run web -- [--port N] [--model DIR | --no-model]\n' +
  '  --port N     TCP port on 127.0.0.1 (default 0: a free port)\n' +
  '  --model DIR  model folder served under /model/ (default ' +
  'runs/demo/model when it exists)\n' +
  '  --no-model   serve no model folder, as on a fresh clone\n';

/** Parses the command line; throws with the usage text on bad flags. */
export function parseServeArgs(argv: readonly string[]): WebServerOptions {
  const options: WebServerOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--no-model') {
      options.model = null;
      continue;
    }
    const value = argv[i + 1];
    if ((flag !== '--port' && flag !== '--model') || value === undefined) {
      throw new Error(
        `serve-web: unknown flag or missing value: ${flag}\n${USAGE}`,
      );
    }
    i += 1;
    if (flag === '--model') {
      options.model = value;
      continue;
    }
    const port = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(
        `serve-web: --port ${value} is not a port number (0..65535)`,
      );
    }
    options.port = port;
  }
  return options;
}

const isMain = process.argv[1] === fileURLToPath(import.meta.url);
if (isMain) {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  let options: WebServerOptions;
  try {
    options = parseServeArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  const log = (line: string) => process.stderr.write(line + '\n');
  let server: WebServer;
  try {
    server = await startWebServer({ ...options, log });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
  // The URL is the server's only line on stdout, so scripts can read it
  // (`npm run web` adds npm's own lines before it; `npx tsx
  // scripts/serve-web.ts` does not).
  process.stdout.write(`${server.url}\n`);
  process.once('SIGINT', () => {
    void server.close().then(() => process.exit(0));
  });
}
