// Mean local normalised cross-correlation of two images, the similarity
// that the registration branch trains for, as a metric.

import { noGrad } from '../../autograd/node.js';
import { nccLoss, nccWindow } from '../../ops/ncc.js';
import { formatShape, type Tensor } from '../../tensor.js';

/**
 * Computes the mean local NCC of images `a` and `b` [1, 1, D, H, W] with a
 * cubic window of `window` voxels (odd, default 9): minus the training's
 * `nccLoss`, on the device, so the same definition applies in training and
 * evaluation. Each voxel contributes cc = cross^2 / (var_a var_b + 1e-5)
 * over its window, so the result lies in [0, 1], and anti-correlated
 * windows score as high as correlated ones. Reads one number back.
 *
 * @example
 * const ncc = await meanLocalNcc(warpedAtlas, target); // 0.36
 */
export async function meanLocalNcc(
  a: Tensor,
  b: Tensor,
  window = 9,
): Promise<number> {
  const op = 'meanLocalNcc';
  for (const [name, image] of [
    ['a', a],
    ['b', b],
  ] as const) {
    if (image.rank !== 5 || image.shape[0] !== 1 || image.shape[1] !== 1) {
      throw new RangeError(
        `${op}: ${name} ${formatShape(image.shape)} must be one image ` +
          '[1, 1, D, H, W]',
      );
    }
  }
  if (a.shape.some((size, axis) => size !== b.shape[axis])) {
    throw new RangeError(
      `${op}: a ${formatShape(a.shape)} and b ${formatShape(b.shape)} must ` +
        'have the same shape; resample one onto the grid of the other',
    );
  }
  nccWindow(op, window, a.shape);

  const loss = noGrad(() => nccLoss(a, b, { window }));
  try {
    return -(await loss.item());
  } finally {
    loss.dispose();
  }
}
