// Elementwise ops with NumPy broadcasting, and their backward rules.

import { record } from '../autograd/node.js';
import { launch, workgroupsFor, type KernelSpec } from '../kernels/launch.js';
import { empty, formatShape, type Tensor } from '../tensor.js';
import { sumToShape } from './reduce.js';
import {
  broadcastShapes,
  broadcastStrides,
  checkRank,
  sameShape,
} from './shape.js';

function binarySpec(expr: string): KernelSpec {
  return {
    name: 'binary',
    uniforms: [
      ['size', 'u32'],
      ['rank', 'u32'],
      ['shape', 'vec4u*2'],
      ['a_strides', 'vec4u*2'],
      ['b_strides', 'vec4u*2'],
    ],
    bindings: [
      { name: 'a', access: 'read' },
      { name: 'b', access: 'read' },
      { name: 'out', access: 'read_write' },
    ],
    constants: { EXPR: expr },
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
    constants: { EXPR: expr },
  };
}

const binarySpecs = new Map<string, KernelSpec>();
const unarySpecs = new Map<string, KernelSpec>();

/** @internal Runs the binary kernel with `expr` of x and y; no autograd. */
export function binaryKernel(op: string, expr: string, a: Tensor, b: Tensor): Tensor {
  checkRank(op, a);
  checkRank(op, b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const bufferA = a.buffer(op);
  const bufferB = b.buffer(op);
  let spec = binarySpecs.get(expr);
  if (!spec) {
    spec = binarySpec(expr);
    binarySpecs.set(expr, spec);
  }
  const out = empty(shape, op);
  const plain = sameShape(a.shape, shape) && sameShape(b.shape, shape);
  launch(spec, {
    label: op,
    uniforms: {
      size: out.size,
      rank: plain ? 0 : shape.length,
      shape,
      a_strides: broadcastStrides(a.shape, shape),
      b_strides: broadcastStrides(b.shape, shape),
    },
    buffers: [
      { buffer: bufferA, bytes: a.bytes },
      { buffer: bufferB, bytes: b.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(spec, out.size),
  });
  return out;
}

/** @internal Runs the unary kernel with `expr` of v, alpha, beta; no autograd. */
export function unaryKernel(op: string, expr: string, x: Tensor, alpha = 0, beta = 0): Tensor {
  const buffer = x.buffer(op);
  let spec = unarySpecs.get(expr);
  if (!spec) {
    spec = unarySpec(expr);
    unarySpecs.set(expr, spec);
  }
  const out = empty(x.shape, op);
  launch(spec, {
    label: op,
    uniforms: { size: x.size, alpha, beta },
    buffers: [
      { buffer, bytes: x.bytes },
      { buffer: out.buffer(op), bytes: out.bytes },
    ],
    workgroups: workgroupsFor(spec, x.size),
  });
  return out;
}

/** a + b, broadcast. */
export function add(a: Tensor, b: Tensor): Tensor {
  const out = binaryKernel('add', 'x + y', a, b);
  return record('add', out, [a, b], [], (g) => [
    sumToShape(g, a.shape),
    sumToShape(g, b.shape),
  ]);
}

/** a - b, broadcast. */
export function sub(a: Tensor, b: Tensor): Tensor {
  const out = binaryKernel('sub', 'x - y', a, b);
  return record('sub', out, [a, b], [], (g) => [
    sumToShape(g, a.shape),
    sumToShape(unaryKernel('neg', '-v', g), b.shape),
  ]);
}

/** a * b, broadcast. */
export function mul(a: Tensor, b: Tensor): Tensor {
  const out = binaryKernel('mul', 'x * y', a, b);
  return record('mul', out, [a, b], [a, b], (g, [sa, sb]) => [
    a.requiresGrad ? sumToShape(binaryKernel('mul', 'x * y', g, sb), a.shape) : null,
    b.requiresGrad ? sumToShape(binaryKernel('mul', 'x * y', g, sa), b.shape) : null,
  ]);
}

/** a / b, broadcast. */
export function div(a: Tensor, b: Tensor): Tensor {
  const out = binaryKernel('div', 'x / y', a, b);
  return record('div', out, [a, b], [a, b], (g, [sa, sb]) => {
    const ga = a.requiresGrad
      ? sumToShape(binaryKernel('div', 'x / y', g, sb), a.shape)
      : null;
    let gb: Tensor | null = null;
    if (b.requiresGrad) {
      // d(a/b)/db = -a / b^2
      const ratio = binaryKernel('div', '-x / (y * y)', sa, sb);
      gb = sumToShape(binaryKernel('mul', 'x * y', g, ratio), b.shape);
    }
    return [ga, gb];
  });
}

/** -x. */
export function neg(x: Tensor): Tensor {
  const out = unaryKernel('neg', '-v', x);
  return record('neg', out, [x], [], (g) => [unaryKernel('neg', '-v', g)]);
}

/** e^x. */
export function exp(x: Tensor): Tensor {
  const out = unaryKernel('exp', 'exp(v)', x);
  return record('exp', out, [x], [out], (g, [y]) => [
    binaryKernel('mul', 'x * y', g, y),
  ]);
}

/** x * factor, for a plain number factor. */
export function scale(x: Tensor, factor: number): Tensor {
  const out = unaryKernel('scale', 'v * alpha', x, factor);
  return record('scale', out, [x], [], (g) => [
    unaryKernel('scale', 'v * alpha', g, factor),
  ]);
}

/** @internal Throws unless two shapes are equal. */
export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (!sameShape(a.shape, b.shape)) {
    throw new RangeError(
      `${op}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} must be equal`,
    );
  }
}
