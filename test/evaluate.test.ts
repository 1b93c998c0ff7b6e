// Evaluation metrics and reports: Dice, the distance transform, HD95, the
// Jacobian determinant and folding fraction, mean local NCC, summaries,
// the report renderings and the evaluation panels.

import { decode } from 'fast-png';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createVolume,
  liveTensorCount,
  RANDOM_TEACHER,
  renderPanels,
  tensor,
} from '../src/index.js';
import {
  diceScores,
  evaluationPanels,
  EVALUATION_PANEL_TITLES,
  foldingFraction,
  formatReport,
  formatReportMarkdown,
  hausdorff95,
  hausdorff95Scores,
  jacobianDeterminant,
  meanLocalNcc,
  meanStd,
  squaredDistanceTransform,
  summarize,
  type EvaluationReport,
  type Statistics,
  type Summary,
} from '../src/pipeline/evaluate/index.js';
import { percentile } from '../src/pipeline/evaluate/hausdorff.js';
import { nccRef } from '../src/reference/losses.js';
import { Random } from '../src/random.js';
import { device, expectClose, randomValues } from './helpers.js';

type Triple = [number, number, number];

beforeAll(device);

/** Returns the flat row-major index of (z, y, x) in a [D, H, W] grid. */
function indexOf(shape: Triple, z: number, y: number, x: number): number {
  return (z * shape[1] + y) * shape[2] + x;
}

/** Builds a label map of `shape` with the given voxels set to `label`. */
function labelMap(
  shape: Triple,
  voxels: [number, number, number, number][],
): Int32Array {
  const labels = new Int32Array(shape[0] * shape[1] * shape[2]);
  for (const [z, y, x, label] of voxels) labels[indexOf(shape, z, y, x)] = label;
  return labels;
}

/**
 * Builds a label map of blobs: each voxel takes the label of the nearest
 * of a few random centres, or 0 beyond `radius` voxels from all of them.
 */
function blobLabels(shape: Triple, labels: number, seed: number): Int32Array {
  const random = new Random(seed);
  const centres = Array.from({ length: labels }, () =>
    shape.map((size) => random.uniform() * size),
  );
  const radius = Math.max(...shape) / 2.5;
  const map = new Int32Array(shape[0] * shape[1] * shape[2]);
  for (let z = 0; z < shape[0]; z++) {
    for (let y = 0; y < shape[1]; y++) {
      for (let x = 0; x < shape[2]; x++) {
        let best = 0;
        let bestDistance = radius;
        centres.forEach(([cz, cy, cx], index) => {
          const distance = Math.hypot(z - cz, y - cy, x - cx);
          if (distance < bestDistance) {
            bestDistance = distance;
            best = index + 1;
          }
        });
        // Noise flips a few voxels so that surfaces are ragged.
        map[indexOf(shape, z, y, x)] = random.uniform() < 0.08 ? random.integer(labels + 1) : best;
      }
    }
  }
  return map;
}

/** Lists the surface voxels of one label: a 6-neighbour is outside it. */
function surfacePoints(labels: Int32Array, shape: Triple, label: number): Triple[] {
  const points: Triple[] = [];
  const isLabel = (z: number, y: number, x: number) =>
    z >= 0 && y >= 0 && x >= 0 && z < shape[0] && y < shape[1] && x < shape[2] &&
    labels[indexOf(shape, z, y, x)] === label;
  const steps: Triple[] = [
    [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
  ];
  for (let z = 0; z < shape[0]; z++) {
    for (let y = 0; y < shape[1]; y++) {
      for (let x = 0; x < shape[2]; x++) {
        if (!isLabel(z, y, x)) continue;
        if (steps.some(([dz, dy, dx]) => !isLabel(z + dz, y + dy, x + dx))) points.push([z, y, x]);
      }
    }
  }
  return points;
}

/** Distance in mm between two voxels. */
function distanceMm(a: Triple, b: Triple, spacing: Triple): number {
  return Math.hypot(
    (a[0] - b[0]) * spacing[0],
    (a[1] - b[1]) * spacing[1],
    (a[2] - b[2]) * spacing[2],
  );
}

/** numpy.percentile(values, p) with the default linear interpolation. */
function numpyPercentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] * (1 - (rank - low)) + sorted[high] * (rank - low);
}

