// The in-memory image volume that NIfTI reading produces and writing
// consumes. Plain CPU data, usable in Node and browsers.

/** NIfTI datatypes that the reader decodes and the writer encodes. */
export type NiftiDatatype =
  | 'uint8'
  | 'int8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'float32'
  | 'float64';

/**
 * A voxel grid with its world placement.
 *
 * Layout: `data` is stored as in the file, x (i) fastest, then y (j), z (k),
 * then the 4th and 5th NIfTI dimensions. As a tensor it is
 * [C, nz, ny, nx] with no data movement.
 *
 * `dims` has length 3 for a scalar volume [nx, ny, nz] and length 4 for a
 * series [nx, ny, nz, nt]. A vector image has length 5, [nx, ny, nz, nt,
 * nc], as in a displacement field [nx, ny, nz, 1, 3].
 * Trailing dimensions of size 1 after the third are dropped on read, so a
 * 4D file whose 4th dimension is 1 loads as 3D.
 *
 * NOTE: values are float32, which represents every integer up to 2^24 =
 * 16,777,216 in magnitude exactly. Label maps therefore keep their values,
 * but int32 and uint32 data beyond 2^24 are rounded (the reader warns).
 */
export interface Volume {
  data: Float32Array;
  dims: number[];
  /** Voxel size in mm along i, j, k: the lengths of the affine's columns. */
  spacing: [number, number, number];
  /**
   * Voxel-to-world matrix, column-major 4x4 (gl-matrix layout): world RAS+
   * millimetres = affine * [i, j, k, 1].
   */
  affine: Float64Array;
  /** Datatype of the source file, or of the data when built in code. */
  datatype: NiftiDatatype;
  /** NIfTI intent code, such as 0 (none) or 1006 (displacement vectors). */
  intentCode: number;
  description?: string;
  /** sform_code of the source file (0 when it had none). */
  sformCode?: number;
  /** qform_code of the source file (0 when it had none). */
  qformCode?: number;
  /** Problems the reader worked around, also sent to `log.warn`. */
  warnings?: string[];
}

/** Returns the number of voxels times components that `dims` describes. */
export function voxelCount(dims: readonly number[]): number {
  return dims.reduce((product, size) => product * size, 1);
}

/** Returns the lengths of the affine's first three columns, in mm. */
export function spacingFromAffine(
  affine: ArrayLike<number>,
): [number, number, number] {
  const spacing: [number, number, number] = [0, 0, 0];
  for (let column = 0; column < 3; column++) {
    const x = affine[column * 4];
    const y = affine[column * 4 + 1];
    const z = affine[column * 4 + 2];
    spacing[column] = Math.hypot(x, y, z);
  }
  return spacing;
}

/**
 * Creates a float32 volume from data laid out x fastest. Without an affine
 * the grid gets 1 mm voxels at the world origin.
 */
export function createVolume(
  data: Float32Array,
  dims: readonly number[],
  affine?: ArrayLike<number>,
): Volume {
  const validDims =
    dims.length >= 3 &&
    dims.length <= 5 &&
    dims.every((size) => Number.isInteger(size) && size >= 1);
  if (!validDims) {
    throw new Error(
      `createVolume: dims [${dims.join(', ')}] must be 3 to 5 positive ` +
        `integers`,
    );
  }
  if (data.length !== voxelCount(dims)) {
    throw new Error(
      `createVolume: data has ${data.length} values but dims ` +
        `[${dims.join(', ')}] need ${voxelCount(dims)}`,
    );
  }
  const matrix = new Float64Array(16);
  if (affine) {
    if (affine.length !== 16) {
      throw new Error(
        `createVolume: affine has ${affine.length} values; expected 16`,
      );
    }
    matrix.set(Array.from(affine));
  } else {
    matrix[0] = matrix[5] = matrix[10] = matrix[15] = 1;
  }
  return {
    data,
    dims: [...dims],
    spacing: spacingFromAffine(matrix),
    affine: matrix,
    datatype: 'float32',
    intentCode: 0,
  };
}

/**
 * Returns the world direction each voxel axis (i, j, k) points to most: one
 * of R/L, A/P, S/I per axis, as in "PSR" for i toward posterior, j toward
 * superior and k toward right.
 */
export function axisCodes(affine: ArrayLike<number>): string {
  let codes = '';
  for (let column = 0; column < 3; column++) {
    let best = 0;
    for (let row = 1; row < 3; row++) {
      const value = Math.abs(affine[column * 4 + row]);
      if (value > Math.abs(affine[column * 4 + best])) best = row;
    }
    codes += affine[column * 4 + best] >= 0 ? 'RAS'[best] : 'LPI'[best];
  }
  return codes;
}
