// Launchers of the smoothness (l2 gradient) loss kernels: smoothness.wgsl
// (partial sums, then loss_sum's tree) and smoothness_grad.wgsl.

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { sumToScalar } from './loss_sum.js';

/** Positions along D that one invocation walks. */
export const SMOOTHNESS_SEGMENT = 32;

const GEOMETRY = [
  ['total', 'u32'],
  ['depth', 'u32'],
  ['height', 'u32'],
  ['width', 'u32'],
  ['segments', 'u32'],
] as const;

const FORWARD_SPEC: KernelSpec = {
  name: 'smoothness',
  uniforms: GEOMETRY,
  bindings: [
    { name: 'flow', access: 'read' },
    { name: 'partials', access: 'read_write', type: 'vec4<f32>' },
  ],
  constants: { SEGMENT: SMOOTHNESS_SEGMENT },
};

const GRAD_SPEC: KernelSpec = {
  name: 'smoothness_grad',
  uniforms: [
    ...GEOMETRY,
    ['weight_d', 'f32'],
    ['weight_h', 'f32'],
    ['weight_w', 'f32'],
  ],
  bindings: [
    { name: 'flow', access: 'read' },
    { name: 'upstream', access: 'read' },
    { name: 'grad', access: 'read_write' },
  ],
  constants: { SEGMENT: SMOOTHNESS_SEGMENT },
};

function geometry(shape: readonly number[]) {
  const [n, c, d, h, w] = shape;
  const segments = Math.ceil(d / SMOOTHNESS_SEGMENT);
  return { total: n * c * segments * h * w, depth: d, height: h, width: w, segments };
}

/**
 * Weight of each axis's sum of squared differences in the loss:
 * 1 / (3 * number of differences along that axis).
 */
export function axisWeights(shape: readonly number[]): [number, number, number] {
  const [n, c, d, h, w] = shape;
  const volumes = n * c;
  return [
    1 / (3 * volumes * (d - 1) * h * w),
    1 / (3 * volumes * d * (h - 1) * w),
    1 / (3 * volumes * d * h * (w - 1)),
  ];
}

/** Loss of a [N, C, D, H, W] field with D, H, W >= 2 (checked by the caller). */
export function smoothnessForwardKernel(op: string, flow: Tensor): Tensor {
  const uniforms = geometry(flow.shape);
  const partials = empty([uniforms.total, 4], op);
  launch(FORWARD_SPEC, {
    label: op,
    uniforms,
    buffers: [
      { buffer: flow.buffer(op), bytes: flow.bytes },
      { buffer: partials.buffer(op), bytes: partials.bytes },
    ],
    workgroups: workgroupsFor(FORWARD_SPEC, uniforms.total),
  });
  const [wd, wh, ww] = axisWeights(flow.shape);
  const loss = sumToScalar(op, partials, uniforms.total, [wd, wh, ww, 0]);
  partials.dispose();
  return loss;
}

/** Gradient of the loss with respect to `flow`, given the upstream scalar. */
export function smoothnessBackwardKernel(op: string, flow: Tensor, upstream: Tensor): Tensor {
  const uniforms = geometry(flow.shape);
  const [wd, wh, ww] = axisWeights(flow.shape);
  const grad = empty(flow.shape, op);
  launch(GRAD_SPEC, {
    label: `${op} gradient`,
    uniforms: { ...uniforms, weight_d: 2 * wd, weight_h: 2 * wh, weight_w: 2 * ww },
    buffers: [
      { buffer: flow.buffer(op), bytes: flow.bytes },
      { buffer: upstream.buffer(op), bytes: upstream.bytes },
      { buffer: grad.buffer(op), bytes: grad.bytes },
    ],
    workgroups: workgroupsFor(GRAD_SPEC, uniforms.total),
  });
  return grad;
}
