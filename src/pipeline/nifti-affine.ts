// The voxel-to-world matrix of a NIfTI header: which of sform, qform and
// pixdim defines it when reading, and the qform derived from it when writing.
// Matrices are column-major 4x4 Float64Arrays (gl-matrix layout).

import { mat3, mat4, quat } from 'gl-matrix';
import type { NiftiHeader } from './nifti-header.js';

/**
 * A quaternion whose b^2 + c^2 + d^2 exceeds 1 by at most this much is
 * taken as rounding error and renormalised. Float32 rounding of the three
 * fields moves the sum by about 2e-7. A larger excess makes the qform
 * invalid.
 */
export const QUATERNION_TOLERANCE = 1e-6;

/**
 * The sform and qform disagree when some corner of the voxel grid maps to
 * world points more than this many mm apart: far below any voxel size, and
 * far above the float32 rounding of both transforms.
 */
export const TRANSFORM_AGREEMENT_MM = 0.01;

/**
 * Unit columns of an affine whose pairwise dot products exceed this are
 * sheared, and no quaternion can represent them.
 */
export const SHEAR_TOLERANCE = 1e-5;

export interface AffineChoice {
  affine: Float64Array;
  /** Header fields the affine comes from. */
  from: 'sform' | 'qform' | 'pixdim';
  warnings: string[];
}

/**
 * Chooses the voxel-to-world matrix: the sform when sform_code > 0 and its
 * matrix is finite and non-singular, else the qform when qform_code > 0 and
 * its fields are valid, else the pixdim diagonal (nifti1.h "method 1").
 * When both sform and qform are valid but disagree, the sform wins and a
 * warning reports the disagreement.
 */
export function chooseAffine(header: NiftiHeader): AffineChoice {
  const warnings: string[] = [];
  const sform = header.sformCode > 0 ? sformMatrix(header, warnings) : null;
  // With a usable sform, the qform only serves the agreement check, so its
  // own problems are not reported.
  const qform =
    header.qformCode > 0 ? qformMatrix(header, sform ? [] : warnings) : null;

  if (sform) {
    if (qform) {
      const distance = maxCornerDistance(sform, qform, header.dim);
      if (distance > TRANSFORM_AGREEMENT_MM) {
        warnings.push(
          `sform and qform disagree (grid corners up to ` +
            `${distance.toPrecision(3)} mm apart); using the sform`,
        );
      }
    }
    return { affine: sform, from: 'sform', warnings };
  }
  if (qform) return { affine: qform, from: 'qform', warnings };

  if (header.sformCode === 0 && header.qformCode === 0) {
    warnings.push(
      'sform_code and qform_code are 0, so the file gives no orientation; the voxel ' +
        'axes are taken as x, y, z (RAS) at the pixdim sizes, and results may come out ' +
        'mirrored or rotated against other scans: set the sform or qform to fix it',
    );
  }
  const affine = new Float64Array(16);
  const sizes = voxelSizes(header, warnings);
  affine[0] = sizes[0];
  affine[5] = sizes[1];
  affine[10] = sizes[2];
  affine[15] = 1;
  return { affine, from: 'pixdim', warnings };
}

/** Returns the sform as a matrix, or null (with a warning) when unusable. */
function sformMatrix(
  header: NiftiHeader,
  warnings: string[],
): Float64Array | null {
  const affine = new Float64Array(16);
  for (let row = 0; row < 3; row++) {
    for (let column = 0; column < 4; column++) {
      affine[column * 4 + row] = header.srow[row * 4 + column];
    }
  }
  affine[15] = 1;
  const problem = !affine.every(Number.isFinite)
    ? 'contains a non-finite value'
    : isSingular(affine)
      ? 'is singular'
      : null;
  if (problem === null) return affine;
  warnings.push(
    `sform_code is ${header.sformCode} but the sform ${problem}; ` +
      `ignoring it`,
  );
  return null;
}

/** Returns true when the 3x3 linear part cannot be inverted reliably. */
export function isSingular(affine: ArrayLike<number>): boolean {
  const linear = new Float64Array(9);
  let scale = 1;
  for (let column = 0; column < 3; column++) {
    let norm = 0;
    for (let row = 0; row < 3; row++) {
      const value = affine[column * 4 + row];
      linear[column * 3 + row] = value;
      norm += value * value;
    }
    scale *= Math.sqrt(norm);
  }
  // |det| relative to the product of the column lengths is the volume of
  // the unit-column parallelepiped: 1 for orthogonal columns, 0 if flat.
  const determinant = mat3.determinant(linear as unknown as mat3);
  return !(scale > 0) || !(Math.abs(determinant) > 1e-9 * scale);
}

