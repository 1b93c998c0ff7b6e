// CPU references for broadcasting elementwise ops and reductions.

import { ndarray, ravel, unravel, type NDArray } from './ndarray.js';

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new RangeError('shapes do not broadcast');
    out.push(Math.max(da, db));
  }
  return out;
}

/** Element of `x` that broadcasting places at `index` of a larger shape. */
function broadcastRead(x: NDArray, index: readonly number[]): number {
  const lead = index.length - x.shape.length;
  const own = x.shape.map((dim, d) => (dim === 1 ? 0 : index[lead + d]));
  return x.data[ravel(own, x.shape)];
}

export function binaryRef(a: NDArray, b: NDArray, f: (x: number, y: number) => number): NDArray {
  const shape = broadcastShape(a.shape, b.shape);
  const size = shape.reduce((n, d) => n * d, 1);
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const index = unravel(i, shape);
    out[i] = f(broadcastRead(a, index), broadcastRead(b, index));
  }
  return { shape, data: out };
}

export function unaryRef(x: NDArray, f: (v: number) => number): NDArray {
  return { shape: [...x.shape], data: x.data.map(f) };
}

export function reduceRef(
  x: NDArray,
  axes: readonly number[],
  keepDims: boolean,
  kind: 'sum' | 'mean' | 'max' | 'min',
): NDArray {
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const size = keptShape.reduce((n, d) => n * d, 1);
  const init = kind === 'max' ? -Infinity : kind === 'min' ? Infinity : 0;
  const out = new Float64Array(size).fill(init);
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
  const shape = keepDims ? keptShape : x.shape.filter((_, i) => !axes.includes(i));
  return ndarray(out, shape);
}
