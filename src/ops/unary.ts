// Unary math ops (neg, abs, exp, log, sqrt, scale, clamp) and their
// backward rules. Outputs have the input's shape.

import { record } from '../autograd/node.js';
import type { Tensor } from '../tensor.js';
import { binaryKernel, unaryKernel } from './elementwise-kernels.js';

/** -x. */
export function neg(x: Tensor): Tensor {
  const out = unaryKernel('neg', '-v', x);
  return record('neg', out, [x], [], (g) => [
    unaryKernel('neg backward', '-v', g),
  ]);
}

/** |x|. The gradient is sign(x), 0 at x = 0 as in PyTorch. */
export function abs(x: Tensor): Tensor {
  const out = unaryKernel('abs', 'abs(v)', x);
  return record('abs', out, [x], [x], (g, [sx]) => [
    binaryKernel('abs backward', 'x * sign(y)', g, sx),
  ]);
}

/** e^x. */
export function exp(x: Tensor): Tensor {
  const out = unaryKernel('exp', 'accurate_exp(v)', x);
  return record('exp', out, [x], [out], (g, [y]) => [
    binaryKernel('exp backward', 'x * y', g, y),
  ]);
}

/** Natural logarithm: log(0) = -inf and log(x < 0) = NaN, as in PyTorch. */
export function log(x: Tensor): Tensor {
  const out = unaryKernel('log', 'safe_log(v)', x);
  return record('log', out, [x], [x], (g, [sx]) => [
    binaryKernel('log backward', 'x / y', g, sx),
  ]);
}

/** Square root: sqrt(x < 0) = NaN; the gradient at 0 is inf, as in PyTorch. */
export function sqrt(x: Tensor): Tensor {
  const out = unaryKernel('sqrt', 'safe_sqrt(v)', x);
  return record('sqrt', out, [x], [out], (g, [y]) => [
    binaryKernel('sqrt backward', 'x / (2.0 * y)', g, y),
  ]);
}

/** x * factor, for a plain number factor. */
export function scale(x: Tensor, factor: number): Tensor {
  const out = unaryKernel('scale', 'v * alpha', x, factor);
  return record('scale', out, [x], [], (g) => [
    unaryKernel('scale backward', 'v * alpha', g, factor),
  ]);
}

/**
 * Clamps x to [min, max] as min(max(x, min), max), so max wins when
 * min > max; NaN stays NaN. Either bound may be null or omitted, not both.
 * The gradient is 1 where min <= x <= max (bounds included), else 0, as in
 * PyTorch. NOTE: bounds are numbers, rounded to float32; PyTorch also takes
 * tensors.
 */
export function clamp(
  x: Tensor,
  min?: number | null,
  max?: number | null,
): Tensor {
  if ((min === undefined || min === null) && (max === undefined || max === null)) {
    throw new TypeError('clamp: expected a min or a max bound, got neither');
  }
  const low = min ?? -Infinity;
  const high = max ?? Infinity;
  const out = unaryKernel('clamp', 'clamp_nan(v, alpha, beta)', x, low, high);
  return record('clamp', out, [x], [x], (g, [sx]) => [
    binaryKernel(
      'clamp backward',
      'select(0.0, x, y >= alpha && y <= beta)',
      g,
      sx,
      low,
      high,
    ),
  ]);
}
