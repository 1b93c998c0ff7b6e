// Intensity-based affine pre-alignment of a scan to the atlas: 12
// parameters fitted on the device by Adam through our own autograd, coarse
// to fine, after a centre-of-mass start. Results on the aligned grid go
// back to the scan's own grid through `alignedVolume` and `toSourceGrid`.
//
// Layout: fixed and moving are [1, 1, D, H, W] tensors or volumes whose
// data is x fastest (tensor [1, 1, nz, ny, nx]). The matrix maps fixed
// voxels p = (d, h, w) to the moving voxels they sample (see
// affine-flow.ts), so warp(moving, affineFlow(matrix)) lies on the fixed
// grid.

import { backward } from '../autograd/backward.js';
import { noGrad } from '../autograd/node.js';
import { add, mul, sub } from '../ops/elementwise.js';
import { concat } from '../ops/layout.js';
import { matmul } from '../ops/matmul.js';
import { nccLoss } from '../ops/ncc.js';
import { avgPool3d } from '../ops/pool.js';
import { mean } from '../ops/reduce.js';
import { reshape } from '../ops/view.js';
import { warp } from '../ops/warp.js';
import { Adam } from '../optim/adam.js';
import { formatShape, keep, tensor, Tensor, tidy } from '../tensor.js';
import { affineFlow, affineToWorld, type VoxelAffine } from './affine-flow.js';
import {
  levelBasis,
  matrixFromNormalized,
  normalizedFromMatrix,
  type LevelBasis,
} from './affine-levels.js';
import { levelSettings, type AlignLevelOptions } from './affine-schedule.js';
import type { Volume } from './volume.js';

export type AlignSimilarity = 'ncc' | 'mse';

export interface AlignAffineOptions extends AlignLevelOptions {
  /** 'ncc' (local NCC, the default) or 'mse' (mean squared difference). */
  similarity?: AlignSimilarity;
  /**
   * Start: 'centroid' (the default) shifts the intensity centroids onto
   * each other, 'identity' starts from no motion, or 12 numbers give a
   * starting voxel matrix.
   */
  initial?: 'centroid' | 'identity' | ArrayLike<number>;
  /** Grid affine of a fixed tensor for matrixWorld (a volume has its own). */
  fixedAffine?: ArrayLike<number>;
  /** Grid affine of a moving tensor for matrixWorld (a volume has its own). */
  movingAffine?: ArrayLike<number>;
}

export interface AffineAlignment {
  /** Fixed voxel (d, h, w) to moving voxel, row-major 3x4 [A | t]. */
  matrix: VoxelAffine;
  /**
   * The same map in world mm: column-major 4x4 from a fixed-grid RAS+
   * point to the moving-grid RAS+ point it samples.
   */
  matrixWorld: Float64Array;
  /** The starting matrix (after the centroid shift, if any). */
  initialMatrix: VoxelAffine;
  /** Spatial shape [D, H, W] of the fixed grid. */
  shape: [number, number, number];
  /** affineFlow(matrix) [1, 3, D, H, W]; the caller disposes it. */
  flow: Tensor;
  /** The moving image warped (trilinear); the caller disposes it. */
  warped: Tensor;
  /** The loss of every Adam step, coarsest level first. */
  lossHistory: number[];
  /** Adam steps taken over all levels. */
  iterations: number;
}

type AlignInput = Tensor | Volume;

/** An input as a [1, 1, D, H, W] tensor, with its values and grid affine. */
interface PreparedInput {
  image: Tensor;
  values: Float32Array;
  affine: Float64Array;
  /** True when this module created the image tensor and must dispose it. */
  owned: boolean;
}

async function prepareInput(
  op: string,
  name: string,
  input: AlignInput,
  affine: ArrayLike<number> | undefined,
): Promise<PreparedInput> {
  if (input instanceof Tensor) {
    if (input.rank !== 5 || input.shape[0] !== 1 || input.shape[1] !== 1) {
      throw new RangeError(
        `${op}: ${name} ${formatShape(input.shape)} must be [1, 1, D, H, W]`,
      );
    }
    const values = await input.toArray();
    const [, , d, h, w] = input.shape;
    const grid = gridAffine(affine, [w, h, d]);
    // A view without requiresGrad, so no gradient reaches the caller's
    // tensor and warp skips the image-gradient scatter.
    const image = input.share();
    return { image, values, affine: grid, owned: true };
  }
  if (input.dims.length !== 3) {
    throw new RangeError(
      `${op}: ${name} dims [${input.dims.join(', ')}] must be 3D [nx, ny, nz]`,
    );
  }
  const [nx, ny, nz] = input.dims;
  const image = tensor(input.data, [1, 1, nz, ny, nx]);
  const grid = gridAffine(affine ?? input.affine, input.dims);
  return { image, values: input.data, affine: grid, owned: true };
}

