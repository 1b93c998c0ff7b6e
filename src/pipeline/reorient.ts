// Reorientation to canonical RAS: voxel axes i, j, k pointing right,
// anterior and superior. Only permutes and flips the data (no
// interpolation), and updates the affine so that every voxel keeps its
// world position exactly.

import { INTENT_DISPLACEMENT_VECTOR } from './nifti-types.js';
import { spacingFromAffine, voxelCount, type Volume } from './volume.js';

/**
 * Mapping of a grid's voxel axes to RAS: new axis `a` (0 = R, 1 = A,
 * 2 = S) is old voxel axis `axes[a]`, reversed when `flips[a]` is true.
 */
export interface RasOrientation {
  axes: [number, number, number];
  flips: [boolean, boolean, boolean];
}

const PERMUTATIONS: [number, number, number][] = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
];

/**
 * Finds the permutation and flips that make an affine's voxel axes point
 * as closely as possible to R, A and S. For an oblique grid the new axes
 * are the ones with the largest summed direction cosines. The affine then
 * stays oblique, because only a resampling can remove a rotation.
 */
export function rasOrientation(affine: ArrayLike<number>): RasOrientation {
  const spacing = spacingFromAffine(affine);
  // cosine[world][voxel]: component of voxel axis `voxel` along `world`.
  const cosine = (world: number, voxel: number) =>
    affine[voxel * 4 + world] / spacing[voxel];
  let best = PERMUTATIONS[0];
  let bestScore = -Infinity;
  for (const axes of PERMUTATIONS) {
    let score = 0;
    for (let world = 0; world < 3; world++) {
      score += Math.abs(cosine(world, axes[world]));
    }
    if (score > bestScore + 1e-12) {
      best = axes;
      bestScore = score;
    }
  }
  const flips = best.map(
    (voxel, world) => cosine(world, voxel) < 0,
  ) as RasOrientation['flips'];
  return { axes: [...best], flips };
}

/** Returns true when the volume's voxel axes already point R, A, S. */
export function isRas(affine: ArrayLike<number>): boolean {
  const { axes, flips } = rasOrientation(affine);
  return axes.every((voxel, world) => voxel === world && !flips[world]);
}

/**
 * Returns the affine of the reoriented grid: column `a` is old column
 * `axes[a]`, negated when flipped, and the origin moves to the old voxel
 * that becomes the new index 0.
 */
export function reorientedAffine(
  affine: ArrayLike<number>,
  dims: readonly number[],
  orientation: RasOrientation,
): Float64Array {
  const out = new Float64Array(16);
  out[15] = 1;
  for (let row = 0; row < 3; row++) out[12 + row] = affine[12 + row];
  for (let axis = 0; axis < 3; axis++) {
    const old = orientation.axes[axis];
    const sign = orientation.flips[axis] ? -1 : 1;
    for (let row = 0; row < 3; row++) {
      const value = affine[old * 4 + row];
      // value === 0 stays +0 rather than becoming -0 when negated.
      out[axis * 4 + row] = value === 0 ? 0 : sign * value;
      if (orientation.flips[axis]) {
        out[12 + row] += value * (dims[old] - 1);
      }
    }
  }
  return out;
}

/**
 * Reorients a volume to RAS by permuting and flipping its voxel axes.
 * Returns the input itself when it is RAS already. Series (4D) are
 * reoriented volume by volume.
 *
 * Voxel positions are kept: the new affine applied to a new index gives
 * the world point of the old index with the same value, up to float64
 * rounding. Grids with small integer entries, such as the IXI and CT
 * scans, keep them exactly.
 */
export function reorientToRas(volume: Volume): Volume {
  const source = 'reorientToRas';
  if (volume.intentCode === INTENT_DISPLACEMENT_VECTOR) {
    throw new Error(
      `${source}: a displacement field's vectors would need rotating as ` +
        `well; convert it with displacementFieldToFlow after reorienting ` +
        `its grid`,
    );
  }
  if (volume.dims.length < 3 || volume.data.length !== voxelCount(volume.dims)) {
    throw new Error(
      `${source}: dims [${volume.dims.join(', ')}] do not match ` +
        `${volume.data.length} values`,
    );
  }
  const orientation = rasOrientation(volume.affine);
  if (isIdentity(orientation)) return volume;

  const [nx, ny, nz] = volume.dims;
  const oldStrides = [1, nx, nx * ny];
  const newDims = orientation.axes.map((old) => volume.dims[old]);
  const steps = [0, 0, 0];
  let base = 0;
  for (let axis = 0; axis < 3; axis++) {
    const old = orientation.axes[axis];
    const stride = oldStrides[old];
    steps[axis] = orientation.flips[axis] ? -stride : stride;
    if (orientation.flips[axis]) base += stride * (volume.dims[old] - 1);
  }

  const perVolume = nx * ny * nz;
  const volumes = volume.data.length / perVolume;
  const data = new Float32Array(volume.data.length);
  const [mx, my, mz] = newDims;
  let out = 0;
  for (let t = 0; t < volumes; t++) {
    const offset = t * perVolume + base;
    for (let k = 0; k < mz; k++) {
      for (let j = 0; j < my; j++) {
        let index = offset + j * steps[1] + k * steps[2];
        for (let i = 0; i < mx; i++) {
          data[out++] = volume.data[index];
          index += steps[0];
        }
      }
    }
  }

  const affine = reorientedAffine(volume.affine, volume.dims, orientation);
  return {
    ...volume,
    data,
    dims: [...newDims, ...volume.dims.slice(3)],
    spacing: spacingFromAffine(affine),
    affine,
  };
}

function isIdentity(orientation: RasOrientation): boolean {
  return orientation.axes.every(
    (old, axis) => old === axis && !orientation.flips[axis],
  );
}
