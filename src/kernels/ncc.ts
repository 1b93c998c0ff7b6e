// Launchers of the local NCC kernels: three separable box-sum passes
// forward (ncc_moments along W, ncc_box along H, ncc_cc along D) and three
// backward (ncc_box along W and H, ncc_grad along D).
//
// Five channels travel between passes as a vec4 volume plus an f32 volume,
// a [N, C, D, H, W, 4] and a [N, C, D, H, W] tensor. That way no kernel
// binds more than 7 storage buffers, and WebGPU guarantees 8 per stage.

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec, type UniformType } from './launch.js';
import { sumToScalar } from './loss_sum.js';

export type Triple = [number, number, number];

/** Positions along the summed axis that one invocation covers. */
export const NCC_SEGMENT = 16;

const AXIS_UNIFORMS: readonly (readonly [string, UniformType])[] = [
  ['total', 'u32'],
  ['outer', 'u32'],
  ['length', 'u32'],
  ['inner', 'u32'],
  ['segments', 'u32'],
  ['radius', 'u32'],
];

const CONSTANTS = { SEGMENT: NCC_SEGMENT };

const MOMENTS_SPEC: KernelSpec = {
  name: 'ncc_moments',
  uniforms: AXIS_UNIFORMS,
  bindings: [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'sums', access: 'read_write', type: 'vec4<f32>' },
    { name: 'sums_ab', access: 'read_write' },
  ],
  constants: CONSTANTS,
};

const BOX_SPEC: KernelSpec = {
  name: 'ncc_box',
  uniforms: AXIS_UNIFORMS,
  bindings: [
    { name: 'x', access: 'read', type: 'vec4<f32>' },
    { name: 'x5', access: 'read' },
    { name: 'out', access: 'read_write', type: 'vec4<f32>' },
    { name: 'out5', access: 'read_write' },
  ],
  constants: CONSTANTS,
};

function ccSpec(writeCoefficients: boolean): KernelSpec {
  return {
    name: 'ncc_cc',
    uniforms: [...AXIS_UNIFORMS, ['inv_window_size', 'f32'], ['epsilon', 'f32']],
    bindings: [
      { name: 'sums', access: 'read', type: 'vec4<f32>' },
      { name: 'sums5', access: 'read' },
      { name: 'coefficients', access: 'read_write', type: 'vec4<f32>' },
      { name: 'coefficients5', access: 'read_write' },
      { name: 'partials', access: 'read_write', type: 'vec4<f32>' },
    ],
    constants: { ...CONSTANTS, WRITE_COEFFICIENTS: String(writeCoefficients) },
  };
}

const CC_SPECS = { true: ccSpec(true), false: ccSpec(false) };

const GRAD_SPEC: KernelSpec = {
  name: 'ncc_grad',
  uniforms: [...AXIS_UNIFORMS, ['scale', 'f32']],
  bindings: [
    { name: 'coefficients', access: 'read', type: 'vec4<f32>' },
    { name: 'coefficients5', access: 'read' },
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'upstream', access: 'read' },
    { name: 'grad_a', access: 'read_write' },
    { name: 'grad_b', access: 'read_write' },
  ],
  constants: CONSTANTS,
};

type Axis = 0 | 1 | 2;

/** Uniforms of a pass along spatial axis `axis` (0 = D, 1 = H, 2 = W). */
function axisUniforms(shape: readonly number[], axis: Axis, window: Triple) {
  const [n, c, d, h, w] = shape;
  const extents = [d, h, w];
  const length = extents[axis];
  const inner = extents.slice(axis + 1).reduce((x, y) => x * y, 1);
  const outer = n * c * extents.slice(0, axis).reduce((x, y) => x * y, 1);
  const segments = Math.ceil(length / NCC_SEGMENT);
  return {
    total: outer * segments * inner,
    outer,
    length,
    inner,
    segments,
    radius: (window[axis] - 1) / 2,
  };
}

function binding(t: Tensor, op: string) {
  return { buffer: t.buffer(op), bytes: t.bytes };
}

/** Box-sums a five-channel volume (vec4 + f32) along one spatial axis. */
function boxPass(op: string, x: Tensor, x5: Tensor, axis: Axis, window: Triple): [Tensor, Tensor] {
  const out = empty(x.shape, op);
  const out5 = empty(x5.shape, op);
  const uniforms = axisUniforms(x5.shape, axis, window);
  launch(BOX_SPEC, {
    label: `${op} box`,
    uniforms,
    buffers: [binding(x, op), binding(x5, op), binding(out, op), binding(out5, op)],
    workgroups: workgroupsFor(BOX_SPEC, uniforms.total),
  });
  return [out, out5];
}