/** Returns the grid affine given, or 1 mm voxels at the origin when none is. */
function gridAffine(
  affine: ArrayLike<number> | undefined,
  dims: number[],
): Float64Array {
  if (affine === undefined) {
    const identity = new Float64Array(16);
    identity[0] = identity[5] = identity[10] = identity[15] = 1;
    return identity;
  }
  if (affine.length !== 16) {
    throw new RangeError(
      `alignAffine: the grid affine of dims [${dims.join(', ')}] has ` +
        `${affine.length} values; expected 16 (column-major 4x4)`,
    );
  }
  return Float64Array.from(affine);
}

/**
 * Returns the intensity centroid (d, h, w) in voxels of values laid out
 * [D, H, W], weighting each voxel by its value clipped at 0.
 */
export function intensityCentroid(
  values: ArrayLike<number>,
  shape: readonly [number, number, number],
): [number, number, number] {
  const [d, h, w] = shape;
  let total = 0;
  const sums = [0, 0, 0];
  let index = 0;
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const weight = Math.max(0, values[index++]);
        total += weight;
        sums[0] += weight * z;
        sums[1] += weight * y;
        sums[2] += weight * x;
      }
    }
  }
  if (!(total > 0)) {
    throw new RangeError(
      `intensityCentroid: the volume [${shape.join(', ')}] has no positive ` +
        'intensity, so it has no centroid',
    );
  }
  return [sums[0] / total, sums[1] / total, sums[2] / total];
}

/** Returns the starting voxel matrix of the options. */
function initialMatrix(
  op: string,
  initial: AlignAffineOptions['initial'],
  fixedValues: Float32Array,
  movingValues: Float32Array,
  shape: [number, number, number],
): VoxelAffine {
  const start = initial ?? 'centroid';
  const matrix = Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0);
  if (start === 'identity') return matrix;
  if (start === 'centroid') {
    const fixedCentre = intensityCentroid(fixedValues, shape);
    const movingCentre = intensityCentroid(movingValues, shape);
    for (let axis = 0; axis < 3; axis++) {
      matrix[axis * 4 + 3] = movingCentre[axis] - fixedCentre[axis];
    }
    return matrix;
  }
  const valid =
    typeof start !== 'string' &&
    start.length === 12 &&
    Array.from(start).every(Number.isFinite);
  if (!valid) {
    throw new RangeError(
      `${op}: initial must be 'centroid', 'identity' or 12 numbers (a ` +
        `row-major 3x4 voxel matrix), got ${JSON.stringify(start)}`,
    );
  }
  return Float64Array.from(start as ArrayLike<number>);
}

interface LevelRun {
  basis: LevelBasis;
  fixed: Tensor;
  moving: Tensor;
  iterations: number;
  learningRate: number;
  similarity: AlignSimilarity;
  window: number;
}

/** Computes the similarity loss of `warped` against the level's fixed image. */
function similarityLoss(run: LevelRun, warped: Tensor): Tensor {
  if (run.similarity === 'ncc') {
    return nccLoss(warped, run.fixed, { window: run.window });
  }
  const difference = sub(warped, run.fixed);
  return mean(mul(difference, difference));
}

/**
 * Runs Adam on `theta` for one level and returns the loss of each step.
 * The learning rate decays by a half cosine from its peak to a tenth.
 */
async function optimiseLevel(theta: Tensor, run: LevelRun): Promise<number[]> {
  const optimizer = new Adam([theta], { lr: run.learningRate });
  const losses: Tensor[] = [];
  try {
    for (let step = 0; step < run.iterations; step++) {
      const progress = run.iterations > 1 ? step / (run.iterations - 1) : 0;
      const decay = 0.1 + 0.45 * (1 + Math.cos(Math.PI * progress));
      optimizer.lr = run.learningRate * decay;
      const loss = tidy(() => {
        const matrix = levelMatrix(theta, run.basis);
        const flow = affineFlow(matrix, run.fixed.shape);
        return similarityLoss(run, warp(run.moving, flow));
      });
      backward(loss);
      optimizer.step();
      optimizer.zeroGrad();
      losses.push(loss);
    }
    if (losses.length === 0) return [];
    // tidy disposes the reshaped views, keeping only the concatenation.
    const all = noGrad(() =>
      tidy(() =>
        concat(
          losses.map((loss) => reshape(loss, [1])),
          0,
        ),
      ),
    );
    const values = await all.toArray();
    all.dispose();
    return Array.from(values);
  } finally {
    losses.forEach((loss) => loss.dispose());
    optimizer.dispose();
  }
}

/** Computes the voxel matrix of a level from theta, with gradients to theta. */
function levelMatrix(theta: Tensor, basis: LevelBasis): Tensor {
  return add(basis.identity, mul(basis.rowScale, matmul(theta, basis.columns)));
}

