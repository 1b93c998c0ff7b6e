// Launcher of sgd.wgsl: one in-place SGD step on one parameter.

import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { placeholderBuffer } from './placeholder.js';
import type { Tensor } from '../tensor.js';

function sgdSpec(momentum: boolean, nesterov: boolean): KernelSpec {
  return {
    name: 'sgd',
    uniforms: [
      ['size', 'u32'],
      ['first_step', 'u32'],
      ['weight_decay', 'f32'],
      ['momentum', 'f32'],
      ['one_minus_dampening', 'f32'],
      ['lr_neg', 'f32'],
    ],
    bindings: [
      { name: 'param', access: 'read_write' },
      { name: 'grad', access: 'read' },
      { name: 'momentum_buffer', access: 'read_write' },
    ],
    constants: { MOMENTUM: String(momentum), NESTEROV: String(nesterov) },
  };
}

const SPECS = new Map<string, KernelSpec>();

function specFor(momentum: boolean, nesterov: boolean): KernelSpec {
  const key = `${momentum}|${nesterov}`;
  let spec = SPECS.get(key);
  if (!spec) {
    spec = sgdSpec(momentum, nesterov);
    SPECS.set(key, spec);
  }
  return spec;
}

export interface SgdStepScalars {
  lr: number;
  weightDecay: number;
  /** 0 for plain SGD; then momentumBuffer is null. */
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** True on the step that fills a new momentum buffer with the gradient. */
  firstStep: boolean;
}

/** @internal Records one SGD step; shapes must already match. */
export function sgdKernel(
  op: string,
  param: Tensor,
  grad: Tensor,
  momentumBuffer: Tensor | null,
  scalars: SgdStepScalars,
): void {
  const spec = specFor(momentumBuffer !== null, scalars.nesterov);
  const bytes = param.bytes;
  launch(spec, {
    label: op,
    uniforms: {
      size: param.size,
      first_step: scalars.firstStep ? 1 : 0,
      weight_decay: scalars.weightDecay,
      momentum: scalars.momentum,
      one_minus_dampening: 1 - scalars.dampening,
      lr_neg: -scalars.lr,
    },
    buffers: [
      { buffer: param.buffer(op), bytes },
      { buffer: grad.buffer(op), bytes },
      momentumBuffer
        ? { buffer: momentumBuffer.buffer(op), bytes }
        : placeholderBuffer(),
    ],
    workgroups: workgroupsFor(spec, param.size),
  });
}