/** Brute-force O(n^2) HD95 from one surface to the other and back. */
function bruteHausdorff95(
  prediction: Int32Array,
  truth: Int32Array,
  shape: Triple,
  spacing: Triple,
  label: number,
): number {
  const predicted = surfacePoints(prediction, shape, label);
  const actual = surfacePoints(truth, shape, label);
  if (predicted.length === 0 && actual.length === 0) return NaN;
  if (predicted.length === 0 || actual.length === 0) return Infinity;
  const directed = (from: Triple[], to: Triple[]) =>
    numpyPercentile(
      from.map((p) => Math.min(...to.map((q) => distanceMm(p, q, spacing)))),
      95,
    );
  return Math.max(directed(predicted, actual), directed(actual, predicted));
}

describe('diceScores', () => {
  // Prediction and truth on 8 voxels; label 1: |A| = 3, |B| = 2, overlap 2;
  // label 2: |A| = 1, |B| = 2, overlap 0; label 3 only in the truth.
  const prediction = Int32Array.of(0, 1, 1, 1, 2, 0, 0, 0);
  const truth = Int32Array.of(0, 1, 1, 0, 0, 2, 2, 3);

  it('dice hand-computed labels', () => {
    const scores = diceScores(prediction, truth, [1, 2, 3]);
    expect(scores[0]).toBeCloseTo((2 * 2) / (3 + 2), 12);
    expect(scores[1]).toBe(0);
    expect(scores[2]).toBe(0);
  });

  it('dice label absent from both is NaN', () => {
    const scores = diceScores(prediction, truth, [4, 1]);
    expect(Number.isNaN(scores[0])).toBe(true);
    expect(scores[1]).toBeCloseTo(0.8, 12);
  });

  it('dice scores background only when listed', () => {
    // Background: |A| = 4 (voxels 0, 5, 6, 7), |B| = 3 (0, 3, 4), overlap 1.
    const background = diceScores(prediction, truth, [0]);
    expect(background[0]).toBeCloseTo((2 * 1) / (4 + 3), 12);
    const withoutBackground = diceScores(prediction, truth, [1]);
    expect(withoutBackground).toEqual([expect.closeTo(0.8, 12)]);
  });

  it('dice single voxel and identical maps', () => {
    const single = Int32Array.of(5);
    expect(diceScores(single, single, [5])).toEqual([1]);
    expect(diceScores(single, Int32Array.of(0), [5])).toEqual([0]);
  });

  it('dice large label ids and float arrays', () => {
    const a = Float32Array.of(70000, 70000, 3, -2);
    const b = Float32Array.of(70000, 0, 3, -2);
    const scores = diceScores(a, b, [70000, 3, -2]);
    expect(scores[0]).toBeCloseTo(2 / 3, 12);
    expect(scores[1]).toBe(1);
    expect(scores[2]).toBe(1);
  });

  it('dice mismatched lengths error', () => {
    expect(() => diceScores(new Int32Array(4), new Int32Array(5), [1])).toThrow(
      'diceScores: prediction has 4 voxels but truth has 5; pass two label ' +
        'maps on the same grid (resample one onto the other first)',
    );
  });

  it('dice bad label lists error', () => {
    expect(() => diceScores(prediction, truth, [1, 1])).toThrow(
      'diceScores: label 1 is listed twice; list each label once',
    );
    expect(() => diceScores(prediction, truth, [1.5])).toThrow(
      'diceScores: label 1.5 must be an integer id',
    );
  });
});

