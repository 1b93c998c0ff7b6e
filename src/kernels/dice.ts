// Launchers of the soft Dice kernels: dice_sums, then loss_sum's tree and
// dice_finish forward; dice_grad backward.

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { sumRowsVec4 } from './loss_sum.js';

/** Voxels per invocation of dice_sums. */
export const DICE_CHUNK = 64;

const SUMS_SPEC: KernelSpec = {
  name: 'dice_sums',
  uniforms: [
    ['total', 'u32'],
    ['voxels', 'u32'],
    ['chunks', 'u32'],
  ],
  bindings: [
    { name: 'probs', access: 'read' },
    { name: 'truth', access: 'read' },
    { name: 'partials', access: 'read_write', type: 'vec4<f32>' },
  ],
  constants: { CHUNK: DICE_CHUNK },
};

const FINISH_SPEC: KernelSpec = {
  name: 'dice_finish',
  uniforms: [
    ['rows', 'u32'],
    ['classes', 'u32'],
    ['first_class', 'u32'],
    ['epsilon', 'f32'],
    ['inv_count', 'f32'],
  ],
  bindings: [
    { name: 'sums', access: 'read', type: 'vec4<f32>' },
    { name: 'loss', access: 'read_write' },
    { name: 'coefficients', access: 'read_write', type: 'vec4<f32>' },
  ],
  workgroupSize: 1,
};

const GRAD_SPEC: KernelSpec = {
  name: 'dice_grad',
  uniforms: [
    ['size', 'u32'],
    ['voxels', 'u32'],
    ['scale', 'f32'],
  ],
  bindings: [
    { name: 'probs', access: 'read' },
    { name: 'truth', access: 'read' },
    { name: 'coefficients', access: 'read', type: 'vec4<f32>' },
    { name: 'upstream', access: 'read' },
    { name: 'grad_probs', access: 'read_write' },
    { name: 'grad_truth', access: 'read_write' },
  ],
};

function binding(t: Tensor, op: string) {
  return { buffer: t.buffer(op), bytes: t.bytes };
}

export interface DiceForward {
  /** The loss, shape []. */
  loss: Tensor;
  /** [N * K, 4]: alpha, beta, dice, 0 per (sample, class) row. */
  coefficients: Tensor;
}

/** Runs the forward kernels on same-shaped [N, K, ...spatial] tensors. */
export function diceForwardKernels(
  op: string,
  probs: Tensor,
  target: Tensor,
  firstClass: number,
  epsilon: number,
): DiceForward {
  const [n, k] = probs.shape;
  const rows = n * k;
  const voxels = probs.size / rows;
  const chunks = Math.ceil(voxels / DICE_CHUNK);
  const partials = empty([rows, chunks, 4], op);
  launch(SUMS_SPEC, {
    label: `${op} sums`,
    uniforms: { total: rows * chunks, voxels, chunks },
    buffers: [binding(probs, op), binding(target, op), binding(partials, op)],
    workgroups: workgroupsFor(SUMS_SPEC, rows * chunks),
  });
  const sums = sumRowsVec4(op, partials, rows, chunks);
  partials.dispose();

  const loss = empty([], op);
  const coefficients = empty([rows, 4], op);
  launch(FINISH_SPEC, {
    label: `${op} finish`,
    uniforms: {
      rows,
      classes: k,
      first_class: firstClass,
      epsilon,
      inv_count: 1 / (n * (k - firstClass)),
    },
    buffers: [binding(sums, op), binding(loss, op), binding(coefficients, op)],
    workgroups: 1,
  });
  sums.dispose();
  return { loss, coefficients };
}

/** Gradients of the loss with respect to `probs` and `target`. */
export function diceBackwardKernel(
  op: string,
  probs: Tensor,
  target: Tensor,
  coefficients: Tensor,
  upstream: Tensor,
  firstClass: number,
): [Tensor, Tensor] {
  const [n, k] = probs.shape;
  const gradProbs = empty(probs.shape, op);
  const gradTarget = empty(target.shape, op);
  launch(GRAD_SPEC, {
    label: `${op} gradient`,
    uniforms: {
      size: probs.size,
      voxels: probs.size / (n * k),
      scale: -1 / (n * (k - firstClass)),
    },
    buffers: [
      binding(probs, op),
      binding(target, op),
      binding(coefficients, op),
      binding(upstream, op),
      binding(gradProbs, op),
      binding(gradTarget, op),
    ],
    workgroups: workgroupsFor(GRAD_SPEC, probs.size),
  });
  return [gradProbs, gradTarget];
}
