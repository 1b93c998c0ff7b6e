// Affine flows and affine pre-alignment: the flow op against a float64
// reference and finite differences, the matrix algebra, recovery of known
// affines on a phantom, and the Dice gain on an IXI pair.

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  affineDeterminant,
  affineFlow,
  affineFromParameters,
  affineToWorld,
  alignAffine,
  alignedToSourceGrid,
  alignedVolume,
  backward,
  composeAffines,
  diceScore,
  gradCheck,
  invertAffine,
  loadStructureTable,
  makePhantom,
  preprocess,
  resampleVolume,
  sum,
  tensor,
  toSourceGrid,
  warp,
  type PreprocessedVolume,
  type Volume,
} from '../src/index.js';
import { readNiftiFile } from '../src/node.js';
import { liveTensorCount } from '../src/tensor.js';
import { transformPoint } from '../src/pipeline/grid.js';
import {
  matrixFromNormalized,
  normalizedFromMatrix,
} from '../src/pipeline/affine-levels.js';
import type { NDArray } from '../src/reference/ndarray.js';
import { device, expectClose, randomValues } from './helpers.js';

beforeAll(device);

const IXI = new URL('../data/ixi-brain/', import.meta.url);
const IDENTITY = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0];

/** Float64 reference of affineFlow: flow_r(p) = (A p + t - p)_r. */
function affineFlowRef(matrix: NDArray, spatial: readonly number[]): NDArray {
  const [d, h, w] = spatial;
  const batch = matrix.data.length / 12;
  const voxels = d * h * w;
  const data = new Float64Array(batch * 3 * voxels);
  for (let n = 0; n < batch; n++) {
    for (let v = 0; v < voxels; v++) {
      const p = [Math.floor(v / (h * w)), Math.floor(v / w) % h, v % w];
      for (let r = 0; r < 3; r++) {
        const m = matrix.data.subarray(n * 12 + r * 4, n * 12 + r * 4 + 4);
        const moved = m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3];
        data[(n * 3 + r) * voxels + v] = moved - p[r];
      }
    }
  }
  return { shape: [batch, 3, d, h, w], data };
}

/** Applies a row-major 3x4 affine to (d, h, w). */
function apply(matrix: ArrayLike<number>, p: readonly number[]): number[] {
  return [0, 1, 2].map(
    (r) =>
      matrix[r * 4] * p[0] + matrix[r * 4 + 1] * p[1] +
      matrix[r * 4 + 2] * p[2] + matrix[r * 4 + 3],
  );
}

/** Mean distance in voxels between two affines where mask != 0. */
function meanResidual(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  mask: ArrayLike<number>,
  shape: readonly number[],
): number {
  const [, h, w] = shape;
  let total = 0;
  let count = 0;
  for (let v = 0; v < mask.length; v++) {
    if (mask[v] === 0) continue;
    const p = [Math.floor(v / (h * w)), Math.floor(v / w) % h, v % w];
    const pa = apply(a, p);
    const pb = apply(b, p);
    total += Math.hypot(pa[0] - pb[0], pa[1] - pb[1], pa[2] - pb[2]);
    count += 1;
  }
  return total / count;
}

/** Returns a phantom with its image scaled to [0, 1]. */
function phantom(size: number, seed: number) {
  const { image, labels } = makePhantom({ size, seed });
  const peak = image.data.reduce((m, v) => Math.max(m, v), 0);
  const scaled: Volume = { ...image, data: image.data.map((v) => v / peak) };
  return { image: scaled, labels };
}

/**
 * Returns the volume moved by the world transform `worldToSource`
 * (column-major 4x4): moved(x) = volume(worldToSource x), sampled on the
 * volume's own grid.
 */
function moveVolume(
  volume: Volume,
  worldToSource: Float64Array,
  mode: 'linear' | 'nearest',
): Volume {
  // resampleVolume samples inverse(affine) * grid.affine * index; an affine
  // of inverse(worldToSource) * grid.affine makes that grid^-1 T grid.
  const inverse = invertWorld(worldToSource);
  const placed = { ...volume, affine: multiply4(inverse, volume.affine) };
  return resampleVolume(placed, volume, { mode });
}

