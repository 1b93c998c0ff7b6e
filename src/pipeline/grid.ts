// Voxel grids and the 4x4 affines that place them in world space, shared
// by reorientation, cropping and resampling. Affines are column-major
// (gl-matrix layout) and map voxel indices (i, j, k, 1) to world RAS+ mm.

import { mat4 } from 'gl-matrix';

/** A voxel grid: dims [nx, ny, nz] and its voxel-to-world affine. */
export interface Grid {
  dims: number[];
  affine: Float64Array;
}

/** Axis-aligned world bounds in mm, RAS+ (x, y, z). */
export interface WorldBounds {
  min: [number, number, number];
  max: [number, number, number];
}

/** Returns a * b as a new column-major matrix. */
export function multiplyAffine(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(16);
  mat4.multiply(
    out as unknown as mat4,
    Float64Array.from(a) as unknown as mat4,
    Float64Array.from(b) as unknown as mat4,
  );
  return out;
}

/** Returns the inverse of an affine; `source` names the caller on error. */
export function invertAffine(
  affine: ArrayLike<number>,
  source: string,
): Float64Array {
  const out = new Float64Array(16);
  const inverted = mat4.invert(
    out as unknown as mat4,
    Float64Array.from(affine) as unknown as mat4,
  );
  if (inverted === null) {
    throw new Error(`${source}: the affine is singular and has no inverse`);
  }
  return out;
}

/**
 * Returns the matrix that maps voxel indices of `from` to (fractional)
 * voxel indices of `to` through world space: inverse(to) * from.
 */
export function voxelToVoxel(
  from: ArrayLike<number>,
  to: ArrayLike<number>,
  source: string,
): Float64Array {
  return multiplyAffine(invertAffine(to, source), from);
}

/** Applies an affine to the point (x, y, z). */
export function transformPoint(
  affine: ArrayLike<number>,
  x: number,
  y: number,
  z: number,
): [number, number, number] {
  return [
    affine[0] * x + affine[4] * y + affine[8] * z + affine[12],
    affine[1] * x + affine[5] * y + affine[9] * z + affine[13],
    affine[2] * x + affine[6] * y + affine[10] * z + affine[14],
  ];
}

/**
 * Returns the world bounds of the voxel index box [start, end) (end
 * exclusive), including the half voxel around each outer voxel centre, so
 * that the bounds enclose the voxels' whole extent.
 */
export function boxWorldBounds(
  affine: ArrayLike<number>,
  start: readonly number[],
  end: readonly number[],
): WorldBounds {
  const min: [number, number, number] = [Infinity, Infinity, Infinity];
  const max: [number, number, number] = [-Infinity, -Infinity, -Infinity];
  for (let corner = 0; corner < 8; corner++) {
    const index = [0, 1, 2].map((axis) =>
      corner & (1 << axis) ? end[axis] - 0.5 : start[axis] - 0.5,
    );
    const world = transformPoint(affine, index[0], index[1], index[2]);
    for (let axis = 0; axis < 3; axis++) {
      min[axis] = Math.min(min[axis], world[axis]);
      max[axis] = Math.max(max[axis], world[axis]);
    }
  }
  return { min, max };
}

/** Checks that a grid has three positive integer dims and a 4x4 affine. */
export function checkGrid(grid: Grid, source: string, role: string): void {
  const { dims, affine } = grid;
  const validDims =
    Array.isArray(dims) &&
    dims.length >= 3 &&
    dims.every((size) => Number.isInteger(size) && size >= 1);
  if (!validDims) {
    throw new Error(
      `${source}: ${role} dims [${String(dims)}] must be at least 3 ` +
        `positive integers [nx, ny, nz, ...]`,
    );
  }
  if (!affine || affine.length !== 16 || !Array.from(affine).every(isFinite)) {
    throw new Error(
      `${source}: ${role} affine must have 16 finite values ` +
        `(column-major 4x4)`,
    );
  }
}
