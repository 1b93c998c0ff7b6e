// Launchers of the two probe kernels behind the benchmark ceilings:
// peak-fma.wgsl (arithmetic) and copy.wgsl (streaming bandwidth).

import type { Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';

/** FMAs per round of one peak-fma invocation: 4 steps x 8 accumulators. */
export const PEAK_FMA_PER_ROUND = 32;

const PEAK_FMA_SPEC: KernelSpec = {
  name: 'peak-fma',
  uniforms: [
    ['iterations', 'u32'],
    ['invocations', 'u32'],
  ],
  bindings: [{ name: 'out', access: 'read_write', type: 'vec4<f32>' }],
  workgroupSize: 64,
};

const COPY_SPEC: KernelSpec = {
  name: 'copy',
  uniforms: [['size', 'u32']],
  bindings: [
    { name: 'x', access: 'read', type: 'vec4<f32>' },
    { name: 'out', access: 'read_write', type: 'vec4<f32>' },
  ],
  workgroupSize: 256,
};

/**
 * Records the peak-fma probe: one invocation per vec4 of `out`, each
 * running `iterations` rounds. Returns the FLOPs it performs.
 */
export function peakFmaKernel(out: Tensor, iterations: number): number {
  if (out.size % 4 !== 0) {
    throw new RangeError(`peakFma: out has ${out.size} elements, not a multiple of 4`);
  }
  const invocations = out.size / 4;
  launch(PEAK_FMA_SPEC, {
    label: 'peak-fma',
    uniforms: { iterations, invocations },
    buffers: [{ buffer: out.buffer('peakFma'), bytes: out.bytes }],
    workgroups: workgroupsFor(PEAK_FMA_SPEC, invocations),
  });
  return invocations * iterations * PEAK_FMA_PER_ROUND * 4 * 2;
}

/** Records the copy probe from x to out (same size, a multiple of 4). */
export function copyKernel(x: Tensor, out: Tensor): void {
  if (x.size !== out.size || x.size % 4 !== 0) {
    throw new RangeError(
      `copy: x has ${x.size} and out ${out.size} elements; both must be ` +
        'equal and a multiple of 4',
    );
  }
  const size = x.size / 4;
  launch(COPY_SPEC, {
    label: 'copy',
    uniforms: { size },
    buffers: [
      { buffer: x.buffer('copy'), bytes: x.bytes },
      { buffer: out.buffer('copy'), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(COPY_SPEC, size),
  });
}
