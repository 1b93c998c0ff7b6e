// Launchers of the binary, unary and where kernels, without autograd. The
// ops in elementwise.ts, unary.ts and activation.ts and the backward rules
// call these; every output they make gets the debug NaN and Inf check.

import { checkOutput } from '../debug.js';
import { launch, workgroupsFor, type KernelSpec } from '../kernels/launch.js';
import { runLaunch } from '../kernels/runs.js';
import { WGSL_SOURCES } from '../kernels/wgsl.generated.js';
import { empty, shapeSize, tensor, Tensor } from '../tensor.js';
import {
  broadcastShapes,
  broadcastStrides,
  checkRank,
  sameShape,
} from './shape.js';

/** A tensor, or a number that acts as a one-element tensor of shape []. */
export type Operand = Tensor | number;

function mathLibrary(): string {
  const source = WGSL_SOURCES['elementwise-math'];
  if (source === undefined) {
    throw new Error(
      'elementwise: no kernel source src/kernels/elementwise-math.wgsl was ' +
        'embedded. Run `npm run kernels`.',
    );
  }
  return source;
}

function binarySpec(expr: string): KernelSpec {
  return {
    name: 'binary',
    uniforms: [
      ['size', 'u32'],
      ['rank', 'u32'],
      ['alpha', 'f32'],
      ['beta', 'f32'],
      ['shape', 'vec4u*2'],
      ['a_strides', 'vec4u*2'],
      ['b_strides', 'vec4u*2'],
    ],
    bindings: [
      { name: 'a', access: 'read' },
      { name: 'b', access: 'read' },
      { name: 'out', access: 'read_write' },
    ],
    constants: { EXPR: expr, MATH: mathLibrary() },
  };
}

function unarySpec(expr: string): KernelSpec {
  return {
    name: 'unary',
    uniforms: [
      ['size', 'u32'],
      ['alpha', 'f32'],
      ['beta', 'f32'],
    ],
    bindings: [
      { name: 'x', access: 'read' },
      { name: 'out', access: 'read_write' },
    ],
    constants: { EXPR: expr, MATH: mathLibrary() },
  };
}

const WHERE_SPEC: KernelSpec = {
  name: 'where',
  uniforms: [
    ['size', 'u32'],
    ['rank', 'u32'],
    ['shape', 'vec4u*2'],
    ['cond_strides', 'vec4u*2'],
    ['a_strides', 'vec4u*2'],
    ['b_strides', 'vec4u*2'],
  ],
  bindings: [
    { name: 'cond', access: 'read' },
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
};

const binarySpecs = new Map<string, KernelSpec>();
const unarySpecs = new Map<string, KernelSpec>();

function cachedSpec(
  cache: Map<string, KernelSpec>,
  expr: string,
  make: (expr: string) => KernelSpec,
): KernelSpec {
  let spec = cache.get(expr);
  if (!spec) {
    spec = make(expr);
    cache.set(expr, spec);
  }
  return spec;
}

// Launches into a fresh output and disposes it when the launch throws (for
// example on a binding over the device's size limit).
function launchInto(
  op: string,
  shape: readonly number[],
  run: (out: Tensor) => void,
): Tensor {
  const out = empty(shape, op);
  try {
    run(out);
  } catch (error) {
    out.dispose();
    throw error;
  }
  return out;
}

/**
 * @internal Runs the binary kernel with `expr` of x (from a), y (from b),
 * alpha and beta, broadcasting a and b; no autograd.
 */
export function binaryKernel(
  op: string,
  expr: string,
  a: Tensor,
  b: Tensor,
  alpha = 0,
  beta = 0,
): Tensor {
  checkRank(op, a);
  checkRank(op, b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const bufferA = a.buffer(op);
  const bufferB = b.buffer(op);
  const plain = sameShape(a.shape, shape) && sameShape(b.shape, shape);
  const { spec, workgroups } = runLaunch(
    cachedSpec(binarySpecs, expr, binarySpec),
    shapeSize(shape),
  );
  const out = launchInto(op, shape, (out) =>
    launch(spec, {
      label: op,
      uniforms: {
        size: out.size,
        rank: plain ? 0 : shape.length,
        alpha,
        beta,
        shape,
        a_strides: broadcastStrides(a.shape, shape),
        b_strides: broadcastStrides(b.shape, shape),
      },
      buffers: [
        { buffer: bufferA, bytes: a.bytes },
        { buffer: bufferB, bytes: b.bytes },
        { buffer: out.buffer(op), bytes: out.bytes },
      ],
      workgroups,
    }),
  );
  checkOutput(op, out, [a, b]);
  return out;
}

/**
 * @internal Runs the unary kernel with `expr` of v, alpha and beta; no
 * autograd.
 */
export function unaryKernel(
  op: string,
  expr: string,
  x: Tensor,
  alpha = 0,
  beta = 0,
): Tensor {
  const buffer = x.buffer(op);
  const { spec, workgroups } = runLaunch(
    cachedSpec(unarySpecs, expr, unarySpec),
    x.size,
  );
  const out = launchInto(op, x.shape, (out) =>
    launch(spec, {
      label: op,
      uniforms: { size: x.size, alpha, beta },
      buffers: [
        { buffer, bytes: x.bytes },
        { buffer: out.buffer(op), bytes: out.bytes },
      ],
      workgroups,
    }),
  );
  checkOutput(op, out, [x]);
  return out;
}

/**
 * @internal out = a where cond is nonzero, else b, broadcasting all three;
 * no autograd.
 */
export function whereKernel(
  op: string,
  cond: Tensor,
  a: Tensor,
  b: Tensor,
): Tensor {
  for (const t of [cond, a, b]) checkRank(op, t);
  const shape = broadcastShapes(
    op,
    broadcastShapes(op, cond.shape, a.shape),
    b.shape,
  );
  const buffers = [cond, a, b].map((t) => ({
    buffer: t.buffer(op),
    bytes: t.bytes,
  }));
  const out = launchInto(op, shape, (out) =>
    launch(WHERE_SPEC, {
      label: op,
      uniforms: {
        size: out.size,
        rank: shape.length,
        shape,
        cond_strides: broadcastStrides(cond.shape, shape),
        a_strides: broadcastStrides(a.shape, shape),
        b_strides: broadcastStrides(b.shape, shape),
      },
      buffers: [...buffers, { buffer: out.buffer(op), bytes: out.bytes }],
      workgroups: workgroupsFor(WHERE_SPEC, out.size),
    }),
  );
  checkOutput(op, out, [cond, a, b]);
  return out;
}

/**
 * @internal Runs `fn` with each operand as a tensor: numbers become
 * one-element tensors of shape [], disposed when `fn` returns (a backward
 * rule keeps its own reference to what it saved). Throws unless at least
 * one operand is a tensor.
 */
export function withTensors<T>(
  op: string,
  operands: readonly Operand[],
  fn: (...tensors: Tensor[]) => T,
): T {
  if (!operands.some((operand) => operand instanceof Tensor)) {
    throw new TypeError(
      `${op}: expected at least one tensor operand, got only numbers ` +
        `(${operands.join(', ')})`,
    );
  }
  const temporaries: Tensor[] = [];
  const tensors = operands.map((operand) => {
    if (operand instanceof Tensor) return operand;
    if (typeof operand !== 'number') {
      throw new TypeError(
        `${op}: expected a Tensor or a number, got ${typeof operand}`,
      );
    }
    const scalar = tensor([operand], []);
    temporaries.push(scalar);
    return scalar;
  });
  try {
    return fn(...tensors);
  } finally {
    for (const t of temporaries) t.dispose();
  }
}
