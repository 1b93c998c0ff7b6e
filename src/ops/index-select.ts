// indexSelect picks entries along one axis by index, like
// torch.index_select.

import { record } from '../autograd/node.js';
import { checkOutput } from '../debug.js';
import { launch, type KernelSpec } from '../kernels/launch.js';
import { runLaunch } from '../kernels/runs.js';
import { empty, formatShape, tensor, Tensor } from '../tensor.js';
import { resolveAxis } from './axes.js';

const UNIFORMS: KernelSpec['uniforms'] = [
  ['size', 'u32'],
  ['axis_size', 'u32'],
  ['count', 'u32'],
  ['inner', 'u32'],
];

const SELECT_SPEC: KernelSpec = {
  name: 'index_select',
  uniforms: [...UNIFORMS, ['invalid', 'f32']],
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'indices', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
};

const GRAD_SPEC: KernelSpec = {
  name: 'index_select_grad',
  uniforms: UNIFORMS,
  bindings: [
    { name: 'g', access: 'read' },
    { name: 'indices', access: 'read' },
    { name: 'dx', access: 'read_write' },
  ],
};

/** Converts indices to a float tensor; checks host arrays against the axis. */
function indexTensor(
  x: Tensor,
  axis: number,
  indices: Tensor | ArrayLike<number>,
): Tensor {
  const axisSize = x.shape[axis];
  if (indices instanceof Tensor) {
    if (indices.rank !== 1) {
      throw new RangeError(
        'indexSelect: indices must be a 1-D tensor, got shape ' +
          formatShape(indices.shape),
      );
    }
    return indices.share();
  }
  const values = Array.from(indices);
  values.forEach((index, position) => {
    if (!Number.isInteger(index) || index < 0 || index >= axisSize) {
      throw new RangeError(
        `indexSelect: index ${index} at position ${position} is out of range ` +
          `for axis ${axis} of shape ${formatShape(x.shape)} ` +
          `(size ${axisSize})`,
      );
    }
  });
  return tensor(values, [values.length]);
}

function bindingsOf(tensors: readonly Tensor[]) {
  return tensors.map((t) => ({
    buffer: t.buffer('indexSelect'),
    bytes: t.bytes,
  }));
}

function geometry(shape: readonly number[], axis: number, count: number) {
  const outer = shape.slice(0, axis).reduce((n, d) => n * d, 1);
  const inner = shape.slice(axis + 1).reduce((n, d) => n * d, 1);
  return { outer, inner, axisSize: shape[axis], count };
}

/**
 * Picks the entries of `x` at `indices` along `axis`: out[..., j, ...] =
 * x[..., indices[j], ...], as torch.index_select. `indices` is an array of
 * integers (checked on the host) or a 1-D tensor of whole numbers stored as
 * floats. The gradient adds each output slice back at its index, so
 * repeated indices accumulate. The backward kernel scans every index for
 * each gradient element, so it costs (number of indices) reads per element.
 * NOTE: indices in a tensor are read on the device, so they cannot be
 * checked before the kernel runs. An index that is negative, fractional or
 * past the axis yields NaN in the output rather than an error.
 */
export function indexSelect(
  x: Tensor,
  axis: number,
  indices: Tensor | ArrayLike<number>,
): Tensor {
  const a = resolveAxis('indexSelect', x.shape, axis);
  if (x.shape[a] > 2 ** 24) {
    throw new RangeError(
      `indexSelect: axis ${axis} of shape ${formatShape(x.shape)} is longer ` +
        'than 2^24, past which float32 indices are not exact',
    );
  }
  const index = indexTensor(x, a, indices);
  const shape = [...x.shape];
  shape[a] = index.size;
  const { inner, axisSize, count } = geometry(x.shape, a, index.size);
  const out = empty(shape, 'indexSelect');
  const select = runLaunch(SELECT_SPEC, out.size);
  launch(select.spec, {
    label: 'indexSelect',
    uniforms: {
      size: out.size,
      axis_size: axisSize,
      count,
      inner,
      invalid: NaN,
    },
    buffers: bindingsOf([x, index, out]),
    workgroups: select.workgroups,
  });
  checkOutput('indexSelect', out, [x, index]);
  const recorded = record('indexSelect', out, [x], [index], (g, [saved]) => {
    const dx = empty(x.shape, 'indexSelect');
    const grad = runLaunch(GRAD_SPEC, dx.size);
    launch(grad.spec, {
      label: 'indexSelect',
      uniforms: { size: dx.size, axis_size: axisSize, count, inner },
      buffers: bindingsOf([g, saved, dx]),
      workgroups: grad.workgroups,
    });
    return [dx];
  });
  index.dispose();
  return recorded;
}
