// Softmax and log-softmax along one axis, fused into one kernel each way.

import { record } from '../autograd/node.js';
import { checkOutput } from '../debug.js';
import { launch, workgroupsFor, type KernelSpec } from '../kernels/launch.js';
import { outputsPerInvocation } from '../kernels/runs.js';
import { empty, type Tensor } from '../tensor.js';
import { resolveAxis } from './axes.js';

const UNIFORMS: KernelSpec['uniforms'] = [
  ['size', 'u32'],
  ['axis_size', 'u32'],
  ['inner', 'u32'],
  ['per_invocation', 'u32'],
];

type Element = 'f32' | 'vec4<f32>';

function spec(
  name: 'softmax' | 'softmax_grad',
  log: boolean,
  type: Element,
): KernelSpec {
  const bindings: KernelSpec['bindings'] =
    name === 'softmax'
      ? [
          { name: 'x', access: 'read', type },
          { name: 'out', access: 'read_write', type },
        ]
      : [
          { name: 'y', access: 'read', type },
          { name: 'g', access: 'read', type },
          { name: 'dx', access: 'read_write', type },
        ];
  const constants = { LOG: String(log), T: type };
  return { name, uniforms: UNIFORMS, bindings, constants };
}

/** Builds the kernels of one element type. A vec4<f32> element is 4 positions along inner. */
function specs(type: Element) {
  return {
    softmax: spec('softmax', false, type),
    logSoftmax: spec('softmax', true, type),
    softmaxGrad: spec('softmax_grad', false, type),
    logSoftmaxGrad: spec('softmax_grad', true, type),
  };
}

const SPECS = { f32: specs('f32'), vec4: specs('vec4<f32>') };
type SpecName = keyof (typeof SPECS)['f32'];

/** [outer, axis length, inner] around `axis`. */
function aroundAxis(
  shape: readonly number[],
  axis: number,
): [number, number, number] {
  const outer = shape.slice(0, axis).reduce((n, d) => n * d, 1);
  const inner = shape.slice(axis + 1).reduce((n, d) => n * d, 1);
  return [outer, shape[axis], inner];
}

function runSoftmax(
  op: string,
  name: SpecName,
  inputs: readonly Tensor[],
  shape: readonly number[],
  axis: number,
): Tensor {
  const [outer, axisSize, fullInner] = aroundAxis(shape, axis);
  const out = empty(shape, op);
  if (out.size === 0) return out;
  // Every row along inner starts at a multiple of inner, so with inner a
  // multiple of 4 each group of 4 positions is one aligned vec4.
  const vectorized = fullInner % 4 === 0;
  const kernel = vectorized ? SPECS.vec4[name] : SPECS.f32[name];
  const inner = vectorized ? fullInner / 4 : fullInner;
  const positions = outer * inner;
  const perInvocation = outputsPerInvocation(axisSize);
  launch(kernel, {
    label: op,
    uniforms: {
      size: positions,
      axis_size: axisSize,
      inner,
      per_invocation: perInvocation,
    },
    buffers: [...inputs, out].map((t) => ({
      buffer: t.buffer(op),
      bytes: t.bytes,
    })),
    workgroups: workgroupsFor(kernel, Math.ceil(positions / perInvocation)),
  });
  return out;
}

/**
 * Computes exp(x) / sum(exp(x)) along `axis` (negative counts from the
 * end), with the maximum subtracted first so large inputs do not overflow.
 * One invocation handles one position of the other axes and loops over
 * `axis`, which suits a class axis of [N, C, D, H, W] scores with few
 * classes and many voxels.
 * NOTE: a single very long axis (say 1e6 elements with few other
 * positions) runs on few invocations and is slow.
 */
export function softmax(x: Tensor, axis: number): Tensor {
  const a = resolveAxis('softmax', x.shape, axis);
  const out = runSoftmax('softmax', 'softmax', [x], x.shape, a);
  checkOutput('softmax', out, [x]);
  return record('softmax', out, [x], [out], (g, [y]) => [
    runSoftmax('softmax', 'softmaxGrad', [y, g], x.shape, a),
  ]);
}

/** Computes x - log(sum(exp(x))) along `axis`, stably. See softmax(). */
export function logSoftmax(x: Tensor, axis: number): Tensor {
  const a = resolveAxis('logSoftmax', x.shape, axis);
  const out = runSoftmax('logSoftmax', 'logSoftmax', [x], x.shape, a);
  checkOutput('logSoftmax', out, [x]);
  return record('logSoftmax', out, [x], [out], (g, [y]) => [
    runSoftmax('logSoftmax', 'logSoftmaxGrad', [y, g], x.shape, a),
  ]);
}
