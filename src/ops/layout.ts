// Shape ops that move data: permute, transpose, slice, narrow, pad,
// broadcastTo and concat. Each returns a new contiguous tensor.

import { record } from '../autograd/node.js';
import { checkOutput } from '../debug.js';
import { launch, type KernelSpec } from '../kernels/launch.js';
import { runLaunch } from '../kernels/runs.js';
import { empty, formatShape, type Tensor } from '../tensor.js';
import { resolveAxis } from './axes.js';
import { expandKernel, stridedCopyKernel, sumToShape } from './reduce.js';
import {
  MAX_RANK,
  broadcastShapes,
  checkRank,
  contiguousStrides,
  sameShape,
} from './shape.js';

/**
 * Drops size-1 axes and merges neighbouring axes that stay neighbours in
 * `x`, so the copy kernel divides by as few dimensions as possible.
 */
function mergeCopyAxes(
  shape: readonly number[],
  strides: readonly number[],
): { shape: number[]; strides: number[] } {
  const merged = { shape: [] as number[], strides: [] as number[] };
  shape.forEach((dim, i) => {
    if (dim === 1) return;
    const last = merged.shape.length - 1;
    if (last >= 0 && merged.strides[last] === strides[i] * dim) {
      merged.shape[last] *= dim;
      merged.strides[last] = strides[i];
    } else {
      merged.shape.push(dim);
      merged.strides.push(strides[i]);
    }
  });
  return merged;
}

function checkPermutation(x: Tensor, dims: readonly number[]): number[] {
  const valid =
    dims.length === x.rank &&
    dims.every((d) => Number.isInteger(d) && d >= -x.rank && d < x.rank);
  const resolved = dims.map((d) => (d < 0 ? d + x.rank : d));
  if (!valid || new Set(resolved).size !== x.rank) {
    throw new RangeError(
      `permute: dims ${formatShape(dims)} are not a permutation of the ` +
        `${x.rank} axes of shape ${formatShape(x.shape)}`,
    );
  }
  return resolved;
}

/** Runs permute without autograd, for `dims` already checked. */
function permuteKernel(op: string, x: Tensor, dims: readonly number[]): Tensor {
  const strides = contiguousStrides(x.shape);
  const shape = dims.map((d) => x.shape[d]);
  const merged = mergeCopyAxes(
    shape,
    dims.map((d) => strides[d]),
  );
  return stridedCopyKernel(op, x, { ...merged, resultShape: shape });
}

/**
 * Reorders the axes of `x`: axis i of the result is axis dims[i] of `x`
 * (negative dims count from the end). The result is a contiguous copy.
 */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  checkRank('permute', x);
  const resolved = checkPermutation(x, dims);
  const out = permuteKernel('permute', x, resolved);
  checkOutput('permute', out, [x]);
  const inverse = new Array<number>(resolved.length);
  resolved.forEach((d, i) => (inverse[d] = i));
  return record('permute', out, [x], [], (g) => [
    permuteKernel('permute', g, inverse),
  ]);
}

/** Swaps axes `a` and `b` of `x` into a contiguous copy. See permute(). */
export function transpose(x: Tensor, a: number, b: number): Tensor {
  const first = resolveAxis('transpose', x.shape, a);
  const second = resolveAxis('transpose', x.shape, b);
  const dims = [...x.shape.keys()];
  dims[first] = second;
  dims[second] = first;
  return permute(x, dims);
}

/** Resolves Python-style slice bounds; throws when a range leaves its axis. */
function sliceBounds(
  x: Tensor,
  starts: readonly number[],
  ends: readonly number[],
): { starts: number[]; ends: number[] } {
  if (starts.length !== ends.length || starts.length > x.rank) {
    throw new RangeError(
      `slice: starts ${formatShape(starts)} and ends ${formatShape(ends)} ` +
        'must have the same length, at most the rank of shape ' +
        formatShape(x.shape),
    );
  }
  const resolve = (value: number, dim: number) =>
    value < 0 ? value + dim : value;
  const from = x.shape.map((dim, i) =>
    i < starts.length ? resolve(starts[i], dim) : 0,
  );
  const to = x.shape.map((dim, i) =>
    i < ends.length ? resolve(ends[i], dim) : dim,
  );
  x.shape.forEach((dim, i) => {
    const ok =
      Number.isInteger(from[i]) &&
      Number.isInteger(to[i]) &&
      from[i] >= 0 &&
      from[i] <= to[i] &&
      to[i] <= dim;
    if (!ok) {
      throw new RangeError(
        `slice: range [${starts[i]}, ${ends[i]}) is out of bounds for axis ` +
          `${i} of shape ${formatShape(x.shape)} (size ${dim}; need ` +
          '0 <= start <= end <= size, where negative values count from ' +
          'the end)',
      );
    }
  });
  return { starts: from, ends: to };
}

