// Exponential moving average of parameters, in place on the device, for
// mean-teacher style updates between two networks of the same shape.

import { emaKernel } from '../kernels/ema.js';
import { formatShape, type Tensor } from '../tensor.js';
import { sameShape } from '../ops/shape.js';

/**
 * Sets target[i] = alpha * target[i] + (1 - alpha) * source[i] for every
 * pair, in the targets' own storage (one dispatch per pair, no readback).
 * Checks every pair before recording any update; an error names the
 * index and both shapes. Gradients of the targets are left untouched.
 */
export function emaUpdate(
  target: readonly Tensor[],
  source: readonly Tensor[],
  alpha: number,
): void {
  if (target.length !== source.length) {
    throw new RangeError(
      `emaUpdate: ${target.length} target tensors but ${source.length} ` +
        'source tensors',
    );
  }
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new RangeError(`emaUpdate: alpha must be in [0, 1], got ${alpha}`);
  }
  target.forEach((t, i) => {
    const s = source[i];
    if (!sameShape(t.shape, s.shape)) {
      throw new RangeError(
        `emaUpdate: target ${i} has shape ${formatShape(t.shape)} but ` +
          `source ${i} has shape ${formatShape(s.shape)}`,
      );
    }
    if (t.buffer('emaUpdate') === s.buffer('emaUpdate')) {
      throw new Error(
        `emaUpdate: target ${i} and source ${i} share storage (shape ` +
          `${formatShape(t.shape)}); the two networks must not share ` +
          'parameters',
      );
    }
  });
  target.forEach((t, i) => {
    emaKernel('emaUpdate', t, source[i], alpha);
    t.markModified();
  });
}