describe('squaredDistanceTransform', () => {
  it('distance transform matches brute force', () => {
    const cases: { shape: Triple; spacing: Triple; density: number }[] = [
      { shape: [5, 6, 7], spacing: [2.5, 1, 0.7], density: 0.05 },
      { shape: [3, 9, 4], spacing: [1, 3, 1.5], density: 0.15 },
      // One feature voxel: most lines have none and stay infinite until
      // a later pass.
      { shape: [4, 5, 6], spacing: [0.5, 2, 1], density: 0 },
    ];
    cases.forEach(({ shape, spacing, density }, seed) => {
      const random = new Random(seed + 10);
      const count = shape[0] * shape[1] * shape[2];
      const features = Uint8Array.from({ length: count }, () => (random.uniform() < density ? 1 : 0));
      features[indexOf(shape, 1, 2, 3)] = 1;
      const points: Triple[] = [];
      for (let z = 0; z < shape[0]; z++)
        for (let y = 0; y < shape[1]; y++)
          for (let x = 0; x < shape[2]; x++)
            if (features[indexOf(shape, z, y, x)]) points.push([z, y, x]);
      const expected: number[] = [];
      for (let z = 0; z < shape[0]; z++)
        for (let y = 0; y < shape[1]; y++)
          for (let x = 0; x < shape[2]; x++)
            expected.push(Math.min(...points.map((p) => distanceMm([z, y, x], p, spacing) ** 2)));
      const got = squaredDistanceTransform(features, shape, spacing);
      // Float64 sums of a few squared terms: 1e-12 relative.
      expectClose(got, expected, 1e-12, 1e-12, `shape [${shape}]`);
    });
  });

  it('distance transform without features is infinite', () => {
    const got = squaredDistanceTransform(new Uint8Array(12), [2, 3, 2], [1, 1, 1]);
    expect(got.every((value) => value === Infinity)).toBe(true);
  });
});

describe('hausdorff95', () => {
  it('percentile interpolates like numpy', () => {
    // numpy.percentile([4, 1, 3, 2], 95) = 3 + 0.85 * (4 - 3) = 3.85.
    expect(percentile(Float64Array.of(4, 1, 3, 2), 95)).toBeCloseTo(3.85, 12);
    expect(percentile(Float64Array.of(7), 95)).toBe(7);
    expect(Number.isNaN(percentile(new Float64Array(0), 95))).toBe(true);
  });

  it('hd95 single voxels with anisotropic spacing', () => {
    const shape: Triple = [2, 3, 4];
    const spacing: Triple = [2, 3, 0.5];
    const at = (z: number, y: number, x: number) => labelMap(shape, [[z, y, x, 1]]);
    // Two voxels apart along W at 0.5 mm: 1 mm.
    expect(hausdorff95(at(0, 0, 0), at(0, 0, 2), shape, spacing, 1)).toBeCloseTo(1, 12);
    // One voxel along D at 2 mm.
    expect(hausdorff95(at(0, 1, 1), at(1, 1, 1), shape, spacing, 1)).toBeCloseTo(2, 12);
    // (1, 2, 3) voxels along (D, H, W): sqrt(2^2 + 6^2 + 1.5^2) mm.
    expect(hausdorff95(at(0, 0, 0), at(1, 2, 3), shape, spacing, 1)).toBeCloseTo(
      Math.sqrt(4 + 36 + 2.25),
      12,
    );
    expect(hausdorff95(at(1, 2, 3), at(1, 2, 3), shape, spacing, 1)).toBe(0);
  });

  it('hd95 shifted slab hand-computed', () => {
    // A 1-voxel-thick slab at W = 1 against one at W = 3 on a [3, 3, 5]
    // grid, 0.8 mm along W: every surface voxel is 2 * 0.8 mm away.
    const shape: Triple = [3, 3, 5];
    const slab = (x: number) => {
      const voxels: [number, number, number, number][] = [];
      for (let z = 0; z < 3; z++) for (let y = 0; y < 3; y++) voxels.push([z, y, x, 2]);
      return labelMap(shape, voxels);
    };
    expect(hausdorff95(slab(1), slab(3), shape, [1, 1, 0.8], 2)).toBeCloseTo(1.6, 12);
  });

  it('hd95 matches brute force on random labels', () => {
    const cases: { shape: Triple; spacing: Triple; seed: number }[] = [
      { shape: [5, 6, 7], spacing: [2.5, 1, 0.7], seed: 1 },
      { shape: [7, 4, 6], spacing: [1, 1.5, 3], seed: 2 },
      { shape: [6, 6, 5], spacing: [1, 1, 1], seed: 3 },
    ];
    for (const { shape, spacing, seed } of cases) {
      const prediction = blobLabels(shape, 3, seed);
      const truth = blobLabels(shape, 3, seed + 100);
      const labels = [0, 1, 2, 3];
      const got = hausdorff95Scores(prediction, truth, shape, spacing, labels);
      labels.forEach((label, index) => {
        const expected = bruteHausdorff95(prediction, truth, shape, spacing, label);
        expect(Number.isFinite(expected), `seed ${seed} label ${label} reference`).toBe(true);
        expect(
          Math.abs(got[index] - expected),
          `seed ${seed} label ${label}: got ${got[index]}, expected ${expected}`,
        ).toBeLessThanOrEqual(1e-9);
      });
    }
  });

  it('hd95 empty labels', () => {
    const shape: Triple = [2, 2, 3];
    const empty = new Int32Array(12);
    const one = labelMap(shape, [[1, 1, 2, 4]]);
    expect(Number.isNaN(hausdorff95(empty, empty, shape, [1, 1, 1], 4))).toBe(true);
    expect(hausdorff95(one, empty, shape, [1, 1, 1], 4)).toBe(Infinity);
    expect(hausdorff95(empty, one, shape, [1, 1, 1], 4)).toBe(Infinity);
  });

  it('hd95 argument errors', () => {
    const labels = new Int32Array(12);
    expect(() => hausdorff95(labels, new Int32Array(10), [2, 2, 3], [1, 1, 1], 1)).toThrow(
      'hausdorff95: prediction has 12 voxels but truth has 10; pass two ' +
        'label maps on the same grid (resample one onto the other first)',
    );
    expect(() => hausdorff95(labels, labels, [2, 2, 2], [1, 1, 1], 1)).toThrow(
      'hausdorff95: prediction has 12 values but shape [2, 2, 2] needs 8; ' +
        'pass the shape of the grid the array covers',
    );
    expect(() => hausdorff95(labels, labels, [2, 2, 3], [1, 0, 1], 1)).toThrow(
      'hausdorff95: spacing [1, 0, 1] must be three positive voxel sizes in ' +
        'mm, ordered [D, H, W] like the shape',
    );
    expect(() => hausdorff95(labels, labels, [12], [1, 1, 1], 1)).toThrow(
      'hausdorff95: shape [12] must be three positive integers [D, H, W]',
    );
  });
});

