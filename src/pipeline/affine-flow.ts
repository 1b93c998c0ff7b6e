// The flow of a 3x4 affine in voxel coordinates, as a differentiable op,
// and the host-side algebra of such matrices: composition, inversion,
// parameters about the grid centre and conversion to world millimetres.
//
// Convention: an affine acts on voxel indices p = (d, h, w) of a [D, H, W]
// grid, the order of the tensor axes and of the flow channels. A matrix is
// 12 numbers, row-major 3x4 [A | t], with p' = A p + t. As a sampling map
// it gives the point that output voxel p reads, so warp(moving,
// affineFlow(M, shape)) resamples `moving` at M p: the pull convention of
// warp. Voxel index (i, j, k) of a NIfTI volume, x fastest, is (w, h, d).

import { record } from '../autograd/node.js';
import {
  affineFlowForward,
  affineFlowGradPartials,
} from '../kernels/affine_flow.js';
import { reduceKernel } from '../ops/reduce.js';
import { formatShape, tensor, Tensor } from '../tensor.js';
import { invertAffine as invertGridAffine, multiplyAffine } from './grid.js';

/** A 3x4 voxel affine [A | t], row-major, acting on (d, h, w, 1). */
export type VoxelAffine = Float64Array;

/** Returns [D, H, W] of a [D, H, W] or [N, C, D, H, W] shape. */
function spatialShape(
  op: string,
  shape: readonly number[],
): [number, number, number] {
  const valid =
    (shape.length === 3 || shape.length === 5) &&
    shape.every((size) => Number.isInteger(size) && size >= 1);
  if (!valid) {
    throw new RangeError(
      `${op}: shape ${formatShape(shape)} must be [D, H, W] or ` +
        '[N, C, D, H, W] with positive integer sizes',
    );
  }
  const [d, h, w] = shape.slice(-3);
  return [d, h, w];
}

/** Returns the matrix as a tensor and whether this call uploaded it. */
function matrixTensor(
  op: string,
  matrix: Tensor | ArrayLike<number>,
): { values: Tensor; owned: boolean } {
  if (matrix instanceof Tensor) {
    const shape = matrix.shape;
    const valid =
      (shape.length === 2 && shape[0] === 3 && shape[1] === 4) ||
      (shape.length === 3 && shape[0] >= 1 && shape[1] === 3 && shape[2] === 4);
    if (!valid) {
      throw new RangeError(
        `${op}: matrix ${formatShape(shape)} must be [3, 4] or [N, 3, 4] ` +
          '(rows of [A | t] acting on (d, h, w, 1))',
      );
    }
    return { values: matrix, owned: false };
  }
  const count = matrix.length;
  if (count === 0 || count % 12 !== 0) {
    throw new RangeError(
      `${op}: matrix has ${count} values; expected 12 (a row-major 3x4 ` +
        '[A | t]) or 12 per batch item',
    );
  }
  const values = tensor(Float32Array.from(matrix), [count / 12, 3, 4]);
  return { values, owned: true };
}

/**
 * Returns the voxel displacement [N, 3, D, H, W] of the affine p' = A p +
 * t at every voxel p = (d, h, w): flow(p) = A p + t - p, channel 0 along
 * D, 1 along H, 2 along W. `matrix` is a [3, 4] or [N, 3, 4] tensor, or
 * 12 numbers per batch item (row-major 3x4 [A | t]); `shape` is [D, H, W]
 * or a volume's [N, C, D, H, W]. Then warp(moving, affineFlow(M, shape))
 * samples `moving` at M p for every output voxel p.
 *
 * Gradients flow to a matrix tensor that requires them: for entry (r, k),
 * the sum over voxels of dL/dflow_r times (d, h, w, 1)_k, summed in a
 * fixed order, so repeated runs give the same bits.
 *
 * @example
 * // A shift of 2 voxels along W: every output voxel reads w + 2.
 * const flow = affineFlow([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2], image.shape);
 * const moved = warp(image, flow);
 */