/** Returns the qform as a matrix, or null (with a warning) when invalid. */
function qformMatrix(
  header: NiftiHeader,
  warnings: string[],
): Float64Array | null {
  let [b, c, d] = header.quaternion;
  const offsetsFinite = header.qoffset.every(Number.isFinite);
  if (![b, c, d].every(Number.isFinite) || !offsetsFinite) {
    warnings.push(
      `qform_code is ${header.qformCode} but a quaternion field or qoffset ` +
        `is not finite; ignoring the qform`,
    );
    return null;
  }
  const sum = b * b + c * c + d * d;
  if (sum > 1 + QUATERNION_TOLERANCE) {
    warnings.push(
      `qform_code is ${header.qformCode} but the quaternion has ` +
        `b^2+c^2+d^2 = ${sum.toPrecision(7)} > 1; ignoring the qform`,
    );
    return null;
  }

  let a = Math.sqrt(Math.max(0, 1 - sum));
  if (sum > 1) {
    // Rounding put the quaternion just outside the unit sphere.
    const norm = Math.sqrt(sum);
    [a, b, c, d] = [0, b / norm, c / norm, d / norm];
  }

  const sizes = voxelSizes(header, warnings);
  // qfac is -1 when pixdim[0] is negative and 1 otherwise (0 counts as 1).
  const qfac = header.pixdim[0] < 0 ? -1 : 1;
  const affine = new Float64Array(16);
  mat4.fromRotationTranslationScale(
    affine as unknown as mat4,
    Float64Array.of(b, c, d, a) as unknown as quat,
    Float64Array.from(header.qoffset) as unknown as [number, number, number],
    Float64Array.of(sizes[0], sizes[1], qfac * sizes[2]) as unknown as [
      number,
      number,
      number,
    ],
  );
  return affine;
}

/**
 * Returns pixdim[1..3] as usable voxel sizes: a negative size becomes its
 * absolute value, and zero, NaN or infinity becomes 1 mm, each with a
 * warning. Sizes of axes beyond dim[0] (such as z of a 2D image) fall back
 * silently.
 */
export function voxelSizes(
  header: NiftiHeader,
  warnings: string[],
): [number, number, number] {
  const sizes: [number, number, number] = [1, 1, 1];
  for (let axis = 0; axis < 3; axis++) {
    const value = header.pixdim[axis + 1];
    const used = axis < header.dim[0];
    if (Number.isFinite(value) && value > 0) {
      sizes[axis] = value;
    } else if (Number.isFinite(value) && value < 0) {
      sizes[axis] = -value;
      if (used) {
        warnings.push(
          `pixdim[${axis + 1}] is ${value}; using its absolute value`,
        );
      }
    } else if (used) {
      warnings.push(`pixdim[${axis + 1}] is ${value}; using 1 mm`);
    }
  }
  return sizes;
}

/** Returns the largest distance in mm between two affines' grid corners. */
function maxCornerDistance(
  first: Float64Array,
  second: Float64Array,
  dim: number[],
): number {
  const last = [1, 2, 3].map((axis) =>
    axis <= dim[0] ? Math.max(0, dim[axis] - 1) : 0,
  );
  let worst = 0;
  for (let corner = 0; corner < 8; corner++) {
    const voxel = [0, 1, 2].map((axis) =>
      corner & (1 << axis) ? last[axis] : 0,
    );
    let squared = 0;
    for (let row = 0; row < 3; row++) {
      let difference = first[12 + row] - second[12 + row];
      for (let column = 0; column < 3; column++) {
        const delta = first[column * 4 + row] - second[column * 4 + row];
        difference += delta * voxel[column];
      }
      squared += difference * difference;
    }
    worst = Math.max(worst, Math.sqrt(squared));
  }
  return worst;
}

export interface QformFields {
  quaternion: [number, number, number];
  qoffset: [number, number, number];
  /** pixdim[0..3]: qfac, then the column lengths. */
  pixdim: [number, number, number, number];
  /** False when the affine has shear, so no qform can represent it. */
  representable: boolean;
}

/**
 * Derives the qform fields from an affine, the inverse of the reader's
 * qform rule: the column lengths become pixdim, a negative determinant
 * becomes qfac = -1 with the third column flipped, and the remaining
 * rotation becomes a quaternion with a >= 0.
 */
export function qformFromAffine(affine: Float64Array): QformFields {
  const spacing = [0, 1, 2].map((column) =>
    Math.hypot(
      affine[column * 4],
      affine[column * 4 + 1],
      affine[column * 4 + 2],
    ),
  );
  const rotation = new Float64Array(9);
  for (let column = 0; column < 3; column++) {
    for (let row = 0; row < 3; row++) {
      rotation[column * 3 + row] = affine[column * 4 + row] / spacing[column];
    }
  }
  const representable = isOrthogonal(rotation);

  const asMat3 = rotation as unknown as mat3;
  const qfac = mat3.determinant(asMat3) < 0 ? -1 : 1;
  if (qfac < 0) {
    for (let row = 0; row < 3; row++) rotation[6 + row] *= -1;
  }

  const q = new Float64Array(4);
  quat.fromMat3(q as unknown as quat, asMat3);
  quat.normalize(q as unknown as quat, q as unknown as quat);
  // NIfTI stores b, c, d and derives a = sqrt(1 - b^2 - c^2 - d^2) >= 0.
  const sign = q[3] < 0 ? -1 : 1;
  return {
    quaternion: [sign * q[0], sign * q[1], sign * q[2]],
    qoffset: [affine[12], affine[13], affine[14]],
    pixdim: [qfac, spacing[0], spacing[1], spacing[2]],
    representable,
  };
}

function isOrthogonal(unitColumns: Float64Array): boolean {
  for (const [i, j] of [
    [0, 1],
    [0, 2],
    [1, 2],
  ]) {
    let dot = 0;
    for (let row = 0; row < 3; row++) {
      dot += unitColumns[i * 3 + row] * unitColumns[j * 3 + row];
    }
    if (Math.abs(dot) > SHEAR_TOLERANCE) return false;
  }
  return true;
}