/** Builds a displacement [3, D, H, W] from u(z, y, x) = [uD, uH, uW]. */
function field(shape: Triple, u: (z: number, y: number, x: number) => Triple): Float32Array {
  const count = shape[0] * shape[1] * shape[2];
  const data = new Float32Array(3 * count);
  for (let z = 0; z < shape[0]; z++)
    for (let y = 0; y < shape[1]; y++)
      for (let x = 0; x < shape[2]; x++) {
        const vector = u(z, y, x);
        for (let channel = 0; channel < 3; channel++) {
          data[channel * count + indexOf(shape, z, y, x)] = vector[channel];
        }
      }
  return data;
}

describe('foldingFraction', () => {
  const shape: Triple = [3, 4, 5];

  it('folding identity is zero', () => {
    const zero = field(shape, () => [0, 0, 0]);
    expect(foldingFraction(zero, [1, 3, ...shape])).toBe(0);
    expect(jacobianDeterminant(zero, shape).every((value) => value === 1)).toBe(true);
  });

  it('folding linear field hand-computed', () => {
    // u = A x gives J = I + A everywhere, borders included. For
    // A = [[0.5, 0.2, 0], [0.1, -0.3, 0.4], [0, 0.2, 0.1]],
    // det(I + A) = 1.5 (0.7 * 1.1 - 0.4 * 0.2) - 0.2 (0.1 * 1.1) = 1.013.
    const u = field(shape, (z, y, x) => [
      0.5 * z + 0.2 * y,
      0.1 * z - 0.3 * y + 0.4 * x,
      0.2 * y + 0.1 * x,
    ]);
    const determinants = jacobianDeterminant(u, shape);
    // The field is float32: 1e-5 of the value.
    expectClose(determinants, new Array(60).fill(1.013), 1e-5, 1e-6);
    expect(foldingFraction(u, shape)).toBe(0);
  });

  it('folding channel order is D H W', () => {
    // Channel 0 compressing D past zero folds everywhere: det = 1 - 2.
    expect(foldingFraction(field(shape, (z) => [-2 * z, 0, 0]), shape)).toBe(1);
    // The same values in channel 2 (along W) vary along D, a shear:
    // J = [[1, 0, 0], [0, 1, 0], [-2, 0, 1]], det 1.
    expect(foldingFraction(field(shape, (z) => [0, 0, -2 * z]), shape)).toBe(0);
    // Swapping D and H reflects the grid: det -1.
    const swap = field(shape, (z, y) => [y - z, z - y, 0]);
    expect(foldingFraction(swap, shape)).toBe(1);
  });

  it('folding quadratic field one-sided borders', () => {
    // u_W = -x^2 / 4 on W = 5: du/dx is 1 - 0 = 1 (forward) at x = 0,
    // 2x (central) inside and 16 - 9 = 7 (backward) at x = 4, so
    // det = 1 - du/dx / 4 = 0.75, 0.5, 0, -0.5, -0.75 along W, and
    // det <= 0 at 3 of 5 positions.
    const u = field(shape, (_z, _y, x) => [0, 0, -(x * x) / 4]);
    const determinants = jacobianDeterminant(u, shape);
    const row = Array.from(determinants.subarray(0, 5));
    expect(row).toEqual([0.75, 0.5, 0, -0.5, -0.75]);
    expect(foldingFraction(u, [3, ...shape])).toBeCloseTo(3 / 5, 12);
  });

  it('folding half the grid', () => {
    // u_D = c(y) z with c = -2 for y < 1, else 0: J is upper triangular
    // with det 1 + c(y), so one row of H in four folds.
    const u = field(shape, (z, y) => [y < 1 ? -2 * z : 0, 0, 0]);
    expect(foldingFraction(u, shape)).toBeCloseTo(1 / 4, 12);
  });

  it('folding argument errors', () => {
    expect(() => foldingFraction(new Float32Array(10), shape)).toThrow(
      'foldingFraction: displacement has 10 values but shape [3, 4, 5] ' +
        'needs 180; pass the shape of the grid the array covers',
    );
    expect(() => foldingFraction(new Float32Array(30), [1, 2, 5, 3])).toThrow(
      "foldingFraction: shape [1, 2, 5, 3] must be the field's [1, 3, D, H, W] " +
        'or [3, D, H, W], or its grid [D, H, W]',
    );
    expect(() => jacobianDeterminant(new Float32Array(30), [1, 2, 5])).toThrow(
      'jacobianDeterminant: grid [1, 2, 5] needs at least 2 voxels along D, ' +
        'H and W to take differences',
    );
  });
});

