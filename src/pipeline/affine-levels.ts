// The normalised affine parameters of alignAffine and their voxel
// matrices at each level of the coarse-to-fine pyramid.
//
// With c the grid centre (size - 1) / 2 and r half the extent size / 2 per
// axis (D, H, W), theta (3x4, row-major) gives the full-resolution voxel
// matrix M = [I | 0] + diag(r) theta K with K = [diag(1 / r), -c / r;
// 0, 1]: the motion p' - p = r * (theta [u; 1]) at u = (p - c) / r.
// Level f averages f^3 blocks, so its voxel q is the full-resolution point
// p = f q + o with o = (f - 1) / 2, and its matrix is
//   M_f = [I | 0] + diag(r / f) theta (K L),  L = [f I, o; 0, 1].

import { tensor, type Tensor } from '../tensor.js';
import type { VoxelAffine } from './affine-flow.js';

/** Constants of one level: M_f = identity + rowScale * (theta @ columns). */
export interface LevelBasis {
  identity: Tensor;
  rowScale: Tensor;
  columns: Tensor;
  dispose(): void;
}

function centreAndHalfExtent(shape: readonly number[]): {
  centre: number[];
  half: number[];
} {
  return {
    centre: shape.map((size) => (size - 1) / 2),
    half: shape.map((size) => size / 2),
  };
}

/** Returns the constants of level `factor` of a grid of `shape`. */
export function levelBasis(
  shape: readonly number[],
  factor: number,
): LevelBasis {
  const { centre, half } = centreAndHalfExtent(shape);
  const offset = (factor - 1) / 2;
  // K L = [diag(f / r), (o - c) / r; 0, 1], row-major 4x4.
  const columns = new Float32Array(16);
  for (let axis = 0; axis < 3; axis++) {
    columns[axis * 4 + axis] = factor / half[axis];
    columns[axis * 4 + 3] = (offset - centre[axis]) / half[axis];
  }
  columns[15] = 1;
  const rowScale = Float32Array.from(half, (value) => value / factor);
  const identity = Float32Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0);
  const tensors = {
    identity: tensor(identity, [3, 4]),
    rowScale: tensor(rowScale, [3, 1]),
    columns: tensor(columns, [4, 4]),
  };
  return {
    ...tensors,
    dispose: () => Object.values(tensors).forEach((t) => t.dispose()),
  };
}

/**
 * Returns theta = diag(1 / r) (M - [I | 0]) K^-1, with K^-1 = [diag(r), c;
 * 0, 1].
 */
export function normalizedFromMatrix(
  matrix: ArrayLike<number>,
  shape: readonly number[],
): Float32Array {
  const { centre, half } = centreAndHalfExtent(shape);
  const theta = new Float32Array(12);
  for (let row = 0; row < 3; row++) {
    let shift = matrix[row * 4 + 3];
    for (let column = 0; column < 3; column++) {
      const offset = matrix[row * 4 + column] - (row === column ? 1 : 0);
      theta[row * 4 + column] = (offset * half[column]) / half[row];
      shift += offset * centre[column];
    }
    theta[row * 4 + 3] = shift / half[row];
  }
  return theta;
}

/** Returns M = [I | 0] + diag(r) theta K at full resolution. */
export function matrixFromNormalized(
  theta: ArrayLike<number>,
  shape: readonly number[],
): VoxelAffine {
  const { centre, half } = centreAndHalfExtent(shape);
  const matrix = new Float64Array(12);
  for (let row = 0; row < 3; row++) {
    let shift = theta[row * 4 + 3];
    for (let column = 0; column < 3; column++) {
      const entry = theta[row * 4 + column] / half[column];
      matrix[row * 4 + column] = half[row] * entry + (row === column ? 1 : 0);
      shift -= entry * centre[column];
    }
    matrix[row * 4 + 3] = half[row] * shift;
  }
  return matrix;
}
