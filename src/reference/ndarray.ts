// A float64 array with a shape: the value type of the CPU reference ops.
// The references are plain loops, written for clarity rather than speed,
// and serve as test oracles and as a spec for porters.

export interface NDArray {
  shape: number[];
  data: Float64Array;
}

export function ndarray(data: ArrayLike<number>, shape: readonly number[]): NDArray {
  const size = shape.reduce((n, d) => n * d, 1);
  if (data.length !== size) {
    throw new RangeError(`ndarray: shape [${shape.join(',')}] needs ${size} values, got ${data.length}`);
  }
  return { shape: [...shape], data: Float64Array.from(data) };
}

export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

/** Multi-index of flat position `i` in `shape`. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const index = new Array<number>(shape.length);
  let rest = i;
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = rest % shape[d];
    rest = Math.floor(rest / shape[d]);
  }
  return index;
}

/** Flat position of a multi-index in a contiguous `shape`. */
export function ravel(index: readonly number[], shape: readonly number[]): number {
  let flat = 0;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d] + index[d];
  return flat;
}
