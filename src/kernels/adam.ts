// Launcher of adam.wgsl: one in-place Adam or AdamW step on one parameter.

import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { placeholderBuffer } from './placeholder.js';
import type { Tensor } from '../tensor.js';

function adamSpec(amsgrad: boolean): KernelSpec {
  return {
    name: 'adam',
    uniforms: [
      ['size', 'u32'],
      ['beta1', 'f32'],
      ['one_minus_beta1', 'f32'],
      ['beta2', 'f32'],
      ['one_minus_beta2', 'f32'],
      ['weight_decay', 'f32'],
      ['decay_factor', 'f32'],
      ['step_size_neg', 'f32'],
      ['bias_correction2_sqrt', 'f32'],
      ['eps', 'f32'],
    ],
    bindings: [
      { name: 'param', access: 'read_write' },
      { name: 'grad', access: 'read' },
      { name: 'exp_avg', access: 'read_write' },
      { name: 'exp_avg_sq', access: 'read_write' },
      { name: 'max_exp_avg_sq', access: 'read_write' },
    ],
    constants: { AMSGRAD: String(amsgrad) },
  };
}

const SPECS = { plain: adamSpec(false), amsgrad: adamSpec(true) };

/** Scalars of one Adam step, in float64; the kernel rounds them to f32. */
export interface AdamStepScalars {
  beta1: number;
  beta2: number;
  /** L2 weight decay added to the gradient (Adam); 0 for AdamW. */
  weightDecay: number;
  /** Factor the parameter is multiplied by first (AdamW); 1 for Adam. */
  decayFactor: number;
  /** -lr / (1 - beta1^step). */
  stepSizeNeg: number;
  /** sqrt(1 - beta2^step). */
  biasCorrection2Sqrt: number;
  eps: number;
}

export interface AdamStepTensors {
  param: Tensor;
  grad: Tensor;
  expAvg: Tensor;
  expAvgSq: Tensor;
  /** Running maximum of expAvgSq; null unless amsgrad. */
  maxExpAvgSq: Tensor | null;
}

/** @internal Records one Adam step; shapes must already match. */
export function adamKernel(
  op: string,
  tensors: AdamStepTensors,
  scalars: AdamStepScalars,
): void {
  const { param, grad, expAvg, expAvgSq, maxExpAvgSq } = tensors;
  const spec = maxExpAvgSq ? SPECS.amsgrad : SPECS.plain;
  const bytes = param.bytes;
  launch(spec, {
    label: op,
    uniforms: {
      size: param.size,
      beta1: scalars.beta1,
      one_minus_beta1: 1 - scalars.beta1,
      beta2: scalars.beta2,
      one_minus_beta2: 1 - scalars.beta2,
      weight_decay: scalars.weightDecay,
      decay_factor: scalars.decayFactor,
      step_size_neg: scalars.stepSizeNeg,
      bias_correction2_sqrt: scalars.biasCorrection2Sqrt,
      eps: scalars.eps,
    },
    buffers: [
      { buffer: param.buffer(op), bytes },
      { buffer: grad.buffer(op), bytes },
      { buffer: expAvg.buffer(op), bytes },
      { buffer: expAvgSq.buffer(op), bytes },
      maxExpAvgSq
        ? { buffer: maxExpAvgSq.buffer(op), bytes }
        : placeholderBuffer(),
    ],
    workgroups: workgroupsFor(spec, param.size),
  });
}
