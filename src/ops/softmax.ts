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

function spec(name: 'softmax' | 'softmax_grad', log: boolean): KernelSpec {
  const bindings: KernelSpec['bindings'] =
    name === 'softmax'
      ? [
          { name: 'x', access: 'read' },
          { name: 'out', access: 'read_write' },
        ]
      : [
          { name: 'y', access: 'read' },
          { name: 'g', access: 'read' },
          { name: 'dx', access: 'read_write' },
        ];
  const constants = { LOG: String(log) };
  return { name, uniforms: UNIFORMS, bindings, constants };
}

const SPECS = {
  softmax: spec('softmax', false),
  logSoftmax: spec('softmax', true),
  softmaxGrad: spec('softmax_grad', false),
  logSoftmaxGrad: spec('softmax_grad', true),
};

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
  kernel: KernelSpec,
  inputs: readonly Tensor[],
  shape: readonly number[],
  axis: number,
): Tensor {
  const [outer, axisSize, inner] = aroundAxis(shape, axis);
  const out = empty(shape, op);
  if (out.size === 0) return out;
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
  const out = runSoftmax('softmax', SPECS.softmax, [x], x.shape, a);
  checkOutput('softmax', out, [x]);
  return record('softmax', out, [x], [out], (g, [y]) => [
    runSoftmax('softmax', SPECS.softmaxGrad, [y, g], x.shape, a),
  ]);
}

/** Computes x - log(sum(exp(x))) along `axis`, stably. See softmax(). */
export function logSoftmax(x: Tensor, axis: number): Tensor {
  const a = resolveAxis('logSoftmax', x.shape, axis);
  const out = runSoftmax('logSoftmax', SPECS.logSoftmax, [x], x.shape, a);
  checkOutput('logSoftmax', out, [x]);
  return record('logSoftmax', out, [x], [out], (g, [y]) => [
    runSoftmax('logSoftmax', SPECS.logSoftmaxGrad, [y, g], x.shape, a),
  ]);
}
