// Launchers of the normalisation kernels over a short strided axis of an
// [outer, channels, inner] view. norm_fused computes statistics and output
// in one kernel and norm_fused_grad the input gradient. norm_affine_grad
// computes the weight and bias gradients, also for layer norm on the row
// kernels.

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { bind, bindOptional, normOptions } from './norm.js';
import { runReduction } from './reduce.js';
import { elementsPerInvocation } from './runs.js';

/**
 * A normalisation over the middle axis of x read as [outer, channels,
 * inner]: statistic a * inner + s covers x[a, :, s], and weight and bias
 * are indexed by the channel.
 */
export interface StridedGeometry {
  outer: number;
  channels: number;
  inner: number;
}

const VIEW_UNIFORMS = [
  ['outer', 'u32'],
  ['channels', 'u32'],
  ['inner', 'u32'],
] as const;

const FUSED_SPEC: KernelSpec = {
  name: 'norm_fused',
  uniforms: [
    ...VIEW_UNIFORMS,
    ['has_weight', 'u32'],
    ['has_bias', 'u32'],
    ['eps', 'f32'],
    ['run_length', 'u32'],
  ],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'weight', access: 'read' },
    { name: 'bias', access: 'read' },
    { name: 'out', access: 'read_write' },
    { name: 'stats', access: 'read_write', type: 'vec4<f32>' },
  ],
};

const FUSED_GRAD_SPEC: KernelSpec = {
  name: 'norm_fused_grad',
  uniforms: [...VIEW_UNIFORMS, ['has_weight', 'u32'], ['run_length', 'u32']],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'upstream', access: 'read' },
    { name: 'stats', access: 'read', type: 'vec4<f32>' },
    { name: 'weight', access: 'read' },
    { name: 'grad', access: 'read_write' },
  ],
};

const AFFINE_GRAD_SPEC: KernelSpec = {
  name: 'norm_affine_grad',
  uniforms: [...VIEW_UNIFORMS, ['pieces', 'u32'], ['piece_size', 'u32']],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'upstream', access: 'read' },
    { name: 'stats', access: 'read', type: 'vec4<f32>' },
    { name: 'weight_partials', access: 'read_write' },
    { name: 'bias_partials', access: 'read_write' },
  ],
};

/**
 * Normalises x over the channels of the strided view; returns the output
 * and the [outer * inner, 4] statistics vec4(mean, rstd, var, n).
 */
export function stridedNorm(
  op: string,
  x: Tensor,
  g: StridedGeometry,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): { out: Tensor; stats: Tensor } {
  const positions = g.outer * g.inner;
  const runLength = elementsPerInvocation();
  const out = empty(x.shape, op);
  const stats = empty([positions, 4], op);
  launch(FUSED_SPEC, {
    label: op,
    uniforms: {
      ...g,
      has_weight: weight ? 1 : 0,
      has_bias: bias ? 1 : 0,
      eps,
      run_length: runLength,
    },
    buffers: [
      bind(op, x),
      bindOptional(op, weight),
      bindOptional(op, bias),
      bind(op, out),
      bind(op, stats),
    ],
    workgroups: workgroupsFor(FUSED_SPEC, Math.ceil(positions / runLength)),
  });
  return { out, stats };
}

/** Input gradient of stridedNorm. */
export function stridedNormGrad(
  op: string,
  x: Tensor,
  upstream: Tensor,
  stats: Tensor,
  g: StridedGeometry,
  weight: Tensor | null,
): Tensor {
  const grad = empty(x.shape, op);
  const runLength = elementsPerInvocation();
  const invocations = Math.ceil((g.outer * g.inner) / runLength);
  launch(FUSED_GRAD_SPEC, {
    label: `${op} input gradient`,
    uniforms: { ...g, has_weight: weight ? 1 : 0, run_length: runLength },
    buffers: [
      bind(op, x),
      bind(op, upstream),
      bind(op, stats),
      bindOptional(op, weight),
      bind(op, grad),
    ],
    workgroups: workgroupsFor(FUSED_GRAD_SPEC, invocations),
  });
  return grad;
}

/**
 * Weight and bias gradients ([channels] each) of a normalisation whose
 * affine index is the channel of the strided view and whose statistics
 * are the [outer * inner] vec4s of stridedNorm or rowStatistics.
 */
export function stridedAffineGrad(
  op: string,
  x: Tensor,
  upstream: Tensor,
  stats: Tensor,
  g: StridedGeometry,
): { weightGrad: Tensor; biasGrad: Tensor } {
  const pieceSize = Math.max(1, Math.floor(normOptions.affinePiece));
  const pieces = Math.ceil((g.outer * g.inner) / pieceSize);
  const weightPartials = empty([pieces, g.channels], op);
  const biasPartials = empty([pieces, g.channels], op);
  launch(AFFINE_GRAD_SPEC, {
    label: `${op} affine gradient`,
    uniforms: { ...g, pieces, piece_size: pieceSize },
    buffers: [
      bind(op, x),
      bind(op, upstream),
      bind(op, stats),
      bind(op, weightPartials),
      bind(op, biasPartials),
    ],
    workgroups: workgroupsFor(AFFINE_GRAD_SPEC, pieces * g.channels),
  });
  const label = `${op} affine gradient`;
  const weightGrad = runReduction(label, 'sum', weightPartials, [0], 1, [g.channels]);
  const biasGrad = runReduction(label, 'sum', biasPartials, [0], 1, [g.channels]);
  weightPartials.dispose();
  biasPartials.dispose();
  return { weightGrad, biasGrad };
}
