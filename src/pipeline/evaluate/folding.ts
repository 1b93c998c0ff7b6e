// Jacobian determinant of a displacement field and the fraction of voxels
// where the transform folds.
//
// Layout: displacement [1, 3, D, H, W] (or [3, D, H, W]) row-major, as the
// warp op takes it: channel 0 is the displacement along D, 1 along H, 2
// along W, all in voxels. The transform maps voxel x to x + u(x).

import { checkShape } from './checks.js';

function spatialShape(op: string, shape: readonly number[]): number[] {
  if (shape.length === 5 && shape[0] === 1 && shape[1] === 3) {
    return shape.slice(2);
  }
  if (shape.length === 4 && shape[0] === 3) return shape.slice(1);
  if (shape.length === 3) return [...shape];
  throw new RangeError(
    `${op}: shape [${shape.join(', ')}] must be the field's [1, 3, D, H, W] ` +
      'or [3, D, H, W], or its grid [D, H, W]',
  );
}

/**
 * Returns the derivative along one axis of the values `stride` apart
 * around index `at` (0 <= at < extent): the central difference inside and
 * the one-sided difference at the two ends, as numpy.gradient with its
 * default edge_order=1.
 */
function difference(
  values: ArrayLike<number>,
  voxel: number,
  at: number,
  extent: number,
  stride: number,
): number {
  if (at === 0) return values[voxel + stride] - values[voxel];
  if (at === extent - 1) return values[voxel] - values[voxel - stride];
  return (values[voxel + stride] - values[voxel - stride]) / 2;
}

function determinants(
  op: string,
  displacement: ArrayLike<number>,
  shape: readonly number[],
): Float64Array {
  const [d, h, w] = checkShape(
    op,
    spatialShape(op, shape),
    displacement.length,
    'displacement',
    3,
  );
  if (d < 2 || h < 2 || w < 2) {
    throw new RangeError(
      `${op}: grid [${d}, ${h}, ${w}] needs at least 2 voxels along D, H ` +
        'and W to take differences',
    );
  }
  const count = d * h * w;
  const extents = [d, h, w];
  const strides = [h * w, w, 1];
  const result = new Float64Array(count);
  // jacobian[3 c + a] = delta(c, a) + d u_c / d x_a.
  const jacobian = new Float64Array(9);
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const voxel = (z * h + y) * w + x;
        const position = [z, y, x];
        for (let channel = 0; channel < 3; channel++) {
          for (let axis = 0; axis < 3; axis++) {
            jacobian[3 * channel + axis] =
              (channel === axis ? 1 : 0) +
              difference(
                displacement,
                channel * count + voxel,
                position[axis],
                extents[axis],
                strides[axis],
              );
          }
        }
        result[voxel] = determinant3(jacobian);
      }
    }
  }
  return result;
}

/**
 * Computes the Jacobian determinant of the map x -> x + u(x) at every
 * voxel, det(I + du/dx) with derivatives in voxel units: central
 * differences inside the grid and one-sided differences on its faces, as
 * VoxelMorph's jacobian_determinant (numpy.gradient) does. Returns one value
 * per voxel, row-major [D, H, W].
 *
 * The displacement and the derivatives are both in voxels, so the
 * determinant is the same as with millimetre coordinates on any voxel
 * spacing. Every axis needs at least 2 voxels for a difference.
 *
 * @param displacement The field [1, 3, D, H, W] in voxels, channel 0 along
 *   D, 1 along H, 2 along W.
 * @param shape The field's shape [1, 3, D, H, W] or [3, D, H, W], or its
 *   grid [D, H, W].
 */
export function jacobianDeterminant(
  displacement: ArrayLike<number>,
  shape: readonly number[],
): Float64Array {
  return determinants('jacobianDeterminant', displacement, shape);
}

function determinant3(m: Float64Array): number {
  return (
    m[0] * (m[4] * m[8] - m[5] * m[7]) -
    m[1] * (m[3] * m[8] - m[5] * m[6]) +
    m[2] * (m[3] * m[7] - m[4] * m[6])
  );
}

/**
 * Computes the fraction (0 to 1) of voxels where the Jacobian determinant
 * of x -> x + u(x) is <= 0, that is where the displacement folds the grid.
 * See `jacobianDeterminant` for the layout and the finite differences.
 *
 * @example
 * const folding = foldingFraction(await flow.toArray(), flow.shape);
 */
export function foldingFraction(
  displacement: ArrayLike<number>,
  shape: readonly number[],
): number {
  const values = determinants('foldingFraction', displacement, shape);
  let folded = 0;
  for (const value of values) if (value <= 0) folded += 1;
  return folded / values.length;
}