/**
 * Registers `moving` onto `fixed` with a 12-parameter affine and returns
 * the voxel matrix, its world form, the flow and the warped image.
 *
 * Both inputs lie on grids of the same shape: [1, 1, D, H, W] tensors or
 * volumes, such as two scans preprocessed to the same `size`. Steps:
 * 1. Start from the shift that moves the fixed intensity centroid onto the
 *    moving one (`initial`).
 * 2. For each level, coarse to fine, average both images over f^3 blocks
 *    and take Adam steps on the similarity of warp(moving, flow) and fixed.
 *
 * Parameterisation: theta is the 3x4 matrix offset from the identity in
 * normalised coordinates u = (p - c) / r, with c the grid centre and r
 * half the grid's extent per axis, so u runs over [-1, 1]. The motion is
 * p' = p + r * (theta [u; 1]). Centring decouples the translation column
 * from the linear part, which would otherwise move the far corner most for
 * a small change. Scaling by r gives every entry the same unit: a change
 * of 0.01 moves no voxel more than 0.01 r. Adam then needs one learning
 * rate for all 12 entries, and the same theta describes the same motion at
 * every level.
 *
 * The run draws no random numbers and every kernel on its path reduces in
 * a fixed order, so the same inputs give bitwise the same matrix.
 *
 * @example
 * const result = await alignAffine(atlasImage, scanImage);
 * const labels = warp(scanLabels, result.flow, { mode: 'nearest' });
 */
export async function alignAffine(
  fixed: AlignInput,
  moving: AlignInput,
  options: AlignAffineOptions = {},
): Promise<AffineAlignment> {
  const op = 'alignAffine';
  const fixedInput = await prepareInput(
    op,
    'fixed',
    fixed,
    options.fixedAffine,
  );
  const movingInput = await prepareInput(
    op,
    'moving',
    moving,
    options.movingAffine,
  );
  const owned = [fixedInput, movingInput].filter((input) => input.owned);
  try {
    const fixedShape = fixedInput.image.shape;
    const movingShape = movingInput.image.shape;
    if (fixedShape.some((size, axis) => size !== movingShape[axis])) {
      throw new RangeError(
        `${op}: fixed ${formatShape(fixedShape)} and moving ` +
          `${formatShape(movingShape)} must lie on grids of the ` +
          'same shape; preprocess both to the same size',
      );
    }
    const shape = fixedShape.slice(2) as [number, number, number];
    const start = initialMatrix(
      op,
      options.initial,
      fixedInput.values,
      movingInput.values,
      shape,
    );
    const { lossHistory, matrix } = await optimise(
      op,
      fixedInput.image,
      movingInput.image,
      start,
      options,
    );
    const flow = noGrad(() => keep(affineFlow(matrix, fixedShape)));
    const warped = noGrad(() => keep(warp(movingInput.image, flow)));
    return {
      matrix,
      matrixWorld: affineToWorld(matrix, fixedInput.affine, movingInput.affine),
      initialMatrix: start,
      shape,
      flow,
      warped,
      lossHistory,
      iterations: lossHistory.length,
    };
  } finally {
    owned.forEach((input) => input.image.dispose());
  }
}

/** Runs every level from `start`; returns the final matrix and the losses. */
async function optimise(
  op: string,
  fixed: Tensor,
  moving: Tensor,
  start: VoxelAffine,
  options: AlignAffineOptions,
): Promise<{ matrix: VoxelAffine; lossHistory: number[] }> {
  const shape = fixed.shape.slice(2) as [number, number, number];
  const levels = levelSettings(op, options, shape);
  const similarity = options.similarity ?? 'ncc';
  if (similarity !== 'ncc' && similarity !== 'mse') {
    throw new RangeError(
      `${op}: similarity must be 'ncc' or 'mse', got ` +
        JSON.stringify(similarity),
    );
  }

  const theta = tensor(normalizedFromMatrix(start, shape), [3, 4], {
    requiresGrad: true,
  });
  const lossHistory: number[] = [];
  try {
    for (const level of levels) {
      const factor = level.factor;
      const pooled = noGrad(() =>
        factor === 1
          ? { fixed: fixed, moving: moving }
          : {
              fixed: avgPool3d(fixed, { kernelSize: factor }),
              moving: avgPool3d(moving, { kernelSize: factor }),
            },
      );
      const basis = levelBasis(shape, factor);
      try {
        const run: LevelRun = {
          basis,
          ...pooled,
          iterations: level.iterations,
          learningRate: level.learningRate,
          similarity,
          window: level.window,
        };
        lossHistory.push(...(await optimiseLevel(theta, run)));
      } finally {
        basis.dispose();
        if (factor !== 1) {
          pooled.fixed.dispose();
          pooled.moving.dispose();
        }
      }
    }
    const values = await theta.toArray();
    return { matrix: matrixFromNormalized(values, shape), lossHistory };
  } finally {
    theta.dispose();
  }
}