export function affineFlow(
  matrix: Tensor | ArrayLike<number>,
  shape: readonly number[],
): Tensor {
  const op = 'affineFlow';
  const spatial = spatialShape(op, shape);
  const { values, owned } = matrixTensor(op, matrix);
  const batch = values.rank === 3 ? values.shape[0] : 1;
  const flow = affineFlowForward(op, values, batch, spatial);
  if (owned) {
    values.dispose();
    return flow;
  }

  const matrixShape = values.shape;
  return record(op, flow, [values], [], (grad) => {
    const partials = affineFlowGradPartials(op, grad);
    const summed = reduceKernel(op, 'sum', partials, [1], false);
    partials.dispose();
    const gradient = summed.share(matrixShape);
    summed.dispose();
    return [gradient];
  });
}

/** Returns the identity 3x4 affine. */
export function identityAffine(): VoxelAffine {
  return Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0);
}

function checkAffine(
  op: string,
  name: string,
  matrix: ArrayLike<number>,
): void {
  if (matrix.length !== 12 || !Array.from(matrix).every(Number.isFinite)) {
    throw new RangeError(
      `${op}: ${name} has ${matrix.length} values; expected 12 finite ` +
        'numbers (a row-major 3x4 [A | t])',
    );
  }
}

/**
 * Returns the composition p -> a(b(p)). With pull warps,
 * warp(warp(x, affineFlow(a)), affineFlow(b)) samples x at a(b(p)), so
 * it equals one warp by affineFlow(composeAffines(a, b)).
 */
export function composeAffines(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): VoxelAffine {
  const op = 'composeAffines';
  checkAffine(op, 'a', a);
  checkAffine(op, 'b', b);
  const out = new Float64Array(12);
  for (let row = 0; row < 3; row++) {
    for (let column = 0; column < 4; column++) {
      let value = column === 3 ? a[row * 4 + 3] : 0;
      for (let k = 0; k < 3; k++) {
        value += a[row * 4 + k] * b[k * 4 + column];
      }
      out[row * 4 + column] = value;
    }
  }
  return out;
}

/**
 * Returns the inverse of a 3x4 voxel affine: p = A^-1 (p' - t). Throws
 * when A is singular (its determinant is 0 or not finite).
 */
export function invertAffine(matrix: ArrayLike<number>): VoxelAffine {
  const op = 'invertAffine';
  checkAffine(op, 'matrix', matrix);
  const [a, b, c, , d, e, f, , g, h, i] = Array.from(matrix);
  const cofactors = [
    e * i - f * h, c * h - b * i, b * f - c * e,
    f * g - d * i, a * i - c * g, c * d - a * f,
    d * h - e * g, b * g - a * h, a * e - b * d,
  ];
  const determinant = a * cofactors[0] + b * cofactors[3] + c * cofactors[6];
  if (determinant === 0 || !Number.isFinite(determinant)) {
    throw new RangeError(
      `${op}: the linear part [${[a, b, c, d, e, f, g, h, i].join(', ')}] ` +
        `has determinant ${determinant} and no inverse`,
    );
  }
  const out = new Float64Array(12);
  for (let row = 0; row < 3; row++) {
    let shift = 0;
    for (let k = 0; k < 3; k++) {
      const value = cofactors[row * 3 + k] / determinant;
      out[row * 4 + k] = value;
      shift -= value * matrix[k * 4 + 3];
    }
    out[row * 4 + 3] = shift;
  }
  return out;
}

/** Returns the determinant of the linear part A of a 3x4 affine. */
export function affineDeterminant(matrix: ArrayLike<number>): number {
  checkAffine('affineDeterminant', 'matrix', matrix);
  const [a, b, c, , d, e, f, , g, h, i] = Array.from(matrix);
  return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
}

/** Parameters of an affine about the grid centre, in voxel axes (D, H, W). */
export interface AffineParameters {
  /**
   * Rotation angles in degrees about the D, H and W axes. The rotation
   * about D turns the (h, w) plane from +h toward +w, the one about H the
   * (w, d) plane from +w toward +d, the one about W the (d, h) plane from
   * +d toward +h. The matrix is R_D R_H R_W.
   */
  rotationDeg?: readonly [number, number, number];
  /** Scale factor along D, H, W (default 1). */
  scale?: readonly [number, number, number];
  /** Shears (dh, dw, hw): the entries of H above its unit diagonal. */
  shear?: readonly [number, number, number];
  /** Translation in voxels along D, H, W, applied after the linear part. */
  translation?: readonly [number, number, number];
}

