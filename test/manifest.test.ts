// Dataset manifests: parsing, validation with an in-memory loader, and the
// Node helper on the committed IXI manifest and on temporary files.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ManifestError,
  createVolume,
  loadStructureTable,
  parseManifest,
  validateManifest,
  writeNifti,
  type DatasetManifest,
  type Volume,
} from '../src/index.js';
import { loadManifest } from '../src/node.js';

const IXI_MANIFEST = fileURLToPath(
  new URL('../data/ixi-brain/manifest.json', import.meta.url),
);

/** Runs fn, asserts it rejects with a ManifestError, and returns it. */
async function manifestErrorOf(fn: () => Promise<unknown>): Promise<ManifestError> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ManifestError);
  return caught as ManifestError;
}

// A 3x4x5 scan at 1.5 mm whose labels are 0, 1 and 2 in thirds.
function scan(spacing = 1.5): { image: Volume; labels: Volume } {
  const dims = [3, 4, 5];
  const affine = Float64Array.of(
    spacing, 0, 0, 0, 0, spacing, 0, 0, 0, 0, spacing, 0, 0, 0, 0, 1,
  );
  const image = createVolume(
    Float32Array.from({ length: 60 }, (_, i) => 100 + i),
    dims,
    affine,
  );
  const labels = createVolume(
    Float32Array.from({ length: 60 }, (_, i) => i % 3),
    dims,
    affine,
  );
  return { image, labels };
}

const BASE: DatasetManifest = {
  atlas: { image: 'a.nii', labels: 'a-labels.nii' },
  train: ['t.nii'],
  test: [{ image: 'x.nii', labels: 'x-labels.nii' }],
};

function memoryLoader(files: Record<string, Volume>) {
  return (path: string) => {
    const volume = files[path];
    if (!volume) throw new Error(`file not found: ${path}`);
    return volume;
  };
}

function baseFiles(): Record<string, Volume> {
  const atlas = scan();
  const target = scan();
  return {
    'a.nii': atlas.image,
    'a-labels.nii': atlas.labels,
    't.nii': scan().image,
    'x.nii': target.image,
    'x-labels.nii': target.labels,
  };
}

describe('parseManifest', () => {
  it('accepts the minimal form', () => {
    const manifest = parseManifest(JSON.stringify(BASE));
    expect(manifest).toEqual(BASE);
    const withTable = parseManifest({ ...BASE, structures: 's.csv' });
    expect(withTable.structures).toBe('s.csv');
  });

  it('lists every shape problem', async () => {
    const error = await manifestErrorOf(async () =>
      parseManifest(
        { atlas: { image: 'a.nii' }, train: [3], test: {}, extra: 1 },
        'm.json',
      ),
    );
    expect(error.problems).toEqual([
      'atlas: expected { "image": path, "labels": path } with non-empty paths',
      'train: expected an array of non-empty path strings',
      'test: expected an array of { image, labels }',
      'extra: unknown field; expected atlas, train, test, structures',
    ]);
    expect(error.message).toMatch(/^m\.json: 4 problems:\n {2}- atlas: /);
  });

  it('rejects invalid JSON', async () => {
    const error = await manifestErrorOf(async () => parseManifest('{ "a": '));
    expect(error.message).toMatch(/^manifest: 1 problem:\n {2}- invalid JSON: /);
  });
});

