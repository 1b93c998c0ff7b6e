// Foreground (head) detection and cropping: an Otsu threshold on the
// intensity histogram, the bounding box of the voxels above it with a
// margin in mm, and an exact crop that shifts the affine's origin.

import { transformPoint } from './grid.js';
import { spacingFromAffine, type Volume } from './volume.js';

/** A box of voxel indices: `start` inclusive, `end` exclusive, per axis. */
export interface VoxelBox {
  start: [number, number, number];
  end: [number, number, number];
}

export interface ForegroundOptions {
  /** Intensity above which a voxel is foreground; Otsu's when unset. */
  threshold?: number;
  /** Margin added around the box on every side, in mm (default 4). */
  marginMm?: number;
  /**
   * A slice (along each axis) belongs to the box when its foreground
   * voxel count reaches this fraction of the fullest slice's count
   * (default 0.01), so isolated bright noise voxels do not widen the box.
   */
  minSliceFraction?: number;
}

const HISTOGRAM_BINS = 256;

/**
 * Returns Otsu's threshold of the values: the cut that maximises the
 * between-class variance of a 256-bin histogram between the minimum and
 * the maximum. Non-finite values are ignored.
 */
export function otsuThreshold(values: ArrayLike<number>): number {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!Number.isFinite(value)) continue;
    if (value < min) min = value;
    if (value > max) max = value;
  }
  if (!(max > min)) {
    throw new Error(
      `otsuThreshold: the values are constant (${min}) or not finite, so ` +
        `nothing separates foreground from background`,
    );
  }
  const width = (max - min) / HISTOGRAM_BINS;
  const histogram = new Float64Array(HISTOGRAM_BINS);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!Number.isFinite(value)) continue;
    const bin = Math.min(HISTOGRAM_BINS - 1, Math.floor((value - min) / width));
    histogram[bin]++;
    total++;
  }
  let sumAll = 0;
  for (let bin = 0; bin < HISTOGRAM_BINS; bin++) sumAll += bin * histogram[bin];

  let weightBelow = 0;
  let sumBelow = 0;
  let bestBin = 0;
  let bestVariance = -1;
  for (let bin = 0; bin < HISTOGRAM_BINS - 1; bin++) {
    weightBelow += histogram[bin];
    sumBelow += bin * histogram[bin];
    const weightAbove = total - weightBelow;
    if (weightBelow === 0 || weightAbove === 0) continue;
    const meanBelow = sumBelow / weightBelow;
    const meanAbove = (sumAll - sumBelow) / weightAbove;
    const variance =
      weightBelow * weightAbove * (meanBelow - meanAbove) ** 2;
    if (variance > bestVariance) {
      bestVariance = variance;
      bestBin = bin;
    }
  }
  // The cut lies at the upper edge of the last bin of the lower class.
  return min + (bestBin + 1) * width;
}

/**
 * Returns the bounding box of the voxels above the threshold, widened by
 * the margin and clipped to the volume. Throws when no voxel is above it.
 */
export function foregroundBox(
  volume: Volume,
  options: ForegroundOptions = {},
): VoxelBox {
  const source = 'foregroundBox';
  const threshold = options.threshold ?? otsuThreshold(volume.data);
  const marginMm = options.marginMm ?? 4;
  const minSliceFraction = options.minSliceFraction ?? 0.01;
  if (!(marginMm >= 0) || !(minSliceFraction >= 0 && minSliceFraction <= 1)) {
    throw new Error(
      `${source}: marginMm ${marginMm} must be >= 0 and minSliceFraction ` +
        `${minSliceFraction} within [0, 1]`,
    );
  }
  const [nx, ny, nz] = volume.dims;
  const counts = [new Float64Array(nx), new Float64Array(ny), new Float64Array(nz)];
  let index = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        if (volume.data[index++] > threshold) {
          counts[0][i]++;
          counts[1][j]++;
          counts[2][k]++;
        }
      }
    }
  }

  const spacing = spacingFromAffine(volume.affine);
  const start: VoxelBox['start'] = [0, 0, 0];
  const end: VoxelBox['end'] = [0, 0, 0];
  for (let axis = 0; axis < 3; axis++) {
    const axisCounts = counts[axis];
    let fullest = 0;
    for (const count of axisCounts) fullest = Math.max(fullest, count);
    if (fullest === 0) {
      throw new Error(
        `${source}: no voxel of the ${volume.dims.join('x')} volume is ` +
          `above the threshold ${threshold}`,
      );
    }
    const needed = Math.max(1, minSliceFraction * fullest);
    let first = 0;
    while (axisCounts[first] < needed) first++;
    let last = axisCounts.length - 1;
    while (axisCounts[last] < needed) last--;
    const margin = Math.ceil(marginMm / spacing[axis] - 1e-9);
    start[axis] = Math.max(0, first - margin);
    end[axis] = Math.min(volume.dims[axis], last + 1 + margin);
  }
  return { start, end };
}

/**
 * Copies the voxels of a box into a new volume whose affine maps its index
 * 0 to the box's first voxel, so every voxel keeps its world position.
 */
export function cropVolume(volume: Volume, box: VoxelBox): Volume {
  const source = 'cropVolume';
  const [nx, ny, nz] = volume.dims;
  const valid = [0, 1, 2].every(
    (axis) =>
      Number.isInteger(box.start[axis]) &&
      Number.isInteger(box.end[axis]) &&
      box.start[axis] >= 0 &&
      box.start[axis] < box.end[axis] &&
      box.end[axis] <= volume.dims[axis],
  );
  if (!valid) {
    throw new Error(
      `${source}: box [${box.start.join(', ')}] to [${box.end.join(', ')}] ` +
        `is not a non-empty integer box inside dims ` +
        `[${volume.dims.slice(0, 3).join(', ')}]`,
    );
  }

  const [mx, my, mz] = [0, 1, 2].map((axis) => box.end[axis] - box.start[axis]);
  const perVolume = nx * ny * nz;
  const volumes = volume.data.length / perVolume;
  const data = new Float32Array(mx * my * mz * volumes);
  let out = 0;
  for (let t = 0; t < volumes; t++) {
    for (let k = 0; k < mz; k++) {
      for (let j = 0; j < my; j++) {
        const row =
          t * perVolume +
          box.start[0] +
          nx * (box.start[1] + j + ny * (box.start[2] + k));
        data.set(volume.data.subarray(row, row + mx), out);
        out += mx;
      }
    }
  }

  const affine = Float64Array.from(volume.affine);
  const origin = transformPoint(volume.affine, ...box.start);
  affine.set(origin, 12);
  return {
    ...volume,
    data,
    dims: [mx, my, mz, ...volume.dims.slice(3)],
    spacing: spacingFromAffine(affine),
    affine,
  };
}