function multiply4(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(16);
  for (let column = 0; column < 4; column++) {
    for (let row = 0; row < 4; row++) {
      let value = 0;
      for (let k = 0; k < 4; k++) value += a[k * 4 + row] * b[column * 4 + k];
      out[column * 4 + row] = value;
    }
  }
  return out;
}

function invertWorld(affine: Float64Array): Float64Array {
  const rowMajor = new Float64Array(12);
  for (let row = 0; row < 3; row++) {
    for (let column = 0; column < 4; column++) {
      rowMajor[row * 4 + column] = affine[column * 4 + row];
    }
  }
  const inverse = invertAffine(rowMajor);
  const out = new Float64Array(16);
  for (let row = 0; row < 3; row++) {
    for (let column = 0; column < 4; column++) {
      out[column * 4 + row] = inverse[row * 4 + column];
    }
  }
  out[15] = 1;
  return out;
}

/** Returns a world rotation about z, scaling and shift (mm), column-major. */
function worldTransform(
  degrees: number,
  scale: number[],
  shiftMm: number[],
): Float64Array {
  const angle = (degrees * Math.PI) / 180;
  const [c, s] = [Math.cos(angle), Math.sin(angle)];
  const out = new Float64Array(16);
  out[0] = c * scale[0];
  out[1] = s * scale[0];
  out[4] = -s * scale[1];
  out[5] = c * scale[1];
  out[10] = scale[2];
  out[12] = shiftMm[0];
  out[13] = shiftMm[1];
  out[14] = shiftMm[2];
  out[15] = 1;
  return out;
}

