// CPU references for warp, composeFlows and integrateVelocity (float64,
// plain loops). They define the semantics that the kernels follow:
// image [N, C, D, H, W], flow [N, 3, D, H, W] in voxels along (D, H, W),
// output voxel p sampled at p + flow(p), corners outside the volume 0.

import type { NDArray } from './ndarray.js';

/** Rounds half to even, as WGSL's round() and C's nearbyint. */
export function roundHalfEven(value: number): number {
  const rounded = Math.round(value);
  // Math.round rounds halves up; move those that land on an odd integer.
  if (Math.abs(value - Math.trunc(value)) === 0.5 && rounded % 2 !== 0) {
    return rounded - 1;
  }
  return rounded;
}

function sampleLinear(
  data: Float64Array,
  base: number,
  size: readonly [number, number, number],
  point: readonly [number, number, number],
): number {
  const [d, h, w] = size;
  const z0 = Math.floor(point[0]);
  const y0 = Math.floor(point[1]);
  const x0 = Math.floor(point[2]);
  const fz = point[0] - z0;
  const fy = point[1] - y0;
  const fx = point[2] - x0;
  let value = 0;
  for (let a = 0; a < 2; a++) {
    const z = z0 + a;
    if (z < 0 || z >= d) continue;
    const wz = a === 0 ? 1 - fz : fz;
    for (let b = 0; b < 2; b++) {
      const y = y0 + b;
      if (y < 0 || y >= h) continue;
      const wy = b === 0 ? 1 - fy : fy;
      for (let c = 0; c < 2; c++) {
        const x = x0 + c;
        if (x < 0 || x >= w) continue;
        const wx = c === 0 ? 1 - fx : fx;
        value += wz * wy * wx * data[base + (z * h + y) * w + x];
      }
    }
  }
  return value;
}

function sampleNearest(
  data: Float64Array,
  base: number,
  size: readonly [number, number, number],
  point: readonly [number, number, number],
): number {
  const [d, h, w] = size;
  const z = roundHalfEven(point[0]);
  const y = roundHalfEven(point[1]);
  const x = roundHalfEven(point[2]);
  if (z < 0 || z >= d || y < 0 || y >= h || x < 0 || x >= w) return 0;
  return data[base + (z * h + y) * w + x];
}

/** warp: image [N, C, D, H, W] sampled at p + flow(p), flow [N, 3, D, H, W]. */
export function warpRef(
  image: NDArray,
  flow: NDArray,
  mode: 'linear' | 'nearest' = 'linear',
): NDArray {
  const [n, channels, d, h, w] = image.shape;
  const size: [number, number, number] = [d, h, w];
  const plane = d * h * w;
  const sample = mode === 'linear' ? sampleLinear : sampleNearest;
  const out = new Float64Array(image.data.length);
  for (let b = 0; b < n; b++)
    for (let z = 0; z < d; z++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const s = (z * h + y) * w + x;
          const flowBase = b * 3 * plane + s;
          const point: [number, number, number] = [
            z + flow.data[flowBase],
            y + flow.data[flowBase + plane],
            x + flow.data[flowBase + 2 * plane],
          ];
          for (let c = 0; c < channels; c++) {
            const base = (b * channels + c) * plane;
            out[base + s] = sample(image.data, base, size, point);
          }
        }
  return { shape: [...image.shape], data: out };
}

function addArrays(a: NDArray, b: NDArray): NDArray {
  return { shape: [...a.shape], data: a.data.map((v, i) => v + b.data[i]) };
}

/** composeFlows: c = b + warp(a, b). */
export function composeFlowsRef(a: NDArray, b: NDArray): NDArray {
  return addArrays(b, warpRef(a, b));
}

/** integrateVelocity: v / 2^steps, then steps times v = v + warp(v, v). */
export function integrateVelocityRef(v: NDArray, steps = 7): NDArray {
  const factor = 2 ** -steps;
  let field: NDArray = {
    shape: [...v.shape],
    data: v.data.map((x) => x * factor),
  };
  for (let step = 0; step < steps; step++) {
    field = addArrays(field, warpRef(field, field));
  }
  return field;
}

/**
 * Gradients of sum(warp(image, flow) * g) ('linear' mode) to the image (a
 * scatter of g with the corner weights) and to the flow (g times the
 * derivative of the trilinear sample along each axis, taken from the cell
 * above at integer coordinates, where the sample has a kink).
 */
export function warpBackwardRef(
  image: NDArray,
  flow: NDArray,
  g: NDArray,
): { image: NDArray; flow: NDArray } {
  const [n, channels, d, h, w] = image.shape;
  const plane = d * h * w;
  const imageGrad = new Float64Array(image.data.length);
  const flowGrad = new Float64Array(flow.data.length);
  const size = [d, h, w];
  for (let b = 0; b < n; b++)
    for (let s = 0; s < plane; s++) {
      const voxel = [Math.floor(s / (h * w)), Math.floor(s / w) % h, s % w];
      const flowBase = b * 3 * plane + s;
      const point = voxel.map(
        (v, axis) => v + flow.data[flowBase + axis * plane],
      );
      const lower = point.map(Math.floor);
      const fraction = point.map((p, axis) => p - lower[axis]);
      for (let corner = 0; corner < 8; corner++) {
        const offset = [(corner >> 2) & 1, (corner >> 1) & 1, corner & 1];
        const index = lower.map((l, axis) => l + offset[axis]);
        if (index.some((i, axis) => i < 0 || i >= size[axis])) continue;
        // Per-axis weight and its derivative along that axis.
        const weights = fraction.map((f, axis) =>
          offset[axis] === 1 ? f : 1 - f,
        );
        const slopes = offset.map((o) => (o === 1 ? 1 : -1));
        const weight = weights[0] * weights[1] * weights[2];
        const q = (index[0] * h + index[1]) * w + index[2];
        for (let c = 0; c < channels; c++) {
          const base = (b * channels + c) * plane;
          const upstream = g.data[base + s];
          imageGrad[base + q] += weight * upstream;
          const value = image.data[base + q];
          for (let axis = 0; axis < 3; axis++) {
            const others = otherWeights(weights, axis);
            flowGrad[flowBase + axis * plane] +=
              upstream * value * slopes[axis] * others;
          }
        }
      }
    }
  return {
    image: { shape: [...image.shape], data: imageGrad },
    flow: { shape: [...flow.shape], data: flowGrad },
  };
}

function otherWeights(weights: readonly number[], axis: number): number {
  let product = 1;
  weights.forEach((value, i) => {
    if (i !== axis) product *= value;
  });
  return product;
}
