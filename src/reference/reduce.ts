// CPU references (float64) for reductions, argmax/argmin and softmax.

import { ndarray, ravel, unravel, type NDArray } from './ndarray.js';

export type ReduceRefKind = 'sum' | 'mean' | 'max' | 'min';

/** Reduces `x` over `axes` (non-negative) with `kind`. */
export function reduceRef(
  x: NDArray,
  axes: readonly number[],
  keepDims: boolean,
  kind: ReduceRefKind,
): NDArray {
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const size = keptShape.reduce((n, d) => n * d, 1);
  const out = new Float64Array(size);
  if (kind === 'max') out.fill(-Infinity);
  if (kind === 'min') out.fill(Infinity);
  const count = axes.reduce((n, i) => n * x.shape[i], 1);
  for (let i = 0; i < x.data.length; i++) {
    const index = unravel(i, x.shape).map((c, d) => (axes.includes(d) ? 0 : c));
    const o = ravel(index, keptShape);
    const v = x.data[i];
    if (kind === 'max') out[o] = Math.max(out[o], v);
    else if (kind === 'min') out[o] = Math.min(out[o], v);
    else out[o] += v;
  }
  if (kind === 'mean') for (let i = 0; i < size; i++) out[i] /= count;
  const dropped = x.shape.filter((_, i) => !axes.includes(i));
  const shape = keepDims ? keptShape : dropped;
  return ndarray(out, shape);
}

/** Splits a shape around `axis` into [outer, axis length, inner]. */
function aroundAxis(
  shape: readonly number[],
  axis: number,
): [number, number, number] {
  const outer = shape.slice(0, axis).reduce((n, d) => n * d, 1);
  const inner = shape.slice(axis + 1).reduce((n, d) => n * d, 1);
  return [outer, shape[axis], inner];
}

/** Index of the first maximum (or minimum) along `axis`, as numbers. */
export function argReduceRef(
  x: NDArray,
  axis: number,
  keepDims: boolean,
  kind: 'argmax' | 'argmin',
): NDArray {
  const [outer, length, inner] = aroundAxis(x.shape, axis);
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = 0;
      for (let k = 1; k < length; k++) {
        const v = x.data[(o * length + k) * inner + i];
        const b = x.data[(o * length + best) * inner + i];
        if (kind === 'argmax' ? v > b : v < b) best = k;
      }
      out[o * inner + i] = best;
    }
  }
  const shape = [...x.shape];
  if (keepDims) shape[axis] = 1;
  else shape.splice(axis, 1);
  return ndarray(out, shape);
}

/** Softmax (or log-softmax) along `axis`, after subtracting the maximum. */
export function softmaxRef(x: NDArray, axis: number, log = false): NDArray {
  const [outer, length, inner] = aroundAxis(x.shape, axis);
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (k: number) => (o * length + k) * inner + i;
      let maximum = -Infinity;
      for (let k = 0; k < length; k++) {
        maximum = Math.max(maximum, x.data[at(k)]);
      }
      let total = 0;
      for (let k = 0; k < length; k++) {
        total += Math.exp(x.data[at(k)] - maximum);
      }
      for (let k = 0; k < length; k++) {
        const shifted = x.data[at(k)] - maximum;
        if (log) out[at(k)] = shifted - Math.log(total);
        else out[at(k)] = Math.exp(shifted) / total;
      }
    }
  }
  return ndarray(out, x.shape);
}