describe('validateManifest', () => {
  it('reports scans and labels', async () => {
    const report = await validateManifest(BASE, memoryLoader(baseFiles()));
    expect(report.scans.map((entry) => entry.field)).toEqual([
      'atlas.image',
      'train[0]',
      'test[0].image',
    ]);
    expect(report.scans[0].spacingRas).toEqual([1.5, 1.5, 1.5]);
    expect(report.atlasLabels).toEqual([1, 2]);
    expect(report.scoredLabels).toEqual([1, 2]);
    expect(report.warnings).toEqual([]);
  });

  it('names a missing file', async () => {
    const files = baseFiles();
    delete files['x-labels.nii'];
    const error = await manifestErrorOf(() =>
      validateManifest(BASE, memoryLoader(files)),
    );
    expect(error.problems).toEqual([
      'test[0].labels (x-labels.nii): file not found: x-labels.nii',
    ]);
  });

  it('names NaN intensities', async () => {
    const files = baseFiles();
    files['t.nii'] = { ...files['t.nii'], data: files['t.nii'].data.slice() };
    files['t.nii'].data[3 + 3 * 4] = NaN;
    const error = await manifestErrorOf(() =>
      validateManifest(BASE, memoryLoader(files)),
    );
    expect(error.problems).toEqual([
      'train[0] (t.nii): intensity NaN at voxel (0, 1, 1) is not finite; ' +
        'replace NaN and infinite values (with 0, for example)',
    ]);
  });

  it('names non-integer labels', async () => {
    const files = baseFiles();
    const labels = files['a-labels.nii'];
    files['a-labels.nii'] = { ...labels, data: labels.data.slice() };
    files['a-labels.nii'].data[2 + 3 * (1 + 4 * 2)] = 1.5;
    const error = await manifestErrorOf(() =>
      validateManifest(BASE, memoryLoader(files)),
    );
    expect(error.problems).toEqual([
      'atlas.labels (a-labels.nii): value 1.5 at voxel (2, 1, 2) is not a ' +
        'non-negative integer label',
    ]);
  });

  it('lists labels the atlas lacks', async () => {
    const files = baseFiles();
    const labels = files['x-labels.nii'];
    const data = labels.data.slice();
    data[0] = 7;
    data[1] = 9;
    files['x-labels.nii'] = { ...labels, data };
    const manifest = {
      ...BASE,
      test: [...BASE.test, { image: 'x.nii', labels: 'x-labels.nii' }],
    };
    const error = await manifestErrorOf(() =>
      validateManifest(manifest, memoryLoader(files)),
    );
    expect(error.problems).toEqual([
      'atlas.labels (a-labels.nii) lacks labels [7, 9] that the test set is ' +
        'scored on (7 in test[0].labels, test[1].labels; 9 in ' +
        'test[0].labels, test[1].labels)',
    ]);
  });

  it('rejects labels on another grid', async () => {
    const files = baseFiles();
    files['x-labels.nii'] = scan(2).labels;
    const error = await manifestErrorOf(() =>
      validateManifest(BASE, memoryLoader(files)),
    );
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toContain(
      "test[0].labels (x-labels.nii): grid [3, 4, 5] with affine " +
        '[2 0 0 0; 0 2 0 0; 0 0 2 0] differs from its image',
    );
  });

  it('rejects scans that are not 3D', async () => {
    const files = baseFiles();
    files['t.nii'] = createVolume(new Float32Array(120), [3, 4, 5, 2]);
    const error = await manifestErrorOf(() =>
      validateManifest(BASE, memoryLoader(files)),
    );
    expect(error.problems).toEqual([
      'train[0] (t.nii): dims [3, 4, 5, 2] are not a 3D scan [nx, ny, nz]; extract the 3D volume first',
    ]);
  });

  it('collects several problems', async () => {
    const files = baseFiles();
    delete files['a.nii'];
    delete files['t.nii'];
    const error = await manifestErrorOf(() =>
      validateManifest(BASE, memoryLoader(files)),
    );
    expect(error.problems).toEqual([
      'atlas.image (a.nii): file not found: a.nii',
      'train[0] (t.nii): file not found: t.nii',
    ]);
    expect(error.message).toMatch(/^validateManifest: 2 problems:/);
  });

  it('warns on spacing and reuse', async () => {
    const files = baseFiles();
    files['t.nii'] = scan(3.5).image;
    const manifest = {
      ...BASE,
      test: [{ image: 'a.nii', labels: 'a-labels.nii' }],
    };
    const report = await validateManifest(manifest, memoryLoader(files));
    expect(report.warnings).toHaveLength(4);
    expect(report.warnings[0]).toBe(
      'spacing along R ranges from 1.50 mm (atlas.image) to 3.50 mm ' +
        '(train[0]), more than 1.5x; preprocessing resamples all scans to ' +
        'one grid, so detail finer than the coarsest scan is not recovered',
    );
    expect(report.warnings[3]).toBe(
      'test[0] is the atlas image, so its score is not held out',
    );
  });

  it('groups by structures', async () => {
    const table = loadStructureTable(
      'label,structure_id,structure\n1,1,A\n2,1,A\n',
    );
    const report = await validateManifest(BASE, memoryLoader(baseFiles()), {
      structures: table,
    });
    expect(report.atlasLabels).toEqual([1]);
    const files = baseFiles();
    const labels = files['x-labels.nii'];
    const data = labels.data.slice();
    data[4] = 5;
    files['x-labels.nii'] = { ...labels, data };
    const error = await manifestErrorOf(() =>
      validateManifest(BASE, memoryLoader(files), { structures: table }),
    );
    expect(error.problems).toEqual([
      'test[0].labels (x-labels.nii): groupLabels: label codes [5] are not ' +
        'in the structure table',
    ]);
  });
});

