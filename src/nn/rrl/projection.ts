// ProjectionHead P of the distillation loss: maps the general encoder's
// bottleneck features to the teacher's feature width.

import { formatShape, type Tensor } from '../../tensor.js';
import { Conv3d } from '../conv.js';
import { resolveRandom, type RandomSource } from '../init.js';
import { Module } from '../module.js';

/**
 * A 1x1x1 convolution with bias, `conv`, from [N, inChannels, d, h, w] to
 * [N, outChannels, d, h, w] (256 for SAM's image encoder).
 */
export class ProjectionHead extends Module {
  readonly conv: Conv3d;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    seed?: RandomSource,
  ) {
    super();
    const random = resolveRandom(seed);
    this.conv = this.module(
      'conv',
      new Conv3d(inChannels, outChannels, 1, { seed: random }),
    );
  }

  forward(features: Tensor): Tensor {
    if (features.rank !== 5 || features.shape[1] !== this.inChannels) {
      throw new RangeError(
        `ProjectionHead: features ${formatShape(features.shape)} must be ` +
          `[N, ${this.inChannels}, d, h, w]`,
      );
    }
    return this.conv.forward(features);
  }
}
