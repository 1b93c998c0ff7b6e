// Dataset manifests: which scan is the labelled atlas, which are the
// unlabelled training scans and which labelled scans are held out for
// scoring, as JSON with paths relative to the manifest file. Validation
// reads every volume through a caller-supplied loader, so the same checks
// run in Node (files) and in browsers (fetch or dropped files).

import type { StructureTable } from './structures.js';
import type { Volume } from './volume.js';

/** A scan with its label map, both paths relative to the manifest. */
export interface LabelledScan {
  image: string;
  labels: string;
}

/**
 * A dataset for one-shot training: one labelled atlas, unlabelled training
 * images, and labelled test scans whose labels are used only for scoring.
 * `structures` names a structure table CSV that groups label codes.
 */
export interface DatasetManifest {
  atlas: LabelledScan;
  train: string[];
  test: LabelledScan[];
  structures?: string;
}

/** Reads a manifest path into a volume (a file in Node, a fetch in browsers). */
export type VolumeLoader = (path: string) => Promise<Volume> | Volume;

/** Summary of one image read during validation. */
export interface ScanSummary {
  /** The image's JSON field in the manifest, such as "test[2].image". */
  field: string;
  path: string;
  dims: number[];
  /** Voxel sizes along R, A and S in mm (after reorientation). */
  spacingRas: [number, number, number];
}

/** Validation result: the images read and the label sets compared. */
export interface ManifestReport {
  scans: ScanSummary[];
  /** Label values in the atlas (structure ids when grouped), without 0. */
  atlasLabels: number[];
  /** Label values present in any test map (grouped likewise), without 0. */
  scoredLabels: number[];
  warnings: string[];
}

export interface ValidateOptions {
  /** Group label codes by this table before comparing label sets. */
  structures?: StructureTable;
  /**
   * Ratio of the largest to the smallest spacing along an axis, across
   * all scans, above which a warning is issued (default 1.5).
   */
  spacingRatio?: number;
}

/** A manifest that is malformed or whose files fail the checks. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';

  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    const list = problems.map((problem) => `\n  - ${problem}`).join('');
    const count =
      problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`${source}: ${count}:${list}`);
  }
}

/**
 * Parses and checks the shape of a manifest (JSON text or an already
 * parsed value): the required fields, their types, and non-empty paths.
 * `source` names the manifest in errors.
 */
export function parseManifest(
  input: string | unknown,
  source = 'manifest',
): DatasetManifest {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new ManifestError(source, [
        `invalid JSON: ${(error as Error).message}`,
      ]);
    }
  }
  if (!isObject(value)) {
    throw new ManifestError(source, ['expected a JSON object']);
  }

  const problems: string[] = [];
  const atlas = parseScan(value.atlas, 'atlas', problems);
  const train = parseList(value.train, 'train', problems);
  const test: LabelledScan[] = [];
  if (!Array.isArray(value.test)) {
    problems.push('test: expected an array of { image, labels }');
  } else {
    value.test.forEach((entry, index) => {
      const scan = parseScan(entry, `test[${index}]`, problems);
      if (scan) test.push(scan);
    });
  }

  const manifest: DatasetManifest = { atlas: atlas!, train, test };
  if (value.structures !== undefined) {
    if (isPath(value.structures)) manifest.structures = value.structures;
    else problems.push('structures: expected a non-empty path string');
  }
  const known = ['atlas', 'train', 'test', 'structures'];
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      problems.push(`${key}: unknown field; expected ${known.join(', ')}`);
    }
  }
  if (problems.length > 0) throw new ManifestError(source, problems);
  return manifest;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPath(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

function parseScan(
  value: unknown,
  field: string,
  problems: string[],
): LabelledScan | undefined {
  if (!isObject(value) || !isPath(value.image) || !isPath(value.labels)) {
    problems.push(
      `${field}: expected { "image": path, "labels": path } with ` +
        `non-empty paths`,
    );
    return undefined;
  }
  return { image: value.image, labels: value.labels };
}

function parseList(value: unknown, field: string, problems: string[]) {
  if (!Array.isArray(value) || !value.every(isPath)) {
    problems.push(`${field}: expected an array of non-empty path strings`);
    return [];
  }
  return [...value] as string[];
}

/** Lists every file of a manifest with its JSON field. */
export function manifestFiles(
  manifest: DatasetManifest,
): { field: string; path: string; kind: 'image' | 'labels' | 'table' }[] {
  const files: ReturnType<typeof manifestFiles> = [
    { field: 'atlas.image', path: manifest.atlas.image, kind: 'image' },
    { field: 'atlas.labels', path: manifest.atlas.labels, kind: 'labels' },
  ];
  manifest.train.forEach((path, index) => {
    files.push({ field: `train[${index}]`, path, kind: 'image' });
  });
  manifest.test.forEach((scan, index) => {
    files.push({ field: `test[${index}].image`, path: scan.image, kind: 'image' });
    files.push({
      field: `test[${index}].labels`,
      path: scan.labels,
      kind: 'labels',
    });
  });
  if (manifest.structures) {
    files.push({ field: 'structures', path: manifest.structures, kind: 'table' });
  }
  return files;
}
