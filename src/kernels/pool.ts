// Launchers of the 3D pooling kernels: pool_max and pool_avg (forward),
// pool_max_grad and pool_avg_grad (backward, as gathers), and the small
// per-axis tables the gathers read instead of dividing per element.

import { empty, tensor, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { elementsPerInvocation } from './runs.js';

export type Triple = [number, number, number];

/** Geometry of a pooling of [N, C, D, H, W] volumes. */
export interface PoolGeometry {
  volumes: number;
  inSize: Triple;
  outSize: Triple;
  kernelSize: Triple;
  stride: Triple;
  padding: Triple;
}

const GEOMETRY_UNIFORMS = [
  ['total', 'u32'],
  ['runs', 'u32'],
  ['run_length', 'u32'],
  ['depth', 'u32'],
  ['height', 'u32'],
  ['width', 'u32'],
  ['out_depth', 'u32'],
  ['out_height', 'u32'],
  ['out_width', 'u32'],
  ['kernel_depth', 'u32'],
  ['kernel_height', 'u32'],
  ['kernel_width', 'u32'],
  ['stride_depth', 'u32'],
  ['stride_height', 'u32'],
  ['stride_width', 'u32'],
  ['padding_depth', 'u32'],
  ['padding_height', 'u32'],
  ['padding_width', 'u32'],
] as const;

const MAX_SPEC: KernelSpec = {
  name: 'pool_max',
  uniforms: GEOMETRY_UNIFORMS,
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'out', access: 'read_write' },
    { name: 'indices', access: 'read_write', type: 'u32' },
  ],
};

const TABLE_UNIFORMS = [
  ['spans_depth', 'u32'],
  ['spans_height', 'u32'],
  ['spans_width', 'u32'],
  ['inside_depth', 'u32'],
  ['inside_height', 'u32'],
  ['inside_width', 'u32'],
] as const;

const MAX_GRAD_SPEC: KernelSpec = {
  name: 'pool_max_grad',
  uniforms: [...GEOMETRY_UNIFORMS, ...TABLE_UNIFORMS],
  bindings: [
    { name: 'upstream', access: 'read' },
    { name: 'indices', access: 'read', type: 'u32' },
    { name: 'table', access: 'read', type: 'u32' },
    { name: 'grad', access: 'read_write' },
  ],
};

const AVG_SPEC: KernelSpec = {
  name: 'pool_avg',
  uniforms: [...GEOMETRY_UNIFORMS, ['count_include_pad', 'u32']],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
};

const AVG_GRAD_SPEC: KernelSpec = {
  name: 'pool_avg_grad',
  uniforms: [...GEOMETRY_UNIFORMS, ['count_include_pad', 'u32'], ...TABLE_UNIFORMS],
  bindings: [
    { name: 'upstream', access: 'read' },
    { name: 'table', access: 'read', type: 'u32' },
    { name: 'grad', access: 'read_write' },
  ],
};

/**
 * Builds the per-axis tables of the gradient kernels as one u32 tensor.
 * For input i along an axis, the outputs whose window covers it run from
 * ceil((i + padding - kernel + 1) / stride) to floor((i + padding) /
 * stride), clipped to the output, and spans stores (first, end) of that
 * range. For output o, inside stores how many inputs of its window lie
 * inside the volume (the divisor of average pooling without
 * count_include_pad).
 */
function gradTable(g: PoolGeometry): { table: Tensor; offsets: Record<string, number> } {
  const names = ['depth', 'height', 'width'];
  const words: number[] = [];
  const offsets: Record<string, number> = {};
  names.forEach((name, a) => {
    offsets[`spans_${name}`] = words.length;
    const [k, s, p] = [g.kernelSize[a], g.stride[a], g.padding[a]];
    for (let i = 0; i < g.inSize[a]; i++) {
      const first = Math.max(0, Math.ceil((i + p - k + 1) / s));
      const end = Math.min(Math.floor((i + p) / s) + 1, g.outSize[a]);
      words.push(first, Math.max(first, end));
    }
  });
  names.forEach((name, a) => {
    offsets[`inside_${name}`] = words.length;
    const [k, s, p] = [g.kernelSize[a], g.stride[a], g.padding[a]];
    for (let o = 0; o < g.outSize[a]; o++) {
      const start = o * s - p;
      words.push(Math.min(start + k, g.inSize[a]) - Math.max(start, 0));
    }
  });
  // The tensor carries raw u32 words: a Float32Array view uploads the
  // bytes unchanged, and the kernels declare the binding as u32.
  const bits = Uint32Array.from(words);
  return { table: tensor(new Float32Array(bits.buffer), [bits.length]), offsets };
}

