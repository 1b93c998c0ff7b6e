// Reductions over axes (sum, mean, max, min, argmax, argmin) and the
// broadcast helpers that backward rules use (expandKernel, sumToShape).

import { record } from '../autograd/node.js';
import { checkOutput } from '../debug.js';
import { argReduceKernel } from '../kernels/argreduce.js';
import { launch, type KernelSpec } from '../kernels/launch.js';
import { runReduction, type ReduceKind } from '../kernels/reduce.js';
import { runLaunch } from '../kernels/runs.js';
import { empty, formatShape, type Tensor } from '../tensor.js';
import { fillKernel } from './creation.js';
import { binaryKernel } from './elementwise.js';
import { resolveAxes, resolveAxis } from './axes.js';
import { broadcastStrides, checkRank, sameShape } from './shape.js';

export type { ReduceKind } from '../kernels/reduce.js';

/** Shape after reducing `axes`, with or without the reduced axes kept as 1. */
export function reducedShape(
  shape: readonly number[],
  axes: readonly number[],
  keepDims: boolean,
): number[] {
  const out: number[] = [];
  shape.forEach((dim, i) => {
    if (!axes.includes(i)) out.push(dim);
    else if (keepDims) out.push(1);
  });
  return out;
}

/**
 * @internal Reduces `x` over `axes` (sorted, non-negative, no repeats) with
 * `kind`, times `scale`, without autograd. Large reductions run in several
 * passes (see kernels/reduce.ts). The order of operations is fixed, so the
 * same input gives bitwise equal results.
 */
export function reduceKernel(
  op: string,
  kind: ReduceKind,
  x: Tensor,
  axes: readonly number[],
  keepDims: boolean,
  scale = 1,
): Tensor {
  checkRank(op, x);
  const shape = reducedShape(x.shape, axes, keepDims);
  const count = axes.reduce((n, i) => n * x.shape[i], 1);
  if (count === 0 && kind !== 'sum') {
    throw new RangeError(
      `${op}: cannot take the ${kind} over an empty axis of shape ` +
        `${formatShape(x.shape)} (axes ${formatShape(axes)})`,
    );
  }
  if (count === 0 || shape.some((d) => d === 0)) {
    const out = empty(shape, op);
    // An empty sum is 0; an empty mean is 0 * (1 / 0) = NaN, as in PyTorch.
    if (out.size > 0) fillKernel(out, 0 * scale);
    return out;
  }
  return runReduction(op, kind, x, axes, scale, shape);
}

export interface ReduceOptions {
  /** Keep each reduced axis as a size-1 axis. Default false. */
  keepDims?: boolean;
}

/**
 * Sums over `axes`, or over all axes when omitted. Negative axes count from
 * the end.
 */
export function sum(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const list = resolveAxes('sum', x.shape, axes);
  const keepDims = options.keepDims ?? false;
  const out = reduceKernel('sum', 'sum', x, list, keepDims);
  checkOutput('sum', out, [x]);
  return record('sum', out, [x], [], (g) => [
    expandKernel('sum', g, reducedShape(x.shape, list, true), x.shape),
  ]);
}

/**
 * Averages over `axes`, or over all axes when omitted. Negative axes count
 * from the end.
 */
export function mean(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const list = resolveAxes('mean', x.shape, axes);
  const keepDims = options.keepDims ?? false;
  const count = list.reduce((n, i) => n * x.shape[i], 1);
  const out = reduceKernel('mean', 'sum', x, list, keepDims, 1 / count);
  checkOutput('mean', out, [x]);
  return record('mean', out, [x], [], (g) => [
    expandKernel(
      'mean',
      g,
      reducedShape(x.shape, list, true),
      x.shape,
      1 / count,
    ),
  ]);
}

/**
 * Takes the maximum over `axes` (all axes when omitted), like `torch.amax`. The
 * gradient is split evenly between tied maxima, as `torch.amax` does
 * (checked against PyTorch 1.13: the row [1, 3, 3] gets [0, 0.5, 0.5]).
 * NOTE: NaN handling follows WGSL's max(), which the WGSL specification
 * leaves to the implementation, so a NaN may or may not propagate.
 */
export function max(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  return extremum('max', x, axes, options);
}

/**
 * Takes the minimum over `axes` (all axes when omitted), like `torch.amin`.
 * See max().
 */
export function min(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  return extremum('min', x, axes, options);
}

function extremum(
  kind: 'max' | 'min',
  x: Tensor,
  axes: number | readonly number[] | undefined,
  options: ReduceOptions,
): Tensor {
  const list = resolveAxes(kind, x.shape, axes);
  const keepDims = options.keepDims ?? false;
  const out = reduceKernel(kind, kind, x, list, keepDims);
  checkOutput(kind, out, [x]);
  const keptShape = reducedShape(x.shape, list, true);
  return record(kind, out, [x], [x, out], (g, [input, result]) => [
    extremumGrad(kind, g, input, result.share(keptShape, false), list),
  ]);
}

