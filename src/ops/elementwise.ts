// Binary elementwise ops with NumPy broadcasting, comparisons and where(),
// with their backward rules. Either operand of a binary op may be a plain
// number, which acts as a one-element tensor of shape [].
//
// Unary math (unary.ts) and activations (activation.ts) are re-exported
// here, so this module is the one entry point for elementwise ops.

import { record } from '../autograd/node.js';
import { formatShape, type Tensor } from '../tensor.js';
import {
  binaryKernel,
  unaryKernel,
  whereKernel,
  withTensors,
  type Operand,
} from './elementwise-kernels.js';
import { sumToShape } from './reduce.js';
import { sameShape } from './shape.js';

export {
  binaryKernel,
  unaryKernel,
  whereKernel,
  type Operand,
} from './elementwise-kernels.js';
export { neg, abs, exp, log, sqrt, scale, clamp } from './unary.js';
export { relu, leakyRelu, gelu, sigmoid, tanh } from './activation.js';

// Sums a temporary gradient over its broadcast axes to `shape` and disposes
// the temporary when a new tensor replaced it.
function sumTemporaryToShape(t: Tensor, shape: readonly number[]): Tensor {
  const out = sumToShape(t, shape);
  if (out !== t) t.dispose();
  return out;
}

// The gradient g * factor(x, y) of one broadcast input, of that input's shape.
function productGrad(
  op: string,
  g: Tensor,
  factorExpr: string,
  x: Tensor,
  y: Tensor,
  shape: readonly number[],
): Tensor {
  const factor = binaryKernel(op, factorExpr, x, y);
  const product = binaryKernel(op, 'x * y', g, factor);
  factor.dispose();
  return sumTemporaryToShape(product, shape);
}

/** a + b, broadcast. */
export function add(a: Operand, b: Operand): Tensor {
  return withTensors('add', [a, b], (x, y) => {
    const out = binaryKernel('add', 'x + y', x, y);
    return record('add', out, [x, y], [], (g) => [
      x.requiresGrad ? sumToShape(g, x.shape) : null,
      y.requiresGrad ? sumToShape(g, y.shape) : null,
    ]);
  });
}

/** a - b, broadcast. */
export function sub(a: Operand, b: Operand): Tensor {
  return withTensors('sub', [a, b], (x, y) => {
    const out = binaryKernel('sub', 'x - y', x, y);
    return record('sub', out, [x, y], [], (g) => [
      x.requiresGrad ? sumToShape(g, x.shape) : null,
      y.requiresGrad
        ? sumTemporaryToShape(unaryKernel('sub backward', '-v', g), y.shape)
        : null,
    ]);
  });
}

/** a * b, broadcast. */
export function mul(a: Operand, b: Operand): Tensor {
  return withTensors('mul', [a, b], (x, y) => {
    const out = binaryKernel('mul', 'x * y', x, y);
    return record('mul', out, [x, y], [x, y], (g, [sx, sy]) => [
      x.requiresGrad
        ? sumTemporaryToShape(binaryKernel('mul backward', 'x * y', g, sy), x.shape)
        : null,
      y.requiresGrad
        ? sumTemporaryToShape(binaryKernel('mul backward', 'x * y', g, sx), y.shape)
        : null,
    ]);
  });
}

/** a / b, broadcast. Division by 0 gives inf or NaN as in IEEE 754. */
export function div(a: Operand, b: Operand): Tensor {
  return withTensors('div', [a, b], (x, y) => {
    const out = binaryKernel('div', 'x / y', x, y);
    return record('div', out, [x, y], [x, y], (g, [sx, sy]) => [
      x.requiresGrad
        ? sumTemporaryToShape(binaryKernel('div backward', 'x / y', g, sy), x.shape)
        : null,
      // d(a/b)/db = -a / b^2
      y.requiresGrad
        ? productGrad('div backward', g, '-x / (y * y)', sx, sy, y.shape)
        : null,
    ]);
  });
}

/**
 * base ** exponent, broadcast; either may be a number. Follows C's pow: a
 * negative base takes integer exponents only (else NaN), x ** 0 = 1 and
 * 1 ** y = 1. The gradient for the base is 0 where the exponent is 0, and
 * for the exponent 0 where the base is 0 and the exponent >= 0, as in
 * PyTorch.
 */
export function pow(base: Operand, exponent: Operand): Tensor {
  return withTensors('pow', [base, exponent], (x, y) => {
    const out = binaryKernel('pow', 'pow_f(x, y)', x, y);
    return record('pow', out, [x, y], [x, y], (g, [sx, sy]) => [
      x.requiresGrad
        ? productGrad('pow backward', g, 'pow_base_grad(x, y)', sx, sy, x.shape)
        : null,
      y.requiresGrad
        ? productGrad('pow backward', g, 'pow_exponent_grad(x, y)', sx, sy, y.shape)
        : null,
    ]);
  });
}

