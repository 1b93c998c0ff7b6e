// Resampling of a volume onto another grid through world coordinates: for
// each target voxel, world = targetAffine * index, then source index =
// inverse(sourceAffine) * world, then the source is sampled there. Any
// reorientation, crop or change of spacing composes exactly, because only
// the two affines are involved.

import { checkGrid, voxelToVoxel, type Grid } from './grid.js';
import { spacingFromAffine, voxelCount, type Volume } from './volume.js';

/**
 * 'linear' is trilinear interpolation, for images. The two label modes
 * return only values present in the source (or the fill value). 'nearest'
 * takes the closest voxel. 'vote' takes the label with the largest summed
 * trilinear weight among the 8 neighbours, which is the argmax of
 * interpolated one-hot maps and gives smoother boundaries when upsampling.
 */
export type InterpolationMode = 'linear' | 'nearest' | 'vote';

export interface ResampleOptions {
  /** Interpolation; 'linear' unless set. */
  mode?: InterpolationMode;
  /** Value of samples outside the source grid (default 0). */
  fill?: number;
}

/**
 * Samples a 3D volume at the voxel centres of `grid` and returns a new
 * volume with the grid's dims and affine.
 *
 * Conventions: voxel index (i, j, k) is the voxel centre, as in NIfTI.
 * Linear mode weights the 8 neighbours and uses `fill` for those outside
 * the source, so values fade to `fill` within one voxel past the edge.
 * Nearest mode rounds the source index and returns `fill` outside; in
 * vote mode, neighbours outside vote for `fill`.
 *
 * NOTE: no low-pass filter runs before downsampling, so shrinking by a
 * large factor aliases fine detail (the same as PyTorch's grid_sample).
 */
export function resampleVolume(
  volume: Volume,
  grid: Grid,
  options: ResampleOptions = {},
): Volume {
  const source = 'resampleVolume';
  checkGrid(volume, source, 'source');
  checkGrid(grid, source, 'target');
  if (volume.dims.length !== 3 || grid.dims.length !== 3) {
    throw new Error(
      `${source}: source dims [${volume.dims.join(', ')}] and target dims ` +
        `[${grid.dims.join(', ')}] must both be 3D [nx, ny, nz]`,
    );
  }
  if (volume.data.length !== voxelCount(volume.dims)) {
    throw new Error(
      `${source}: source has ${volume.data.length} values but dims ` +
        `[${volume.dims.join(', ')}] need ${voxelCount(volume.dims)}`,
    );
  }
  const mode = options.mode ?? 'linear';
  if (mode !== 'linear' && mode !== 'nearest' && mode !== 'vote') {
    throw new Error(
      `${source}: mode "${String(mode)}" is not 'linear', 'nearest' or ` +
        `'vote'`,
    );
  }
  const fill = options.fill ?? 0;

  const targetToSource = voxelToVoxel(grid.affine, volume.affine, source);
  const samplers = {
    linear: sampleLinear,
    nearest: sampleNearest,
    vote: sampleVote,
  };
  const sampler = samplers[mode];
  const data = sampler(volume, grid.dims, targetToSource, fill);

  const affine = Float64Array.from(grid.affine);
  return {
    data,
    dims: [...grid.dims],
    spacing: spacingFromAffine(affine),
    affine,
    datatype: mode === 'linear' ? 'float32' : volume.datatype,
    intentCode: volume.intentCode,
    ...(volume.sformCode !== undefined && { sformCode: volume.sformCode }),
    ...(volume.qformCode !== undefined && { qformCode: volume.qformCode }),
  };
}

// Both samplers walk the target grid row by row: the source index of
// target (0, j, k) is computed once per row, plus i times the first column
// of `m` (multiplied, not accumulated, so no rounding error builds up).

function sampleLinear(
  volume: Volume,
  dims: readonly number[],
  m: Float64Array,
  fill: number,
): Float32Array {
  const [nx, ny, nz] = volume.dims;
  const plane = nx * ny;
  const values = volume.data;
  const [mx, my, mz] = dims;
  const out = new Float32Array(mx * my * mz);
  let index = 0;
  for (let k = 0; k < mz; k++) {
    for (let j = 0; j < my; j++) {
      const rowX = m[4] * j + m[8] * k + m[12];
      const rowY = m[5] * j + m[9] * k + m[13];
      const rowZ = m[6] * j + m[10] * k + m[14];
      for (let i = 0; i < mx; i++) {
        const x = rowX + m[0] * i;
        const y = rowY + m[1] * i;
        const z = rowZ + m[2] * i;
        const x0 = Math.floor(x);
        const y0 = Math.floor(y);
        const z0 = Math.floor(z);
        if (x0 < -1 || y0 < -1 || z0 < -1 || x0 >= nx || y0 >= ny || z0 >= nz) {
          out[index++] = fill;
          continue;
        }
        const fx = x - x0;
        const fy = y - y0;
        const fz = z - z0;
        const inside =
          x0 >= 0 && y0 >= 0 && z0 >= 0 && x0 < nx - 1 && y0 < ny - 1 &&
          z0 < nz - 1;
        if (inside) {
          const base = x0 + nx * y0 + plane * z0;
          const c00 = values[base] + fx * (values[base + 1] - values[base]);
          const c10 =
            values[base + nx] +
            fx * (values[base + nx + 1] - values[base + nx]);
          const c01 =
            values[base + plane] +
            fx * (values[base + plane + 1] - values[base + plane]);
          const c11 =
            values[base + plane + nx] +
            fx * (values[base + plane + nx + 1] - values[base + plane + nx]);
          const c0 = c00 + fy * (c10 - c00);
          const c1 = c01 + fy * (c11 - c01);
          out[index++] = c0 + fz * (c1 - c0);
          continue;
        }
        out[index++] = sampleEdge(volume, x0, y0, z0, fx, fy, fz, fill);
      }
    }
  }
  return out;
}

