// Local normalised cross-correlation loss (VoxelMorph's NCC), with backward
// to both inputs.
//
// Layout: a and b are [N, C, D, H, W] float32 volumes of the same shape.

import { isGradEnabled, record } from '../autograd/node.js';
import { nccBackwardKernels, nccForwardKernels, type Triple } from '../kernels/ncc.js';
import { formatShape, type Tensor } from '../tensor.js';

export interface NccOptions {
  /** Window edge in voxels: one odd size for all axes, or [D, H, W]. Default 9. */
  window?: number | readonly [number, number, number];
  /** Added to var_a * var_b in the denominator of cc. Default 1e-5. */
  epsilon?: number;
}

function checkVolume(op: string, name: string, t: Tensor): void {
  if (t.rank !== 5) {
    throw new RangeError(
      `${op}: ${name} of shape ${formatShape(t.shape)} must be a ` +
        '[N, C, D, H, W] volume (rank 5)',
    );
  }
}

/** Validates the window against the volume; returns it per axis. */
export function nccWindow(
  op: string,
  window: NccOptions['window'],
  shape: readonly number[],
): Triple {
  const value = window ?? 9;
  const sizes: number[] = typeof value === 'number' ? [value, value, value] : [...value];
  if (sizes.length !== 3 || sizes.some((s) => !Number.isInteger(s) || s < 1 || s % 2 === 0)) {
    throw new RangeError(
      `${op}: window ${JSON.stringify(value)} must be an odd positive integer ` +
        'or three of them [D, H, W]',
    );
  }
  const extents = shape.slice(2);
  if (sizes.some((s, axis) => s > extents[axis])) {
    throw new RangeError(
      `${op}: window [${sizes.join(',')}] is larger than the volume ` +
        `${formatShape(shape)} along an axis; the window must fit in ` +
        `[D, H, W] = [${extents.join(',')}]`,
    );
  }
  return sizes as Triple;
}

/**
 * Computes minus the mean local normalised cross-correlation of two volumes
 * (VoxelMorph's NCC loss). Around every voxel, box sums over a window^3
 * neighbourhood (zeros outside the volume, n = window^3 samples) give
 *   cross = Sab - Sa Sb / n,  var_a = max(Saa - Sa^2 / n, 0),  var_b alike,
 *   cc    = cross^2 / (var_a var_b + epsilon),
 * and the loss is -mean(cc) over all N * C * D * H * W voxels. Two
 * identical volumes give cc = var^2 / (var^2 + epsilon) per voxel, so a
 * textured volume against itself scores close to -1. Returns a scalar
 * (shape []). The window must fit inside the volume along every axis.
 *
 * Each channel is correlated with the same channel of the other volume and
 * the channels are averaged. NOTE: VoxelMorph's own NCC takes single-channel
 * volumes only (its ones filter has one input channel).
 *
 * NOTE: the intermediates take 80 bytes per 4 voxels in one binding, so a
 * volume of more than about 6.7M voxels (N * C * D * H * ceil(W / 4) * 80
 * bytes over the 128 MiB maxStorageBufferBindingSize of many adapters, for
 * example [1, 1, 192, 192, 192]) fails in launch() with an error that names
 * the binding.
 *
 * @example
 * const loss = nccLoss(warped, fixed, { window: 9 }); // between -1 and 0
 */
export function nccLoss(a: Tensor, b: Tensor, options: NccOptions = {}): Tensor {
  const op = 'nccLoss';
  checkVolume(op, 'a', a);
  checkVolume(op, 'b', b);
  if (a.shape.some((dim, i) => dim !== b.shape[i])) {
    throw new RangeError(
      `${op}: a ${formatShape(a.shape)} and b ${formatShape(b.shape)} must ` +
        'have the same shape',
    );
  }
  if (a.size === 0) {
    throw new RangeError(`${op}: a and b of shape ${formatShape(a.shape)} are empty`);
  }
  const window = nccWindow(op, options.window, a.shape);
  const epsilon = options.epsilon ?? 1e-5;
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) {
    throw new RangeError(`${op}: epsilon ${epsilon} must be a positive finite number`);
  }

  const needsGrad = isGradEnabled() && (a.requiresGrad || b.requiresGrad);
  const forward = nccForwardKernels(op, a, b, window, epsilon, needsGrad);
  if (!forward.coefficients) return forward.loss;

  const out = record(
    op,
    forward.loss,
    [a, b],
    [a, b, forward.coefficients],
    (grad, [savedA, savedB, coefficients]) => {
      const [gradA, gradB] = nccBackwardKernels(op, coefficients, savedA, savedB, grad, window);
      return [a.requiresGrad ? gradA : null, b.requiresGrad ? gradB : null];
    },
  );
  // The tape holds its own reference to the coefficients.
  forward.coefficients.dispose();
  return out;
}
