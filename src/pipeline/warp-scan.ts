// Warping a scan on its own grid through a world displacement field onto
// another grid. `register` writes its results this way, so the warped
// moving scan keeps its own intensities and takes the fixed scan's
// resolution, instead of the model's preprocessed grid and intensities.

import { invertAffine, voxelToVoxel, type Grid } from './grid.js';
import { spacingFromAffine, voxelCount, type Volume } from './volume.js';

/** Sampling of the moving scan: 'linear' for images, 'nearest' for label maps. */
export type WarpScanMode = 'linear' | 'nearest';

/**
 * Samples `moving` at x + d(x) for every voxel centre x (world mm) of
 * `target`, where d is `field`, a world displacement field (dims [nx, ny,
 * nz, 1, 3], RAS+ mm, as flowToDisplacementField writes) on its own grid.
 * Returns a volume on `target`'s grid.
 *
 * The field is interpolated trilinearly. Outside its grid it takes the
 * value at the nearest border voxel, so the displacement of the region
 * the field covers extends to the rest of the target grid. The moving
 * scan is sampled trilinearly ('linear', 0 outside, fading to 0 within
 * one voxel past its edge) or at the nearest voxel ('nearest', 0 outside),
 * so a label map gains no new values.
 */
export function warpScanThroughField(
  moving: Volume,
  field: Volume,
  target: Grid,
  mode: WarpScanMode = 'linear',
): Volume {
  const source = 'warpScanThroughField';
  const [fx, fy, fz, time, components] = field.dims;
  if (field.dims.length !== 5 || time !== 1 || components !== 3) {
    throw new Error(`${source}: field dims [${field.dims.join(', ')}] must be [nx, ny, nz, 1, 3]`);
  }
  if (moving.dims.length !== 3 || moving.data.length !== voxelCount(moving.dims)) {
    throw new Error(
      `${source}: moving dims [${moving.dims.join(', ')}] with ${moving.data.length} values ` +
        'must be one 3D volume [nx, ny, nz]',
    );
  }
  if (target.dims.length !== 3) {
    throw new Error(`${source}: target dims [${target.dims.join(', ')}] must be [nx, ny, nz]`);
  }
  const toField = voxelToVoxel(target.affine, field.affine, source);
  const toMoving = invertAffine(moving.affine, source);
  const world = target.affine;
  const fieldCount = fx * fy * fz;
  const fieldData = field.data;
  const [mx, my, mz] = moving.dims;
  const values = moving.data;
  const [tx, ty, tz] = target.dims;
  const out = new Float32Array(tx * ty * tz);
  const displacement = [0, 0, 0];

  let index = 0;
  for (let k = 0; k < tz; k++) {
    for (let j = 0; j < ty; j++) {
      for (let i = 0; i < tx; i++, index++) {
        // Trilinear weights of the field at the clamped position.
        const [ci, ai, bi] = clampedCell(toField[0] * i + toField[4] * j + toField[8] * k + toField[12], fx);
        const [cj, aj, bj] = clampedCell(toField[1] * i + toField[5] * j + toField[9] * k + toField[13], fy);
        const [ck, ak, bk] = clampedCell(toField[2] * i + toField[6] * j + toField[10] * k + toField[14], fz);
        for (let component = 0; component < 3; component++) {
          const base = component * fieldCount;
          let sum = 0;
          for (let corner = 0; corner < 8; corner++) {
            const di = corner & 1;
            const dj = (corner >> 1) & 1;
            const dk = corner >> 2;
            const weight = (di ? bi : ai) * (dj ? bj : aj) * (dk ? bk : ak);
            if (weight === 0) continue;
            const voxel = Math.min(ci + di, fx - 1) + fx * (Math.min(cj + dj, fy - 1) + fy * Math.min(ck + dk, fz - 1));
            sum += weight * fieldData[base + voxel];
          }
          displacement[component] = sum;
        }
        const x = world[0] * i + world[4] * j + world[8] * k + world[12] + displacement[0];
        const y = world[1] * i + world[5] * j + world[9] * k + world[13] + displacement[1];
        const z = world[2] * i + world[6] * j + world[10] * k + world[14] + displacement[2];
        const si = toMoving[0] * x + toMoving[4] * y + toMoving[8] * z + toMoving[12];
        const sj = toMoving[1] * x + toMoving[5] * y + toMoving[9] * z + toMoving[13];
        const sk = toMoving[2] * x + toMoving[6] * y + toMoving[10] * z + toMoving[14];
        out[index] = mode === 'nearest' ? sampleNearest(values, mx, my, mz, si, sj, sk) : sampleLinear(values, mx, my, mz, si, sj, sk);
      }
    }
  }
  const affine = Float64Array.from(target.affine);
  return {
    data: out,
    dims: [tx, ty, tz],
    spacing: spacingFromAffine(affine),
    affine,
    datatype: mode === 'nearest' ? moving.datatype : 'float32',
    intentCode: 0,
  };
}

/**
 * Returns the lower cell index and the weights of it and the next voxel
 * for a position along an axis of n voxels, clamped to [0, n - 1].
 */
function clampedCell(position: number, n: number): [number, number, number] {
  const clamped = Math.min(Math.max(position, 0), n - 1);
  const cell = Math.min(Math.floor(clamped), Math.max(n - 2, 0));
  const upper = clamped - cell;
  return [cell, 1 - upper, upper];
}

function sampleNearest(values: ArrayLike<number>, nx: number, ny: number, nz: number, i: number, j: number, k: number): number {
  const ri = Math.round(i);
  const rj = Math.round(j);
  const rk = Math.round(k);
  if (ri < 0 || rj < 0 || rk < 0 || ri >= nx || rj >= ny || rk >= nz) return 0;
  return values[ri + nx * (rj + ny * rk)];
}

function sampleLinear(values: ArrayLike<number>, nx: number, ny: number, nz: number, i: number, j: number, k: number): number {
  const i0 = Math.floor(i);
  const j0 = Math.floor(j);
  const k0 = Math.floor(k);
  if (i0 < -1 || j0 < -1 || k0 < -1 || i0 >= nx || j0 >= ny || k0 >= nz) return 0;
  const fi = i - i0;
  const fj = j - j0;
  const fk = k - k0;
  let sum = 0;
  for (let corner = 0; corner < 8; corner++) {
    const di = corner & 1;
    const dj = (corner >> 1) & 1;
    const dk = corner >> 2;
    const ii = i0 + di;
    const jj = j0 + dj;
    const kk = k0 + dk;
    // Neighbours outside the volume count as 0.
    if (ii < 0 || jj < 0 || kk < 0 || ii >= nx || jj >= ny || kk >= nz) continue;
    const weight = (di ? fi : 1 - fi) * (dj ? fj : 1 - fj) * (dk ? fk : 1 - fk);
    sum += weight * values[ii + nx * (jj + ny * kk)];
  }
  return sum;
}