/**
 * Copies the box [starts[i], ends[i]) along each axis i of `x`. `starts`
 * and `ends` may be shorter than the rank, and later axes are then kept
 * whole. Negative values count from the end of the axis, as in Python. A
 * range outside the axis is an error, not clamped.
 */
export function slice(
  x: Tensor,
  starts: readonly number[],
  ends: readonly number[],
): Tensor {
  checkRank('slice', x);
  const bounds = sliceBounds(x, starts, ends);
  const strides = contiguousStrides(x.shape);
  const shape = x.shape.map((_, i) => bounds.ends[i] - bounds.starts[i]);
  const offset = bounds.starts.reduce((sum, s, i) => sum + s * strides[i], 0);
  const merged = mergeCopyAxes(shape, strides);
  const out = stridedCopyKernel('slice', x, {
    ...merged,
    offset,
    resultShape: shape,
  });
  checkOutput('slice', out, [x]);
  const pads = x.shape.map((dim, i): [number, number] => [
    bounds.starts[i],
    dim - bounds.ends[i],
  ]);
  return record('slice', out, [x], [], (g) => [padKernel('slice', g, pads, 0)]);
}

/**
 * Copies `length` elements of `x` along `axis` from `start`, like
 * torch.narrow. A negative start counts from the end.
 */
export function narrow(
  x: Tensor,
  axis: number,
  start: number,
  length: number,
): Tensor {
  const a = resolveAxis('narrow', x.shape, axis);
  const from = start < 0 ? start + x.shape[a] : start;
  const starts = x.shape.map((_, i) => (i === a ? from : 0));
  const ends = x.shape.map((dim, i) => (i === a ? from + length : dim));
  const inside = from >= 0 && from + length <= x.shape[a];
  if (!Number.isInteger(length) || length < 0 || !inside) {
    throw new RangeError(
      `narrow: start ${start} and length ${length} leave axis ${axis} of ` +
        `shape ${formatShape(x.shape)} (size ${x.shape[a]})`,
    );
  }
  return slice(x, starts, ends);
}

