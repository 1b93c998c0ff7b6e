// Assembles one iteration's Batch: the atlas and the target, augmented
// when a hook is given, with the atlas labels one-hot encoded.

import { oneHot } from '../../ops/dice.js';
import type { Random } from '../../random.js';
import { formatShape, type Tensor } from '../../tensor.js';
import type { Augment, PreparedAtlas } from './data.js';
import type { Batch } from './step.js';

function checkSameGrid(op: string, what: string, a: Tensor, b: Tensor): void {
  const same =
    a.rank === 5 &&
    b.rank === 5 &&
    a.shape.slice(2).every((size, axis) => size === b.shape[axis + 2]);
  if (!same) {
    throw new RangeError(
      `${op}: ${what} ${formatShape(a.shape)} must be on the atlas's grid ` +
        formatShape(b.shape),
    );
  }
}

/**
 * Returns the batch of one iteration. Call inside tidy(): the augmented
 * tensors and the one-hot labels it creates belong to that scope.
 */
export function buildBatch(
  op: string,
  atlas: PreparedAtlas,
  target: Tensor,
  teacher: Tensor | null,
  numClasses: number,
  augment: Augment | undefined,
  iteration: number,
  random: Random,
): Batch {
  checkSameGrid(op, 'scan', target, atlas.image);

  if (target.shape[0] !== 1 || target.shape[1] !== 1) {
    throw new RangeError(
      `${op}: scan ${formatShape(target.shape)} must be [1, 1, D, H, W]`,
    );
  }
  if (!augment) {
    const atlasImage = atlas.image;
    return { atlasImage, atlasOneHot: atlas.oneHot, target, teacher };
  }

  const labels = atlas.labelMap ?? atlas.oneHot;
  const movedAtlas = augment(atlas.image, labels, iteration, {
    random,
    role: 'atlas',
  });
  const movedTarget = augment(target, undefined, iteration, {
    random,
    role: 'target',
  });

  const movedLabels = movedAtlas.labels ?? labels;
  checkSameGrid(op, 'augmented atlas image', movedAtlas.image, atlas.image);
  checkSameGrid(op, 'augmented atlas labels', movedLabels, atlas.image);
  checkSameGrid(op, 'augmented target', movedTarget.image, atlas.image);
  const channels = movedLabels.shape[1];
  if (channels !== 1 && channels !== numClasses) {
    throw new RangeError(
      `${op}: augmented atlas labels ${formatShape(movedLabels.shape)} must ` +
        `have 1 channel (class ids) or ${numClasses} (one-hot)`,
    );
  }

  const atlasOneHot =
    channels === numClasses ? movedLabels : oneHot(movedLabels, numClasses);
  return {
    atlasImage: movedAtlas.image,
    atlasOneHot,
    target: movedTarget.image,
    teacher,
  };
}
