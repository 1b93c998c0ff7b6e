// Launcher of argreduce.wgsl: argmax and argmin along one axis, split into
// passes like the other reductions so a long axis spreads over many
// invocations.

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { reduceOptions } from './reduce.js';
import { outputsPerInvocation } from './runs.js';

const specs = new Map<string, KernelSpec>();

function argSpec(kind: 'argmax' | 'argmin'): KernelSpec {
  let spec = specs.get(kind);
  if (!spec) {
    spec = {
      name: 'argreduce',
      uniforms: [
        ['size', 'u32'],
        ['axis_size', 'u32'],
        ['inner', 'u32'],
        ['chunks', 'u32'],
        ['chunk_size', 'u32'],
        ['has_indices', 'u32'],
        ['per_invocation', 'u32'],
      ],
      bindings: [
        { name: 'x', access: 'read' },
        { name: 'indices_in', access: 'read' },
        { name: 'values', access: 'read_write' },
        { name: 'indices', access: 'read_write' },
      ],
      constants: { BETTER: kind === 'argmax' ? 'v > best' : 'v < best' },
    };
    specs.set(kind, spec);
  }
  return spec;
}

/**
 * @internal Finds the indices (as floats) of the maximum or minimum of `x`,
 * read as [outer, axisSize, inner], along the middle axis. The result has
 * `shape` (outer * inner elements). `axisSize` must be at least 1.
 */
export function argReduceKernel(
  op: string,
  kind: 'argmax' | 'argmin',
  x: Tensor,
  outer: number,
  axisSize: number,
  inner: number,
  shape: readonly number[],
): Tensor {
  const spec = argSpec(kind);
  let values = x;
  let indices: Tensor | null = null;
  let size = axisSize;
  for (;;) {
    const chunkSize =
      size <= reduceOptions.singlePassLimit ? size : reduceOptions.chunkSize;
    const chunks = Math.ceil(size / chunkSize);
    const last = chunks === 1;
    const nextValues = empty([outer, chunks, inner], op);
    const nextIndices = empty(last ? shape : [outer, chunks, inner], op);
    const indexSource = indices ?? values;
    const perInvocation = outputsPerInvocation(chunkSize);
    const outputs = outer * chunks * inner;
    launch(spec, {
      label: op,
      uniforms: {
        size: outputs,
        axis_size: size,
        inner,
        chunks,
        chunk_size: chunkSize,
        has_indices: indices ? 1 : 0,
        per_invocation: perInvocation,
      },
      buffers: [
        { buffer: values.buffer(op), bytes: outer * size * inner * 4 },
        { buffer: indexSource.buffer(op), bytes: indexSource.bytes },
        { buffer: nextValues.buffer(op), bytes: nextValues.bytes },
        { buffer: nextIndices.buffer(op), bytes: nextIndices.bytes },
      ],
      workgroups: workgroupsFor(spec, Math.ceil(outputs / perInvocation)),
    });
    if (values !== x) values.dispose();
    indices?.dispose();
    values = nextValues;
    indices = nextIndices;
    size = chunks;
    if (last) {
      values.dispose();
      return indices;
    }
  }
}
