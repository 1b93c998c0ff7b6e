// warpScanThroughField: a scan sampled through a world displacement field
// that lies on another grid, onto a third grid (what `register` writes).

import { describe, expect, it } from 'vitest';
import { createVolume, type Volume } from '../src/pipeline/volume.js';
import { warpScanThroughField } from '../src/pipeline/warp-scan.js';

/** Returns a column-major affine with voxel sizes (sx, sy, sz) and origin (ox, oy, oz). */
function scaled(sx: number, sy: number, sz: number, ox = 0, oy = 0, oz = 0): Float64Array {
  return Float64Array.from([sx, 0, 0, 0, 0, sy, 0, 0, 0, 0, sz, 0, ox, oy, oz, 1]);
}

/** Returns a moving scan whose value at voxel (i, j, k) is i + 10 j + 100 k. */
function ramp(dims: [number, number, number], affine: Float64Array): Volume {
  const [nx, ny, nz] = dims;
  const data = new Float32Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) data[i + nx * (j + ny * k)] = i + 10 * j + 100 * k;
    }
  }
  return createVolume(data, dims, affine);
}

/** Returns a field of one world displacement (dx, dy, dz) mm everywhere. */
function uniformField(dims: [number, number, number], affine: Float64Array, d: [number, number, number]): Volume {
  const count = dims[0] * dims[1] * dims[2];
  const data = new Float32Array(3 * count);
  for (let c = 0; c < 3; c++) data.fill(d[c], c * count, (c + 1) * count);
  return createVolume(data, [...dims, 1, 3], affine);
}

describe('warpScanThroughField', () => {
  const moving = ramp([6, 5, 4], scaled(2, 2, 2));

  it('a zero field returns the scan on its own grid', () => {
    const field = uniformField([3, 3, 3], scaled(4, 4, 4), [0, 0, 0]);
    const out = warpScanThroughField(moving, field, moving);
    expect(Array.from(out.data)).toEqual(Array.from(moving.data));
    expect(out.dims).toEqual([6, 5, 4]);
  });

  it('a world shift moves by whole voxels', () => {
    // 2 mm along x is one moving voxel: out(i) = moving(i + 1) inside.
    const field = uniformField([3, 3, 3], scaled(4, 4, 4, 1, 1, 1), [2, 0, 4]);
    const out = warpScanThroughField(moving, field, moving);
    for (const [i, j, k] of [[0, 0, 0], [3, 2, 1], [4, 4, 1]]) {
      expect(out.data[i + 6 * (j + 5 * k)], `voxel ${i}, ${j}, ${k}`).toBe(i + 1 + 10 * j + 100 * (k + 2));
    }
    // Past the moving scan's last slice, only zeros are sampled.
    expect(out.data[0 + 6 * (0 + 5 * 3)]).toBe(0);
  });

  it('samples at the target grid resolution', () => {
    // A target of 1 mm voxels on the moving scan's 2 mm grid: half-voxel steps.
    const target = { dims: [11, 9, 7], affine: scaled(1, 1, 1) };
    const field = uniformField([2, 2, 2], scaled(10, 10, 10), [0, 0, 0]);
    const out = warpScanThroughField(moving, field, target);
    expect(out.dims).toEqual([11, 9, 7]);
    // World (3, 4, 2) mm is moving voxel (1.5, 2, 1): the ramp 1.5 + 20 + 100.
    expect(out.data[3 + 11 * (4 + 9 * 2)]).toBeCloseTo(121.5, 5);
  });

  it('nearest mode adds no label values', () => {
    const labels = createVolume(Float32Array.from({ length: 120 }, (_, v) => (v % 7 === 0 ? 5 : v % 3)), [6, 5, 4], scaled(2, 2, 2));
    const field = uniformField([3, 3, 3], scaled(4, 4, 4), [0.9, -1.3, 0.6]);
    const out = warpScanThroughField(labels, field, { dims: [12, 10, 8], affine: scaled(1, 1, 1) }, 'nearest');
    expect(new Set(out.data)).toEqual(new Set([0, 1, 2, 5]));
  });

  it('extends the border displacement outside the field', () => {
    // The field covers x from 0 to 2 mm only and moves by 2 mm along x.
    const field = uniformField([2, 2, 2], scaled(2, 2, 2), [2, 0, 0]);
    const out = warpScanThroughField(moving, field, moving);
    expect(out.data[3 + 6 * (4 + 5 * 3)]).toBe(4 + 40 + 300);
  });

  it('rejects a field that is not a 3-vector volume', () => {
    const scalar = createVolume(new Float32Array(27), [3, 3, 3], scaled(1, 1, 1));
    expect(() => warpScanThroughField(moving, scalar, moving)).toThrow(
      'warpScanThroughField: field dims [3, 3, 3] must be [nx, ny, nz, 1, 3]',
    );
  });
});