const PAD_SPEC: KernelSpec = {
  name: 'pad',
  uniforms: [
    ['size', 'u32'],
    ['rank', 'u32'],
    ['value', 'f32'],
    ['out_shape', 'vec4u*2'],
    ['x_shape', 'vec4u*2'],
    ['x_strides', 'vec4u*2'],
    ['before', 'vec4u*2'],
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
};

/** Pads with a constant, without autograd, for `pads` already checked. */
function padKernel(
  op: string,
  x: Tensor,
  pads: readonly (readonly [number, number])[],
  value: number,
): Tensor {
  const shape = x.shape.map((dim, i) => dim + pads[i][0] + pads[i][1]);
  const out = empty(shape, op);
  // The kernel needs an innermost axis: a rank-0 tensor reads as [1].
  const xShape = x.rank === 0 ? [1] : x.shape;
  const { spec, workgroups } = runLaunch(PAD_SPEC, out.size);
  launch(spec, {
    label: op,
    uniforms: {
      size: out.size,
      rank: xShape.length,
      value,
      out_shape: x.rank === 0 ? [1] : shape,
      x_shape: xShape,
      x_strides: contiguousStrides(xShape),
      // Negative pads travel as their two's complement bits (i32 in WGSL).
      before: x.rank === 0 ? [0] : pads.map(([before]) => before >>> 0),
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups,
  });
  return out;
}

function checkPads(
  x: Tensor,
  pads: readonly (readonly number[])[],
): [number, number][] {
  const pairs = pads.length === x.rank && pads.every((p) => p.length === 2);
  if (!pairs) {
    throw new RangeError(
      `pad: expected ${x.rank} [before, after] pairs for shape ` +
        `${formatShape(x.shape)}, got ${JSON.stringify(pads)}`,
    );
  }
  return pads.map(([before, after], i) => {
    const integers = Number.isInteger(before) && Number.isInteger(after);
    if (!integers || x.shape[i] + before + after < 0) {
      throw new RangeError(
        `pad: pads [${before}, ${after}] are invalid for axis ${i} of shape ` +
          `${formatShape(x.shape)}: they must be integers and may crop ` +
          `at most the ${x.shape[i]} elements of the axis`,
      );
    }
    return [before, after];
  });
}

/**
 * Pads `x` with `value`: pads[i] = [before, after] elements along axis i,
 * one pair per axis. Negative pads crop that many elements instead.
 */
export function pad(
  x: Tensor,
  pads: readonly (readonly number[])[],
  value = 0,
): Tensor {
  checkRank('pad', x);
  const checked = checkPads(x, pads);
  const out = padKernel('pad', x, checked, value);
  checkOutput('pad', out, [x]);
  const inverse = checked.map(([before, after]): [number, number] => [
    -before,
    -after,
  ]);
  return record('pad', out, [x], [], (g) => [padKernel('pad', g, inverse, 0)]);
}

/**
 * Broadcasts `x` to `shape` (NumPy rules: missing leading axes and size-1
 * axes are repeated), as a contiguous copy. The gradient sums over the
 * repeated axes.
 */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  const target = [...shape];
  const result = broadcastShapes('broadcastTo', x.shape, target);
  if (!sameShape(result, target)) {
    throw new RangeError(
      `broadcastTo: shape ${formatShape(x.shape)} cannot be broadcast to ` +
        `${formatShape(target)} (the result would be ${formatShape(result)})`,
    );
  }
  if (target.length > MAX_RANK) {
    throw new RangeError(
      `broadcastTo: shape ${formatShape(target)} has rank ${target.length}, ` +
        `more than the ${MAX_RANK} the kernels support`,
    );
  }
  const out = expandKernel('broadcastTo', x, x.shape, target);
  checkOutput('broadcastTo', out, [x]);
  return record('broadcastTo', out, [x], [], (g) => [sumToShape(g, x.shape)]);
}

const concatSpecs = {
  scatter: concatSpec(true),
  gather: concatSpec(false),
};

function concatSpec(scatter: boolean): KernelSpec {
  return {
    name: 'concat',
    uniforms: [
      ['size', 'u32'],
      ['part_row', 'u32'],
      ['whole_row', 'u32'],
      ['offset', 'u32'],
    ],
    bindings: [
      { name: 'x', access: 'read' },
      { name: 'out', access: 'read_write' },
    ],
    constants: { SCATTER: String(scatter) },
  };
}

/** Copies `part` into (scatter) or out of (gather) its columns of `whole`. */
function concatCopy(
  op: string,
  mode: 'scatter' | 'gather',
  part: { tensor: Tensor; row: number },
  whole: { tensor: Tensor; row: number },
  offset: number,
): void {
  const { spec, workgroups } = runLaunch(concatSpecs[mode], part.tensor.size);
  let [source, target] = [whole.tensor, part.tensor];
  if (mode === 'scatter') [source, target] = [part.tensor, whole.tensor];
  launch(spec, {
    label: op,
    uniforms: {
      size: part.tensor.size,
      part_row: part.row,
      whole_row: whole.row,
      offset,
    },
    buffers: [
      { buffer: source.buffer(op), bytes: source.bytes },
      { buffer: target.buffer(op), bytes: target.bytes },
    ],
    workgroups,
  });
}

function checkConcat(tensors: readonly Tensor[], axis: number): number {
  if (tensors.length === 0) {
    throw new RangeError('concat: expected at least one tensor, got none');
  }
  const first = tensors[0];
  const a = resolveAxis('concat', first.shape, axis);
  tensors.forEach((t, k) => {
    const matches =
      t.rank === first.rank &&
      t.shape.every((d, i) => i === a || d === first.shape[i]);
    if (!matches) {
      throw new RangeError(
        `concat: tensor ${k} has shape ${formatShape(t.shape)} but ` +
          `tensor 0 has ${formatShape(first.shape)}; shapes must match ` +
          `except along axis ${axis}`,
      );
    }
  });
  return a;
}

/**
 * Joins `tensors` along `axis` (negative counts from the end). All shapes
 * must match except along that axis.
 */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  const a = checkConcat(tensors, axis);
  const shape = [...tensors[0].shape];
  shape[a] = tensors.reduce((n, t) => n + t.shape[a], 0);
  const inner = shape.slice(a + 1).reduce((n, d) => n * d, 1);
  const out = empty(shape, 'concat');
  const whole = { tensor: out, row: shape[a] * inner };
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    offsets.push(offset);
    const part = { tensor: t, row: t.shape[a] * inner };
    if (t.size > 0) concatCopy('concat', 'scatter', part, whole, offset);
    offset += part.row;
  }
  checkOutput('concat', out, tensors);
  return record('concat', out, tensors, [], (g) =>
    tensors.map((t, k) => {
      if (!t.requiresGrad) return null;
      const part = {
        tensor: empty(t.shape, 'concat'),
        row: t.shape[a] * inner,
      };
      const source = { tensor: g, row: whole.row };
      if (t.size > 0) concatCopy('concat', 'gather', part, source, offsets[k]);
      return part.tensor;
    }),
  );
}