/** dx = g * [x == extremum] / (number of elements equal to the extremum). */
function extremumGrad(
  op: string,
  g: Tensor,
  x: Tensor,
  result: Tensor,
  axes: readonly number[],
): Tensor {
  const mask = binaryKernel(op, 'select(0.0, 1.0, x == y)', x, result);
  result.dispose();
  const ties = reduceKernel(op, 'sum', mask, axes, true);
  const gKept = g.share(ties.shape, false);
  const share = binaryKernel(op, 'x / y', gKept, ties);
  gKept.dispose();
  ties.dispose();
  const dx = binaryKernel(op, 'x * y', mask, share);
  mask.dispose();
  share.dispose();
  return dx;
}

/**
 * Finds the index of the maximum along `axis`, as a float tensor of whole
 * numbers (exact up to 2^24). On ties the first index wins, as in PyTorch.
 * Not differentiable.
 * NOTE: PyTorch treats NaN as the maximum, but here a comparison with NaN is
 * false, so a NaN is picked only when it is the first element.
 */
export function argmax(
  x: Tensor,
  axis: number,
  options: ReduceOptions = {},
): Tensor {
  return argReduce('argmax', x, axis, options);
}

/** Finds the index of the minimum along `axis`. See argmax(). */
export function argmin(
  x: Tensor,
  axis: number,
  options: ReduceOptions = {},
): Tensor {
  return argReduce('argmin', x, axis, options);
}

function argReduce(
  op: 'argmax' | 'argmin',
  x: Tensor,
  axis: number,
  options: ReduceOptions,
): Tensor {
  if (typeof axis !== 'number') {
    throw new TypeError(
      `${op}: axis must be one number, got ${String(axis)}. For the ` +
        `${op} over several axes, reshape them into one first`,
    );
  }
  const a = resolveAxis(op, x.shape, axis);
  const axisSize = x.shape[a];
  if (axisSize === 0) {
    throw new RangeError(
      `${op}: axis ${axis} of shape ${formatShape(x.shape)} is empty`,
    );
  }
  if (axisSize > 2 ** 24) {
    throw new RangeError(
      `${op}: axis ${axis} of shape ${formatShape(x.shape)} is longer than ` +
        '2^24, past which float32 indices are not exact',
    );
  }
  const shape = reducedShape(x.shape, [a], options.keepDims ?? false);
  const outer = x.shape.slice(0, a).reduce((n, d) => n * d, 1);
  const inner = x.shape.slice(a + 1).reduce((n, d) => n * d, 1);
  if (outer * inner === 0) return empty(shape, op);
  const out = argReduceKernel(op, op, x, outer, axisSize, inner, shape);
  checkOutput(op, out, [x]);
  return out;
}

const EXPAND_SPEC: KernelSpec = {
  name: 'expand',
  uniforms: [
    ['size', 'u32'],
    ['rank', 'u32'],
    ['offset', 'u32'],
    ['scale', 'f32'],
    ['shape', 'vec4u*2'],
    ['x_strides', 'vec4u*2'],
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
};

export interface StridedCopy {
  /** Shape the kernel walks, at most 8 axes. */
  shape: readonly number[];
  /** Element strides of `x` per axis of `shape` (0 broadcasts). */
  strides: readonly number[];
  /** Element of `x` read at coordinate 0. Default 0. */
  offset?: number;
  /** Factor applied to every element. Default 1. */
  factor?: number;
  /** Shape of the result, of the same size as `shape`. Default `shape`. */
  resultShape?: readonly number[];
}

/**
 * @internal Copies `x` into a new contiguous tensor, reading element
 * `offset + sum(coordinate * strides)` for each coordinate of `shape`,
 * without autograd. Broadcasting, permute and slice use it.
 */
export function stridedCopyKernel(
  op: string,
  x: Tensor,
  copy: StridedCopy,
): Tensor {
  const out = empty(copy.resultShape ?? copy.shape, op);
  const { spec, workgroups } = runLaunch(EXPAND_SPEC, out.size);
  launch(spec, {
    label: op,
    uniforms: {
      size: out.size,
      rank: copy.shape.length,
      offset: copy.offset ?? 0,
      scale: copy.factor ?? 1,
      shape: copy.shape,
      x_strides: copy.strides,
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups,
  });
  return out;
}

/**
 * @internal Broadcasts `x` (read as `xShape`, which broadcasts to `shape`)
 * to `shape`, times `factor`, without autograd.
 */
export function expandKernel(
  op: string,
  x: Tensor,
  xShape: readonly number[],
  shape: readonly number[],
  factor = 1,
): Tensor {
  const strides = broadcastStrides(xShape, shape);
  return stridedCopyKernel(op, x, { shape, strides, factor });
}

/**
 * @internal Sums `g` over the axes that broadcasting expanded, so the
 * result has `shape`. Returns `g` itself when the shapes already match.
 */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  g.shape.forEach((dim, i) => {
    if (i < lead || (shape[i - lead] === 1 && dim !== 1)) axes.push(i);
  });
  const summed = reduceKernel('sumToShape', 'sum', g, axes, false);
  const out = summed.share(shape);
  summed.dispose();
  return out;
}
