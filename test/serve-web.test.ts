// The demo page's server: argument parsing and the start-up errors a user
// meets before any page loads. The page itself is tested in web-e2e.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST, parseServeArgs, startWebServer } from '../scripts/serve-web.js';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'rrl-medsam-serve-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('serve-web', () => {
  it('parses port and model flags', () => {
    expect(parseServeArgs(['--port', '8080', '--model', 'm'])).toEqual({
      port: 8080,
      model: 'm',
    });
    expect(parseServeArgs(['--no-model'])).toEqual({ model: null });
  });

  it('rejects ports that are not decimal', () => {
    for (const value of ['0x10', '', '1e3', '-1', '65536', '1.5']) {
      expect(() => parseServeArgs(['--port', value]), value).toThrow(
        `serve-web: --port ${value} is not a port number (0..65535)`,
      );
    }
  });

  it('rejects an empty folder as model', async () => {
    const empty = join(work, 'empty');
    await mkdir(empty);
    await expect(startWebServer({ model: empty })).rejects.toThrow(
      `serve-web: --model ${empty} is not a model folder (it has no model.json)`,
    );
  });

  it('rejects a file as model', async () => {
    const file = join(work, 'model.json');
    await writeFile(file, '{}');
    await expect(startWebServer({ model: file })).rejects.toThrow(
      `serve-web: --model ${file} is not a model folder (it has no model.json)`,
    );
  });

  it('rejects a model folder with files missing', async () => {
    const partial = join(work, 'partial');
    await mkdir(partial);
    await writeFile(join(partial, 'model.json'), '{}');
    await writeFile(join(partial, 'atlas.nii.gz'), '');
    await expect(startWebServer({ model: partial })).rejects.toThrow(
      `serve-web: --model ${partial} lacks model.safetensors, atlas-labels.nii.gz; copy the whole folder`,
    );
  });

  it('rejects a half-written model.json', async () => {
    const cut = join(work, 'cut');
    await mkdir(cut);
    for (const name of ['model.safetensors', 'atlas.nii.gz', 'atlas-labels.nii.gz']) await writeFile(join(cut, name), '');
    await writeFile(join(cut, 'model.json'), '{"format": "rrl-medsam-model/1", "con');
    await expect(startWebServer({ model: cut })).rejects.toThrow(
      `serve-web: --model ${join(cut, 'model.json')}: not valid JSON`,
    );
  });

  it('names a port already in use', async () => {
    const occupier: Server = createServer();
    await new Promise<void>((done) => occupier.listen(0, HOST, () => done()));
    const address = occupier.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      await expect(startWebServer({ model: null, port })).rejects.toThrow(
        `serve-web: port ${port} on ${HOST} is already in use; pass another --port, ` +
          'or --port 0 for a free one',
      );
    } finally {
      await new Promise<void>((done) => occupier.close(() => done()));
    }
  });
});
