// maxPool3d and avgPool3d with PyTorch's semantics (ceil_mode=False,
// dilation 1), and their backward as gathers.
//
// Layout: x is [N, C, D, H, W]; the output is [N, C, outD, outH, outW]
// with out = floor((in + 2 * padding - kernel) / stride) + 1 per axis.
//
// NOTE: PyTorch's ceil_mode, dilation and divisor_override options are not
// implemented; the ops behave as with their defaults.

import { record } from '../autograd/node.js';
import { checkOutput } from '../debug.js';
import {
  avgPoolBackward,
  avgPoolForward,
  maxPoolBackward,
  maxPoolForward,
  type PoolGeometry,
  type Triple,
} from '../kernels/pool.js';
import { formatShape, type Tensor } from '../tensor.js';
import type { Size3 } from './conv.js';

export interface Pool3dOptions {
  /** Window size: one integer for all axes or one per axis (D, H, W). */
  kernelSize: Size3;
  /** Step between windows; defaults to kernelSize. */
  stride?: Size3;
  /** Implicit padding on both sides of each axis, at most kernelSize / 2. */
  padding?: Size3;
}

export interface AvgPool3dOptions extends Pool3dOptions {
  /**
   * Divide by the full window size, padding included (true, the default),
   * or by the number of input elements inside the window (false).
   */
  countIncludePad?: boolean;
}

function triple(op: string, name: string, value: Size3, min: number): Triple {
  const list = typeof value === 'number' ? [value, value, value] : [...value];
  if (list.length !== 3 || list.some((v) => !Number.isInteger(v) || v < min)) {
    throw new RangeError(
      `${op}: ${name} must be an integer >= ${min} or three of them, ` +
        `got ${JSON.stringify(value)}`,
    );
  }
  return list as Triple;
}

/** Checks the input and options and returns the pooling geometry. */
function poolGeometry(op: string, x: Tensor, options: Pool3dOptions): PoolGeometry {
  if (x.rank !== 5) {
    throw new RangeError(
      `${op}: input ${formatShape(x.shape)} must be [N, C, D, H, W] (rank 5)`,
    );
  }
  if (options?.kernelSize === undefined) {
    throw new RangeError(`${op}: kernelSize is missing; pass one integer or three`);
  }
  const kernelSize = triple(op, 'kernelSize', options.kernelSize, 1);
  const stride = triple(op, 'stride', options.stride ?? kernelSize, 1);
  const padding = triple(op, 'padding', options.padding ?? 0, 0);

  if (padding.some((p, i) => 2 * p > kernelSize[i])) {
    throw new RangeError(
      `${op}: padding ${formatShape(padding)} must be at most half the kernel ` +
        `size ${formatShape(kernelSize)} (as in PyTorch), so every window ` +
        'covers at least one input',
    );
  }

  const [n, c, ...rest] = x.shape;
  const inSize = rest as Triple;
  const padded = inSize.map((s, i) => s + 2 * padding[i]);
  if (padded.some((s, i) => s < kernelSize[i])) {
    throw new RangeError(
      `${op}: kernel ${formatShape(kernelSize)} is larger than the padded ` +
        `input ${formatShape(padded)} (input ${formatShape(x.shape)}, padding ` +
        `${formatShape(padding)})`,
    );
  }
  if (n * c === 0) {
    throw new RangeError(`${op}: input ${formatShape(x.shape)} has no volumes to pool`);
  }

  const outSize = inSize.map(
    (s, i) => Math.floor((padded[i] - kernelSize[i]) / stride[i]) + 1,
  ) as Triple;
  return { volumes: n * c, inSize, outSize, kernelSize, stride, padding };
}

/**
 * 3D max pooling like torch.nn.functional.max_pool3d (ceil_mode=False,
 * dilation 1) of x [N, C, D, H, W]. Padding never wins a window. On ties
 * the first element in window order (D, then H, then W) is the maximum,
 * as in PyTorch, and the gradient flows to it alone. A NaN in a window is
 * its maximum.
 *
 * @example
 * const y = maxPool3d(x, { kernelSize: 2 }); // [1, 8, 32, 32, 32] -> [1, 8, 16, 16, 16]
 */
export function maxPool3d(x: Tensor, options: Pool3dOptions): Tensor {
  const op = 'maxPool3d';
  const g = poolGeometry(op, x, options);
  const { out, indices } = maxPoolForward(op, x, g);
  checkOutput(op, out, [x]);
  record(op, out, [x], [indices], (grad, [savedIndices]) => [
    maxPoolBackward(op, grad, savedIndices, g, x.shape),
  ]);
  indices.dispose();
  return out;
}

/**
 * 3D average pooling like torch.nn.functional.avg_pool3d (ceil_mode=False,
 * no divisor_override) of x [N, C, D, H, W]. Padding counts as zeros.
 * With countIncludePad (the default) every window divides by its full
 * size; without it, by the number of input elements it covers.
 *
 * @example
 * const y = avgPool3d(x, { kernelSize: 3, stride: 2, padding: 1 });
 */
export function avgPool3d(x: Tensor, options: AvgPool3dOptions): Tensor {
  const op = 'avgPool3d';
  const g = poolGeometry(op, x, options);
  const countIncludePad = options.countIncludePad ?? true;
  const out = avgPoolForward(op, x, g, countIncludePad);
  checkOutput(op, out, [x]);
  return record(op, out, [x], [], (grad) => [
    avgPoolBackward(op, grad, g, countIncludePad, x.shape),
  ]);
}
