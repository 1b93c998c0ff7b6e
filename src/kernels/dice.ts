// Launchers of the soft Dice kernels: dice_sums, then loss_sum's tree and
// dice_finish forward; dice_grad backward. Each (sample, class) row of
// D * H * W voxels is read in quads of 4 voxels (see quad_io.ts). Tensors
// larger than one storage binding (16 classes of 128^3 already are) run in
// groups of rows (see row_groups.ts).

import { empty, type Tensor } from '../tensor.js';
import { launch, workgroupsFor, type KernelSpec } from './launch.js';
import { sumRowsVec4 } from './loss_sum.js';
import { quadLoader, quadStorer, volumeType } from './quad_io.js';
import { copyValues, rowGroups, type RowGroup } from './row_groups.js';

/** Quads (4 voxels) per invocation of dice_sums. */
export const DICE_CHUNK = 16;

const specs = new Map<string, KernelSpec>();

function sumsSpec(aligned: boolean): KernelSpec {
  const key = `sums ${aligned}`;
  let spec = specs.get(key);
  if (!spec) {
    spec = {
      name: 'dice_sums',
      uniforms: [
        ['total', 'u32'],
        ['width', 'u32'],
        ['quads', 'u32'],
        ['chunks', 'u32'],
      ],
      bindings: [
        { name: 'probs', access: 'read', type: volumeType(aligned) },
        { name: 'truth', access: 'read', type: volumeType(aligned) },
        { name: 'partials', access: 'read_write', type: 'vec4<f32>' },
      ],
      constants: {
        CHUNK: DICE_CHUNK,
        LOAD_INPUTS: [
          quadLoader('load_probs', 'probs', aligned),
          quadLoader('load_truth', 'truth', aligned),
        ].join('\n\n'),
      },
    };
    specs.set(key, spec);
  }
  return spec;
}

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

function gradSpec(aligned: boolean): KernelSpec {
  const key = `grad ${aligned}`;
  let spec = specs.get(key);
  if (!spec) {
    spec = {
      name: 'dice_grad',
      uniforms: [
        ['total', 'u32'],
        ['first_row', 'u32'],
        ['width', 'u32'],
        ['quads', 'u32'],
        ['scale', 'f32'],
      ],
      bindings: [
        { name: 'other', access: 'read', type: volumeType(aligned) },
        { name: 'coefficients', access: 'read', type: 'vec4<f32>' },
        { name: 'upstream', access: 'read' },
        { name: 'grad', access: 'read_write', type: volumeType(aligned) },
      ],
      constants: {
        QUAD_IO: [
          quadLoader('load_other', 'other', aligned),
          quadStorer('store_grad', 'grad', aligned),
        ].join('\n\n'),
      },
    };
    specs.set(key, spec);
  }
  return spec;
}

function binding(t: Tensor, op: string) {
  return { buffer: t.buffer(op), bytes: t.bytes };
}

export interface DiceForward {
  /** The loss, shape []. */
  loss: Tensor;
  /** [N * K, 4]: alpha, beta, dice, 0 per (sample, class) row. */
  coefficients: Tensor;
}

/**
 * Returns rows `group` of a [rows, width] tensor: the tensor itself when the group
 * is all of it, else a copy (the caller disposes it).
 */
function groupRows(op: string, t: Tensor, group: RowGroup, rows: number, width: number): Tensor {
  if (group.count === rows) return t;
  const part = empty([group.count, width], op);
  copyValues(op, t, group.first * width, part, 0, group.count * width);
  return part;
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
  const width = probs.size / rows;
  const quads = Math.ceil(width / 4);
  const chunks = Math.ceil(quads / DICE_CHUNK);
  const partials = empty([rows, chunks, 4], op);
  const spec = sumsSpec(width % 4 === 0);
  for (const group of rowGroups(op, probs.shape, rows, width * 4)) {
    const p = groupRows(op, probs, group, rows, width);
    const t = groupRows(op, target, group, rows, width);
    const groupPartials = group.count === rows ? partials : empty([group.count, chunks, 4], op);
    launch(spec, {
      label: `${op} sums`,
      uniforms: { total: group.count * chunks, width, quads, chunks },
      buffers: [binding(p, op), binding(t, op), binding(groupPartials, op)],
      workgroups: workgroupsFor(spec, group.count * chunks),
    });
    if (groupPartials !== partials) {
      copyValues(op, groupPartials, 0, partials, group.first * chunks * 4, group.count * chunks * 4);
      for (const temporary of [p, t, groupPartials]) temporary.dispose();
    }
  }
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

/**
 * Computes the gradients of the loss with respect to `probs` and `target`,
 * each only where its flag in `needed` is true (null otherwise). Each
 * gradient is one dice_grad pass that reads the other input.
 */
export function diceBackwardKernel(
  op: string,
  probs: Tensor,
  target: Tensor,
  coefficients: Tensor,
  upstream: Tensor,
  firstClass: number,
  needed: { probs: boolean; target: boolean } = { probs: true, target: true },
): [Tensor | null, Tensor | null] {
  const gradProbs = needed.probs
    ? diceGradient(op, target, coefficients, upstream, firstClass)
    : null;
  const gradTarget = needed.target
    ? diceGradient(op, probs, coefficients, upstream, firstClass)
    : null;
  return [gradProbs, gradTarget];
}

/** Runs dice_grad: the gradient with respect to the input paired with `other`. */
function diceGradient(
  op: string,
  other: Tensor,
  coefficients: Tensor,
  upstream: Tensor,
  firstClass: number,
): Tensor {
  const [n, k] = other.shape;
  const rows = n * k;
  const width = other.size / rows;
  const quads = Math.ceil(width / 4);
  const grad = empty(other.shape, op);
  const spec = gradSpec(width % 4 === 0);
  for (const group of rowGroups(op, other.shape, rows, width * 4)) {
    const whole = group.count === rows;
    const part = groupRows(op, other, group, rows, width);
    const partGrad = whole ? grad : empty([group.count, width], op);
    launch(spec, {
      label: `${op} gradient`,
      uniforms: {
        total: group.count * quads,
        first_row: group.first,
        width,
        quads,
        scale: -1 / (n * (k - firstClass)),
      },
      buffers: [
        binding(part, op),
        binding(coefficients, op),
        binding(upstream, op),
        binding(partGrad, op),
      ],
      workgroups: workgroupsFor(spec, group.count * quads),
    });
    if (!whole) {
      copyValues(op, partGrad, 0, grad, group.first * width, group.count * width);
      part.dispose();
      partGrad.dispose();
    }
  }
  return grad;
}
