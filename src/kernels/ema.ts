// Launcher of ema.wgsl: average = alpha * average + (1 - alpha) * source.

import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import type { Tensor } from '../tensor.js';

const EMA_SPEC: KernelSpec = {
  name: 'ema',
  uniforms: [
    ['size', 'u32'],
    ['alpha', 'f32'],
    ['one_minus_alpha', 'f32'],
  ],
  bindings: [
    { name: 'average', access: 'read_write' },
    { name: 'source', access: 'read' },
  ],
};

/** @internal Records one in-place EMA update; shapes must already match. */
export function emaKernel(
  op: string,
  average: Tensor,
  source: Tensor,
  alpha: number,
): void {
  launch(EMA_SPEC, {
    label: op,
    uniforms: { size: average.size, alpha, one_minus_alpha: 1 - alpha },
    buffers: [
      { buffer: average.buffer(op), bytes: average.bytes },
      { buffer: source.buffer(op), bytes: source.bytes },
    ],
    workgroups: workgroupsFor(EMA_SPEC, average.size),
  });
}