describe('loadManifest', () => {
  let directory = '';

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'rrl-manifest-'));
    const { image, labels } = scan();
    await writeFile(join(directory, 'a.nii'), writeNifti(image, { gzip: false }));
    await writeFile(
      join(directory, 'a-labels.nii'),
      writeNifti(labels, { gzip: false, labels: true }),
    );
  });

  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('IXI manifest validates', async () => {
    const loaded = await loadManifest(IXI_MANIFEST);
    expect(loaded.manifest.atlas.image).toBe('images/IXI012-HH-1211_t1.nii.gz');
    expect(loaded.manifest.train).toHaveLength(5);
    expect(loaded.manifest.test).toHaveLength(4);
    const report = loaded.report!;
    expect(report.scans).toHaveLength(10);
    for (const entry of report.scans) {
      expect(entry.dims, entry.field).toEqual([120, 120, 90]);
      expect(entry.spacingRas, entry.field).toEqual([2, 2, 2]);
    }
    // Grouped by structures.csv: all 42 structures in atlas and tests.
    const all = Array.from({ length: 42 }, (_, i) => i + 1);
    expect(report.atlasLabels).toEqual(all);
    expect(report.scoredLabels).toEqual(all);
    expect(report.warnings).toEqual([]);
    expect(loaded.structures!.names).toHaveLength(43);
    expect(loaded.path).toBe(IXI_MANIFEST);
    expect(loaded.resolve('images/x.nii')).toBe(
      join(dirname(IXI_MANIFEST), 'images/x.nii'),
    );
  });

  it('lists missing files', async () => {
    const path = join(directory, 'missing.json');
    await writeFile(
      path,
      JSON.stringify({
        ...BASE,
        atlas: { image: 'a.nii', labels: 'a-labels.nii' },
        structures: 'table.csv',
      }),
    );
    const error = await manifestErrorOf(() => loadManifest(path));
    expect(error.source).toBe(path);
    expect(error.problems).toEqual([
      `train[0]: file not found: ${join(directory, 't.nii')}`,
      `test[0].image: file not found: ${join(directory, 'x.nii')}`,
      `test[0].labels: file not found: ${join(directory, 'x-labels.nii')}`,
      `structures: file not found: ${join(directory, 'table.csv')}`,
    ]);
  });

  it('validates files on disk', async () => {
    const path = join(directory, 'small.json');
    await writeFile(
      path,
      JSON.stringify({
        atlas: { image: 'a.nii', labels: 'a-labels.nii' },
        train: ['a.nii'],
        test: [],
      }),
    );
    const loaded = await loadManifest(path);
    expect(loaded.report!.atlasLabels).toEqual([1, 2]);
    expect(loaded.report!.warnings).toEqual([
      'train[0] is the atlas image',
      'test is empty, so nothing will be scored',
    ]);
    const unchecked = await loadManifest(path, { validate: false });
    expect(unchecked.report).toBeUndefined();
  });

  it('names the manifest in volume problems', async () => {
    const { image } = scan();
    const data = image.data.slice();
    data[0] = NaN;
    await writeFile(join(directory, 'nan.nii'), writeNifti({ ...image, data }, { gzip: false }));
    const path = join(directory, 'nan.json');
    await writeFile(
      path,
      JSON.stringify({ atlas: { image: 'a.nii', labels: 'a-labels.nii' }, train: ['nan.nii'], test: [] }),
    );
    const error = await manifestErrorOf(() => loadManifest(path));
    expect(error.message.startsWith(`${path}: 1 problem:`)).toBe(true);
    expect(error.problems[0]).toContain('train[0] (nan.nii): intensity NaN at voxel (0, 0, 0) is not finite; replace');
  });

  it('names a missing manifest', async () => {
    const path = join(directory, 'none.json');
    const error = await manifestErrorOf(() => loadManifest(path));
    expect(error.message).toBe(`${path}: 1 problem:\n  - file not found`);
  });
});