describe('meanLocalNcc', () => {
  it('ncc matches the float64 reference', async () => {
    const shape = [1, 1, 7, 9, 11];
    const a = randomValues(shape, 21);
    const b = randomValues(shape, 22).map((value, i) => Math.fround(value + a[i]));
    for (const window of [3, 5]) {
      const got = await meanLocalNcc(
        tensor(Float32Array.from(a), shape),
        tensor(Float32Array.from(b), shape),
        window,
      );
      const expected = -nccRef(
        { shape, data: a },
        { shape, data: Float64Array.from(b) },
        [window, window, window],
      ).data[0];
      // Float32 box sums: 1e-5 of the value.
      expectClose([got], [expected], 1e-5, 1e-6, `window ${window}`);
    }
  });

  it('ncc identical and negated images near one', async () => {
    const shape = [1, 1, 10, 9, 12];
    const values = Float32Array.from(randomValues(shape, 23));
    const image = tensor(values, shape);
    const negated = tensor(values.map((value) => -value), shape);
    // cc = var^2 / (var^2 + 1e-5) per window: within 1e-4 of 1.
    expect(Math.abs((await meanLocalNcc(image, image)) - 1)).toBeLessThanOrEqual(1e-4);
    expect(Math.abs((await meanLocalNcc(image, negated, 3)) - 1)).toBeLessThanOrEqual(1e-4);
  });

  it('ncc leaves no tensors behind', async () => {
    const shape = [1, 1, 5, 5, 5];
    const image = tensor(Float32Array.from(randomValues(shape, 24)), shape);
    const before = liveTensorCount();
    await meanLocalNcc(image, image, 3);
    expect(liveTensorCount()).toBe(before);
  });

  it('ncc argument errors', async () => {
    const small = tensor(new Float32Array(125), [1, 1, 5, 5, 5]);
    const other = tensor(new Float32Array(150), [1, 1, 5, 5, 6]);
    const twoChannels = tensor(new Float32Array(250), [1, 2, 5, 5, 5]);
    await expect(meanLocalNcc(small, other, 3)).rejects.toThrow(
      'meanLocalNcc: a [1,1,5,5,5] and b [1,1,5,5,6] must have the same ' +
        'shape; resample one onto the grid of the other',
    );
    await expect(meanLocalNcc(twoChannels, twoChannels, 3)).rejects.toThrow(
      'meanLocalNcc: a [1,2,5,5,5] must be one image [1, 1, D, H, W]',
    );
    await expect(meanLocalNcc(small, small)).rejects.toThrow(
      'meanLocalNcc: window [9,9,9] is larger than the volume [1,1,5,5,5]',
    );
  });
});

