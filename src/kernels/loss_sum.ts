// Launcher of loss_sum.wgsl: deterministic tree sums of the vec4 partial
// sums that the loss kernels write, down to one vec4 per row or to a scalar.

import { empty, type Tensor } from '../tensor.js';
import { launch, type KernelSpec } from './launch.js';
import { placeholderBuffer } from './placeholder.js';

/** Invocations per workgroup; the tree in workgroup memory needs a power of two. */
const WORKGROUP_SIZE = 256;

/** Elements one workgroup sums per pass. */
const BLOCK = 4 * WORKGROUP_SIZE;

const SPEC: KernelSpec = {
  name: 'loss_sum',
  uniforms: [
    ['rows', 'u32'],
    ['count', 'u32'],
    ['blocks', 'u32'],
    ['scalar_output', 'u32'],
    ['weights', 'vec4f*1'],
  ],
  bindings: [
    { name: 'x', access: 'read', type: 'vec4<f32>' },
    { name: 'partials', access: 'read_write', type: 'vec4<f32>' },
    { name: 'scalars', access: 'read_write' },
  ],
  workgroupSize: WORKGROUP_SIZE,
};

function sumPass(
  op: string,
  x: Tensor,
  rows: number,
  count: number,
  weights: readonly number[] | null,
): Tensor {
  const blocks = Math.ceil(count / BLOCK);
  const out = weights ? empty([rows, blocks], op) : empty([rows, blocks, 4], op);
  const unused = placeholderBuffer();
  const target = { buffer: out.buffer(op), bytes: out.bytes };
  launch(SPEC, {
    label: `${op} sum`,
    uniforms: {
      rows,
      count,
      blocks,
      scalar_output: weights ? 1 : 0,
      weights: weights ?? [0, 0, 0, 0],
    },
    buffers: [
      { buffer: x.buffer(op), bytes: x.bytes },
      weights ? unused : target,
      weights ? target : unused,
    ],
    workgroups: rows * blocks,
  });
  return out;
}

/**
 * Sums each row of `x`, a [rows, count, 4] tensor of vec4 partial sums, to
 * a [rows, 4] tensor. Reads `x` and does not dispose it.
 */
export function sumRowsVec4(op: string, x: Tensor, rows: number, count: number): Tensor {
  let current = x;
  let length = count;
  do {
    const next = sumPass(op, current, rows, length, null);
    if (current !== x) current.dispose();
    current = next;
    length = Math.ceil(length / BLOCK);
  } while (length > 1);
  return current;
}

/**
 * Sums the [count, 4] vec4 partials `x` and returns dot(total, weights) as
 * a tensor of shape [] (a scalar). Reads `x` and does not dispose it.
 */
export function sumToScalar(
  op: string,
  x: Tensor,
  count: number,
  weights: readonly [number, number, number, number],
): Tensor {
  let current = x;
  let length = count;
  while (length > BLOCK) {
    const next = sumPass(op, current, 1, length, null);
    if (current !== x) current.dispose();
    current = next;
    length = Math.ceil(length / BLOCK);
  }
  const scalar = sumPass(op, current, 1, length, weights);
  if (current !== x) current.dispose();
  const out = scalar.share([]);
  scalar.dispose();
  return out;
}
