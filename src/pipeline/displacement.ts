// Conversion between the warp kernel's voxel-unit flow and NIfTI
// displacement fields in world millimetres.
//
// Flow layout: [1, 3, D, H, W] = [1, 3, nz, ny, nx], so a NIfTI volume's x
// (fastest) is W. Channel 0 is the displacement along D (k), channel 1 along
// H (j), channel 2 along W (i), in voxels.
//
// Field layout: dims [nx, ny, nz, 1, 3], intent NIFTI_INTENT_DISPVECT
// (1006), the vector component the slowest axis. Components are world RAS+
// millimetres (x, y, z): the affine's 3x3 linear part times the voxel
// displacement (di, dj, dk). NOTE: ITK and ANTs store displacement vectors
// in LPS, so their fields have x and y negated relative to these.

import { mat3 } from 'gl-matrix';
import { INTENT_DISPLACEMENT_VECTOR, NiftiError } from './nifti-types.js';
import { spacingFromAffine, type Volume } from './volume.js';

/** A flow tensor's values on the host, with its shape [1, 3, D, H, W]. */
export interface FlowVox {
  data: Float32Array;
  shape: number[];
}

/** The grid a flow lives on: dims [nx, ny, nz] and its affine. */
export type GridLike = Pick<Volume, 'dims' | 'affine'> &
  Partial<Pick<Volume, 'sformCode' | 'qformCode'>>;

function linearPart(affine: Float64Array): Float64Array {
  const linear = new Float64Array(9);
  for (let column = 0; column < 3; column++) {
    for (let row = 0; row < 3; row++) {
      linear[column * 3 + row] = affine[column * 4 + row];
    }
  }
  return linear;
}

/**
 * Converts a voxel-unit flow [1, 3, nz, ny, nx] on `grid` into a NIfTI
 * displacement field in world millimetres, ready for `writeNifti`.
 *
 * The flow's voxel p samples voxel p + flow(p) of the image it warps,
 * which lies on `sampled` (by default `grid` itself). The field contains,
 * at p, the world position sampled minus the world position of p:
 * A_sampled [p + flow(p); 1] - A_grid [p; 1]. When the two grids are one,
 * that is the affine's linear part times the flow.
 */
export function flowToDisplacementField(
  flowVox: { data: ArrayLike<number>; shape: readonly number[] },
  grid: GridLike,
  sampled: Pick<Volume, 'affine'> = grid,
): Volume {
  const source = 'flowToDisplacementField';
  if (grid.dims.length !== 3) {
    throw new NiftiError(
      source,
      `grid dims [${grid.dims.join(', ')}] must be [nx, ny, nz]`,
    );
  }
  const [nx, ny, nz] = grid.dims;
  const expected = [1, 3, nz, ny, nx];
  const shapeMatches =
    flowVox.shape.length === 5 &&
    flowVox.shape.every((size, axis) => size === expected[axis]);
  if (!shapeMatches || flowVox.data.length !== 3 * nx * ny * nz) {
    throw new NiftiError(
      source,
      `flow [${flowVox.shape.join(', ')}] with ${flowVox.data.length} values ` +
        `does not match grid dims [${nx}, ${ny}, ${nz}]; expected ` +
        `[${expected.join(', ')}]`,
    );
  }

  const count = nx * ny * nz;
  const data = new Float32Array(3 * count);
  const flow = flowVox.data;
  if (sampled === grid) {
    const linear = linearPart(grid.affine);
    for (let voxel = 0; voxel < count; voxel++) {
      const dk = flow[voxel];
      const dj = flow[count + voxel];
      const di = flow[2 * count + voxel];
      for (let row = 0; row < 3; row++) {
        data[row * count + voxel] =
          linear[row] * di + linear[3 + row] * dj + linear[6 + row] * dk;
      }
    }
  } else {
    const to = grid.affine;
    const from = sampled.affine;
    for (let voxel = 0; voxel < count; voxel++) {
      const i = voxel % nx;
      const j = Math.floor(voxel / nx) % ny;
      const k = Math.floor(voxel / (nx * ny));
      const si = i + flow[2 * count + voxel];
      const sj = j + flow[count + voxel];
      const sk = k + flow[voxel];
      for (let row = 0; row < 3; row++) {
        const reached = from[row] * si + from[4 + row] * sj + from[8 + row] * sk + from[12 + row];
        const own = to[row] * i + to[4 + row] * j + to[8 + row] * k + to[12 + row];
        data[row * count + voxel] = reached - own;
      }
    }
  }

  const affine = Float64Array.from(grid.affine);
  const field: Volume = {
    data,
    dims: [nx, ny, nz, 1, 3],
    spacing: spacingFromAffine(affine),
    affine,
    datatype: 'float32',
    intentCode: INTENT_DISPLACEMENT_VECTOR,
    description: 'displacement (RAS mm)',
  };
  if (grid.sformCode !== undefined) field.sformCode = grid.sformCode;
  if (grid.qformCode !== undefined) field.qformCode = grid.qformCode;
  return field;
}

/**
 * Converts a NIfTI displacement field (dims [nx, ny, nz, 1, 3], intent
 * 1006, world RAS+ mm) back to the voxel-unit flow [1, 3, nz, ny, nx].
 */
export function displacementFieldToFlow(field: Volume): FlowVox {
  const source = 'displacementFieldToFlow';
  const { dims } = field;
  const isField =
    dims.length === 5 && dims[3] === 1 && dims[4] === 3 &&
    field.intentCode === INTENT_DISPLACEMENT_VECTOR;
  if (!isField) {
    throw new NiftiError(
      source,
      `volume with dims [${dims.join(', ')}] and intent ${field.intentCode} ` +
        `is not a displacement field; expected dims [nx, ny, nz, 1, 3] and ` +
        `intent ${INTENT_DISPLACEMENT_VECTOR} (NIFTI_INTENT_DISPVECT)`,
    );
  }
  const [nx, ny, nz] = dims;
  const count = nx * ny * nz;
  const inverse = new Float64Array(9);
  const inverted = mat3.invert(
    inverse as unknown as mat3,
    linearPart(field.affine) as unknown as mat3,
  );
  if (inverted === null) {
    throw new NiftiError(source, "the field's affine is singular");
  }

  const data = new Float32Array(3 * count);
  const vectors = field.data;
  for (let voxel = 0; voxel < count; voxel++) {
    const x = vectors[voxel];
    const y = vectors[count + voxel];
    const z = vectors[2 * count + voxel];
    // inverse * (x, y, z) = (di, dj, dk); channels are ordered k, j, i.
    for (let axis = 0; axis < 3; axis++) {
      data[(2 - axis) * count + voxel] =
        inverse[axis] * x + inverse[3 + axis] * y + inverse[6 + axis] * z;
    }
  }
  return { data, shape: [1, 3, nz, ny, nx] };
}
