// 95th-percentile symmetric Hausdorff distance between the surfaces of one
// label in two label maps, in millimetres, as MONAI's
// compute_hausdorff_distance(percentile=95, directed=False).
//
// Layout: label maps are row-major [D, H, W] arrays of integer ids, and
// spacing is in mm along [D, H, W].

import { checkSameLength, type LabelMap } from './dice.js';
import { checkShape, checkSpacing } from './checks.js';
import { squaredDistanceTransform, type Shape3 } from './distance-transform.js';

/** A voxel box [start, end) per axis, in the order D, H, W. */
interface Box {
  start: [number, number, number];
  end: [number, number, number];
}

/** Returns the smallest box containing every voxel of `label` in either map. */
function labelBox(
  prediction: LabelMap,
  truth: LabelMap,
  shape: Shape3,
  label: number,
): Box | null {
  const [d, h, w] = shape;
  const start: [number, number, number] = [d, h, w];
  const end: [number, number, number] = [-1, -1, -1];
  let voxel = 0;
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++, voxel++) {
        if (prediction[voxel] !== label && truth[voxel] !== label) continue;
        if (z < start[0]) start[0] = z;
        if (y < start[1]) start[1] = y;
        if (x < start[2]) start[2] = x;
        if (z >= end[0]) end[0] = z + 1;
        if (y >= end[1]) end[1] = y + 1;
        if (x >= end[2]) end[2] = x + 1;
      }
    }
  }
  return end[0] < 0 ? null : { start, end };
}

/** Copies the voxels of `label` inside `box` into a 0/1 mask. */
function cropMask(labels: LabelMap, shape: Shape3, box: Box, label: number) {
  const [, h, w] = shape;
  const [bd, bh, bw] = [0, 1, 2].map(
    (axis) => box.end[axis] - box.start[axis],
  );
  const mask = new Uint8Array(bd * bh * bw);
  for (let z = 0; z < bd; z++) {
    for (let y = 0; y < bh; y++) {
      const row =
        ((box.start[0] + z) * h + box.start[1] + y) * w + box.start[2];
      for (let x = 0; x < bw; x++) {
        mask[(z * bh + y) * bw + x] = labels[row + x] === label ? 1 : 0;
      }
    }
  }
  return mask;
}

/**
 * Marks the surface of a mask: the voxels inside it with at least one of
 * their 6 face neighbours outside it. Neighbours beyond the grid count as
 * outside, so a mask touching the border has a surface there.
 */
export function maskSurface(mask: Uint8Array, shape: Shape3): Uint8Array {
  const [d, h, w] = shape;
  const surface = new Uint8Array(mask.length);
  const inside = (z: number, y: number, x: number) =>
    z >= 0 && y >= 0 && x >= 0 && z < d && y < h && x < w &&
    mask[(z * h + y) * w + x] !== 0;
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (!inside(z, y, x)) continue;
        const interior =
          inside(z - 1, y, x) && inside(z + 1, y, x) &&
          inside(z, y - 1, x) && inside(z, y + 1, x) &&
          inside(z, y, x - 1) && inside(z, y, x + 1);
        if (!interior) surface[(z * h + y) * w + x] = 1;
      }
    }
  }
  return surface;
}

/**
 * Returns the `percent` percentile of `values` with linear interpolation
 * between the two nearest ranks, as numpy.percentile's default method.
 * Sorts `values` in place.
 */
export function percentile(values: Float64Array, percent: number): number {
  if (values.length === 0) return NaN;
  values.sort();
  const rank = (percent / 100) * (values.length - 1);
  const below = Math.floor(rank);
  const above = Math.min(below + 1, values.length - 1);
  return values[below] + (values[above] - values[below]) * (rank - below);
}

/**
 * Returns the 95th percentile of the distances in mm from each voxel of
 * surface `from` to the nearest voxel of surface `to`.
 */
function directedHausdorff95(
  from: Uint8Array,
  to: Uint8Array,
  shape: Shape3,
  spacingMm: Shape3,
): number {
  const squared = squaredDistanceTransform(to, shape, spacingMm);
  const distances: number[] = [];
  for (let voxel = 0; voxel < from.length; voxel++) {
    if (from[voxel] !== 0) distances.push(Math.sqrt(squared[voxel]));
  }
  return percentile(Float64Array.from(distances), 95);
}

/**
 * Computes the 95th-percentile symmetric Hausdorff distance in mm between
 * the surfaces of `label` in `prediction` and in `truth`. It is the larger
 * of the two directed distances. Each of them is the 95th percentile
 * (numpy's linear interpolation) of the distances from one surface's
 * voxels to the nearest voxel of the other surface. A surface voxel is a
 * voxel of the label with a 6-neighbour outside it, and voxels beyond the
 * grid count as outside. This follows MONAI's
 * compute_hausdorff_distance(percentile=95, directed=False), which takes
 * surfaces as a mask XOR its binary erosion and measures from one surface
 * to the other with scipy's distance_transform_edt (monai/metrics/utils.py),
 * here in mm.
 *
 * Returns NaN when the label is in neither map and Infinity when it is in
 * only one, as MONAI does, and `summarize` leaves both out of its means.
 * The distances come from an exact Euclidean distance transform over the
 * box around the label in both maps, so the cost grows with the label's
 * extent, not with the grid.
 *
 * @param shape The grid [D, H, W] of both row-major label maps.
 * @param spacingMm The voxel size in mm along [D, H, W]. NOTE: a Volume's
 *   `spacing` is ordered [x, y, z] = [W, H, D], so reverse it.
 *
 * @example
 * const hd95 = hausdorff95(predicted, truth, [48, 48, 48], [1, 1, 1.2], 3);
 */
export function hausdorff95(
  prediction: LabelMap,
  truth: LabelMap,
  shape: readonly number[],
  spacingMm: readonly number[],
  label: number,
): number {
  const op = 'hausdorff95';
  checkSameLength(op, prediction, truth);
  const grid = checkShape(op, shape, prediction.length, 'prediction');
  const spacing = checkSpacing(op, spacingMm);
  if (!Number.isInteger(label)) {
    throw new RangeError(`${op}: label ${label} must be an integer id`);
  }

  const box = labelBox(prediction, truth, grid, label);
  if (box === null) return NaN;
  const boxShape: Shape3 = [
    box.end[0] - box.start[0],
    box.end[1] - box.start[1],
    box.end[2] - box.start[2],
  ];
  const predicted = cropMask(prediction, grid, box, label);
  const actual = cropMask(truth, grid, box, label);
  // The box contains every voxel of the label in both maps, so the voxels
  // just outside it are outside both masks, and cropping changes neither
  // surface nor any distance between them.
  const predictedSurface = maskSurface(predicted, boxShape);
  const actualSurface = maskSurface(actual, boxShape);
  if (!predictedSurface.includes(1) || !actualSurface.includes(1)) {
    return Infinity;
  }
  return Math.max(
    directedHausdorff95(predictedSurface, actualSurface, boxShape, spacing),
    directedHausdorff95(actualSurface, predictedSurface, boxShape, spacing),
  );
}

/**
 * Computes `hausdorff95` for each label in `labels`, in that order.
 */
export function hausdorff95Scores(
  prediction: LabelMap,
  truth: LabelMap,
  shape: readonly number[],
  spacingMm: readonly number[],
  labels: readonly number[],
): number[] {
  return labels.map((label) =>
    hausdorff95(prediction, truth, shape, spacingMm, label),
  );
}
