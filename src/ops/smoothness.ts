// Smoothness loss of a displacement field (VoxelMorph's l2 gradient loss),
// with backward.
//
// Layout: flow is [N, C, D, H, W] float32; for a displacement field C = 3
// (channel 0 along D, 1 along H, 2 along W, in voxels).

import { record } from '../autograd/node.js';
import { smoothnessBackwardKernel, smoothnessForwardKernel } from '../kernels/smoothness.js';
import { formatShape, type Tensor } from '../tensor.js';

/**
 * Computes the l2 gradient loss of a field: for each spatial axis the mean
 * of the squared forward differences flow[x + e] - flow[x] (over all
 * channels and the positions where the difference exists), and the mean of
 * the three. Returns a scalar (shape []).
 *
 * Every spatial extent must be at least 2, so that each axis has a
 * difference to average. A field larger than one storage binding (such as
 * [1, 3, 256, 256, 256], 201 MB) runs one group of channel volumes at a
 * time; a single channel volume must fit in a binding.
 *
 * @example
 * const loss = smoothnessLoss(flow); // flow [1, 3, D, H, W]
 */
export function smoothnessLoss(flow: Tensor): Tensor {
  const op = 'smoothnessLoss';
  if (flow.rank !== 5) {
    throw new RangeError(
      `${op}: flow of shape ${formatShape(flow.shape)} must be a ` +
        '[N, C, D, H, W] field (rank 5)',
    );
  }
  const [n, c, d, h, w] = flow.shape;
  if (n === 0 || c === 0 || d < 2 || h < 2 || w < 2) {
    throw new RangeError(
      `${op}: flow of shape ${formatShape(flow.shape)} needs N, C >= 1 and ` +
        'D, H, W >= 2 (an axis of extent 1 has no forward difference to average)',
    );
  }

  const loss = smoothnessForwardKernel(op, flow);
  return record(op, loss, [flow], [flow], (grad, [saved]) => [
    smoothnessBackwardKernel(op, saved, grad),
  ]);
}