describe('summarize', () => {
  it('summary hand-computed with skipped scores', () => {
    const summary = summarize(
      [
        [0.8, 0.6, NaN],
        [0.9, NaN, NaN],
        [0.4, 0.2, Infinity],
      ],
      ['thalamus', 'caudate', 'putamen'],
    );
    // Case means 0.7, 0.9, 0.3: mean 0.633..., population std
    // sqrt(((0.0667)^2 + (0.2667)^2 + (0.3333)^2) / 3).
    const means = [0.7, 0.9, 0.3];
    const mean = (0.7 + 0.9 + 0.3) / 3;
    const std = Math.sqrt(means.reduce((s, m) => s + (m - mean) ** 2, 0) / 3);
    expect(summary.mean).toBeCloseTo(mean, 12);
    expect(summary.std).toBeCloseTo(std, 12);
    expect(summary.count).toBe(3);
    expect(summary.perLabel.thalamus.mean).toBeCloseTo(0.7, 12);
    // Population std of 0.8, 0.9, 0.4 around 0.7: sqrt(0.14 / 3).
    expect(summary.perLabel.thalamus.std).toBeCloseTo(Math.sqrt(0.14 / 3), 12);
    expect(summary.perLabel.caudate).toEqual({ mean: expect.closeTo(0.4, 12), std: expect.closeTo(0.2, 12), count: 2 });
    expect(summary.perLabel.putamen.count).toBe(0);
    expect(Number.isNaN(summary.perLabel.putamen.mean)).toBe(true);
  });

  it('summary of no cases is NaN', () => {
    const summary = summarize([], ['a']);
    expect(summary.count).toBe(0);
    expect(Number.isNaN(summary.mean)).toBe(true);
    expect(summary.perLabel.a.count).toBe(0);
    expect(JSON.parse(JSON.stringify(summary)).mean).toBeNull();
  });

  it('meanStd population std', () => {
    expect(meanStd([2.5])).toEqual({ mean: 2.5, std: 0, count: 1 });
    expect(meanStd([1, 3])).toEqual({ mean: 2, std: 1, count: 2 });
  });

  it('summary argument errors', () => {
    expect(() => summarize([[1, 2], [3]], ['a', 'b'])).toThrow(
      'summarize: case 1 has 1 scores but there are 2 label names; pass one ' +
        'score per name, in the same order (NaN where a label has none)',
    );
    expect(() => summarize([], ['a', 'a'])).toThrow('summarize: label name "a" is listed twice');
  });
});

function statistics(mean: number, std: number, count = 4): Statistics {
  return { mean, std, count };
}

function labelSummary(mean: number, std: number, perLabel: Record<string, Statistics>): Summary {
  return { ...statistics(mean, std), perLabel };
}

function sampleReport(): EvaluationReport {
  const dice = (offset: number) =>
    labelSummary(0.7 + offset, 0.02, {
      'left thalamus': statistics(0.812 + offset, 0.031),
      'right caudate': statistics(0.5 + offset, 0.1, 3),
    });
  return {
    teacher: RANDOM_TEACHER,
    size: 48,
    steps: { stage1: 300, stage2: 400 },
    dice: { final: dice(0), general: dice(-0.1), registration: dice(-0.05), identity: dice(-0.4) },
    ncc: { registration: statistics(0.3634, 0.0105), identity: statistics(0.2, 0.01) },
    folding: statistics(0.0012, 0.0003),
    hd95: {
      final: labelSummary(3.214, 0.4, {}),
      registration: labelSummary(3.5, 0.55, {}),
    },
    extra: { 'registration Dice, 17 large regions': labelSummary(0.6684, 0.02, {}) },
  };
}

