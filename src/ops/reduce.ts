// Reductions over axes (sum, mean, max, min) and the broadcast-undo helper
// sumToShape that backward rules use.

import { record } from '../autograd/node.js';
import { launch, workgroupsFor, type KernelSpec } from '../kernels/launch.js';
import { empty, formatShape, type Tensor } from '../tensor.js';
import {
  broadcastStrides,
  checkRank,
  contiguousStrides,
  normaliseAxes,
  sameShape,
} from './shape.js';

type ReduceKind = 'sum' | 'max' | 'min';

const COMBINE: Record<ReduceKind, { init: string; combine: string }> = {
  sum: { init: '0.0', combine: 'acc + v' },
  // -inf and inf are not WGSL literals; the largest finite f32 stands in.
  max: { init: '-3.4028234663852886e38', combine: 'max(acc, v)' },
  min: { init: '3.4028234663852886e38', combine: 'min(acc, v)' },
};

const specs = new Map<ReduceKind, KernelSpec>();

function reduceSpec(kind: ReduceKind): KernelSpec {
  let spec = specs.get(kind);
  if (!spec) {
    spec = {
      name: 'reduce',
      uniforms: [
        ['out_size', 'u32'],
        ['out_rank', 'u32'],
        ['red_rank', 'u32'],
        ['red_size', 'u32'],
        ['scale', 'f32'],
        ['out_shape', 'vec4u*2'],
        ['out_strides', 'vec4u*2'],
        ['red_shape', 'vec4u*2'],
        ['red_strides', 'vec4u*2'],
      ],
      bindings: [
        { name: 'x', access: 'read' },
        { name: 'out', access: 'read_write' },
      ],
      constants: { INIT: COMBINE[kind].init, COMBINE: COMBINE[kind].combine },
    };
    specs.set(kind, spec);
  }
  return spec;
}

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

/** @internal Runs the reduction kernel; no autograd. */
export function reduceKernel(
  op: string,
  kind: ReduceKind,
  x: Tensor,
  axes: readonly number[],
  keepDims: boolean,
  scale = 1,
): Tensor {
  checkRank(op, x);
  const strides = contiguousStrides(x.shape);
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const redSize = axes.reduce((n, i) => n * x.shape[i], 1);
  if (redSize === 0 && kind !== 'sum') {
    throw new RangeError(
      `${op}: cannot take the ${kind} over an empty axis of shape ${formatShape(x.shape)}`,
    );
  }
  const out = empty(reducedShape(x.shape, axes, keepDims), op);
  const spec = reduceSpec(kind);
  launch(spec, {
    label: op,
    uniforms: {
      out_size: out.size,
      out_rank: kept.length,
      red_rank: axes.length,
      red_size: redSize,
      scale,
      out_shape: kept.map((i) => x.shape[i]),
      out_strides: kept.map((i) => strides[i]),
      red_shape: axes.map((i) => x.shape[i]),
      red_strides: axes.map((i) => strides[i]),
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: out.size,
  });
  return out;
}

export interface ReduceOptions {
  keepDims?: boolean;
}

/** Sum over `axes` (all axes when omitted). */
export function sum(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const list = normaliseAxes('sum', axes, x.rank);
  const keepDims = options.keepDims ?? false;
  const out = reduceKernel('sum', 'sum', x, list, keepDims);
  return record('sum', out, [x], [], (g) => [
    expandTo(g, reducedShape(x.shape, list, true), x.shape),
  ]);
}

/** Mean over `axes` (all axes when omitted). */
export function mean(
  x: Tensor,
  axes?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const list = normaliseAxes('mean', axes, x.rank);
  const keepDims = options.keepDims ?? false;
  const count = list.reduce((n, i) => n * x.shape[i], 1);
  const out = reduceKernel('mean', 'sum', x, list, keepDims, 1 / count);
  return record('mean', out, [x], [], (g) => [
    expandTo(g, reducedShape(x.shape, list, true), x.shape, 1 / count),
  ]);
}

const EXPAND_SPEC: KernelSpec = {
  name: 'expand',
  uniforms: [
    ['size', 'u32'],
    ['rank', 'u32'],
    ['scale', 'f32'],
    ['shape', 'vec4u*2'],
    ['x_strides', 'vec4u*2'],
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
};

/**
 * @internal Broadcasts `x` (read as `xShape`, which broadcasts to `shape`)
 * to `shape`, times `factor`; no autograd.
 */
export function expandKernel(
  op: string,
  x: Tensor,
  xShape: readonly number[],
  shape: readonly number[],
  factor = 1,
): Tensor {
  const out = empty(shape, op);
  launch(EXPAND_SPEC, {
    label: op,
    uniforms: {
      size: out.size,
      rank: shape.length,
      scale: factor,
      shape,
      x_strides: broadcastStrides(xShape, shape),
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(EXPAND_SPEC, out.size),
  });
  return out;
}

function expandTo(
  g: Tensor,
  keptShape: readonly number[],
  shape: readonly number[],
  factor = 1,
): Tensor {
  return expandKernel('expand', g, keptShape, shape, factor);
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

