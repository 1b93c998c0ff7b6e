// Launchers of affine_flow.wgsl (the flow of a 3x4 voxel affine) and
// affine_flow_grad.wgsl (partial sums of its gradient to the matrix).

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { elementsPerInvocation } from './runs.js';

/**
 * Voxels each invocation of the gradient kernel sums. Larger parts leave
 * fewer partials to reduce afterwards, but each float32 sum runs longer
 * and rounds more.
 */
const VOXELS_PER_PART = 256;

const FORWARD_SPECS = new Map<number, KernelSpec>();

function forwardSpec(run: number): KernelSpec {
  let spec = FORWARD_SPECS.get(run);
  if (!spec) {
    spec = {
      name: 'affine_flow',
      uniforms: [
        ['total', 'u32'],
        ['depth', 'u32'],
        ['height', 'u32'],
        ['width', 'u32'],
        ['runs', 'u32'],
      ],
      bindings: [
        { name: 'matrix', access: 'read' },
        { name: 'flow', access: 'read_write' },
      ],
      constants: { RUN: run },
    };
    FORWARD_SPECS.set(run, spec);
  }
  return spec;
}

const GRAD_SPEC: KernelSpec = {
  name: 'affine_flow_grad',
  uniforms: [
    ['total', 'u32'],
    ['parts', 'u32'],
    ['voxels', 'u32'],
    ['height', 'u32'],
    ['width', 'u32'],
  ],
  bindings: [
    { name: 'upstream', access: 'read' },
    { name: 'partials', access: 'read_write', type: 'vec4<f32>' },
  ],
};

/**
 * @internal Returns the flow [N, 3, D, H, W] of `matrix` (12 N values,
 * [N, 3, 4] row-major); shapes are checked by the caller.
 */
export function affineFlowForward(
  op: string,
  matrix: Tensor,
  batch: number,
  spatial: readonly [number, number, number],
): Tensor {
  const [d, h, w] = spatial;
  const run = Math.min(elementsPerInvocation(), w);
  const spec = forwardSpec(run);
  const runs = Math.ceil(w / run);
  const total = batch * d * h * runs;
  const flow = empty([batch, 3, d, h, w], op);
  launch(spec, {
    label: op,
    uniforms: { total, depth: d, height: h, width: w, runs },
    buffers: [
      { buffer: matrix.buffer(op), bytes: matrix.bytes },
      { buffer: flow.buffer(op), bytes: flow.bytes },
    ],
    workgroups: workgroupsFor(spec, total),
  });
  return flow;
}

/**
 * @internal Returns the partial sums [N, parts, 3, 4] of the matrix
 * gradient from the upstream gradient [N, 3, D, H, W]; summing over axis
 * 1 gives the gradient [N, 3, 4].
 */
export function affineFlowGradPartials(op: string, upstream: Tensor): Tensor {
  const [n, , d, h, w] = upstream.shape;
  const voxels = d * h * w;
  const parts = Math.max(1, Math.ceil(voxels / VOXELS_PER_PART));
  const total = n * parts;
  const partials = empty([n, parts, 3, 4], op);
  launch(GRAD_SPEC, {
    label: `${op} gradient`,
    uniforms: { total, parts, voxels, height: h, width: w },
    buffers: [
      { buffer: upstream.buffer(op), bytes: upstream.bytes },
      { buffer: partials.buffer(op), bytes: partials.bytes },
    ],
    workgroups: workgroupsFor(GRAD_SPEC, total),
  });
  return partials;
}