describe('formatReport', () => {
  it('report text table', () => {
    const lines = formatReport(sampleReport()).split('\n');
    expect(lines[0]).toBe('teacher: random init (no SAM checkpoint)');
    expect(lines[1]).toBe('grid 48^3, 300 stage 1 steps, 400 stage 2 steps, 4 test cases');
    expect(lines[3].split(/\s{2,}/)).toEqual(['Dice', 'final', 'general', 'registration', 'identity']);
    expect(lines[4].split(/\s{2,}/)).toEqual([
      'left thalamus',
      '0.812 +- 0.031',
      '0.712 +- 0.031',
      '0.762 +- 0.031',
      '0.412 +- 0.031',
    ]);
    expect(lines[5].split(/\s{2,}/)[1]).toBe('0.500 +- 0.100 (n=3)');
    expect(lines[6].split(/\s{2,}/)).toEqual([
      'mean',
      '0.700 +- 0.020',
      '0.600 +- 0.020',
      '0.650 +- 0.020',
      '0.300 +- 0.020',
    ]);
    const text = lines.join('\n');
    expect(text).toContain('mean local NCC');
    expect(text).toContain('registration 0.363 +- 0.011, identity 0.200 +- 0.010');
    expect(text).toContain('0.120% +- 0.030% of voxels');
    expect(text).toContain('final 3.21 +- 0.40, registration 3.50 +- 0.55');
    expect(text).toMatch(/registration Dice, 17 large regions\s+0\.668 \+- 0\.020/);
  });

  it('report adds a refined column, NCC and folding after instance optimisation', () => {
    const report = sampleReport();
    report.dice.refined = labelSummary(0.68, 0.03, {
      'left thalamus': statistics(0.83, 0.02),
      'right caudate': statistics(0.55, 0.05),
    });
    report.ncc.refined = statistics(0.41, 0.012);
    report.refine = { steps: 30, folding: statistics(0.0021, 0.0004) };
    const lines = formatReport(report).split('\n');
    // A report written before the mode was recorded names none.
    expect(lines[2]).toBe('refined: the registration after 30 Adam steps on each case alone (image terms only)');
    const named = formatReport({ ...report, refine: { ...report.refine, mode: 'field' } }).split('\n');
    expect(named[2]).toBe(
      'refined: the registration after 30 Adam steps on each case alone (image terms only), moving the displacement field',
    );
    expect(lines[4].split(/\s{2,}/)).toEqual(['Dice', 'final', 'general', 'registration', 'identity', 'refined']);
    expect(lines[5].split(/\s{2,}/).at(-1)).toBe('0.830 +- 0.020');
    expect(lines[7].split(/\s{2,}/).at(-1)).toBe('0.680 +- 0.030');
    const text = lines.join('\n');
    expect(text).toContain('registration 0.363 +- 0.011, identity 0.200 +- 0.010, refined 0.410 +- 0.012');
    expect(text).toContain('0.120% +- 0.030%, refined 0.210% +- 0.040% of voxels');
    const markdown = formatReportMarkdown(report);
    expect(markdown).toContain(
      '| Structure | final Dice | general Dice | registration Dice | identity Dice | refined Dice |',
    );
    expect(markdown).toContain('Refined: the registration after 30 Adam steps on each case alone (image terms only).');
  });

  it('report marks unscored cells', () => {
    const report = sampleReport();
    report.dice.identity.perLabel['left thalamus'] = statistics(NaN, NaN, 0);
    delete report.dice.general.perLabel['right caudate'];
    const lines = formatReport(report).split('\n');
    expect(lines[4].split(/\s{2,}/)[4]).toBe('n/a');
    expect(lines[5].split(/\s{2,}/)[2]).toBe('n/a');
  });

  it('report markdown table', () => {
    const markdown = formatReportMarkdown(sampleReport()).split('\n');
    expect(markdown[0]).toBe('**Teacher:** random init (no SAM checkpoint)');
    expect(markdown).toContain(
      '| Structure | final Dice | general Dice | registration Dice | identity Dice |',
    );
    expect(markdown).toContain('| --- | ---: | ---: | ---: | ---: |');
    expect(markdown).toContain(
      '| left thalamus | 0.812 ± 0.031 | 0.712 ± 0.031 | 0.762 ± 0.031 | 0.412 ± 0.031 |',
    );
    expect(markdown).toContain(
      '| **mean** | 0.700 ± 0.020 | 0.600 ± 0.020 | 0.650 ± 0.020 | 0.300 ± 0.020 |',
    );
    expect(markdown).toContain('| HD95 (mm) | final 3.21 ± 0.40, registration 3.50 ± 0.55 |');
  });
});