// The share of the gradient that an input gets: 1 where `wins` holds, 0.5 on
// a tie, else 0. PyTorch 1.13 splits ties evenly: for maximum(a, b) with
// a = b = 1, a.grad and b.grad are both 0.5 (checked with torch 1.13.0).
function gradientShare(wins: string): string {
  return `select(select(0.0, 1.0, ${wins}), 0.5, x == y)`;
}

/** Elementwise maximum, broadcast; NaN if either is NaN. */
export function maximum(a: Operand, b: Operand): Tensor {
  return withTensors('maximum', [a, b], (x, y) => {
    const out = binaryKernel('maximum', 'max_nan(x, y)', x, y);
    return record('maximum', out, [x, y], [x, y], (g, [sx, sy]) => [
      x.requiresGrad
        ? productGrad('maximum backward', g, gradientShare('x > y'), sx, sy, x.shape)
        : null,
      y.requiresGrad
        ? productGrad('maximum backward', g, gradientShare('y > x'), sx, sy, y.shape)
        : null,
    ]);
  });
}

/** Elementwise minimum, broadcast; NaN if either is NaN. */
export function minimum(a: Operand, b: Operand): Tensor {
  return withTensors('minimum', [a, b], (x, y) => {
    const out = binaryKernel('minimum', 'min_nan(x, y)', x, y);
    return record('minimum', out, [x, y], [x, y], (g, [sx, sy]) => [
      x.requiresGrad
        ? productGrad('minimum backward', g, gradientShare('x < y'), sx, sy, x.shape)
        : null,
      y.requiresGrad
        ? productGrad('minimum backward', g, gradientShare('y < x'), sx, sy, y.shape)
        : null,
    ]);
  });
}

// Comparisons with a NaN operand are false. The bit test makes that hold
// even where a compiler assumes finite math and folds IEEE comparisons.
function compare(op: string, condition: string, a: Operand, b: Operand): Tensor {
  const ordered = `${condition} && !is_nan(x) && !is_nan(y)`;
  return withTensors(op, [a, b], (x, y) =>
    binaryKernel(op, `select(0.0, 1.0, ${ordered})`, x, y),
  );
}

// ne is the negation of eq, so it is true where either operand is NaN.
function compareNotEqual(a: Operand, b: Operand): Tensor {
  return withTensors('ne', [a, b], (x, y) =>
    binaryKernel('ne', 'select(1.0, 0.0, x == y && !is_nan(x) && !is_nan(y))', x, y),
  );
}

/**
 * 1 where a == b, else 0, broadcast; takes no gradient. NaN equals nothing.
 * NOTE: returns a float32 tensor of 0 and 1 where PyTorch returns bool.
 */
export function eq(a: Operand, b: Operand): Tensor {
  return compare('eq', 'x == y', a, b);
}

/** 1 where a != b, else 0 (also 1 where either is NaN); no gradient. */
export function ne(a: Operand, b: Operand): Tensor {
  return compareNotEqual(a, b);
}

/** 1 where a < b, else 0, broadcast; takes no gradient. */
export function lt(a: Operand, b: Operand): Tensor {
  return compare('lt', 'x < y', a, b);
}

/** 1 where a <= b, else 0, broadcast; takes no gradient. */
export function le(a: Operand, b: Operand): Tensor {
  return compare('le', 'x <= y', a, b);
}

/** 1 where a > b, else 0, broadcast; takes no gradient. */
export function gt(a: Operand, b: Operand): Tensor {
  return compare('gt', 'x > y', a, b);
}

/** 1 where a >= b, else 0, broadcast; takes no gradient. */
export function ge(a: Operand, b: Operand): Tensor {
  return compare('ge', 'x >= y', a, b);
}

/**
 * a where cond is nonzero, else b, broadcasting all three. The gradient
 * flows to a where cond is nonzero and to b elsewhere; cond takes none.
 * NOTE: cond is a float tensor (nonzero or NaN is true) where PyTorch
 * takes bool.
 */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  return withTensors('where', [cond, a, b], (c, x, y) => {
    const out = whereKernel('where', c, x, y);
    return record('where', out, [c, x, y], [c], (g, [sc]) => [
      null,
      x.requiresGrad
        ? sumTemporaryToShape(
            binaryKernel('where backward', 'select(0.0, x, is_nonzero(y))', g, sc),
            x.shape,
          )
        : null,
      y.requiresGrad
        ? sumTemporaryToShape(
            binaryKernel('where backward', 'select(x, 0.0, is_nonzero(y))', g, sc),
            y.shape,
          )
        : null,
    ]);
  });
}

/** @internal Throws unless two shapes are equal. */
export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (!sameShape(a.shape, b.shape)) {
    throw new RangeError(
      `${op}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} must be equal`,
    );
  }
}
