// Shape utilities shared by the ops: broadcasting, strides and axis checks.

import { formatShape, type Tensor } from '../tensor.js';

/** Largest rank the generic kernels address (two vec4<u32> per array). */
export const MAX_RANK = 8;

/** Row-major element strides of a contiguous shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

/** NumPy broadcasting of two shapes; throws naming the op on a mismatch. */
export function broadcastShapes(
  op: string,
  a: readonly number[],
  b: readonly number[],
): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(
        `${op}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be ` +
          `broadcast together (axis ${i} of the result: ${da} vs ${db})`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * Strides that read `shape` as if it had `outShape`: 0 along broadcast
 * axes, one entry per axis of `outShape`.
 */
export function broadcastStrides(
  shape: readonly number[],
  outShape: readonly number[],
): number[] {
  const strides = contiguousStrides(shape);
  const lead = outShape.length - shape.length;
  return outShape.map((dim, i) => {
    if (i < lead) return 0;
    return shape[i - lead] === 1 && dim !== 1 ? 0 : strides[i - lead];
  });
}

/** Normalises possibly negative axes and rejects duplicates or out-of-range ones. */
export function normaliseAxes(
  op: string,
  axes: number | readonly number[] | undefined,
  rank: number,
): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const result = list.map((axis) => {
    if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
      throw new RangeError(
        `${op}: axis ${axis} is out of range for a tensor of rank ${rank}`,
      );
    }
    return axis < 0 ? axis + rank : axis;
  });
  if (new Set(result).size !== result.length) {
    throw new RangeError(`${op}: axes ${formatShape(list)} repeat an axis`);
  }
  return result.sort((x, y) => x - y);
}

export function checkRank(op: string, t: Tensor): void {
  if (t.rank > MAX_RANK) {
    throw new RangeError(
      `${op}: tensor of shape ${formatShape(t.shape)} has rank ${t.rank}, ` +
        `more than the ${MAX_RANK} the kernels support`,
    );
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