describe('evaluationPanels', () => {
  const shape: Triple = [5, 6, 7];
  const count = 5 * 6 * 7;
  const atlas = Float32Array.from(randomValues(shape, 31));
  const target = Float32Array.from(randomValues(shape, 32));
  const warpedAtlas = Float32Array.from(randomValues(shape, 33));
  const truth = blobLabels(shape, 3, 34);
  const prediction = blobLabels(shape, 3, 35);

  it('panels layout of five columns and two rows', () => {
    const png = decode(evaluationPanels({ shape, atlas, target, warpedAtlas, prediction, truth }));
    // 28 pixels per voxel (ceil(192 / 7)): axial cells 7 x 6 voxels
    // (196 x 168 px), coronal 7 x 5 (196 x 140 px). Five columns and
    // 4 px gaps give 5 * 196 + 6 * 4; the title row is 2 * 7 + 8 px.
    expect(png.width).toBe(5 * 196 + 6 * 4);
    expect(png.height).toBe(22 + 168 + 140 + 3 * 4);
  });

  it('panels spacing orders D H W', () => {
    // 2 mm along D doubles the coronal rows (k): 5 voxels = 280 px.
    const png = decode(
      evaluationPanels({ shape, spacingMm: [2, 1, 1], atlas, target, warpedAtlas, prediction, truth }),
    );
    expect(png.height).toBe(22 + 168 + 280 + 3 * 4);
  });

  it('panels match renderPanels of the same volumes', () => {
    const dims = [7, 6, 5];
    const affine = Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1);
    const volume = (data: ArrayLike<number>) => createVolume(Float32Array.from(data), dims, affine);
    const expected = renderPanels(
      [
        { title: 'atlas', image: volume(atlas), labels: volume(truth) },
        { title: 'target', image: volume(target) },
        { title: 'warped atlas', image: volume(warpedAtlas) },
        { title: 'predicted', image: volume(target), labels: volume(prediction) },
        { title: 'truth', image: volume(target), labels: volume(truth) },
      ],
      { planes: ['axial', 'coronal'] },
    );
    const got = decode(
      evaluationPanels({ shape, affine, atlas, atlasLabels: truth, target, warpedAtlas, prediction, truth }),
    );
    expect(EVALUATION_PANEL_TITLES).toEqual(['atlas', 'target', 'warped atlas', 'predicted', 'truth']);
    expect([got.width, got.height]).toEqual([expected.width, expected.height]);
    expect(Buffer.from(got.data as Uint8Array).equals(Buffer.from(expected.data))).toBe(true);
  });

  it('panels show prediction and truth apart', () => {
    const same = evaluationPanels({ shape, atlas, target, warpedAtlas, prediction: truth, truth });
    const differ = evaluationPanels({ shape, atlas, target, warpedAtlas, prediction, truth });
    expect(Buffer.from(same).equals(Buffer.from(differ))).toBe(false);
  });

  it('panels argument errors', () => {
    expect(() =>
      evaluationPanels({ shape, atlas, target, warpedAtlas, prediction: new Int32Array(count - 1), truth }),
    ).toThrow(
      `evaluationPanels: prediction has ${count - 1} values but shape [5, 6, 7] needs ${count}; ` +
        'pass the shape of the grid the array covers',
    );
    expect(() =>
      evaluationPanels({ shape, affine: [1, 0, 0], atlas, target, warpedAtlas, prediction, truth }),
    ).toThrow('evaluationPanels: affine has 3 values; expected a 4x4 matrix (16 values, column-major)');
  });
});
