// Launchers of the 3D pooling kernels: pool_max and pool_avg (forward),
// pool_max_grad and pool_avg_grad (backward, as gathers).

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';

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

const MAX_GRAD_SPEC: KernelSpec = {
  name: 'pool_max_grad',
  uniforms: GEOMETRY_UNIFORMS,
  bindings: [
    { name: 'upstream', access: 'read' },
    { name: 'indices', access: 'read', type: 'u32' },
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
  uniforms: [...GEOMETRY_UNIFORMS, ['count_include_pad', 'u32']],
  bindings: [
    { name: 'upstream', access: 'read' },
    { name: 'grad', access: 'read_write' },
  ],
};

function geometryUniforms(g: PoolGeometry, total: number) {
  const [depth, height, width] = g.inSize;
  const [outDepth, outHeight, outWidth] = g.outSize;
  return {
    total,
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
  launch(MAX_SPEC, {
    label: op,
    uniforms: geometryUniforms(g, out.size),
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
      { buffer: indices.buffer(op), bytes: indices.bytes },
    ],
    workgroups: workgroupsFor(MAX_SPEC, out.size),
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
  launch(MAX_GRAD_SPEC, {
    label: `${op} gradient`,
    uniforms: geometryUniforms(g, grad.size),
    buffers: [
      { buffer: upstream.buffer(op), bytes: upstream.bytes },
      { buffer: indices.buffer(op), bytes: indices.bytes },
      { buffer: grad.buffer(op), bytes: grad.bytes },
    ],
    workgroups: workgroupsFor(MAX_GRAD_SPEC, grad.size),
  });
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
  launch(AVG_SPEC, {
    label: op,
    uniforms: {
      ...geometryUniforms(g, out.size),
      count_include_pad: countIncludePad ? 1 : 0,
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(AVG_SPEC, out.size),
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
  launch(AVG_GRAD_SPEC, {
    label: `${op} gradient`,
    uniforms: {
      ...geometryUniforms(g, grad.size),
      count_include_pad: countIncludePad ? 1 : 0,
    },
    buffers: [
      { buffer: upstream.buffer(op), bytes: upstream.bytes },
      { buffer: grad.buffer(op), bytes: grad.bytes },
    ],
    workgroups: workgroupsFor(AVG_GRAD_SPEC, grad.size),
  });
  return grad;
}
