// CPU references of the losses (float64, plain loops): local NCC, the l2
// gradient (smoothness) loss, soft Dice and one-hot encoding. Layout
// [N, C, D, H, W] throughout. Each loss returns a scalar, shape [].

import type { NDArray } from './ndarray.js';

type Triple = [number, number, number];

/**
 * -mean(cc) with cc = cross^2 / (var_a var_b + epsilon) from window sums
 * over a window^3 box (zeros outside the volume, n = window^3), summed
 * directly over the window at every voxel.
 */
export function nccRef(a: NDArray, b: NDArray, window: Triple, epsilon = 1e-5): NDArray {
  const [n, c, d, h, w] = a.shape;
  const [rd, rh, rw] = window.map((k) => (k - 1) / 2);
  const count = window[0] * window[1] * window[2];
  let total = 0;
  for (let volume = 0; volume < n * c; volume++) {
    const offset = volume * d * h * w;
    for (let z = 0; z < d; z++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          let sa = 0;
          let sb = 0;
          let saa = 0;
          let sbb = 0;
          let sab = 0;
          for (let zz = Math.max(z - rd, 0); zz <= Math.min(z + rd, d - 1); zz++)
            for (let yy = Math.max(y - rh, 0); yy <= Math.min(y + rh, h - 1); yy++)
              for (let xx = Math.max(x - rw, 0); xx <= Math.min(x + rw, w - 1); xx++) {
                const i = offset + (zz * h + yy) * w + xx;
                const va = a.data[i];
                const vb = b.data[i];
                sa += va;
                sb += vb;
                saa += va * va;
                sbb += vb * vb;
                sab += va * vb;
              }
          const cross = sab - (sa * sb) / count;
          const varA = Math.max(saa - (sa * sa) / count, 0);
          const varB = Math.max(sbb - (sb * sb) / count, 0);
          total += (cross * cross) / (varA * varB + epsilon);
        }
  }
  return { shape: [], data: Float64Array.of(-total / a.data.length) };
}

/**
 * Mean squared forward difference of `flow` along D, H and W (over all
 * channels and the positions where the difference exists), the three means
 * averaged: VoxelMorph's l2 gradient loss.
 */
export function smoothnessRef(flow: NDArray): NDArray {
  const [n, c, d, h, w] = flow.shape;
  const strides = [h * w, w, 1];
  const extents = [d, h, w];
  let loss = 0;
  for (let axis = 0; axis < 3; axis++) {
    let total = 0;
    let count = 0;
    for (let volume = 0; volume < n * c; volume++)
      for (let z = 0; z < d; z++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            if ([z, y, x][axis] + 1 >= extents[axis]) continue;
            const i = ((volume * d + z) * h + y) * w + x;
            const diff = flow.data[i + strides[axis]] - flow.data[i];
            total += diff * diff;
            count += 1;
          }
    loss += total / count / 3;
  }
  return { shape: [], data: Float64Array.of(loss) };
}

export interface DiceRefOptions {
  excludeBackground?: boolean;
  epsilon?: number;
}

/**
 * Soft Dice loss: per sample n and class k, dice = (2 sum(p t) + epsilon) /
 * (sum(p) + sum(t) + epsilon) over D, H, W; the loss is 1 - the mean of dice
 * over samples and classes (class 0 left out when excludeBackground).
 */
export function diceLossRef(
  probs: NDArray,
  target: NDArray,
  options: DiceRefOptions = {},
): NDArray {
  const [n, k] = probs.shape;
  const voxels = probs.shape.slice(2).reduce((x, y) => x * y, 1);
  const epsilon = options.epsilon ?? 1e-5;
  const firstClass = options.excludeBackground ? 1 : 0;
  let total = 0;
  for (let sample = 0; sample < n; sample++)
    for (let cls = firstClass; cls < k; cls++) {
      const offset = (sample * k + cls) * voxels;
      let intersection = 0;
      let sumP = 0;
      let sumT = 0;
      for (let v = 0; v < voxels; v++) {
        intersection += probs.data[offset + v] * target.data[offset + v];
        sumP += probs.data[offset + v];
        sumT += target.data[offset + v];
      }
      total += (2 * intersection + epsilon) / (sumP + sumT + epsilon);
    }
  return { shape: [], data: Float64Array.of(1 - total / (n * (k - firstClass))) };
}

/** One-hot encoding of integer labels [N, 1, D, H, W] to [N, K, D, H, W]. */
export function oneHotRef(labels: NDArray, numClasses: number): NDArray {
  const n = labels.shape[0];
  const spatial = labels.shape.slice(labels.shape.length - 3);
  const voxels = spatial[0] * spatial[1] * spatial[2];
  const out = new Float64Array(n * numClasses * voxels);
  for (let sample = 0; sample < n; sample++)
    for (let v = 0; v < voxels; v++) {
      const label = labels.data[sample * voxels + v];
      out[(sample * numClasses + label) * voxels + v] = 1;
    }
  return { shape: [n, numClasses, ...spatial], data: out };
}