/** Trilinear sample near the border: corners outside count as `fill`. */
function sampleEdge(
  volume: Volume,
  x0: number,
  y0: number,
  z0: number,
  fx: number,
  fy: number,
  fz: number,
  fill: number,
): number {
  const [nx, ny, nz] = volume.dims;
  let sum = 0;
  for (let corner = 0; corner < 8; corner++) {
    const dx = corner & 1;
    const dy = (corner >> 1) & 1;
    const dz = corner >> 2;
    const weight =
      (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * (dz ? fz : 1 - fz);
    if (weight === 0) continue;
    const x = x0 + dx;
    const y = y0 + dy;
    const z = z0 + dz;
    const inside = x >= 0 && y >= 0 && z >= 0 && x < nx && y < ny && z < nz;
    sum += weight * (inside ? volume.data[x + nx * (y + ny * z)] : fill);
  }
  return sum;
}

function sampleNearest(
  volume: Volume,
  dims: readonly number[],
  m: Float64Array,
  fill: number,
): Float32Array {
  const [nx, ny, nz] = volume.dims;
  const values = volume.data;
  const [mx, my, mz] = dims;
  const out = new Float32Array(mx * my * mz);
  let index = 0;
  for (let k = 0; k < mz; k++) {
    for (let j = 0; j < my; j++) {
      const rowX = m[4] * j + m[8] * k + m[12];
      const rowY = m[5] * j + m[9] * k + m[13];
      const rowZ = m[6] * j + m[10] * k + m[14];
      for (let i = 0; i < mx; i++) {
        const x = rowX + m[0] * i;
        const y = rowY + m[1] * i;
        const z = rowZ + m[2] * i;
        const xi = Math.round(x);
        const yi = Math.round(y);
        const zi = Math.round(z);
        const inside =
          xi >= 0 && yi >= 0 && zi >= 0 && xi < nx && yi < ny && zi < nz;
        out[index++] = inside ? values[xi + nx * (yi + ny * zi)] : fill;
      }
    }
  }
  return out;
}

function sampleVote(
  volume: Volume,
  dims: readonly number[],
  m: Float64Array,
  fill: number,
): Float32Array {
  const [nx, ny, nz] = volume.dims;
  const values = volume.data;
  const [mx, my, mz] = dims;
  const out = new Float32Array(mx * my * mz);
  const labels = new Float64Array(8);
  const weights = new Float64Array(8);
  let index = 0;
  for (let k = 0; k < mz; k++) {
    for (let j = 0; j < my; j++) {
      const rowX = m[4] * j + m[8] * k + m[12];
      const rowY = m[5] * j + m[9] * k + m[13];
      const rowZ = m[6] * j + m[10] * k + m[14];
      for (let i = 0; i < mx; i++) {
        const x = rowX + m[0] * i;
        const y = rowY + m[1] * i;
        const z = rowZ + m[2] * i;
        const x0 = Math.floor(x);
        const y0 = Math.floor(y);
        const z0 = Math.floor(z);
        const fx = x - x0;
        const fy = y - y0;
        const fz = z - z0;
        // Sum the trilinear weight of each distinct label among the 8
        // neighbours (outside ones vote for `fill`) and keep the largest.
        let distinct = 0;
        for (let corner = 0; corner < 8; corner++) {
          const dx = corner & 1;
          const dy = (corner >> 1) & 1;
          const dz = corner >> 2;
          const weight =
            (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * (dz ? fz : 1 - fz);
          const cx = x0 + dx;
          const cy = y0 + dy;
          const cz = z0 + dz;
          const inside =
            cx >= 0 && cy >= 0 && cz >= 0 && cx < nx && cy < ny && cz < nz;
          const label = inside ? values[cx + nx * (cy + ny * cz)] : fill;
          let slot = 0;
          while (slot < distinct && labels[slot] !== label) slot++;
          if (slot === distinct) {
            labels[distinct] = label;
            weights[distinct++] = 0;
          }
          weights[slot] += weight;
        }
        let best = 0;
        for (let slot = 1; slot < distinct; slot++) {
          if (weights[slot] > weights[best]) best = slot;
        }
        out[index++] = labels[best];
      }
    }
  }
  return out;
}
