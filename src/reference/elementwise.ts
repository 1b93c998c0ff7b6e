// CPU references for broadcasting elementwise ops and reductions, in
// float64. Elementwise references follow PyTorch's results at the edges
// (log(0) = -inf, NaN propagation, 0 ** 0 = 1) so that tests can compare
// the kernels' special values with them.

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

export function ternaryRef(
  a: NDArray,
  b: NDArray,
  c: NDArray,
  f: (x: number, y: number, z: number) => number,
): NDArray {
  const shape = broadcastShape(broadcastShape(a.shape, b.shape), c.shape);
  const size = shape.reduce((n, d) => n * d, 1);
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const index = unravel(i, shape);
    out[i] = f(broadcastRead(a, index), broadcastRead(b, index), broadcastRead(c, index));
  }
  return { shape, data: out };
}

export const addRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => x + y);
export const subRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => x - y);
export const mulRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => x * y);
export const divRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => x / y);

/** x ** y with C's rules, which differ from JavaScript's in 1 ** NaN = 1. */
export function powScalar(x: number, y: number): number {
  if (y === 0 || x === 1) return 1;
  return Math.pow(x, y);
}

export const powRef = (a: NDArray, b: NDArray) => binaryRef(a, b, powScalar);
export const maximumRef = (a: NDArray, b: NDArray) => binaryRef(a, b, Math.max);
export const minimumRef = (a: NDArray, b: NDArray) => binaryRef(a, b, Math.min);

const truth = (condition: boolean) => (condition ? 1 : 0);
export const eqRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => truth(x === y));
export const neRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => truth(x !== y));
export const ltRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => truth(x < y));
export const leRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => truth(x <= y));
export const gtRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => truth(x > y));
export const geRef = (a: NDArray, b: NDArray) => binaryRef(a, b, (x, y) => truth(x >= y));

/** a where cond is nonzero (NaN counts as nonzero), else b. */
export const whereRef = (cond: NDArray, a: NDArray, b: NDArray) =>
  ternaryRef(cond, a, b, (c, x, y) => (c !== 0 ? x : y));

export const negRef = (x: NDArray) => unaryRef(x, (v) => -v);
export const absRef = (x: NDArray) => unaryRef(x, Math.abs);
export const expRef = (x: NDArray) => unaryRef(x, Math.exp);
export const logRef = (x: NDArray) => unaryRef(x, Math.log);
export const sqrtRef = (x: NDArray) => unaryRef(x, Math.sqrt);
export const scaleRef = (x: NDArray, factor: number) => unaryRef(x, (v) => v * factor);

/** min(max(x, min), max); a missing bound does not clamp. */
export function clampRef(x: NDArray, min: number | null, max: number | null): NDArray {
  const low = min ?? -Infinity;
  const high = max ?? Infinity;
  return unaryRef(x, (v) => Math.min(Math.max(v, low), high));
}

export const reluRef = (x: NDArray) => unaryRef(x, (v) => (v < 0 ? 0 : v));
export const leakyReluRef = (x: NDArray, slope = 0.01) =>
  unaryRef(x, (v) => (v > 0 ? v : v * slope));

export function sigmoidScalar(v: number): number {
  const e = Math.exp(-Math.abs(v));
  return v >= 0 ? 1 / (1 + e) : e / (1 + e);
}

export const sigmoidRef = (x: NDArray) => unaryRef(x, sigmoidScalar);
export const tanhRef = (x: NDArray) => unaryRef(x, Math.tanh);

/**
 * erf(x) in float64: for |x| <= 3 the series
 * erf(x) = 2/sqrt(pi) e^(-x^2) sum_n (2x^2)^n x / (1 * 3 * ... * (2n+1)),
 * whose terms are all positive; beyond, 1 - erfc(x).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (Math.abs(x) > 3) return Math.sign(x) * (1 - erfc(Math.abs(x)));
  const x2 = x * x;
  let term = x;
  let total = x;
  for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(total); n++) {
    term *= (2 * x2) / (2 * n + 1);
    total += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * total;
}

/**
 * erfc(x) in float64 with relative accuracy in the tail: for x > 3 the
 * continued fraction erfc(x) = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x +
 * (3/2)/(x + ...)))), evaluated from 80 levels down; else 1 - erf(x).
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x <= 3) return 1 - erf(x);
  let fraction = x;
  for (let n = 80; n >= 1; n--) fraction = x + n / 2 / fraction;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / fraction;
}

/** Standard normal CDF, erfc(-x / sqrt(2)) / 2. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

export const geluRef = (x: NDArray) => unaryRef(x, (v) => v * normalCdf(v));

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