export interface NccForward {
  /** -mean(cc), shape []. */
  loss: Tensor;
  /** dcc/d(Sa, Sb, Saa, Sbb) per voxel, when requested. */
  coefficients: Tensor | null;
  /** dcc/dSab per voxel, when requested. */
  coefficients5: Tensor | null;
}

/**
 * Runs the forward kernels on same-shaped [N, C, D, H, W] volumes `a` and
 * `b` (checked by the caller) with an odd `window` per axis.
 */
export function nccForwardKernels(
  op: string,
  a: Tensor,
  b: Tensor,
  window: Triple,
  epsilon: number,
  withCoefficients: boolean,
): NccForward {
  const shape = a.shape;
  const sumsW = empty([...shape, 4], op);
  const sumsW5 = empty(shape, op);
  const moments = axisUniforms(shape, 2, window);
  launch(MOMENTS_SPEC, {
    label: `${op} moments`,
    uniforms: moments,
    buffers: [binding(a, op), binding(b, op), binding(sumsW, op), binding(sumsW5, op)],
    workgroups: workgroupsFor(MOMENTS_SPEC, moments.total),
  });
  const [sumsWH, sumsWH5] = boxPass(op, sumsW, sumsW5, 1, window);
  sumsW.dispose();
  sumsW5.dispose();

  const ccUniforms = axisUniforms(shape, 0, window);
  const coefficients = withCoefficients ? empty([...shape, 4], op) : null;
  const coefficients5 = withCoefficients ? empty(shape, op) : null;
  const partials = empty([ccUniforms.total, 4], op);
  const spec = CC_SPECS[String(withCoefficients) as 'true' | 'false'];
  // Two writable bindings may not share a buffer, so the kernel variant that
  // writes no coefficients gets two distinct 4-element stand-ins.
  const unused = withCoefficients ? null : [empty([4], op), empty([4], op)];
  launch(spec, {
    label: `${op} cc`,
    uniforms: {
      ...ccUniforms,
      inv_window_size: 1 / (window[0] * window[1] * window[2]),
      epsilon,
    },
    buffers: [
      binding(sumsWH, op),
      binding(sumsWH5, op),
      binding(coefficients ?? unused![0], op),
      binding(coefficients5 ?? unused![1], op),
      binding(partials, op),
    ],
    workgroups: workgroupsFor(spec, ccUniforms.total),
  });
  sumsWH.dispose();
  sumsWH5.dispose();
  unused?.forEach((t) => t.dispose());
  const loss = sumToScalar(op, partials, ccUniforms.total, [-1 / a.size, 0, 0, 0]);
  partials.dispose();
  return { loss, coefficients, coefficients5 };
}

/**
 * Runs the backward kernels: box-sums the forward coefficients and returns
 * the gradients of the loss with respect to `a` and `b`, given `upstream`,
 * the gradient of the loss (shape []).
 */
export function nccBackwardKernels(
  op: string,
  coefficients: Tensor,
  coefficients5: Tensor,
  a: Tensor,
  b: Tensor,
  upstream: Tensor,
  window: Triple,
): [Tensor, Tensor] {
  const [boxW, boxW5] = boxPass(op, coefficients, coefficients5, 2, window);
  const [boxWH, boxWH5] = boxPass(op, boxW, boxW5, 1, window);
  boxW.dispose();
  boxW5.dispose();
  const gradA = empty(a.shape, op);
  const gradB = empty(b.shape, op);
  const uniforms = axisUniforms(a.shape, 0, window);
  launch(GRAD_SPEC, {
    label: `${op} gradient`,
    uniforms: { ...uniforms, scale: -1 / a.size },
    buffers: [
      binding(boxWH, op),
      binding(boxWH5, op),
      binding(a, op),
      binding(b, op),
      binding(upstream, op),
      binding(gradA, op),
      binding(gradB, op),
    ],
    workgroups: workgroupsFor(GRAD_SPEC, uniforms.total),
  });
  boxWH.dispose();
  boxWH5.dispose();
  return [gradA, gradB];
}
