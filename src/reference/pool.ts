// CPU references (float64, plain loops) for max_pool3d and avg_pool3d with
// PyTorch's semantics (ceil_mode=False, dilation 1).
//
// Layout: x is [N, C, D, H, W]. Along each axis the output has
// floor((in + 2 * padding - kernel) / stride) + 1 positions, and output o
// covers inputs o * stride - padding ... o * stride - padding + kernel - 1.

import type { NDArray } from './ndarray.js';

export type Triple = [number, number, number];

export interface PoolRefParams {
  kernelSize: Triple;
  stride: Triple;
  padding: Triple;
}

/** Output extent of each spatial axis. */
export function poolOutputSize(inSize: readonly number[], p: PoolRefParams): Triple {
  return [0, 1, 2].map(
    (a) => Math.floor((inSize[a] + 2 * p.padding[a] - p.kernelSize[a]) / p.stride[a]) + 1,
  ) as Triple;
}

/**
 * Pools x: `reduce` receives, for every output position, the flat input
 * positions its window covers inside the volume, in window order (D, then
 * H, then W), and the window's element count including padding. It returns
 * the output value.
 */
function poolWindows(
  x: NDArray,
  p: PoolRefParams,
  reduce: (inputs: number[], padded: number) => number,
): NDArray {
  const [n, c, d, h, w] = x.shape;
  const [od, oh, ow] = poolOutputSize([d, h, w], p);
  const [kd, kh, kw] = p.kernelSize;
  const out = new Float64Array(n * c * od * oh * ow);
  let o = 0;
  for (let volume = 0; volume < n * c; volume++)
    for (let z = 0; z < od; z++)
      for (let y = 0; y < oh; y++)
        for (let xw = 0; xw < ow; xw++) {
          const inputs: number[] = [];
          for (let a = 0; a < kd; a++) {
            const iz = z * p.stride[0] - p.padding[0] + a;
            if (iz < 0 || iz >= d) continue;
            for (let b = 0; b < kh; b++) {
              const iy = y * p.stride[1] - p.padding[1] + b;
              if (iy < 0 || iy >= h) continue;
              for (let e = 0; e < kw; e++) {
                const ix = xw * p.stride[2] - p.padding[2] + e;
                if (ix < 0 || ix >= w) continue;
                inputs.push(((volume * d + iz) * h + iy) * w + ix);
              }
            }
          }
          out[o++] = reduce(inputs, kd * kh * kw);
        }
  return { shape: [n, c, od, oh, ow], data: out };
}

/**
 * max_pool3d. `indices` stores, per output, the argmax as a flat index into
 * its (n, c) volume (D * H * W elements), like PyTorch's return_indices.
 * Ties go to the first element in window order, and a NaN wins over
 * every number (the first NaN when there are several).
 */
export function maxPool3dRef(
  x: NDArray,
  p: PoolRefParams,
): { out: NDArray; indices: Int32Array } {
  const volumeSize = x.shape[2] * x.shape[3] * x.shape[4];
  const indices: number[] = [];
  const out = poolWindows(x, p, (inputs) => {
    let best = inputs[0];
    for (const i of inputs.slice(1)) {
      if (Number.isNaN(x.data[best])) break;
      if (x.data[i] > x.data[best] || Number.isNaN(x.data[i])) best = i;
    }
    indices.push(best % volumeSize);
    return x.data[best];
  });
  return { out, indices: Int32Array.from(indices) };
}

/**
 * avg_pool3d. With countIncludePad the divisor is the full window size,
 * padding included; without it, the number of input elements covered.
 */
export function avgPool3dRef(
  x: NDArray,
  p: PoolRefParams,
  countIncludePad = true,
): NDArray {
  return poolWindows(x, p, (inputs, padded) => {
    let total = 0;
    for (const i of inputs) total += x.data[i];
    return total / (countIncludePad ? padded : inputs.length);
  });
}