function rotationAbout(axis: number, degrees: number): number[] {
  const angle = (degrees * Math.PI) / 180;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  // Rotates the plane of axes (u, v) = the two other axes in cyclic order.
  const u = (axis + 1) % 3;
  const v = (axis + 2) % 3;
  const m = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  m[u * 3 + u] = cos;
  m[u * 3 + v] = -sin;
  m[v * 3 + u] = sin;
  m[v * 3 + v] = cos;
  return m;
}

function multiply3(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(9).fill(0);
  for (let row = 0; row < 3; row++) {
    for (let column = 0; column < 3; column++) {
      for (let k = 0; k < 3; k++) {
        out[row * 3 + column] += a[row * 3 + k] * b[k * 3 + column];
      }
    }
  }
  return out;
}

/**
 * Builds the voxel affine p' = c + R S H (p - c) + t about the centre c =
 * (size - 1) / 2 of a grid of `shape` ([D, H, W]). The rotation R, scale S
 * and shear H (upper triangular with unit diagonal) leave the centre in place
 * and the translation t moves it.
 */
export function affineFromParameters(
  parameters: AffineParameters,
  shape: readonly number[],
): VoxelAffine {
  const op = 'affineFromParameters';
  const spatial = spatialShape(op, shape);
  const [rd, rh, rw] = parameters.rotationDeg ?? [0, 0, 0];
  const [sd, sh, sw] = parameters.scale ?? [1, 1, 1];
  const [dh, dw, hw] = parameters.shear ?? [0, 0, 0];
  const translation = parameters.translation ?? [0, 0, 0];
  const rotation = multiply3(
    multiply3(rotationAbout(0, rd), rotationAbout(1, rh)),
    rotationAbout(2, rw),
  );
  const scaleShear = [sd, sd * dh, sd * dw, 0, sh, sh * hw, 0, 0, sw];
  const linear = multiply3(rotation, scaleShear);
  const centre = spatial.map((size) => (size - 1) / 2);
  const out = new Float64Array(12);
  for (let row = 0; row < 3; row++) {
    let shift = centre[row] + translation[row];
    for (let k = 0; k < 3; k++) {
      out[row * 4 + k] = linear[row * 3 + k];
      shift -= linear[row * 3 + k] * centre[k];
    }
    out[row * 4 + 3] = shift;
  }
  if (!out.every(Number.isFinite)) {
    throw new RangeError(
      `${op}: parameters ${JSON.stringify(parameters)} give a matrix with ` +
        'values that are not finite',
    );
  }
  return out;
}

/**
 * Returns the 4x4 column-major (gl-matrix) matrix that acts on (i, j, k,
 * 1) as the voxel affine acts on (d, h, w, 1) = (k, j, i, 1).
 */
export function affineToIjk(matrix: ArrayLike<number>): Float64Array {
  checkAffine('affineToIjk', 'matrix', matrix);
  const out = new Float64Array(16);
  // Axis a of (i, j, k) is axis 2 - a of (d, h, w).
  for (let row = 0; row < 3; row++) {
    for (let column = 0; column < 3; column++) {
      out[column * 4 + row] = matrix[(2 - row) * 4 + (2 - column)];
    }
    out[12 + row] = matrix[(2 - row) * 4 + 3];
  }
  out[15] = 1;
  return out;
}

/**
 * Converts a voxel affine between two grids into world millimetres: the
 * column-major 4x4 W = movingAffine * M_ijk * inverse(fixedAffine), which
 * maps a world point of the fixed grid to the world point of the moving
 * grid that it samples. Grid affines map (i, j, k, 1) to RAS+ mm, as
 * Volume.affine does.
 */
export function affineToWorld(
  matrix: ArrayLike<number>,
  fixedAffine: ArrayLike<number>,
  movingAffine: ArrayLike<number>,
): Float64Array {
  const ijk = affineToIjk(matrix);
  const fixedInverse = invertGridAffine(fixedAffine, 'affineToWorld');
  return multiplyAffine(multiplyAffine(movingAffine, ijk), fixedInverse);
}