describe('affineFlow', () => {
  it('affineFlow matches the reference for two matrices', async () => {
    const spatial = [3, 5, 7];
    const matrices = Float64Array.from(randomValues([2, 3, 4], 11), (v) =>
      Math.fround(0.3 * v),
    );
    const matrixTensor = tensor(Float32Array.from(matrices), [2, 3, 4]);
    const flow = affineFlow(matrixTensor, [1, 1, ...spatial]);
    expect(flow.shape).toEqual([2, 3, 3, 5, 7]);
    const ref = affineFlowRef({ shape: [2, 3, 4], data: matrices }, spatial);
    expectClose(await flow.toArray(), ref.data, 1e-6, 1e-6, 'flow');
    flow.dispose();
    matrixTensor.dispose();
  });

  it('affineFlow of host numbers', async () => {
    const matrix = [1, 0, 0, 0.5, 0, 0.9, 0.1, -2, 0, 0, 1.2, 3];
    const flow = affineFlow(matrix, [4, 3, 6]);
    const ref = affineFlowRef(
      { shape: [3, 4], data: Float64Array.from(matrix) },
      [4, 3, 6],
    );
    expectClose(await flow.toArray(), ref.data, 1e-6, 1e-6, 'flow');
    expect(flow.requiresGrad).toBe(false);
    flow.dispose();
  });

  it('affineFlow gradient to the matrix', async () => {
    const spatial = [3, 4, 5];
    const result = await gradCheck(
      (matrix) => affineFlow(matrix, spatial),
      (matrix: NDArray) => affineFlowRef(matrix, spatial),
      [{ shape: [3, 4], seed: 5 }],
      { rtol: 1e-3, atol: 1e-3 },
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('affineFlow gradient of a batch', async () => {
    const spatial = [2, 3, 5];
    const result = await gradCheck(
      (matrix) => affineFlow(matrix, spatial),
      (matrix: NDArray) => affineFlowRef(matrix, spatial),
      [{ shape: [2, 3, 4], seed: 6 }],
      { rtol: 1e-3, atol: 1e-3 },
    );
    expect(result.ok, result.report).toBe(true);
  });

  it('affineFlow gradient on a large grid', async () => {
    // 41 x 37 x 33 voxels: many partial sums, with coordinates up to 40.
    const spatial = [41, 37, 33];
    const voxels = 41 * 37 * 33;
    const upstream = randomValues([1, 3, ...spatial], 8);
    const matrix = tensor(new Float32Array(12), [3, 4], { requiresGrad: true });
    const weights = tensor(Float32Array.from(upstream), [1, 3, ...spatial]);
    const loss = sum(affineFlow(matrix, spatial).mul(weights));
    backward(loss);
    const expected = new Float64Array(12);
    for (let v = 0; v < voxels; v++) {
      const p = [Math.floor(v / (37 * 33)), Math.floor(v / 33) % 37, v % 33, 1];
      for (let r = 0; r < 3; r++) {
        for (let k = 0; k < 4; k++) {
          expected[r * 4 + k] += upstream[r * voxels + v] * p[k];
        }
      }
    }
    expectClose(await matrix.grad!.toArray(), expected, 1e-5, 1e-3, 'gradient');
    loss.dispose();
    matrix.dispose();
    weights.dispose();
  });

  it('affineFlow shift warps exactly', async () => {
    const spatial = [5, 6, 7];
    const values = Float32Array.from(randomValues([1, 1, ...spatial], 9));
    const image = tensor(values, [1, 1, ...spatial]);
    // Output voxel (d, h, w) reads (d + 1, h, w - 2).
    const flow = affineFlow([1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, -2], image.shape);
    const moved = await warp(image, flow).toArray();
    for (let d = 0; d < 5; d++) {
      for (let h = 0; h < 6; h++) {
        for (let w = 0; w < 7; w++) {
          const inside = d + 1 < 5 && w - 2 >= 0;
          const expected = inside ? values[((d + 1) * 6 + h) * 7 + w - 2] : 0;
          expect(moved[(d * 6 + h) * 7 + w]).toBe(expected);
        }
      }
    }
    image.dispose();
    flow.dispose();
  });

  it('affineFlow rejects bad input', () => {
    const bad = tensor(new Float32Array(9), [3, 3]);
    expect(() => affineFlow(bad, [4, 4, 4])).toThrow(
      'affineFlow: matrix [3,3] must be [3, 4] or [N, 3, 4]',
    );
    bad.dispose();
    expect(() => affineFlow([1, 2, 3], [4, 4, 4])).toThrow(
      'affineFlow: matrix has 3 values; expected 12',
    );
    expect(() => affineFlow(new Float64Array(12), [4, 4])).toThrow(
      'affineFlow: shape [4,4] must be [D, H, W] or [N, C, D, H, W]',
    );
  });
});

describe('affine matrices', () => {
  const shape = [9, 12, 15];

  it('affineFromParameters keeps the centre', () => {
    const matrix = affineFromParameters(
      {
        rotationDeg: [10, -20, 30],
        scale: [1.1, 0.9, 1.05],
        shear: [0.1, 0, -0.05],
      },
      shape,
    );
    expectClose(apply(matrix, [4, 5.5, 7]), [4, 5.5, 7], 0, 1e-12, 'centre');
    const moved = affineFromParameters({ translation: [1, -2, 3] }, shape);
    const shifted = apply(moved, [4, 5.5, 7]);
    expectClose(shifted, [5, 3.5, 10], 0, 1e-12, 'shifted centre');
  });

  it('affineFromParameters rotation direction', () => {
    // 90 degrees about D turns +h into +w.
    const matrix = affineFromParameters({ rotationDeg: [90, 0, 0] }, [1, 3, 3]);
    expectClose(apply(matrix, [0, 2, 1]), [0, 1, 2], 0, 1e-12, 'rotated point');
    expect(affineDeterminant(matrix)).toBeCloseTo(1, 12);
  });

  it('affineDeterminant is the product of the scales', () => {
    const matrix = affineFromParameters(
      {
        rotationDeg: [5, 6, 7],
        scale: [1.1, 0.8, 1.2],
        shear: [0.2, 0.1, 0.3],
      },
      shape,
    );
    expect(affineDeterminant(matrix)).toBeCloseTo(1.1 * 0.8 * 1.2, 12);
  });

  it('invertAffine and composeAffines', () => {
    const matrix = affineFromParameters(
      {
        rotationDeg: [12, -7, 3],
        scale: [1.05, 0.95, 1],
        translation: [2, 1, -3],
      },
      shape,
    );
    const identity = composeAffines(matrix, invertAffine(matrix));
    expectClose(identity, IDENTITY, 0, 1e-12, 'M M^-1');
    const shift = [1, 0, 0, 2, 0, 1, 0, 0, 0, 0, 1, 0];
    const composed = apply(composeAffines(matrix, shift), [1, 2, 3]);
    expectClose(composed, apply(matrix, [3, 2, 3]), 0, 1e-12, 'a(b(p))');
    expect(() => invertAffine([1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])).toThrow(
      'invertAffine: the linear part [1, 0, 0, 2, 0, 0, 0, 0, 0] has ' +
        'determinant 0',
    );
  });

  it('composeAffines matches two warps', async () => {
    // Integer maps, so both warps copy voxels exactly; voxels whose first
    // or second sample point leaves the grid differ (0 in the two warps).
    const spatial = [6, 7, 7];
    const values = Float32Array.from(randomValues([1, 1, ...spatial], 3));
    const image = tensor(values, [1, 1, ...spatial]);
    const a = [1, 0, 0, 1, 0, 1, 0, -1, 0, 0, 1, 2];
    const b = [1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0];
    const first = warp(image, affineFlow(a, spatial));
    const twice = await warp(first, affineFlow(b, spatial)).toArray();
    const composed = affineFlow(composeAffines(a, b), spatial);
    const once = await warp(image, composed).toArray();
    const inside = (p: number[]) =>
      p.every((x, axis) => x >= 0 && x < spatial[axis]);
    let compared = 0;
    for (let v = 0; v < once.length; v++) {
      const p = [Math.floor(v / 49), Math.floor(v / 7) % 7, v % 7];
      const middle = apply(b, p);
      if (!inside(middle) || !inside(apply(a, middle))) continue;
      const [d, h, w] = apply(a, middle);
      expect(twice[v]).toBe(values[(d * 7 + h) * 7 + w]);
      expect(once[v]).toBe(twice[v]);
      compared += 1;
    }
    expect(compared).toBeGreaterThan(100);
    image.dispose();
  });

  it('normalised parameters round trip', () => {
    const matrix = affineFromParameters(
      { rotationDeg: [4, 5, 6], scale: [1.1, 1, 0.9], translation: [3, -2, 1] },
      shape,
    );
    const theta = normalizedFromMatrix(matrix, shape);
    const back = matrixFromNormalized(theta, shape);
    expectClose(back, matrix, 1e-6, 1e-5, 'matrix');
    const zero = normalizedFromMatrix(IDENTITY, shape);
    expectClose(zero, new Float64Array(12), 0, 0, 'identity');
  });

  it('affineToWorld maps world points', () => {
    const fixedAffine = Float64Array.of(
      ...[2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4, 0, 10, -5, 7, 1],
    );
    const movingAffine = Float64Array.of(
      ...[0, 2, 0, 0, -2, 0, 0, 0, 0, 0, 2, 0, 1, 2, 3, 1],
    );
    const matrix = affineFromParameters(
      { rotationDeg: [10, 0, 5], translation: [1, 2, 3] },
      shape,
    );
    const world = affineToWorld(matrix, fixedAffine, movingAffine);
    // Fixed voxel (d, h, w) = (2, 3, 4) is (i, j, k) = (4, 3, 2).
    const fixedWorld = transformPoint(fixedAffine, 4, 3, 2);
    const [md, mh, mw] = apply(matrix, [2, 3, 4]);
    const expected = transformPoint(movingAffine, mw, mh, md);
    const got = transformPoint(world, ...fixedWorld);
    expectClose(got, expected, 0, 1e-9, 'world point');
  });
});

describe('alignAffine', () => {
  it('alignAffine recovers a known affine', async () => {
    // A 32^3 phantom (6.9 mm voxels) moved by 15 degrees about z, scaling
    // up to 10% and shifts up to 20 mm, built through world coordinates.
    const size = 32;
    const { image, labels } = phantom(size, 3);
    const truth = worldTransform(15, [1.1, 0.92, 1.05], [20, -14, 12]);
    const moving = moveVolume(image, truth, 'linear');
    const result = await alignAffine(image, moving);

    // moving(y) = image(truth y), so moving(W x) = image(x) needs
    // truth W = I: the expected matrixWorld is inverse(truth).
    const expectedWorld = invertWorld(truth);
    const mask = labels.data;
    let totalMm = 0;
    let count = 0;
    for (let v = 0; v < mask.length; v++) {
      if (mask[v] === 0) continue;
      const i = v % size;
      const j = Math.floor(v / size) % size;
      const k = Math.floor(v / size ** 2);
      const point = transformPoint(image.affine, i, j, k);
      const got = transformPoint(result.matrixWorld, ...point);
      const want = transformPoint(expectedWorld, ...point);
      const [dx, dy, dz] = [0, 1, 2].map((axis) => got[axis] - want[axis]);
      totalMm += Math.hypot(dx, dy, dz);
      count += 1;
    }
    const residualVoxels = totalMm / count / image.spacing[0];
    expect(residualVoxels, 'mean residual in voxels').toBeLessThan(0.5);
    expect(result.iterations).toBe(result.lossHistory.length);
    expect(result.lossHistory.at(-1)!).toBeLessThan(-0.5);
    result.flow.dispose();
    result.warped.dispose();
  });

  it('alignAffine voxel matrix on tensors', async () => {
    // The moving tensor is the fixed one warped by a voxel affine B, so
    // the recovered matrix is B^-1.
    const size = 32;
    const { image, labels } = phantom(size, 5);
    const fixed = tensor(image.data, [1, 1, size, size, size], {
      requiresGrad: true,
    });
    const truth = affineFromParameters(
      {
        rotationDeg: [-10, 8, 12],
        scale: [0.92, 1.06, 1.1],
        translation: [2.5, -3, 2],
      },
      [size, size, size],
    );
    const moving = warp(fixed, affineFlow(truth, fixed.shape));
    const result = await alignAffine(fixed, moving);
    const inverse = invertAffine(truth);
    const cube = [size, size, size];
    const residual = meanResidual(result.matrix, inverse, labels.data, cube);
    expect(residual, 'mean residual in voxels').toBeLessThan(0.5);
    const start = result.initialMatrix;
    const initial = meanResidual(start, inverse, labels.data, cube);
    expect(initial, 'residual after the centroid shift').toBeGreaterThan(1);
    expect(fixed.grad, 'gradient left on an input').toBeNull();
    expect(result.flow.shape).toEqual([1, 3, size, size, size]);
    expect(result.warped.shape).toEqual([1, 1, size, size, size]);
    [fixed, moving, result.flow, result.warped].forEach((t) => t.dispose());
  });

  it('alignAffine is deterministic', async () => {
    const size = 24;
    const { image } = phantom(size, 7);
    const motion = worldTransform(8, [1, 1, 1], [9, 0, -6]);
    const shifted = moveVolume(image, motion, 'linear');
    const options = { levels: [2, 1], iterations: [20, 5] };
    const first = await alignAffine(image, shifted, options);
    const second = await alignAffine(image, shifted, options);
    expect(Array.from(second.matrix)).toEqual(Array.from(first.matrix));
    expect(second.lossHistory).toEqual(first.lossHistory);
    [first, second].forEach((r) => {
      r.flow.dispose();
      r.warped.dispose();
    });
  });

  it('alignAffine leaves only its results', async () => {
    const size = 24;
    const { image } = phantom(size, 7);
    const shifted = moveVolume(image, worldTransform(8, [1, 1, 1], [9, 0, -6]), 'linear');
    const live = liveTensorCount();
    const result = await alignAffine(image, shifted, { levels: [2, 1], iterations: [20, 5] });
    result.flow.dispose();
    result.warped.dispose();
    expect(liveTensorCount()).toBe(live);
  });

  it('alignAffine centroid start and mse', async () => {
    const size = 24;
    const { image, labels } = phantom(size, 9);
    const fixed = tensor(image.data, [1, 1, size, size, size]);
    const truth = [1, 0, 0, 3, 0, 1, 0, -2, 0, 0, 1, 1];
    const moving = warp(fixed, affineFlow(invertAffine(truth), fixed.shape));
    // Zero iterations: the result is the centroid shift alone.
    const start = await alignAffine(fixed, moving, { iterations: 0 });
    expect(start.iterations).toBe(0);
    expectClose(start.matrix, start.initialMatrix, 0, 1e-5, 'matrix');
    const cube = [size, size, size];
    const startResidual = meanResidual(start.matrix, truth, labels.data, cube);
    expect(startResidual).toBeLessThan(0.7);
    const identity = await alignAffine(fixed, moving, {
      iterations: 0,
      initial: 'identity',
    });
    expect(Array.from(identity.initialMatrix)).toEqual(IDENTITY);
    const mse = await alignAffine(fixed, moving, { similarity: 'mse' });
    const mseResidual = meanResidual(mse.matrix, truth, labels.data, cube);
    expect(mseResidual).toBeLessThan(0.2);
    const results = [start, identity, mse];
    const tensors = results.flatMap((r) => [r.flow, r.warped]);
    [fixed, moving, ...tensors].forEach((t) => t.dispose());
  });

  it('alignAffine rejects bad input', async () => {
    const a = tensor(new Float32Array(8 * 8 * 8).fill(1), [1, 1, 8, 8, 8]);
    const b = tensor(new Float32Array(8 * 8 * 9).fill(1), [1, 1, 8, 8, 9]);
    const c = tensor(new Float32Array(2 * 8 * 8 * 8).fill(1), [1, 2, 8, 8, 8]);
    await expect(alignAffine(a, b)).rejects.toThrow(
      'alignAffine: fixed [1,1,8,8,8] and moving [1,1,8,8,9] must lie on ' +
        'grids of the same shape',
    );
    await expect(alignAffine(c, a)).rejects.toThrow(
      'alignAffine: fixed [1,2,8,8,8] must be [1, 1, D, H, W]',
    );
    await expect(alignAffine(a, a, { levels: [0] })).rejects.toThrow(
      'alignAffine: levels [0] must be positive integer downsampling factors',
    );
    const threeCounts = { levels: [2, 1], iterations: [1, 2, 3] };
    await expect(alignAffine(a, a, threeCounts)).rejects.toThrow(
      'alignAffine: iterations has 3 values but there are 2 levels',
    );
    await expect(alignAffine(a, a, { window: 4 })).rejects.toThrow(
      'alignAffine: window 4 of level 0 must be an odd positive integer',
    );
    const l1 = { similarity: 'l1' as 'mse' };
    await expect(alignAffine(a, a, l1)).rejects.toThrow(
      "alignAffine: similarity must be 'ncc' or 'mse', got \"l1\"",
    );
    const zero = tensor(new Float32Array(8 * 8 * 8), [1, 1, 8, 8, 8]);
    await expect(alignAffine(zero, a)).rejects.toThrow(
      'intensityCentroid: the volume [8, 8, 8] has no positive intensity',
    );
    [a, b, c, zero].forEach((t) => t.dispose());
  });
});

describe('aligned grid', () => {
  it('alignedToSourceGrid inverts the alignment', async () => {
    // A 90 degree rotation and an integer shift map voxel centres onto
    // voxel centres, so the round trip through the aligned grid copies
    // labels exactly wherever they stay inside the grid.
    const size = 24;
    const source = phantom(size, 2);
    const scan = preprocess(source.image, { size, labels: source.labels });
    const labels = scan.labels!;

    const record = {
      matrix: affineFromParameters(
        { rotationDeg: [90, 0, 0], translation: [1, -2, 1] },
        [size, size, size],
      ),
      shape: [size, size, size] as [number, number, number],
    };
    const labelTensor = tensor(labels.data, [1, 1, size, size, size]);
    const flow = affineFlow(record.matrix, labelTensor.shape);
    const moved = warp(labelTensor, flow, { mode: 'nearest' });
    const onAligned = await moved.toArray();

    const back = alignedToSourceGrid(onAligned, labels, record);
    const direct = toSourceGrid(labels, labels);
    expect(back.dims).toEqual(source.labels.dims);
    expect(Array.from(back.affine)).toEqual(Array.from(source.labels.affine));
    let labelled = 0;
    let same = 0;
    for (let v = 0; v < direct.data.length; v++) {
      if (direct.data[v] === 0) continue;
      labelled += 1;
      if (back.data[v] === direct.data[v]) same += 1;
    }
    expect(same / labelled, 'labels that come back').toBeGreaterThan(0.97);

    const unaligned = toSourceGrid(onAligned, labels);
    const changed = Array.from(unaligned.data).filter(
      (value, v) => value !== direct.data[v],
    ).length;
    const changedFraction = changed / labelled;
    expect(changedFraction, 'changed without the inverse').toBeGreaterThan(0.3);
    [labelTensor, flow, moved].forEach((t) => t.dispose());
  });

  it('alignedToSourceGrid after alignAffine', async () => {
    // Align a moved phantom onto the original, carry its labels to the
    // aligned grid and back to its input grid.
    const size = 32;
    const source = phantom(size, 4);
    const motion = worldTransform(-12, [1.05, 1, 0.95], [8, 6, -10]);
    const movedImage = moveVolume(source.image, motion, 'linear');
    const movedLabels = moveVolume(source.labels, motion, 'nearest');
    const fixed = preprocess(source.image, { size });
    const scan = preprocess(movedImage, { size, labels: movedLabels });
    const result = await alignAffine(fixed.image, scan.image);
    const labelTensor = tensor(scan.labels!.data, [1, 1, size, size, size]);
    const moved = warp(labelTensor, result.flow, { mode: 'nearest' });
    const onAligned = await moved.toArray();

    // White matter, brain stem and cerebellum: large enough that two
    // nearest-neighbour resamplings at 5 to 7 mm keep most of them.
    const ids = [1, 13, 14];
    const back = alignedToSourceGrid(onAligned, scan.labels!, result);
    const unaligned = toSourceGrid(onAligned, scan.labels!);
    const backDice = diceScore(back.data, movedLabels.data, ids).mean!;
    const unalignedDice = diceScore(unaligned.data, movedLabels.data, ids)
      .mean!;
    expect(backDice, 'Dice against the input labels').toBeGreaterThan(0.75);
    const message = `Dice without the inverse is ${unalignedDice.toFixed(3)}`;
    expect(backDice, message).toBeGreaterThan(unalignedDice + 0.1);

    const warpedData = await result.warped.toArray();
    const aligned = alignedVolume(scan.image, result, warpedData);
    const stored = Array.from(aligned.alignment.preprocessedAffine);
    expect(stored).toEqual(Array.from(scan.image.affine));
    const short = new Float32Array(5);
    expect(() => alignedVolume(scan.image, result, short)).toThrow(
      'alignedVolume: data has 5 values but the aligned grid [32, 32, 32] ' +
        '(D, H, W) has 32768',
    );
    const tensors = [labelTensor, moved, result.flow, result.warped];
    tensors.forEach((t) => t.dispose());
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('alignAffine on IXI', () => {
  it('alignAffine raises the Dice of atlas labels', async () => {
    // NOTE: 48^3 (about 4.9 mm voxels) keeps this test within a minute on
    // a shared 2-core CPU; the 64^3 figures are measured in bench/.
    const size = 48;
    const csv = readFileSync(new URL('structures.csv', IXI), 'utf8');
    const structures = loadStructureTable(csv);
    const load = async (id: string) => {
      const path = (file: string) => new URL(file, IXI).pathname;
      const image = await readNiftiFile(path(`images/${id}_t1.nii.gz`));
      const labels = await readNiftiFile(path(`labels/${id}_labels.nii.gz`));
      return preprocess(image, { size, labels, structures }) as {
        image: PreprocessedVolume;
        labels: PreprocessedVolume;
      };
    };
    const atlas = await load('IXI012-HH-1211');
    const target = await load('IXI039-HH-1261');
    const result = await alignAffine(target.image, atlas.image);
    const atlasLabels = tensor(atlas.labels.data, [1, 1, size, size, size]);
    const moved = warp(atlasLabels, result.flow, { mode: 'nearest' });
    const warped = await moved.toArray();
    const ids = range(1, structures.names.length - 1);
    const before = diceScore(atlas.labels.data, target.labels.data, ids).mean!;
    const after = diceScore(warped, target.labels.data, ids).mean!;
    const message = `mean Dice after alignment (${before.toFixed(3)} before)`;
    expect(after, message).toBeGreaterThan(before + 0.05);
    const tensors = [atlasLabels, moved, result.flow, result.warped];
    tensors.forEach((t) => t.dispose());
  });
});
