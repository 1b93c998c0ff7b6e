// Validation of a dataset manifest's files: every volume is read through
// the caller's loader and checked, and all problems are reported together.

import { findInvalidLabel } from './labels.js';
import {
  ManifestError,
  type DatasetManifest,
  type ManifestReport,
  type ScanSummary,
  type ValidateOptions,
  type VolumeLoader,
} from './manifest.js';
import { rasOrientation } from './reorient.js';
import { groupLabels, type StructureTable } from './structures.js';
import { spacingFromAffine, type Volume } from './volume.js';

const SOURCE = 'validateManifest';

// Label maps and their images must share a grid; affine entries may differ
// by float32 rounding of the header (sform rows are float32 in NIfTI-1).
const AFFINE_TOLERANCE_MM = 1e-3;

interface Context {
  loader: VolumeLoader;
  structures?: StructureTable;
  problems: string[];
  scans: ScanSummary[];
}

/**
 * Reads every file of the manifest through `loader` and checks it. Images
 * must be 3D with finite intensities, and a NaN or infinity is an error
 * naming the file and voxel. Label maps must lie on their image's grid and
 * contain non-negative integers. The atlas must contain every label that
 * the test maps are scored on. With `structures`, label codes are grouped
 * first, and codes missing from the table are errors.
 *
 * Throws one ManifestError listing every problem. Returns a report with a
 * warning when spacings differ by more than `spacingRatio` along an axis,
 * when the atlas also appears among the training or test scans, or when
 * a list is empty.
 */
export async function validateManifest(
  manifest: DatasetManifest,
  loader: VolumeLoader,
  options: ValidateOptions = {},
): Promise<ManifestReport> {
  const context: Context = {
    loader,
    structures: options.structures,
    problems: [],
    scans: [],
  };
  const atlasLabels = await checkPair(context, 'atlas', manifest.atlas);
  for (const [index, path] of manifest.train.entries()) {
    await checkImage(context, `train[${index}]`, path);
  }

  // Which test fields contain each scored label, for the error message.
  const scoredIn = new Map<number, string[]>();
  for (const [index, scan] of manifest.test.entries()) {
    const field = `test[${index}]`;
    const labels = await checkPair(context, field, scan);
    for (const label of labels ?? []) {
      scoredIn.set(label, [...(scoredIn.get(label) ?? []), `${field}.labels`]);
    }
  }

  if (atlasLabels) {
    const missing = [...scoredIn.keys()]
      .filter((label) => !atlasLabels.has(label))
      .sort((a, b) => a - b);
    if (missing.length > 0) {
      const where = missing
        .map((label) => `${label} in ${scoredIn.get(label)!.join(', ')}`)
        .join('; ');
      context.problems.push(
        `atlas.labels (${manifest.atlas.labels}) lacks labels ` +
          `[${missing.join(', ')}] that the test set is scored on (${where})`,
      );
    }
  }
  if (context.problems.length > 0) {
    throw new ManifestError(SOURCE, context.problems);
  }

  const warnings = [
    ...spacingWarnings(context.scans, options.spacingRatio ?? 1.5),
    ...overlapWarnings(manifest),
  ];
  return {
    scans: context.scans,
    atlasLabels: sorted(atlasLabels!),
    scoredLabels: sorted(new Set(scoredIn.keys())),
    warnings,
  };
}

/** Checks an image and its labels; returns the label set, or undefined. */
async function checkPair(
  context: Context,
  field: string,
  scan: { image: string; labels: string },
): Promise<Set<number> | undefined> {
  const image = await checkImage(context, `${field}.image`, scan.image);
  const labelField = `${field}.labels`;
  const labels = await load(context, labelField, scan.labels);
  if (!labels) return undefined;
  const where = `${labelField} (${scan.labels})`;
  if (!is3d(labels, where, context.problems)) return undefined;
  if (image && !sameGrid(image, labels)) {
    context.problems.push(`${where}: ${gridDifference(labels, image)}`);
  }
  const invalid = findInvalidLabel(labels.data);
  if (invalid) {
    context.problems.push(
      `${where}: value ${invalid.value} at voxel ` +
        `${formatVoxel(invalid.index, labels.dims)} is not a non-negative ` +
        `integer label`,
    );
    return undefined;
  }
  return labelSet(context, where, labels);
}

/** Loads and checks an image, recording a summary; undefined on failure. */
async function checkImage(
  context: Context,
  field: string,
  path: string,
): Promise<Volume | undefined> {
  const image = await load(context, field, path);
  if (!image) return undefined;
  const where = `${field} (${path})`;
  if (!is3d(image, where, context.problems)) return undefined;
  for (let index = 0; index < image.data.length; index++) {
    const value = image.data[index];
    if (!Number.isFinite(value)) {
      context.problems.push(
        `${where}: intensity ${value} at voxel ` +
          `${formatVoxel(index, image.dims)} is not finite; replace NaN and ` +
          'infinite values (with 0, for example)',
      );
      break;
    }
  }
  const spacing = spacingFromAffine(image.affine);
  const { axes } = rasOrientation(image.affine);
  context.scans.push({
    field,
    path,
    dims: [...image.dims],
    spacingRas: [spacing[axes[0]], spacing[axes[1]], spacing[axes[2]]],
  });
  return image;
}