/**
 * Uniforms of a kernel that walks `side` (the output for the forward
 * kernels, the input for the gradients) in runs along W. Returns them with
 * the invocation count.
 */
function geometryUniforms(g: PoolGeometry, side: Triple) {
  const [depth, height, width] = g.inSize;
  const [outDepth, outHeight, outWidth] = g.outSize;
  const runLength = elementsPerInvocation();
  const runs = Math.ceil(side[2] / runLength);
  const total = g.volumes * side[0] * side[1] * runs;
  return {
    total,
    runs,
    run_length: runLength,
    depth,
    height,
    width,
    out_depth: outDepth,
    out_height: outHeight,
    out_width: outWidth,
    kernel_depth: g.kernelSize[0],
    kernel_height: g.kernelSize[1],
    kernel_width: g.kernelSize[2],
    stride_depth: g.stride[0],
    stride_height: g.stride[1],
    stride_width: g.stride[2],
    padding_depth: g.padding[0],
    padding_height: g.padding[1],
    padding_width: g.padding[2],
  };
}

function outputShape(g: PoolGeometry, x: Tensor): number[] {
  return [x.shape[0], x.shape[1], ...g.outSize];
}

/**
 * Max pooling forward: the output and, per output, the flat index of its
 * argmax inside its (n, c) volume (a u32 tensor of the output's shape).
 */
export function maxPoolForward(
  op: string,
  x: Tensor,
  g: PoolGeometry,
): { out: Tensor; indices: Tensor } {
  const shape = outputShape(g, x);
  const out = empty(shape, op);
  const indices = empty(shape, op);
  const uniforms = geometryUniforms(g, g.outSize);
  launch(MAX_SPEC, {
    label: op,
    uniforms,
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
      { buffer: indices.buffer(op), bytes: indices.bytes },
    ],
    workgroups: workgroupsFor(MAX_SPEC, uniforms.total),
  });
  return { out, indices };
}

/** Input gradient of max pooling from the upstream gradient and indices. */
export function maxPoolBackward(
  op: string,
  upstream: Tensor,
  indices: Tensor,
  g: PoolGeometry,
  inShape: readonly number[],
): Tensor {
  const grad = empty(inShape, op);
  const uniforms = geometryUniforms(g, g.inSize);
  const { table, offsets } = gradTable(g);
  launch(MAX_GRAD_SPEC, {
    label: `${op} gradient`,
    uniforms: { ...uniforms, ...offsets },
    buffers: [
      { buffer: upstream.buffer(op), bytes: upstream.bytes },
      { buffer: indices.buffer(op), bytes: indices.bytes },
      { buffer: table.buffer(op), bytes: table.bytes },
      { buffer: grad.buffer(op), bytes: grad.bytes },
    ],
    workgroups: workgroupsFor(MAX_GRAD_SPEC, uniforms.total),
  });
  table.dispose();
  return grad;
}

/** Average pooling forward. */
export function avgPoolForward(
  op: string,
  x: Tensor,
  g: PoolGeometry,
  countIncludePad: boolean,
): Tensor {
  const out = empty(outputShape(g, x), op);
  const uniforms = geometryUniforms(g, g.outSize);
  launch(AVG_SPEC, {
    label: op,
    uniforms: { ...uniforms, count_include_pad: countIncludePad ? 1 : 0 },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(AVG_SPEC, uniforms.total),
  });
  return out;
}

/** Input gradient of average pooling. */
export function avgPoolBackward(
  op: string,
  upstream: Tensor,
  g: PoolGeometry,
  countIncludePad: boolean,
  inShape: readonly number[],
): Tensor {
  const grad = empty(inShape, op);
  const uniforms = geometryUniforms(g, g.inSize);
  const { table, offsets } = gradTable(g);
  launch(AVG_GRAD_SPEC, {
    label: `${op} gradient`,
    uniforms: {
      ...uniforms,
      ...offsets,
      count_include_pad: countIncludePad ? 1 : 0,
    },
    buffers: [
      { buffer: upstream.buffer(op), bytes: upstream.bytes },
      { buffer: table.buffer(op), bytes: table.bytes },
      { buffer: grad.buffer(op), bytes: grad.bytes },
    ],
    workgroups: workgroupsFor(AVG_GRAD_SPEC, uniforms.total),
  });
  table.dispose();
  return grad;
}
