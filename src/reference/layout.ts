// CPU references (float64) for the layout ops: permute, slice, pad,
// concat, indexSelect and broadcastTo. Axes and bounds are non-negative
// and already checked.

import { ndarray, ravel, unravel, type NDArray } from './ndarray.js';

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Builds an array of `shape` whose element at each index is `value(index)`. */
function build(
  shape: readonly number[],
  value: (index: number[]) => number,
): NDArray {
  const data = new Float64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = value(unravel(i, shape));
  return ndarray(data, shape);
}

/** Permutes axes: axis i of the result is axis dims[i] of `x`. */
export function permuteRef(x: NDArray, dims: readonly number[]): NDArray {
  const shape = dims.map((d) => x.shape[d]);
  return build(shape, (index) => {
    const source = new Array<number>(x.shape.length);
    dims.forEach((d, i) => (source[d] = index[i]));
    return x.data[ravel(source, x.shape)];
  });
}

/** Copies the box [starts[i], ends[i]) of `x` along every axis i. */
export function sliceRef(
  x: NDArray,
  starts: readonly number[],
  ends: readonly number[],
): NDArray {
  const shape = x.shape.map((_, i) => ends[i] - starts[i]);
  return build(shape, (index) =>
    x.data[ravel(index.map((c, i) => c + starts[i]), x.shape)],
  );
}

/** Pads (or, with negative pads, crops) `x` by pads[i] = [before, after]. */
export function padRef(
  x: NDArray,
  pads: readonly (readonly number[])[],
  value: number,
): NDArray {
  const shape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  return build(shape, (index) => {
    const source = index.map((c, i) => c - pads[i][0]);
    const inside = source.every((c, i) => c >= 0 && c < x.shape[i]);
    return inside ? x.data[ravel(source, x.shape)] : value;
  });
}

/** Joins arrays along `axis`. */
export function concatRef(arrays: readonly NDArray[], axis: number): NDArray {
  const shape = [...arrays[0].shape];
  shape[axis] = arrays.reduce((n, a) => n + a.shape[axis], 0);
  return build(shape, (index) => {
    let position = index[axis];
    for (const a of arrays) {
      if (position < a.shape[axis]) {
        const source = [...index];
        source[axis] = position;
        return a.data[ravel(source, a.shape)];
      }
      position -= a.shape[axis];
    }
    throw new Error('concatRef: index past the joined axis');
  });
}

/** Selects out[..., j, ...] = x[..., indices[j], ...] along `axis`. */
export function indexSelectRef(
  x: NDArray,
  axis: number,
  indices: readonly number[],
): NDArray {
  const shape = [...x.shape];
  shape[axis] = indices.length;
  return build(shape, (index) => {
    const source = [...index];
    source[axis] = indices[index[axis]];
    return x.data[ravel(source, x.shape)];
  });
}

/** Repeats `x` along missing leading axes and size-1 axes to fill `shape`. */
export function broadcastToRef(x: NDArray, shape: readonly number[]): NDArray {
  const lead = shape.length - x.shape.length;
  return build(shape, (index) => {
    const source = x.shape.map((d, i) => (d === 1 ? 0 : index[lead + i]));
    return x.data[ravel(source, x.shape)];
  });
}