async function load(
  context: Context,
  field: string,
  path: string,
): Promise<Volume | undefined> {
  try {
    return await context.loader(path);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    context.problems.push(`${field} (${path}): ${message}`);
    return undefined;
  }
}

function is3d(volume: Volume, where: string, problems: string[]): boolean {
  if (volume.dims.length === 3) return true;
  problems.push(
    `${where}: dims [${volume.dims.join(', ')}] are not a 3D scan ` +
      '[nx, ny, nz]; extract the 3D volume first',
  );
  return false;
}

function labelSet(
  context: Context,
  where: string,
  labels: Volume,
): Set<number> | undefined {
  let data: ArrayLike<number> = labels.data;
  if (context.structures) {
    try {
      data = groupLabels(labels.data, context.structures);
    } catch (error) {
      context.problems.push(`${where}: ${(error as Error).message}`);
      return undefined;
    }
  }
  const values = new Set<number>();
  for (let i = 0; i < data.length; i++) values.add(data[i]);
  values.delete(0);
  return values;
}

/** Returns true when two volumes have the same dims and affines within AFFINE_TOLERANCE_MM. */
export function sameGrid(a: Volume, b: Volume): boolean {
  if (a.dims.join() !== b.dims.join()) return false;
  for (let i = 0; i < 16; i++) {
    if (!(Math.abs(a.affine[i] - b.affine[i]) <= AFFINE_TOLERANCE_MM)) {
      return false;
    }
  }
  return true;
}

function spacingWarnings(scans: ScanSummary[], ratio: number): string[] {
  const warnings: string[] = [];
  if (scans.length < 2) return warnings;
  for (let axis = 0; axis < 3; axis++) {
    let smallest = scans[0];
    let largest = scans[0];
    for (const scan of scans) {
      if (scan.spacingRas[axis] < smallest.spacingRas[axis]) smallest = scan;
      if (scan.spacingRas[axis] > largest.spacingRas[axis]) largest = scan;
    }
    const low = smallest.spacingRas[axis];
    const high = largest.spacingRas[axis];
    if (high > ratio * low) {
      warnings.push(
        `spacing along ${'RAS'[axis]} ranges from ${low.toFixed(2)} mm ` +
          `(${smallest.field}) to ${high.toFixed(2)} mm (${largest.field}), ` +
          `more than ${ratio}x; preprocessing resamples all scans to one ` +
          `grid, so detail finer than the coarsest scan is not recovered`,
      );
    }
  }
  return warnings;
}

function overlapWarnings(manifest: DatasetManifest): string[] {
  const warnings: string[] = [];
  const atlas = manifest.atlas.image;
  manifest.train.forEach((path, index) => {
    if (path === atlas) warnings.push(`train[${index}] is the atlas image`);
  });
  manifest.test.forEach((scan, index) => {
    if (scan.image === atlas) {
      warnings.push(
        `test[${index}] is the atlas image, so its score is not held out`,
      );
    }
  });
  if (manifest.train.length === 0) warnings.push('train is empty');
  if (manifest.test.length === 0) {
    warnings.push('test is empty, so nothing will be scored');
  }
  return warnings;
}

/** Formats a flat voxel index of a volume of `dims` as (i, j, k). */
export function formatVoxel(index: number, dims: readonly number[]): string {
  const [nx, ny] = dims;
  const i = index % nx;
  const j = Math.floor(index / nx) % ny;
  const k = Math.floor(index / (nx * ny));
  return `(${i}, ${j}, ${k})`;
}

/** Describes how the grid of `labels` differs from that of its `image`. */
export function gridDifference(labels: Volume, image: Volume): string {
  return (
    `grid [${labels.dims.join(', ')}] with affine ${formatAffine(labels.affine)} ` +
    `differs from its image's [${image.dims.join(', ')}] with affine ${formatAffine(image.affine)}`
  );
}

function formatAffine(affine: ArrayLike<number>): string {
  const rows: string[] = [];
  for (let row = 0; row < 3; row++) {
    const values = [0, 1, 2, 3].map((column) =>
      Number(affine[column * 4 + row].toFixed(3)),
    );
    rows.push(values.join(' '));
  }
  return `[${rows.join('; ')}]`;
}

function sorted(values: Set<number>): number[] {
  return [...values].sort((a, b) => a - b);
}
